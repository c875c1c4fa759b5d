int voice(void) {
    return 41;
}
