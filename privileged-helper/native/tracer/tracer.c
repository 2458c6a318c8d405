/*
 * ai-sandbox-tracer: one long-lived root process that streams the syscalls of traced sandboxes
 * (docs/tracer-protocol.md). The helper adds and removes sandboxes by cgroup2 id; the BPF programs are
 * loaded once at start and attached only while at least one sandbox is traced.
 *
 * Threat model: requests come only from the helper (root) over stdin; every field is checked (sizes, the
 * sandbox count limit). The traced programs control syscall arguments and the bytes that paths and
 * sockaddrs point to: the kernel side copies bounded amounts, this side only forwards them, never
 * interprets them. Links are plain fds of this process, so if it dies (even by SIGKILL) the kernel
 * detaches the programs: nothing stays attached.
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
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include "trace_event.h"
#include "tracer.skel.h"

enum { REQ_ADD = 1, REQ_REMOVE = 2, REQ_COUNTERS = 3 };
enum { EV_ACK = 101, EV_EVENTS = 102, EV_COUNTERS = 103 };
#define ACK_ATTACHED 1u
#define MAX_SANDBOXES 1024
#define MAX_FRAME (1u << 20)
#define OUT_SOFT_LIMIT (8u << 20)
#define EVENTS_FRAME_LIMIT (1u << 20)

static struct tracer_bpf *skel;
static struct ring_buffer *rb;
static int attached;
static int draining; /* REMOVE/COUNTERS: take everything the ring holds, whatever the helper's lag */
static __u64 traced[MAX_SANDBOXES];
static int ntraced;

static void logf_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "tracer: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static __u64 now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

/* ---- output: one growing buffer, written to stdout (non-blocking) as the pipe takes it ---------- */
static unsigned char *out;
static size_t out_len, out_cap, out_off;
static size_t events_hdr = (size_t)-1; /* offset of the open EVENTS frame's header, or -1 */

/* Only grows: offsets into `out` that a caller holds while it builds a frame (frame_begin's, the
 * counters' count) stay valid. Compacting here once moved the bytes under such an offset: a frame
 * whose length field was written at the old place reached the helper with a wrong length, and the
 * helper waited forever for the rest (seen under a 1M-event flood, when a partial write had left
 * out_off > 0). flush_some compacts, between frames. */
static void out_reserve(size_t n)
{
	if (out_len + n <= out_cap)
		return;
	size_t cap = out_cap ? out_cap : 1 << 20;
	while (out_len + n > cap)
		cap *= 2;
	out = realloc(out, cap);
	if (!out) {
		logf_("out of memory");
		exit(3);
	}
	out_cap = cap;
}

static void put(const void *p, size_t n)
{
	out_reserve(n);
	memcpy(out + out_len, p, n);
	out_len += n;
}

static void put_u32_at(size_t off, __u32 v) { memcpy(out + off, &v, 4); }

static void events_close(void)
{
	if (events_hdr == (size_t)-1)
		return;
	put_u32_at(events_hdr, (__u32)(out_len - events_hdr - 4));
	events_hdr = (size_t)-1;
}

static size_t frame_begin(__u8 type, __u32 id)
{
	events_close();
	size_t at = out_len;
	__u32 zero = 0;
	put(&zero, 4);
	put(&type, 1);
	put(&id, 4);
	return at;
}

static void frame_end(size_t at) { put_u32_at(at, (__u32)(out_len - at - 4)); }

static size_t pending(void) { return out_len - out_off; }

/* returns -1 when stdout is gone */
static int flush_some(void)
{
	events_close();
	while (out_off < out_len) {
		ssize_t n = write(1, out + out_off, out_len - out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -1;
		}
		out_off += (size_t)n;
	}
	if (out_off == out_len) {
		out_off = out_len = 0;
	} else if (out_off >= out_len - out_off) { /* more sent than left: moving the rest is cheap */
		memmove(out, out + out_off, out_len - out_off);
		out_len -= out_off;
		out_off = 0;
	}
	return 0;
}

