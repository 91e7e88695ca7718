/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * dbtap.h - record layouts shared by the BPF programs and the userspace daemon.
 *
 * Every type here crosses the kernel/user boundary: fixed-width fields only, explicit enum
 * numbers that are never reused, sizes and offsets checked at build time at the bottom.
 * Included by bpf/capture.bpf.c (with vmlinux.h) and by userspace (with <linux/types.h>).
 */
#ifndef DBTAP_H
#define DBTAP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* ---- database systems ---- */

/* Numbers are part of the map and ring buffer ABI: append only. */
enum dbtap_system {
	DBTAP_SYS_UNKNOWN = 0,
	DBTAP_SYS_POSTGRESQL = 1,
	DBTAP_SYS_MYSQL = 2,
	DBTAP_SYS_MARIADB = 3,
	DBTAP_SYS_REDIS = 4,
	DBTAP_SYS_MONGODB = 5,
	DBTAP_SYS_MAX,
};

/* ---- latency histogram ---- */

/*
 * Log-linear buckets over nanoseconds (HDR style): values below 1024 ns fall into 16 linear
 * buckets of 64 ns; above, each power of two [2^e, 2^(e+1)) for e = 10..35 is split into 16
 * equal sub-buckets, so a bucket is at most 1/16 = 6.25% wide relative to its lower bound and
 * the interpolated percentile is within ~3% of the true value. Values >= 2^36 ns (68.7 s)
 * land in the last bucket.
 */
#define DBTAP_HIST_SUB_BITS 4
#define DBTAP_HIST_SUB	    (1 << DBTAP_HIST_SUB_BITS) /* sub-buckets per power of two */
#define DBTAP_HIST_MIN_EXP  10			       /* first exponential range: 1024 ns */
#define DBTAP_HIST_MAX_EXP  36			       /* exclusive: 2^36 ns = 68.7 s */
#define DBTAP_HIST_LINEAR   DBTAP_HIST_SUB	       /* linear buckets below 2^MIN_EXP */
#define DBTAP_HIST_BUCKETS \
	(DBTAP_HIST_LINEAR + (DBTAP_HIST_MAX_EXP - DBTAP_HIST_MIN_EXP) * DBTAP_HIST_SUB + 1)

/* Index of the bucket holding @ns. Pure integer code, usable in BPF and userspace. */
static inline __u32 dbtap_hist_bucket(__u64 ns)
{
	__u32 e = 0;
	__u64 v = ns;

	if (ns < (1ULL << DBTAP_HIST_MIN_EXP))
		return (__u32)(ns >> (DBTAP_HIST_MIN_EXP - DBTAP_HIST_SUB_BITS));
	if (ns >= (1ULL << DBTAP_HIST_MAX_EXP))
		return DBTAP_HIST_BUCKETS - 1;
	/* floor(log2(ns)) without a loop: binary search over 64 bits */
	if (v >> 32) {
		e += 32;
		v >>= 32;
	}
	if (v >> 16) {
		e += 16;
		v >>= 16;
	}
	if (v >> 8) {
		e += 8;
		v >>= 8;
	}
	if (v >> 4) {
		e += 4;
		v >>= 4;
	}
	if (v >> 2) {
		e += 2;
		v >>= 2;
	}
	if (v >> 1) {
		e += 1;
	}
	return DBTAP_HIST_LINEAR + (e - DBTAP_HIST_MIN_EXP) * DBTAP_HIST_SUB +
	       (__u32)((ns >> (e - DBTAP_HIST_SUB_BITS)) & (DBTAP_HIST_SUB - 1));
}

/* ---- aggregation (BPF hash map "aggs", read by userspace each interval) ---- */

#define DBTAP_STATUS_LEN 16 /* SQLSTATE, MySQL errno, Redis error prefix, Mongo code */

