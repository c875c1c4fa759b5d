/* Loads a shared object as Python's import or Node's require does (dlopen, RTLD_NOW) and
   prints the loader's error, if any, on standard error. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: dlopen-probe FILE\n");
        return 2;
    }
    if (!dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    puts("loaded");
    return 0;
}
