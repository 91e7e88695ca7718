/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * capture.h - kernel-side state of the socket capture path: per-connection protocol state,
 * the scratch buffer and the walk context handed to per-protocol decoders. BPF only: nothing
 * here crosses to userspace (the shared records are in dbtap.h).
 */
#ifndef DBTAP_CAPTURE_H
#define DBTAP_CAPTURE_H

#include "bpf/dbtap.h"
#include "probes/sql/sql_fingerprint.h"
#include "probes/postgresql/pg_state.h"
#include "probes/redis/redis_state.h"
#include "probes/mysql/mysql_state.h"
#include "probes/mongodb/mongo_state.h"

#define AF_UNIX	    1
#define AF_INET	    2
#define AF_INET6    10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define MSG_PEEK    2
#define S_IFMT	    00170000
#define S_IFSOCK    0140000

/* Bytes of one recv/send copied for decoding. A power of two; the buffer is twice as large so
 * that masked offsets plus masked lengths always stay inside it (verifier bounds). */
#define SCRATCH_SIZE 8192
#define SCRATCH_MASK (SCRATCH_SIZE - 1)

/* Direction of a chunk, seen from the server. */
enum io_dir {
	IO_RECV = 0, /* request bytes read by the server */
	IO_SEND = 1, /* response bytes written by the server */
};

/* Phase of a connection's decoder. START and IGNORE mean the same for every system; a
 * decoder numbers its own phases from CONN_PHASE_FIRST_OWN (see probes/<db>/<db>_state.h). */
#define CONN_PHASE_START     0 /* nothing seen yet */
#define CONN_PHASE_IGNORE    1 /* encrypted, not the protocol, ...: bytes are only counted */
#define CONN_PHASE_FIRST_OWN 2

/* One operation queued on a connection, in request order (pipelining). */
struct conn_op {
	__u64 query_hash;
	__u64 start_ns;
	__u16 agg_flags; /* DBTAP_AGG_F_* */
	__u8 kind;	 /* the decoder's own kinds */
	__u8 flags;	 /* the decoder's own flags */
	__u32 tag;	 /* the decoder's own: e.g. a request id the reply names */
};

#define CONN_MAX_OPS 16 /* operations in flight per connection (pipelining) */

/* Per-connection framing state of one direction. */
struct frame_state {
	__u32 skip; /* bytes of the current message still to come in later chunks */
	__u8 reasm; /* FRAME_REASM_*: the message is being collected in the "reasms" map */
	__u8 _pad[3];
};

#define FRAME_REASM_NONE  0
#define FRAME_REASM_TYPED 1 /* a typed message (its header possibly incomplete) */
#define FRAME_REASM_START 2 /* the first bytes of a connection, not decided yet */

struct conn_state {
	__u64 sk;
	__u64 ident; /* peer identity at creation: see conn_ident() */
	__u32 tgid;
	__u32 instance;
	__u32 db_id;
	__u32 user_id;
	__u16 system; /* may be refined by the decoder (MySQL -> MariaDB from the greeting) */
	__u16 flags;  /* DBTAP_CONN_F_* */
	__u8 phase;   /* CONN_PHASE_* or the decoder's own */
	__u8 head;    /* ops[head % CONN_MAX_OPS] is the oldest operation in flight */
	__u8 tail;    /* ops[tail % CONN_MAX_OPS] is the next free slot */
	__u8 _pad1;
	struct frame_state req;
	struct frame_state resp;
	__u64 bytes_in;
	__u64 bytes_out;
	__u64 ops_done;
	struct dbtap_addr peer;
	struct dbtap_addr local;
	struct conn_op ops[CONN_MAX_OPS];
	/* the decoder's own state, by system */
	union {
		struct pg_conn pg;
		struct redis_conn redis;
		struct mysql_conn mysql;
		struct mongo_conn mongo;
	};
};

