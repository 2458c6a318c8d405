/*
 * Pool of pre-created, never-used network namespaces (`--netns-pool N`, default 8, 0 disables).
 *
 * Why: creating a network namespace inside clone3 (CLONE_NEWNET) costs ~1 ms of kernel work
 * (pernet init, loopback registration under rtnl), a third of a sandbox start. A SPAWN without NETNS
 * takes a namespace from the pool instead: clone3 runs without CLONE_NEWNET and the init setns()es
 * into the pooled one before anything else network-related. When the pool is empty (a burst of
 * spawns, or the maker died) SPAWN falls back to CLONE_NEWNET, so the pool only ever changes timing.
 *
 * How: a small "maker" child, forked at launcher start before any sandbox exists, owns all netns
 * creation: for each request byte it reads on a SOCK_SEQPACKET socketpair it does
 * unshare(CLONE_NEWNET), opens /proc/self/ns/net, setns()es back to its original namespace and sends
 * the fd over SCM_RIGHTS. So the launcher itself never changes network namespace (it can never be
 * caught in a foreign one while handling a request) and never blocks for the ~1 ms the kernel needs:
 * the work runs on another CPU, at lower priority, and the launcher only requests it while no
 * sandbox is in setup (main.c), so refills do not compete with a start in progress.
 *
 * Threat model: the maker runs only our code, as root, with no fd but its socket and stderr; it
 * parses nothing (any byte means "one more") and dies with the launcher (PDEATHSIG, EOF). The
 * launcher still checks that every received fd is an nsfs file of type CLONE_NEWNET before pooling
 * it. Each namespace is handed to exactly one sandbox init and then closed by the launcher: never
 * reused, so no state (addresses, sockets, nftables, routes) can pass from one sandbox to another.
 * A fresh namespace holds only a down `lo`; the init brings it up as with CLONE_NEWNET. Pooled fds
 * are O_CLOEXEC and every child closes all fds it does not name (close_fds_except), so a sandbox
 * never holds another sandbox's namespace. At shutdown the pool is closed and the maker reaped.
 *
 * Own TCP hash tables: by default every network namespace shares the host's TCP established hash
 * (262144 buckets on a 24 GiB host), and a sock_diag dump of a namespace's TCP sockets walks all of it,
 * ~5 ms for IPv4 and again for IPv6. CRIU does exactly that dump at every checkpoint, so the two walks
 * were a third of checkpointing an idle sandbox. A namespace gets its own table when the namespace it
 * is created from has net.ipv4.tcp_child_ehash_entries set (Linux >= 6.1). The maker therefore first
 * moves into a "nursery" namespace of its own, sets it there (the host's value is never touched), and
 * creates every pooled namespace from the nursery: each gets a table of NETNS_TCP_EHASH buckets
 * (32 KiB; its TIME_WAIT cap, half the buckets, becomes 2048) and its dump costs ~0.1 ms. The nursery
 * holds nothing, is never given to a sandbox, and dies with the maker. Without the sysctl (older
 * kernel) the maker stays in the launcher's namespace and the pool works as before.
 */
#include "launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#define NS_GET_NSTYPE _IO(0xb7, 0x3)

static int pool[NETNS_POOL_MAX];
static unsigned pool_n, target, inflight;
static int sock = -1;
static pid_t maker = -1;
static unsigned long hits, misses;

#define NETNS_TCP_EHASH "4096"

/* Enters the nursery namespace (see the header), or stays where it is when the kernel cannot do it. */
static void enter_nursery(void)
{
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0 || unshare(CLONE_NEWNET) < 0) {
		logmsg("netns pool: no nursery namespace (%s): sandboxes share the host's TCP hash", strerror(errno));
		if (home >= 0)
			close(home);
		return;
	}
	/* /proc/sys/net resolves in the opener's namespace: this is the nursery's value */
	int fd = open("/proc/sys/net/ipv4/tcp_child_ehash_entries", O_WRONLY | O_CLOEXEC);
	ssize_t w = fd < 0 ? -1 : write(fd, NETNS_TCP_EHASH, strlen(NETNS_TCP_EHASH));
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (w < 0) {
		logmsg("netns pool: tcp_child_ehash_entries: %s: sandboxes share the host's TCP hash", strerror(err));
		if (setns(home, CLONE_NEWNET) < 0) {
			logmsg("netns pool: setns back from the nursery: %s", strerror(errno));
			_exit(1);
		}
	}
	close(home);
}

