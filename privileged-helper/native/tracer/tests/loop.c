/* Test workload for the tracer: `loop getpid N` makes N getpid syscalls; `loop timed N` too, then prints
 * the mean ns per call (CLOCK_MONOTONIC through the vDSO: no syscall of its own); `loop open PATH` opens PATH;
 * `loop connect PORT` connects to 127.0.0.1:PORT; `loop exec PATH ARG...` execs. Exit 0 on success of the
 * call (for connect: whatever the result, the call was made). Static, so it also runs inside sandboxes. */
#include <arpa/inet.h>
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
		connect(s, (struct sockaddr *)&a, sizeof a);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "exec") == 0) {
		execv(argv[2], argv + 2);
		return 127;
	}
	fprintf(stderr, "usage: loop getpid N | timed N | open PATH | connect PORT | exec PATH ARG...\n");
	return 2;
}
