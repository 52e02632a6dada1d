/*
 * The create guard (see guard.h): a seccomp user-notification supervisor inside the runner.
 *
 * Why emulate instead of "check, then let the kernel continue": with SECCOMP_USER_NOTIF_FLAG_CONTINUE
 * the kernel reads the path from the caller's memory again, after the check, and another thread of
 * the caller can change it in between. Here the runner reads the path once, decides on those bytes,
 * and makes the call itself with them, relative to the caller's own cwd or directory fd (through
 * /proc/<pid>/cwd and /proc/<pid>/fd/<n>), with the caller's umask and filesystem ids. A new fd is
 * installed in the caller with SECCOMP_IOCTL_NOTIF_ADDFD. Refusals never need emulation.
 */
#define _GNU_SOURCE
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__x86_64__)
#define GUARD_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define GUARD_ARCH AUDIT_ARCH_AARCH64
#else
#error "mcpw-runner's create guard supports x86_64 and aarch64"
#endif

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
#define CREATE_FLAGS (O_CREAT | (O_TMPFILE & ~O_DIRECTORY))
#define MAX_GROUPS 1024

/* ---- the filter ---------------------------------------------------------------------------- */

enum { L_NEXT = -1, L_ALLOW = -2, L_NOTIFY = -3, L_ENOSYS = -4 };

struct insn {
    uint16_t code;
    uint32_t k;
    int jt, jf; /* labels: L_NEXT or one of the final returns */
};

/* Calls that may create a name whatever their arguments: always handed to the runner. */
static const int always_notify[] = {
#ifdef __NR_creat
    __NR_creat,
#endif
#ifdef __NR_mkdir
    __NR_mkdir,
#endif
#ifdef __NR_mknod
    __NR_mknod,
#endif
#ifdef __NR_rename
    __NR_rename,
#endif
#ifdef __NR_renameat
    __NR_renameat,
#endif
#ifdef __NR_link
    __NR_link,
#endif
#ifdef __NR_symlink
    __NR_symlink,
#endif
    __NR_mkdirat,   __NR_mknodat, __NR_renameat2, __NR_linkat, __NR_symlinkat,
    /* open_how lives in memory the filter cannot read. */
    __NR_openat2,
};

/* io_uring performs opens, renames and links without these syscalls: programs fall back on ENOSYS. */
static const int refused[] = {__NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register};

static int build_filter(struct sock_filter *out, int cap) {
    struct insn prog[64];
    int n = 0, i, allow, notify, enosys;
    size_t a;
#define EMIT(c, kk, t, f) prog[n++] = (struct insn){(uint16_t)(c), (uint32_t)(kk), (t), (f)}
    EMIT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), L_NEXT, L_NEXT);
    /* Another ABI (i386 system calls on x86_64) has other numbers: refused outright. */
    EMIT(BPF_JMP | BPF_JEQ | BPF_K, GUARD_ARCH, L_NEXT, L_ENOSYS);
    EMIT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), L_NEXT, L_NEXT);
#ifdef __x86_64__
    /* x32 system calls share the arch value but set this bit. */
    EMIT(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, L_ENOSYS, L_NEXT);
#endif
    for (a = 0; a < sizeof refused / sizeof refused[0]; a++)
        EMIT(BPF_JMP | BPF_JEQ | BPF_K, refused[a], L_ENOSYS, L_NEXT);
    for (a = 0; a < sizeof always_notify / sizeof always_notify[0]; a++)
        EMIT(BPF_JMP | BPF_JEQ | BPF_K, always_notify[a], L_NOTIFY, L_NEXT);
    /* open/openat create only with O_CREAT or O_TMPFILE: plain opens never reach the runner. */
#ifdef __NR_open
    EMIT(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, L_NEXT, 2); /* jf skips the next two */
    EMIT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]), L_NEXT, L_NEXT);
    EMIT(BPF_JMP | BPF_JSET | BPF_K, CREATE_FLAGS, L_NOTIFY, L_ALLOW);