/* ---- ring buffer records -> EVENTS frames, compacted ------------------------------------------- */
static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size < sizeof(struct sb_event))
		return 0;
	const struct sb_event *h = data;
	size_t alen = h->addr_len, plen = h->path_len;
	if (alen > TRACE_ADDR_MAX)
		alen = TRACE_ADDR_MAX;
	if (plen > TRACE_PATH_MAX)
		plen = TRACE_PATH_MAX;
	if ((alen || plen) && size < sizeof(struct sb_event_long))
		alen = plen = 0;
	size_t apad = (alen + 7) & ~(size_t)7, ppad = (plen + 7) & ~(size_t)7;
	if (events_hdr != (size_t)-1 && out_len - events_hdr + TRACE_HDR_SIZE + apad + ppad > EVENTS_FRAME_LIMIT)
		events_close();
	if (events_hdr == (size_t)-1) {
		size_t at = out_len;
		__u32 zero = 0;
		__u8 type = EV_EVENTS;
		put(&zero, 4);
		put(&type, 1);
		put(&zero, 4);
		events_hdr = at;
	}
	out_reserve(TRACE_HDR_SIZE + apad + ppad);
	memcpy(out + out_len, h, TRACE_HDR_SIZE);
	struct sb_event *c = (struct sb_event *)(out + out_len);
	c->addr_len = (__u8)alen;
	c->path_len = (__u16)plen;
	out_len += TRACE_HDR_SIZE;
	if (apad) {
		const struct sb_event_long *l = data;
		memset(out + out_len, 0, apad);
		memcpy(out + out_len, l->addr, alen);
		out_len += apad;
	}
	if (ppad) {
		const struct sb_event_long *l = data;
		memset(out + out_len, 0, ppad);
		memcpy(out + out_len, l->path, plen);
		out_len += ppad;
	}
	/* the record is consumed either way; stop this round when the helper lags behind */
	return !draining && pending() > OUT_SOFT_LIMIT ? -EAGAIN : 0;
}

/* ---- counters --------------------------------------------------------------------------------- */
static struct sandbox_cfg cfgbuf;

static void put_counters_of(__u64 cgid)
{
	int fd = bpf_map__fd(skel->maps.sandboxes);
	struct sandbox_cfg *c = &cfgbuf;
	if (bpf_map_lookup_elem(fd, &cgid, c) != 0)
		return;
	__u32 nagg = 0;
	for (int i = 0; i < TRACE_NR_MAX; i++)
		nagg += c->agg[i] != 0;
	__u64 v[4] = { cgid, c->emitted, c->ringbuf_dropped, c->rate_limited };
	put(v, sizeof v);
	__u32 n2[2] = { nagg, 0 };
	put(n2, sizeof n2);
	for (__u32 i = 0; i < TRACE_NR_MAX; i++) {
		if (!c->agg[i])
			continue;
		__u32 nr[2] = { i, 0 };
		put(nr, sizeof nr);
		put(&c->agg[i], 8);
	}
}

static void send_counters(__u32 id, const __u64 *cgids, int n)
{
	size_t at = frame_begin(EV_COUNTERS, id);
	size_t count_at = out_len;
	__u32 hdr[2] = { 0, 0 };
	put(hdr, sizeof hdr);
	__u32 count = 0;
	int fd = bpf_map__fd(skel->maps.sandboxes);
	for (int i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(fd, &cgids[i], &cfgbuf) != 0)
			continue;
		put_counters_of(cgids[i]);
		count++;
	}
	put_u32_at(count_at, count);
	frame_end(at);
}

static void send_ack(__u32 id, int err, __u64 took_ns, __u64 attach_ns)
{
	size_t at = frame_begin(EV_ACK, id);
	__s32 e = err;
	__u32 flags = attached ? ACK_ATTACHED : 0;
	put(&e, 4);
	put(&flags, 4);
	put(&took_ns, 8);
	put(&attach_ns, 8);
	frame_end(at);
}

