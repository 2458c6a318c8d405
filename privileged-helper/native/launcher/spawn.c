/*
 * SPAWN: launcher-side preparation (tmpfs, pipes or pty, clone3 into new namespaces and the target
 * cgroup) and the sandbox init (pid 1 of the new pid namespace).
 *
 * Threat model: the plan comes from the helper and is validated here (paths via mounts.c, cgroup
 * files must be on cgroupfs, NETNS must be a network-namespace file; without NETNS the init joins a
 * fresh, never-used namespace from netns_pool.c, or gets CLONE_NEWNET when the pool is empty, so a
 * sandbox never shares a network namespace it did not ask for). The launcher never waits for a
 * child: setup success/failure arrives on the setup pipe, which the event loop watches. The init runs
 * only our code; it builds the root before any sandboxed code exists, then forks the command and
 * keeps nothing the command could use: no capabilities (empty bounding set, empty sets), not
 * dumpable, no host fds except the status pipe. Its real uid is switched to the command's uid so it
 * can still forward signals to the command without CAP_KILL.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#define NS_GET_NSTYPE _IO(0xb7, 0x3)

int open_cgroup2(const char *path, const char **why)
{
	struct statfs sf;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*why = "open CGROUP2";
		return -errno;
	}
	if (fstatfs(fd, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		close(fd);
		*why = "CGROUP2 is not a cgroup2 directory";
		return -EINVAL;
	}
	return fd;
}

int open_cgroup_procs(const char *path, const char **why)
{
	const char *base = strrchr(path, '/');
	if (!base || strcmp(base, "/cgroup.procs") != 0) {
		*why = "CGROUP_PROCS must name a cgroup.procs file";
		return -EINVAL;
	}
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*why = "open CGROUP_PROCS";
		return -errno;
	}
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0 || (sf.f_type != CGROUP_SUPER_MAGIC && sf.f_type != CGROUP2_SUPER_MAGIC)) {
		close(fd);
		*why = "CGROUP_PROCS is not on a cgroup filesystem";
		return -EINVAL;
	}
	return fd;
}

struct init_args {
	int setup_w, status_w, netns_fd;
	int procs_fd[MAX_CGROUP_PROCS];
	uint32_t n_procs;
	struct root_spec root;
	struct cmd_spec cmd;
};

static int command_trampoline(void *arg)
{
	command_exec(arg);
}

static void init_main(const struct init_args *a) __attribute__((noreturn));
static void init_main(const struct init_args *a)
{
	int sfd = a->setup_w;
	TMARK(1);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(sfd, ST_PDEATHSIG, errno);
	struct pollfd pf = { .fd = G.self_pidfd, .events = POLLIN };
	if (poll(&pf, 1, 0) > 0) /* the launcher already died: PDEATHSIG came too late for us */
		_exit(1);
	int keep[8 + MAX_CGROUP_PROCS] = { sfd, a->status_w, a->cmd.in_fd, a->cmd.out_fd, a->cmd.err_fd, a->netns_fd };
	int n = 6;
	for (uint32_t i = 0; i < a->n_procs; i++)
		keep[n++] = a->procs_fd[i];
	close_fds_except(keep, n);
	umask(0);
	for (uint32_t i = 0; i < a->n_procs; i++) {
		if (write_file_str(a->procs_fd[i], "0") < 0) /* "0" = the writer: us, before setup continues */
			child_fail(sfd, ST_CGROUP_PROCS, errno);
		close(a->procs_fd[i]);
	}
	TMARK(2);
	if (a->netns_fd >= 0) { /* NETNS or pooled: first network-related step, before lo is touched */
		if (setns(a->netns_fd, CLONE_NEWNET) < 0)
			child_fail(sfd, ST_SETNS_NETNS, errno);
		close(a->netns_fd);
	}
	if (setsid() < 0)
		child_fail(sfd, ST_SETSID, errno);
	TMARK(3);
	build_root(&a->root, sfd);
	TMARK(4);
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
	static char cmd_stack[64 * 1024] __attribute__((aligned(16)));
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

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0)
			continue;
		if (sig == SIGCHLD) {
			int st;
			pid_t p;
			while ((p = waitpid(-1, &st, WNOHANG)) > 0)
				if (p == cmd) {
					uint32_t s = (uint32_t)st;
					(void)!write(a->status_w, &s, sizeof s);
					_exit(0); /* the kernel kills the rest of the pid namespace */
				}
			continue;
		}
		switch (sig) {
		case SIGTERM: case SIGINT: case SIGHUP: case SIGQUIT: case SIGUSR1: case SIGUSR2: case SIGWINCH:
			if (kill(-cmd, sig) < 0) /* the command may not have called setsid yet */
				kill(cmd, sig);
		}
	}
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