#endif
    EMIT(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, L_NEXT, L_ALLOW);
    EMIT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]), L_NEXT, L_NEXT);
    EMIT(BPF_JMP | BPF_JSET | BPF_K, CREATE_FLAGS, L_NOTIFY, L_ALLOW);
#undef EMIT
    allow = n;
    notify = n + 1;
    enosys = n + 2;
    if (n + 3 > cap) return -1;
    for (i = 0; i < n; i++) {
        int targets[2] = {prog[i].jt, prog[i].jf}, off[2], t;
        for (t = 0; t < 2; t++) {
            int label = targets[t];
            int dest = label == L_NEXT     ? i + 1
                       : label == L_ALLOW  ? allow
                       : label == L_NOTIFY ? notify
                       : label == L_ENOSYS ? enosys
                                           : i + 1 + label; /* a small forward skip */
            off[t] = dest - (i + 1);
        }
        out[i] = (struct sock_filter){prog[i].code, (uint8_t)off[0], (uint8_t)off[1], prog[i].k};
    }
    out[allow] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    out[notify] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
    out[enosys] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
    return n + 3;
}

int guard_install(int sock) {
    struct sock_filter filter[80];
    struct sock_fprog prog;
    int len = build_filter(filter, (int)(sizeof filter / sizeof filter[0]));
    int listener;
    char byte = 'g';
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    struct cmsghdr *cmsg;

    if (len < 0) return EINVAL;
    prog.len = (unsigned short)len;
    prog.filter = filter;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return errno;
    listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (listener < 0) return errno;
    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &listener, sizeof(int));
    while (sendmsg(sock, &msg, 0) < 0) {
        if (errno != EINTR) return errno;
    }
    close(listener);
    return 0;
}

int guard_receive(int sock) {
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    struct cmsghdr *cmsg;
    ssize_t n;
    int fd;

    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        if (n == 0) errno = EPIPE;
        return -1;
    }
    cmsg = CMSG_FIRSTHDR(&msg);
    if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
        errno = EPROTO;
        return -1;
    }
    memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
    return fd;
}

/* ---- where the rule applies ---------------------------------------------------------------- */

/* The mount the name rule guards (the workspace); 0 = every mount (no root given, or no statx). */
static uint64_t guarded_mnt;

static int mount_id(int fd, uint64_t *id) {
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0) return -1;
    if (!(stx.stx_mask & STATX_MNT_ID)) return -1;
    *id = stx.stx_mnt_id;
    return 0;
}

int guard_set_root(const char *root) {
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    uint64_t id;
    if (fd < 0) return -1;
    if (mount_id(fd, &id) == 0) guarded_mnt = id;
    close(fd);
    return 0;
}

/* Whether names made in directory `dir` are guarded: it is on the workspace mount. */
static int guarded_dir(int dir) {
    uint64_t id;
    if (guarded_mnt == 0) return 1;
    /* Unknown means guarded: fail closed. */
    return mount_id(dir, &id) < 0 || id == guarded_mnt;
}

/* ---- the caller's view ----------------------------------------------------------------------- */

/* Whether a name host tools would trust may not be created: `.git` and `*.code-workspace`. */
static int forbidden_name(const char *path) {
    size_t len = strlen(path), start;
    static const char suffix[] = ".code-workspace";
    const size_t slen = sizeof suffix - 1;
    while (len > 1 && path[len - 1] == '/') len--;
    start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    len -= start;
    path += start;
    if (len == 4 && strncasecmp(path, ".git", 4) == 0) return 1;
    return len >= slen && strncasecmp(path + len - slen, suffix, slen) == 0;
}

