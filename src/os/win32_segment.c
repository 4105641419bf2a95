/*
 * win32_segment.c - the win: backend (named sections backed by the paging file), the backend
 * table of the Windows build, and what the Windows backends share: names in UTF-16, and
 * security descriptors made from and read back as permission bits.
 *
 * Names. `win:NAME` is the kernel object `Local\NAME` (the session's namespace, where
 * CreateFileMapping("NAME") puts it in a program), `win:Global\NAME` is `Global\NAME`
 * (making one needs SeCreateGlobalPrivilege). Names are case-sensitive, as the kernel's are.
 *
 * Lifetime. A section lives while any process holds a handle to it, and its name goes with
 * the last handle (views mapped without a handle keep the memory, not the name). So a
 * segment nobody has open is gone, and one that somebody has open cannot be removed:
 * shml_segment_unlink() returns 0 when the name is gone already and -EBUSY while it is held.
 * Persistent segments need a process holding them (the tool's holder, docs/FORMAT.md).
 *
 * Creation. A section is visible from CreateFileMapping on, before the creator has written
 * anything: there is no hidden name to publish later (no rename for kernel objects). A
 * managed segment's header reaches READY last, and openers wait for that, but an opener
 * could also catch the section blank, before the magic is there, and take it for a foreign
 * object. So a creator of a managed segment first makes a creation marker, the event
 * `<ns>\shmlc-NAME`, holds it until it releases the segment, and an opener that finds the
 * section blank waits (bounded) while the marker exists. The marker dies with its creator.
 *
 * Size. A raw open reports the size NtQuerySection gives (or a view's VirtualQuery, for a
 * handle without SECTION_QUERY), which Wine rounds up to a page: a 2048-byte mapping made by
 * another program opens raw as 4096 bytes. A view is always made of the whole section, since
 * a length past the section's own size is refused. A managed segment's header carries its
 * own sizes, so the rounding is invisible there.
 */
#include "os/os.h"
#include "os/win32.h"
#include "segment/backend.h"

#include <windows.h> /* first: the other Windows headers need its types */

#include <aclapi.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the few ntdll calls that have no Win32 form ---- */

typedef struct {
    USHORT Length;
    USHORT MaximumLength;
    PWSTR Buffer;
} nt_unicode_string;

typedef struct {
    ULONG Length;
    HANDLE RootDirectory;
    nt_unicode_string *ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
} nt_object_attributes;

typedef struct {
    nt_unicode_string Name;
    nt_unicode_string TypeName;
} nt_directory_entry;

typedef struct {
    PVOID BaseAddress;
    ULONG Attributes;
    LARGE_INTEGER Size;
} nt_section_basic;

typedef struct {
    ULONG Attributes;
    ACCESS_MASK GrantedAccess;
    ULONG HandleCount;
    ULONG PointerCount;
    ULONG Reserved[10];
} nt_object_basic;

#define NT_OBJ_CASE_INSENSITIVE 0x40u
#define NT_DIRECTORY_QUERY 0x1u
#define NT_SECTION_BASIC_INFORMATION 0
#define NT_OBJECT_BASIC_INFORMATION 0
#define NT_STATUS_MORE_ENTRIES ((LONG)0x00000105)
#define NT_STATUS_NO_MORE_ENTRIES ((LONG)0x8000001A)
#define NT_STATUS_OBJECT_NAME_NOT_FOUND ((LONG)0xC0000034)
#define NT_STATUS_ACCESS_DENIED ((LONG)0xC0000022)

__declspec(dllimport) LONG __stdcall NtOpenDirectoryObject(HANDLE *dir, ACCESS_MASK access,
                                                           nt_object_attributes *attr);
__declspec(dllimport) LONG __stdcall NtQueryDirectoryObject(HANDLE dir, PVOID buf, ULONG len,
                                                            BOOLEAN single, BOOLEAN restart,
                                                            PULONG context, PULONG ret);
__declspec(dllimport) LONG __stdcall NtQuerySection(HANDLE section, int cls, PVOID buf,
                                                    SIZE_T len, SIZE_T *ret);
__declspec(dllimport) LONG __stdcall NtQueryObject(HANDLE h, int cls, PVOID buf, ULONG len,
                                                   PULONG ret);

/* ---- names ---- */

