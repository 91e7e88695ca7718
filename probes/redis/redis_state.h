/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * redis_state.h - the Redis decoder's per-connection state (a member of struct conn_state's
 * union) and its names for the generic fields. BPF and the decoder harness only.
 *
 * Both directions are parsed by resumable state machines (bulk payloads are skipped by their
 * length; a token cut by a chunk's end is finished by the next chunk from here), so a request
 * or reply cut anywhere across chunks needs no reassembly: everything a later chunk needs is
 * here.
 */
#ifndef DBTAP_REDIS_STATE_H
#define DBTAP_REDIS_STATE_H

/* conn_state.phase */
#define REDIS_PHASE_START    0 /* CONN_PHASE_START: nothing seen yet */
#define REDIS_PHASE_IGNORE   1 /* CONN_PHASE_IGNORE: TLS, not RESP, or framing lost */
#define REDIS_PHASE_NORMAL   2 /* RESP both ways */
/* replies could not be read (past the scratch of a writev): requests are counted when read,
 * with no duration, and replies ignored */
#define REDIS_PHASE_REQUESTS 3

/* conn_op.kind: what a reply to the command does besides completing it. */
enum redis_op_kind {
	REDIS_OP_CMD = 1,     /* any command; conn_op.tag: further identical commands merged
			       * into this entry while the queue was full (see redis.bpf.h) */
	REDIS_OP_MULTI = 2,   /* +OK opens a transaction: +QUEUED replies keep commands queued */
	REDIS_OP_EXEC = 3,    /* its array reply completes the queued commands, one per element */
	REDIS_OP_DISCARD = 4, /* drops the queued commands (never executed) */
	REDIS_OP_SELECT = 5,  /* +OK switches c->db_id to conn_op.tag (hash of the index) */
	REDIS_OP_SUB = 6,     /* (P|S)(UN)SUBSCRIBE: conn_op.tag = confirmations still due */
	REDIS_OP_RESET = 7,   /* RESET: transaction, subscriptions and database back to start */
};

#define REDIS_TEXT_BUF	32 /* bytes of "COMMAND key" kept for the text record */
#define REDIS_MAX_DEPTH 6  /* nested aggregates followed in replies; deeper: framing lost */
#define REDIS_WORD_MAX \
	12 /* first word of an error / status reply, NUL included (longest
			    * error prefix: CLUSTERDOWN, 11) */

/* FNV-1a 32 of upper-cased command names (checked by tests/unit/test_redis_decoder.c). */
#define REDIS_CMD_SELECT       0xb4293aadu
#define REDIS_CMD_MULTI	       0x3a75e612u
#define REDIS_CMD_EXEC	       0xcaa1f59cu
#define REDIS_CMD_DISCARD      0xc1cf3ca1u
#define REDIS_CMD_RESET	       0x0d76d520u
#define REDIS_CMD_SUBSCRIBE    0x80a43ea3u
#define REDIS_CMD_PSUBSCRIBE   0xb2427331u
#define REDIS_CMD_SSUBSCRIBE   0x10706ebeu
#define REDIS_CMD_UNSUBSCRIBE  0x05af47f6u
#define REDIS_CMD_PUNSUBSCRIBE 0xebb8b628u
#define REDIS_CMD_SUNSUBSCRIBE 0x5001d3a7u
#define REDIS_CMD_BLPOP	       0xb38de2ceu
#define REDIS_CMD_BRPOP	       0xf21a8b00u
#define REDIS_CMD_BRPOPLPUSH   0x2f515da0u
#define REDIS_CMD_BLMOVE       0x451b6d52u
#define REDIS_CMD_BLMPOP       0xa5b54001u
#define REDIS_CMD_BZPOPMIN     0x4b180d94u
#define REDIS_CMD_BZPOPMAX     0x792bddb6u
#define REDIS_CMD_BZMPOP       0xf1c72107u
#define REDIS_CMD_WAIT	       0x8eaf7da0u
#define REDIS_CMD_WAITAOF      0x2d497d76u
#define REDIS_CMD_XREAD	       0x55f7982bu
#define REDIS_CMD_XREADGROUP   0x76e9fc42u
#define REDIS_CMD_ACL	       0x77869883u
#define REDIS_CMD_CLIENT       0x6d3cd99eu
#define REDIS_CMD_CLUSTER      0x39cdc06du
#define REDIS_CMD_COMMAND      0x283352d2u
#define REDIS_CMD_CONFIG       0x01a9a447u
#define REDIS_CMD_DEBUG	       0x685108f8u
#define REDIS_CMD_FUNCTION     0x46486009u
#define REDIS_CMD_LATENCY      0x80e35f39u
#define REDIS_CMD_MEMORY       0xc33e4eaeu
#define REDIS_CMD_MODULE       0x67b10a5du
#define REDIS_CMD_OBJECT       0x1b2e0f7au
#define REDIS_CMD_PUBSUB       0xd50b7006u
#define REDIS_CMD_SCRIPT       0xfd8e81eau
#define REDIS_CMD_SLOWLOG      0xd68b3e6au
#define REDIS_CMD_XGROUP       0x60fa1e8eu
#define REDIS_CMD_XINFO	       0xead47783u
#define REDIS_CMD_AUTH	       0x57a83acfu
#define REDIS_CMD_HELLO	       0x32543b0bu
#define REDIS_CMD_PING	       0x02926c89u
#define REDIS_CMD_ECHO	       0xbe57e784u
#define REDIS_CMD_INFO	       0x0d076a45u
#define REDIS_CMD_EVAL	       0xb28d6f4fu
#define REDIS_CMD_EVALSHA      0x40fa2b8fu
#define REDIS_CMD_EVAL_RO      0x0bf3422bu
#define REDIS_CMD_EVALSHA_RO   0x610c636bu
#define REDIS_CMD_FCALL	       0xb203301du
#define REDIS_CMD_FCALL_RO     0x037cede9u
#define REDIS_CMD_QUIT	       0x84d9bc36u

/* FNV-1a 32 of lower-cased push kinds (first element of a pushed array). */
#define REDIS_PUSH_MESSAGE	0x24f208e4u
#define REDIS_PUSH_PMESSAGE	0xcd4897ceu
#define REDIS_PUSH_SMESSAGE	0xde474c29u
#define REDIS_PUSH_SUBSCRIBE	0xaf9e4a03u
#define REDIS_PUSH_PSUBSCRIBE	0x3e7ec9f1u
#define REDIS_PUSH_SSUBSCRIBE	0x75ff01feu
#define REDIS_PUSH_UNSUBSCRIBE	0xf9befe96u
#define REDIS_PUSH_PUNSUBSCRIBE 0x333074a8u
#define REDIS_PUSH_SUNSUBSCRIBE 0x3f1b4767u

#define REDIS_DB0_HASH 0x350ca8afu /* dbtap_name_hash("0"): the database a connection starts in */

/* redis_conn.req_flags */
#define REDIS_RQ_F_DIGITS    (1 << 0) /* the key's last byte was a digit (folded into one '?') */
#define REDIS_RQ_F_TRUNCATED (1 << 1) /* the key went on past what was fingerprinted */
#define REDIS_RQ_F_BLOCK_ARG (1 << 2) /* XREAD/XREADGROUP: an argument "BLOCK" was seen */
#define REDIS_RQ_F_ARG_MATCH (1 << 3) /* the current argument still matches "BLOCK" */
#define REDIS_RQ_F_INLINE    (1 << 4) /* the request is an inline command (a text line) */
#define REDIS_RQ_F_IN_TOKEN  (1 << 5) /* inline: inside a token */

/* redis_conn.rp_flags */
#define REDIS_RP_F_ERR \
	(1 << 0)			/* the top-level reply (or current top element) is an
					 * error: its first word is in rp_word */
#define REDIS_RP_F_FIRST       (1 << 1) /* the top-level aggregate's first element is pending */
#define REDIS_RP_F_EXEC	       (1 << 2) /* the top-level aggregate is EXEC's reply */
#define REDIS_RP_F_WORD	       (1 << 3) /* capturing the current value's first word */
#define REDIS_RP_F_WORD_DONE   (1 << 4) /* the word ended (space or end of value) */
#define REDIS_RP_F_FIRST_VALUE (1 << 5) /* hashing the current value as the first element */

struct redis_conn {
	/* requests (IO_RECV) */
	__u64 req_fp;	   /* FNV-1a 64 of "COMMAND [SUBCOMMAND] [key pattern]" so far */
	__u32 req_num;	   /* number being read (array or bulk length); while a bulk is read:
			     * FNV-1a 32 of it (SELECT's index) */
	__u32 req_left;	   /* bulk bytes (with CRLF) still to read or skip */
	__u32 req_args;	   /* arguments of the array still to come */
	__u32 req_name;	   /* FNV-1a 32 of the upper-cased command name */
	__u16 req_arg;	   /* index of the current argument */
	__u16 req_arg_len; /* bytes of the current argument looked at */
	__u16 req_class;   /* REDIS_CLS_* of the command (redis.bpf.h), kind in bits 8.. */
	__u8 req_state;	   /* REDIS_RQ_* */
	__u8 req_flags;	   /* REDIS_RQ_F_* */
	__u8 req_text_len;
	__u8 req_multi; /* a MULTI was sent and no EXEC/DISCARD yet (request side) */
	/* replies (IO_SEND) */
	__u8 rp_state; /* REDIS_RP_* */
	__u8 rp_type;  /* RESP type byte of the value being read */
	__u8 rp_top;   /* RESP type byte of the top-level value */
	__u8 rp_depth; /* open aggregates */
	__u8 rp_attr;  /* bit d: the aggregate at depth d is an attribute ('|') */
	__u8 rp_flags; /* REDIS_RP_F_* */
	__u8 rp_neg;   /* the number read is negative (null) */
	__u8 rp_word_len;
	__u8 rp_first;	     /* REDIS_FIRST_*: what the first element of the top aggregate is */
	__u8 qpos;	     /* ops after head answered +QUEUED (inside MULTI) */
	__u8 multi;	     /* MULTI answered +OK, no EXEC/DISCARD answered yet */
	__u8 sub_mode;	     /* a subscription was confirmed: arrays may be pushed messages */
	__u16 lost;	     /* replies due to commands counted without an op (queue full) */
	__u32 rp_num;	     /* number being read; then blob bytes (with CRLF) still to come */
	__u32 rp_first_hash; /* FNV-1a 32 of the first element, lower-cased */
	__u32 rp_elems;	     /* elements of the top-level aggregate (EXEC's batch size) */
	__u32 rp_stack[REDIS_MAX_DEPTH]; /* elements still due per open aggregate */
	char rp_word[REDIS_WORD_MAX];	 /* error prefix / status word of the reply */
	char req_text[REDIS_TEXT_BUF];	 /* "COMMAND key" as seen, for the text record */
};

/* a member of conn_state's union, one per tracked connection: keep it small */
_Static_assert(sizeof(struct redis_conn) <= 128, "redis_conn grew past 128 bytes");
_Static_assert(REDIS_WORD_MAX <= DBTAP_STATUS_LEN, "status word longer than a status");

#endif /* DBTAP_REDIS_STATE_H */
