/*
 * ai-sandbox-launcher: shared declarations.
 *
 * Threat model (whole launcher): the helper (root, trusted for policy) sends plans over stdin; the
 * launcher still validates every host path it mounts, unmounts or writes so that a confused helper
 * cannot make it touch host paths outside <state-dir>, cgroupfs and nsfs. The sandboxed command is
 * fully untrusted: it controls everything inside its overlay root, its pipes/pty, and can race us on
 * anything it can write. Nothing the command writes is ever parsed by the launcher except the bytes
 * it sends on its stdout/stderr, which are forwarded verbatim as OUTPUT payloads.
 */
#ifndef AI_SANDBOX_LAUNCHER_H
#define AI_SANDBOX_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <sched.h>
#include <stdint.h>
#include <sys/types.h>

/* clone3 flags older headers lack (the values are ABI) */
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* ---- protocol constants (docs/launcher-protocol.md) ---- */
enum {
	REQ_SPAWN = 1, REQ_STDIN = 2, REQ_KILL = 3, REQ_RESIZE = 4, REQ_EXEC = 5,
	REQ_CLEANUP = 6, REQ_UMOUNT = 7, REQ_MARK = 8, REQ_PREPARE = 9, REQ_RESTORE = 10, REQ_RELEASE = 11, REQ_DUMP = 12,
};
enum {
	EV_SPAWNED = 101, EV_SPAWN_FAILED = 102, EV_OUTPUT = 103, EV_EXIT = 104, EV_ACK = 105, EV_DUMPED = 106,
	EV_STATUS = 107,
};
enum {
	T_ARG = 1, T_ENV = 2, T_LOWER = 3, T_SANDBOX_DIR = 4, T_TMPFS_BYTES = 5, T_HOSTNAME = 6,
	T_WORKDIR = 7, T_UID = 8, T_GID = 9, T_MOUNT = 10, T_CGROUP2 = 11, T_CGROUP_PROCS = 12,
	T_FLAGS = 13, T_ROWS = 14, T_COLS = 15, T_NETNS = 16, T_TARGET = 20, T_PATH = 30, T_KIND = 31,
	T_PID = 40, T_RECV_NS = 41, T_EXEC_NS = 42, T_ERRNO = 43, T_STAGE = 44, T_MESSAGE = 45,
	T_STATUS = 46, T_INIT_STATUS = 47, T_EXIT_NS = 48, T_PIPE_STDIN = 49, T_PIPE_STDOUT = 50,
	T_PIPE_STDERR = 51, T_PIPE_STATUS = 52, T_IMAGES_DIR = 53, T_UPPER_ARCHIVE = 54, T_CRIU = 55,
	T_INHERIT = 56, T_EXTERNAL = 57, T_LOG = 58, T_NET_KEY = 59, T_NOTIFY_SOCKET = 60, T_NOTIFY_NRS = 61,
	T_CRIU_NS = 62, T_TAR_NS = 63,
};
#define FLAG_ALLOW_LISTEN (1ULL << 0)
#define FLAG_TTY (1ULL << 1)
#define FLAG_NO_LANDLOCK (1ULL << 2)
/* SPAWN into a prepared slot: set up everything, then wait for RELEASE before the command starts */
#define FLAG_HOLD (1ULL << 3)
#define FLAGS_KNOWN (FLAG_ALLOW_LISTEN | FLAG_TTY | FLAG_NO_LANDLOCK | FLAG_HOLD)

#define MAX_FRAME (16u << 20)
#define OUTPUT_CHUNK 65536
#define STDIN_QUEUE_MAX (1u << 20)

/* ---- setup stages: numbers cross the setup pipe, names go into SPAWN_FAILED ---- */
enum stage {
	ST_PLAN, ST_TARGET, ST_SANDBOX_DIR, ST_MOUNT_TMPFS, ST_PIPES, ST_PTY, ST_CGROUP2, ST_CGROUP_PROCS_OPEN,
	ST_NETNS_OPEN, ST_CLONE3, ST_CGROUP_PROCS, ST_SETNS_NETNS, ST_SETNS, ST_SETSID, ST_PDEATHSIG,
	ST_MOUNT_RSLAVE, ST_MOUNT_OVERLAY, ST_MOUNT_PROC, ST_MASK_PROC, ST_MOUNT_DEV, ST_MOUNT_DEVPTS,
	ST_MOUNT_SYS, ST_MOUNT_BIND, ST_MOUNT_TMP, ST_SETHOSTNAME, ST_LOOPBACK, ST_PIVOT_ROOT,
	ST_UMOUNT_OLDROOT, ST_CAPBSET, ST_DUMPABLE, ST_FORK_COMMAND, ST_SIGNALS, ST_TTY, ST_STDIO,
	ST_WORKDIR, ST_SECUREBITS, ST_SETGROUPS, ST_SETRESGID, ST_SETRESUID, ST_CAPABILITIES,
	ST_NO_NEW_PRIVS, ST_LANDLOCK, ST_SECCOMP, ST_EXECVE, ST_INIT_BINARY, ST_ARCHIVE, ST_CRIU_RESTORE,
	ST_RESTORED_INIT, ST_NOTIFY, ST_CRIU_DUMP, ST_COUNT
};
const char *stage_name(unsigned stage);
/* A warm slot's init reports {SETUP_READY, 0} on the setup pipe once its plan-free steps are done;
 * no stage has this number, so the launcher cannot mistake it for a failure record. */
