/*
 * build/ai-sandbox-init: what a sandbox's pid-1 init runs once the command is started. The launcher
 * copies this (static) binary once into a shared read-only layer (<state-dir>/base/init-layer, the top
 * lower dir of every sandbox overlay, see initbin.c), seen in the sandbox as /.ai-sandbox/init; its init,
 * after forking the command, execs it as `/.ai-sandbox/init CMDPID STATUSFD [LAUNCHERPIDFD]`.
 *
 * Why: the init is a fork of the launcher and would otherwise map the launcher binary, a file on a
 * host mount the sandbox's mount namespace does not contain. CRIU cannot dump such a mapping
 * ("Can't lookup mount"), so a sandbox could never be checkpointed. After this exec the init maps
 * only a file inside the sandbox root, which CRIU dumps and maps again from the restored overlay.
 * Static, so no ld.so or libc from the sandbox's layers is mapped either.
 *
 * Threat model: the exec'd file was opened by the init before the command started and is immutable
 * in the upper layer (the command cannot swap or rewrite it). The blocked signal mask survives
 * execve; PDEATHSIG does not when execve is "secure" (the init's real uid is the command's uid), so it
 * is set again and the launcher's pidfd (passed only for this check, then closed) tells whether the
 * launcher died in between. DUMPABLE is reset by execve: set to 0 again so the command (same uid)
 * cannot ptrace or open /proc files of its init.
 */
#include "initloop.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

static int num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return (*s && !*end && v >= 0 && v < 0x7fffffff) ? (int)v : -1;
}

int main(int argc, char **argv)
{
	int cmd = argc >= 3 ? num(argv[1]) : -1, status_fd = argc >= 3 ? num(argv[2]) : -1;
	if (argc < 3 || argc > 4 || cmd <= 0 || status_fd < 0)
		return 2;
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (argc == 4) {
		int pidfd = num(argv[3]);
		struct pollfd pf = { .fd = pidfd, .events = POLLIN };
		if (pidfd >= 0 && poll(&pf, 1, 0) > 0 && (pf.revents & POLLIN))
			_exit(1); /* the launcher died before PDEATHSIG was set again: die with it */
		if (pidfd >= 0)
			close(pidfd);
	}
	init_loop(cmd, status_fd);
}
