/*
 * ai-sandbox-launcher: the event loop, framing, and the sandbox table.
 *
 * Threat model: stdin carries the helper's requests (trusted for policy, validated for shape: a frame
 * over 16 MiB or shorter than its header is a protocol error and we exit 2). Sandboxed code reaches
 * this process only through its stdout/stderr pipes (or pty), whose bytes are forwarded verbatim and
 * never interpreted, and through its exit. The netns pool's maker child (our code) only sends
 * namespace fds, which are type-checked before use (netns_pool.c). A warm slot's init (our code, not
 * yet running anything sandboxed) writes only the 8-byte READY / failure records on its setup pipe; the
 * launcher never reads its plan channel. Everything is one thread with
 * level-triggered epoll: no request or sandbox can block the loop except writing events to stdout,
 * which is deliberate backpressure toward the helper. Writes to a sandbox's stdin are non-blocking with a bounded queue.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

struct globals G;
#ifdef LAUNCHER_TIMING
#include <sys/mman.h>
uint64_t *tmark;
#endif
static int epfd;
static struct sandbox **table;
static uint32_t table_cap;
static char **done_dirs; /* tmpfs of exited sandboxes, mounted until CLEANUP (snapshots read upper/) */
static uint32_t n_done_dirs, cap_done_dirs;
/* sandboxes/execs between SPAWN/EXEC and their execve, and DUMPs and RESTOREs running (busy() below):
 * netns refills wait for 0. A PREPARE in progress does not count: warm slots are background work
 * themselves and must not delay refills. */
static uint32_t n_busy;
#define STDIN_SLOT 0xffffffu
#define POOL_SLOT 0xfffffeu

/* ------------------------------------------------------------------ events */

/* One static buffer: the largest event is OUTPUT (64 KiB + header). Never written by children. */
static uint8_t evbuf[OUTPUT_CHUNK + 1024];
static size_t evlen;

static void ev_begin(uint8_t type, uint32_t id)
{
	evlen = 4;
	evbuf[evlen++] = type;
	memcpy(evbuf + evlen, &id, 4);
	evlen += 4;
}
static void ev_raw(const void *p, size_t n)
{
	if (n > sizeof evbuf - evlen)
		n = sizeof evbuf - evlen;
	memcpy(evbuf + evlen, p, n);
	evlen += n;
}
static void ev_tlv(uint8_t tag, const void *p, uint32_t n)
{
	if (n > sizeof evbuf - evlen - 5)
		n = (uint32_t)(sizeof evbuf - evlen - 5);
	evbuf[evlen++] = tag;
	memcpy(evbuf + evlen, &n, 4);
	evlen += 4;
	ev_raw(p, n);
}
static void ev_u64(uint8_t tag, uint64_t v) { ev_tlv(tag, &v, 8); }
static void ev_str(uint8_t tag, const char *s) { ev_tlv(tag, s, (uint32_t)strlen(s)); }

static void shutdown_all(int code) __attribute__((noreturn));

/* Blocking on purpose: a slow helper slows the sandboxes' output, it does not grow our memory. */
static void ev_send(void)
{
	uint32_t n = (uint32_t)(evlen - 4);
	memcpy(evbuf, &n, 4);
	size_t off = 0;
	while (off < evlen) {
		ssize_t w = write(1, evbuf + off, evlen - off);
		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = 1, .events = POLLOUT };
			poll(&p, 1, -1);
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else {
			logmsg("stdout closed (%s): helper gone", strerror(errno));
			shutdown_all(0);
		}
	}
}

void ev_spawn_failed_text(uint32_t id, unsigned stage, int err, const char *text)
{
	ev_begin(EV_SPAWN_FAILED, id);
	ev_u64(T_ERRNO, (uint64_t)err);
	ev_str(T_STAGE, stage_name(stage));
	ev_str(T_MESSAGE, text);
	ev_send();
}

void ev_spawn_failed(uint32_t id, unsigned stage, int err, const char *msg)
{
	char m[512];
	snprintf(m, sizeof m, "%s%s%s", msg && *msg ? msg : "", msg && *msg ? ": " : "", strerror(err));
	ev_spawn_failed_text(id, stage, err, m);
}

void ev_dumped_text(uint32_t id, unsigned stage, int err, const char *text, uint64_t criu_ns, uint64_t tar_ns)
{
	ev_begin(EV_DUMPED, id);
	ev_u64(T_ERRNO, (uint64_t)err);
	ev_str(T_STAGE, stage == DUMP_DONE ? "" : stage_name(stage));
	if (stage != DUMP_DONE)
		ev_str(T_MESSAGE, text);
	ev_u64(T_CRIU_NS, criu_ns);
	ev_u64(T_TAR_NS, tar_ns);
	ev_send();
}

