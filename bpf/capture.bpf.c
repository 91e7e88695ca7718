// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * capture.bpf.c - socket capture for database server processes, tracepoints only.
 *
 * Two ways in, chosen by userspace before load (the other set is not loaded):
 *  - socket path: tp_btf/sock_recv_length and tp_btf/sock_send_length (kernel >= 6.3), one hit
 *    per recvmsg/sendmsg on any socket; the syscall's buffer comes from the task's saved
 *    registers (bpf_task_pt_regs).
 *  - syscall path: syscalls/sys_exit_{read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg},
 *    resolving the fd to its socket through the task's file table.
 * Both feed on_chunk(): PID filter (bitmap), connection state, per-protocol decoder, and
 * in-kernel aggregation. sched fork/exec/exit keep the tracked PID set current.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "bpf/dbtap.h"
#include "bpf/capture.h"
#include "probes/sql/sql_fingerprint.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- settings (rodata, set by userspace before load) ---- */
const volatile __u32 cfg_sample_rate = 0;	 /* 1 in N operations sampled, 0 = off */
const volatile __u64 cfg_slow_ns = 100000000ULL; /* samples at or above this latency */

/* ---- state shared with userspace (bss, mmapped) ---- */
__u32 epoch = 0; /* interval number, bumped by userspace at each interval end */

/* ---- maps ---- */
#include "bpf/pid_bitmap.bpf.h" /* "tracked", pid_is_tracked(), pid_set_tracked() */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct dbtap_proc);
} procs SEC(".maps");

/* Task names of server binaries (key char[16], value enum dbtap_system), from userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[16]);
	__type(value, __u32);
} server_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);
	__type(value, struct conn_state);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct stmt_key);
	__type(value, struct stmt_val);
} stmts SEC(".maps");

/* Fingerprints whose text userspace has received. LRU: forgetting one only resends text. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} texts_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dbtap_agg_key);
	__type(value, struct dbtap_agg_val);
} aggs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dbtap_err_key);
	__type(value, __u64);
} errs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DBTAP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratches SEC(".maps");

/* Messages being collected across chunks, per connection and direction (see pg_take()). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct reasm);
} reasms SEC(".maps");

/* Zeroed templates: map values too large for the stack are initialised from these. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dbtap_agg_val);
} agg_zero SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct conn_state);
} conn_zero SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct reasm);
} reasm_zero SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024); /* resized by userspace before load */
} events SEC(".maps");

/* ---- small helpers ---- */

#include "bpf/capture_core.bpf.h"

/* ---- protocol decoders ---- */
#include "bpf/decoders.bpf.h"

/* ---- chunks: where the bytes are, copying them, connection state ---- */

/*
 * Read a kernel field: a plain load when @direct (the socket path's tp_btf arguments are
 * trusted BTF pointers), a CO-RE bpf_probe_read_kernel otherwise (the syscall path finds its
 * socket through the fd table). @direct is a constant once inlined: one branch remains.
 */
#define KREAD(direct, p, field) ((direct) ? (p)->field : BPF_CORE_READ(p, field))

/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
#define NR_read	       0
#define NR_write       1
#define NR_readv       19
#define NR_writev      20
#define NR_sendto      44
#define NR_recvfrom    45
#define NR_sendmsg     46
#define NR_recvmsg     47
#define IOV_MAX_COPIED 4 /* iovecs of one readv/writev/msghdr copied */

/* User memory of one syscall's data: one buffer, or an iovec array. */
struct io_src {
	__u64 buf;
	__u64 iov;
	__u32 iovcnt;
};

/* Where the current syscall's data is, from its number and saved argument registers. */
static __always_inline int io_src_from_regs(struct pt_regs *regs, long nr, struct io_src *src)
{
	__u64 si = regs->si, dx = regs->dx; /* one load each: the verifier wants one pointer */
	struct user_msghdr msg;

	src->buf = 0;
	src->iov = 0;
	src->iovcnt = 0;
	switch (nr) {
	case NR_read:
	case NR_write:
	case NR_recvfrom:
	case NR_sendto:
		src->buf = si;
		return 0;
	case NR_readv:
	case NR_writev:
		src->iov = si;
		src->iovcnt = dx;
		return 0;
	case NR_recvmsg:
	case NR_sendmsg:
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)si))
			return -1;
		src->iov = (__u64)msg.msg_iov;
		src->iovcnt = msg.msg_iovlen;
		return 0;
	}
	return -1;
}

