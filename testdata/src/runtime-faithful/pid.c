/* Prints its own process ID and its parent's, then exits: run as `sh -c '/app/server'`, it
   tells whether the shell replaced itself with the program (same PID as the shell). */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("pid=%d ppid=%d\n", (int)getpid(), (int)getppid());
    return 0;
}
