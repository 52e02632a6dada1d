/*
 * mcpw-runner: a tiny process supervisor that runs as the main process of a session container.
 *
 * The MCP Workspace server talks to it over the container's attached stdin/stdout and asks it to
 * spawn commands, which avoids the ~50 ms cost of a `docker exec` per command.
 *
 * Wire protocol (both directions): 9-byte header = type (u8), id (u32 BE), length (u32 BE), then
 * `length` payload bytes (at most 1 MiB).
 *
 *   host -> runner                           runner -> host
 *   0x01 SPAWN      NUL-separated fields     0x81 STARTED  decimal pid
 *   0x02 STDIN      data                     0x82 STDOUT   data
 *   0x03 STDIN_EOF                           0x83 STDERR   data
 *   0x04 SIGNAL     decimal signal number    0x84 EXIT     "<code> <signal> <truncated> <oomKilled>"
 *   0x05 PING                                0x85 ERROR    message (always followed by EXIT)
 *                                            0x86 PONG
 *
 * SPAWN fields: cwd, argc, argv[0..argc-1], envc, env "K=V" x envc, outputCapBytes (0 = no cap),
 * flags (bit 0: stdin frames will follow; otherwise the child's stdin is /dev/null).
 *
 * Design: one thread, one poll() loop over the host's frames (fd 0), every child's stdout/stderr
 * pipe, every child's stdin pipe with pending data, and a self-pipe written by the signal handlers.
 * Frames to the host are written with blocking, complete writes, so frames never interleave.
 *
 * Build: gcc -static -O2 -Wall -Wextra -o dist/mcpw-runner mcpw-runner.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guard.h"

#define HEADER_SIZE 9
#define MAX_PAYLOAD (1u << 20)
#define MAX_PROCS 256
/* Create-guard listeners: one per command, kept until every process of that command has exited. */
#define MAX_LISTENERS 1024
#define READ_CHUNK 65536
/* How long EXIT may wait for pipe EOF after the child was reaped (a background grandchild may hold them). */
#define LINGER_MS 200
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum {
    T_SPAWN = 0x01,
    T_STDIN = 0x02,
    T_STDIN_EOF = 0x03,
    T_SIGNAL = 0x04,
    T_PING = 0x05,
    T_STARTED = 0x81,
    T_STDOUT = 0x82,
    T_STDERR = 0x83,
    T_EXIT = 0x84,
    T_ERROR = 0x85,
    T_PONG = 0x86,
};

/* Which step of the child's setup failed; sent with errno over the CLOEXEC error pipe. */
enum { STAGE_CHDIR = 0, STAGE_EXEC = 1, STAGE_SETUP = 2, STAGE_GUARD = 3 };

struct child_error {
    int stage;
    int err;
};

struct proc {
    int used;
    uint32_t id;
    pid_t pid; /* also the process group id: the child calls setsid() */
    int out_fd, err_fd; /* read ends of the child's stdout/stderr pipes, -1 once closed */
    int in_fd;          /* non-blocking write end of the child's stdin pipe, -1 if none/closed */
    int reaped;
    int status;
    int64_t reaped_at; /* monotonic ms */
    uint64_t cap;      /* output cap in bytes, 0 = unlimited */
    uint64_t sent;     /* stdout+stderr bytes forwarded so far */
    int truncated;
    int oom_killed;
    int signalled; /* the host signalled it (cancel or timeout): the whole group dies with it */
    long long oom_before; /* cgroup oom_kill counter at spawn, -1 if unavailable */
    /* Stdin bytes received from the host but not yet accepted by the pipe: [in_off, in_len). */
    unsigned char *in_buf;
    size_t in_off, in_len, in_cap;
    int in_eof; /* STDIN_EOF received: close in_fd once the buffer drains */
};

static struct proc procs[MAX_PROCS];
static unsigned char host_buf[HEADER_SIZE + MAX_PAYLOAD];
static size_t host_len;
static unsigned char read_buf[READ_CHUNK];
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t term_requested;
static int listeners[MAX_LISTENERS];
static int n_listeners;
static int host_eof;
static int out_dead; /* writing to the host failed: it is gone */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig) {
    int saved = errno;
    char c = (char)sig;
    ssize_t r;
    if (sig != SIGCHLD) term_requested = 1;
    /* A full pipe already guarantees a wake-up, so a failed write is harmless. */
    r = write(sig_pipe[1], &c, 1);
    (void)r;
    errno = saved;
}

