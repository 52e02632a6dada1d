/*
 * The create guard: what a file tool may not create, a command may not create either.
 *
 * Every command the runner starts gets a seccomp filter that hands each call able to create a name
 * (open/openat with O_CREAT or O_TMPFILE, openat2, creat, mkdir, mknod, rename, link, symlink and
 * their *at forms) to the runner. The runner reads the path from the caller's memory once, refuses
 * a final component that host tools would trust (a `.git` directory or file: VS Code's git
 * extension opens nested repositories and runs their configured programs; a `*.code-workspace`),
 * and otherwise performs the call itself with exactly the bytes it checked, in the caller's place
 * (its cwd or directory fd, umask and filesystem ids), so swapping the path string after the check
 * changes nothing. io_uring, which could create names without these syscalls, is refused.
 */
#ifndef MCPW_GUARD_H
#define MCPW_GUARD_H

/*
 * In the forked child, just before exec: installs the filter and sends its listener fd over
 * `sock`. Returns 0, or an errno value when the kernel cannot provide the guard.
 */
int guard_install(int sock);

/*
 * In the runner, once: the folder whose mount the name rule guards (the workspace). Names outside
 * that mount (/tmp, caches) are not restricted. Without it, or when the kernel cannot tell mounts
 * apart, every mount is guarded. Returns -1 when `root` cannot be opened.
 */
int guard_set_root(const char *root);

/* In the runner: receives the listener fd a child sent over `sock`; -1 with errno on failure. */
int guard_receive(int sock);

/* In the runner: answers one pending notification on `listener` (call when it polls readable). */
void guard_handle(int listener);

#endif