/* ---- attach / detach ----------------------------------------------------------------------------- */
static int do_attach(__u64 *took)
{
	__u64 t0 = now_ns();
	int err = tracer_bpf__attach(skel);
	*took = now_ns() - t0;
	if (err) {
		tracer_bpf__detach(skel);
		return err < 0 ? -err : EIO;
	}
	attached = 1;
	logf_("attached in %.2f ms", (double)*took / 1e6);
	return 0;
}

static void do_detach(void)
{
	tracer_bpf__detach(skel);
	attached = 0;
	logf_("detached (no traced sandbox left)");
}

/* ---- requests ------------------------------------------------------------------------------------ */
struct add_req {
	__u64 cgid;
	__u32 rate;
	__u32 flags;
	__u64 mask[TRACE_NR_MAX / 64];
};

static int find(__u64 cgid)
{
	for (int i = 0; i < ntraced; i++)
		if (traced[i] == cgid)
			return i;
	return -1;
}

static void handle(__u8 type, __u32 id, const unsigned char *body, __u32 len)
{
	__u64 t0 = now_ns(), attach_ns = 0;
	int fd = bpf_map__fd(skel->maps.sandboxes);
	int err = 0;
	switch (type) {
	case REQ_ADD: {
		struct add_req r;
		if (len != sizeof r) {
			err = EINVAL;
			break;
		}
		memcpy(&r, body, sizeof r);
		if (r.cgid == 0 || r.flags != 0) {
			err = EINVAL;
			break;
		}
		int i = find(r.cgid);
		if (i < 0 && ntraced >= MAX_SANDBOXES) {
			err = ENOSPC;
			break;
		}
		struct sandbox_cfg *c = &cfgbuf;
		if (i >= 0) {
			/* an update keeps the counters */
			if (bpf_map_lookup_elem(fd, &r.cgid, c) != 0)
				memset(c, 0, sizeof *c);
		} else {
			memset(c, 0, sizeof *c);
		}
		memcpy(c->mask, r.mask, sizeof c->mask);
		c->rate = r.rate;
		if (bpf_map_update_elem(fd, &r.cgid, c, BPF_ANY) != 0) {
			err = errno;
			break;
		}
		if (i < 0)
			traced[ntraced++] = r.cgid;
		if (!attached) {
			err = do_attach(&attach_ns);
			if (err) {
				bpf_map_delete_elem(fd, &r.cgid);
				ntraced--;
			}
		}
		break;
	}
	case REQ_REMOVE: {
		__u64 cgid;
		if (len != 8) {
			err = EINVAL;
			break;
		}
		memcpy(&cgid, body, 8);
		int i = find(cgid);
		if (i < 0) {
			err = ENOENT;
			break;
		}
		/* everything the kernel has written for it goes out before its final counters */
		draining = 1;
		ring_buffer__consume(rb);
		draining = 0;
		send_counters(id, &cgid, 1);
		bpf_map_delete_elem(fd, &cgid);
		traced[i] = traced[--ntraced];
		if (ntraced == 0 && attached)
			do_detach();
		break;
	}
	case REQ_COUNTERS:
		if (len != 0) {
			err = EINVAL;
			break;
		}
		draining = 1;
		ring_buffer__consume(rb);
		draining = 0;
		send_counters(id, traced, ntraced);
		break;
	default:
		err = EINVAL;
	}
	send_ack(id, err, now_ns() - t0, attach_ns);
}

/* stdin: accumulate and parse whole frames */
static unsigned char inbuf[MAX_FRAME + 16];
static size_t in_len;

