/*
 * headers_win.c - the public headers as a Windows program's compiler sees them (mingw-w64,
 * -std=c11 -pedantic): they compile, and the shared structs keep the layout they have on
 * Linux, so a Windows and a Linux build agree on what a segment holds. Compiled, never run.
 */
#include <shmlink.h>

_Static_assert(sizeof(shml_mutex) == 64 && _Alignof(shml_mutex) == 8, "mutex layout");
_Static_assert(sizeof(shml_event) == 32 && _Alignof(shml_event) == 32, "event layout");
_Static_assert(sizeof(shml_sem) == 32 && _Alignof(shml_sem) == 32, "semaphore layout");
_Static_assert(SHML_ENOTSHML > 0 && SHML_ENOTSHML != SHML_EVERSION, "error codes distinct");
_Static_assert(ESTALE > 0 && EUSERS > 0 && ESTALE != EUSERS, "ESTALE and EUSERS exist");
_Static_assert(sizeof(ssize_t) == sizeof(size_t), "ssize_t is a signed size");

int main(void)
{
    return shml_strerror(SHML_ENOTSHML)[0] == '\0';
}