void handle_spawn(uint32_t id, struct plan *pl, uint64_t recv_ns)
{
	const char *why = "";
	unsigned stage = ST_PLAN;
	int err = EINVAL;
	char *dir = NULL, *opts = NULL, *hostname = NULL, *workdir = NULL, *cg2 = NULL;
	char **argv = NULL, **envp = NULL, **procs = NULL;
	int cg_fd = -1, setup[2] = { -1, -1 }, status[2] = { -1, -1 }, par[3] = { -1, -1, -1 }, chi[3] = { -1, -1, -1 };
	struct init_args a;
	memset(&a, 0, sizeof a);
	a.netns_fd = -1;
	bool mounted = false;

	if (!pl->n_arg || !pl->n_lower || !HAVE(pl, T_SANDBOX_DIR) || !HAVE(pl, T_TMPFS_BYTES) ||
	    !HAVE(pl, T_HOSTNAME) || !HAVE(pl, T_WORKDIR) || !HAVE(pl, T_UID) || !HAVE(pl, T_GID) ||
	    !HAVE(pl, T_CGROUP2) || !HAVE(pl, T_FLAGS)) {
		why = "SPAWN needs ARG, LOWER, SANDBOX_DIR, TMPFS_BYTES, HOSTNAME, WORKDIR, UID, GID, CGROUP2, FLAGS";
		goto fail;
	}
	if (sb_find(id)) {
		err = EEXIST;
		why = "id already in use";
		goto fail;
	}
	if (pl->flags & ~FLAGS_KNOWN || pl->uid >= 0xffffffffu || pl->gid >= 0xffffffffu || pl->hostname.len > 64 ||
	    !pl->workdir.len || pl->workdir.p[0] != '/' || pl->n_procs > MAX_CGROUP_PROCS || pl->rows > 0xffff ||
	    pl->cols > 0xffff || pl->tmpfs_bytes == 0) {
		why = "bad FLAGS, UID, GID, HOSTNAME, WORKDIR, ROWS, COLS, TMPFS_BYTES or too many CGROUP_PROCS";
		goto fail;
	}
	int r;
	if ((r = validate_lowers(pl, &why)) < 0 || (r = validate_mounts(pl, &why)) < 0) {
		err = -r;
		goto fail;
	}
	stage = ST_SANDBOX_DIR;
	if ((r = validate_sandbox_dir(pl->sandbox_dir, &dir, &why)) < 0) {
		err = -r;
		goto fail;
	}
	stage = ST_PLAN;
	if (!(opts = overlay_options(pl, dir, &why)))
		goto fail;
	hostname = str_dup0(pl->hostname);
	workdir = str_dup0(pl->workdir);
	cg2 = str_dup0(pl->cgroup2);
	argv = strv_from(pl->arg, pl->n_arg);
	envp = strv_from(pl->env, pl->n_env);
	procs = strv_from(pl->procs, pl->n_procs);
	if (!hostname || !workdir || !cg2 || !argv || !envp || !procs) {
		err = ENOMEM;
		goto fail;
	}
	stage = ST_CGROUP2;
	if ((cg_fd = open_cgroup2(cg2, &why)) < 0) {
		err = -cg_fd;
		goto fail;
	}
	stage = ST_CGROUP_PROCS_OPEN;
	for (uint32_t i = 0; i < pl->n_procs; i++) {
		if ((r = open_cgroup_procs(procs[i], &why)) < 0) {
			err = -r;
			goto fail;
		}
		a.procs_fd[a.n_procs++] = r;
	}
	if (HAVE(pl, T_NETNS)) {
		stage = ST_NETNS_OPEN;
		char *ns = str_dup0(pl->netns);
		a.netns_fd = ns ? open(ns, O_RDONLY | O_CLOEXEC) : -1;
		free(ns);
		struct statfs sf;
		if (a.netns_fd < 0 || fstatfs(a.netns_fd, &sf) < 0 || sf.f_type != NSFS_MAGIC ||
		    ioctl(a.netns_fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
			err = a.netns_fd < 0 ? errno : EINVAL;
			why = "NETNS is not a network namespace file";
			goto fail;
		}
	}
	stage = ST_MOUNT_TMPFS;
	if ((r = sandbox_tmpfs_create(dir, pl->tmpfs_bytes)) < 0) {
		err = -r;
		why = "tmpfs on SANDBOX_DIR";
		goto fail;
	}
	mounted = true;
	stage = ST_PIPES;
	if (pipe2(setup, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) {
		err = errno;
		goto fail;
	}
	bool tty = pl->flags & FLAG_TTY;
	if ((r = make_stdio(tty, pl->rows, pl->cols, par, chi)) < 0) {
		stage = tty ? ST_PTY : ST_PIPES;
		err = -r;
		goto fail;
	}
	fcntl(setup[0], F_SETFL, O_NONBLOCK);
	fcntl(status[0], F_SETFL, O_NONBLOCK);

	a.setup_w = setup[1];
	a.status_w = status[1];
	a.root = (struct root_spec){ .dir = dir, .overlay_opts = opts, .hostname = hostname, .mounts = pl->mount,
				     .n_mounts = pl->n_mount };
	a.cmd = (struct cmd_spec){ .argv = argv, .envp = envp, .workdir = workdir, .uid = (uid_t)pl->uid,
				   .gid = (gid_t)pl->gid, .tty = tty, .allow_listen = pl->flags & FLAG_ALLOW_LISTEN,
				   .no_landlock = pl->flags & FLAG_NO_LANDLOCK, .in_fd = chi[0], .out_fd = chi[1],
				   .err_fd = chi[2], .setup_fd = setup[1] };
	/* No NETNS: a pre-created namespace from the pool saves ~1 ms of clone3 (netns_pool.c); the
	 * init joins it exactly like a NETNS one. Empty pool: CLONE_NEWNET as before. */
	if (a.netns_fd < 0)
		a.netns_fd = netns_pool_take();
	uint64_t flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP |
			 CLONE_INTO_CGROUP | CLONE_PIDFD | (a.netns_fd >= 0 ? 0 : CLONE_NEWNET);
	int pidfd = -1;
	TMARK(0);
	pid_t pid = sys_clone3(flags, &pidfd, cg_fd);
	if (pid == 0)
		init_main(&a);
	if (pid < 0) {
		stage = ST_CLONE3;
		err = errno;
		why = "clone3";
		goto fail;
	}
	close(setup[1]);
	close(status[1]);
	close_stdio(chi);
	struct sandbox *sb = sb_new(id, K_SANDBOX);
	if (!sb) { /* out of memory with a live child: kill it, nothing else we can do well */
		sys_pidfd_send_signal(pidfd, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pidfd);
		setup[1] = status[1] = -1;
		err = ENOMEM;
		stage = ST_CLONE3;
		goto fail;
	}
	sb->pid = pid;
	sb->pidfd = pidfd;
	sb->setup_fd = setup[0];
	sb->status_fd = status[0];
	sb->in_fd = par[0];
	sb->out_fd = par[1];
	sb->err_fd = par[2];
	sb->tty = tty;
	sb->recv_ns = recv_ns;
	sb->flags = pl->flags;
	sb->dir = dir;
	sb->cgroup2 = cg2;
	sb->procs = procs;
	sb->n_procs = pl->n_procs;
	sb_watch(sb, sb->setup_fd, R_SETUP, EPOLLIN);
	sb_watch(sb, sb->status_fd, R_STATUS, EPOLLIN);
	sb_watch(sb, sb->pidfd, R_PIDFD, EPOLLIN);
	for (uint32_t i = 0; i < a.n_procs; i++)
		close(a.procs_fd[i]);
	if (a.netns_fd >= 0)
		close(a.netns_fd);
	close(cg_fd);
	free(opts);
	free(hostname);
	free(workdir);
	free(argv);
	free(envp);
	return;

fail:
	for (int i = 0; i < 2; i++) {
		if (setup[i] >= 0)
			close(setup[i]);
		if (status[i] >= 0)
			close(status[i]);
	}
	close_stdio(par);
	close_stdio(chi);
	for (uint32_t i = 0; i < a.n_procs; i++)
		close(a.procs_fd[i]);
	if (a.netns_fd >= 0)
		close(a.netns_fd);
	if (cg_fd >= 0)
		close(cg_fd);
	if (mounted)
		sandbox_tmpfs_destroy(dir);
	else if (dir && stage != ST_SANDBOX_DIR)
		rmdir(dir);
	/* the event goes out only when nothing is left behind, so the helper may check at once */
	ev_spawn_failed(id, stage, err, why);
	free(dir);
	free(opts);
	free(hostname);
	free(workdir);
	free(cg2);
	free(argv);
	free(envp);
	free(procs);
}