/* Reads a NUL-terminated string at `addr` of the caller (page by page: never across a hole). */
static int read_string(int mem, uint64_t addr, char *buf, size_t size) {
    size_t got = 0;
    if (addr == 0) return -EFAULT;
    while (got < size) {
        uint64_t at = addr + got;
        size_t chunk = 4096 - (size_t)(at & 4095);
        ssize_t r;
        if (chunk > size - got) chunk = size - got;
        r = pread(mem, buf + got, chunk, (off_t)at);
        if (r <= 0) return -EFAULT;
        if (memchr(buf + got, '\0', (size_t)r)) return 0;
        got += (size_t)r;
    }
    return -ENAMETOOLONG;
}

static int read_bytes(int mem, uint64_t addr, void *buf, size_t size) {
    if (addr == 0) return -EFAULT;
    return pread(mem, buf, size, (off_t)addr) == (ssize_t)size ? 0 : -EFAULT;
}

/* The caller's umask and filesystem ids, from /proc/<pid>/status. */
struct creds {
    mode_t umask;
    uid_t fsuid;
    gid_t fsgid;
    int ngroups;
    gid_t groups[MAX_GROUPS];
};

static int read_creds(pid_t pid, struct creds *c) {
    char path[64], buf[16384], *line;
    ssize_t n;
    int fd, found = 0;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -ESRCH;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -ESRCH;
    buf[n] = '\0';
    c->ngroups = 0;
    for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        unsigned long a, b, s, f;
        if (sscanf(line, "Umask: %lo", &a) == 1) {
            c->umask = (mode_t)a;
            found |= 1;
        } else if (sscanf(line, "Uid: %lu %lu %lu %lu", &a, &b, &s, &f) == 4) {
            c->fsuid = (uid_t)f;
            found |= 2;
        } else if (sscanf(line, "Gid: %lu %lu %lu %lu", &a, &b, &s, &f) == 4) {
            c->fsgid = (gid_t)f;
            found |= 4;
        } else if (strncmp(line, "Groups:", 7) == 0) {
            char *p = line + 7, *end;
            for (;;) {
                unsigned long g = strtoul(p, &end, 10);
                if (end == p) break;
                if (c->ngroups == MAX_GROUPS) return -EPERM;
                c->groups[c->ngroups++] = (gid_t)g;
                p = end;
            }
            found |= 8;
        }
    }
    return found == 15 ? 0 : -ESRCH;
}

static int same_groups(const struct creds *c) {
    gid_t mine[MAX_GROUPS];
    int n = getgroups(MAX_GROUPS, mine), i, j;
    if (n != c->ngroups) return 0;
    for (i = 0; i < n; i++) {
        for (j = 0; j < n && mine[j] != c->groups[i]; j++) {
        }
        if (j == n) return 0;
    }
    return 1;
}

/* Takes on the caller's filesystem ids and groups (when they differ from ours); -EPERM if we cannot. */
static int become(const struct creds *c, int *switched) {
    *switched = 0;
    if (c->fsuid == geteuid() && c->fsgid == getegid() && same_groups(c)) return 0;
    if (setgroups((size_t)c->ngroups, c->groups) < 0) return -EPERM;
    *switched = 1;
    setfsgid(c->fsgid);
    setfsuid(c->fsuid);
    if ((uid_t)setfsuid((uid_t)-1) != c->fsuid || (gid_t)setfsgid((gid_t)-1) != c->fsgid) return -EPERM;
    return 0;
}

static void restore(int switched, const gid_t *groups, int ngroups) {
    if (!switched) return;
    setfsuid(geteuid());
    setfsgid(getegid());
    if (setgroups((size_t)ngroups, groups) < 0) perror("mcpw-runner: guard: setgroups");
}

/*
 * The directory a caller's path starts from, as an fd of ours: its cwd or directory fd, or our
 * root for an absolute path (only when the caller has the same root: no chroot inside the box).
 */
