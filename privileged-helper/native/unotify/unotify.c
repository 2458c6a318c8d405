/*
 * ai-sandbox-unotify: the approvals supervisor (docs/adr/0008-approvals-supervisor.md). Sandboxes whose
 * policy marks syscalls `ask` get a seccomp user-notification filter; the launcher connects each one to
 * this process's socket and the command sends its listener fd here (SCM_RIGHTS). Each notification
 * becomes a REQUEST to the helper, which answers DECIDE (allow or deny, once or always); a timeout
 * denies. Protocol: docs/approvals-protocol.md.
 *
 * Threat model: the socket is root-only (0600 in the helper's 0700 instance directory); a connection
 * first names its sandbox id (written by the launcher, root, before the sandbox exists), then delivers
 * exactly one listener. The sandboxed program controls the syscall arguments and the memory behind
 * them: a sockaddr is read from /proc/PID/mem for display only, and the notification id is re-checked
 * afterwards (SECCOMP_IOCTL_NOTIF_ID_VALID) so a recycled pid is never read. What is shown can still be
 * changed by another thread after it is read (TOCTOU): an approval informs a human; it is not a
 * security boundary for pointer arguments. Allowed calls continue with SECCOMP_USER_NOTIF_FLAG_CONTINUE.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/seccomp.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif

enum { REQ_DECIDE = 1, REQ_POLICY = 2, REQ_FORGET = 3 };
enum { EV_ACK = 101, EV_ATTACHED = 102, EV_REQUEST = 103, EV_RESOLVED = 104 };
enum { WHY_USER = 1, WHY_TIMEOUT = 2, WHY_RULE = 3, WHY_GONE = 4 };
#define MAX_SB 1024
#define MAX_PENDING 4096
#define NR_MAX 512
#define RULE_ALLOW 1
#define RULE_DENY 2

struct sb {
	uint32_t id;
	int conn;     /* until the listener arrived */
	int listener; /* the notification fd */
	uint32_t timeout_ms;
	uint8_t rule[NR_MAX];
	int used;
};
struct pend {
	uint64_t notif_id;
	int sb;
	uint32_t nr;
	uint64_t deadline;
	int used;
};

static struct sb sbs[MAX_SB];
static struct pend pend[MAX_PENDING];
static int ep;
static int sync_wakeup_ok;
static struct seccomp_notif_sizes sizes;

static void logf_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "unotify: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* stdout is blocking and the helper reads it promptly; frames are small (< 256 bytes) */
static void emit(uint8_t type, uint32_t id, const void *body, uint32_t len)
{
	unsigned char f[9 + 256];
	if (len > 256)
		exit(3);
	uint32_t flen = len + 5;
	memcpy(f, &flen, 4);
	f[4] = type;
	memcpy(f + 5, &id, 4);
	memcpy(f + 9, body, len);
	size_t want = 9 + len, done = 0;
	while (done < want) {
		ssize_t n = write(1, f + done, want - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			exit(0); /* the helper is gone */
		}
		done += (size_t)n;
	}
}

static int sb_by_id(uint32_t id)
{
	for (int i = 0; i < MAX_SB; i++)
		if (sbs[i].used && sbs[i].id == id)
			return i;
	return -1;
}

static int sb_new(uint32_t id)
{
	int i = sb_by_id(id);
	if (i >= 0)
		return i;
	for (i = 0; i < MAX_SB; i++)
		if (!sbs[i].used) {
			memset(&sbs[i], 0, sizeof sbs[i]);
			sbs[i].used = 1;
			sbs[i].id = id;
			sbs[i].conn = sbs[i].listener = -1;
			sbs[i].timeout_ms = 30000;
			return i;
		}
	return -1;
}

/* `report`: tell the helper (it was shown a REQUEST for this call); rule answers to calls nobody saw are not */
static void respond_(int s, uint64_t notif_id, int allow, uint32_t why, int report)
{
	struct seccomp_notif_resp *r = calloc(1, sizes.seccomp_notif_resp > sizeof *r ? sizes.seccomp_notif_resp : sizeof *r);
	r->id = notif_id;
	if (allow) {
		r->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	} else {
		r->error = -EPERM;
	}
	int gone = 0;
	if (sbs[s].listener >= 0 && ioctl(sbs[s].listener, SECCOMP_IOCTL_NOTIF_SEND, r) < 0)
		gone = errno == ENOENT; /* the task died or was interrupted meanwhile */
	free(r);
	if (!report)
		return;
	struct {
		uint64_t notif_id;
		uint32_t sandbox;
		int32_t err;
		uint32_t why;
		uint32_t pad;
		uint64_t ns;
	} ev = { notif_id, sbs[s].id, allow ? 0 : EPERM, gone ? WHY_GONE : why, 0, now_ns() };
	emit(EV_RESOLVED, 0, &ev, sizeof ev);
}

static void respond(int s, uint64_t notif_id, int allow, uint32_t why)
{
	respond_(s, notif_id, allow, why, 1);
}

