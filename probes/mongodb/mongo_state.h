/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mongo_state.h - the MongoDB decoder's per-connection state (a member of struct conn_state's
 * union) and its names for the generic fields. BPF and the decoder harness only.
 */
#ifndef DBTAP_MONGO_STATE_H
#define DBTAP_MONGO_STATE_H

/* conn_state.phase */
#define MG_PHASE_START	0 /* CONN_PHASE_START: nothing seen yet */
#define MG_PHASE_IGNORE 1 /* CONN_PHASE_IGNORE: TLS, or not the MongoDB wire protocol */
#define MG_PHASE_NORMAL 2 /* framed messages both ways */

/* conn_op.kind: one request waiting for its reply (conn_op.tag holds its requestID). */
enum mg_op_kind {
	MG_OP_COMMAND = 1,    /* OP_MSG or OP_QUERY command */
	MG_OP_CURSOR = 2,     /* find/aggregate: its reply's cursor.id is remembered */
	MG_OP_GETMORE = 3,    /* getMore: its reply's cursor.id 0 forgets the cursor */
	MG_OP_COMPRESSED = 4, /* OP_COMPRESSED: command not visible, reply not readable */
};

/* Key kind in the "stmts" map: a live cursor of an instance -> the query hash of the
 * find/aggregate that opened it, so that its getMores count in that series. Next to
 * STMT_KIND_STATEMENT (1) and STMT_KIND_PORTAL (2) of PostgreSQL. */
#define MG_STMT_KIND_CURSOR 4

#define MG_MAX_DEPTH 8 /* nesting of BSON documents walked (the top document is depth 1) */

struct mongo_conn {
	__u32 getmore_key; /* getMore in flight: its cursor's key in "stmts", 0 = none */
	__u32 _pad;
	/* the BSON walk's open documents end here (map memory: the verifier refuses
	 * variable-offset stack writes) */
	__u32 frame_end[MG_MAX_DEPTH];
};

#endif /* DBTAP_MONGO_STATE_H */