/* Key of the "stmts" map: a named prepared statement or portal of one connection. */
#define STMT_KIND_STATEMENT 1
#define STMT_KIND_PORTAL    2
struct stmt_key {
	__u64 sk;
	__u32 name_hash;
	__u32 kind;
};

struct stmt_val {
	__u64 query_hash;
	__u16 agg_flags;
	__u16 _pad[3];
};

/* A finished operation, handed from a decoder to complete_op(). */
struct op_done {
	__u64 query_hash;
	__u64 start_ns;
	__u64 rows;
	__u16 agg_flags;
	__u8 failed;
	__u8 _pad[5];
	char status[DBTAP_STATUS_LEN];
};

/* The chunk being decoded: scalars only, kept in the per-CPU scratch so that global BPF
 * functions (verified once each) can take it as their one argument. */
struct chunk {
	__u64 sk; /* connection key: the kernel socket address */
	__u64 now;
	__u64 user_buf; /* user address of the chunk when it is one contiguous buffer, else 0 */
	__u32 tgid;
	__u32 avail;	   /* bytes of the chunk copied into buf */
	__u32 total;	   /* bytes of the chunk */
	__u32 pos;	   /* decoding position */
	__u32 msg_end;	   /* the current message's readable bytes end here in buf */
	__u8 dir;	   /* enum io_dir */
	__u8 done_pending; /* done holds an operation for dbtap_complete() */
	__u8 stop;	   /* framing gave up on this chunk */
	__u8 closing;	   /* a Terminate was seen: close after the chunk */
	struct op_done done;
};

/* Bytes of a message a decoder reads at most, header included: a message cut across chunks is
 * collected up to this many bytes (the "reasms" map), and a whole one is read no further, so
 * the result never depends on where the stream was cut. */
#define REASM_MAX  2048
#define REASM_MASK (REASM_MAX - 1)
#define REASM_AT   SCRATCH_SIZE /* where a collected message is decoded from, in buf */

struct reasm {
	__u32 have;		 /* bytes in buf */
	__u32 want;		 /* bytes to collect before decoding */
	__u8 buf[2 * REASM_MAX]; /* doubled: masked offset + masked length stay inside */
};

#define TEXT_CACHE_SLOTS 256 /* a power of two */

/*
 * A query's fingerprint lexer state after its first plen bytes (see dbtap_sql_fp_scratch()):
 * the next text whose first plen bytes are the same resumes there instead of lexing them
 * again. Keyed by the first 16 bytes and the dialect; plen is a multiple of 8 that ends
 * before the first number or quote (where the literals that vary between executions start).
 */
#define FP_CACHE_SLOTS	    64 /* a power of two */
#define FP_CACHE_MAX_BLOCKS 32 /* prefixes of up to 256 bytes */
#define FP_CACHE_KEY_LEN    16 /* bytes of the key; shorter texts are lexed whole */
struct fp_cache_entry {
	__u64 key;  /* 0: empty */
	__u64 raw;  /* hash of the prefix's bytes */
	__u32 plen; /* the prefix: a multiple of 8, at least FP_CACHE_KEY_LEN */
	__u32 _pad;
	struct sql_fp fp; /* the lexer after the prefix */
};

struct scratch {
	/* chunk bytes at [0, SCRATCH_SIZE), a collected message at REASM_AT; the tail keeps
	 * masked offsets plus masked lengths inside for the verifier */
	__u8 buf[2 * SCRATCH_SIZE + DBTAP_TEXT_MAX];
	/* Lexer state lives here, not on the stack: map memory is opaque to the verifier,
	 * so a bpf_loop over a state machine verifies once instead of once per state. */
	struct sql_fp fp;
	struct chunk ch;
	/* fingerprints whose text userspace has (direct-mapped, per CPU): spares most queries
	 * the lookup in the "texts_seen" map; a slot overwritten only costs that lookup */
	__u64 text_cache[TEXT_CACHE_SLOTS];
	struct fp_cache_entry fp_cache[FP_CACHE_SLOTS]; /* per CPU, direct-mapped */
};

#endif /* DBTAP_CAPTURE_H */
