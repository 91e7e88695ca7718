/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pg_state.h - the PostgreSQL decoder's per-connection state (a member of struct conn_state's
 * union) and its names for the generic fields. BPF and the decoder harness only.
 */
#ifndef DBTAP_PG_STATE_H
#define DBTAP_PG_STATE_H

/* conn_state.phase */
#define PG_PHASE_START	  0 /* CONN_PHASE_START: startup, SSL/GSS request, or mid-stream */
#define PG_PHASE_IGNORE	  1 /* CONN_PHASE_IGNORE: encrypted, cancel request, not PostgreSQL */
#define PG_PHASE_ENC_WAIT 2 /* SSLRequest/GSSENCRequest sent: waiting for 'S'/'G'/'N' */
#define PG_PHASE_NORMAL	  3 /* typed messages both ways */

/* conn_op.kind: operations queued on a connection, in request order. */
enum pg_op_kind {
	PG_OP_SIMPLE = 1, /* Query: completes at ReadyForQuery */
	PG_OP_EXEC = 2,	  /* Execute: completes at CommandComplete/ErrorResponse/... */
	PG_OP_SYNC = 3,	  /* Sync: a ReadyForQuery ends everything up to here */
};

struct pg_conn {
	__u8 cur_err;	/* the simple query in flight has failed */
	__u8 cur_empty; /* the simple query in flight was an empty string */
	__u16 unnamed_stmt_flags;
	__u16 unnamed_portal_flags;
	__u16 _pad;
	char cur_status[DBTAP_STATUS_LEN]; /* SQLSTATE of that failure */
	__u64 cur_rows;
	__u64 unnamed_stmt;   /* query hash of the unnamed prepared statement, 0 = none */
	__u64 unnamed_portal; /* query hash of the unnamed portal */
};

#endif /* DBTAP_PG_STATE_H */
