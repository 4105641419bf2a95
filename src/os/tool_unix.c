/*
 * tool_unix.c - the tool's platform layer (cli/sys.h) on POSIX systems (Linux): signals,
 * the terminal through termios, serve's command through fork and exec.
 */
#include "sys.h"
#include "cmd_channel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

void cli_sys_init(void)
{
    /* With SIGPIPE ignored, a write to a closed pipe fails with EPIPE and the verb stops
       quietly (see cli_stdout_write()). */
    signal(SIGPIPE, SIG_IGN);
}

void cli_sys_catch_stop(void (*on_stop)(int sig))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a read blocked on stdin returns */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cli_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool cli_sys_reader_gone(int err)
{
    return err == EPIPE;
}

void cli_sys_user_name(uint32_t uid, char *buf, size_t cap)
{
    char pwbuf[1024];
    struct passwd pw, *res = NULL;
    if (getpwuid_r((uid_t)uid, &pw, pwbuf, sizeof pwbuf, &res) == 0 && res && res->pw_name)
        snprintf(buf, cap, "%s", res->pw_name);
    else
        snprintf(buf, cap, "%u", uid);
}

/* ---- keeping a segment: POSIX segments persist by themselves ---- */

int cli_sys_keep(const char *addr, char *why, size_t cap)
{
    (void)addr, (void)why, (void)cap;
    return 0;
}

int cli_sys_hold(const char *addr)
{
    (void)addr;
    fputs("shmlink: __hold: segments need no holder on this system\n", stderr);
    return 2;
}

/* ---- serve's command ---- */

/*
 * In the command's process, before exec: die with serve. A serve killed outright (SIGKILL) can
 * stop nothing itself, and its command, left running, would hold a request nobody will answer
 * for as long as it likes. The kernel sends SIGKILL to the command when serve's thread exits
 * (Linux's PR_SET_PDEATHSIG; it survives exec). If serve died before the call took effect,
 * the command's parent is no longer `parent`.
 */
static void die_with_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(127);
}

/* Close both ends of a pipe that are still open. */
static void close_pipe(int p[2])
{
    for (int i = 0; i < 2; i++) {
        if (p[i] >= 0)
            close(p[i]);
        p[i] = -1;
    }
}

