/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mysql_state.h - the MySQL/MariaDB decoder's per-connection state (a member of struct
 * conn_state's union) and its names for the generic fields. BPF and the decoder harness only.
 */
#ifndef DBTAP_MYSQL_STATE_H
#define DBTAP_MYSQL_STATE_H

/* conn_state.phase */
#define MYSQL_PHASE_START     0 /* CONN_PHASE_START: greeting, or a command (joined mid-stream) */
#define MYSQL_PHASE_IGNORE    1 /* CONN_PHASE_IGNORE: TLS, compression, failed login */
#define MYSQL_PHASE_HANDSHAKE 2 /* greeting seen: waiting for HandshakeResponse/SSLRequest */
#define MYSQL_PHASE_AUTH      3 /* login sent: authentication exchange until the server's OK */
#define MYSQL_PHASE_NORMAL    4 /* commands and their replies */

/* conn_op.kind: commands in flight, in request order. */
enum mysql_op_kind {
	MYSQL_OP_QUERY = 1,   /* COM_QUERY: done at its last OK/ERR/result set terminator */
	MYSQL_OP_PREPARE = 2, /* COM_STMT_PREPARE: not an operation unless it fails */
	MYSQL_OP_EXECUTE = 3, /* COM_STMT_EXECUTE: like a query */
	MYSQL_OP_INIT_DB = 4, /* COM_INIT_DB: "USE ?", tag = the new database's name hash */
	MYSQL_OP_PING = 5,    /* COM_PING: "PING" */
	MYSQL_OP_OTHER = 6, /* any other command with a reply: the reply is skipped, not counted */
};

/* mysql_conn.rs: where the reply in progress is. */
enum mysql_reply_state {
	MYSQL_RS_FIRST = 0,    /* next packet starts a reply (or the next result of one) */
	MYSQL_RS_COLDEFS = 1,  /* result set: @left column definitions to come */
	MYSQL_RS_COLS_END = 2, /* after the definitions: an EOF (no CLIENT_DEPRECATE_EOF) or rows */
	MYSQL_RS_ROWS = 3,     /* rows until an EOF / OK (0xFE) or ERR */
	MYSQL_RS_PREP_DEFS = 4, /* PREPARE_OK: @left parameter/column definitions (EOFs skipped) */
	MYSQL_RS_PREP_TAIL = 5, /* PREPARE_OK definitions done: maybe one EOF, then a new reply */
	MYSQL_RS_SKIP = 6,	/* a reply not decoded: skipped until a packet with sequence id 1 */
};

/* conn_state.stmts kind of a MySQL statement id (PostgreSQL uses 1 and 2). */
#define MYSQL_STMT_KIND 3

struct mysql_conn {
	__u32 caps;	    /* capability flags: the server's, then the negotiated ones */
	__u32 ext_caps;	    /* MariaDB extended capabilities (server & client) */
	__u32 left;	    /* packets left in MYSQL_RS_COLDEFS / MYSQL_RS_PREP_DEFS */
	__u8 rs;	    /* enum mysql_reply_state */
	__u8 req_cont;	    /* the last request packet was 0xFFFFFF bytes: next one continues it */
	__u8 resp_cont;	    /* the same for replies */
	__u8 mid_hdr;	    /* START: a lone header with sequence id 0 read; @left: its length */
	__u64 rows;	    /* rows returned or affected so far by the reply in progress */
	__u64 last_prepare; /* query hash of the last statement prepared (statement id -1) */
};

#endif /* DBTAP_MYSQL_STATE_H */