#define SETUP_READY 0xfffffffeu
/* The plan channel of a warm slot carries one 4-byte header (plan length, with the stdio fds as
 * SCM_RIGHTS) and then the SPAWN body in chunks: one SEQPACKET message of a whole 16 MiB plan would
 * need a physically contiguous kernel buffer of that size, 64 KiB chunks stay cheap order-2 allocations. */
#define PLAN_CHUNK 65536

/* ---- decoded request (pointers into the request frame; valid while it is handled) ---- */
struct str { const char *p; uint32_t len; };
#define PLAN_MAX_REPEAT 4096
#define MAX_CGROUP_PROCS 8
struct plan {
	uint32_t n_arg, n_env, n_lower, n_mount, n_procs, n_inherit, n_external;
	struct str *arg, *env, *lower, *mount, *procs, *inherit, *external; /* malloc'd arrays of n_* */
	struct str sandbox_dir, hostname, workdir, cgroup2, netns, path;
	struct str images_dir, upper_archive, criu, log, net_key; /* RESTORE, DUMP */
	struct str notify_socket, notify_nrs;                     /* SPAWN: approvals (unotify) */
	uint64_t tmpfs_bytes, uid, gid, flags, rows, cols, target, kind;
	uint64_t have; /* bit per tag seen (single-valued tags) */
};
#define HAVE(pl, tag) (((pl)->have >> (tag)) & 1)
int plan_decode(int type, const uint8_t *body, uint32_t len, struct plan *pl, const char **why);
int spawn_plan_check(const struct plan *pl, const char **why); /* shape of a SPAWN plan; -errno */
void plan_free(struct plan *pl);
char *str_dup0(struct str s); /* NUL-terminated heap copy */
bool str_has_nul(struct str s);

/* ---- hardened command setup shared by SPAWN (child of the init) and EXEC ---- */
struct cmd_spec {
	char **argv, **envp;
	const char *workdir;
	uid_t uid;
	gid_t gid;
	bool tty, allow_listen, no_landlock;
	int in_fd, out_fd, err_fd; /* child ends; with TTY all three are the pty slave */
	int setup_fd;              /* CLOEXEC write end of the setup pipe */
	int notify_fd;             /* connected to the approvals supervisor, or -1 */
	const uint32_t *notify_nrs; /* syscalls the notify filter hands to it */
	uint32_t n_notify;
};
int notify_install(const struct cmd_spec *c); /* notify.c: in the command, right before seccomp_install */
struct plan;
int notify_connect(uint32_t id, const struct plan *pl, const char **why); /* host side: fd or -errno */
void command_exec(const struct cmd_spec *c) __attribute__((noreturn));
void child_fail(int setup_fd, unsigned stage, int err) __attribute__((noreturn));
char **strv_from(const struct str *v, uint32_t n);

/* ---- initbin.c: the in-sandbox init binary (init.c) ---- */
int initbin_open(const char *path);            /* at startup; -errno (SPAWNs then fail "init binary") */
int initbin_layer_setup(const char *base_dir);  /* after statedir_setup: <base>/init-layer, the top lower */
const char *initbin_layer(void);                /* that layer's path, NULL if it could not be made */
int initbin_err(void);                          /* why not (errno) */
int initbin_archive_check(const char *sandbox_dir); /* RESTORE: upper/.ai-sandbox must not exist */

/* ---- global launcher state ---- */
struct globals {
	char *state_dir, *sb_dir, *base_dir; /* realpaths */
	int cap_last_cap;
	int landlock_abi;
	int self_pidns_fd;
	int self_pidfd; /* lets a fresh child notice a launcher that died before PDEATHSIG was set */
	int self_utsns_fd; /* RESTORE sets the hostname by entering the restored UTS ns and coming back */
	struct rlimit_saved { unsigned long cur, max; } nofile;
};
extern struct globals G;

/* ---- util.c ---- */
uint64_t now_ns(void);
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int write_all(int fd, const void *buf, size_t len);
int close_fds_except(const int *keep, int n);
int write_file_str(int fd, const char *s);
pid_t sys_clone3(uint64_t flags, int *pidfd, int cgroup_fd);
/* In a child of the launcher (it blocks): fork + execve + wait. The exit status (127: could not exec),
 * 256 + the signal that killed it, or -errno when it could not fork or wait. */