static void maker_main(int s, pid_t launcher) __attribute__((noreturn));
static void maker_main(int s, pid_t launcher)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != launcher) /* the launcher died before PDEATHSIG was armed */
		_exit(0);
	int keep[2] = { s, 2 }; /* stderr: log lines go where the launcher's go */
	close_fds_except(keep, 2);
	prctl(PR_SET_NAME, "netns-pool", 0, 0, 0);
	/* background work: a sandbox being set up should win the CPU over a refill */
	(void)!setpriority(PRIO_PROCESS, 0, 10);
	enter_nursery();
	int orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0) {
		logmsg("netns pool: open own netns: %s", strerror(errno));
		_exit(1);
	}
	for (;;) {
		char b;
		ssize_t n = read(s, &b, 1);
		if (n == 0)
			_exit(0); /* the launcher closed its end */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		int fd = -1;
		uint8_t err = 0;
		if (unshare(CLONE_NEWNET) < 0)
			err = (uint8_t)errno;
		else if ((fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
			err = (uint8_t)errno;
		/* back home before anything else; if that fails this process is useless: exit, and the
		 * launcher falls back to CLONE_NEWNET when it sees EOF */
		if (setns(orig, CLONE_NEWNET) < 0) {
			logmsg("netns pool: setns back: %s", strerror(errno));
			_exit(1);
		}
		union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
		memset(&u, 0, sizeof u);
		struct iovec iov = { .iov_base = &err, .iov_len = 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (fd >= 0) {
			m.msg_control = u.buf;
			m.msg_controllen = sizeof u.buf;
			struct cmsghdr *c = CMSG_FIRSTHDR(&m);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof fd);
		}
		while (sendmsg(s, &m, MSG_NOSIGNAL) < 0) {
			if (errno != EINTR)
				_exit(errno == EPIPE ? 0 : 1);
		}
		if (fd >= 0)
			close(fd); /* the launcher's copy is now the only reference */
	}
}

int netns_pool_start(unsigned n)
{
	target = n;
	if (!n)
		return -1;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		logmsg("netns pool disabled: socketpair: %s", strerror(errno));
		target = 0;
		return -1;
	}
	pid_t self = getpid();
	pid_t p = fork();
	if (p < 0) {
		logmsg("netns pool disabled: fork: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		target = 0;
		return -1;
	}
	if (p == 0) {
		close(sp[0]);
		maker_main(sp[1], self);
	}
	close(sp[1]);
	maker = p;
	sock = sp[0];
	fcntl(sock, F_SETFL, O_NONBLOCK);
	return sock;
}

static void maker_gone(const char *why)
{
	logmsg("netns pool: maker %s; falling back to CLONE_NEWNET once the pool (%u) is used up", why, pool_n);
	if (sock >= 0)
		close(sock); /* also removes it from epoll */
	sock = -1;
	inflight = 0;
	if (maker > 0) {
		kill(maker, SIGKILL); /* not reaped yet, so the pid is still ours */
		waitpid(maker, NULL, 0);
		maker = -1;
	}
}

/* Ask for as many namespaces as the pool lacks. Cheap (one byte each): called from the loop. */
void netns_pool_refill(void)
{
	while (sock >= 0 && pool_n + inflight < target) {
		ssize_t w = write(sock, "n", 1);
		if (w == 1) {
			inflight++;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		maker_gone("socket closed");
		return;
	}
}

bool is_netns_fd(int fd)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 && sf.f_type == NSFS_MAGIC && ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

void netns_pool_on_readable(void)
{
	while (sock >= 0) {
		uint8_t err = 0;
		union { struct cmsghdr h; char buf[CMSG_SPACE(4 * sizeof(int))]; } u;
		struct iovec iov = { .iov_base = &err, .iov_len = 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
		ssize_t n = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			maker_gone(n == 0 ? "exited" : "socket error");
			return;
		}
		int got = -1;
		cmsg_take_fds(&m, &got, 1); /* never more than one: extras are closed */
		if (inflight)
			inflight--;
		if (got >= 0 && (m.msg_flags & MSG_CTRUNC || !is_netns_fd(got))) {
			logmsg("netns pool: maker sent something that is not a network namespace");
			close(got);
			got = -1;
		}
		if (got < 0) {
			/* the kernel refused (e.g. out of memory or a namespace limit): stop asking instead
			 * of spinning; SPAWN falls back to CLONE_NEWNET */
			logmsg("netns pool: cannot create a namespace (%s); pool disabled", err ? strerror(err) : "no fd");
			target = 0;
			maker_gone("stopped");
			return;
		}
		if (pool_n < NETNS_POOL_MAX && pool_n < target)
			pool[pool_n++] = got;
		else
			close(got);
	}
}

/* A fresh namespace for one sandbox (the caller owns and closes the fd), or -1: use CLONE_NEWNET. */
int netns_pool_take(void)
{
	if (!pool_n) {
		if (target)
			misses++;
		return -1;
	}
	hits++;
	/* oldest first: it has had the longest to settle */
	int fd = pool[0];
	memmove(pool, pool + 1, (pool_n - 1) * sizeof *pool);
	pool_n--;
	return fd;
}

void netns_pool_shutdown(void)
{
	for (unsigned i = 0; i < pool_n; i++)
		close(pool[i]);
	pool_n = 0;
	if (target || maker > 0)
		logmsg("netns pool: %lu spawns from the pool, %lu fell back to CLONE_NEWNET", hits, misses);
	target = 0;
	if (sock >= 0)
		close(sock);
	sock = -1;
	if (maker > 0) {
		/* EOF would end it after its current namespace; SIGKILL does not wait for that */
		kill(maker, SIGKILL);
		waitpid(maker, NULL, 0);
		maker = -1;
	}
}