static int open_base(pid_t pid, int dirfd, const char *path) {
    char p[64];
    int fd;
    if (path[0] == '/') {
        struct stat theirs, ours;
        snprintf(p, sizeof p, "/proc/%d/root", (int)pid);
        if (stat(p, &theirs) < 0 || stat("/", &ours) < 0) return -ESRCH;
        if (theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino) return -EPERM;
        fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
    }
    if (dirfd == AT_FDCWD)
        snprintf(p, sizeof p, "/proc/%d/cwd", (int)pid);
    else
        snprintf(p, sizeof p, "/proc/%d/fd/%d", (int)pid, dirfd);
    fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) return fd;
    return errno == ENOENT && dirfd != AT_FDCWD ? -EBADF : -errno;
}

/*
 * A path split once into the directory it names an entry in (held as an fd) and that entry's name:
 * the check and the call both use this pair, so nothing is looked up by string after the check.
 */
struct entry {
    int dir;
    char name[NAME_MAX + 1];
};

static int split(int base, const char *path, uint64_t resolve, struct entry *e) {
    char copy[PATH_MAX];
    size_t len = strlen(path), slash;
    struct open_how how;
    if (len == 0) return -ENOENT;
    if (len >= sizeof copy) return -ENAMETOOLONG;
    memcpy(copy, path, len + 1);
    while (len > 1 && copy[len - 1] == '/') copy[--len] = '\0';
    for (slash = len; slash > 0 && copy[slash - 1] != '/'; slash--) {
    }
    if (len - slash > NAME_MAX) return -ENAMETOOLONG;
    memcpy(e->name, copy + slash, len - slash + 1);
    if (e->name[0] == '\0') return -EEXIST; /* the root itself */
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = resolve;
    if (slash == 0) {
        e->dir = (int)syscall(SYS_openat2, base, ".", &how, sizeof how);
    } else {
        copy[slash == 1 ? 1 : slash - 1] = '\0';
        e->dir = (int)syscall(SYS_openat2, base, copy, &how, sizeof how);
    }
    return e->dir < 0 ? -errno : 0;
}

/* Splits a path argument of the caller, relative to its `dirfd`. */
static int split_arg(pid_t pid, int dirfd, const char *path, struct entry *e) {
    int base = open_base(pid, dirfd, path), r;
    if (base < 0) return base;
    r = split(base, path, 0, e);
    close(base);
    return r;
}

/* Whether creating `e` is refused: a trusted name on the guarded mount. */
static int refused_entry(const struct entry *e) {
    return forbidden_name(e->name) && guarded_dir(e->dir);
}

/* ---- one notification ---------------------------------------------------------------------- */

struct call {
    int listener;
    struct seccomp_notif *req;
    int mem;
    mode_t umask; /* the caller's: applied here, since the runner creates with umask 0 */
};

static void respond(int listener, uint64_t id, int64_t val, int err) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.val = val;
    resp.error = err;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
        perror("mcpw-runner: guard: respond");
}

/* Installs our `fd` in the caller as its result (atomically with the answer where the kernel can). */
static void respond_fd(int listener, uint64_t id, int fd, int cloexec) {
    struct seccomp_notif_addfd add;
    int r;
    memset(&add, 0, sizeof add);
    add.id = id;
    add.srcfd = (uint32_t)fd;
    add.newfd_flags = cloexec ? O_CLOEXEC : 0;
#ifdef SECCOMP_ADDFD_FLAG_SEND
    add.flags = SECCOMP_ADDFD_FLAG_SEND;
    r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    if (r >= 0 || errno != EINVAL) {
        if (r < 0 && errno != ENOENT) respond(listener, id, 0, -errno);
        return;
    }
    add.flags = 0; /* before Linux 5.14: add, then answer with its number */
#endif
    r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    if (r < 0)
        respond(listener, id, 0, errno == ENOENT ? -EINTR : -errno);
    else
        respond(listener, id, r, 0);
}

#define ARG(i) (c->req->data.args[i])

/* Reads path argument `i` into `buf` (PATH_MAX bytes); -errno on failure. */
static int path_arg(struct call *c, int i, char *buf) {
    return read_string(c->mem, ARG(i), buf, PATH_MAX);
}