/* ---- frames to the host ------------------------------------------------------------------- */

/* Writes all iovecs completely; stdout may be blocking or not (EAGAIN waits for POLLOUT). */
static void write_all(struct iovec *iov, int n) {
    while (n > 0 && !out_dead) {
        ssize_t w = writev(STDOUT_FILENO, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = {STDOUT_FILENO, POLLOUT, 0};
                poll(&p, 1, -1);
                continue;
            }
            out_dead = 1;
            return;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void send_frame(int type, uint32_t id, const void *data, size_t len) {
    unsigned char header[HEADER_SIZE];
    struct iovec iov[2];
    header[0] = (unsigned char)type;
    put_be32(header + 1, id);
    put_be32(header + 5, (uint32_t)len);
    iov[0].iov_base = header;
    iov[0].iov_len = HEADER_SIZE;
    iov[1].iov_base = (void *)data;
    iov[1].iov_len = len;
    write_all(iov, len > 0 ? 2 : 1);
}

static void send_text(int type, uint32_t id, const char *text) {
    send_frame(type, id, text, strlen(text));
}

static void send_exit(uint32_t id, int code, int sig, int truncated, int oom) {
    char msg[64];
    snprintf(msg, sizeof msg, "%d %d %d %d", code, sig, truncated, oom);
    send_text(T_EXIT, id, msg);
}

/* Reports a request that never became a running process: ERROR, then EXIT with `code`. */
static void reject(uint32_t id, int code, const char *message) {
    send_text(T_ERROR, id, message);
    send_exit(id, code, 0, 0, 0);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void close_fd(int *fd) {
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Reads the cgroup's `oom_kill N` counter (v2, else v1); -1 when neither file is readable. */
static long long read_oom_kills(void) {
    static const char *const files[] = {"/sys/fs/cgroup/memory.events",
                                        "/sys/fs/cgroup/memory/memory.oom_control"};
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        char buf[4096];
        ssize_t n;
        char *p;
        int fd = open(files[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        /* Match "oom_kill " only at the start of a line (not "oom_group_kill"). */
        for (p = buf; (p = strstr(p, "oom_kill ")) != NULL; p++) {
            if (p == buf || p[-1] == '\n') return strtoll(p + 9, NULL, 10);
        }
    }
    return -1;
}

static struct proc *find_by_id(uint32_t id) {
    int i;
    for (i = 0; i < MAX_PROCS; i++)
        if (procs[i].used && procs[i].id == id) return &procs[i];
    return NULL;
}

/* Only unreaped entries: a reaped child's pid may already belong to a newer process. */
static struct proc *find_by_pid(pid_t pid) {
    int i;
    for (i = 0; i < MAX_PROCS; i++)
        if (procs[i].used && !procs[i].reaped && procs[i].pid == pid) return &procs[i];
    return NULL;
}

/* ---- child side of spawn ------------------------------------------------------------------- */

/* execve(), falling back to /bin/sh for a script without a shebang, as execvp() does. */
static void try_exec(const char *path, char *const argv[], char *const envp[]) {
    size_t argc = 0, i;
    char **sh_argv;
    execve(path, argv, envp);
    if (errno != ENOEXEC) return;
    while (argv[argc]) argc++;
    sh_argv = malloc((argc + 2) * sizeof *sh_argv);
    if (!sh_argv) {
        errno = ENOEXEC;
        return;
    }
    sh_argv[0] = "/bin/sh";
    sh_argv[1] = (char *)path;
    for (i = 1; i <= argc; i++) sh_argv[i + 1] = argv[i];
    execve("/bin/sh", sh_argv, envp);
    errno = ENOEXEC;
}

/*
 * execvpe() semantics, except that PATH comes from the child's environment `envp` (glibc's
 * execvpe() reads the runner's own environ). Returns the errno to report.
 */
static int exec_search(char *const argv[], char *const envp[]) {
    const char *file = argv[0];
    const char *path = DEFAULT_PATH;
    const char *p;
    size_t flen = strlen(file);
    int saw_eacces = 0;
    char *const *e;

    if (flen == 0) return ENOENT;
    if (strchr(file, '/')) {
        try_exec(file, argv, envp);
        return errno;
    }
    for (e = envp; *e; e++) {
        if (strncmp(*e, "PATH=", 5) == 0) {
            path = *e + 5;
            break;
        }
    }
    for (p = path;; p++) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        char full[PATH_MAX];
        if (dlen + 1 + flen + 1 <= sizeof full) {
            /* An empty PATH entry means the current directory. */
            if (dlen == 0) {
                memcpy(full, file, flen + 1);
            } else {
                memcpy(full, p, dlen);
                full[dlen] = '/';
                memcpy(full + dlen + 1, file, flen + 1);
            }
            try_exec(full, argv, envp);
            if (errno == EACCES) {
                saw_eacces = 1;
            } else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
                       errno != ETIMEDOUT && errno != ELOOP && errno != ENAMETOOLONG) {
                return errno;
            }
        }
        if (*end == '\0') break;
        p = end;
    }
    return saw_eacces ? EACCES : ENOENT;
}

static void child_fail(int err_fd, int stage, int err) {
    struct child_error ce = {stage, err};
    ssize_t r = write(err_fd, &ce, sizeof ce);
    (void)r;
    _exit(127);
}

/*
 * Runs in the forked child; never returns. All runner fds are O_CLOEXEC, so after exec the child
 * holds only its three standard streams (in particular no other child's stdin pipe, which would
 * keep that pipe from ever reaching EOF).
 */
static void child_exec(const char *cwd, char *const argv[], char *const envp[], int in_r, int out_w,
                       int err_w, int err_pipe, int guard_sock) {
    struct sigaction sa;
    sigset_t none;
    int null_fd;

    /* Ignored dispositions survive exec: give the command default signal handling. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (setsid() < 0) child_fail(err_pipe, STAGE_SETUP, errno);
    if (in_r >= 0) {
        if (dup2(in_r, STDIN_FILENO) < 0) child_fail(err_pipe, STAGE_SETUP, errno);
    } else {
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0) child_fail(err_pipe, STAGE_SETUP, errno);
    }
    if (dup2(out_w, STDOUT_FILENO) < 0 || dup2(err_w, STDERR_FILENO) < 0)
        child_fail(err_pipe, STAGE_SETUP, errno);
    if (chdir(cwd) < 0) child_fail(err_pipe, STAGE_CHDIR, errno);
    {
        int e = guard_install(guard_sock);
        if (e) child_fail(err_pipe, STAGE_GUARD, e);
    }
    child_fail(err_pipe, STAGE_EXEC, exec_search(argv, envp));
}

/* ---- host requests ------------------------------------------------------------------------- */

/* Returns the next NUL-terminated field of [*pos, end), or NULL if there is none. */
static char *next_field(unsigned char **pos, unsigned char *end) {
    unsigned char *start = *pos;
    unsigned char *nul;
    if (start >= end) return NULL;
    nul = memchr(start, '\0', (size_t)(end - start));
    if (!nul) return NULL;
    *pos = nul + 1;
    return (char *)start;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
    char *endp;
    unsigned long long v;
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    v = strtoull(s, &endp, 10);
    if (errno || *endp || v > max) return -1;
    *out = v;
    return 0;
}

static void handle_spawn(uint32_t id, unsigned char *payload, size_t len) {
    unsigned char *pos = payload, *end = payload + len;
    char *cwd, **argv = NULL, **envp = NULL;
    uint64_t argc, envc, cap, flags, i;
    struct proc *pr = NULL;
    int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1}, errp[2] = {-1, -1};
    int gsock[2] = {-1, -1}, listener = -1;
    struct child_error ce;
    ssize_t n;
    pid_t pid;
    char msg[PATH_MAX + 128];

    if (find_by_id(id)) {
        reject(id, 126, "duplicate process id");
        return;
    }
    cwd = next_field(&pos, end);
    if (!cwd || parse_u64(next_field(&pos, end), len, &argc) < 0 || argc == 0) goto malformed;
    argv = calloc(argc + 1, sizeof *argv);
    if (!argv) goto malformed;
    for (i = 0; i < argc; i++)
        if (!(argv[i] = next_field(&pos, end))) goto malformed;
    if (parse_u64(next_field(&pos, end), len, &envc) < 0) goto malformed;
    envp = calloc(envc + 1, sizeof *envp);
    if (!envp) goto malformed;
    for (i = 0; i < envc; i++)
        if (!(envp[i] = next_field(&pos, end))) goto malformed;
    if (parse_u64(next_field(&pos, end), UINT64_MAX, &cap) < 0) goto malformed;
    if (parse_u64(next_field(&pos, end), UINT32_MAX, &flags) < 0) goto malformed;

    for (i = 0; i < MAX_PROCS; i++) {
        if (!procs[i].used) {
            pr = &procs[i];
            break;
        }
    }
    if (!pr || n_listeners == MAX_LISTENERS) {
        snprintf(msg, sizeof msg, "too many processes (limit %d)", pr ? MAX_LISTENERS : MAX_PROCS);
        reject(id, 126, msg);
        goto done;
    }

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, gsock) < 0 ||
        ((flags & 1) && pipe2(in, O_CLOEXEC) < 0)) {
        snprintf(msg, sizeof msg, "pipe: %s", strerror(errno));
        reject(id, 126, msg);
        goto close_all;
    }

    memset(pr, 0, sizeof *pr);
    pr->oom_before = read_oom_kills();
    pid = fork();
    if (pid < 0) {
        snprintf(msg, sizeof msg, "fork: %s", strerror(errno));
        reject(id, 126, msg);
        goto close_all;
    }
    if (pid == 0) child_exec(cwd, argv, envp, in[0], out[1], err[1], errp[1], gsock[1]);

    close_fd(&out[1]);
    close_fd(&err[1]);
    close_fd(&errp[1]);
    close_fd(&in[0]);
    close_fd(&gsock[1]);
    /* The child sends its guard's listener before it execs (or exits: then this fails). */
    listener = guard_receive(gsock[0]);
    close_fd(&gsock[0]);
    /*
     * Block until the child has exec'd (the CLOEXEC error pipe closes: read returns 0) or reported
     * a setup failure. This is what makes spawn failures synchronous, like posix_spawn().
     */
    do {
        n = read(errp[0], &ce, sizeof ce);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof ce) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        close_fd(&listener);
        if (ce.stage == STAGE_CHDIR)
            snprintf(msg, sizeof msg, "chdir %s: %s", cwd, strerror(ce.err));
        else if (ce.stage == STAGE_GUARD)
            snprintf(msg, sizeof msg,
                     "the create guard needs seccomp user notification (Linux 5.9 or later) and "
                     "the seccomp system call in the container: %s",
                     strerror(ce.err));
        else if (ce.stage == STAGE_EXEC)
            snprintf(msg, sizeof msg, "exec %s: %s", argv[0], strerror(ce.err));
        else
            snprintf(msg, sizeof msg, "spawn: %s", strerror(ce.err));
        /* Like a shell: 127 = command not found, 126 = found but not runnable / bad cwd. */
        reject(id, ce.stage == STAGE_EXEC && ce.err != EACCES && ce.err != EPERM ? 127 : 126, msg);
        goto close_all;
    }

    if (listener < 0) {
        /* Exec'd without a guard cannot happen (install failures are reported above): be safe. */
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        reject(id, 126, "the create guard did not start");
        goto close_all;
    }
    set_nonblock(listener);
    listeners[n_listeners++] = listener;

    pr->used = 1;
    pr->id = id;
    pr->pid = pid;
    pr->out_fd = out[0];
    pr->err_fd = err[0];
    pr->in_fd = in[1];
    pr->cap = cap;
    set_nonblock(pr->out_fd);
    set_nonblock(pr->err_fd);
    if (pr->in_fd >= 0) set_nonblock(pr->in_fd);
    close_fd(&errp[0]);
    snprintf(msg, sizeof msg, "%d", (int)pid);
    send_text(T_STARTED, id, msg);
    goto done;

malformed:
    reject(id, 126, "malformed SPAWN request");
    goto done;
close_all:
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&err[0]);
    close_fd(&err[1]);
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&gsock[0]);
    close_fd(&gsock[1]);
