/* A stand-in for zlib, built for x86-64 (the working twin) and for i386 (the wrong class). */
int stub_deflate(void) { return 1; }
