// tutorial_reader.cpp - the reader of the classic Windows shared-memory tutorial: open the
// named mapping another program made, map all of it, copy out 24 bytes and print them. It
// reads what tutorial_writer.cpp writes, and what shmlink writes into a raw win: segment.
//
//   tutorial_reader [NAME [COUNT]]
//
// NAME defaults to ShareMemory, COUNT (the bytes printed, at most 2048) to 24. It prints the
// bytes up to the first NUL, then a newline. Exit status: 0, or 1 when the mapping could not
// be opened or mapped (the error is printed: 2 is ERROR_FILE_NOT_FOUND, no such mapping).
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_SIZE 2048

int main(int argc, char *argv[])
{
    const char *szName = argc > 1 ? argv[1] : "ShareMemory";
    size_t count = argc > 2 ? strtoul(argv[2], NULL, 10) : 24;
    if (count > BUF_SIZE)
        count = BUF_SIZE;

    HANDLE hMapFile = OpenFileMappingA(FILE_MAP_ALL_ACCESS, FALSE, szName);
    if (hMapFile == NULL) {
        printf("OpenFileMapping failed (%lu)\n", (unsigned long)GetLastError());
        return 1;
    }
    // Length 0: the whole mapping, whatever size its creator gave it.
    LPVOID lpBase = MapViewOfFile(hMapFile, FILE_MAP_ALL_ACCESS, 0, 0, 0);
    if (lpBase == NULL) {
        printf("MapViewOfFile failed (%lu)\n", (unsigned long)GetLastError());
        CloseHandle(hMapFile);
        return 1;
    }
    char szBuffer[BUF_SIZE + 1] = {0};
    memcpy(szBuffer, lpBase, count);
    printf("%s\n", szBuffer);

    UnmapViewOfFile(lpBase);
    CloseHandle(hMapFile);
    return 0;
}