done:
    free(argv);
    free(envp);
}

static void drop_stdin(struct proc *pr) {
    close_fd(&pr->in_fd);
    free(pr->in_buf);
    pr->in_buf = NULL;
    pr->in_off = pr->in_len = pr->in_cap = 0;
}

/* Writes as much buffered stdin as the pipe accepts; closes it after STDIN_EOF once drained. */
static void flush_stdin(struct proc *pr) {
    while (pr->in_fd >= 0 && pr->in_off < pr->in_len) {
        ssize_t w = write(pr->in_fd, pr->in_buf + pr->in_off, pr->in_len - pr->in_off);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            drop_stdin(pr); /* EPIPE: nobody reads the child's stdin any more */
            return;
        }
        pr->in_off += (size_t)w;
    }
    pr->in_off = pr->in_len = 0;
    if (pr->in_eof) drop_stdin(pr);
}

static void handle_stdin(struct proc *pr, const unsigned char *data, size_t len) {
    if (pr->in_fd < 0 || pr->in_eof || len == 0) return;
    if (pr->in_len + len > pr->in_cap) {
        /* Compact first; grow only if the unwritten bytes plus the new data still do not fit. */
        if (pr->in_off > 0) {
            memmove(pr->in_buf, pr->in_buf + pr->in_off, pr->in_len - pr->in_off);
            pr->in_len -= pr->in_off;
            pr->in_off = 0;
        }
        if (pr->in_len + len > pr->in_cap) {
            size_t cap = pr->in_cap ? pr->in_cap : 65536;
            unsigned char *grown;
            while (cap < pr->in_len + len) cap *= 2;
            grown = realloc(pr->in_buf, cap);
            if (!grown) {
                drop_stdin(pr);
                return;
            }
            pr->in_buf = grown;
            pr->in_cap = cap;
        }
    }
    memcpy(pr->in_buf + pr->in_len, data, len);
    pr->in_len += len;
    flush_stdin(pr);
}