int shml__win_wide(const char *s, wchar_t *out, size_t cap)
{
    if (cap == 0 || cap > INT_MAX)
        return -ENAMETOOLONG;
    if (s[0] == '\0') {
        out[0] = L'\0';
        return 0;
    }
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, out, (int)cap);
    if (n > 0)
        return 0;
    return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ENAMETOOLONG : -EINVAL;
}

/* Names are at most SHML_NAME_MAX bytes of UTF-8: never more UTF-16 units than that. */
#define WIDE_NAME_MAX (SHML_NAME_MAX + 32)

/*
 * Kernel objects that go with the section `Local\X` (or `Global\X`), named `Local\PREFIX-X`:
 * the creation marker, and the event a holder process waits on (docs/FORMAT.md "Windows").
 */
#define MARKER_PREFIX "shmlc-"
#define HOLDER_PREFIX "shmlh-"

static int object_name(const struct shml__addr *a, const char *prefix, wchar_t *out, size_t cap)
{
    const char *slash = strchr(a->name, '\\'); /* address.c always puts the namespace there */
    if (!slash)
        return -EINVAL;
    char buf[sizeof(a->name) + 16];
    snprintf(buf, sizeof(buf), "%.*s\\%s%s", (int)(slash - a->name), a->name, prefix,
             slash + 1);
    return shml__win_wide(buf, out, cap);
}

/* ---- security: permission bits as a DACL, and back ---- */

/* The calling user's SID, read once: the owner of everything shmlink makes. */
static INIT_ONCE user_once = INIT_ONCE_STATIC_INIT;
static union {
    TOKEN_USER tu;
    unsigned char bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
} user_buf;
static DWORD user_err; /* written once inside the INIT_ONCE; read after it */

static BOOL CALLBACK user_init(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once, (void)param, (void)ctx;
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
        user_err = GetLastError();
        return TRUE;
    }
    DWORD len = 0;
    if (!GetTokenInformation(tok, TokenUser, &user_buf, sizeof(user_buf), &len))
        user_err = GetLastError();
    CloseHandle(tok);
    return TRUE;
}

/* The user's SID (static), or NULL with *err set. */
static PSID user_sid(int *err)
{
    /* InitOnceExecuteOnce is a full barrier: user_buf and user_err are complete after it. */
    InitOnceExecuteOnce(&user_once, user_init, NULL, NULL);
    if (user_err != 0) {
        *err = shml__win_errno(user_err);
        return NULL;
    }
    return user_buf.tu.User.Sid;
}

/* Owner, group and other as SIDs: the user, Authenticated Users, Everyone. */
struct class_sids {
    unsigned char group[SECURITY_MAX_SID_SIZE];
    unsigned char other[SECURITY_MAX_SID_SIZE];
};

static bool class_sids(struct class_sids *c)
{
    DWORD n1 = sizeof(c->group), n2 = sizeof(c->other);
    return CreateWellKnownSid(WinAuthenticatedUserSid, NULL, c->group, &n1) &&
           CreateWellKnownSid(WinWorldSid, NULL, c->other, &n2);
}

/* The rights one class gets from its three bits (r = 4, w = 2). */
static DWORD class_rights(uint32_t bits, const struct shml__win_rights *r, bool owner)
{
    if (bits & 2)
        return owner ? GENERIC_ALL : r->write;
    if (bits & 4)
        return r->read;
    return 0;
}

/* The bits an ACE's mask reads back as. */
static uint32_t rights_class(DWORD mask, const struct shml__win_rights *r)
{
    if (mask & (GENERIC_ALL | GENERIC_WRITE | r->write_any))
        return 6;
    if (mask & (GENERIC_READ | r->read_any))
        return 4;
    return 0;
}

/* Everything the SECURITY_ATTRIBUTES points to, in one allocation (freed with free()). */
struct security_block {
    SECURITY_ATTRIBUTES sa;
    SECURITY_DESCRIPTOR sd;
    unsigned char owner[SECURITY_MAX_SID_SIZE];
    struct class_sids sids;
    /* The ACL: its header and up to three entries, each a header, a mask and a SID. */
    _Alignas(DWORD) unsigned char acl[sizeof(ACL) + 3 * (sizeof(ACCESS_ALLOWED_ACE) +
                                                         SECURITY_MAX_SID_SIZE)];
};