/* Copy up to SCRATCH_SIZE of the chunk's @total bytes; returns the bytes copied. */
static __always_inline __u32 copy_chunk(struct scratch *s, struct io_src *src, __u32 total)
{
	__u32 want = total < SCRATCH_SIZE ? total : SCRATCH_SIZE, off = 0, i;

	if (src->buf) {
		if (bpf_probe_read_user(s->buf, bound(want, 2 * SCRATCH_SIZE - 1),
					(void *)src->buf))
			return 0;
		return want;
	}
	for (i = 0; i < IOV_MAX_COPIED; i++) {
		struct iovec iov;
		__u32 n;

		if (i >= src->iovcnt || off >= want)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(src->iov + i * sizeof(iov))))
			break;
		n = iov.iov_len < want - off ? iov.iov_len : want - off;
		if (!n)
			continue;
		/* off < SCRATCH_SIZE and 1 <= n <= SCRATCH_SIZE: inside the doubled buffer */
		if (bpf_probe_read_user(&s->buf[bound(off, SCRATCH_MASK)],
					bound(n - 1, SCRATCH_MASK) + 1, iov.iov_base))
			break;
		off += n;
	}
	return off;
}

static __always_inline void addr_from_sock(struct sock *sk, __u16 family, struct conn_state *c)
{
	c->peer.family = family;
	c->local.family = family;
	if (family == AF_INET) {
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		__builtin_memcpy(c->peer.addr, &d, 4);
		__builtin_memcpy(c->local.addr, &l, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&c->peer.addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&c->local.addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	}
	if (family != AF_UNIX) {
		c->peer.port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
		c->local.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	}
}

/* Stream sockets only: TCP over IPv4/IPv6 and unix stream sockets. */
static __always_inline bool sock_is_stream(struct sock *sk, __u16 *ret_family, bool direct)
{
	__u16 family = KREAD(direct, sk, __sk_common.skc_family);

	*ret_family = family;
	if (family == AF_INET || family == AF_INET6)
		return KREAD(direct, sk, sk_protocol) == IPPROTO_TCP;
	if (family == AF_UNIX)
		return KREAD(direct, sk, sk_type) == SOCK_STREAM;
	return false;
}

/*
 * Who is on the other end, to tell a connection from a later one whose struct sock reuses the
 * same address (a backend that exits without reading EOF leaves its entry behind): the TCP
 * peer address and ports, or the unix peer socket.
 */
static __always_inline __u64 conn_ident(struct sock *sk, __u16 family, bool direct)
{
	if (family == AF_UNIX) /* unix_sock lies beyond struct sock: always a probe read */
		return (__u64)BPF_CORE_READ((struct unix_sock *)sk, peer);
	return ((__u64)KREAD(direct, sk, __sk_common.skc_dport) << 48) ^
	       ((__u64)KREAD(direct, sk, __sk_common.skc_num) << 32) ^
	       KREAD(direct, sk, __sk_common.skc_daddr) ^
	       KREAD(direct, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32[3]);
}

static __always_inline struct conn_state *conn_get(struct sock *sk, __u16 family, __u32 tgid,
						   bool create, bool direct)
{
	bool fresh;
	struct conn_state *c =
		conn_lookup((__u64)sk, conn_ident(sk, family, direct), tgid, create, &fresh);

	if (c && fresh)
		addr_from_sock(sk, family, c);
	return c;
}

/*
 * One recv (@dir IO_RECV) or send (IO_SEND) of @ret bytes on @sk by a process already known
 * to be tracked. Returns 0; everything it cannot do is counted.
 */
static __always_inline int on_chunk(struct sock *sk, long ret, __u8 dir, struct io_src *src,
				    __u32 tgid, bool direct)
{
	struct conn_state *c;
	struct scratch *s;
	__u16 family;

	if (ret < 0 || !sk || !sock_is_stream(sk, &family, direct))
		return 0;
	count(DBTAP_CNT_EVENTS);
	c = conn_get(sk, family, tgid, ret > 0, direct);
	if (!c)
		return 0;
	s = chunk_begin((__u64)sk, tgid, dir);
	if (!s)
		return 0;
	if (ret == 0) { /* end of stream: the client went away */
		if (dir == IO_RECV)
			conn_close(s, c);
		return 0;
	}
	if (dir == IO_RECV)
		c->bytes_in += ret;
	else
		c->bytes_out += ret;
	if (c->phase == CONN_PHASE_IGNORE)
		return 0;
	s->ch.total = ret;
	s->ch.avail = copy_chunk(s, src, ret);
	if (!s->ch.avail) {
		count(DBTAP_CNT_DROP_READ);
		return 0;
	}
	s->ch.user_buf = src->buf;
	decode_chunk(s, c);
	return 0;
}

/* ---- socket path: sock:sock_{recv,send}_length (kernel >= 6.3) ---- */

static __always_inline int on_sock_tp(struct sock *sk, int ret, int flags, __u8 dir)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task;
	struct pt_regs *regs;
	struct io_src src;

	if (!pid_is_tracked(tgid))
		return 0;
	if (ret < 0 || (dir == IO_RECV && (flags & MSG_PEEK)))
		return 0;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (io_src_from_regs(regs, regs->orig_ax, &src) < 0) {
		count(DBTAP_CNT_DROP_SYSCALL);
		return 0;
	}
	return on_chunk(sk, ret, dir, &src, tgid, true);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(dbtap_sock_recv, struct sock *sk, int ret, int flags)
{
	return on_sock_tp(sk, ret, flags, IO_RECV);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(dbtap_sock_send, struct sock *sk, int ret, int flags)
{
	return on_sock_tp(sk, ret, flags, IO_SEND);
}

/* ---- syscall path: syscalls:sys_exit_* (any kernel with syscall tracepoints) ---- */

/* The socket behind @fd of the current task, NULL when it is not a socket. */
static __always_inline struct sock *sock_from_fd(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file **fds, *f = NULL;
	unsigned int max_fds;
	umode_t mode;
	struct socket *so;

	if (fd < 0)
		return NULL;
	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((unsigned long)fd >= max_fds)
		return NULL;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	return so ? BPF_CORE_READ(so, sk) : NULL;
}

/* Context of syscalls:sys_exit_* (events/syscalls/sys_exit_read/format), which is not
 * raw_syscalls' struct trace_event_raw_sys_exit: the number is an int. */
struct sys_exit_args {
	__u64 common; /* common_type, flags, preempt_count, pid */
	int nr;	      /* __syscall_nr */
	int _pad;
	long ret;
};

static __always_inline int on_sys_exit(struct sys_exit_args *ctx, __u8 dir)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	long nr = ctx->nr, ret = ctx->ret; /* read the context once, before anything else */
	struct task_struct *task;
	struct pt_regs *regs;
	struct io_src src;
	struct sock *sk;

	if (!pid_is_tracked(tgid) || ret < 0)
		return 0;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (io_src_from_regs(regs, nr, &src) < 0)
		return 0;
	if (dir == IO_RECV && nr == NR_recvfrom && (regs->r10 & MSG_PEEK))
		return 0;
	sk = sock_from_fd(regs->di);
	if (!sk)
		return 0;
	return on_chunk(sk, ret, dir, &src, tgid, false);
}

#define SYS_EXIT_PROG(name, dir)                        \
	SEC("tracepoint/syscalls/sys_exit_" #name)      \
	int dbtap_sys_##name(struct sys_exit_args *ctx) \
	{                                               \
		return on_sys_exit(ctx, dir);           \
	}

SYS_EXIT_PROG(read, IO_RECV)
SYS_EXIT_PROG(readv, IO_RECV)
SYS_EXIT_PROG(recvfrom, IO_RECV)
SYS_EXIT_PROG(recvmsg, IO_RECV)
SYS_EXIT_PROG(write, IO_SEND)
SYS_EXIT_PROG(writev, IO_SEND)
SYS_EXIT_PROG(sendto, IO_SEND)
SYS_EXIT_PROG(sendmsg, IO_SEND)

/* ---- process tracking: sched fork/exec/exit ---- */

static __always_inline void emit_proc(__u16 type, __u32 tgid, __u32 ppid, struct dbtap_proc *p)
{
	struct dbtap_ev_proc *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(DBTAP_CNT_DROP_PROC_RB);
		return;
	}
	ev_hdr(&e->hdr, type, sizeof(*e), tgid, bpf_ktime_get_ns());
	e->ppid = ppid;
	e->instance = p ? p->instance : 0;
	e->system = p ? p->system : 0;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

/* A tracked process forked: the child serves the same instance from its first instruction. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(dbtap_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct dbtap_proc *p, cp;

	if (ptgid == ctgid || !pid_is_tracked(ptgid))
		return 0;
	p = bpf_map_lookup_elem(&procs, &ptgid);
	if (!p)
		return 0;
	cp = *p;
	cp.flags &= ~DBTAP_PROC_F_SERVER_MAIN;
	cp.db_id = 0;
	cp.user_id = 0;
	if (bpf_map_update_elem(&procs, &ctgid, &cp, BPF_ANY)) {
		count(DBTAP_CNT_DROP_PROC_FULL);
		return 0;
	}
	pid_set_tracked(ctgid, true);
	return 0;
}

/* exec: a server binary started (tell userspace), or a tracked child ran something else. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(dbtap_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = task->tgid;
	char comm[16] = {};
	__u32 *sys;

	bpf_get_current_comm(comm, sizeof(comm));
	sys = bpf_map_lookup_elem(&server_comms, comm);
	if (sys) {
		emit_proc(DBTAP_EV_PROC_EXEC, tgid, task->real_parent->tgid, NULL);
		return 0;
	}
	if (pid_is_tracked(tgid)) {
		pid_set_tracked(tgid, false);
		bpf_map_delete_elem(&procs, &tgid);
	}
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(dbtap_exit, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct dbtap_proc *p;

	if (task->pid != task->tgid || !pid_is_tracked(tgid))
		return 0;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (p && (p->flags & DBTAP_PROC_F_SERVER_MAIN))
		emit_proc(DBTAP_EV_PROC_EXIT, tgid, 0, p);
	pid_set_tracked(tgid, false);
	bpf_map_delete_elem(&procs, &tgid);
	return 0;
}
