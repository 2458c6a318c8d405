// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel side of the ai-sandbox tracer: tp_btf sys_enter/sys_exit, filtered by cgroup2 id.
 *
 * Threat model: the traced side (sandboxed programs) controls the syscall arguments and the memory the
 * path/sockaddr pointers point to. Everything is read with bounded bpf_probe_read_user* into fixed
 * buffers and only reported; nothing here changes what a syscall does. The filter maps are written only
 * by the tracer process (root). A host process not in a traced cgroup pays one cgroup-id hash lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "trace_event.h"

char LICENSE[] SEC("license") = "GPL";

/* wake the reader only when this much is waiting; it also polls every few ms (batched wake-ups) */
const volatile __u64 wakeup_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct sandbox_cfg);
} sandboxes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACE_NR_MAX);
	__type(key, __u32);
	__type(value, __u8);
} argspec SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024 * 1024);
} events SEC(".maps");

/* the syscall in flight of each traced task, from entry to exit */
struct inflight {
	struct sb_event_long ev;
	__u8 active;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight SEC(".maps");

static __always_inline int wanted(struct sandbox_cfg *cfg, __u32 nr)
{
	__u32 word = nr >> 6, bit = nr & 63;
	barrier_var(word); /* keep the bounds check on the register that indexes */
	if (word >= TRACE_NR_MAX / 64)
		return 0;
	return (cfg->mask[word] >> bit) & 1;
}


/* constant indexes only: the verifier loses variable ones that clang re-derives after the check */
static __always_inline __u64 argn(const __u64 *a, __u32 i)
{
	switch (i) {
	case 0: return a[0];
	case 1: return a[1];
	case 2: return a[2];
	case 3: return a[3];
	case 4: return a[4];
	default: return a[5];
	}
}

static __always_inline void submit(struct sandbox_cfg *cfg, struct sb_event_long *src)
{
	__u64 flags = 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < wakeup_bytes)
		flags = BPF_RB_NO_WAKEUP;
	else
		flags = BPF_RB_FORCE_WAKEUP;
	if (src->h.path_len == 0 && src->h.addr_len == 0) {
		struct sb_event *e = bpf_ringbuf_reserve(&events, sizeof(struct sb_event), 0);
		if (!e) {
			__sync_fetch_and_add(&cfg->ringbuf_dropped, 1);
			return;
		}
		__builtin_memcpy(e, &src->h, sizeof(struct sb_event));
		bpf_ringbuf_submit(e, flags);
	} else {
		struct sb_event_long *e = bpf_ringbuf_reserve(&events, sizeof(struct sb_event_long), 0);
		if (!e) {
			__sync_fetch_and_add(&cfg->ringbuf_dropped, 1);
			return;
		}
		__builtin_memcpy(e, src, sizeof(struct sb_event_long));
		bpf_ringbuf_submit(e, flags);
	}
	__sync_fetch_and_add(&cfg->emitted, 1);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	struct sandbox_cfg *cfg = bpf_map_lookup_elem(&sandboxes, &cgid);
	if (!cfg)
		return 0;
	__u32 nr = (__u32)id;
	if (!wanted(cfg, nr))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (cfg->rate) {
		__u64 win = now / 1000000000ULL;
		if (cfg->window != win) {
			cfg->window = win;
			cfg->window_count = 0;
		}
		if (__sync_fetch_and_add(&cfg->window_count, 1) >= cfg->rate) {
			__sync_fetch_and_add(&cfg->rate_limited, 1);
			__u32 slot = nr;
			barrier_var(slot);
			if (slot < TRACE_NR_MAX)
				__sync_fetch_and_add(&cfg->agg[slot], 1);
			return 0;
		}
	}
	struct task_struct *task = bpf_get_current_task_btf();
	struct inflight *fl = bpf_task_storage_get(&inflight, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!fl) {
		__sync_fetch_and_add(&cfg->ringbuf_dropped, 1);
		return 0;
	}
	struct sb_event_long *ev = &fl->ev;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	ev->h.ts_ns = now;
	ev->h.cgid = cgid;
	ev->h.dur_ns = 0;
	ev->h.ret = 0;
	ev->h.pid = pid_tgid >> 32;
	ev->h.tid = (__u32)pid_tgid;
	ev->h.nr = nr;
	ev->h.flags = 0;
	ev->h.path_len = 0;
	ev->h.addr_len = 0;
	ev->h.kind = 1;
	/* tp_btf: regs is a trusted BTF pointer, read directly (CO-RE-relocated loads, no helper calls) */
	ev->h.args[0] = regs->di;
	ev->h.args[1] = regs->si;
	ev->h.args[2] = regs->dx;
	ev->h.args[3] = regs->r10;
	ev->h.args[4] = regs->r8;
	ev->h.args[5] = regs->r9;

	__u32 key = nr;
	__u8 *spec = bpf_map_lookup_elem(&argspec, &key);
	if (spec && *spec) {
		__u32 pi = (*spec & 0xf) - 1; /* 1 + index, 0 = none: wraps to a large value */
		__u32 ai = (*spec >> 4) - 1;
		if (pi < 6) {
			long n = bpf_probe_read_user_str(ev->path, sizeof ev->path, (const void *)argn(ev->h.args, pi));
			if (n < 0) {
				ev->h.flags |= TRACE_F_PATH_FAULT;
			} else {
				ev->h.path_len = n;
				if (n == TRACE_PATH_MAX)
					ev->h.flags |= TRACE_F_PATH_CUT;
			}
		}
		if (ai < 5) {
			__u32 len = argn(ev->h.args, ai + 1);
			if (len > TRACE_ADDR_MAX)
				len = TRACE_ADDR_MAX;
			barrier_var(len);
			len &= 2 * TRACE_ADDR_MAX - 1; /* for the verifier: it is <= TRACE_ADDR_MAX already */
			if (len > 0 && bpf_probe_read_user(ev->addr, len, (const void *)argn(ev->h.args, ai)) == 0)
				ev->h.addr_len = len;
		}
	}
	/* exit and exit_group never return: report them now */
	if (nr == 60 || nr == 231) {
		ev->h.flags |= TRACE_F_NO_EXIT;
		submit(cfg, ev);
		fl->active = 0;
		return 0;
	}
	fl->active = 1;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_exit, struct pt_regs *regs, long ret)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	struct sandbox_cfg *cfg = bpf_map_lookup_elem(&sandboxes, &cgid);
	if (!cfg)
		return 0; /* the host's fast path: one lookup */
	struct task_struct *task = bpf_get_current_task_btf();
	struct inflight *fl = bpf_task_storage_get(&inflight, task, 0, 0);
	if (!fl || !fl->active)
		return 0;
	fl->active = 0;
	fl->ev.h.ret = ret;
	fl->ev.h.dur_ns = bpf_ktime_get_ns() - fl->ev.h.ts_ns;
	submit(cfg, &fl->ev);
	return 0;
}