int shml__win_security(uint32_t mode, const struct shml__win_rights *rights, void **out)
{
    int err = 0;
    PSID me = user_sid(&err);
    if (!me)
        return shml__fail(err, "reading the user's SID for a security descriptor: %s",
                          shml__os_strerror(err));
    struct security_block *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    PACL acl = (PACL)b->acl;
    bool ok = CopySid(sizeof(b->owner), b->owner, me) && class_sids(&b->sids) &&
              InitializeSecurityDescriptor(&b->sd, SECURITY_DESCRIPTOR_REVISION) &&
              InitializeAcl(acl, sizeof(b->acl), ACL_REVISION);
    const struct {
        uint32_t bits;
        PSID sid;
        bool owner;
    } classes[3] = {
        {(mode >> 6) & 7, b->owner, true},
        {(mode >> 3) & 7, b->sids.group, false},
        {mode & 7, b->sids.other, false},
    };
    for (int i = 0; ok && i < 3; i++) {
        DWORD mask = class_rights(classes[i].bits, rights, classes[i].owner);
        if (mask != 0)
            ok = AddAccessAllowedAce(acl, ACL_REVISION, mask, classes[i].sid);
    }
    /* Protected: the directory's inheritable entries must not widen what the mode says. */
    ok = ok && SetSecurityDescriptorDacl(&b->sd, TRUE, acl, FALSE) &&
         SetSecurityDescriptorOwner(&b->sd, b->owner, FALSE) &&
         SetSecurityDescriptorControl(&b->sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED);
    if (!ok) {
        err = shml__win_errno(GetLastError());
        free(b);
        return shml__fail(err, "building the security descriptor of mode %o: %s", mode,
                          shml__os_strerror(err));
    }
    b->sa.nLength = sizeof(b->sa);
    b->sa.lpSecurityDescriptor = &b->sd;
    b->sa.bInheritHandle = FALSE;
    *out = b;
    return 0;
}

void shml__win_mode_of(void *handle, int type, const struct shml__win_rights *rights,
                       uint32_t *mode, uint32_t *uid)
{
    *mode = 0;
    *uid = UINT32_MAX;
    PSID owner = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    if (GetSecurityInfo(handle, (SE_OBJECT_TYPE)type,
                        OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner, NULL,
                        &dacl, NULL, &sd) != ERROR_SUCCESS)
        return;
    int err = 0;
    PSID me = user_sid(&err);
    if (owner && IsValidSid(owner)) {
        if (me && EqualSid(owner, me)) {
            *uid = shml__os_euid();
        } else {
            UCHAR n = *GetSidSubAuthorityCount(owner);
            uint32_t rid = n > 0 ? (uint32_t)*GetSidSubAuthority(owner, n - 1) : UINT32_MAX;
            /* Another domain's user may share our relative id: never let that pass as us. */
            *uid = rid == shml__os_euid() ? UINT32_MAX : rid;
        }
    }
    struct class_sids c;
    if (!dacl) {
        *mode = 0666; /* a NULL DACL lets anyone do anything */
    } else if (class_sids(&c)) {
        for (DWORD i = 0; i < dacl->AceCount; i++) {
            ACE_HEADER *h;
            if (!GetAce(dacl, i, (void **)&h) || h->AceType != ACCESS_ALLOWED_ACE_TYPE)
                continue;
            ACCESS_ALLOWED_ACE *ace = (ACCESS_ALLOWED_ACE *)h;
            PSID sid = (PSID)&ace->SidStart;
            uint32_t bits = rights_class(ace->Mask, rights);
            if (owner && EqualSid(sid, owner))
                *mode |= bits << 6;
            else if (EqualSid(sid, c.group))
                *mode |= bits << 3;
            else if (EqualSid(sid, c.other))
                *mode |= bits;
        }
    }
    LocalFree(sd);
}

/* 100 ns units from 1601-01-01 to 1970-01-01. */
#define EPOCH_DIFF_100NS 116444736000000000LL

int64_t shml__win_filetime_ns(uint64_t ft)
{
    return ft == 0 ? 0 : ((int64_t)ft - EPOCH_DIFF_100NS) * 100;
}

/* ---- the win: backend ---- */

/* What each permission class may do with a section. */
static const struct shml__win_rights section_rights = {
    .read = SECTION_MAP_READ | SECTION_QUERY | READ_CONTROL,
    .write = SECTION_MAP_READ | SECTION_MAP_WRITE | SECTION_QUERY | READ_CONTROL,
    .read_any = SECTION_MAP_READ,
    .write_any = SECTION_MAP_WRITE,
};

