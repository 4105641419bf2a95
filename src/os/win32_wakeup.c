/*
 * win32_wakeup.c - wake-ups (os.h): an unnamed manual-reset event, which the poller waits on
 * like any other handle. SetEvent is safe in a console control handler's thread, where a
 * cancellation token is fired on Ctrl-C.
 */
#include "os/os.h"
#include "os/win32.h"

#include <errno.h>

int shml__os_wakeup_create(intptr_t *h)
{
    HANDLE e = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!e)
        return -ENOMEM;
    *h = (intptr_t)e;
    return 0;
}

void shml__os_wakeup_signal(intptr_t h)
{
    SetEvent((HANDLE)h);
}

void shml__os_wakeup_drain(intptr_t h)
{
    ResetEvent((HANDLE)h);
}

void shml__os_wakeup_close(intptr_t h)
{
    CloseHandle((HANDLE)h);
}