/* Flags in dbtap_agg_key.flags. */
#define DBTAP_AGG_F_UNKNOWN_STMT (1 << 0) /* statement prepared before capture: text unknown */
#define DBTAP_AGG_F_EXTENDED	 (1 << 1) /* PostgreSQL extended protocol (Parse/Bind/Execute) */
#define DBTAP_AGG_F_BLOCKING	 (1 << 2) /* a blocking command (Redis BLPOP...): waits by design */
#define DBTAP_AGG_F_BATCH	 (1 << 3) /* a batch of commands run as one (Redis MULTI/EXEC) */

struct dbtap_agg_key {
	__u32 instance;	  /* instance id: the server's main PID in the root PID namespace */
	__u32 db_id;	  /* dbtap_name_hash() of the database name, 0 = not known yet */
	__u32 user_id;	  /* dbtap_name_hash() of the user name, 0 = not known yet */
	__u16 system;	  /* enum dbtap_system */
	__u16 flags;	  /* DBTAP_AGG_F_* */
	__u64 query_hash; /* literal-insensitive fingerprint of the query text */
};

struct dbtap_agg_val {
	__u64 count;  /* completed operations */
	__u64 errors; /* of which failed */
	__u64 rows;   /* rows returned or affected, summed */
	__u64 sum_ns; /* total latency */
	/*
	 * Min and max per interval, double-buffered: the kernel writes win[epoch & 1] (resetting
	 * it when its epoch differs), userspace bumps the global epoch at the end of an interval
	 * and then reads the other slot, which no program writes any more.
	 */
	struct {
		__u64 min_ns;
		__u64 max_ns;
		__u32 epoch;
		__u32 _pad;
	} win[2];
	__u32 hist
		[DBTAP_HIST_BUCKETS]; /* latency buckets, see dbtap_hist_bucket(); wrap mod 2^32 */
};

/* Error counts per series and status code (BPF hash map "errs"). */
struct dbtap_err_key {
	struct dbtap_agg_key agg;
	char status[DBTAP_STATUS_LEN]; /* NUL padded */
};

/* ---- per process (BPF hash map "procs", key: tgid in the root PID namespace) ---- */

/* Flags in dbtap_proc.flags. */
#define DBTAP_PROC_F_SERVER_MAIN (1 << 0) /* the server's main process (postmaster, mysqld, ...) */

struct dbtap_proc {
	__u32 instance; /* tgid of the instance's main process */
	__u16 system;	/* enum dbtap_system */
	__u16 flags;	/* DBTAP_PROC_F_* */
	__u32 db_id;	/* PostgreSQL backend: database from the process title, 0 unknown */
	__u32 user_id;	/* PostgreSQL backend: user from the process title, 0 unknown */
};

/* ---- counters (BPF per-CPU array "counters", index enum dbtap_counter) ---- */