void ev_dumped(uint32_t id, unsigned stage, int err, const char *msg, uint64_t criu_ns, uint64_t tar_ns)
{
	char m[512];
	snprintf(m, sizeof m, "%s%s%s", msg && *msg ? msg : "", msg && *msg ? ": " : "", strerror(err));
	ev_dumped_text(id, stage, err, m, criu_ns, tar_ns);
}

void ev_ack(uint32_t id, int err, const char *msg)
{
	ev_begin(EV_ACK, id);
	ev_u64(T_ERRNO, (uint64_t)err);
	if (err && msg && *msg)
		ev_str(T_MESSAGE, msg);
	ev_send();
}

/* A PREPARE that failed: ACK with the slot's id, errno and the failed stage in MESSAGE. */
void ev_prepare_failed(uint32_t id, unsigned stage, int err, const char *msg)
{
	char m[600];
	snprintf(m, sizeof m, "%s: %s%s%s", stage_name(stage), msg && *msg ? msg : "", msg && *msg ? ": " : "",
		 strerror(err));
	ev_ack(id, err ? err : EIO, m);
}

/* ------------------------------------------------------------------ sandbox table */

/* counted in n_busy */
static bool busy(enum sb_state s)
{
	return s == S_SETUP || s == S_DUMPING || s == S_RESTORING;
}

void sb_set_state(struct sandbox *sb, enum sb_state state)
{
	n_busy = n_busy - busy(sb->state) + busy(state);
	sb->state = state;
}

struct sandbox *sb_new(uint32_t id, enum sb_kind kind, enum sb_state state)
{
	uint32_t slot = 0;
	while (slot < table_cap && table[slot])
		slot++;
	if (slot == table_cap) {
		uint32_t cap = table_cap ? table_cap * 2 : 64;
		struct sandbox **t = realloc(table, cap * sizeof *t);
		if (!t)
			return NULL;
		memset(t + table_cap, 0, (cap - table_cap) * sizeof *t);
		table = t;
		table_cap = cap;
	}
	struct sandbox *sb = calloc(1, sizeof *sb);
	if (!sb)
		return NULL;
	sb->id = id;
	sb->slot = slot;
	sb->kind = kind;
	sb->state = S_FAILING; /* not counted anywhere yet */
	sb_set_state(sb, state);
	sb->pidfd = sb->setup_fd = sb->status_fd = sb->out_fd = sb->err_fd = sb->in_fd = sb->plan_fd = -1;
	table[slot] = sb;
	return sb;
}

struct sandbox *sb_start(const struct sb_start *s)
{
	struct sandbox *sb = sb_new(s->id, s->kind, s->state);
	if (!sb) { /* out of memory with a live child: kill it, nothing else we can do well */
		sys_pidfd_send_signal(s->pidfd, SIGKILL);
		waitpid(s->pid, NULL, 0);
		close(s->pidfd);
		return NULL;
	}
	sb->pid = s->pid;
	sb->pidfd = s->pidfd;
	sb->setup_fd = s->setup_fd;
	sb->status_fd = s->status_fd;
	sb->in_fd = s->stdio[0];
	sb->out_fd = s->stdio[1];
	sb->err_fd = s->stdio[2];
	sb->tty = s->tty;
	sb->recv_ns = s->recv_ns;
	sb->flags = s->flags;
	sb_note_pipes(sb); /* finds none without all four pipes (EXEC, PREPARE, TTY) */
	/* RESTORE: the restorer's setup pipe is read once it has exited, the status pipe is the restored
	 * init's and watched from then on */
	if (s->state != S_RESTORING && s->state != S_DUMPING) {
		sb_watch(sb, sb->setup_fd, R_SETUP, EPOLLIN);
		if (sb->status_fd >= 0)
			sb_watch(sb, sb->status_fd, R_STATUS, EPOLLIN);
	}
	sb_watch(sb, sb->pidfd, R_PIDFD, EPOLLIN);
	return sb;
}

/* Is pid one of ours (a sandbox init, exec'd process, or a RESTORE's restorer)? */
bool sb_pid_known(pid_t pid)
{
	for (uint32_t i = 0; i < table_cap; i++)
		if (table[i] && !table[i]->dead && table[i]->pid == pid)
			return true;
	return false;
}

bool sb_restoring_into(const struct sandbox *except, const char *cgroup2)
{
	for (uint32_t i = 0; i < table_cap; i++)
		if (table[i] && table[i] != except && !table[i]->dead && table[i]->state == S_RESTORING &&
		    table[i]->cgroup2 && !strcmp(table[i]->cgroup2, cgroup2))
			return true;
	return false;
}

