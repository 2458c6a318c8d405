/* Small helpers without policy: time, logging, raw syscalls glibc 2.36 does not wrap. */
#include "launcher.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Our own copy: bookworm's headers have it, but older ones do not and the layout is ABI. */
struct clone_args_v2 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
		set_tid_size, cgroup;
};

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void logmsg(const char *fmt, ...)
{
	char buf[1024];
	int n = snprintf(buf, sizeof buf, "launcher: ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	(void)!write(2, buf, (size_t)n);
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int write_file_str(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Children of the launcher inherit every fd of every other sandbox; leaking a stdin write end would
 * keep another sandbox from ever seeing EOF, so children keep exactly what they name. */
int close_fds_except(const int *keep, int n)
{
	int sorted[16], m = 0;
	for (int i = 0; i < n && m < 16; i++)
		if (keep[i] >= 0)
			sorted[m++] = keep[i];
	for (int i = 1; i < m; i++)
		for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
			int t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	unsigned lo = 0;
	for (int i = 0; i < m; i++) {
		if ((unsigned)sorted[i] > lo)
			syscall(SYS_close_range, lo, (unsigned)sorted[i] - 1, 0);
		lo = (unsigned)sorted[i] + 1;
	}
	return (int)syscall(SYS_close_range, lo, ~0u, 0);
}

pid_t sys_clone3(uint64_t flags, int *pidfd, int cgroup_fd)
{
	struct clone_args_v2 a;
	memset(&a, 0, sizeof a);
	a.flags = flags;
	a.exit_signal = SIGCHLD;
	if (flags & CLONE_PIDFD)
		a.pidfd = (uint64_t)(uintptr_t)pidfd;
	if (flags & CLONE_INTO_CGROUP)
		a.cgroup = (uint64_t)cgroup_fd;
	return (pid_t)syscall(SYS_clone3, &a, sizeof a);
}

/* The fds of a received message's SCM_RIGHTS records: the first `max` go to fds[], any beyond are
 * closed at once so a sender cannot make us leak them. Returns how many were kept. */
int cmsg_take_fds(const struct msghdr *m, int *fds, int max)
{
	int n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (n < max)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

int sys_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int sys_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

static const char *const stage_names[ST_COUNT] = {
	[ST_PLAN] = "plan", [ST_TARGET] = "target", [ST_SANDBOX_DIR] = "sandbox dir",
	[ST_MOUNT_TMPFS] = "mount tmpfs", [ST_PIPES] = "pipes", [ST_PTY] = "pty", [ST_CGROUP2] = "cgroup2",
	[ST_CGROUP_PROCS_OPEN] = "cgroup procs open", [ST_NETNS_OPEN] = "netns open", [ST_CLONE3] = "clone3",
	[ST_CGROUP_PROCS] = "cgroup procs", [ST_SETNS_NETNS] = "setns netns", [ST_SETNS] = "setns",
	[ST_SETSID] = "setsid", [ST_PDEATHSIG] = "pdeathsig", [ST_MOUNT_RSLAVE] = "mount rslave",
	[ST_MOUNT_OVERLAY] = "mount overlay", [ST_MOUNT_PROC] = "mount proc", [ST_MASK_PROC] = "mask proc",
	[ST_MOUNT_DEV] = "mount dev", [ST_MOUNT_DEVPTS] = "mount devpts", [ST_MOUNT_SYS] = "mount sys",
	[ST_MOUNT_BIND] = "mount bind", [ST_MOUNT_TMP] = "mount tmp", [ST_SETHOSTNAME] = "sethostname",
	[ST_LOOPBACK] = "loopback", [ST_PIVOT_ROOT] = "pivot_root", [ST_UMOUNT_OLDROOT] = "umount oldroot",
	[ST_CAPBSET] = "capability bounding set", [ST_DUMPABLE] = "dumpable", [ST_FORK_COMMAND] = "fork command",
	[ST_SIGNALS] = "signals", [ST_TTY] = "tty", [ST_STDIO] = "stdio", [ST_WORKDIR] = "workdir",
	[ST_SECUREBITS] = "securebits", [ST_SETGROUPS] = "setgroups", [ST_SETRESGID] = "setresgid",
	[ST_SETRESUID] = "setresuid", [ST_CAPABILITIES] = "capabilities", [ST_NO_NEW_PRIVS] = "no_new_privs",
	[ST_LANDLOCK] = "landlock", [ST_SECCOMP] = "seccomp", [ST_EXECVE] = "execve", [ST_NOTIFY] = "approvals supervisor",
	[ST_INIT_BINARY] = "init binary", [ST_ARCHIVE] = "archive", [ST_CRIU_RESTORE] = "criu restore",
	[ST_RESTORED_INIT] = "restored init", [ST_CRIU_DUMP] = "criu dump",
};

const char *stage_name(unsigned stage)
{
	return stage < ST_COUNT && stage_names[stage] ? stage_names[stage] : "unknown";
}

/* In a child before execve: report {stage, errno} on the setup pipe (8 bytes: atomic) and die. */
void child_fail(int setup_fd, unsigned stage, int err)
{
	uint32_t msg[2] = { stage, (uint32_t)err };
	(void)!write(setup_fd, msg, sizeof msg);
	_exit(127);
}

int run_wait(const char *path, char *const argv[], char *const envp[])
{
	pid_t p = fork();
	if (p == 0) {
		execve(path, argv, envp);
		_exit(127);
	}
	int st = 0;
	if (p < 0 || waitpid(p, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 256 + WTERMSIG(st);
}

int run_tar(char *const argv[], char *const envp[])
{
	int r = run_wait("/usr/bin/tar", argv, envp);
	return r == 127 ? run_wait("/bin/tar", argv, envp) : r;
}