static void sb_close(int s)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (pend[i].used && pend[i].sb == s)
			pend[i].used = 0;
	if (sbs[s].conn >= 0)
		close(sbs[s].conn);
	if (sbs[s].listener >= 0)
		close(sbs[s].listener);
	sbs[s].conn = sbs[s].listener = -1;
}

/* display only: the sockaddr behind a connect/bind pointer, re-validated against pid reuse */
static uint32_t read_addr(int s, const struct seccomp_notif *n, unsigned char out[32])
{
	if (n->data.nr != SYS_connect && n->data.nr != SYS_bind)
		return 0;
	uint64_t len = n->data.args[2] > 32 ? 32 : n->data.args[2];
	char path[64];
	snprintf(path, sizeof path, "/proc/%u/mem", n->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t r = pread(fd, out, len, (off_t)n->data.args[1]);
	close(fd);
	if (r != (ssize_t)len || ioctl(sbs[s].listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id) < 0)
		return 0;
	return (uint32_t)len;
}

static void on_notification(int s)
{
	struct seccomp_notif *n = calloc(1, sizes.seccomp_notif > sizeof *n ? sizes.seccomp_notif : sizeof *n);
	if (ioctl(sbs[s].listener, SECCOMP_IOCTL_NOTIF_RECV, n) < 0) {
		free(n);
		return; /* ENOENT: the task went away before we read it */
	}
	uint32_t nr = (uint32_t)n->data.nr;
	uint8_t rule = nr < NR_MAX ? sbs[s].rule[nr] : 0;
	if (rule) {
		respond_(s, n->id, rule == RULE_ALLOW, WHY_RULE, 0);
		free(n);
		return;
	}
	int p = -1;
	for (int i = 0; i < MAX_PENDING; i++)
		if (!pend[i].used) {
			p = i;
			break;
		}
	if (p < 0) { /* too many waiting: deny rather than queue without bound */
		respond(s, n->id, 0, WHY_TIMEOUT);
		free(n);
		return;
	}
	pend[p] = (struct pend){ n->id, s, nr, now_ns() + (uint64_t)sbs[s].timeout_ms * 1000000ull, 1 };
	struct {
		uint64_t notif_id;
		uint32_t sandbox, pid, nr, addr_len;
		uint64_t args[6];
		unsigned char addr[32];
		uint64_t ns;
	} ev;
	memset(&ev, 0, sizeof ev);
	ev.notif_id = n->id;
	ev.sandbox = sbs[s].id;
	ev.pid = n->pid;
	ev.nr = nr;
	memcpy(ev.args, n->data.args, sizeof ev.args);
	ev.addr_len = read_addr(s, n, ev.addr);
	ev.ns = now_ns();
	emit(EV_REQUEST, 0, &ev, sizeof ev);
	free(n);
}

static void on_conn(int s)
{
	char one;
	struct iovec iov = { &one, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	ssize_t r = recvmsg(sbs[s].conn, &m, MSG_CMSG_CLOEXEC);
	struct cmsghdr *cm = r == 1 ? CMSG_FIRSTHDR(&m) : NULL;
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int))) {
		/* EOF or garbage: the sandbox failed before sending (or this was not a sandbox) */
		epoll_ctl(ep, EPOLL_CTL_DEL, sbs[s].conn, NULL);
		close(sbs[s].conn);
		sbs[s].conn = -1;
		return;
	}
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	sbs[s].listener = fd;
	if (sync_wakeup_ok && ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0) {
		logf_("SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP unavailable (%s): plain wake-ups", strerror(errno));
		sync_wakeup_ok = 0;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = ((uint64_t)2 << 32) | (uint32_t)s };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	epoll_ctl(ep, EPOLL_CTL_DEL, sbs[s].conn, NULL);
	(void)!write(sbs[s].conn, "k", 1); /* the command may exec now */
	close(sbs[s].conn);
	sbs[s].conn = -1;
	uint32_t id = sbs[s].id;
	emit(EV_ATTACHED, 0, &id, 4);
}

static void on_accept(int lfd)
{
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	uint32_t id;
	/* the launcher wrote the id right after connect: it is there or the peer is not the launcher */
	struct timeval tv = { 1, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (read(c, &id, 4) != 4) {
		close(c);
		return;
	}
	int s = sb_new(id);
	if (s < 0 || sbs[s].conn >= 0 || sbs[s].listener >= 0) {
		close(c);
		return;
	}
	sbs[s].conn = c;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = ((uint64_t)1 << 32) | (uint32_t)s };
	epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
}