/* What CRIU will call these pipes when it dumps the sandbox (readlink of /proc/PID/fd/N): the helper
 * records them and passes them back as RESTORE's INHERIT. Noted at creation, since stdin may be
 * closed before SPAWNED. */
void sb_note_pipes(struct sandbox *sb)
{
	int fds[4] = { sb->in_fd, sb->out_fd, sb->err_fd, sb->status_fd };
	sb->have_pipes = !sb->tty;
	for (int i = 0; i < 4 && sb->have_pipes; i++) {
		struct stat st;
		if (fds[i] < 0 || fstat(fds[i], &st) < 0 || !S_ISFIFO(st.st_mode))
			sb->have_pipes = false;
		else
			sb->pipe_ino[i] = (uint64_t)st.st_ino;
	}
}

void ev_spawned(struct sandbox *sb)
{
	ev_begin(EV_SPAWNED, sb->id);
	ev_u64(T_PID, (uint64_t)sb->pid);
	ev_u64(T_RECV_NS, sb->recv_ns);
	ev_u64(T_EXEC_NS, now_ns());
	if (sb->kind == K_SANDBOX && sb->have_pipes)
		for (int i = 0; i < 4; i++) {
			char b[40];
			snprintf(b, sizeof b, "pipe:[%llu]", (unsigned long long)sb->pipe_ino[i]);
			ev_str((uint8_t)(T_PIPE_STDIN + i), b);
		}
	ev_send();
	/* output is watched only now, so OUTPUT never precedes SPAWNED */
	if (sb->out_fd >= 0)
		sb_watch(sb, sb->out_fd, R_OUT, EPOLLIN);
	if (sb->err_fd >= 0)
		sb_watch(sb, sb->err_fd, R_ERR, EPOLLIN);
}

struct sandbox *sb_find(uint32_t id)
{
	for (uint32_t i = 0; i < table_cap; i++)
		if (table[i] && !table[i]->dead && table[i]->id == id)
			return table[i];
	return NULL;
}

int sb_watch(struct sandbox *sb, int fd, enum sb_role role, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.u64 = ((uint64_t)sb->slot << 8) | role };
	int r = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
	if (r < 0)
		logmsg("epoll add fd %d: %s", fd, strerror(errno));
	return r;
}

void sb_close(int *fd)
{
	if (*fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, *fd, NULL);
		close(*fd);
		*fd = -1;
	}
}

void sb_release(struct sandbox *sb)
{
	if (busy(sb->state))
		sb_set_state(sb, S_FAILING);
	sb_close(&sb->pidfd);
	sb_close(&sb->plan_fd);
	sb_close(&sb->setup_fd);
	sb_close(&sb->status_fd);
	sb_close(&sb->out_fd);
	sb_close(&sb->err_fd);
	sb_close(&sb->in_fd);
	free(sb->inq);
	sb->inq = NULL;
	sb->dead = true; /* freed after the current epoll batch: later events in it may name this slot */
}

static void remember_done_dir(char *dir)
{
	if (n_done_dirs == cap_done_dirs) {
		uint32_t cap = cap_done_dirs ? cap_done_dirs * 2 : 16;
		char **d = realloc(done_dirs, cap * sizeof *d);
		if (!d) {
			sandbox_tmpfs_destroy(dir); /* cannot track it: do not leak the mount */
			free(dir);
			return;
		}
		done_dirs = d;
		cap_done_dirs = cap;
	}
	done_dirs[n_done_dirs++] = dir;
}

static void forget_done_dir(const char *real)
{
	for (uint32_t i = 0; i < n_done_dirs; i++)
		if (strcmp(done_dirs[i], real) == 0) {
			free(done_dirs[i]);
			done_dirs[i] = done_dirs[--n_done_dirs];
			return;
		}
}

/* ------------------------------------------------------------------ sandbox events */

static void on_output(struct sandbox *sb, int *fd, uint8_t which)
{
	static uint8_t buf[OUTPUT_CHUNK];
	ssize_t n = read(*fd, buf, sizeof buf);
	if (n > 0) {
		ev_begin(EV_OUTPUT, sb->id);
		ev_raw(&which, 1);
		ev_raw(buf, (size_t)n);
		ev_send();
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) { /* a pty master says EIO at hangup */
		sb_close(fd);
	}
}