static int read_requests(void)
{
	ssize_t n = read(0, inbuf + in_len, sizeof inbuf - in_len);
	if (n == 0)
		return -1;
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	in_len += (size_t)n;
	size_t off = 0;
	while (in_len - off >= 4) {
		__u32 flen;
		memcpy(&flen, inbuf + off, 4);
		if (flen < 5 || flen > MAX_FRAME) {
			logf_("protocol error: frame length %u", flen);
			exit(2);
		}
		if (in_len - off - 4 < flen)
			break;
		__u8 type = inbuf[off + 4];
		__u32 id;
		memcpy(&id, inbuf + off + 5, 4);
		handle(type, id, inbuf + off + 9, flen - 5);
		off += 4 + flen;
	}
	memmove(inbuf, inbuf + off, in_len - off);
	in_len -= off;
	return 0;
}

/* ---- setup ---------------------------------------------------------------------------------------- */
static void fill_argspec(void)
{
	static const struct { int nr; unsigned char spec; } specs[] = {
		{ SYS_open, ARGSPEC_PATH(0) }, { SYS_openat, ARGSPEC_PATH(1) }, { SYS_openat2, ARGSPEC_PATH(1) },
		{ SYS_creat, ARGSPEC_PATH(0) }, { SYS_execve, ARGSPEC_PATH(0) }, { SYS_execveat, ARGSPEC_PATH(1) },
		{ SYS_stat, ARGSPEC_PATH(0) }, { SYS_lstat, ARGSPEC_PATH(0) }, { SYS_newfstatat, ARGSPEC_PATH(1) },
		{ SYS_statx, ARGSPEC_PATH(1) }, { SYS_access, ARGSPEC_PATH(0) }, { SYS_faccessat, ARGSPEC_PATH(1) },
		{ SYS_faccessat2, ARGSPEC_PATH(1) }, { SYS_readlink, ARGSPEC_PATH(0) }, { SYS_readlinkat, ARGSPEC_PATH(1) },
		{ SYS_unlink, ARGSPEC_PATH(0) }, { SYS_unlinkat, ARGSPEC_PATH(1) }, { SYS_mkdir, ARGSPEC_PATH(0) },
		{ SYS_mkdirat, ARGSPEC_PATH(1) }, { SYS_rmdir, ARGSPEC_PATH(0) }, { SYS_chdir, ARGSPEC_PATH(0) },
		{ SYS_rename, ARGSPEC_PATH(0) }, { SYS_renameat, ARGSPEC_PATH(1) }, { SYS_renameat2, ARGSPEC_PATH(1) },
		{ SYS_truncate, ARGSPEC_PATH(0) }, { SYS_chmod, ARGSPEC_PATH(0) }, { SYS_fchmodat, ARGSPEC_PATH(1) },
		{ SYS_chown, ARGSPEC_PATH(0) }, { SYS_lchown, ARGSPEC_PATH(0) }, { SYS_fchownat, ARGSPEC_PATH(1) },
		{ SYS_link, ARGSPEC_PATH(0) }, { SYS_linkat, ARGSPEC_PATH(1) }, { SYS_symlink, ARGSPEC_PATH(1) },
		{ SYS_symlinkat, ARGSPEC_PATH(2) }, { SYS_mknod, ARGSPEC_PATH(0) }, { SYS_mknodat, ARGSPEC_PATH(1) },
		{ SYS_utimensat, ARGSPEC_PATH(1) }, { SYS_statfs, ARGSPEC_PATH(0) }, { SYS_chroot, ARGSPEC_PATH(0) },
		{ SYS_connect, ARGSPEC_ADDR(1) }, { SYS_bind, ARGSPEC_ADDR(1) },
	};
	int fd = bpf_map__fd(skel->maps.argspec);
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		__u32 k = (__u32)specs[i].nr;
		if (bpf_map_update_elem(fd, &k, &specs[i].spec, BPF_ANY) != 0)
			logf_("argspec %d: %s", specs[i].nr, strerror(errno));
	}
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	fprintf(stderr, "tracer: libbpf: ");
	return vfprintf(stderr, fmt, ap);
}

