// The public headers from C++11: they compile with -pedantic, the shared structs have the
// sizes and alignments C gives them (so C and C++ processes can share them), the options'
// init macros initialise in C++ too, and a forked C++ child and its parent exchange messages
// through a channel and a mutex in a segment.
#include <shmlink.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

static_assert(sizeof(shml_mutex) == 64 && alignof(shml_mutex) == 8, "mutex layout as in C");
static_assert(sizeof(shml_event) == 32 && alignof(shml_event) == 32, "event layout as in C");
static_assert(sizeof(shml_sem) == 32 && alignof(shml_sem) == 32, "semaphore layout as in C");

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            std::fprintf(stderr, "%s:%d: %s failed (%s)\n", __FILE__, __LINE__, #cond,   \
                         shml_last_error());                                             \
            std::exit(1);                                                                \
        }                                                                                \
    } while (0)

namespace {

const int64_t kTimeout = 10 * 1000 * 1000 * 1000LL;

struct Shared {
    shml_mutex lock;
    uint64_t counter;
};

int child(const std::string &chan, const std::string &seg_addr)
{
    shml_channel *ch = nullptr;
    CHECK(shml_channel_open(chan.c_str(), SHML_PRODUCER, nullptr, &ch) == 0);
    shml_segment *seg = nullptr;
    CHECK(shml_segment_open(seg_addr.c_str(), nullptr, &seg) == 0);
    Shared *sh = static_cast<Shared *>(shml_segment_data(seg));
    for (int i = 0; i < 1000; i++) {
        CHECK(shml_mutex_lock(&sh->lock, kTimeout) == 0);
        sh->counter++;
        CHECK(shml_mutex_unlock(&sh->lock) == 0);
        std::string msg = "message " + std::to_string(i);
        if (i % 2) {
            CHECK(shml_send(ch, msg.data(), msg.size(), kTimeout) == (ssize_t)msg.size());
        } else {
            void *slot = nullptr;
            CHECK(shml_claim(ch, msg.size(), &slot, kTimeout) == 0);
            std::memcpy(slot, msg.data(), msg.size());
            CHECK(shml_commit(ch, msg.size()) == 0);
        }
    }
    CHECK(shml_segment_close(seg) == 0);
    CHECK(shml_channel_close(ch) == 0);
    return 0;
}

} // namespace

int main()
{
    const std::string chan = "posix:/shml-cxx-chan-" + std::to_string(getpid());
    const std::string seg_addr = "posix:/shml-cxx-seg-" + std::to_string(getpid());

    shml_channel_opts opts = SHML_CHANNEL_OPTS_INIT;
    opts.kind = SHML_QUEUE;
    opts.capacity = 4096;
    opts.max_msg = 64;
    shml_channel *ch = nullptr;
    CHECK(shml_channel_create(chan.c_str(), &opts, &ch) == 0);
    shml_segment *seg = nullptr;
    shml_segment_opts seg_opts = SHML_SEGMENT_OPTS_INIT; // the defaults, as nullptr gives
    CHECK(seg_opts.size == sizeof(seg_opts) && seg_opts.mode == 0600);
    CHECK(shml_segment_create(seg_addr.c_str(), sizeof(Shared), &seg_opts, &seg) == 0);
    Shared *sh = static_cast<Shared *>(shml_segment_data(seg));
    CHECK(shml_mutex_init(&sh->lock) == 0);

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(child(chan, seg_addr));

    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        char buf[64];
        ssize_t n;
        if (i % 3) {
            n = shml_recv(ch, buf, sizeof buf, kTimeout);
        } else {
            const void *p = nullptr;
            size_t len = 0;
            CHECK(shml_peek(ch, &p, &len, kTimeout) == 0);
            std::memcpy(buf, p, len);
            n = (ssize_t)len;
            CHECK(shml_release(ch) == 0);
        }
        CHECK(n > 0);
        if (std::string(buf, (size_t)n) != "message " + std::to_string(i))
            bad++;
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(bad == 0);
    CHECK(sh->counter == 1000);

    CHECK(shml_segment_close(seg) == 0);
    CHECK(shml_channel_close(ch) == 0);
    CHECK(shml_segment_unlink(seg_addr.c_str()) == 0);
    CHECK(shml_segment_unlink(chan.c_str()) == 0);
    std::puts("C++: 1000 messages and 1000 locked increments across processes");
    return 0;
}
