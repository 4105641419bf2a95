// tutorial_writer.cpp - the writer of the classic Windows shared-memory tutorial, as other
// programs do it: a named mapping backed by the paging file, a message copied into it, the
// handle kept while a reader looks. shmlink's interop tests read what it writes through
// shml_segment_open("win:NAME", SHML_RAW), and write what tutorial_reader.cpp reads.
//
//   tutorial_writer [NAME [MESSAGE [MS]]]
//
// NAME defaults to ShareMemory, MESSAGE to "Hello from the tutorial!" (24 bytes). It prints
// "ready" once the message is in, then keeps the handle for MS milliseconds, or without MS
// until a line (or the end) comes on stdin, and closes it: the mapping is gone with it.
// Exit status: 0, or 1 when the mapping could not be made (the error is printed).
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_SIZE 2048

int main(int argc, char *argv[])
{
    const char *szName = argc > 1 ? argv[1] : "ShareMemory";
    const char *szMessage = argc > 2 ? argv[2] : "Hello from the tutorial!";

    // A mapping of the paging file, 2048 bytes, under a name other processes open.
    HANDLE hMapFile = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, BUF_SIZE,
                                         szName);
    if (hMapFile == NULL) {
        printf("CreateFileMapping failed (%lu)\n", (unsigned long)GetLastError());
        return 1;
    }
    LPVOID lpBase = MapViewOfFile(hMapFile, FILE_MAP_ALL_ACCESS, 0, 0, BUF_SIZE);
    if (lpBase == NULL) {
        printf("MapViewOfFile failed (%lu)\n", (unsigned long)GetLastError());
        CloseHandle(hMapFile);
        return 1;
    }
    size_t len = strlen(szMessage) + 1;
    memcpy(lpBase, szMessage, len < BUF_SIZE ? len : BUF_SIZE);

    printf("ready\n");
    fflush(stdout);
    if (argc > 3) {
        Sleep((DWORD)strtoul(argv[3], NULL, 10));
    } else {
        char line[64];
        if (fgets(line, sizeof line, stdin) == NULL) {
            // End of input: done as well.
        }
    }

    UnmapViewOfFile(lpBase);
    CloseHandle(hMapFile);
    return 0;
}
