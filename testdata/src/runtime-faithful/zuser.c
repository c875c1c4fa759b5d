/* A program that needs libz.so.1 (a stand-in with one function), and says so when it starts. */
#include <stdio.h>

int stub_deflate(void);

int main(void) {
    printf("started %d\n", stub_deflate());
    return 0;
}