static int win_error(DWORD e, const struct shml__addr *a, const char *doing)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return shml__fail(ENOENT, "no Windows section %s", a->name);
    case ERROR_ALREADY_EXISTS:
        return shml__fail(EEXIST, "Windows section %s already exists", a->name);
    case ERROR_INVALID_HANDLE:
        /* What CreateFileMapping and OpenFileMapping say of a name another type holds: taken,
           for a create; not a segment, for an open (as a FIFO at a file path is). */
        return shml__fail(strcmp(doing, "creating") == 0 ? EEXIST : EINVAL,
                          "%s is the name of a Windows object that is not a section (an event, "
                          "a mutex, a semaphore...)",
                          a->name);
    case ERROR_ACCESS_DENIED:
        return shml__fail(EACCES, "permission denied on Windows section %s", a->name);
    case ERROR_COMMITMENT_LIMIT:
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return shml__fail(ENOMEM, "%s Windows section %s: the system's commit limit (memory "
                                  "plus paging file) is reached",
                          doing, a->name);
    default: {
        int err = shml__win_errno(e);
        return shml__fail(err, "%s Windows section %s: %s (Windows error %lu)", doing, a->name,
                          shml__os_strerror(err), (unsigned long)e);
    }
    }
}

/* Does the creation marker of `a` exist (a managed create of it is at work, or just was)? */
static bool marker_exists(const struct shml__addr *a)
{
    wchar_t name[WIDE_NAME_MAX + 16];
    if (object_name(a, MARKER_PREFIX, name, sizeof(name) / sizeof(name[0])) < 0)
        return false;
    HANDLE h = OpenEventW(SYNCHRONIZE, FALSE, name);
    if (h) {
        CloseHandle(h);
        return true;
    }
    return GetLastError() == ERROR_ACCESS_DENIED; /* there, though not ours to open */
}

static int win_create(const struct shml__addr *a, uint64_t size, uint32_t mode, uint32_t flags,
                      bool hidden, struct shml__obj *o)
{
    (void)hidden; /* no publish: never asked */
    if (flags & SHML_HUGEPAGES)
        return shml__fail(ENOTSUP, "the win backend cannot use large pages (they need "
                                   "SeLockMemoryPrivilege)");
    wchar_t name[WIDE_NAME_MAX];
    int r = shml__win_wide(a->name, name, sizeof(name) / sizeof(name[0]));
    if (r < 0)
        return shml__fail(-r, "%s cannot be a Windows object name", a->name);
    void *sa;
    r = shml__win_security(mode, &section_rights, &sa);
    if (r < 0)
        return r;
    /*
     * The marker before the section, so that an opener who finds the section blank also
     * finds the marker. It takes the section's security: whoever may open the one may see
     * the other. It may exist already (a rival creator's): it then means the same.
     */
    HANDLE marker = NULL;
    if (!(flags & SHML_RAW)) {
        wchar_t mname[WIDE_NAME_MAX + 16];
        if (object_name(a, MARKER_PREFIX, mname, sizeof(mname) / sizeof(mname[0])) == 0)
            marker = CreateEventW(sa, TRUE, FALSE, mname);
        /* No marker (the name is too long, or taken by another type): openers then report a
           blank section they catch as foreign, the only cost. */
    }
    HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, sa, PAGE_READWRITE | SEC_COMMIT,
                                  (DWORD)(size >> 32), (DWORD)size, name);
    DWORD e = GetLastError();
    free(sa);
    if (h && e == ERROR_ALREADY_EXISTS) {
        CloseHandle(h);
        h = NULL;
    }
    if (!h) {
        if (marker)
            CloseHandle(marker);
        if (e == ERROR_ACCESS_DENIED && strncmp(a->name, "Global\\", 7) == 0)
            return shml__fail(EPERM, "creating %s: objects in the Global namespace need "
                                     "SeCreateGlobalPrivilege (an administrator or a service)",
                              a->name);
        if (e == ERROR_ACCESS_DENIED)
            e = ERROR_ALREADY_EXISTS; /* in Local, only an object there that is not ours */
        return win_error(e, a, "creating");
    }
    o->section = h;
    o->marker = marker;
    o->created = true;
    return 0;
}

/* A view of the whole section (size 0: all of it), or NULL with the error recorded. */
static void *map_whole(HANDLE section, bool rdonly)
{
    return MapViewOfFile(section, rdonly ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE, 0, 0,
                         0);
}