/* Read what is there now; for EXEC, descendants may keep the pipe open forever, so bounded. */
static void drain_output(struct sandbox *sb)
{
	for (int i = 0; i < 64 && (sb->out_fd >= 0 || sb->err_fd >= 0); i++) {
		struct pollfd p[2] = { { .fd = sb->out_fd, .events = POLLIN }, { .fd = sb->err_fd, .events = POLLIN } };
		if (poll(p, 2, 0) <= 0)
			break;
		if (sb->out_fd >= 0 && p[0].revents)
			on_output(sb, &sb->out_fd, 1);
		if (sb->err_fd >= 0 && p[1].revents)
			on_output(sb, &sb->err_fd, 2);
	}
}

/* Setup failed: kill the init; SPAWN_FAILED (or the PREPARE's ACK) goes out once it is reaped. */
void sb_fail(struct sandbox *sb, unsigned stage, int err)
{
	sb_set_state(sb, S_FAILING);
	sb_close(&sb->setup_fd);
	sb->fail_stage = stage;
	sb->fail_errno = err;
	sys_pidfd_send_signal(sb->pidfd, SIGKILL); /* reaped when the pidfd says so: no blocking wait */
}

static void on_setup(struct sandbox *sb)
{
	if (sb->setup_fd < 0 || (sb->state != S_SETUP && sb->state != S_PREPARING && sb->state != S_READY))
		return;
	uint32_t msg[2];
	ssize_t n = read(sb->setup_fd, msg, sizeof msg);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (sb->state == S_PREPARING && n == 8 && msg[0] == SETUP_READY) {
		/* the pipe stays open: after the plan it carries failures and the execve EOF as for SPAWN */
		sb->state = S_READY;
		sb->ack_pending = false;
		ev_ack(sb->id, 0, NULL);
		return;
	}
	sb_close(&sb->setup_fd);
	if (sb->state == S_READY) {
		/* a waiting slot writes nothing before it has a plan: EOF means its init is exiting (EXIT
		 * follows from the pidfd); anything else cannot come from our init: end it */
		if (n != 0)
			sys_pidfd_send_signal(sb->pidfd, SIGKILL);
		return;
	}
	if (n == 0 && sb->state == S_SETUP) { /* every writer closed it: the command's execve succeeded */
		sb_set_state(sb, S_RUNNING);
		ev_spawned(sb);
#ifdef LAUNCHER_TIMING
		if (sb->kind == K_SANDBOX) {
			/* warm slot: marks 0-3 are from PREPARE time; 16 is when the init had its plan */
			static const char *const nm[] = { "prep", "clone3", "cgroup-procs", "netns+setsid", "rslave+overlay",
							  "proc", "dev+sys", "binds+tmp", "host+lo", "pivot+capbset", "fork",
							  "cmd-fds+rlimit", "creds+caps", "landlock", "seccomp", "execve" };
			static const int seq[] = { 0, 1, 2, 3, 11, 12, 13, 14, 15, 4, 5, 6, 7, 8, 9, 10 };
			char b[600];
			int o = 0;
			uint64_t prev = sb->recv_ns, end = now_ns();
			int k0 = 0;
			if (sb->warm) {
				o += snprintf(b, sizeof b, "warm plan-sent+received %.3f (launcher %.3f wake %.3f net %.3f decode %.3f) ",
					      (tmark[16] - prev) / 1e6, (tmark[17] - prev) / 1e6, (tmark[18] - tmark[17]) / 1e6,
					      (tmark[19] - tmark[18]) / 1e6, (tmark[16] - tmark[19]) / 1e6);
				prev = tmark[16];
				k0 = 4;
			}
			for (int k = k0; k < 16; k++) {
				o += snprintf(b + o, sizeof b - (size_t)o, "%s %.3f ", nm[k], (tmark[seq[k]] - prev) / 1e6);
				prev = tmark[seq[k]];
			}
			snprintf(b + o, sizeof b - (size_t)o, "exec->seen %.3f recv_abs %llu", (end - prev) / 1e6, (unsigned long long)sb->recv_ns);
			logmsg("timing: %s", b);
		}
#endif
		return;
	}
	/* a failure record, or EOF from an init that died before READY / before its command ran */
	sb_fail(sb, n == 8 ? msg[0] : ST_CLONE3, n == 8 ? (int)msg[1] : EIO);
}

/* The init reports the command's wait status just before it exits: STATUS goes out now, after the
 * output the command left in its pipes, so the helper can answer before the namespaces are torn down.
 * EXIT follows once the init is reaped. */
static void on_status(struct sandbox *sb)
{
	uint32_t st;
	ssize_t n = read(sb->status_fd, &st, sizeof st);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	sb_close(&sb->status_fd);
	if (n != 4)
		return;
	sb->status_ns = now_ns();
	sb->cmd_status = (int)st;
	sb->have_cmd_status = true;
	drain_output(sb);
	ev_begin(EV_STATUS, sb->id);
	ev_u64(T_STATUS, st);
	ev_u64(T_EXIT_NS, sb->status_ns);
	ev_send();
}