/* Numbers are ABI: append only. DROP_* are losses, exported as dbtap.drops{cause}. */
enum dbtap_counter {
	DBTAP_CNT_EVENTS = 0,		/* socket operations inspected on tracked processes */
	DBTAP_CNT_OPS = 1,		/* database operations completed and aggregated */
	DBTAP_CNT_SAMPLES = 2,		/* samples written to the ring buffer */
	DBTAP_CNT_TEXTS = 3,		/* query texts written to the ring buffer */
	DBTAP_CNT_CONN_OPEN = 4,	/* connections seen for the first time */
	DBTAP_CNT_CONN_CLOSE = 5,	/* connections seen closing */
	DBTAP_CNT_UNDECODABLE = 6,	/* messages that are not the expected protocol */
	DBTAP_CNT_ENCRYPTED = 7,	/* connections that switched to TLS/GSS */
	DBTAP_CNT_DROP_SAMPLE_RB = 8,	/* sample lost: ring buffer full */
	DBTAP_CNT_DROP_TEXT_RB = 9,	/* query text lost: ring buffer full (retried) */
	DBTAP_CNT_DROP_CONN_RB = 10,	/* connection event lost: ring buffer full */
	DBTAP_CNT_DROP_PROC_RB = 11,	/* process event lost: ring buffer full */
	DBTAP_CNT_DROP_AGG_FULL = 12,	/* operation not aggregated: aggs map full */
	DBTAP_CNT_DROP_ERR_FULL = 13,	/* error code not counted: errs map full */
	DBTAP_CNT_DROP_CONN_FULL = 14,	/* connection not tracked: conns map full */
	DBTAP_CNT_DROP_STMT_FULL = 15,	/* prepared statement not remembered: stmts map full */
	DBTAP_CNT_DROP_PIPELINE = 16,	/* operation not timed: too many in flight on one conn */
	DBTAP_CNT_DROP_READ = 17,	/* user memory could not be read */
	DBTAP_CNT_DROP_SYSCALL = 18,	/* socket I/O through an unsupported syscall (io_uring..) */
	DBTAP_CNT_DROP_PROC_FULL = 19,	/* process not tracked: procs map full */
	DBTAP_CNT_DESYNC = 20,		/* protocol framing lost on a connection, resynced later */
	DBTAP_CNT_ABORTED = 21,		/* pipelined operations skipped by the server after error */
	DBTAP_CNT_DROP_REASM_FULL = 22, /* message cut across chunks not collected: map full */
	DBTAP_CNT_COMPRESSED = 23,	/* compressed messages: counted, timed, command unknown */
	DBTAP_CNT_MAX,
};

/* ---- ring buffer records ---- */

/* Numbers are ABI: append only. */
enum dbtap_event_type {
	DBTAP_EV_QUERY_TEXT = 1, /* struct dbtap_ev_text: first sight of a fingerprint */
	DBTAP_EV_SAMPLE = 2,	 /* struct dbtap_ev_sample: one sampled operation */
	DBTAP_EV_CONN_OPEN = 3,	 /* struct dbtap_ev_conn */
	DBTAP_EV_CONN_CLOSE = 4, /* struct dbtap_ev_conn */
	DBTAP_EV_PROC_EXEC = 5,	 /* struct dbtap_ev_proc: a server binary started */
	DBTAP_EV_PROC_EXIT = 6,	 /* struct dbtap_ev_proc: a tracked process ended */
};

struct dbtap_ev_hdr {
	__u16 type;  /* enum dbtap_event_type */
	__u16 size;  /* bytes of the whole record, header included */
	__u32 tgid;  /* process that produced it */
	__u64 ts_ns; /* bpf_ktime_get_ns() */
};

#define DBTAP_TEXT_MAX 2048 /* query text bytes carried by a text or sample record */

/* Flags in dbtap_ev_text.flags and dbtap_ev_sample.text_flags. */
#define DBTAP_TEXT_F_TRUNCATED (1 << 0) /* the text went on past what was captured */
#define DBTAP_TEXT_F_STMT_NAME (1 << 1) /* text is a prepared statement's name, not SQL */

struct dbtap_ev_text {
	struct dbtap_ev_hdr hdr;
	__u64 query_hash;
	__u16 system;
	__u16 flags;	/* DBTAP_TEXT_F_* */
	__u16 text_len; /* bytes of text[] used */
	__u16 _pad;
	char text[DBTAP_TEXT_MAX];
};

/* Why a sample was taken: DBTAP_SAMPLE_* bits in dbtap_ev_sample.reasons. */
#define DBTAP_SAMPLE_SLOW   (1 << 0) /* latency >= slow threshold */
#define DBTAP_SAMPLE_ERROR  (1 << 1) /* the operation failed */
#define DBTAP_SAMPLE_RANDOM (1 << 2) /* 1 in N */
#define DBTAP_SAMPLE_MAX    (1 << 3) /* slowest of its series so far this interval */

struct dbtap_addr {
	__u16 family;  /* AF_INET, AF_INET6, AF_UNIX */
	__u16 port;    /* host order */
	__u8 addr[16]; /* IPv4 in the first 4 bytes */
};