void cli_sys_run_filter(char **argv, const unsigned char *req, size_t len, bool newline,
                        unsigned char *out_buf, size_t cap, struct cli_filter *f)
{
    memset(f, 0, sizeof *f);
    int in[2] = {-1, -1}, out[2] = {-1, -1}, ex[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0) {
        f->failed = CLI_FILTER_PIPE;
        f->err = errno;
        close_pipe(in);
        close_pipe(out);
        close_pipe(ex);
        return;
    }
    pid_t serve_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        f->failed = CLI_FILTER_START;
        f->err = errno;
        close_pipe(in);
        close_pipe(out);
        close_pipe(ex);
        return;
    }
    if (pid == 0) {
        die_with_parent(serve_pid);
        /*
         * Its own process group, so that stopping serve stops what the command started too
         * (kill(-pid) below), and a Ctrl-C meant for serve reaches the command only through
         * serve, which decides what becomes of the request.
         */
        setpgid(0, 0);
        /* The tool ignores SIGPIPE; the command gets the default, as from a shell. */
        signal(SIGPIPE, SIG_DFL);
        if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
            _exit(127);
        execvp(argv[0], argv);
        /* Tell the parent why through the close-on-exec pipe: it stays empty on success. */
        int e = errno;
        ssize_t w = write(ex[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    /* Also here, so the group exists before any kill(-pid) whichever process runs first. */
    setpgid(pid, pid);
    close(in[0]);
    close(out[1]);
    close(ex[1]);
    in[0] = out[1] = ex[1] = -1;
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);

    size_t written = 0;
    size_t nl = newline ? 1 : 0;
    if (len + nl == 0) {
        close(in[1]);
        in[1] = -1;
    }
    while (out[0] >= 0) {
        if (cli_stop_requested) {
            f->stopped = true;
            break;
        }
        struct pollfd pf[2] = {{out[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
        int np = poll(pf, in[1] >= 0 ? 2 : 1, 100);
        if (np < 0 && errno != EINTR)
            break;
        if (np <= 0)
            continue;
        if (in[1] >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = written < len ? write(in[1], req + written, len - written)
                                      : write(in[1], "\n", 1);
            if (w > 0)
                written += (size_t)w;
            /* A command that stops reading (EPIPE) does not get the rest. */
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == len + nl) {
                close(in[1]);
                in[1] = -1;
            }
        }
        if (pf[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            unsigned char scratch[4096];
            unsigned char *dst = f->got < cap ? out_buf + f->got : scratch;
            size_t room = f->got < cap ? cap - f->got : sizeof scratch;
            ssize_t r = read(out[0], dst, room);
            if (r > 0) {
                f->total += (size_t)r;
                if (f->got < cap)
                    f->got += (size_t)r;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(out[0]);
                out[0] = -1;
            }
        }
    }
    if (f->stopped)
        kill(-pid, SIGTERM); /* the command and whatever it started */
    close_pipe(in);
    close_pipe(out);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int exec_err = 0;
    ssize_t er = read(ex[0], &exec_err, sizeof exec_err);
    close_pipe(ex);
    if (er == (ssize_t)sizeof exec_err) {
        f->failed = CLI_FILTER_EXEC;
        f->err = exec_err;
        return;
    }
    if (WIFEXITED(status))
        f->exit_status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        f->signal = WTERMSIG(status);
}

/* ---- top's terminal ---- */

static struct termios saved_tio;
static bool tio_saved;
static volatile sig_atomic_t resized;

static void on_winch(int sig)
{
    (void)sig;
    resized = 1;
}

static const char enter_seq[] = "\033[?1049h\033[?25l"; /* alternate screen, cursor hidden */
static const char leave_seq[] = "\033[?25h\033[?1049l";

static void put_seq(const char *seq, size_t len)
{
    ssize_t w = write(STDOUT_FILENO, seq, len);
    (void)w; /* nothing better to do from a signal handler */
}

/*
 * Ctrl-Z: give the terminal back as it was before stopping, and take it again when continued
 * (then redraw). Only async-signal-safe calls: write, tcsetattr, sigaction, raise.
 */
static void on_tstp(int sig)
{
    int saved_errno = errno;
    put_seq(leave_seq, sizeof leave_seq - 1);
    struct termios raw;
    bool restore = tio_saved && tcgetattr(STDIN_FILENO, &raw) == 0;
    if (restore)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    struct sigaction dfl, mine;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, &mine);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, sig);
    raise(sig);
    /* Stopped here; SIGTSTP is blocked while its handler runs, so unblock it to stop. */
    sigprocmask(SIG_UNBLOCK, &set, &old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    sigaction(sig, &mine, NULL);
    if (restore)
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    put_seq(enter_seq, sizeof enter_seq - 1);
    resized = 1; /* redraw at once */
    errno = saved_errno;
}

bool cli_sys_isatty(int fd)
{
    return isatty(fd) == 1;
}

bool cli_sys_term_enter(bool keys)
{
    if (keys && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        struct termios raw = saved_tio;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
            tio_saved = true;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_winch;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = on_tstp;
    sigaction(SIGTSTP, &sa, NULL);
    fputs(enter_seq, stdout);
    fflush(stdout);
    return true;
}

void cli_sys_term_leave(void)
{
    signal(SIGTSTP, SIG_DFL);
    fputs(leave_seq, stdout);
    fflush(stdout);
    if (tio_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    tio_saved = false;
}

void cli_sys_term_size(size_t *cols, size_t *rows)
{
    struct winsize ws;
    *cols = 0;
    *rows = 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
        *cols = ws.ws_col;
        *rows = ws.ws_row;
    }
}

int cli_sys_term_wait(int64_t deadline, bool keys)
{
    for (;;) {
        if (cli_stop_requested)
            return 1;
        if (resized) {
            resized = 0;
            return 0;
        }
        int64_t left = deadline - cli_mono_ns();
        if (left <= 0)
            return 0;
        struct pollfd pf = {STDIN_FILENO, POLLIN, 0};
        int ms = (int)((left + 999999) / 1000000);
        int n = poll(keys ? &pf : NULL, keys ? 1 : 0, ms);
        if (n > 0 && (pf.revents & POLLIN)) {
            char c[32];
            ssize_t r = read(STDIN_FILENO, c, sizeof c);
            for (ssize_t i = 0; i < r; i++) {
                if (c[i] == 'q' || c[i] == 'Q' || c[i] == 3 /* Ctrl-C without ISIG */)
                    return 1;
            }
            if (r == 0)
                keys = false; /* stdin ended: only signals and the clock now */
        } else if (n > 0) {
            keys = false; /* POLLHUP or POLLERR: the same */
        }
    }
}

ssize_t cli_sys_getline(char **line, size_t *cap, FILE *f)
{
    return getline(line, cap, f);
}