/* Died before it ran the command: nothing may stay behind (the tmpfs of a K_SANDBOX goes), then the
 * PREPARE's ACK or SPAWN_FAILED with the stage the setup pipe reported. */
static void setup_died(struct sandbox *sb, bool prepare, const char *what, int st)
{
	if (sb->kind == K_SANDBOX && sb->dir)
		sandbox_tmpfs_destroy(sb->dir);
	char msg[64];
	snprintf(msg, sizeof msg, "%s (init status %d)", what, st);
	if (prepare)
		ev_prepare_failed(sb->id, sb->fail_stage, sb->fail_errno, msg);
	else
		ev_spawn_failed(sb->id, sb->fail_stage, sb->fail_errno, msg);
	sb_release(sb);
}

static void on_exit_(struct sandbox *sb)
{
	if (sb->state == S_SETUP || sb->state == S_PREPARING)
		on_setup(sb); /* the setup pipe is final now: all its writers are gone */
	int st = 0;
	pid_t p = waitpid(sb->pid, &st, WNOHANG);
	if (p == 0)
		return;
	uint64_t exit_ns = now_ns();
	if (sb->state == S_RESTORING) { /* the restorer (criu) is done: restore.c takes it from here */
		restore_done(sb, st);
		return;
	}
	if (sb->state == S_DUMPING) { /* the dumper (criu dump, tar) is done: dump.c reports it */
		dump_done(sb, st);
		return;
	}
	if (sb->ack_pending) { /* PREPARE failed or was killed before READY: nothing may stay behind */
		setup_died(sb, true, "init died before READY", st);
		return;
	}
	/* S_READY: a warm slot killed while waiting ends like a sandbox (EXIT, tmpfs kept) */
	if (sb->state != S_RUNNING && sb->state != S_READY) {
		setup_died(sb, false, "setup failed", st);
		return;
	}
	if (sb->status_fd >= 0)
		on_status(sb);
#ifdef LAUNCHER_TIMING
	if (sb->status_ns)
		logmsg("timing: status->init-exit %.3f status_abs %llu exit_abs %llu", (exit_ns - sb->status_ns) / 1e6, (unsigned long long)sb->status_ns, (unsigned long long)exit_ns);
#endif
	drain_output(sb);
	ev_begin(EV_EXIT, sb->id);
	/* no status from the init (it was killed): the command died with the namespace */
	ev_u64(T_STATUS, (uint64_t)(uint32_t)(sb->kind == K_EXEC ? st : sb->have_cmd_status ? sb->cmd_status : st));
	ev_u64(T_INIT_STATUS, (uint64_t)(uint32_t)st);
	ev_u64(T_EXIT_NS, exit_ns);
	ev_send();
	if (sb->kind == K_SANDBOX && sb->dir) {
		remember_done_dir(sb->dir);
		sb->dir = NULL;
	}
	sb_release(sb);
}

static void flush_stdin(struct sandbox *sb)
{
	while (sb->inq_len && sb->in_fd >= 0) {
		ssize_t n = write(sb->in_fd, sb->inq, sb->inq_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) { /* EPIPE: the reader is gone, drop what is queued */
			sb->inq_len = 0;
			sb_close(&sb->in_fd);
			break;
		}
		memmove(sb->inq, sb->inq + n, sb->inq_len - (size_t)n);
		sb->inq_len -= (size_t)n;
	}
	if (sb->in_fd < 0)
		return;
	bool want = sb->inq_len > 0;
	if (want != sb->in_armed) {
		struct epoll_event e = { .events = EPOLLOUT, .data.u64 = ((uint64_t)sb->slot << 8) | R_IN };
		epoll_ctl(epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, sb->in_fd, &e);
		sb->in_armed = want;
	}
	if (!sb->inq_len && sb->in_close_pending) {
		if (sb->tty) /* a pty has no half-close: send the EOF character instead */
			(void)!write(sb->in_fd, "\x04", 1);
		sb_close(&sb->in_fd);
		sb->in_armed = false;
	}
	if (sb->inq_len == 0 && sb->inq) {
		free(sb->inq);
		sb->inq = NULL;
	}
}

/* ------------------------------------------------------------------ requests */