struct dbtap_ev_sample {
	struct dbtap_ev_hdr hdr;
	struct dbtap_agg_key key;
	__u64 conn_id;	/* kernel socket address, stable for the connection's life */
	__u64 start_ns; /* request read by the server (bpf_ktime_get_ns) */
	__u64 end_ns;	/* response written */
	__u64 rows;
	__u32 tid;
	__u32 reasons;		       /* DBTAP_SAMPLE_* */
	struct dbtap_addr peer;	       /* the client */
	struct dbtap_addr local;       /* the server's end */
	char status[DBTAP_STATUS_LEN]; /* NUL padded; empty on success */
	/* No text: a sample belongs to a series whose text came in a dbtap_ev_text. */
};

#define DBTAP_STARTUP_MAX 512 /* bytes of a startup/handshake message carried to userspace */

/* Flags in dbtap_ev_conn.flags and the kernel's per-connection state. */
#define DBTAP_CONN_F_MIDSTREAM	 (1 << 0) /* opened before capture started: no startup seen */
#define DBTAP_CONN_F_ENCRYPTED	 (1 << 1) /* switched to TLS or GSS: no text */
#define DBTAP_CONN_F_UNDECODABLE (1 << 2) /* bytes were not the protocol: ignored */
#define DBTAP_CONN_F_STARTUP	 (1 << 3) /* startup[] holds the startup message */

struct dbtap_ev_conn {
	struct dbtap_ev_hdr hdr;
	__u64 conn_id;
	__u32 instance;
	__u16 system;
	__u16 flags; /* DBTAP_CONN_F_* */
	__u32 db_id;
	__u32 user_id;
	__u64 bytes_in;	 /* close only: bytes read by the server */
	__u64 bytes_out; /* close only: bytes written by the server */
	__u64 ops;	 /* close only: operations completed */
	struct dbtap_addr peer;
	struct dbtap_addr local;
	__u16 startup_len;
	__u16 _pad[3];
	char startup[DBTAP_STARTUP_MAX];
};

struct dbtap_ev_proc {
	struct dbtap_ev_hdr hdr;
	__u32 ppid;
	__u32 instance;
	__u16 system;
	__u16 _pad[3];
	char comm[16];
};

/* ---- names ---- */

/* FNV-1a 32 bit of a NUL-terminated or length-bounded name; 0 is mapped to 1 (0 = unknown).
 * Used for database and user names on both sides. */
#define DBTAP_FNV32_OFFSET 2166136261u
#define DBTAP_FNV32_PRIME  16777619u
#define DBTAP_FNV64_OFFSET 14695981039346656037ull
#define DBTAP_FNV64_PRIME  1099511628211ull

static inline __u32 dbtap_name_hash_step(__u32 h, __u8 c)
{
	return (h ^ c) * DBTAP_FNV32_PRIME;
}

/* ---- layout checks: a change here is an ABI change ---- */
#define DBTAP_ASSERT_SIZE(t, n) _Static_assert(sizeof(t) == (n), #t " layout changed")
DBTAP_ASSERT_SIZE(struct dbtap_agg_key, 24);
DBTAP_ASSERT_SIZE(struct dbtap_err_key, 40);
DBTAP_ASSERT_SIZE(struct dbtap_proc, 16);
DBTAP_ASSERT_SIZE(struct dbtap_ev_hdr, 16);
DBTAP_ASSERT_SIZE(struct dbtap_addr, 20);
_Static_assert(__builtin_offsetof(struct dbtap_agg_val, hist) == 80, "agg_val layout changed");
_Static_assert(__builtin_offsetof(struct dbtap_ev_text, text) == 32, "ev_text layout changed");
DBTAP_ASSERT_SIZE(struct dbtap_ev_sample, 136);
DBTAP_ASSERT_SIZE(struct dbtap_ev_conn, 624);
DBTAP_ASSERT_SIZE(struct dbtap_agg_val, 1816);
_Static_assert(DBTAP_HIST_BUCKETS == 433, "histogram bucket count changed");

#endif /* DBTAP_H */