static int load(char *why, size_t whylen)
{
	libbpf_set_print(libbpf_log);
	skel = tracer_bpf__open();
	if (!skel) {
		snprintf(why, whylen, "open BPF object: %s", strerror(errno));
		return -1;
	}
	int err = tracer_bpf__load(skel);
	if (err) {
		snprintf(why, whylen, "load BPF programs (tp_btf sys_enter/sys_exit): %s", strerror(-err));
		return -1;
	}
	fill_argspec();
	return 0;
}

/* --probe: can this kernel load and attach the programs? One JSON line for doctor. */
static int probe(void)
{
	char why[256] = "";
	__u64 t0 = now_ns();
	if (load(why, sizeof why) != 0) {
		printf("{\"tpBtf\":false,\"error\":\"%s\"}\n", why);
		return 0;
	}
	__u64 load_ns = now_ns() - t0, attach_ns = 0;
	int err = do_attach(&attach_ns);
	if (err) {
		printf("{\"tpBtf\":false,\"error\":\"attach tp_btf sys_enter/sys_exit: %s\"}\n", strerror(err));
		return 0;
	}
	do_detach();
	printf("{\"tpBtf\":true,\"loadMs\":%.3f,\"attachMs\":%.3f}\n", (double)load_ns / 1e6, (double)attach_ns / 1e6);
	tracer_bpf__destroy(skel);
	return 0;
}

int main(int argc, char **argv)
{
	int poll_ms = 5;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--probe") == 0)
			return probe();
		if (strcmp(argv[i], "--poll-ms") == 0 && i + 1 < argc) {
			poll_ms = atoi(argv[++i]);
			if (poll_ms < 1 || poll_ms > 1000)
				poll_ms = 5;
			continue;
		}
		fprintf(stderr, "usage: ai-sandbox-tracer [--probe] [--poll-ms N]\n");
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	char why[256] = "";
	if (load(why, sizeof why) != 0) {
		logf_("%s", why);
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_record, NULL, NULL);
	if (!rb) {
		logf_("ring buffer: %s", strerror(errno));
		return 1;
	}
	fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
	/* fewer, larger reads on the helper's side; the default pipe (64 KiB) is kept if this is refused */
	fcntl(1, F_SETPIPE_SZ, 1 << 20);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int rbfd = ring_buffer__epoll_fd(rb);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
	ev.data.u32 = 1;
	epoll_ctl(ep, EPOLL_CTL_ADD, rbfd, &ev);
	int rb_watched = 1, out_watched = 0;
	__u64 last_counters = now_ns();
	logf_("ready");
	for (;;) {
		/* back-pressure: while the helper lags, leave records in the ring buffer (the kernel counts
		 * what no longer fits) instead of growing memory */
		int want_rb = pending() <= OUT_SOFT_LIMIT;
		if (want_rb != rb_watched) {
			ev.events = EPOLLIN;
			ev.data.u32 = 1;
			epoll_ctl(ep, want_rb ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, rbfd, &ev);
			rb_watched = want_rb;
		}
		int want_out = pending() > 0;
		if (want_out != out_watched) {
			ev.events = EPOLLOUT;
			ev.data.u32 = 2;
			epoll_ctl(ep, want_out ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, 1, &ev);
			out_watched = want_out;
		}
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, attached ? poll_ms : 1000);
		if (n < 0 && errno != EINTR) {
			logf_("epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == 0 && read_requests() < 0) {
				/* the helper is gone: detach (destroying the skeleton closes the links) and leave */
				ring_buffer__free(rb);
				tracer_bpf__destroy(skel);
				return 0;
			}
		}
		/* wake-ups are batched: records written with BPF_RB_NO_WAKEUP are collected every poll_ms */
		if (attached && pending() <= OUT_SOFT_LIMIT)
			ring_buffer__consume(rb);
		if (attached && now_ns() - last_counters > 1000000000ull) {
			send_counters(0, traced, ntraced);
			last_counters = now_ns();
		}
		if (pending() > 0 && flush_some() < 0) {
			logf_("stdout closed");
			return 0;
		}
	}
}