static void handle_signal(struct proc *pr, const unsigned char *data, size_t len) {
    char text[16];
    uint64_t sig;
    if (len == 0 || len >= sizeof text) return;
    memcpy(text, data, len);
    text[len] = '\0';
    if (parse_u64(text, 64, &sig) < 0 || sig == 0) return;
    pr->signalled = 1;
    /* A reaped child's pid may be reused, but its group id stays reserved while the group lives. */
    if (kill(-pr->pid, (int)sig) < 0 && errno == ESRCH && !pr->reaped) kill(pr->pid, (int)sig);
}

static void handle_frame(int type, uint32_t id, unsigned char *payload, size_t len) {
    struct proc *pr;
    switch (type) {
    case T_SPAWN:
        handle_spawn(id, payload, len);
        return;
    case T_PING:
        send_frame(T_PONG, id, NULL, 0);
        return;
    default:
        break;
    }
    /* Frames for processes that already exited are expected (races) and ignored. */
    pr = find_by_id(id);
    if (!pr) return;
    if (type == T_STDIN) {
        handle_stdin(pr, payload, len);
    } else if (type == T_STDIN_EOF) {
        pr->in_eof = 1;
        flush_stdin(pr);
    } else if (type == T_SIGNAL) {
        handle_signal(pr, payload, len);
    }
}