/* How long an opener waits for a creator at work to write the magic of a blank section. */
#define BLANK_WAIT_NS ((int64_t)5000000000)

/*
 * A blank section whose creation marker exists is a managed segment whose creator has not
 * written the magic yet: wait, bounded, for the magic or for the marker to go. Anything else
 * is left for segment.c to judge (it also waits for a header that is not READY yet).
 */
static void wait_unblank(const struct shml__addr *a, HANDLE section)
{
    int64_t end = shml__os_mono_ns() + BLANK_WAIT_NS;
    for (;;) {
        void *p = map_whole(section, true);
        if (!p)
            return;
        /* A copy, as pread takes one: whether the magic is there is all we learn here, and
           segment.c's acquire load of the state (map_managed) orders what it reads after. */
        static const unsigned char zero[SHML_MAGIC_LEN];
        unsigned char magic[SHML_MAGIC_LEN];
        memcpy(magic, p, sizeof(magic));
        UnmapViewOfFile(p);
        bool blank = memcmp(magic, zero, sizeof(magic)) == 0;
        if (!blank || !marker_exists(a) || shml__os_mono_ns() >= end)
            return;
        Sleep(1);
    }
}

static int win_open(const struct shml__addr *a, bool rdonly, struct shml__obj *o)
{
    wchar_t name[WIDE_NAME_MAX];
    int r = shml__win_wide(a->name, name, sizeof(name) / sizeof(name[0]));
    if (r < 0)
        return shml__fail(-r, "%s cannot be a Windows object name", a->name);
    DWORD access = rdonly ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE;
    /* Query (the exact size) and READ_CONTROL (mode and owner) where the DACL grants them. */
    HANDLE h = OpenFileMappingW(access | SECTION_QUERY | READ_CONTROL, FALSE, name);
    if (!h && GetLastError() == ERROR_ACCESS_DENIED)
        h = OpenFileMappingW(access, FALSE, name);
    if (!h)
        return win_error(GetLastError(), a, "opening");
    wait_unblank(a, h);
    o->section = h;
    return 0;
}

/* The section's size in bytes (a whole number of pages), or -errno. */
static int64_t section_size(HANDLE section)
{
    nt_section_basic sbi;
    SIZE_T ret;
    if (NtQuerySection(section, NT_SECTION_BASIC_INFORMATION, &sbi, sizeof(sbi), &ret) >= 0)
        return sbi.Size.QuadPart;
    /* A handle without SECTION_QUERY: a view's extent says the same. */
    void *p = map_whole(section, true);
    if (!p)
        return -shml__win_errno(GetLastError());
    MEMORY_BASIC_INFORMATION mbi;
    SIZE_T n = VirtualQuery(p, &mbi, sizeof(mbi));
    UnmapViewOfFile(p);
    return n == 0 ? -shml__win_errno(GetLastError()) : (int64_t)mbi.RegionSize;
}

static int win_stat(const struct shml__obj *o, struct shml__objstat *st)
{
    int64_t size = section_size(o->section);
    if (size < 0)
        return (int)size;
    st->size = (uint64_t)size;
    shml__win_mode_of(o->section, SE_KERNEL_OBJECT, &section_rights, &st->mode, &st->uid);
    st->ctime_ns = 0; /* a section keeps no time */
    st->cpid = 0;
    st->nattch = -1;
    st->unbacked = 0; /* SEC_COMMIT: charged against the commit limit when made */
    st->sysv_id = -1;
    st->sysv_key = 0;
    return 0;
}

static int win_map(const struct shml__obj *o, size_t len, bool rdonly, uint32_t flags,
                   void **base)
{
    /*
     * The whole section: it is never smaller than what stat said (sections do not shrink), and
     * a length past the section's own size, which a page-rounded size can be for a section
     * made by another program, would be refused.
     */
    void *p = map_whole(o->section, rdonly);
    if (!p) {
        int err = shml__win_errno(GetLastError());
        return shml__fail(err, "MapViewOfFile of %zu bytes: %s", len, shml__os_strerror(err));
    }
    MEMORY_BASIC_INFORMATION mbi;
    if (VirtualQuery(p, &mbi, sizeof(mbi)) == 0 || mbi.RegionSize < len) {
        UnmapViewOfFile(p);
        return shml__fail(SHML_ETRUNCATED, "the section has fewer than the %zu bytes to map",
                          len);
    }
    if (flags & SHML_PREFAULT)
        shml__win_prefault(p, len);
    *base = p;
    return 0;
}

