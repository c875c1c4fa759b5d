int voice(void);

int greet(void) {
    return voice() + 1;
}
