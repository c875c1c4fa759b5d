/* A C extension module built against musl, needing a helper library of its own. */
int helper_answer(void);

int ext_answer(void) { return helper_answer(); }
