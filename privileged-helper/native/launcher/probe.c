/*
 * --probe: report which kernel features work, each tried for real in a throw-away child so a
 * failure (or a crash) cannot affect the caller; prints one JSON object and exits 0.
 *
 * Threat model: no input but the kernel. The overlay/tmpfs trials mount only inside a private mount
 * namespace of the child, on a temporary directory we create and remove, so the host sees nothing.
 */
#include "launcher.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char errors[4096];
static size_t errlen;
static char tmpdir[64];

static void add_error(const char *feature, int err)
{
	errlen += (size_t)snprintf(errors + errlen, sizeof errors - errlen, "%s\"%s\":\"%s\"", errlen ? "," : "",
				   feature, strerror(err));
	if (errlen >= sizeof errors)
		errlen = sizeof errors - 1;
}

/* Run fn in a forked child; the child exits with 0 or an errno. */
static bool trial(const char *feature, int (*fn)(void *), void *arg)
{
	pid_t p = fork();
	if (p == 0) {
		alarm(5);
		int r = fn(arg);
		_exit(r < 0 ? (errno ? errno : EIO) & 0xff : 0);
	}
	int st = 0;
	if (p < 0 || waitpid(p, &st, 0) < 0) {
		add_error(feature, errno);
		return false;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return true;
	add_error(feature, WIFEXITED(st) ? WEXITSTATUS(st) : EINTR);
	return false;
}

static int t_clone3(void *a)
{
	(void)a;
	int pidfd = -1;
	pid_t p = sys_clone3(CLONE_PIDFD, &pidfd, -1);
	if (p == 0)
		_exit(0);
	if (p < 0)
		return -1;
	return waitpid(p, NULL, 0) < 0 ? -1 : 0;
}

static int t_unshare(void *a) { return unshare((int)(intptr_t)a); }

static int t_mount(void *a)
{
	bool overlay = a != NULL;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	if (mount("tmpfs", tmpdir, "tmpfs", 0, "size=1m") < 0)
		return -1;
	if (!overlay)
		return 0;
	char l[96], u[96], w[96], m[96], opts[400];
	snprintf(l, sizeof l, "%s/l", tmpdir);
	snprintf(u, sizeof u, "%s/u", tmpdir);
	snprintf(w, sizeof w, "%s/w", tmpdir);
	snprintf(m, sizeof m, "%s/m", tmpdir);
	if (mkdir(l, 0755) < 0 || mkdir(u, 0755) < 0 || mkdir(w, 0755) < 0 || mkdir(m, 0755) < 0)
		return -1;
	snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", l, u, w);
	return mount("overlay", m, "overlay", 0, opts);
}

static int t_seccomp(void *a)
{
	bool notif = a != NULL;
	struct sock_filter f[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	struct sock_filter fn[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0), /* nr */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog p = { .len = notif ? 4 : 1, .filter = notif ? fn : f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, notif ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &p);
	return r < 0 ? -1 : 0;
}

static int t_pidfd(void *a)
{
	(void)a;
	int fd = sys_pidfd_open(getpid());
	return fd < 0 ? -1 : 0;
}

int probe_main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/ai-sandbox-probe-XXXXXX");
	bool have_tmp = mkdtemp(tmpdir) != NULL;
	bool clone3 = trial("clone3", t_clone3, NULL);
	static const struct { const char *name; int flag; } ns[] = {
		{ "pid", CLONE_NEWPID }, { "mnt", CLONE_NEWNS }, { "uts", CLONE_NEWUTS }, { "ipc", CLONE_NEWIPC },
		{ "net", CLONE_NEWNET }, { "cgroup", CLONE_NEWCGROUP }, { "user", CLONE_NEWUSER },
	};
	bool nsok[7];
	for (int i = 0; i < 7; i++)
		nsok[i] = trial(ns[i].name, t_unshare, (void *)(intptr_t)ns[i].flag);
	bool tmpfs = have_tmp && trial("tmpfs", t_mount, NULL);
	bool overlay = have_tmp && trial("overlay", t_mount, (void *)1);
	if (!have_tmp)
		add_error("tmpfs", errno), add_error("overlay", errno);
	else
		rmdir(tmpdir);
	bool seccomp = trial("seccomp", t_seccomp, NULL);
	bool notif = trial("seccompUserNotif", t_seccomp, (void *)1);
	int ll = landlock_abi_version();
	if (!ll)
		add_error("landlock", errno);
	bool pidfd = trial("pidfd", t_pidfd, NULL);
	printf("{\"clone3\":%s,\"namespaces\":{", clone3 ? "true" : "false");
	for (int i = 0; i < 7; i++)
		printf("%s\"%s\":%s", i ? "," : "", ns[i].name, nsok[i] ? "true" : "false");
	printf("},\"overlay\":%s,\"tmpfs\":%s,\"seccomp\":%s,\"seccompUserNotif\":%s,\"landlockAbi\":%d,"
	       "\"pidfd\":%s,\"errors\":{%s}}\n",
	       overlay ? "true" : "false", tmpfs ? "true" : "false", seccomp ? "true" : "false",
	       notif ? "true" : "false", ll, pidfd ? "true" : "false", errors);
	return 0;
}
