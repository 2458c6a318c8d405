/* Launcher-internal record of one running sandbox init or exec'd process (main.c owns the table). */
#ifndef AI_SANDBOX_SANDBOX_H
#define AI_SANDBOX_SANDBOX_H
#include "launcher.h"
#include <sys/epoll.h>

enum sb_kind { K_SANDBOX, K_EXEC, K_DUMP }; /* K_DUMP: a DUMP's dumper (dump.c) */
/* S_PREPARING: PREPAREd init not READY yet; S_READY: warm slot waiting for its SPAWN;
 * S_SETUP: between SPAWN and execve (the only state netns refills wait for);
 * S_RESTORING: RESTORE's restorer (tar, then criu) runs; pid/pidfd are the restorer's until it exits;
 * S_DUMPING: a DUMP's dumper (criu, then tar) runs; setup_fd is its result pipe, read when it exits. */
enum sb_state { S_SETUP, S_FAILING, S_RUNNING, S_PREPARING, S_READY, S_RESTORING, S_DUMPING };
enum sb_role { R_SETUP = 1, R_STATUS, R_OUT, R_ERR, R_IN, R_PIDFD };

struct sandbox {
	uint32_t id, slot;
	enum sb_kind kind;
	enum sb_state state;
	pid_t pid;
	int pidfd, setup_fd, status_fd, out_fd, err_fd, in_fd;
	int plan_fd;            /* warm slot: launcher end of the plan channel until the plan is sent */
	bool tty, dead, in_close_pending, in_armed, have_cmd_status;
	bool warm;              /* made by PREPARE */
	bool net_pooled;        /* a warm slot waiting in a pooled netns (a SPAWN without NETNS keeps it) */
	bool ack_pending;       /* PREPARE not answered yet: a failure is an ACK, not SPAWN_FAILED */
	int cmd_status;
	unsigned fail_stage;
	int fail_errno;
	uint64_t recv_ns, flags;
	uint64_t status_ns; /* LAUNCHER_TIMING: when the command's status arrived */
	char *dir;              /* K_SANDBOX: realpath of SANDBOX_DIR, its tmpfs is mounted */
	char *cgroup2;          /* kept so EXEC can join the same cgroups */
	char **procs;
	uint32_t n_procs;
	char *netns;            /* NETNS given at PREPARE (NULL: none), a later SPAWN must match */
	char *overlay_opts;     /* PREPARE with LOWER: the overlay its init mounted, a later SPAWN must match */
	char *archive;          /* DUMP: the upper layer's archive (remembered if the layer was the skeleton) */
	uint64_t tmpfs_bytes;   /* current size= of the tmpfs (a SPAWN into a warm slot may change it) */
	uint8_t *inq;           /* pending STDIN bytes, bounded by STDIN_QUEUE_MAX */
	size_t inq_len;
	bool have_pipes;        /* non-TTY sandbox: pipe_ino are its stdin/stdout/stderr/status pipes */
	uint64_t pipe_ino[4];   /* reported in SPAWNED as pipe:[N], what CRIU calls them at dump time */
	char *restore_log;      /* RESTORE / DUMP: criu's log (its tail becomes the failure's MESSAGE) */
	char *restore_hostname; /* RESTORE: set in the restored UTS namespace before SPAWNED */
};

struct sandbox *sb_new(uint32_t id, enum sb_kind kind, enum sb_state state);
/* A child SPAWN, PREPARE, EXEC or RESTORE has just cloned, as the table records it. */
struct sb_start {
	uint32_t id;
	enum sb_kind kind;
	enum sb_state state;
	pid_t pid;
	int pidfd, setup_fd, status_fd; /* the launcher's ends; status_fd -1 for EXEC */
	int stdio[3];                   /* launcher ends of stdin, stdout, stderr; -1 for PREPARE */
	bool tty;
	uint64_t recv_ns, flags;
};
/* Records the child and watches its pidfd (and, unless S_RESTORING, its setup and status pipes).
 * NULL when the table cannot take it: the child is then killed and reaped, its pidfd closed, and the
 * caller fails with ENOMEM (the other fds are still the caller's). */
