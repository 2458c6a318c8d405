/*
 * Shared between the BPF program (tracer.bpf.c) and the tracer process (tracer.c): the record the kernel
 * side writes into the ring buffer, the per-sandbox configuration and counters, and the per-syscall
 * argument kinds. The tracer forwards records to the helper compacted (see docs/tracer-protocol.md).
 */
#ifndef AI_SANDBOX_TRACE_EVENT_H
#define AI_SANDBOX_TRACE_EVENT_H

#define TRACE_NR_MAX 512        /* syscall numbers [0, 512): the x86_64 table ends near 470 */
#define TRACE_PATH_MAX 256      /* bytes of a path argument kept (NUL included); longer ones are cut */
#define TRACE_ADDR_MAX 32       /* bytes of a sockaddr kept (sockaddr_in6 is 28) */
#define TRACE_HDR_SIZE 96

/* record flags */
#define TRACE_F_NO_EXIT 1       /* exit/exit_group: reported at entry, no return value or duration */
#define TRACE_F_PATH_CUT 2      /* the path was longer than TRACE_PATH_MAX - 1 */
#define TRACE_F_PATH_FAULT 4    /* the path pointer could not be read */

/* argument kinds, per syscall number (argspec map): low nibble = 1 + index of a path argument,
 * next nibble = 1 + index of a sockaddr argument (its length is the next argument). */
#define ARGSPEC_PATH(i) ((unsigned char)((i) + 1))
#define ARGSPEC_ADDR(i) ((unsigned char)(((i) + 1) << 4))

struct sb_event {
	__u64 ts_ns;            /* CLOCK_MONOTONIC at syscall entry */
	__u64 cgid;             /* cgroup2 id of the sandbox */
	__u64 dur_ns;           /* entry to exit */
	__s64 ret;              /* return value (-errno on failure) */
	__u64 args[6];          /* raw argument registers */
	__u32 pid;              /* thread group id, as the host sees it */
	__u32 tid;
	__u16 nr;
	__u16 flags;
	__u16 path_len;         /* bytes of path incl. NUL, 0 = none */
	__u8 addr_len;          /* bytes of sockaddr, 0 = none */
	__u8 kind;              /* 1 = syscall */
	/* TRACE_HDR_SIZE: then addr[TRACE_ADDR_MAX] and path[TRACE_PATH_MAX] in the long form */
};

struct sb_event_long {
	struct sb_event h;
	__u8 addr[TRACE_ADDR_MAX];
	char path[TRACE_PATH_MAX];
};

/* One traced sandbox: its filter, its rate limit, and its counters (updated atomically by the BPF side). */
struct sandbox_cfg {
	__u64 mask[TRACE_NR_MAX / 64]; /* syscalls reported; bit nr set = report */
	__u32 rate;                    /* max events per second reported one by one; 0 = no limit */
	__u32 pad;
	/* rate window, approximate under concurrency (it only decides what is aggregated) */
	__u64 window;
	__u64 window_count;
	/* counters: every matching syscall is exactly one of emitted, ringbuf_dropped, rate_limited */
	__u64 emitted;
	__u64 ringbuf_dropped;
	__u64 rate_limited;
	__u64 agg[TRACE_NR_MAX];       /* rate_limited, by syscall number (the aggregation of hot calls) */
};

#endif
