#!/usr/bin/env python3
"""Builds a PATCHED COPY of the launcher (into criu-proto/build/, the real sources are not touched) whose
sandbox init, once the command is started, re-executes itself from `/.ai-sandbox/launcher` INSIDE the
sandbox (the helper puts that copy into the skeleton layer). Why: CRIU dumps every file mapping by its
mount, and the launcher binary the init was forked from lives on a host mount the sandbox's mount
namespace does not contain ("Can't lookup mount=27 for fd=-3 path=.../ai-sandbox-launcher").
After the re-exec the init maps only files on the overlay root, which CRIU can dump and restore."""
import os, re, shutil, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, '..', 'launcher')
OUT = os.path.join(HERE, 'build')
tmp = os.path.join(OUT, 'src')
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)
for f in os.listdir(SRC):
    if f.endswith(('.c', '.h')):
        shutil.copy(os.path.join(SRC, f), tmp)


def patch(fn, old, new, count=1):
    p = os.path.join(tmp, fn)
    s = open(p).read()
    if s.count(old) != count:
        sys.exit('patch: %r not found exactly %d time(s) in %s (launcher changed?)' % (old[:60], count, fn))
    open(p, 'w').write(s.replace(old, new))


# 1. spawn.c: after the command is started and capabilities are gone, exec the in-sandbox copy in
#    "--init CMDPID STATUSFD" mode. The signal mask (everything blocked) survives execve.
patch('spawn.c', '''	clear_capabilities();

	for (;;) {''', '''	clear_capabilities();
	{
		char a1[16], a2[16];
		snprintf(a1, sizeof a1, "%d", (int)cmd);
		snprintf(a2, sizeof a2, "%d", a->status_w);
		fcntl(a->status_w, F_SETFD, 0);
		char *av[] = { "ai-sandbox-init", "--init", a1, a2, NULL }, *ev[] = { NULL };
		execve("/.ai-sandbox/launcher", av, ev);
		fcntl(a->status_w, F_SETFD, FD_CLOEXEC); /* not there: keep running from the host binary */
	}

	for (;;) {''')
# 2. spawn.c: the same wait loop as a function the re-executed init runs.
patch('spawn.c', '''int make_stdio(bool tty''', '''void reexec_init_main(pid_t cmd, int status_w) __attribute__((noreturn));
void reexec_init_main(pid_t cmd, int status_w)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
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
					(void)!write(status_w, &s, sizeof s);
					_exit(0);
				}
			continue;
		}
		switch (sig) {
		case SIGTERM: case SIGINT: case SIGHUP: case SIGQUIT: case SIGUSR1: case SIGUSR2: case SIGWINCH:
			if (kill(-cmd, sig) < 0)
				kill(cmd, sig);
		}
	}
}

int make_stdio(bool tty''')
patch('main.c', '''int main(int argc, char **argv)
{''', '''void reexec_init_main(pid_t cmd, int status_w) __attribute__((noreturn));
int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--init"))
		reexec_init_main((pid_t)atoi(argv[2]), atoi(argv[3]));''')
os.makedirs(os.path.join(OUT, 'obj'), exist_ok=True)
srcs = sorted(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith('.c'))
exe = os.path.join(OUT, 'ai-sandbox-launcher-reexec')
subprocess.run(['gcc', '-O2', '-Wall', '-D_GNU_SOURCE', '-std=gnu11', '-fno-strict-aliasing', '-o', exe] + srcs +
               ['-lseccomp'], check=True)
print(exe)
