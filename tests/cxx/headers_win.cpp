// headers_win.cpp - the public headers under mingw-w64's C++11 (-pedantic): they compile, and
// the shared structs keep their C layout. Compiled, never run (see headers_win.c).
#include <shmlink.h>

static_assert(sizeof(shml_mutex) == 64 && alignof(shml_mutex) == 8, "mutex layout as in C");
static_assert(sizeof(shml_event) == 32 && alignof(shml_event) == 32, "event layout as in C");
static_assert(sizeof(shml_sem) == 32 && alignof(shml_sem) == 32, "semaphore layout as in C");

int main()
{
    return shml_strerror(SHML_ENOTSHML)[0] == '\0';
}
