/*
 * The command's seccomp filter: an allowlist, default ENOSYS (so new syscalls look "not implemented"
 * and libc falls back), an explicit EPERM list for the dangerous ones (docs/launcher-protocol.md,
 * "Seccomp"), argument checks for clone (no CLONE_NEW*), ioctl (no TIOCSTI/TIOCLINUX), personality
 * (only the default / query) and listen (ALLOW_LISTEN). Foreign architectures kill the process.
 *
 * Threat model: the filter is compiled once at launcher start (before any sandbox exists) into two BPF
 * programs (listen allowed / denied) and loaded in the command child as its last step before execve,
 * after no_new_privs. Compiling once keeps libseccomp's allocations out of every spawn.
 */
#include "launcher.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <stddef.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static const char *const allowed[] = {
	"accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "cachestat", "capget", "capset",
	"chdir", "chmod", "chown", "clock_getres", "clock_gettime", "clock_nanosleep", "close", "close_range",
	"connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
	"epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "execve", "execveat",
	"exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod",
	"fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock",
	"fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex", "futex_requeue",
	"futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64",
	"getegid", "geteuid", "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid",
	"getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list",
	"getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
	"getuid", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
	"io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "ioprio_get", "ioprio_set", "io_setup",
	"io_submit", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
	"lgetxattr", "link", "linkat", "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat",
	"madvise", "map_shadow_stack", "membarrier", "memfd_create", "mincore", "mkdir", "mkdirat", "mknod",
	"mknodat", "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
	"mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv",
	"msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat", "open", "openat",
	"openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
	"pkey_mprotect", "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
	"process_mrelease", "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
	"readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages", "removexattr", "rename",
	"renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
	"rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
	"rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
	"sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
	"semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid",
	"setgid", "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid",
	"setreuid", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
	"set_tid_address", "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
	"sigaltstack", "signalfd", "signalfd4", "socket", "socketpair", "splice", "stat", "statfs", "statx",
	"symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
	"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create",
	"timerfd_gettime", "timerfd_settime", "times", "tkill", "truncate", "umask", "uname", "unlink",
	"unlinkat", "utime", "utimensat", "utimes", "vfork", "wait4", "waitid", "write", "writev",
};

static const char *const denied_eperm[] = {
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "ptrace", "process_vm_readv",
	"process_vm_writev", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "open_by_handle_at",
	"name_to_handle_at", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
	"reboot", "swapon", "swapoff", "syslog", "userfaultfd", "acct", "quotactl", "lookup_dcookie", "fsopen",
	"fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "iopl", "ioperm",
	"settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "vhangup", "pidfd_getfd",
};

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

static struct sock_fprog progs[2]; /* [allow_listen] */

static int add(scmp_filter_ctx c, uint32_t act, const char *name, unsigned n, const struct scmp_arg_cmp *a)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* unknown to this libseccomp: stays at the default (ENOSYS) */
	int r = seccomp_rule_add_array(c, act, nr, n, a);
	if (r < 0)
		logmsg("seccomp rule %s: %s", name, strerror(-r));
	return r;
}

