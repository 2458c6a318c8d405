/* Launcher-internal record of one running sandbox init or exec'd process (main.c owns the table). */
#ifndef AI_SANDBOX_SANDBOX_H
#define AI_SANDBOX_SANDBOX_H
#include "launcher.h"
#include <sys/epoll.h>

enum sb_kind { K_SANDBOX, K_EXEC };
enum sb_state { S_SETUP, S_FAILING, S_RUNNING };
enum sb_role { R_SETUP = 1, R_STATUS, R_OUT, R_ERR, R_IN, R_PIDFD };

struct sandbox {
	uint32_t id, slot;
	enum sb_kind kind;
	enum sb_state state;
	pid_t pid;
	int pidfd, setup_fd, status_fd, out_fd, err_fd, in_fd;
	bool tty, dead, in_close_pending, in_armed, have_cmd_status;
	int cmd_status;
	unsigned fail_stage;
	int fail_errno;
	uint64_t recv_ns, flags;
	char *dir;              /* K_SANDBOX: realpath of SANDBOX_DIR, its tmpfs is mounted */
	char *cgroup2;          /* kept so EXEC can join the same cgroups */
	char **procs;
	uint32_t n_procs;
	uint8_t *inq;           /* pending STDIN bytes, bounded by STDIN_QUEUE_MAX */
	size_t inq_len;
};

struct sandbox *sb_new(uint32_t id, enum sb_kind kind);
struct sandbox *sb_find(uint32_t id);
int sb_watch(struct sandbox *sb, int fd, enum sb_role role, uint32_t events);
void ev_spawn_failed(uint32_t id, unsigned stage, int err, const char *msg);
int make_stdio(bool tty, uint64_t rows, uint64_t cols, int parent[3], int child[3]);
void close_stdio(int fds[3]);
#endif
