/* A dynamically linked C program: the fixture build compiles it against glibc (gcc) and
 * against musl (musl-gcc), so its PT_INTERP names the loader of each. */
#include <stdio.h>

int main(void) {
    puts("hello from a dynamically linked program");
    return 0;
}
