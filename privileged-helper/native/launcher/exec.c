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
#include <unistd.h>

struct exec_args {
	int target_pidfd;
	struct cgroup_fds cg; /* the target's v1 cgroup.procs files (its CGROUP2: joined at clone3) */
	struct cmd_spec cmd;
};

static void exec_child(const struct exec_args *a) __attribute__((noreturn));
static void exec_child(const struct exec_args *a)
{
	int sfd = a->cmd.setup_fd;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(sfd, ST_PDEATHSIG, errno);
	int keep[8 + MAX_CGROUP_PROCS] = { sfd, a->target_pidfd, a->cmd.in_fd, a->cmd.out_fd, a->cmd.err_fd };
	close_fds_except(keep, cgroup_fds_keep(&a->cg, keep, 5));
	cgroup_fds_join(&a->cg, sfd);
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
	int err = EINVAL, setup[2] = { -1, -1 }, par[3] = { -1, -1, -1 }, chi[3] = { -1, -1, -1 };
	char **argv = NULL, **envp = NULL;
	char *workdir = NULL;
	struct exec_args a;
	memset(&a, 0, sizeof a);
	a.cg.cg2 = -1;

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
	if ((r = cgroup_fds_open(&a.cg, t->cgroup2, t->procs, t->n_procs, &stage, &why)) < 0) {
		err = -r;
		goto fail;
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
	pid_t pid = sys_clone3(CLONE_PIDFD | CLONE_INTO_CGROUP, &pidfd, a.cg.cg2);
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
	if (!sb_start(&(struct sb_start){ .id = id, .kind = K_EXEC, .state = S_SETUP, .pid = pid, .pidfd = pidfd,
					  .setup_fd = setup[0], .status_fd = -1, .stdio = { par[0], par[1], par[2] },
					  .tty = tty, .recv_ns = recv_ns, .flags = t->flags })) {
		err = ENOMEM;
		stage = ST_CLONE3;
		goto fail;
	}
	cgroup_fds_close(&a.cg);
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
	cgroup_fds_close(&a.cg);
	free(workdir);
	free(argv);
	free(envp);
}
