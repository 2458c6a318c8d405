/*
 * SPAWN: launcher-side preparation (tmpfs, pipes or pty, clone3 into new namespaces and the target
 * cgroup) and the sandbox init (pid 1 of the new pid namespace). PREPARE (warm slots) runs the same
 * launcher-side code and the same init up to setsid ahead of time, so the slow v1 cgroup join is off
 * the request path; the init then waits for its plan on a socketpair and continues like a cold one.
 *
 * Threat model: the plan comes from the helper and is validated before use (hostsetup.c: paths via
 * mounts.c, cgroup files must be on cgroupfs, NETNS must be a network-namespace file; without NETNS the init joins a
 * fresh, never-used namespace from netns_pool.c, or gets CLONE_NEWNET when the pool is empty, so a
 * sandbox never shares a network namespace it did not ask for). The launcher never waits for a
 * child: setup success/failure arrives on the setup pipe, which the event loop watches. The init runs
 * only our code; it builds the root before any sandboxed code exists, then forks the command and
 * keeps nothing the command could use: no capabilities (empty bounding set, empty sets), not
 * dumpable, no host fds except the status pipe. Its real uid is switched to the command's uid so it
 * can still forward signals to the command without CAP_KILL. It then execs /.ai-sandbox/init (init.c,
 * copied into the upper layer by the launcher before the overlay exists, immutable there), through an
 * fd opened before the command started, so the init maps no host file (CRIU can dump it) and the
 * command cannot substitute what its pid 1 runs.
 * Warm slots: the plan channel is a private socketpair between the launcher and one init (nothing
 * else holds either end: CLOEXEC, and every child keeps only the fds it names). The init still treats
 * what arrives as input to validate: bounded length, no truncation, exactly the expected stdio fds
 * (type-checked), the launcher's decoder and checks; it closes the channel before building the root,
 * so neither the command nor anything sandboxed can ever hold it. A slot waits with no capability
 * dropped yet but runs only our code, blocked in recvmsg, and dies with the launcher (PDEATHSIG).
 */
#include "sandbox.h"
#include "initloop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* how long the init serves the command from the launcher image before it re-execs (see init_main) */
#define INIT_REEXEC_DELAY_MS 20

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

struct init_args {
	int setup_w, status_w, netns_fd;
	/* warm slot prepared without NETNS: it waits in a pooled namespace (net_pooled), else in the
	 * launcher's, and a SPAWN with NETNS moves it there; without NETNS it keeps the pooled one (else
	 * gets one from the pool or makes one). Joined at PREPARE, the setns (~0.3 ms) is off the start. */
	bool net_deferred, net_pooled;
	int plan_fd; /* warm slot (PREPARE): the init's end of the plan channel; -1 for a cold SPAWN */
	struct cgroup_fds cg; /* the v1 cgroup.procs files to join (CGROUP2: joined at clone3) */
	struct root_spec root; /* a warm slot has only .dir (and .overlay_opts, prepared with LOWER) until its plan */
	struct cmd_spec cmd;
};

static int command_trampoline(void *arg)
{
	command_exec(arg);
}

static bool fd_kind_ok(int fd, bool tty)
{
	struct stat st;
	return fstat(fd, &st) == 0 && (tty ? S_ISCHR(st.st_mode) : S_ISFIFO(st.st_mode));
}

/* the command child's stack (vfork-style clone in init_main) */
static char cmd_stack[64 * 1024] __attribute__((aligned(16)));

/* A warm slot's init, before it waits: its pages are the launcher's, copy-on-write, and on this VM
 * every first write to one costs a fault, which the start then paid for (the plan's receipt and decode,
 * the mounts, the command's fork). So write once now: to every resident page of each private writable
 * mapping up to 2 MiB (the same byte back: a private copy, ~0.5 MiB for a launcher of this size, which
 * goes with the init's re-exec), and to fresh heap, stack and the command child's stack. */
static void __attribute__((noinline)) prefault(void)
{
	void *p = malloc(96 * 1024);
	if (p) {
		memset(p, 0, 96 * 1024);
		free(p);
	}
	volatile char stack[32 * 1024];
	for (size_t i = 0; i < sizeof stack; i += 4096)
		stack[i] = 0;
	memset(cmd_stack, 0, sizeof cmd_stack);
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	unsigned char vec[512];
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char perm[5];
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perm) != 3 || perm[1] != 'w' || perm[3] != 'p' ||
		    hi - lo > sizeof vec * 4096UL || mincore((void *)lo, hi - lo, vec) < 0)
			continue;
		for (size_t k = 0; k < (hi - lo) / 4096; k++)
			if (vec[k] & 1) {
				volatile char *c = (volatile char *)(lo + k * 4096);
				*c = *c;
			}
	}
	if (f)
		fclose(f);
}