/*
 * An open that may create. The entry is split once; a dangling symlink in its place (which the
 * kernel would follow to create its target) is followed here, hop by hop, so the name finally
 * created is the one checked; the open then refuses to follow anything (O_NOFOLLOW).
 */
static int do_open(struct call *c, int dirfd, uint64_t path_addr, struct open_how how) {
    char path[PATH_MAX];
    struct entry e;
    int base, fd, want_nonblock, r, hops;
    r = read_string(c->mem, path_addr, path, sizeof path);
    if (r < 0) return r;
    base = open_base(c->req->pid, dirfd, path);
    if (base < 0) return base;
    if (how.flags & CREATE_FLAGS) how.mode &= ~(uint64_t)c->umask;
    /* Never block the runner on a FIFO without a peer, never take a controlling terminal. */
    want_nonblock = (how.flags & O_NONBLOCK) != 0;
    how.flags |= O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    if ((how.flags & O_TMPFILE) == O_TMPFILE) {
        /* An unnamed file in a directory: any name it gets later comes through linkat. */
        fd = (int)syscall(SYS_openat2, base, path, &how, sizeof how);
        r = fd < 0 ? -errno : fd;
        close(base);
        if (r >= 0 && !want_nonblock) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return r;
    }
    r = split(base, path, how.resolve, &e);
    close(base);
    if (r < 0) return r;
    for (hops = 0; !(how.flags & (O_EXCL | O_NOFOLLOW)) && how.resolve == 0; hops++) {
        struct stat st;
        char link[PATH_MAX];
        ssize_t n;
        struct entry next;
        if (fstatat(e.dir, e.name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode)) break;
        if (hops == 40) {
            close(e.dir);
            return -ELOOP;
        }
        n = readlinkat(e.dir, e.name, link, sizeof link - 1);
        if (n < 0) break;
        link[n] = '\0';
        if (link[0] == '/') {
            base = open_base(c->req->pid, AT_FDCWD, link);
            if (base < 0) {
                close(e.dir);
                return base;
            }
            r = split(base, link, 0, &next);
            close(base);
        } else {
            r = split(e.dir, link, 0, &next);
        }
        close(e.dir);
        if (r < 0) return r;
        e = next;
    }
    if ((how.flags & O_CREAT) && refused_entry(&e)) {
        close(e.dir);
        return -EPERM;
    }
    if (!(how.flags & O_EXCL)) how.flags |= O_NOFOLLOW;
    fd = (int)syscall(SYS_openat2, e.dir, e.name, &how, sizeof how);
    r = fd < 0 ? -errno : fd;
    close(e.dir);
    if (r >= 0 && !want_nonblock) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return r;
}

/* The calls that make a name, by the argument positions of their paths; -1 = not there. */
struct shape {
    int nr;
    int olddir, oldpath; /* the existing entry (rename, link) or -1 */
    int newdir, newpath; /* the entry created; dir -1 = AT_FDCWD */
    int flags;           /* renameat2/linkat flags argument, or -1 */
    int mode, dev;       /* mkdir/mknod mode and device, or -1 */
    int symlink_target;  /* symlink's target string argument, or -1 */
};

static const struct shape shapes[] = {
#ifdef __NR_mkdir
    {__NR_mkdir, -1, -1, -1, 0, -1, 1, -1, -1},
#endif
#ifdef __NR_mknod
    {__NR_mknod, -1, -1, -1, 0, -1, 1, 2, -1},
#endif
#ifdef __NR_rename
    {__NR_rename, -1, 0, -1, 1, -1, -1, -1, -1},
#endif
#ifdef __NR_renameat
    {__NR_renameat, 0, 1, 2, 3, -1, -1, -1, -1},
#endif
#ifdef __NR_link
    {__NR_link, -1, 0, -1, 1, -1, -1, -1, -1},
#endif
#ifdef __NR_symlink
    {__NR_symlink, -1, -1, -1, 1, -1, -1, -1, 0},
#endif
    {__NR_mkdirat, -1, -1, 0, 1, -1, 2, -1, -1},
    {__NR_mknodat, -1, -1, 0, 1, -1, 2, 3, -1},
    {__NR_renameat2, 0, 1, 2, 3, 4, -1, -1, -1},
    {__NR_linkat, 0, 1, 2, 3, 4, -1, -1, -1},
    {__NR_symlinkat, -1, -1, 1, 2, -1, -1, -1, 0},
};

