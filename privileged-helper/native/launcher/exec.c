/*
 * EXEC: run another command inside a running sandbox.
 *
 * Threat model: the target sandbox is running untrusted code, so nothing here may trust its
 * filesystem: we enter its namespaces through the init's pidfd (setns; no /proc path lookups inside
 * the sandbox), join its cgroups through paths the launcher validated at SPAWN (re-validated now),
 * and apply exactly the same command hardening as SPAWN (command.c). The target's ALLOW_LISTEN and
 * NO_LANDLOCK apply. The launcher briefly sets its own pid_ns_for_children to the target's so the new
 * process is born in the target pid namespace as our direct child (a pidfd and wait status for
 * free); it is restored right after clone3 and nothing else forks in between (single thread).
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

struct exec_args {
	int target_pidfd;
	int procs_fd[MAX_CGROUP_PROCS];
	uint32_t n_procs;
	struct cmd_spec cmd;
};

static void exec_child(const struct exec_args *a) __attribute__((noreturn));
static void exec_child(const struct exec_args *a)
{
	int sfd = a->cmd.setup_fd;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(sfd, ST_PDEATHSIG, errno);
	int keep[8 + MAX_CGROUP_PROCS] = { sfd, a->target_pidfd, a->cmd.in_fd, a->cmd.out_fd, a->cmd.err_fd };
	int n = 5;
	for (uint32_t i = 0; i < a->n_procs; i++)
		keep[n++] = a->procs_fd[i];
	close_fds_except(keep, n);
	for (uint32_t i = 0; i < a->n_procs; i++) {
		if (write_file_str(a->procs_fd[i], "0") < 0)
			child_fail(sfd, ST_CGROUP_PROCS, errno);
		close(a->procs_fd[i]);
	}
	if (setns(a->target_pidfd, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP) < 0)
		child_fail(sfd, ST_SETNS, errno);
	close(a->target_pidfd);
	if (drop_bounding_set() < 0)
		child_fail(sfd, ST_CAPBSET, errno);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		child_fail(sfd, ST_DUMPABLE, errno);
	command_exec(&a->cmd);
}

void handle_exec(uint32_t id, struct plan *pl, uint64_t recv_ns)
{
	const char *why = "";
	unsigned stage = ST_PLAN;
	int err = EINVAL, cg_fd = -1, setup[2] = { -1, -1 }, par[3] = { -1, -1, -1 }, chi[3] = { -1, -1, -1 };
	char **argv = NULL, **envp = NULL;
	char *workdir = NULL;
	struct exec_args a;
	memset(&a, 0, sizeof a);

	if (!pl->n_arg || !HAVE(pl, T_TARGET) || !HAVE(pl, T_WORKDIR) || !HAVE(pl, T_UID) || !HAVE(pl, T_GID) ||
	    !HAVE(pl, T_FLAGS)) {
		why = "EXEC needs TARGET, ARG, WORKDIR, UID, GID, FLAGS";
		goto fail;
	}
	if (sb_find(id)) {
		err = EEXIST;
		why = "id already in use";
		goto fail;
	}
	if (pl->flags & ~FLAGS_KNOWN || pl->uid >= 0xffffffffu || pl->gid >= 0xffffffffu || !pl->workdir.len ||
	    pl->workdir.p[0] != '/' || pl->rows > 0xffff || pl->cols > 0xffff || pl->target > 0xffffffffu) {
		why = "bad FLAGS, UID, GID, WORKDIR, ROWS, COLS or TARGET";
		goto fail;
	}
	stage = ST_TARGET;
	struct sandbox *t = sb_find((uint32_t)pl->target);
	if (!t || t->kind != K_SANDBOX || t->state != S_RUNNING) {
		err = ESRCH;
		why = "TARGET is not a running sandbox";
		goto fail;
	}
	stage = ST_PLAN;
	workdir = str_dup0(pl->workdir);
	argv = strv_from(pl->arg, pl->n_arg);
	envp = strv_from(pl->env, pl->n_env);
	if (!workdir || !argv || !envp) {
		err = ENOMEM;
		goto fail;
	}
	int r;
	stage = ST_CGROUP2;
	if ((cg_fd = open_cgroup2(t->cgroup2, &why)) < 0) {
		err = -cg_fd;
		goto fail;
	}
	stage = ST_CGROUP_PROCS_OPEN;
	for (uint32_t i = 0; i < t->n_procs; i++) {
		if ((r = open_cgroup_procs(t->procs[i], &why)) < 0) {
			err = -r;
			goto fail;
		}
		a.procs_fd[a.n_procs++] = r;
	}
	stage = ST_PIPES;
	if (pipe2(setup, O_CLOEXEC) < 0) {
		err = errno;
		goto fail;
	}
	fcntl(setup[0], F_SETFL, O_NONBLOCK);
	bool tty = pl->flags & FLAG_TTY;
	if ((r = make_stdio(tty, pl->rows, pl->cols, par, chi)) < 0) {
		stage = tty ? ST_PTY : ST_PIPES;
		err = -r;
		goto fail;
	}
	a.target_pidfd = t->pidfd;
	a.cmd = (struct cmd_spec){ .argv = argv, .envp = envp, .workdir = workdir, .uid = (uid_t)pl->uid,
				   .gid = (gid_t)pl->gid, .tty = tty, .allow_listen = t->flags & FLAG_ALLOW_LISTEN,
				   .no_landlock = t->flags & FLAG_NO_LANDLOCK, .in_fd = chi[0], .out_fd = chi[1],
				   .err_fd = chi[2], .setup_fd = setup[1] };
	stage = ST_SETNS;
	if (setns(t->pidfd, CLONE_NEWPID) < 0) { /* only pid_ns_for_children changes */
		err = errno;
		goto fail;
	}
	int pidfd = -1;
	pid_t pid = sys_clone3(CLONE_PIDFD | CLONE_INTO_CGROUP, &pidfd, cg_fd);
	int clone_err = errno;
	if (pid == 0)
		exec_child(&a);
	if (setns(G.self_pidns_fd, CLONE_NEWPID) < 0) {
		/* every later SPAWN would nest inside this sandbox: refuse to continue */
		logmsg("fatal: cannot restore pid_ns_for_children: %s", strerror(errno));
		_exit(1);
	}
	if (pid < 0) {
		stage = ST_CLONE3;
		err = clone_err;
		goto fail;
	}
	close(setup[1]);
	setup[1] = -1;
	close_stdio(chi);
	struct sandbox *sb = sb_new(id, K_EXEC, S_SETUP);
	if (!sb) {
		sys_pidfd_send_signal(pidfd, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pidfd);
		err = ENOMEM;
		stage = ST_CLONE3;
		goto fail;
	}
	sb->pid = pid;
	sb->pidfd = pidfd;
	sb->setup_fd = setup[0];
	sb->in_fd = par[0];
	sb->out_fd = par[1];
	sb->err_fd = par[2];
	sb->tty = tty;
	sb->recv_ns = recv_ns;
	sb->flags = t->flags;
	sb_watch(sb, sb->setup_fd, R_SETUP, EPOLLIN);
	sb_watch(sb, sb->pidfd, R_PIDFD, EPOLLIN);
	for (uint32_t i = 0; i < a.n_procs; i++)
		close(a.procs_fd[i]);
	close(cg_fd);
	free(workdir);
	free(argv);
	free(envp);
	return;
fail:
	ev_spawn_failed(id, stage, err, why);
	for (int i = 0; i < 2; i++)
		if (setup[i] >= 0)
			close(setup[i]);
	close_stdio(par);
	close_stdio(chi);
	for (uint32_t i = 0; i < a.n_procs; i++)
		close(a.procs_fd[i]);
	if (cg_fd >= 0)
		close(cg_fd);
	free(workdir);
	free(argv);
	free(envp);
}
