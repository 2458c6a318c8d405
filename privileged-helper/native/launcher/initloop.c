/*
 * The sandbox init's steady state (pid 1 of the sandbox's pid namespace), after it has started the
 * command: reap every child, forward the polite signals to the command's process group, and when the
 * command exits write its wait status (4 bytes) to the status pipe and exit, which makes the kernel
 * kill whatever is left in the pid namespace.
 *
 * init_loop_for is the same loop for a bounded time: the launcher's init runs it before it re-execs
 * (spawn.c), so a short command ends without that exec competing with it.
 *
 * Compiled into both the launcher (its init falls back to it if the in-sandbox binary cannot be
 * exec'd) and build/ai-sandbox-init (what the init normally runs, see init.c), so the two cannot
 * drift apart. Threat model: runs with every signal blocked (the caller's mask, which survives
 * execve), no capabilities, not dumpable; it reads nothing but wait statuses and signal numbers.
 */
#include "initloop.h"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One signal: SIGCHLD reaps (and ends the init with the command's status), the polite ones are
 * forwarded to the command's process group, the rest are ignored. */
static void on_signal(int sig, pid_t cmd, int status_fd)
{
	if (sig == SIGCHLD) {
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == cmd) {
				uint32_t s = (uint32_t)st;
				(void)!write(status_fd, &s, sizeof s);
				_exit(0); /* the kernel kills the rest of the pid namespace */
			}
		return;
	}
	switch (sig) {
	case SIGTERM: case SIGINT: case SIGHUP: case SIGQUIT: case SIGUSR1: case SIGUSR2: case SIGWINCH:
		if (kill(-cmd, sig) < 0) /* the command may not have called setsid yet */
			kill(cmd, sig);
	}
}

void init_loop(pid_t cmd, int status_fd)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL); /* already so; cheap insurance for a hand-started init */
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig >= 0)
			on_signal(sig, cmd, status_fd);
	}
}

void init_loop_for(pid_t cmd, int status_fd, unsigned ms)
{
	sigset_t all;
	sigfillset(&all);
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t left = (int64_t)ms * 1000000 - ((now.tv_sec - t0.tv_sec) * 1000000000LL + (now.tv_nsec - t0.tv_nsec));
		if (left <= 0)
			return;
		struct timespec ts = { .tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL };
		siginfo_t si;
		int sig = sigtimedwait(&all, &si, &ts);
		if (sig == INIT_SIG_SETTLE_NOW)
			return;
		if (sig >= 0)
			on_signal(sig, cmd, status_fd);
	}
}