void shml__win_prefault(const void *p, size_t len)
{
    /* Read one byte per page: writing would be a change. */
    size_t page = shml__os_page_size();
    const volatile char *c = p;
    for (size_t off = 0; off < len; off += page)
        (void)c[off];
}

void shml__win_unmap(const struct shml__obj *o, void *base, size_t len)
{
    (void)o, (void)len;
    if (base)
        UnmapViewOfFile(base);
}

/* A section never shrinks: copies go through the mapping, or a transient view of it. */
static ssize_t win_pread(const struct shml__obj *o, void *base, uint64_t off, void *buf,
                         size_t len)
{
    if (base) {
        memcpy(buf, (const char *)base + off, len);
        return (ssize_t)len;
    }
    void *p = map_whole(o->section, true);
    if (!p)
        return -shml__win_errno(GetLastError());
    MEMORY_BASIC_INFORMATION mbi;
    ssize_t r = (ssize_t)len;
    if (VirtualQuery(p, &mbi, sizeof(mbi)) == 0 || off > mbi.RegionSize ||
        len > mbi.RegionSize - off)
        r = shml__fail(SHML_ETRUNCATED, "the section ends before byte %llu",
                       (unsigned long long)(off + len));
    else
        memcpy(buf, (const char *)p + off, len);
    UnmapViewOfFile(p);
    return r;
}

static ssize_t win_pwrite(const struct shml__obj *o, void *base, uint64_t off, const void *buf,
                          size_t len)
{
    (void)o;
    if (!base)
        return -EBADF;
    memcpy((char *)base + off, buf, len);
    return (ssize_t)len;
}

/* Handles open on the section of `h`, or -1 if the system will not say. */
static long handle_count(HANDLE h)
{
    nt_object_basic obi;
    ULONG ret;
    if (NtQueryObject(h, NT_OBJECT_BASIC_INFORMATION, &obi, sizeof(obi), &ret) < 0)
        return -1;
    return (long)obi.HandleCount;
}

/* Open `a` only to look at it: a handle with the least access, or NULL (GetLastError()). */
static HANDLE open_to_look(const struct shml__addr *a)
{
    wchar_t name[WIDE_NAME_MAX];
    if (shml__win_wide(a->name, name, sizeof(name) / sizeof(name[0])) < 0) {
        SetLastError(ERROR_INVALID_NAME);
        return NULL;
    }
    HANDLE h = OpenFileMappingW(SECTION_QUERY, FALSE, name);
    if (!h && GetLastError() == ERROR_ACCESS_DENIED)
        h = OpenFileMappingW(FILE_MAP_READ, FALSE, name);
    return h;
}

/* How long unlink waits for a segment's holder to let go once told to. */
#define HOLDER_RELEASE_NS ((int64_t)2000000000)
/* How long a handle may stay after the holder's event went (it closes the event first). */
#define HOLDER_GRACE_NS ((int64_t)200000000)

/*
 * Tell the holder of `a`, if it has one, to let go: set the event `<ns>\shmlh-NAME` it waits
 * on (the tool's `__hold`, docs/FORMAT.md "Windows"). Returns whether there was one.
 */
static bool release_holder(const struct shml__addr *a)
{
    wchar_t name[WIDE_NAME_MAX + 16];
    if (object_name(a, HOLDER_PREFIX, name, sizeof(name) / sizeof(name[0])) < 0)
        return false;
    HANDLE ev = OpenEventW(EVENT_MODIFY_STATE, FALSE, name);
    if (!ev)
        return false;
    SetEvent(ev);
    CloseHandle(ev);
    return true;
}

static bool holder_exists(const struct shml__addr *a)
{
    wchar_t name[WIDE_NAME_MAX + 16];
    if (object_name(a, HOLDER_PREFIX, name, sizeof(name) / sizeof(name[0])) < 0)
        return false;
    HANDLE ev = OpenEventW(SYNCHRONIZE, FALSE, name);
    if (ev)
        CloseHandle(ev);
    return ev != NULL || GetLastError() == ERROR_ACCESS_DENIED;
}