/* Reads available host bytes and handles every complete frame. */
static void read_host(void) {
    size_t off = 0;
    ssize_t n = read(STDIN_FILENO, host_buf + host_len, sizeof host_buf - host_len);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
        host_eof = 1;
        return;
    }
    if (n == 0) {
        host_eof = 1;
        return;
    }
    host_len += (size_t)n;
    while (host_len - off >= HEADER_SIZE) {
        unsigned char *h = host_buf + off;
        uint32_t len = get_be32(h + 5);
        if (len > MAX_PAYLOAD) {
            /* The stream cannot be resynchronised: treat it like a lost host. */
            fprintf(stderr, "mcpw-runner: frame of %u bytes exceeds the 1 MiB limit\n", len);
            host_eof = 1;
            return;
        }
        if (host_len - off - HEADER_SIZE < len) break;
        handle_frame(h[0], get_be32(h + 1), h + HEADER_SIZE, len);
        off += HEADER_SIZE + len;
    }
    /* The buffer holds one maximal frame, so a partial frame always has room to complete. */
    if (off > 0) {
        memmove(host_buf, host_buf + off, host_len - off);
        host_len -= off;
    }
}

/* ---- children ------------------------------------------------------------------------------ */

/* Forwards one chunk from a child pipe, honouring the output cap; closes the pipe on EOF. */
static void read_child(struct proc *pr, int *fd, int type) {
    ssize_t n = read(*fd, read_buf, sizeof read_buf);
    size_t len;
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
        close_fd(fd);
        return;
    }
    if (n == 0) {
        close_fd(fd);
        return;
    }
    len = (size_t)n;
    if (pr->cap > 0 && pr->sent + len > pr->cap) {
        /* Keep draining so the child never blocks on a full pipe, but discard past the cap. */
        len = (size_t)(pr->cap - pr->sent);
        pr->truncated = 1;
    }
    if (len > 0) {
        send_frame(type, pr->id, read_buf, len);
        pr->sent += len;
    }
}

