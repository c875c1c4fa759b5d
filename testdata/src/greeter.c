/* A program with a dependency chain: greeter -> libgreet.so.1 -> libvoice.so.1. */
#include <stdio.h>

int greet(void);

int main(void) {
    printf("greeting %d\n", greet());
    return 0;
}