struct sandbox *sb_start(const struct sb_start *s);
void sb_set_state(struct sandbox *sb, enum sb_state state);
void sb_fail(struct sandbox *sb, unsigned stage, int err);
struct sandbox *sb_find(uint32_t id);
int sb_watch(struct sandbox *sb, int fd, enum sb_role role, uint32_t events);
void ev_spawn_failed(uint32_t id, unsigned stage, int err, const char *msg);
void ev_spawn_failed_text(uint32_t id, unsigned stage, int err, const char *text); /* MESSAGE verbatim */
void ev_spawned(struct sandbox *sb); /* SPAWNED, then output is watched */
void sb_note_pipes(struct sandbox *sb);
void sb_close(int *fd);
void sb_release(struct sandbox *sb);
bool sb_pid_known(pid_t pid);
bool sb_restoring_into(const struct sandbox *except, const char *cgroup2); /* another RESTORE running there? */
void restore_done(struct sandbox *sb, int restorer_status);
void criu_log_tail(const char *path, char *out, size_t cap); /* restore.c: criu's last error lines */
bool tlv_abs_path_ok(struct str s);                          /* restore.c: absolute, no newline */
bool tlv_key_ok(struct str k);                               /* restore.c: [a-zA-Z0-9-]+, at most 64 */
void handle_dump(uint32_t id, struct plan *pl);              /* dump.c */
void dump_done(struct sandbox *sb, int dumper_status);
/* Archives of a skeleton upper layer this launcher wrote, by file identity (dev, inode, size, mtime,
 * ctime): a RESTORE of one makes the layer (sandbox_upper_skeleton) instead of running tar on it. In
 * memory only: a new launcher extracts as before. */
void skeleton_archive_remember(const char *path);
bool skeleton_archive_known(const char *path);
void skeleton_archive_reset(void); /* at start, once G.base_dir is set */
/* DUMPED: STAGE "" when done (stage DUMP_DONE), else the failed stage with ERRNO and MESSAGE; CRIU_NS / TAR_NS
 * the times */
#define DUMP_DONE ST_COUNT
void ev_dumped(uint32_t id, unsigned stage, int err, const char *msg, uint64_t criu_ns, uint64_t tar_ns);
void ev_dumped_text(uint32_t id, unsigned stage, int err, const char *text, uint64_t criu_ns, uint64_t tar_ns);
void restore_kill_strays(const struct sandbox *sb);
void ev_prepare_failed(uint32_t id, unsigned stage, int err, const char *msg);
void ev_ack(uint32_t id, int err, const char *msg);
int make_stdio(bool tty, uint64_t rows, uint64_t cols, int parent[3], int child[3]);
void close_stdio(int fds[3]);

/* ---- hostsetup.c: the launcher side of a new sandbox (SPAWN, PREPARE, RESTORE; cgroups: EXEC) ---- */
struct cgroup_fds {
	int cg2;                     /* CGROUP2 directory: clone3's CLONE_INTO_CGROUP target */
	int procs[MAX_CGROUP_PROCS]; /* v1 cgroup.procs files the child joins */
	uint32_t n_procs;
};
/* -errno with *stage / *why for SPAWN_FAILED; on failure nothing stays open (c->cg2 == -1) */
int cgroup_fds_open(struct cgroup_fds *c, const char *cgroup2, char *const *procs, uint32_t n, unsigned *stage,
		    const char **why);
void cgroup_fds_close(struct cgroup_fds *c);
int cgroup_fds_keep(const struct cgroup_fds *c, int *keep, int n); /* appends the procs fds; new n */
void cgroup_fds_join(const struct cgroup_fds *c, int setup_fd);   /* in the child; fails via child_fail */
struct host_setup {
	char *dir;               /* realpath of SANDBOX_DIR */
	char *cgroup2, **procs;  /* copies of CGROUP2 / CGROUP_PROCS; with dir, the sandbox's at commit */
	uint32_t n_procs;
	struct cgroup_fds cg;
	int netns_fd;            /* NETNS (checked) or a pooled namespace for the child, else -1 */
	bool mounted;            /* the tmpfs is on dir */
	uint64_t tmpfs_bytes;
	int setup[2], status[2]; /* [0] the launcher's (non-blocking), [1] the child's */
};
void host_setup_init(struct host_setup *h);
/* SANDBOX_DIR (validated, created) and the copies: stage ST_SANDBOX_DIR, then ST_PLAN (ENOMEM) */
int host_setup_dir(struct host_setup *h, const struct plan *pl, unsigned *stage, const char **why);
/* Cgroup files, NETNS (if given), tmpfs, [init binary and upper/dev], setup and status pipes */
int host_setup_open(struct host_setup *h, const struct plan *pl, const char *netns, bool install_init,
		    unsigned *stage, const char **why);
/* clone3 (CLONE_INTO_CGROUP CGROUP2, CLONE_PIDFD, + flags) into child(arg), which must not return;
 * then closes the child's pipe ends. The pid, or -errno. */
pid_t host_setup_clone(struct host_setup *h, uint64_t flags, int *pidfd, void (*child)(void *), void *arg);
void host_setup_commit(struct host_setup *h, struct sandbox *sb); /* dir, cgroups, tmpfs size to sb */
void host_setup_undo(struct host_setup *h);                      /* failure: nothing left behind */
#endif