static void req_stdin(uint32_t id, const uint8_t *body, uint32_t len)
{
	struct sandbox *sb = sb_find(id);
	if (!sb || sb->in_fd < 0 || sb->in_close_pending) {
		if (len)
			logmsg("STDIN for id %u: no open stdin, %u bytes dropped", id, len);
		return;
	}
	if (!len) {
		sb->in_close_pending = true;
		flush_stdin(sb);
		return;
	}
	if (sb->inq_len + len > STDIN_QUEUE_MAX) {
		logmsg("STDIN for id %u: queue full (%zu bytes), %u bytes dropped", id, sb->inq_len, len);
		return;
	}
	uint8_t *q = realloc(sb->inq, sb->inq_len + len);
	if (!q)
		return;
	memcpy(q + sb->inq_len, body, len);
	sb->inq = q;
	sb->inq_len += len;
	if (!sb->in_armed)
		flush_stdin(sb);
}

static void handle_request(uint8_t type, uint32_t id, const uint8_t *body, uint32_t len)
{
	uint64_t recv_ns = now_ns();
	struct plan pl;
	const char *why = "";
	int r;
	switch (type) {
	case REQ_STDIN:
		req_stdin(id, body, len);
		return;
	case REQ_RELEASE: { /* a held SPAWN's command may start (empty body), or must not (any body: cancel) */
		struct sandbox *sb = sb_find(id);
		if (!sb || sb->plan_fd < 0 || sb->state != S_SETUP) {
			logmsg("RELEASE for id %u: no held SPAWN", id);
			return;
		}
		if (len == 0 && write(sb->plan_fd, "g", 1) != 1)
			logmsg("RELEASE %u: %s", id, strerror(errno)); /* the init is gone: its EXIT/failure follows */
		close(sb->plan_fd);
		sb->plan_fd = -1;
		return;
	}
	case REQ_KILL:
	case REQ_RESIZE: {
		struct sandbox *sb = sb_find(id);
		uint64_t v[2] = { 0, 0 };
		if (len != (type == REQ_KILL ? 8u : 16u)) {
			logmsg("%s for id %u: bad body length %u", type == REQ_KILL ? "KILL" : "RESIZE", id, len);
			return;
		}
		memcpy(v, body, len);
		if (!sb) {
			logmsg("%s for unknown id %u", type == REQ_KILL ? "KILL" : "RESIZE", id);
			return;
		}
		if (type == REQ_KILL) {
			if (v[0] == 0 || v[0] >= 65 || sys_pidfd_send_signal(sb->pidfd, (int)v[0]) < 0)
				logmsg("KILL %u sig %llu: %s", id, (unsigned long long)v[0], strerror(errno));
		} else if (sb->tty && sb->out_fd >= 0) {
			struct winsize ws = { .ws_row = (unsigned short)v[0], .ws_col = (unsigned short)v[1] };
			ioctl(sb->out_fd, TIOCSWINSZ, &ws);
		}
		return;
	}
	case REQ_SPAWN:
	case REQ_EXEC:
		if ((r = plan_decode(type, body, len, &pl, &why)) < 0)
			ev_spawn_failed(id, ST_PLAN, -r, why);
		else if (type == REQ_SPAWN)
			handle_spawn(id, &pl, body, len, recv_ns);
		else
			handle_exec(id, &pl, recv_ns);
		plan_free(&pl);
		return;
	case REQ_PREPARE: /* answered by ACK with this id: at once on error, else when the init is READY */
		if ((r = plan_decode(type, body, len, &pl, &why)) < 0)
			ev_prepare_failed(id, ST_PLAN, -r, why);
		else
			handle_prepare(id, &pl);
		plan_free(&pl);
		return;
	case REQ_RESTORE:
		if ((r = plan_decode(type, body, len, &pl, &why)) < 0)
			ev_spawn_failed(id, ST_PLAN, -r, why);
		else
			handle_restore(id, &pl, recv_ns);
		plan_free(&pl);
		return;
	case REQ_DUMP: /* answered by DUMPED with this id */
		if ((r = plan_decode(type, body, len, &pl, &why)) < 0)
			ev_dumped(id, ST_PLAN, -r, why, 0, 0);
		else
			handle_dump(id, &pl);
		plan_free(&pl);
		return;
	case REQ_CLEANUP:
	case REQ_UMOUNT:
	case REQ_MARK:
		r = plan_decode(type, body, len, &pl, &why);
		if (!r && type == REQ_CLEANUP) {
			if (!HAVE(&pl, T_SANDBOX_DIR)) {
				r = -EINVAL;
				why = "CLEANUP needs SANDBOX_DIR";
			} else {
				r = do_cleanup(pl.sandbox_dir, &why);
				char *p = str_dup0(pl.sandbox_dir), *real = NULL;
				const char *w2;
				if (p && path_under(p, G.sb_dir, &real, &w2) == 0)
					forget_done_dir(real);
				free(p);
				free(real);
			}
		} else if (!r && type == REQ_UMOUNT) {
			r = HAVE(&pl, T_PATH) ? do_umount(pl.path, &why) : (why = "UMOUNT needs PATH", -EINVAL);
		} else if (!r) {
			r = HAVE(&pl, T_PATH) && HAVE(&pl, T_KIND) ? do_mark(pl.path, pl.kind, &why)
								   : (why = "MARK needs PATH and KIND", -EINVAL);
		}
		ev_ack(id, -r, why);
		plan_free(&pl);
		return;
	}
	logmsg("unknown request type %u (id %u)", type, id);
	ev_ack(id, EINVAL, "unknown request type");
}