int run_wait(const char *path, char *const argv[], char *const envp[]);
int run_tar(char *const argv[], char *const envp[]); /* run_wait of /usr/bin/tar, else /bin/tar */
struct msghdr;
int cmsg_take_fds(const struct msghdr *m, int *fds, int max); /* SCM_RIGHTS: first max kept, rest closed */
int sys_pidfd_open(pid_t pid);
int sys_pidfd_send_signal(int pidfd, int sig);

/* ---- mounts.c ---- */
int statedir_setup(const char *arg);
int validate_sandbox_dir(struct str s, char **out_real, const char **why);
int path_under(const char *path, const char *dir_real, char **out_real, const char **why);
int sandbox_tmpfs_create(const char *dir, uint64_t bytes);
void sandbox_tmpfs_destroy(const char *dir);
int sandbox_tmpfs_resize(const char *dir, uint64_t bytes);
int do_cleanup(struct str dir, const char **why);
int do_umount(struct str path, const char **why);
int do_mark(struct str path, uint64_t kind, const char **why);
struct root_spec {
	const char *dir;        /* SANDBOX_DIR (tmpfs) */
	const char *overlay_opts;
	const char *hostname;
	struct str *mounts;
	uint32_t n_mounts;
	int rootfd;             /* the overlay root once build_root_base ran, else -1 */
};
/* In the init; fail via child_fail. build_root = build_root_base (overlay, /proc, /dev: nothing that
 * depends on the command or the network namespace), unless it ran already (a warm slot prepared with
 * LOWER), then the rest (/sys, binds, /tmp, hostname, lo, pivot_root). */
void build_root_base(struct root_spec *r, int setup_fd);
void build_root(struct root_spec *r, int setup_fd);
void loopback_up(int setup_fd);               /* `lo` up in our netns; fails via child_fail */
int sandbox_upper_dev(const char *dir);        /* <dir>/upper/dev before the overlay (launcher) */
int sandbox_upper_dev_verify(const char *dir); /* RESTORE: no foreign device nodes in upper/dev */
/* The writable layer as a fresh sandbox leaves it: upper/ holds only dev exactly as sandbox_upper_dev
 * makes it and an empty root-owned 1777 tmp (overlayfs' own xattrs only). Anything else: false. */
bool upper_is_skeleton(const char *upper);
int sandbox_upper_skeleton(const char *dir);   /* make that layer in <dir>/upper (RESTORE of one) */
char *overlay_options(const struct plan *pl, const char *dir, const char **why);
int validate_lowers(const struct plan *pl, const char **why);
int validate_mounts(const struct plan *pl, const char **why);

/* ---- caps.c ---- */
int drop_bounding_set(void);
int lock_securebits(void);
int clear_capabilities(void);
int keep_only_cap_kill(void);

/* ---- seccomp.c ---- */
int seccomp_prepare(void);             /* at startup: compile both filter variants */
int seccomp_install(bool allow_listen); /* in the command, last step before execve */

/* ---- landlock.c ---- */
int landlock_abi_version(void);
int landlock_apply(bool allow_listen); /* returns 0 when not supported */

/* ---- spawn.c / exec.c / main.c ---- */
struct sandbox;
void handle_spawn(uint32_t id, struct plan *pl, const uint8_t *body, uint32_t len, uint64_t recv_ns);
void handle_prepare(uint32_t id, struct plan *pl);
void handle_exec(uint32_t id, struct plan *pl, uint64_t recv_ns);
void handle_restore(uint32_t id, struct plan *pl, uint64_t recv_ns);

/* ---- netns_pool.c ---- */
#define NETNS_POOL_DEFAULT 8
#define NETNS_POOL_MAX 64
int netns_pool_start(unsigned n); /* at startup, before any sandbox: returns the fd to watch, or -1 */
void netns_pool_refill(void);     /* request what the pool lacks (cheap; call when no setup runs) */
void netns_pool_on_readable(void);
int netns_pool_take(void);        /* a never-used netns fd (caller closes it), or -1: CLONE_NEWNET */
bool is_netns_fd(int fd);         /* an nsfs file of a network namespace */
void netns_pool_shutdown(void);

/* ---- probe.c ---- */
int probe_main(void);

#endif

/* Debug-only phase timing (make TIMING=1): children stamp CLOCK_MONOTONIC into a shared page and
 * the launcher logs the deltas at SPAWNED. Compiled out otherwise. */
#ifdef LAUNCHER_TIMING
extern uint64_t *tmark;
#define TMARK(i) (tmark[(i)] = now_ns())
#else
#define TMARK(i) ((void)0)
#endif