/*
 * A section cannot be destroyed while a handle to it is open, and it is destroyed, name and
 * all, when the last one closes. So unlink lets go of what shmlink holds for the segment (its
 * holder process), then says whether the section is gone: 0 when the name is gone (even if it
 * never was: the last close removed it), -EBUSY while other handles keep it, which it then
 * outlives until they close. Bounded: HOLDER_RELEASE_NS at most.
 */
static int win_unlink(const struct shml__addr *a)
{
    HANDLE h = open_to_look(a);
    if (!h) {
        DWORD e = GetLastError();
        /* No such name, as unlink() of a missing file says: nothing held it (a holder's
           handle would keep it), or the last handle went before this call. */
        if (e != ERROR_ACCESS_DENIED)
            return win_error(e, a, "removing");
        return shml__fail(EBUSY, "%s exists (another user's: the caller may not open it), and "
                                 "a Windows section lives until its last handle is closed",
                          a->canon);
    }
    long n = handle_count(h);
    if (n > 1 && release_holder(a)) {
        /* The holder closes its event, then the section: wait for its handle to go. */
        int64_t now = shml__os_mono_ns(), end = now + HOLDER_RELEASE_NS, grace = 0;
        while ((n = handle_count(h)) > 1 && now < end) {
            if (grace == 0 && !holder_exists(a))
                grace = now + HOLDER_GRACE_NS;
            if (grace != 0 && now >= grace)
                break;
            Sleep(1);
            now = shml__os_mono_ns();
        }
    }
    CloseHandle(h);
    if (n == 1)
        return 0; /* ours was the last handle: the section went with it */
    if (n > 1)
        return shml__fail(EBUSY, "%s is still open in %ld handle(s), of this process or others: "
                                 "a Windows section lives until its last handle is closed, and "
                                 "goes then",
                          a->canon, n - 1);
    return shml__fail(EBUSY, "%s exists, and a Windows section lives until its last handle is "
                             "closed",
                      a->canon);
}

/* Nothing to undo beyond what release does: the section goes with its handles. */
static void win_discard(const struct shml__addr *a, const struct shml__obj *o)
{
    (void)a, (void)o;
}

static void win_release(struct shml__obj *o)
{
    if (o->section)
        CloseHandle(o->section);
    if (o->marker)
        CloseHandle(o->marker);
    o->section = NULL;
    o->marker = NULL;
}

/* ---- inspection ---- */

/* Kernel objects of shmlink's own that are not segments (markers, waits, holders). */
static bool own_object(const wchar_t *name, size_t len)
{
    static const wchar_t *const prefixes[] = {L"shmlc-", L"shmlw-", L"shmlh-"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = wcslen(prefixes[i]);
        if (len >= n && wcsncmp(name, prefixes[i], n) == 0)
            return true;
    }
    return false;
}

/* One section found in a namespace directory: `global` says which namespace. */
static int list_entry(const nt_unicode_string *wname, bool global, shml__list_fn each, void *ctx)
{
    char name[4 * WIDE_NAME_MAX];
    int n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, wname->Buffer,
                                wname->Length / sizeof(wchar_t), name, sizeof(name) - 1, NULL,
                                NULL);
    if (n <= 0)
        snprintf(name, sizeof(name), "?"); /* not UTF-16 (or very long): shown, not opened */
    else
        name[n] = '\0';
    char addr[SHML_ADDR_MAX];
    snprintf(addr, sizeof(addr), "win:%s%s", global ? "Global\\" : "", name);
    struct shml__addr a;
    if (n > 0 && shml__addr_parse(addr, &a) == 0)
        return each(ctx, &a, a.canon, NULL);
    /* Not a name shmlink would accept ('/' in it, say): describe it, don't open it. */
    shml__clear_error();
    memset(&a, 0, sizeof(a));
    a.backend = SHML_BACKEND_WINDOWS;
    a.shmid = -1;
    snprintf(a.canon, sizeof(a.canon), "%s", addr);
    struct shml_segment_info outside;
    memset(&outside, 0, sizeof(outside));
    outside.backend = SHML_BACKEND_WINDOWS;
    outside.creator_alive = -1;
    outside.sysv_id = -1;
    outside.status = -EINVAL;
    snprintf(outside.address, sizeof(outside.address), "%s", addr);
    return each(ctx, &a, a.canon, &outside);
}