/*
 * Warm slot: report READY, then block until the launcher sends the SPAWN plan, and turn it into the
 * same root_spec / cmd_spec a cold SPAWN computes in the launcher. The plan is re-decoded and
 * re-checked here with the launcher's own decoder and checks (bounds-checked, no trust in the
 * sender); SANDBOX_DIR, CGROUP2 and CGROUP_PROCS in it are ignored, this init's were fixed at
 * PREPARE. Exactly the expected fds are accepted (1 pty slave or 3 pipes, type-checked, and with
 * NETNS one network namespace that the init joins now, before the root and `lo` are set up); the
 * channel is closed before anything else runs, so neither it nor a stray fd reaches the command.
 */
static void init_wait_plan(struct init_args *a)
{
	int sfd = a->setup_w;
	uint32_t ready[2] = { SETUP_READY, 0 };
	prefault();
	if (write(sfd, ready, sizeof ready) != (ssize_t)sizeof ready)
		_exit(127); /* the launcher is gone */

	uint32_t total = 0;
	char extra;
	struct iovec iov[2] = { { .iov_base = &total, .iov_len = 4 }, { .iov_base = &extra, .iov_len = 1 } };
	union { struct cmsghdr h; char buf[CMSG_SPACE(4 * sizeof(int))]; } u;
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	ssize_t n;
	while ((n = recvmsg(a->plan_fd, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	TMARK(18);
	if (n == 0)
		_exit(0); /* channel closed without a plan: the launcher is shutting down */
	if (n < 0)
		child_fail(sfd, ST_PLAN, errno);
	int fds[4], nfds = cmsg_take_fds(&m, fds, 4);
	if (n != 4 || m.msg_flags & (MSG_TRUNC | MSG_CTRUNC) || total == 0 || total > MAX_FRAME)
		child_fail(sfd, ST_PLAN, EPROTO);
	uint8_t *buf = malloc(total);
	if (!buf)
		child_fail(sfd, ST_PLAN, ENOMEM);
	for (uint32_t off = 0; off < total;) {
		struct iovec ci = { .iov_base = buf + off, .iov_len = total - off };
		struct msghdr cm = { .msg_iov = &ci, .msg_iovlen = 1 }; /* no control buffer: fds here are refused */
		n = recvmsg(a->plan_fd, &cm, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || cm.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
			child_fail(sfd, ST_PLAN, n < 0 ? errno : EPROTO);
		off += (uint32_t)n;
	}
	struct plan pl;
	const char *why;
	int r = plan_decode(REQ_SPAWN, buf, total, &pl, &why);
	if (r == 0)
		r = spawn_plan_check(&pl, &why);
	if (r < 0)
		child_fail(sfd, ST_PLAN, -r);
	if (!(pl.flags & FLAG_HOLD)) { /* with HOLD the channel stays for the RELEASE (see init_main) */
		close(a->plan_fd);
		a->plan_fd = -1;
	}
	bool tty = pl.flags & FLAG_TTY;
	int nstdio = tty ? 1 : 3;
	/* A deferred slot gets a namespace fd after the stdio (NETNS, or a pooled one), or none: then it
	 * keeps the pooled one it joined at PREPARE, or makes one. A NETNS in the plan must come as an
	 * fd, never as a new one. */
	if (nfds != nstdio + (a->net_deferred ? 1 : 0) && !(a->net_deferred && !HAVE(&pl, T_NETNS) && nfds == nstdio))
		child_fail(sfd, ST_PLAN, EBADF);
	if (a->net_deferred) {
		int ns = nfds > nstdio ? fds[nstdio] : -1;
		if (ns >= 0 && (!is_netns_fd(ns) || setns(ns, CLONE_NEWNET) < 0))
			child_fail(sfd, ST_SETNS_NETNS, is_netns_fd(ns) ? errno : EINVAL);
		if (ns < 0 && !a->net_pooled && unshare(CLONE_NEWNET) < 0)
			child_fail(sfd, ST_SETNS_NETNS, errno);
		if (ns >= 0)
			close(ns);
		nfds = nstdio;
	}
	TMARK(19);
	for (int i = 0; i < nfds; i++) {
		if (!fd_kind_ok(fds[i], tty))
			child_fail(sfd, ST_PLAN, EBADF);
		if (fds[i] < 3) { /* 0-2 are free in the init; command_exec's dup2 onto 0-2 needs other fds */
			int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
			if (moved < 0)
				child_fail(sfd, ST_PLAN, errno);
			close(fds[i]);
			fds[i] = moved;
		}
	}
	/* the strings point into buf and pl's arrays, which live as long as this init */
	char *opts = overlay_options(&pl, a->root.dir, &why);
	char *hostname = str_dup0(pl.hostname), *workdir = str_dup0(pl.workdir);
	char **argv = strv_from(pl.arg, pl.n_arg), **envp = strv_from(pl.env, pl.n_env);
	if (!opts || !hostname || !workdir || !argv || !envp)
		child_fail(sfd, ST_PLAN, opts ? ENOMEM : EINVAL);
	a->root = (struct root_spec){ .dir = a->root.dir, .overlay_opts = opts, .hostname = hostname,
				      .mounts = pl.mount, .n_mounts = pl.n_mount, .rootfd = a->root.rootfd };
	a->cmd = (struct cmd_spec){ .argv = argv, .envp = envp, .workdir = workdir, .uid = (uid_t)pl.uid,
				    .gid = (gid_t)pl.gid, .tty = tty, .allow_listen = pl.flags & FLAG_ALLOW_LISTEN,
				    .no_landlock = pl.flags & FLAG_NO_LANDLOCK, .in_fd = fds[0],
				    .out_fd = fds[tty ? 0 : 1], .err_fd = fds[tty ? 0 : 2], .setup_fd = sfd };
	TMARK(16);
}

/* Cold SPAWN: everything in `a` is known at clone3. Warm slot (a->plan_fd >= 0): the steps up to
 * setsid run at PREPARE time, then init_wait_plan fills in the rest; from there on both run the
 * same code. */
static void init_main(void *arg) __attribute__((noreturn));
static void init_main(void *arg)
{
	struct init_args *a = arg;
	int sfd = a->setup_w;
	TMARK(1);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(sfd, ST_PDEATHSIG, errno);
	struct pollfd pf = { .fd = G.self_pidfd, .events = POLLIN };
	if (poll(&pf, 1, 0) > 0) /* the launcher already died: PDEATHSIG came too late for us */
		_exit(1);
	/* G.self_pidfd stays until the re-exec: /.ai-sandbox/init checks it after setting PDEATHSIG again */
	int keep[9 + MAX_CGROUP_PROCS] = { sfd, a->status_w, a->cmd.in_fd, a->cmd.out_fd, a->cmd.err_fd, a->netns_fd,
					   a->plan_fd, G.self_pidfd, a->cmd.notify_fd };
	close_fds_except(keep, cgroup_fds_keep(&a->cg, keep, 9));
	umask(0);
	cgroup_fds_join(&a->cg, sfd);
	/* The cgroup namespace starts here, after the v1 joins, so its root is the sandbox's own cgroup in
	 * every hierarchy (made at clone3 it would be rooted at the launcher's v1 cgroups, and the sandbox's
	 * paths would read /../../...: confusing, and CRIU refuses to dump such a tree). */
	if (unshare(CLONE_NEWCGROUP) < 0)
		child_fail(sfd, ST_CGROUP_PROCS, errno);
	TMARK(2);
	if (a->netns_fd >= 0) { /* NETNS or pooled: first network-related step, before lo is touched */
		if (setns(a->netns_fd, CLONE_NEWNET) < 0)
			child_fail(sfd, ST_SETNS_NETNS, errno);
		close(a->netns_fd);
	}
	if (setsid() < 0)
		child_fail(sfd, ST_SETSID, errno);
	TMARK(3);
	if (a->plan_fd >= 0 && a->root.overlay_opts) /* prepared with LOWER: the overlay, /proc, /dev now */
		build_root_base(&a->root, sfd);
	if (a->plan_fd >= 0)
		init_wait_plan(a);
	build_root(&a->root, sfd);
	TMARK(4);
	if (a->plan_fd >= 0) { /* HOLD: the command starts only on RELEASE; the channel's end is a cancel */
		char go = 0;
		ssize_t n;
		while ((n = read(a->plan_fd, &go, 1)) < 0 && errno == EINTR)
			;
		if (n != 1 || go != 'g')
			child_fail(sfd, ST_PLAN, ECANCELED);
		close(a->plan_fd);
		a->plan_fd = -1;
	}
	/* Opened now, while only our code runs in the sandbox: what we exec below is this file even if the
	 * command later manages to rename or replace the path. */
	int init_exe = open(SANDBOX_INIT_PATH, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat ist;
	if (init_exe < 0 || fstat(init_exe, &ist) < 0 || !S_ISREG(ist.st_mode) || ist.st_uid != 0 || (ist.st_mode & 022))
		child_fail(sfd, ST_INIT_BINARY, init_exe < 0 ? errno : EPERM);
	if (drop_bounding_set() < 0)
		child_fail(sfd, ST_CAPBSET, errno);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		child_fail(sfd, ST_DUMPABLE, errno);

	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL); /* before fork: no signal may slip past sigwaitinfo */
	TMARK(5);
	/* vfork-style (shared memory, own stack, init suspended until execve or exit): no page-table
	 * copy on the way in and no address-space teardown at execve, ~0.5 ms per spawn. The command
	 * child only writes its own stack and globals the suspended init no longer reads. */
	pid_t cmd = clone(command_trampoline, cmd_stack + sizeof cmd_stack, CLONE_VM | CLONE_VFORK | SIGCHLD,
			  (void *)&a->cmd);
	if (cmd < 0)
		child_fail(sfd, ST_FORK_COMMAND, errno);
	close(sfd); /* from now on only the command holds the setup pipe: EOF == its execve */
	close(a->cmd.in_fd);
	if (a->cmd.out_fd != a->cmd.in_fd)
		close(a->cmd.out_fd);
	if (a->cmd.err_fd != a->cmd.in_fd)
		close(a->cmd.err_fd);
	if (a->cmd.uid != 0) /* real uid = command's uid: kill() permission without CAP_KILL */
		(void)!setresuid(a->cmd.uid, 0, 0);
	clear_capabilities();

	/* The re-exec below costs about a millisecond of CPU. Done at once, it ran beside the command's
	 * own execve and the launcher's report of it, and on this 2-core host it slowed both (execve →
	 * launcher saw it: 2.2 ms p50, 0.55 ms without the re-exec). So it waits: a command that ends
	 * within INIT_REEXEC_DELAY_MS is reaped by this image and never needs it; a longer one gets it
	 * while it runs. A checkpoint waits for it (snapshot/service.ts, initSettled). */
	init_loop_for(cmd, a->status_w, INIT_REEXEC_DELAY_MS);

	/* Become /.ai-sandbox/init (same loop, initloop.c). The blocked mask survives execve, so no
	 * signal is lost; a SIGCHLD that arrives meanwhile stays pending. Only the status pipe and the
	 * launcher's pidfd cross the exec (the pidfd is closed by the new image after its check). */
	char a1[16], a2[16], a3[16];
	snprintf(a1, sizeof a1, "%d", (int)cmd);
	snprintf(a2, sizeof a2, "%d", a->status_w);
	snprintf(a3, sizeof a3, "%d", G.self_pidfd);
	char *av[] = { "ai-sandbox-init", a1, a2, a3, NULL }, *ev[] = { NULL };
	fcntl(a->status_w, F_SETFD, 0);
	fcntl(G.self_pidfd, F_SETFD, 0);
	syscall(SYS_execveat, init_exe, "", av, ev, AT_EMPTY_PATH);
	/* not reached unless execveat failed (e.g. ENOMEM): keep serving the command from this image; the
	 * sandbox works but cannot be checkpointed */
	close(G.self_pidfd);
	close(init_exe);
	init_loop(cmd, a->status_w);
}

int make_stdio(bool tty, uint64_t rows, uint64_t cols, int parent[3], int child[3])
{
	for (int i = 0; i < 3; i++)
		parent[i] = child[i] = -1;
	if (tty) {
		int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (m < 0)
			return -errno;
		int s = -1;
		if (unlockpt(m) < 0 || (s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
			int e = errno;
			close(m);
			return -e;
		}
		struct winsize ws = { .ws_row = (unsigned short)(rows ? rows : 24), .ws_col = (unsigned short)(cols ? cols : 80) };
		ioctl(m, TIOCSWINSZ, &ws);
		fcntl(m, F_SETFL, O_NONBLOCK);
		parent[1] = m;
		parent[0] = fcntl(m, F_DUPFD_CLOEXEC, 3); /* separate fd so stdin can be armed on its own */
		child[0] = child[1] = child[2] = s;
		if (parent[0] < 0) {
			close(m);
			close(s);
			return -EMFILE;
		}
		return 0;
	}
	int p[3][2];
	for (int i = 0; i < 3; i++)
		if (pipe2(p[i], O_CLOEXEC) < 0) {
			int e = errno;
			for (int j = 0; j < i; j++)
				close(p[j][0]), close(p[j][1]);
			return -e;
		}
	child[0] = p[0][0];
	parent[0] = p[0][1];
	for (int i = 1; i < 3; i++) {
		child[i] = p[i][1];
		parent[i] = p[i][0];
	}
	for (int i = 0; i < 3; i++)
		fcntl(parent[i], F_SETFL, O_NONBLOCK);
	return 0;
}

void close_stdio(int fds[3])
{
	for (int i = 0; i < 3; i++) {
		if (fds[i] < 0)
			continue;
		for (int j = i + 1; j < 3; j++) /* the pty slave is the same fd three times */
			if (fds[j] == fds[i])
				fds[j] = -1;
		close(fds[i]);
		fds[i] = -1;
	}
}

/*
 * Host side of SPAWN (cold) and PREPARE: validate SANDBOX_DIR, CGROUP2, CGROUP_PROCS and NETNS, mount
 * the tmpfs, create the setup and status pipes (all hostsetup.c, shared with RESTORE) plus the stdio
 * (SPAWN) or the plan channel (PREPARE), and clone3 the init. One code path, so a warm slot's init is
 * made exactly like a cold one. The
 * caller has checked the plan's shape. On failure nothing is left (tmpfs unmounted, directory
 * removed) before SPAWN_FAILED / the PREPARE's ACK goes out.
 */
static void start_init(uint32_t id, struct plan *pl, uint64_t recv_ns, bool prepare)
{
	const char *why = "";
	unsigned stage = ST_PLAN;
	int err = EINVAL;
	char *opts = NULL, *hostname = NULL, *workdir = NULL, *netns = NULL;
	char **argv = NULL, **envp = NULL;
	int chan[2] = { -1, -1 }, par[3] = { -1, -1, -1 }, chi[3] = { -1, -1, -1 };
	struct host_setup h;
	host_setup_init(&h);
	struct init_args a;
	memset(&a, 0, sizeof a);
	a.netns_fd = a.plan_fd = -1;
	a.cmd.in_fd = a.cmd.out_fd = a.cmd.err_fd = a.cmd.notify_fd = -1;
	int notify_fd = -1;
	bool tty = !prepare && (pl->flags & FLAG_TTY);
	int r;

	if ((r = host_setup_dir(&h, pl, &stage, &why)) < 0) {
		err = -r;
		goto fail;
	}
	if (HAVE(pl, T_NETNS) && !(netns = str_dup0(pl->netns))) {
		err = ENOMEM;
		goto fail;
	}
	if (!prepare || pl->n_lower) {
		if (!(opts = overlay_options(pl, h.dir, &why)))
			goto fail;
	}
	if (!prepare) {
		hostname = str_dup0(pl->hostname);
		workdir = str_dup0(pl->workdir);
		argv = strv_from(pl->arg, pl->n_arg);
		envp = strv_from(pl->env, pl->n_env);
		if (!hostname || !workdir || !argv || !envp) {
			err = ENOMEM;
			goto fail;
		}
	}
	if ((r = host_setup_open(&h, pl, netns, true, &stage, &why)) < 0) {
		err = -r;
		goto fail;
	}
	if (prepare) {
		/* SEQPACKET: the header with the stdio fds and each plan chunk stay separate records */
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0) {
			err = errno;
			why = "plan channel";
			goto fail;
		}
	} else if ((r = make_stdio(tty, pl->rows, pl->cols, par, chi)) < 0) {
		stage = tty ? ST_PTY : ST_PIPES;
		err = -r;
		goto fail;
	}

	a.setup_w = h.setup[1];
	a.status_w = h.status[1];
	a.plan_fd = chan[1];
	a.cg = h.cg;
	a.root.dir = h.dir;
	a.root.overlay_opts = opts; /* PREPARE with LOWER: its init mounts the overlay before the plan */
	a.root.rootfd = -1;
	if (!prepare) {
		a.root = (struct root_spec){ .dir = h.dir, .overlay_opts = opts, .hostname = hostname, .mounts = pl->mount,
					     .n_mounts = pl->n_mount, .rootfd = -1 };
		a.cmd = (struct cmd_spec){ .argv = argv, .envp = envp, .workdir = workdir, .uid = (uid_t)pl->uid,
					   .gid = (gid_t)pl->gid, .tty = tty, .allow_listen = pl->flags & FLAG_ALLOW_LISTEN,
					   .no_landlock = pl->flags & FLAG_NO_LANDLOCK, .in_fd = chi[0], .out_fd = chi[1],
					   .err_fd = chi[2], .setup_fd = h.setup[1], .notify_fd = -1 };
		if (HAVE(pl, T_NOTIFY_SOCKET) && (notify_fd = notify_connect(id, pl, &why)) < 0) {
			stage = ST_NOTIFY;
			err = -notify_fd;
			goto fail;
		}
		a.cmd.notify_fd = notify_fd;
		a.cmd.notify_nrs = (const uint32_t *)(const void *)pl->notify_nrs.p;
		a.cmd.n_notify = pl->notify_nrs.len / 4;
	}
	/* No NETNS: a pre-created namespace from the pool saves ~1 ms of clone3 (netns_pool.c); the
	 * init joins it exactly like a NETNS one. Empty pool: CLONE_NEWNET as before. A warm slot without
	 * NETNS joins a pooled one now and may be moved at SPAWN (see init_args.net_deferred). */
	a.net_deferred = prepare && h.netns_fd < 0;
	if (h.netns_fd < 0)
		h.netns_fd = netns_pool_take();
	a.net_pooled = a.net_deferred && h.netns_fd >= 0;
	a.netns_fd = h.netns_fd;
	uint64_t flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
			 (a.netns_fd >= 0 || a.net_deferred ? 0 : CLONE_NEWNET);
	int pidfd = -1;
	TMARK(0);
	pid_t pid = host_setup_clone(&h, flags, &pidfd, init_main, &a);
	if (pid < 0) {
		stage = ST_CLONE3;
		err = -pid;
		why = "clone3";
		goto fail;
	}
	if (chan[1] >= 0)
		close(chan[1]);
	chan[1] = -1;
	if (notify_fd >= 0)
		close(notify_fd); /* the command has it now */
	notify_fd = -1;
	close_stdio(chi);
	struct sandbox *sb = sb_start(&(struct sb_start){
		.id = id, .kind = K_SANDBOX, .state = prepare ? S_PREPARING : S_SETUP, .pid = pid, .pidfd = pidfd,
		.setup_fd = h.setup[0], .status_fd = h.status[0], .stdio = { par[0], par[1], par[2] }, .tty = tty,
		.recv_ns = recv_ns, .flags = pl->flags });
	if (!sb) {
		err = ENOMEM;
		stage = ST_CLONE3;
		goto fail;
	}
	sb->plan_fd = chan[0];
	sb->warm = sb->ack_pending = prepare;
	sb->netns = netns;
	sb->net_pooled = a.net_pooled;
	if (prepare && opts) { /* the init has its copy; this one is what a SPAWN into the slot must match */
		sb->overlay_opts = opts;
		opts = NULL;
	}
	host_setup_commit(&h, sb);
	free(opts);
	free(hostname);
	free(workdir);
	free(argv);
	free(envp);
	return;

fail:
	if (notify_fd >= 0)
		close(notify_fd);
	for (int i = 0; i < 2; i++)
		if (chan[i] >= 0)
			close(chan[i]);
	close_stdio(par);
	close_stdio(chi);
	host_setup_undo(&h);
	/* the event goes out only when nothing is left behind, so the helper may check at once */
	if (prepare)
		ev_prepare_failed(id, stage, err, why);
	else
		ev_spawn_failed(id, stage, err, why);
	free(opts);
	free(hostname);
	free(workdir);
	free(netns);
	free(argv);
	free(envp);
}

void handle_prepare(uint32_t id, struct plan *pl)
{
	if (!HAVE(pl, T_SANDBOX_DIR) || !HAVE(pl, T_TMPFS_BYTES) || !HAVE(pl, T_CGROUP2)) {
		ev_prepare_failed(id, ST_PLAN, EINVAL, "PREPARE needs SANDBOX_DIR, TMPFS_BYTES, CGROUP2");
		return;
	}
	if (pl->tmpfs_bytes == 0 || pl->n_procs > MAX_CGROUP_PROCS) {
		ev_prepare_failed(id, ST_PLAN, EINVAL, "bad TMPFS_BYTES or too many CGROUP_PROCS");
		return;
	}
	const char *why = "";
	if (validate_lowers(pl, &why) < 0) {
		ev_prepare_failed(id, ST_PLAN, EINVAL, why);
		return;
	}
	if (sb_find(id)) {
		ev_prepare_failed(id, ST_PLAN, EEXIST, "id already in use");
		return;
	}
	start_init(id, pl, 0, true);
}

static bool str_eq(struct str s, const char *c) { return c && s.len == strlen(c) && !memcmp(s.p, c, s.len); }

/* The parts a warm slot fixed at PREPARE must be what the SPAWN asks for: otherwise the command would
 * run in another directory, cgroup or network namespace than its plan says. */
static int slot_matches(const struct sandbox *sb, const struct plan *pl, const char **why)
{
	char *p = str_dup0(pl->sandbox_dir), *real = NULL;
	const char *w2;
	bool dir_ok = p && path_under(p, G.sb_dir, &real, &w2) == 0 && !strcmp(real, sb->dir);
	free(p);
	free(real);
	if (!dir_ok) {
		*why = "SANDBOX_DIR differs from the prepared slot's";
		return -EINVAL;
	}
	if (!str_eq(pl->cgroup2, sb->cgroup2)) {
		*why = "CGROUP2 differs from the prepared slot's";
		return -EINVAL;
	}
	bool procs_ok = pl->n_procs == sb->n_procs;
	for (uint32_t i = 0; procs_ok && i < pl->n_procs; i++)
		procs_ok = str_eq(pl->procs[i], sb->procs[i]);
	if (!procs_ok) {
		*why = "CGROUP_PROCS differ from the prepared slot's";
		return -EINVAL;
	}
	/* A slot prepared without NETNS takes one at SPAWN (its init joins it); one prepared with NETNS
	 * must get the same. */
	if (sb->netns && (!HAVE(pl, T_NETNS) || !str_eq(pl->netns, sb->netns))) {
		*why = "NETNS differs from the prepared slot's";
		return -EINVAL;
	}
	if (HAVE(pl, T_NOTIFY_SOCKET)) {
		*why = "NOTIFY_SOCKET needs a cold SPAWN (no warm slot)";
		return -EINVAL;
	}
	return 0;
}

/* Header (plan length + stdio fds) and the plan in chunks. Non-blocking: the socket buffer is made
 * large enough for the whole plan first (a socketpair has no datagram-queue limit), so the single
 * event loop never waits on a slot's init. */
static int send_plan(int sock, const uint8_t *body, uint32_t len, const int *fds, int nfds)
{
	if (len > PLAN_CHUNK) {
		int want = (int)(len + len / 8 + (1u << 20));
		if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) < 0)
			return -errno;
	}
	union { struct cmsghdr h; char buf[CMSG_SPACE(4 * sizeof(int))]; } u;
	memset(&u, 0, sizeof u);
	struct iovec iov = { .iov_base = &len, .iov_len = 4 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	if (sendmsg(sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT) != 4)
		return -errno;
	for (uint32_t off = 0; off < len;) {
		uint32_t k = len - off < PLAN_CHUNK ? len - off : PLAN_CHUNK;
		ssize_t w = send(sock, body + off, k, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w != (ssize_t)k)
			return w < 0 ? -errno : -EIO;
		off += k;
	}
	return 0;
}

/*
 * SPAWN into a READY warm slot. Everything that can fail before the plan is sent (mismatch, bad
 * options, stdio, tmpfs resize) leaves the slot as it was and answers SPAWN_FAILED. Once the plan is
 * on its way the slot is a sandbox in setup like a cold one: its init reports failure or execve on
 * the setup pipe, and a failure here kills it and ends in SPAWN_FAILED with nothing left behind.
 */
static void spawn_into_slot(struct sandbox *sb, const struct plan *pl, const uint8_t *body, uint32_t len,
			    uint64_t recv_ns)
{
	const char *why = "";
	unsigned stage = ST_PLAN;
	int err = EINVAL, r, par[3] = { -1, -1, -1 }, chi[3] = { -1, -1, -1 };
	int late_ns = -1; /* NETNS for a slot prepared without one: sent to its init with the stdio fds */
	if (sb->state == S_PREPARING) {
		err = EBUSY;
		why = "the prepared slot is not READY yet";
		goto fail;
	}
	if ((r = slot_matches(sb, pl, &why)) < 0) {
		err = -r;
		goto fail;
	}
	char *opts = overlay_options(pl, sb->dir, &why); /* the init builds it again; refuse early here */
	if (!opts)
		goto fail;
	bool same_root = !sb->overlay_opts || !strcmp(opts, sb->overlay_opts);
	free(opts);
	if (!same_root) { /* its overlay is mounted already: another LOWER cannot use this slot */
		why = "LOWER differs from the prepared slot's";
		goto fail;
	}
	bool tty = pl->flags & FLAG_TTY;
	if ((r = make_stdio(tty, pl->rows, pl->cols, par, chi)) < 0) {
		stage = tty ? ST_PTY : ST_PIPES;
		err = -r;
		goto fail;
	}
	if (!sb->netns && HAVE(pl, T_NETNS)) {
		char *p = str_dup0(pl->netns);
		late_ns = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
		free(p);
		if (late_ns < 0 || !is_netns_fd(late_ns)) {
			stage = ST_NETNS_OPEN;
			err = late_ns < 0 ? errno : EINVAL;
			why = "NETNS is not a network namespace file";
			goto fail;
		}
	}
	if (!sb->netns && late_ns < 0 && !sb->net_pooled)
		late_ns = netns_pool_take(); /* -1 when empty: the init makes one */
	if (pl->tmpfs_bytes != sb->tmpfs_bytes) {
		stage = ST_MOUNT_TMPFS;
		if ((r = sandbox_tmpfs_resize(sb->dir, pl->tmpfs_bytes)) < 0) {
			err = -r;
			why = "remount tmpfs with the new TMPFS_BYTES";
			goto fail;
		}
		sb->tmpfs_bytes = pl->tmpfs_bytes;
	}
	/* committed: from here the slot is a sandbox in setup */
	sb_set_state(sb, S_SETUP);
	sb->recv_ns = recv_ns;
	sb->tty = tty;
	sb->flags = pl->flags;
	sb->in_fd = par[0];
	sb->out_fd = par[1];
	sb->err_fd = par[2];
	sb_note_pipes(sb);
	int sent[4] = { chi[0], chi[1], chi[2], -1 }, nsent = tty ? 1 : 3;
	if (late_ns >= 0)
		sent[nsent++] = late_ns;
	TMARK(17);
	r = send_plan(sb->plan_fd, body, len, sent, nsent);
	close_stdio(chi);
	if (late_ns >= 0)
		close(late_ns);
	if (!(pl->flags & FLAG_HOLD) || r < 0) { /* with HOLD, kept for RELEASE (not in epoll) */
		close(sb->plan_fd);
		sb->plan_fd = -1;
	}
	if (r < 0) {
		logmsg("SPAWN %u into prepared slot: sending the plan: %s", sb->id, strerror(-r));
		sb_fail(sb, ST_PLAN, -r);
	}
	return;
fail:
	if (late_ns >= 0)
		close(late_ns);
	close_stdio(par);
	close_stdio(chi);
	ev_spawn_failed(sb->id, stage, err, why);
}

void handle_spawn(uint32_t id, struct plan *pl, const uint8_t *body, uint32_t len, uint64_t recv_ns)
{
	const char *why = "";
	int r = spawn_plan_check(pl, &why);
	if (r < 0) {
		ev_spawn_failed(id, ST_PLAN, -r, why);
		return;
	}
	struct sandbox *sb = sb_find(id);
	if (sb && sb->warm && (sb->state == S_PREPARING || sb->state == S_READY)) {
		spawn_into_slot(sb, pl, body, len, recv_ns);
		return;
	}
	if (pl->flags & FLAG_HOLD) {
		ev_spawn_failed(id, ST_PLAN, EINVAL, "HOLD needs a prepared slot");
		return;
	}
	if (sb) {
		ev_spawn_failed(id, ST_PLAN, EEXIST, "id already in use");
		return;
	}
	start_init(id, pl, recv_ns, false);
}