static uint8_t *inbuf;
static size_t in_len, in_cap;

static void on_stdin(void)
{
	if (in_cap - in_len < 65536) {
		size_t cap = in_cap ? in_cap : 65536;
		while (cap - in_len < 65536)
			cap *= 2;
		uint8_t *b = realloc(inbuf, cap);
		if (!b) {
			logmsg("out of memory reading requests");
			shutdown_all(1);
		}
		inbuf = b;
		in_cap = cap;
	}
	ssize_t n = read(0, inbuf + in_len, in_cap - in_len);
	if (n == 0) {
		logmsg("stdin closed: killing all sandboxes");
		shutdown_all(0);
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		logmsg("read stdin: %s", strerror(errno));
		shutdown_all(1);
	}
	in_len += (size_t)n;
	size_t off = 0;
	while (in_len - off >= 4) {
		uint32_t flen;
		memcpy(&flen, inbuf + off, 4);
		if (flen > MAX_FRAME || flen < 5) {
			logmsg("protocol error: frame length %u", flen);
			shutdown_all(2);
		}
		if (in_len - off - 4 < flen) {
			/* grow so the whole frame fits on the next reads */
			if (flen + 4 > in_cap - off) {
				memmove(inbuf, inbuf + off, in_len - off);
				in_len -= off;
				off = 0;
				uint8_t *b = realloc(inbuf, (size_t)flen + 4 + 65536);
				if (!b)
					shutdown_all(1);
				inbuf = b;
				in_cap = (size_t)flen + 4 + 65536;
			}
			break;
		}
		uint8_t type = inbuf[off + 4];
		uint32_t id;
		memcpy(&id, inbuf + off + 5, 4);
		handle_request(type, id, inbuf + off + 9, flen - 5);
		off += 4 + (size_t)flen;
	}
	memmove(inbuf, inbuf + off, in_len - off);
	in_len -= off;
	/* keep the heap small: every sandbox init is a fork of this process */
	if (in_cap > (1u << 20) && in_len < 65536) {
		uint8_t *b = realloc(inbuf, 131072);
		if (b) {
			inbuf = b;
			in_cap = 131072;
		}
	}
}

/* ------------------------------------------------------------------ shutdown */