/* The sections of one object directory (\Sessions\N\BaseNamedObjects, \BaseNamedObjects). */
static int list_dir(const wchar_t *path, bool global, shml__list_fn each, void *ctx)
{
    nt_unicode_string u = {(USHORT)(wcslen(path) * sizeof(wchar_t)),
                           (USHORT)((wcslen(path) + 1) * sizeof(wchar_t)), (PWSTR)path};
    nt_object_attributes oa = {sizeof(oa), NULL, &u, NT_OBJ_CASE_INSENSITIVE, NULL, NULL};
    HANDLE dir;
    LONG st = NtOpenDirectoryObject(&dir, NT_DIRECTORY_QUERY, &oa);
    if (st == NT_STATUS_OBJECT_NAME_NOT_FOUND)
        return 0;
    if (st < 0)
        return shml__fail(st == NT_STATUS_ACCESS_DENIED ? EACCES : EIO,
                          "opening the object directory %ls: NTSTATUS 0x%08lx", path,
                          (unsigned long)st);
    /* One entry per call: Wine answers no other way, and Windows answers this way too. */
    union {
        nt_directory_entry e;
        unsigned char bytes[16384];
    } buf;
    ULONG context = 0, ret;
    int r = 0;
    for (BOOLEAN restart = TRUE; r == 0; restart = FALSE) {
        st = NtQueryDirectoryObject(dir, &buf, sizeof(buf), TRUE, restart, &context, &ret);
        if (st == NT_STATUS_NO_MORE_ENTRIES)
            break;
        if (st < 0 || (st != 0 && st != NT_STATUS_MORE_ENTRIES)) {
            r = shml__fail(EIO, "listing the object directory %ls: NTSTATUS 0x%08lx", path,
                           (unsigned long)st);
            break;
        }
        const nt_directory_entry *e = &buf.e;
        size_t nlen = e->Name.Length / sizeof(wchar_t);
        if (e->TypeName.Length != 7 * sizeof(wchar_t) ||
            wcsncmp(e->TypeName.Buffer, L"Section", 7) != 0 || own_object(e->Name.Buffer, nlen))
            continue;
        r = list_entry(&e->Name, global, each, ctx);
    }
    CloseHandle(dir);
    return r;
}

static int win_list(shml__list_fn each, void *ctx)
{
    DWORD session = 0;
    if (!ProcessIdToSessionId(GetCurrentProcessId(), &session))
        session = 0;
    int r = 0;
    /* In session 0 (services), Local is the global directory: list it once, as Global. */
    if (session != 0) {
        wchar_t path[64];
        swprintf(path, sizeof(path) / sizeof(path[0]), L"\\Sessions\\%lu\\BaseNamedObjects",
                 (unsigned long)session);
        r = list_dir(path, false, each, ctx);
    }
    if (r == 0)
        r = list_dir(L"\\BaseNamedObjects", true, each, ctx);
    return r;
}

/*
 * Has any process the section open? Its name exists only while a handle does, so yes unless
 * the handle we look through is the last one. 1, 0, -1 cannot tell.
 */
static int win_mapped(const struct shml__addr *a)
{
    HANDLE h = open_to_look(a);
    if (!h) {
        DWORD e = GetLastError();
        return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? 0
               : e == ERROR_ACCESS_DENIED                             ? 1
                                                                      : -1;
    }
    long n = handle_count(h);
    CloseHandle(h);
    return n < 0 ? 1 : n > 1;
}

/*
 * describe_unopened: an object directory shows only names and types, so a section the caller
 * may not open has nothing more to show. gc_temporaries and remove_same: no temporaries are
 * ever made (a section cannot be renamed), and a section cannot be removed, only let go.
 */
const struct shml__backend shml__backend_win = {
    .name = "win",
    .create = win_create,
    .publish = NULL,
    .open = win_open,
    .stat = win_stat,
    .map = win_map,
    .unmap = shml__win_unmap,
    .pread = win_pread,
    .pwrite = win_pwrite,
    .sync = NULL,
    .unlink = win_unlink,
    .discard = win_discard,
    .remove_same = NULL,
    .release = win_release,
    .list = win_list,
    .describe_unopened = NULL,
    .mapped = win_mapped,
    .gc_temporaries = NULL,
};

/* ---- the backends of the Windows build ---- */

const struct shml__backend *shml__backend_get(int backend)
{
    switch (backend) {
    case SHML_BACKEND_FILE:
        return &shml__backend_file;
    case SHML_BACKEND_WINDOWS:
        return &shml__backend_win;
    default:
        return NULL; /* posix, sysv, memfd: Linux's */
    }
}