static int compile(bool allow_listen, struct sock_fprog *out)
{
	scmp_filter_ctx c = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
	if (!c)
		return -ENOMEM;
	int r = seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (!r)
		r = seccomp_attr_set(c, SCMP_FLTATR_CTL_NNP, 0); /* we set no_new_privs ourselves, earlier */
	if (!r)
		r = seccomp_attr_set(c, SCMP_FLTATR_CTL_OPTIMIZE, 2); /* binary tree: fewer BPF steps per syscall */
	for (size_t i = 0; !r && i < sizeof allowed / sizeof *allowed; i++)
		r = add(c, SCMP_ACT_ALLOW, allowed[i], 0, NULL);
	for (size_t i = 0; !r && i < sizeof denied_eperm / sizeof *denied_eperm; i++)
		r = add(c, SCMP_ACT_ERRNO(EPERM), denied_eperm[i], 0, NULL);
	if (!r)
		r = add(c, allow_listen ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EPERM), "listen", 0, NULL);
	/* clone: flags are a full 64-bit word; any namespace bit -> EPERM (one rule per bit so the two
	 * actions never overlap). clone3 hides its flags in memory: ENOSYS makes libc fall back to clone. */
	struct scmp_arg_cmp none = SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0);
	if (!r)
		r = add(c, SCMP_ACT_ALLOW, "clone", 1, &none);
	for (int bit = 0; !r && bit < 64; bit++) {
		uint64_t f = 1ULL << bit;
		if (!(NS_FLAGS & f))
			continue;
		struct scmp_arg_cmp one = SCMP_A0(SCMP_CMP_MASKED_EQ, f, f);
		r = add(c, SCMP_ACT_ERRNO(EPERM), "clone", 1, &one);
	}
	/* clone3 needs no rule: it is not allowlisted, so it gets the default ENOSYS (libseccomp refuses
	 * a rule whose action equals the default) */
	/* ioctl and personality: allowed here, narrowed by the prologue below (argument checks
	 * on the low 32 bits, which libseccomp 2.5 cannot express as "not one of") */
	if (!r)
		r = add(c, SCMP_ACT_ALLOW, "ioctl", 0, NULL);
	if (!r)
		r = add(c, SCMP_ACT_ALLOW, "personality", 0, NULL);
	if (r) {
		seccomp_release(c);
		return r;
	}
	/* libseccomp 2.5 can only export to an fd: go through a memfd and keep the bytes */
	int fd = memfd_create("seccomp", MFD_CLOEXEC);
	if (fd < 0 || (r = seccomp_export_bpf(c, fd)) < 0) {
		r = fd < 0 ? -errno : r;
		if (fd >= 0)
			close(fd);
		seccomp_release(c);
		return r;
	}
	seccomp_release(c);
	off_t len = lseek(fd, 0, SEEK_END);
	struct sock_filter *f = malloc((size_t)len);
	if (!f || pread(fd, f, (size_t)len, 0) != len) {
		free(f);
		close(fd);
		return -EIO;
	}
	close(fd);
	out->filter = f;
	out->len = (unsigned short)((size_t)len / sizeof *f);
	return 0;
}

static int prepend_prologue(struct sock_fprog *p);

int seccomp_prepare(void)
{
	int r = compile(false, &progs[0]);
	if (!r)
		r = compile(true, &progs[1]);
	for (int i = 0; !r && i < 2; i++)
		r = prepend_prologue(&progs[i]);
	return r;
}

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "define the audit arch for this architecture"
#endif
#define LO32(off) (offsetof(struct seccomp_data, args) + 8 * (off)) /* little-endian: low word first */

/* Put in front of the libseccomp program, so one filter is attached per spawn (each attach costs the
 * kernel a JIT and a per-syscall cache pass: 0.38 ms for the main program and 0.1 ms more for a
 * second filter on this host). The ioctl request and personality are unsigned int: only their low 32
 * bits count, so a value with junk in the high bits cannot slip past a 64-bit compare (libseccomp 2.5
 * cannot express "low word not one of"). Everything else, and foreign arches, falls through to the
 * libseccomp program (which kills foreign arches); cBPF jumps are relative, so it runs unchanged. */
static const struct sock_filter arg_prologue[] = {
	/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 0, 10),
	/* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
	/* 4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LO32(1)),
	/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 5, 0),
	/* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 4, 5),
	/* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, 4),
	/* 8 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LO32(0)),
	/* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* PER_LINUX */, 2, 0),
	/* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu /* query */, 1, 0),
	/* 11 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	/* 12: the libseccomp program */
};
#define PROLOGUE_LEN (sizeof arg_prologue / sizeof *arg_prologue)

static int prepend_prologue(struct sock_fprog *p)
{
	if (p->len + PROLOGUE_LEN > BPF_MAXINSNS)
		return -E2BIG;
	struct sock_filter *f = malloc((p->len + PROLOGUE_LEN) * sizeof *f);
	if (!f)
		return -ENOMEM;
	memcpy(f, arg_prologue, sizeof arg_prologue);
	memcpy(f + PROLOGUE_LEN, p->filter, p->len * sizeof *f);
	free(p->filter);
	p->filter = f;
	p->len = (unsigned short)(p->len + PROLOGUE_LEN);
	return 0;
}

int seccomp_install(bool allow_listen)
{
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[allow_listen ? 1 : 0]);
}
