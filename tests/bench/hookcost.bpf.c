// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * hookcost.bpf.c - the kernel side of `make bench-hooks`: three pairs of programs on the socket
 * tracepoints that bpf/capture.bpf.c uses, each doing a little more of what dbtap does, so that
 * the cost of a hook per syscall can be measured in parts (tests/bench/hookcost.c attaches one
 * pair at a time):
 *  (e) empty:    return at once, the cost of the tracepoint and of running a BPF program;
 *  (f) filter:   the PID-bitmap test of capture.bpf.c's pid_is_tracked(), the process not in it
 *                (what every untracked process on the host pays);
 *  (t) tracked:  the same test passed, then the first steps of on_sock_tp() and on_chunk() for
 *                a tracked process up to the start of decoding: task registers, syscall number
 *                and buffer, one connection lookup, a timestamp, a 64-byte user copy.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Same as capture.bpf.c and bpf/capture.h. */
#define MSG_PEEK  2 /* include/linux/socket.h */
#define IO_RECV	  0
#define IO_SEND	  1
#define CONNS_MAX 32768 /* max_entries of capture.bpf.c's "conns" */

/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl): send() and recv() of glibc
 * are sendto and recvfrom, whose buffer is the second argument (si). */
#define NR_sendto   44
#define NR_recvfrom 45

#define COPY_BYTES 64 /* bytes copied from the syscall's buffer by (t) */

/* ---- maps ---- */

/* capture.bpf.c's "tracked" bitmap and its pid_is_tracked(): the same header */
#include "bpf/pid_bitmap.bpf.h"

/* Stands for capture.bpf.c's "conns" (LRU_HASH keyed by the struct sock address); the value
 * is smaller, which does not change the cost of a lookup. */
struct hook_conn {
	__u64 sk;
	__u64 last_ns;
	__u64 bytes_in;
	__u64 bytes_out;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONNS_MAX);
	__type(key, __u64);
	__type(value, struct hook_conn);
} conns SEC(".maps");

/* Stands for capture.bpf.c's "scratches": the per-CPU buffer the user bytes are copied into. */
struct hook_scratch {
	__u64 sk;
	__u64 now;
	__u32 dir;
	__u32 avail;
	__u8 buf[COPY_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hook_scratch);
} scratches SEC(".maps");

/* Runs of (f) whose process was in the bitmap (must stay 0: (f) measures the untracked case;
 * the branch also keeps the compiler from dropping the bitmap test), and runs of (t) that
 * could not do one of their steps (must stay 0: the measured path is the full one). */
__u64 filter_passed = 0;
__u64 tracked_failures = 0;

/* ---- (e) empty ---- */

SEC("tp_btf/sock_recv_length")
int BPF_PROG(hook_empty_recv, struct sock *sk, int ret, int flags)
{
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(hook_empty_send, struct sock *sk, int ret, int flags)
{
	return 0;
}

/* ---- (f) filter: capture.bpf.c's pid_is_tracked() (bpf/pid_bitmap.bpf.h) ---- */

/* The first lines of capture.bpf.c's on_sock_tp(); where dbtap goes on, this counts. */
static __always_inline int filter_only(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!pid_is_tracked(tgid))
		return 0;
	__sync_fetch_and_add(&filter_passed, 1);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(hook_filter_recv, struct sock *sk, int ret, int flags)
{
	return filter_only();
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(hook_filter_send, struct sock *sk, int ret, int flags)
{
	return filter_only();
}

/* ---- (t) tracked: the filter passed, then what dbtap does before decoding ----
 * Left out, being a few plain loads or one more per-CPU increment each: sock_is_stream() and
 * conn_ident() (fields of the tp_btf socket) and count(DBTAP_CNT_EVENTS). */

static __always_inline int tracked_path(struct sock *sk, int ret, int flags, __u32 dir)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32, zero = 0;
	struct hook_scratch *s;
	struct task_struct *task;
	struct hook_conn *c;
	struct pt_regs *regs;
	__u64 key = (__u64)sk, buf;
	long nr;

	/* on_sock_tp(): the PID filter, then failed calls and MSG_PEEK are skipped */
	if (!pid_is_tracked(tgid))
		return 0;
	if (ret < 0 || (dir == IO_RECV && (flags & MSG_PEEK)))
		return 0;
	/* on_sock_tp(): the syscall's saved registers */
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	/* io_src_from_regs(): syscall number, and for sendto/recvfrom the buffer is si */
	nr = regs->orig_ax;
	buf = regs->si;
	if (nr != NR_sendto && nr != NR_recvfrom)
		goto fail;
	/* conn_get() -> conn_lookup(): one lookup of a known connection; created on first sight
	 * (capture.bpf.c creates it from a zero template, once per connection) */
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c) {
		struct hook_conn fresh = {.sk = key};

		bpf_map_update_elem(&conns, &key, &fresh, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&conns, &key);
		if (!c)
			goto fail;
	}
	/* on_chunk(): byte counts of the connection */
	if (dir == IO_RECV)
		c->bytes_in += ret;
	else
		c->bytes_out += ret;
	/* chunk_begin(): the per-CPU scratch and the chunk's timestamp */
	s = bpf_map_lookup_elem(&scratches, &zero);
	if (!s)
		goto fail;
	s->sk = key;
	s->dir = dir;
	s->now = bpf_ktime_get_ns();
	c->last_ns = s->now;
	/* copy_chunk(): the first bytes of the syscall's buffer */
	if (bpf_probe_read_user(s->buf, COPY_BYTES, (void *)buf))
		goto fail;
	s->avail = COPY_BYTES;
	return 0;
fail:
	__sync_fetch_and_add(&tracked_failures, 1);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(hook_tracked_recv, struct sock *sk, int ret, int flags)
{
	return tracked_path(sk, ret, flags, IO_RECV);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(hook_tracked_send, struct sock *sk, int ret, int flags)
{
	return tracked_path(sk, ret, flags, IO_SEND);
}