static int is_rename(int nr) {
#ifdef __NR_rename
    if (nr == __NR_rename) return 1;
#endif
#ifdef __NR_renameat
    if (nr == __NR_renameat) return 1;
#endif
    return nr == __NR_renameat2;
}

static int is_link(int nr) {
#ifdef __NR_link
    if (nr == __NR_link) return 1;
#endif
    return nr == __NR_linkat;
}

static int is_mknod(int nr) {
#ifdef __NR_mknod
    if (nr == __NR_mknod) return 1;
#endif
    return nr == __NR_mknodat;
}

/* mkdir, mknod, rename, link and symlink: every path read once and split once, then performed. */
static int make_entry(struct call *c, const struct shape *sh) {
    char oldp[PATH_MAX], newp[PATH_MAX], target[PATH_MAX];
    struct entry from = {-1, ""}, to = {-1, ""};
    unsigned flags = sh->flags >= 0 ? (unsigned)ARG(sh->flags) : 0;
    pid_t pid = (pid_t)c->req->pid;
    int r;
    if ((r = path_arg(c, sh->newpath, newp)) < 0) return r;
    if (sh->oldpath >= 0 && (r = path_arg(c, sh->oldpath, oldp)) < 0) return r;
    if (sh->symlink_target >= 0 && (r = path_arg(c, sh->symlink_target, target)) < 0) return r;
    r = split_arg(pid, sh->newdir >= 0 ? (int)ARG(sh->newdir) : AT_FDCWD, newp, &to);
    if (r < 0) return r;
    if (refused_entry(&to)) {
        r = -EPERM;
        goto out;
    }
    if (sh->oldpath >= 0) {
        int olddir = sh->olddir >= 0 ? (int)ARG(sh->olddir) : AT_FDCWD;
        if (is_link(sh->nr) && (flags & AT_EMPTY_PATH) && oldp[0] == '\0') {
            /* Linking an open file (an O_TMPFILE made visible) by its fd. */
            char fdpath[64];
            snprintf(fdpath, sizeof fdpath, "/proc/%d/fd/%d", (int)pid, olddir);
            r = linkat(AT_FDCWD, fdpath, to.dir, to.name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
            goto out;
        }
        r = split_arg(pid, olddir, oldp, &from);
        if (r < 0) goto out;
        /* An exchange gives the old path the new one's entry too. */
        if (is_rename(sh->nr) && (flags & RENAME_EXCHANGE) && refused_entry(&from)) {
            r = -EPERM;
            goto out;
        }
    }
    if (is_rename(sh->nr))
        r = renameat2(from.dir, from.name, to.dir, to.name, flags);
    else if (is_link(sh->nr))
        r = linkat(from.dir, from.name, to.dir, to.name, (int)flags);
    else if (sh->symlink_target >= 0)
        r = symlinkat(target, to.dir, to.name);
    else if (is_mknod(sh->nr))
        r = mknodat(to.dir, to.name, (mode_t)ARG(sh->mode) & ~c->umask, (dev_t)ARG(sh->dev));
    else
        r = mkdirat(to.dir, to.name, (mode_t)ARG(sh->mode) & ~c->umask & 01777);
    if (r < 0) r = -errno;
out:
    if (from.dir >= 0) close(from.dir);
    if (to.dir >= 0) close(to.dir);
    return r;
}

/* Performs the caller's call with the arguments read once; returns the result or -errno. */
static int emulate(struct call *c, int *is_fd, int *cloexec) {
    int nr = c->req->data.nr, r;
    size_t i;
    struct open_how how;
    *is_fd = 0;
    memset(&how, 0, sizeof how);
    switch (nr) {
#ifdef __NR_open
    case __NR_open:
        how.flags = (uint32_t)ARG(1);
        how.mode = (how.flags & CREATE_FLAGS) ? (mode_t)ARG(2) & 07777 : 0;
        *is_fd = 1;
        *cloexec = (how.flags & O_CLOEXEC) != 0;
        return do_open(c, AT_FDCWD, ARG(0), how);
#endif
#ifdef __NR_creat
    case __NR_creat:
        how.flags = O_CREAT | O_WRONLY | O_TRUNC;
        how.mode = (mode_t)ARG(1) & 07777;
        *is_fd = 1;
        *cloexec = 0;
        return do_open(c, AT_FDCWD, ARG(0), how);
#endif
    case __NR_openat:
        how.flags = (uint32_t)ARG(2);
        how.mode = (how.flags & CREATE_FLAGS) ? (mode_t)ARG(3) & 07777 : 0;
        *is_fd = 1;
        *cloexec = (how.flags & O_CLOEXEC) != 0;
        return do_open(c, (int)ARG(0), ARG(1), how);
    case __NR_openat2: {
        size_t size = (size_t)ARG(3);
        if (size < 24) return -EINVAL; /* OPEN_HOW_SIZE_VER0: flags, mode, resolve */
        if (size > sizeof how) return -E2BIG;
        r = read_bytes(c->mem, ARG(2), &how, size);
        if (r < 0) return r;
        *is_fd = 1;
        *cloexec = (how.flags & O_CLOEXEC) != 0;
        return do_open(c, (int)ARG(0), ARG(1), how);
    }
    default:
        break;
    }
    for (i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (shapes[i].nr == nr) return make_entry(c, &shapes[i]);
    return -ENOSYS;
}

void guard_handle(int listener) {
    static struct seccomp_notif_sizes sizes;
    static struct seccomp_notif *req;
    static gid_t own_groups[MAX_GROUPS];
    static struct creds creds;
    struct call c;
    char mem_path[64];
    int result, is_fd = 0, cloexec = 0, switched = 0, own_ngroups;

    if (!req) {
        if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) return;
        req = calloc(1, sizes.seccomp_notif > sizeof *req ? sizes.seccomp_notif : sizeof *req);
        if (!req) return;
    }
    memset(req, 0, sizes.seccomp_notif > sizeof *req ? sizes.seccomp_notif : sizeof *req);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) return; /* EINTR, or the caller left */

    c.listener = listener;
    c.req = req;
    snprintf(mem_path, sizeof mem_path, "/proc/%d/mem", (int)req->pid);
    c.mem = open(mem_path, O_RDONLY | O_CLOEXEC);
    /* The pid is the caller's only while its notification is pending: check after opening. */
    if (c.mem < 0 || ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0 ||
        read_creds(req->pid, &creds) < 0) {
        if (c.mem >= 0) close(c.mem);
        respond(listener, req->id, 0, -EPERM);
        return;
    }
    c.umask = creds.umask;
    own_ngroups = getgroups(MAX_GROUPS, own_groups);
    if (own_ngroups < 0) own_ngroups = 0;
    result = become(&creds, &switched);
    if (result == 0) {
        mode_t old = umask(0); /* modes are masked with the caller's umask in emulate() */
        result = emulate(&c, &is_fd, &cloexec);
        umask(old);
    }
    restore(switched, own_groups, own_ngroups);
    close(c.mem);
    if (result >= 0 && is_fd) {
        respond_fd(listener, req->id, result, cloexec);
        close(result);
    } else if (result < 0) {
        respond(listener, req->id, 0, result);
    } else {
        respond(listener, req->id, result, 0);
    }
}