static void shutdown_all(int code)
{
	for (uint32_t i = 0; i < table_cap; i++)
		if (table[i] && !table[i]->dead && table[i]->pidfd >= 0)
			sys_pidfd_send_signal(table[i]->pidfd, SIGKILL);
	for (uint32_t i = 0; i < table_cap; i++) {
		struct sandbox *sb = table[i];
		if (!sb || sb->dead)
			continue;
		waitpid(sb->pid, NULL, 0);
		if (sb->state == S_RESTORING) /* criu killed mid-restore: its tasks wait forever otherwise */
			restore_kill_strays(sb);
		if (sb->kind == K_SANDBOX && sb->dir)
			sandbox_tmpfs_destroy(sb->dir);
	}
	for (uint32_t i = 0; i < n_done_dirs; i++)
		sandbox_tmpfs_destroy(done_dirs[i]);
	netns_pool_shutdown();
	exit(code);
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
	fprintf(stderr, "usage: ai-sandbox-launcher --state-dir DIR [--netns-pool N] [--init PATH] | --probe\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *state = NULL, *init_path = NULL;
	unsigned pool_size = NETNS_POOL_DEFAULT;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--probe"))
			return probe_main();
		if (!strcmp(argv[i], "--state-dir") && i + 1 < argc) {
			state = argv[++i];
		} else if (!strcmp(argv[i], "--init") && i + 1 < argc) {
			init_path = argv[++i];
		} else if (!strcmp(argv[i], "--netns-pool") && i + 1 < argc) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (!*argv[i] || *end || v > NETNS_POOL_MAX)
				usage();
			pool_size = (unsigned)v;
		} else {
			usage();
		}
	}
	if (!state)
		usage();
	signal(SIGPIPE, SIG_IGN);
	umask(022);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		logmsg("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	G.nofile.cur = rl.rlim_cur;
	G.nofile.max = rl.rlim_max;
	rl.rlim_cur = rl.rlim_max; /* ~6 fds per sandbox */
	setrlimit(RLIMIT_NOFILE, &rl);
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (!f || fscanf(f, "%d", &G.cap_last_cap) != 1)
		G.cap_last_cap = 63;
	if (f)
		fclose(f);
	G.landlock_abi = landlock_abi_version();
#ifdef LAUNCHER_TIMING
	tmark = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
#endif
	G.self_pidns_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	G.self_pidfd = sys_pidfd_open(getpid());
	G.self_utsns_fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	if (G.self_pidns_fd < 0 || G.self_pidfd < 0 || G.self_utsns_fd < 0) {
		logmsg("cannot open own pid namespace / pidfd: %s", strerror(errno));
		return 1;
	}
	/* The in-sandbox init (init.c): default next to this binary. Missing or unsafe, the launcher still
	 * runs (probe, control requests) but every SPAWN / PREPARE / RESTORE fails with stage "init binary". */
	char self[4096], *def = NULL;
	if (!init_path) {
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 32);
		char *slash = n > 0 ? memrchr(self, '/', (size_t)n) : NULL;
		if (slash) {
			strcpy(slash + 1, "ai-sandbox-init");
			def = self;
		}
		init_path = def ? def : "ai-sandbox-init";
	}
	int r = initbin_open(init_path);
	bool init_ok = r == 0;
	if (r < 0)
		logmsg("init binary %s: %s (sandboxes cannot start)", init_path,
		       r == -EPERM ? "not a root-owned executable file writable only by root" : strerror(-r));
	r = seccomp_prepare();
	if (r < 0) {
		logmsg("seccomp filter: %s", strerror(-r));
		return 1;
	}
	if ((r = statedir_setup(state)) < 0) {
		logmsg("state dir %s: %s", state, strerror(-r));
		return 1;
	}
	skeleton_archive_reset();
	/* one copy of it, the top lower layer of every sandbox (initbin.c) */
	if (init_ok && (r = initbin_layer_setup(G.base_dir)) < 0)
		logmsg("init layer %s/init-layer: %s (sandboxes cannot start)", G.base_dir, strerror(-r));
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = ((uint64_t)STDIN_SLOT << 8) };
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &e) < 0) {
		logmsg("epoll: %s", strerror(errno));
		return 1;
	}
	/* forked now, while this process holds no sandbox fds yet */
	int pool_fd = netns_pool_start(pool_size);
	struct epoll_event pe = { .events = EPOLLIN, .data.u64 = ((uint64_t)POOL_SLOT << 8) };
	if (pool_fd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, pool_fd, &pe) < 0) {
		logmsg("epoll: %s", strerror(errno));
		return 1;
	}
	logmsg("ready: state dir %s, landlock ABI %d, netns pool %u", G.state_dir, G.landlock_abi, pool_size);
	for (;;) {
		/* refills must not compete with a sandbox start, a criu dump or a restore for CPU or rtnl */
		if (!n_busy)
			netns_pool_refill();
		struct epoll_event evs[64];
		int n = epoll_wait(epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			logmsg("epoll_wait: %s", strerror(errno));
			shutdown_all(1);
		}
		for (int i = 0; i < n; i++) {
			uint32_t slot = (uint32_t)(evs[i].data.u64 >> 8);
			enum sb_role role = (enum sb_role)(evs[i].data.u64 & 0xff);
			if (slot == STDIN_SLOT) {
				on_stdin();
				continue;
			}
			if (slot == POOL_SLOT) {
				netns_pool_on_readable();
				continue;
			}
			struct sandbox *sb = slot < table_cap ? table[slot] : NULL;
			if (!sb || sb->dead)
				continue;
			switch (role) {
			case R_SETUP: on_setup(sb); break;
			case R_STATUS: if (sb->status_fd >= 0) on_status(sb); break;
			case R_OUT: if (sb->out_fd >= 0) on_output(sb, &sb->out_fd, 1); break;
			case R_ERR: if (sb->err_fd >= 0) on_output(sb, &sb->err_fd, sb->tty ? 1 : 2); break;
			case R_IN: flush_stdin(sb); break;
			case R_PIDFD: on_exit_(sb); break;
			}
		}
		for (uint32_t i = 0; i < table_cap; i++)
			if (table[i] && table[i]->dead) {
				free(table[i]->dir);
				free(table[i]->cgroup2);
				free(table[i]->procs);
				free(table[i]->netns);
				free(table[i]->overlay_opts);
				free(table[i]->archive);
				free(table[i]->restore_log);
				free(table[i]->restore_hostname);
				free(table[i]);
				table[i] = NULL;
			}
	}
}