static void reap_children(void) {
    for (;;) {
        int status;
        struct proc *pr;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) return;
        /* Unknown pids are orphans re-parented to us (PID 1 / subreaper): reaping is enough. */
        pr = find_by_pid(pid);
        if (!pr) continue;
        pr->reaped = 1;
        pr->status = status;
        pr->reaped_at = now_ms();
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && pr->oom_before >= 0)
            pr->oom_killed = read_oom_kills() > pr->oom_before;
    }
}

static void send_proc_exit(struct proc *pr) {
    int st = pr->status;
    if (WIFSIGNALED(st))
        send_exit(pr->id, -1, WTERMSIG(st), pr->truncated, pr->oom_killed);
    else
        send_exit(pr->id, WEXITSTATUS(st), 0, pr->truncated, pr->oom_killed);
}

static void release(struct proc *pr) {
    close_fd(&pr->out_fd);
    close_fd(&pr->err_fd);
    drop_stdin(pr);
    pr->used = 0;
}

/*
 * Sends EXIT for every reaped child whose pipes reached EOF, or whose linger time ran out (a
 * background grandchild still holds the pipes; they are closed then). Returns the poll timeout
 * in ms until the next linger deadline, or -1.
 */
static int finish_exited(void) {
    int64_t now = now_ms();
    int timeout = -1;
    int i;
    for (i = 0; i < MAX_PROCS; i++) {
        struct proc *pr = &procs[i];
        if (!pr->used || !pr->reaped) continue;
        if (pr->out_fd >= 0 || pr->err_fd >= 0) {
            int64_t left = pr->reaped_at + LINGER_MS - now;
            if (left > 0) {
                if (timeout < 0 || left < timeout) timeout = (int)left;
                continue;
            }
        }
        /*
         * A cancelled or timed-out command ends with its whole tree: members of its process group
         * that ignored TERM (or are still in their grace period) are killed with the leader.
         */
        if (pr->signalled) kill(-pr->pid, SIGKILL);
        send_proc_exit(pr);
        release(pr);
    }
    return timeout;
}