static void handle(uint8_t type, uint32_t rid, const unsigned char *b, uint32_t len)
{
	int err = 0;
	if (type == REQ_DECIDE && len == 16) {
		uint64_t id;
		uint32_t allow, always;
		memcpy(&id, b, 8);
		memcpy(&allow, b + 8, 4);
		memcpy(&always, b + 12, 4);
		int p = -1;
		for (int i = 0; i < MAX_PENDING; i++)
			if (pend[i].used && pend[i].notif_id == id) {
				p = i;
				break;
			}
		if (p < 0) {
			err = ENOENT; /* already decided, timed out, or its task is gone */
		} else {
			int s = pend[p].sb;
			if (always && pend[p].nr < NR_MAX)
				sbs[s].rule[pend[p].nr] = allow ? RULE_ALLOW : RULE_DENY;
			pend[p].used = 0;
			respond(s, id, allow != 0, WHY_USER);
			/* an always-rule also settles the other calls of that syscall already waiting */
			for (int i = 0; always && i < MAX_PENDING; i++)
				if (pend[i].used && pend[i].sb == s && pend[i].nr == pend[p].nr) {
					pend[i].used = 0;
					respond(s, pend[i].notif_id, allow != 0, WHY_RULE);
				}
		}
	} else if (type == REQ_POLICY && len == 8 + NR_MAX) {
		uint32_t id, timeout;
		memcpy(&id, b, 4);
		memcpy(&timeout, b + 4, 4);
		int s = sb_new(id);
		if (s < 0) {
			err = ENOSPC;
		} else {
			sbs[s].timeout_ms = timeout ? timeout : 30000;
			memcpy(sbs[s].rule, b + 8, NR_MAX);
			for (int i = 0; i < NR_MAX; i++)
				if (sbs[s].rule[i] > RULE_DENY)
					sbs[s].rule[i] = 0;
		}
	} else if (type == REQ_FORGET && len == 4) {
		uint32_t id;
		memcpy(&id, b, 4);
		int s = sb_by_id(id);
		if (s < 0) {
			err = ENOENT;
		} else {
			for (int i = 0; i < MAX_PENDING; i++)
				if (pend[i].used && pend[i].sb == s) {
					pend[i].used = 0;
					respond(s, pend[i].notif_id, 0, WHY_GONE);
				}
			sb_close(s);
			sbs[s].used = 0;
		}
	} else {
		err = EINVAL;
	}
	int32_t e = err;
	emit(EV_ACK, rid, &e, 4);
}

static unsigned char inbuf[1 << 16];
static size_t in_len;

static int read_requests(void)
{
	ssize_t n = read(0, inbuf + in_len, sizeof inbuf - in_len);
	if (n <= 0)
		return n == 0 || (errno != EINTR && errno != EAGAIN) ? -1 : 0;
	in_len += (size_t)n;
	size_t off = 0;
	while (in_len - off >= 4) {
		uint32_t flen;
		memcpy(&flen, inbuf + off, 4);
		if (flen < 5 || flen > sizeof inbuf - 4) {
			logf_("protocol error: frame length %u", flen);
			exit(2);
		}
		if (in_len - off - 4 < flen)
			break;
		uint32_t id;
		memcpy(&id, inbuf + off + 5, 4);
		handle(inbuf[off + 4], id, inbuf + off + 9, flen - 5);
		off += 4 + flen;
	}
	memmove(inbuf, inbuf + off, in_len - off);
	in_len -= off;
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			path = argv[++i];
		else {
			fprintf(stderr, "usage: ai-sandbox-unotify --socket PATH\n");
			return 2;
		}
	}
	if (!path || path[0] != '/' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "usage: ai-sandbox-unotify --socket PATH (absolute, < 108 bytes)\n");
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) {
		logf_("seccomp user notification unsupported: %s", strerror(errno));
		return 1;
	}
	sync_wakeup_ok = 1;
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	unlink(path);
	mode_t old = umask(077);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 128) < 0) {
		logf_("listen on %s: %s", path, strerror(errno));
		return 1;
	}
	umask(old);
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
	epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
	ev.data.u64 = (uint64_t)3 << 32;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	logf_("ready on %s", path);
	for (;;) {
		uint64_t t = now_ns(), next = UINT64_MAX;
		for (int i = 0; i < MAX_PENDING; i++) {
			if (!pend[i].used)
				continue;
			if (pend[i].deadline <= t) {
				pend[i].used = 0;
				respond(pend[i].sb, pend[i].notif_id, 0, WHY_TIMEOUT);
			} else if (pend[i].deadline < next) {
				next = pend[i].deadline;
			}
		}
		int timeout = next == UINT64_MAX ? -1 : (int)((next - t) / 1000000ull) + 1;
		struct epoll_event evs[16];
		int n = epoll_wait(ep, evs, 16, timeout);
		for (int i = 0; i < n; i++) {
			uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32), s = (uint32_t)evs[i].data.u64;
			if (kind == 0) {
				if (read_requests() < 0) {
					unlink(path);
					return 0;
				}
			} else if (kind == 3) {
				on_accept(lfd);
			} else if (kind == 1 && s < MAX_SB && sbs[s].conn >= 0) {
				on_conn((int)s);
			} else if (kind == 2 && s < MAX_SB && sbs[s].listener >= 0) {
				if (evs[i].events & EPOLLIN)
					on_notification((int)s);
				else if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
					/* every task of the filter is gone */
					epoll_ctl(ep, EPOLL_CTL_DEL, sbs[s].listener, NULL);
					close(sbs[s].listener);
					sbs[s].listener = -1;
				}
			}
		}
	}
}
