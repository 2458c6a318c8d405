/*
 * The sandboxed command's last steps before execve, shared by SPAWN (a child of the init) and EXEC.
 *
 * Threat model: runs as root inside the sandbox's namespaces, after the root is built, before any
 * untrusted code. Order matters: securebits (needs CAP_SETPCAP) -> WORKDIR (mkdir/chown need caps)
 * -> setgroups/setresgid/setresuid -> clear every capability -> chdir -> no_new_privs -> Landlock ->
 * seccomp (last: it also forbids what we did before) -> execvpe. Any failure is reported on the
 * CLOEXEC setup pipe; a successful execve closes it, which is how the launcher learns of success.
 */
#include "launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* mkdir -p inside the sandbox root (we are already pivoted); new components belong to uid/gid */
static int make_workdir(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;
	if (stat(path, &st) == 0)
		return 0;
	char buf[PATH_MAX];
	if (strlen(path) >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, path);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, 0755) == 0) {
				if (lchown(buf, uid, gid) < 0)
					return -1;
			} else if (errno != EEXIST) {
				return -1;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

void command_exec(const struct cmd_spec *c)
{
	int sfd = c->setup_fd;
	TMARK(6);
	sigset_t none;
	sigemptyset(&none);
	/* the launcher ignores SIGPIPE and the init blocks everything: neither may leak into the command */
	if (signal(SIGPIPE, SIG_DFL) == SIG_ERR || sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		child_fail(sfd, ST_SIGNALS, errno);
	if (setsid() < 0)
		child_fail(sfd, ST_SETSID, errno);
	if (c->tty && ioctl(c->in_fd, TIOCSCTTY, 0) < 0)
		child_fail(sfd, ST_TTY, errno);
	if (dup2(c->in_fd, 0) < 0 || dup2(c->out_fd, 1) < 0 || dup2(c->err_fd, 2) < 0)
		child_fail(sfd, ST_STDIO, errno);
	if (sfd < 3 && (sfd = fcntl(sfd, F_DUPFD_CLOEXEC, 3)) < 0)
		_exit(127);
	/* approvals only with n_notify > 0: EXEC and warm-slot plans build cmd_spec without them */
	bool notify = c->n_notify > 0 && c->notify_fd >= 0;
	int keep[] = { 0, 1, 2, sfd, c->notify_fd };
	close_fds_except(keep, notify ? 5 : 4);
	umask(022);
	struct rlimit rl = { G.nofile.cur, G.nofile.max };
	setrlimit(RLIMIT_NOFILE, &rl);

	TMARK(7);
	if (lock_securebits() < 0)
		child_fail(sfd, ST_SECUREBITS, errno);
	if (make_workdir(c->workdir, c->uid, c->gid) < 0)
		child_fail(sfd, ST_WORKDIR, errno);
	if (setgroups(0, NULL) < 0)
		child_fail(sfd, ST_SETGROUPS, errno);
	if (setresgid(c->gid, c->gid, c->gid) < 0)
		child_fail(sfd, ST_SETRESGID, errno);
	if (setresuid(c->uid, c->uid, c->uid) < 0)
		child_fail(sfd, ST_SETRESUID, errno);
	if (clear_capabilities() < 0)
		child_fail(sfd, ST_CAPABILITIES, errno);
	if (chdir(c->workdir) < 0)
		child_fail(sfd, ST_WORKDIR, errno);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(sfd, ST_NO_NEW_PRIVS, errno);
	TMARK(8);
	if (!c->no_landlock && landlock_apply(c->allow_listen) < 0)
		child_fail(sfd, ST_LANDLOCK, errno);
	TMARK(9);
	if (notify && notify_install(c) < 0)
		child_fail(sfd, ST_NOTIFY, errno);
	if (seccomp_install(c->allow_listen) < 0)
		child_fail(sfd, ST_SECCOMP, errno);
	/* execvpe semantics with the PATH from ENV: glibc's execvp reads PATH from environ */
	TMARK(10);
	environ = c->envp;
	execvp(c->argv[0], c->argv);
	child_fail(sfd, ST_EXECVE, errno);
}
