/* Test workload for the tracer: `loop getpid N` makes N getpid syscalls; `loop timed N` too, then prints
 * the mean ns per call (CLOCK_MONOTONIC through the vDSO: no syscall of its own); `loop open PATH` opens PATH;
 * `loop connect PORT` connects to 127.0.0.1:PORT; `loop exec PATH ARG...` execs. Exit 0 on success of the
 * call (for connect: whatever the result, the call was made). Static, so it also runs inside sandboxes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "getpid") == 0) {
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++)
			syscall(SYS_getpid);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "timed") == 0) {
		long n = atol(argv[2]);
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (long i = 0; i < n; i++)
			syscall(SYS_getpid);
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
		printf("%.1f\n", n > 0 ? ns / (double)n : 0.0);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "open") == 0) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		return fd < 0 ? 1 : 0;
	}
	if (argc == 3 && strcmp(argv[1], "connect") == 0) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int r = connect(s, (struct sockaddr *)&a, sizeof a);
		printf("connect: %s\n", r == 0 ? "ok" : strerrorname_np(errno));
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "connectn") == 0) {
		/* one connect first (an approval may hold it), then N timed ones: mean ns per call */
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[3])) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		long n = atol(argv[2]);
		struct timespec t0, t1;
		for (long i = -1; i < n; i++) {
			if (i == 0)
				clock_gettime(CLOCK_MONOTONIC, &t0);
			int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			connect(s, (struct sockaddr *)&a, sizeof a);
			close(s);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
		printf("%.1f\n", n > 0 ? ns / (double)n : 0.0);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "exec") == 0) {
		execv(argv[2], argv + 2);
		return 127;
	}
	fprintf(stderr, "usage: loop getpid N | timed N | connectn N PORT | open PATH | connect PORT | exec PATH ARG...\n");
	return 2;
}