/* The host is gone (or we were told to stop): kill every process group, reap, report, exit. */
static void shutdown_runner(void) {
    int i;
    for (i = 0; i < MAX_PROCS; i++) {
        struct proc *pr = &procs[i];
        if (!pr->used) continue;
        if (kill(-pr->pid, SIGKILL) < 0 && !pr->reaped) kill(pr->pid, SIGKILL);
    }
    for (i = 0; i < MAX_PROCS; i++) {
        struct proc *pr = &procs[i];
        if (!pr->used) continue;
        if (!pr->reaped) {
            while (waitpid(pr->pid, &pr->status, 0) < 0 && errno == EINTR) {
            }
            pr->reaped = 1;
        }
        /* Best effort: after a stdin EOF the host may still be reading. */
        send_proc_exit(pr);
        release(pr);
    }
    exit(0);
}

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    /* As a container's PID 1 we get no default actions: stop cleanly on these. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int main(int argc, char **argv) {
    /* poll slots: host stdin, signal pipe, per process stdout, stderr, stdin, and guard listeners. */
    static struct pollfd fds[2 + 3 * MAX_PROCS + MAX_LISTENERS];
    static struct {
        struct proc *pr;
        int kind;
    } owners[2 + 3 * MAX_PROCS + MAX_LISTENERS];
    int fd;

    /* Make sure 0-2 are open so no pipe can land on a standard fd number. */
    for (fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0) return 1;
    }
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("mcpw-runner: pipe");
        return 1;
    }
    install_handlers();
    /* The workspace folder, whose mount the create guard covers (see guard.h). */
    if (argc > 1 && guard_set_root(argv[1]) < 0) {
        fprintf(stderr, "mcpw-runner: cannot open the guarded folder %s\n", argv[1]);
        return 1;
    }
    /* Outside a container (tests) orphans of our commands are re-parented to us and reaped. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    for (;;) {
        int nfds = 0, timeout, i, ready;

        if (host_eof || out_dead || term_requested) shutdown_runner();
        timeout = finish_exited();
        if (out_dead) continue;

        fds[nfds] = (struct pollfd){STDIN_FILENO, POLLIN, 0};
        owners[nfds++].pr = NULL;
        fds[nfds] = (struct pollfd){sig_pipe[0], POLLIN, 0};
        owners[nfds++].pr = NULL;
        for (i = 0; i < MAX_PROCS; i++) {
            struct proc *pr = &procs[i];
            if (!pr->used) continue;
            if (pr->out_fd >= 0) {
                fds[nfds] = (struct pollfd){pr->out_fd, POLLIN, 0};
                owners[nfds].pr = pr;
                owners[nfds++].kind = T_STDOUT;
            }
            if (pr->err_fd >= 0) {
                fds[nfds] = (struct pollfd){pr->err_fd, POLLIN, 0};
                owners[nfds].pr = pr;
                owners[nfds++].kind = T_STDERR;
            }
            if (pr->in_fd >= 0 && pr->in_off < pr->in_len) {
                fds[nfds] = (struct pollfd){pr->in_fd, POLLOUT, 0};
                owners[nfds].pr = pr;
                owners[nfds++].kind = T_STDIN;
            }
        }

        for (i = 0; i < n_listeners; i++) {
            fds[nfds] = (struct pollfd){listeners[i], POLLIN, 0};
            owners[nfds].pr = NULL;
            owners[nfds++].kind = i;
        }

        ready = poll(fds, (nfds_t)nfds, timeout);
        if (ready < 0) {
            if (errno == EINTR) continue;
            perror("mcpw-runner: poll");
            return 1;
        }
        if (ready == 0) continue;

        /*
         * Child output first, so data already in a pipe is forwarded before the EXIT of its
         * process; then reaping; host frames last (a SPAWN may reuse a freed slot).
         */
        /* Guard requests first: a process waiting on one may be what a pipe is waiting for. */
        for (i = nfds - 1; i >= 2 && owners[i].pr == NULL; i--) {
            int slot = owners[i].kind;
            if (fds[i].revents & POLLIN) guard_handle(fds[i].fd);
            /* Every process of that command has exited: the listener reports a hang-up. */
            if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                close(listeners[slot]);
                listeners[slot] = listeners[--n_listeners];
            }
        }
        for (i = 2; i < nfds; i++) {
            struct proc *pr = owners[i].pr;
            if (!fds[i].revents || pr == NULL) continue;
            if (owners[i].kind == T_STDOUT && pr->out_fd == fds[i].fd)
                read_child(pr, &pr->out_fd, T_STDOUT);
            else if (owners[i].kind == T_STDERR && pr->err_fd == fds[i].fd)
                read_child(pr, &pr->err_fd, T_STDERR);
            else if (owners[i].kind == T_STDIN && pr->in_fd == fds[i].fd)
                flush_stdin(pr);
        }
        if (fds[1].revents) {
            char drain[64];
            while (read(sig_pipe[0], drain, sizeof drain) > 0) {
            }
            reap_children();
        }
        if (fds[0].revents) read_host();
    }
}
