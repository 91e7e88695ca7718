/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mysql.bpf.h - MySQL/MariaDB client/server protocol decoder running in the BPF capture
 * programs.
 *
 * Included by bpf/decoders.bpf.h after probes/postgresql/pg.bpf.h (whose fingerprint step
 * functions it shares). Frames each direction into packets (3-byte length, sequence id; a
 * packet cut across chunks is collected in the "reasms" map up to what the decoder reads) and
 * follows the connection:
 *   greeting (v10) ........... server version -> MySQL or MariaDB, capability flags
 *   HandshakeResponse41 ...... user and initial database hashed into user_id/db_id, the
 *                              packet sent to userspace as the connection's startup bytes
 *   SSLRequest ............... encrypted: only counted; CLIENT_COMPRESS: undecodable
 *   COM_QUERY ................ QUERY op, fingerprinted; done at the reply's last result
 *   COM_STMT_PREPARE ......... its statement id (PREPARE_OK) -> its text's hash ("stmts")
 *   COM_STMT_EXECUTE ......... EXECUTE op of that hash (unknown id: marked, named by its id)
 *   COM_STMT_CLOSE ........... forgotten; COM_INIT_DB: "USE ?" op, db_id follows it
 *   COM_PING ................. "PING" op; COM_QUIT: closed; other commands: reply skipped
 * Replies: OK (affected rows), ERR (error number as the status), result sets (rows counted
 * until the EOF or, with CLIENT_DEPRECATE_EOF, the 0xFE OK; told apart by length, so the mode
 * need not be known), SERVER_MORE_RESULTS_EXISTS (the op ends at the last result).
 * Names follow the MySQL source documentation, "Client/Server Protocol".
 */
#ifndef DBTAP_MYSQL_BPF_H
#define DBTAP_MYSQL_BPF_H

/* Packets. */
#define MYSQL_HDR_LEN	      4		/* int<3> payload length, int<1> sequence id */
#define MYSQL_MAX_PAYLOAD     0xffffffu /* a payload this long is continued in the next packet */
#define MYSQL_PROTOCOL_V10    10	/* Protocol::HandshakeV10 */
#define MYSQL_MAX_PKTS_LOOP   (SCRATCH_SIZE / MYSQL_HDR_LEN + 1)
#define MYSQL_RESP_WANT	      64  /* reply bytes read at most (OK: 1 + 9 + 9 + 2 + 2) */
#define MYSQL_GREETING_WANT   128 /* greeting bytes read at most */
#define MYSQL_NAME_MAX	      64  /* user/database name bytes hashed */
#define MYSQL_VERSION_MAX     64  /* server version bytes searched for "MariaDB" */
#define MYSQL_EOF_LEN	      5	  /* EOF_Packet: 0xFE, int<2> warnings, int<2> status */
#define MYSQL_OK_FE_MAX	      9	  /* a 0xFE packet shorter than this is an EOF/OK, not a row */
#define MYSQL_SSL_REQUEST_LEN 32  /* SSLRequest: caps, max packet, charset, 23 filler */
#define MYSQL_HS_FILLER_AT    9	  /* HandshakeResponse41: caps 4, max packet 4, charset 1 */
#define MYSQL_HS_EXT_CAPS_AT  28  /* MariaDB extended capabilities in the filler */
#define MYSQL_HS_USER_AT      32  /* the user name after the 23 filler bytes */
#define MYSQL_STMT_ID_LAST    0xffffffffu /* COM_STMT_EXECUTE of the last prepared (MariaDB) */

/* Packet headers (first payload byte) of replies. */
#define MYSQL_OK	   0x00
#define MYSQL_EOF	   0xfe
#define MYSQL_ERR	   0xff
#define MYSQL_LOCAL_INFILE 0xfb
#define MYSQL_ERR_SQLSTATE '#'

/* Length-encoded integers. */
#define MYSQL_LENENC_NULL 0xfb
#define MYSQL_LENENC_2	  0xfc
#define MYSQL_LENENC_3	  0xfd
#define MYSQL_LENENC_8	  0xfe

/* Commands (first byte of a request with sequence id 0). */
#define MYSQL_COM_SLEEP		    0x00
#define MYSQL_COM_QUIT		    0x01
#define MYSQL_COM_INIT_DB	    0x02
#define MYSQL_COM_QUERY		    0x03
#define MYSQL_COM_FIELD_LIST	    0x04
#define MYSQL_COM_STATISTICS	    0x09
#define MYSQL_COM_PING		    0x0e
#define MYSQL_COM_CHANGE_USER	    0x11
#define MYSQL_COM_BINLOG_DUMP	    0x12
#define MYSQL_COM_STMT_PREPARE	    0x16
#define MYSQL_COM_STMT_EXECUTE	    0x17
#define MYSQL_COM_STMT_SEND_LONG    0x18
#define MYSQL_COM_STMT_CLOSE	    0x19
#define MYSQL_COM_STMT_RESET	    0x1a
#define MYSQL_COM_SET_OPTION	    0x1b
#define MYSQL_COM_STMT_FETCH	    0x1c
#define MYSQL_COM_RESET_CONNECTION  0x1f
#define MYSQL_COM_STMT_BULK_EXECUTE 0xfa /* MariaDB */

/* Capability flags. */
#define MYSQL_CLIENT_MYSQL		(1u << 0) /* MariaDB: not set by MariaDB servers */
#define MYSQL_CLIENT_CONNECT_WITH_DB	(1u << 3)
#define MYSQL_CLIENT_COMPRESS		(1u << 5)
#define MYSQL_CLIENT_PROTOCOL_41	(1u << 9)
#define MYSQL_CLIENT_SSL		(1u << 11)
#define MYSQL_CLIENT_SECURE_CONNECTION	(1u << 15)
#define MYSQL_CLIENT_MULTI_RESULTS	(1u << 17)
#define MYSQL_CLIENT_PLUGIN_AUTH	(1u << 19)
#define MYSQL_CLIENT_PLUGIN_AUTH_LENENC (1u << 21)
#define MYSQL_CLIENT_DEPRECATE_EOF	(1u << 24)
#define MYSQL_CLIENT_ZSTD		(1u << 26)
#define MYSQL_CLIENT_QUERY_ATTRIBUTES	(1u << 27)

/* Status flags. */
#define MYSQL_SERVER_MORE_RESULTS_EXISTS  0x0008
#define MYSQL_SERVER_STATUS_CURSOR_EXISTS 0x0040 /* EXECUTE opened a cursor: rows come by FETCH */

/* Greeting layout after the version's NUL. */
#define MYSQL_GR_CAPS_LO_AT  (4 + 8 + 1) /* thread id, auth data part 1, filler */
#define MYSQL_GR_CAPS_HI_AT  (MYSQL_GR_CAPS_LO_AT + 2 + 1 + 2) /* + caps lo, charset, status */
#define MYSQL_GR_EXT_CAPS_AT (MYSQL_GR_CAPS_HI_AT + 2 + 1 + 6) /* + caps hi, auth len, filler */

/* Hash of a statement id never seen prepared, and the fixed texts of commands without SQL. */
#define MYSQL_UNKNOWN_STMT_TAG 0x4d53u		     /* "MS" */
#define MYSQL_HASH_USE	       0x4d59534c55534531ull /* "MYSLUSE1" */
#define MYSQL_HASH_PING	       0x4d59534c50494e47ull /* "MYSLPING" */
#define MYSQL_TEXT_USE	       "USE ?"
#define MYSQL_TEXT_PING	       "PING"
/* Where the decoder writes the texts it makes up (past a collected message, see struct scratch) */
#define MYSQL_TMP_AT	       (REASM_AT + REASM_MAX)
#define MYSQL_U32_DIGITS       10
#define MYSQL_U16_DIGITS       5

/* ---- reading the scratch ---- */

static __always_inline __u32 my_le16(struct scratch *s, __u32 off)
{
	return (__u32)sb(s, off) | ((__u32)sb(s, off + 1) << 8);
}

static __always_inline __u32 my_le24(struct scratch *s, __u32 off)
{
	return my_le16(s, off) | ((__u32)sb(s, off + 2) << 16);
}

static __always_inline __u32 my_le32(struct scratch *s, __u32 off)
{
	return my_le24(s, off) | ((__u32)sb(s, off + 3) << 24);
}

/* A length-encoded integer at @off (bytes up to @end readable) into *@ret_val; returns its
 * size in bytes, 0 when it is not one (NULL, 0xFF) or cut. */
static __always_inline __u32 my_lenenc(struct scratch *s, __u32 off, __u32 end, __u64 *ret_val)
{
	__u8 b;

	if (off >= end)
		return 0;
	b = sb(s, off);
	if (b < MYSQL_LENENC_NULL) {
		*ret_val = b;
		return 1;
	}
	if (b == MYSQL_LENENC_2 && off + 3 <= end) {
		*ret_val = my_le16(s, off + 1);
		return 3;
	}
	if (b == MYSQL_LENENC_3 && off + 4 <= end) {
		*ret_val = my_le24(s, off + 1);
		return 4;
	}
	if (b == MYSQL_LENENC_8 && off + 9 <= end) {
		*ret_val = (__u64)my_le32(s, off + 1) | ((__u64)my_le32(s, off + 5) << 32);
		return 9;
	}
	return 0;
}

/* Decimal text of @v into the scratch at MYSQL_TMP_AT; returns its length. */
static __always_inline __u32 my_decimal(struct scratch *s, __u32 v)
{
	__u32 n = 1, t = v, i;

	for (i = 1; i < MYSQL_U32_DIGITS; i++) {
		t /= 10;
		if (!t)
			break;
		n++;
	}
	for (i = 0; i < MYSQL_U32_DIGITS; i++) {
		if (i >= n)
			break;
		s->buf[MYSQL_TMP_AT + bound(n - 1 - i, 15)] = '0' + v % 10;
		v /= 10;
	}
	return n;
}

struct my_scan {
	struct scratch *s;
	__u32 off;
	__u32 end;
	__u32 hash; /* name: FNV-1a 32 */
	__u32 len;  /* name: bytes before the NUL */
	__u8 done;  /* name: NUL found */
	__u8 match; /* version: bytes of "MariaDB" matched */
	__u8 found; /* version: "MariaDB" seen */
};

static long my_name_cb(__u64 i, void *arg)
{
	struct my_scan *w = arg;
	__u32 p = w->off + (__u32)i;
	__u8 c;

	if (p >= w->end)
		return 1;
	c = sb(w->s, p);
	if (c == 0) {
		w->done = 1;
		return 1;
	}
	w->hash = dbtap_name_hash_step(w->hash, c);
	w->len++;
	return 0;
}

/* FNV-1a 32 of the NUL-terminated name at @off as dbtap_name_hash() makes it (0 -> 1; 0 for
 * ""), its length in @ret_len; -1 when no NUL within MYSQL_NAME_MAX bytes and @end. */
static __always_inline int my_name(struct scratch *s, __u32 off, __u32 end, __u32 *ret_hash,
				   __u32 *ret_len)
{
	struct my_scan w = {.s = s, .off = off, .end = end, .hash = DBTAP_FNV32_OFFSET};

	bpf_loop(MYSQL_NAME_MAX + 1, my_name_cb, &w, 0);
	if (!w.done)
		return -1;
	*ret_hash = w.len ? (w.hash ? w.hash : 1) : 0;
	*ret_len = w.len;
	return 0;
}

/* The @i-th byte of "MariaDB" (no table: the verifier would want the index bounded). */
#define MYSQL_MARIADB_LEN 7
static __always_inline __u8 my_mariadb_char(__u8 i)
{
	switch (i) {
	case 0:
		return 'M';
	case 1:
	case 4:
		return 'a';
	case 2:
		return 'r';
	case 3:
		return 'i';
	case 5:
		return 'D';
	case 6:
		return 'B';
	}
	return 0;
}

static long my_version_cb(__u64 i, void *arg)
{
	struct my_scan *w = arg;
	__u32 p = w->off + (__u32)i;
	__u8 c;

	if (p >= w->end)
		return 1;
	c = sb(w->s, p);
	if (c == 0) {
		w->done = 1;
		return 1;
	}
	w->len++;
	/* no proper prefix of "MariaDB" is also its suffix: a mismatch restarts at 'M' */
	if (c == my_mariadb_char(w->match))
		w->match++;
	else
		w->match = c == 'M';
	if (w->match == MYSQL_MARIADB_LEN) {
		w->found = 1;
		w->match = 0;
	}
	return 0;
}

/* ---- connection start ---- */

/* Protocol::HandshakeV10 at @body: the system from the version, the server's capabilities. */
static __always_inline void my_greeting(struct scratch *s, struct conn_state *c, __u32 body,
					__u32 end)
{
	struct my_scan w = {.s = s, .off = body + 1, .end = end};
	__u32 at;

	bpf_loop(MYSQL_VERSION_MAX + 1, my_version_cb, &w, 0);
	c->system = w.found ? DBTAP_SYS_MARIADB : DBTAP_SYS_MYSQL;
	c->phase = MYSQL_PHASE_HANDSHAKE;
	if (!w.done)
		return;
	at = body + 1 + w.len + 1;
	if (at + MYSQL_GR_CAPS_LO_AT + 2 <= end)
		c->mysql.caps = my_le16(s, at + MYSQL_GR_CAPS_LO_AT);
	if (at + MYSQL_GR_CAPS_HI_AT + 2 <= end)
		c->mysql.caps |= my_le16(s, at + MYSQL_GR_CAPS_HI_AT) << 16;
	if (at + MYSQL_GR_EXT_CAPS_AT + 4 <= end && !(c->mysql.caps & MYSQL_CLIENT_MYSQL))
		c->mysql.ext_caps = my_le32(s, at + MYSQL_GR_EXT_CAPS_AT);
}

/* The client's first packet: SSLRequest or HandshakeResponse41 (@plen bytes, readable up to
 * @end). Names hashed, the packet handed to userspace, the phase decided. */
static __always_inline void my_login(struct scratch *s, struct conn_state *c, __u32 body, __u32 end,
				     __u32 plen)
{
	__u32 caps, user_hash = 0, user_len = 0, db_hash = 0, db_len = 0, at;
	__u64 auth_len = 0;
	__u32 n;

	if (body + 4 > end) {
		c->phase = MYSQL_PHASE_AUTH;
		return;
	}
	caps = my_le32(s, body);
	if ((caps & MYSQL_CLIENT_SSL) && plen == MYSQL_SSL_REQUEST_LEN) {
		c->flags |= DBTAP_CONN_F_ENCRYPTED;
		c->phase = MYSQL_PHASE_IGNORE;
		count(DBTAP_CNT_ENCRYPTED);
		emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
		return;
	}
	if (c->mysql.caps)
		caps &= c->mysql.caps; /* negotiated: what both sides have */
	c->mysql.caps = caps;
	if (body + MYSQL_HS_EXT_CAPS_AT + 4 <= end && !(caps & MYSQL_CLIENT_MYSQL))
		c->mysql.ext_caps &= my_le32(s, body + MYSQL_HS_EXT_CAPS_AT);
	else
		c->mysql.ext_caps = 0;
	at = body + MYSQL_HS_USER_AT;
	if ((caps & MYSQL_CLIENT_PROTOCOL_41) && my_name(s, at, end, &user_hash, &user_len) == 0) {
		at += user_len + 1;
		if (caps & MYSQL_CLIENT_PLUGIN_AUTH_LENENC) {
			n = my_lenenc(s, at, end, &auth_len);
			at += n;
			if (!n)
				at = end;
		} else if (caps & MYSQL_CLIENT_SECURE_CONNECTION) {
			auth_len = at < end ? sb(s, at) : 0;
			at++;
		} else if (my_name(s, at, end, &db_hash, &db_len) == 0) {
			auth_len = db_len + 1; /* NUL-terminated auth data, not a name */
		}
		at += auth_len > REASM_MAX ? REASM_MAX : (__u32)auth_len;
		db_hash = 0;
		if ((caps & MYSQL_CLIENT_CONNECT_WITH_DB) && at < end &&
		    my_name(s, at, end, &db_hash, &db_len) < 0)
			db_hash = 0;
		c->user_id = user_hash;
		c->db_id = db_hash;
	}
	c->flags |= DBTAP_CONN_F_STARTUP;
	if (caps & (MYSQL_CLIENT_COMPRESS | MYSQL_CLIENT_ZSTD)) {
		/* every packet after the login is compressed: not decoded */
		c->flags |= DBTAP_CONN_F_UNDECODABLE;
		c->phase = MYSQL_PHASE_IGNORE;
		count(DBTAP_CNT_UNDECODABLE);
	} else {
		c->phase = MYSQL_PHASE_AUTH;
	}
	n = end > body ? end - body : 0;
	emit_conn(s, c, DBTAP_EV_CONN_OPEN, body, n < plen ? n : plen);
}

/* ---- requests ---- */

/* The text of a COM_QUERY/COM_STMT_PREPARE at [off, body_end): fingerprinted, sent once. */
static __always_inline __u64 my_query_hash(struct scratch *s, struct conn_state *c, __u32 off,
					   __u32 body_end)
{
	__u32 end = body_end < s->ch.msg_end ? body_end : s->ch.msg_end;
	__u32 len = 0;
	__u64 h = dbtap_sql_fp_scratch(s, off, end, SQL_FP_MYSQL, &len);

	emit_text_once(s, c->system, h, off, len, end < body_end ? DBTAP_TEXT_F_TRUNCATED : 0);
	return h;
}

/* Hash of a fixed text (USE ?, PING) written to the scratch and sent once. */
static __always_inline __u64 my_fixed_text(struct scratch *s, struct conn_state *c, __u64 h,
					   bool ping)
{
	if (ping)
		__builtin_memcpy(&s->buf[MYSQL_TMP_AT], MYSQL_TEXT_PING,
				 sizeof(MYSQL_TEXT_PING) - 1);
	else
		__builtin_memcpy(&s->buf[MYSQL_TMP_AT], MYSQL_TEXT_USE, sizeof(MYSQL_TEXT_USE) - 1);
	emit_text_once(s, c->system, h, MYSQL_TMP_AT,
		       ping ? sizeof(MYSQL_TEXT_PING) - 1 : sizeof(MYSQL_TEXT_USE) - 1, 0);
	return h;
}

/* One command (a request packet with sequence id 0) of @plen bytes at @body. */
static __always_inline void my_command(struct scratch *s, struct conn_state *c, __u32 body,
				       __u32 plen)
{
	__u32 body_end = body + plen, end = body_end < s->ch.msg_end ? body_end : s->ch.msg_end;
	struct stmt_key k = {.sk = c->sk, .kind = MYSQL_STMT_KIND};
	struct stmt_val *sv;
	__u32 id, hash = 0, len = 0, q = body + 1;
	__u16 flags = 0;
	__u64 h, v;
	struct conn_op *o;

	if (body >= end)
		return;
	switch (sb(s, body)) {
	case MYSQL_COM_QUERY:
		if (c->mysql.caps & MYSQL_CLIENT_QUERY_ATTRIBUTES) {
			/* int<lenenc> parameter count, int<lenenc> parameter set count (1) */
			len = my_lenenc(s, q, end, &v);
			if (len && v == 0)
				q += len + my_lenenc(s, q + len, end, &v);
		}
		h = my_query_hash(s, c, q, body_end);
		op_push(s, c, MYSQL_OP_QUERY, h, 0);
		return;
	case MYSQL_COM_STMT_PREPARE:
		h = my_query_hash(s, c, q, body_end);
		c->mysql.last_prepare = h; /* what an EXECUTE of id -1 sent next runs */
		op_push(s, c, MYSQL_OP_PREPARE, h, 0);
		return;
	case MYSQL_COM_STMT_EXECUTE:
		if (body + 5 > end)
			return;
		id = my_le32(s, q);
		h = 0;
		if (id == MYSQL_STMT_ID_LAST) {
			h = c->mysql.last_prepare;
		} else {
			k.name_hash = id;
			sv = bpf_map_lookup_elem(&stmts, &k);
			if (sv) {
				h = sv->query_hash;
				flags = sv->agg_flags;
			}
		}
		if (!h) { /* prepared before we attached */
			h = ((__u64)id << 16) ^ MYSQL_UNKNOWN_STMT_TAG;
			emit_text_once(s, c->system, h, MYSQL_TMP_AT, my_decimal(s, id),
				       DBTAP_TEXT_F_STMT_NAME);
			flags = DBTAP_AGG_F_UNKNOWN_STMT;
		}
		op_push(s, c, MYSQL_OP_EXECUTE, h, flags);
		return;
	case MYSQL_COM_STMT_CLOSE:
		if (body + 5 > end)
			return;
		k.name_hash = my_le32(s, q);
		bpf_map_delete_elem(&stmts, &k);
		return;
	case MYSQL_COM_INIT_DB: {
		/* the name is the rest of the packet (no NUL) */
		struct my_scan w = {.s = s, .off = q, .end = end, .hash = DBTAP_FNV32_OFFSET};

		bpf_loop(MYSQL_NAME_MAX, my_name_cb, &w, 0);
		hash = w.len ? (w.hash ? w.hash : 1) : 0;
		o = op_push(s, c, MYSQL_OP_INIT_DB, my_fixed_text(s, c, MYSQL_HASH_USE, false), 0);
		if (o)
			o->tag = hash;
		return;
	}
	case MYSQL_COM_PING:
		op_push(s, c, MYSQL_OP_PING, my_fixed_text(s, c, MYSQL_HASH_PING, true), 0);
		return;
	case MYSQL_COM_QUIT:
		s->ch.closing = 1; /* closed once the chunk is decoded */
		return;
	case MYSQL_COM_STMT_SEND_LONG:
		return; /* no reply */
	default:
		op_push(s, c, MYSQL_OP_OTHER, 0, 0);
		return;
	}
}

/* ---- replies ---- */

/* The error number of an ERR packet as decimal text into s->ch.done.status. */
static __always_inline void my_err_status(struct scratch *s, __u32 body, __u32 end)
{
	char *status = s->ch.done.status;
	__u32 code = body + 3 <= end ? my_le16(s, body + 1) : 0, n, i;

	__builtin_memset(status, 0, DBTAP_STATUS_LEN);
	n = my_decimal(s, code);
	for (i = 0; i < MYSQL_U16_DIGITS; i++) {
		if (i >= n)
			break;
		status[i] = s->buf[MYSQL_TMP_AT + i];
	}
}

/* Rows affected and status flags of an OK packet (header 0x00 or 0xFE) at @body. */
static __always_inline __u32 my_ok(struct scratch *s, __u32 body, __u32 end, __u64 *ret_rows)
{
	__u64 affected = 0, insert_id = 0;
	__u32 n, at = body + 1;

	n = my_lenenc(s, at, end, &affected);
	if (!n)
		return 0;
	at += n;
	n = my_lenenc(s, at, end, &insert_id);
	if (!n || at + n + 2 > end)
		return 0;
	*ret_rows = affected;
	return my_le16(s, at + n);
}

/* The reply in progress ended (@failed: with an ERR, status already in s->ch.done). */
static __always_inline void my_reply_done(struct scratch *s, struct conn_state *c, bool failed)
{
	struct conn_op *o = op_front(c);
	__u64 rows = c->mysql.rows;

	c->mysql.rs = MYSQL_RS_FIRST;
	c->mysql.rows = 0;
	if (!o)
		return;
	switch (o->kind) {
	case MYSQL_OP_PREPARE:
		if (!failed) {
			c->head++; /* a successful PREPARE is not an operation (PREPARE_OK) */
			return;
		}
		break;
	case MYSQL_OP_INIT_DB:
		if (!failed && o->tag)
			c->db_id = o->tag; /* counted in the database it switched to */
		break;
	case MYSQL_OP_OTHER:
		c->head++;
		return;
	}
	op_finish(s, c, o, failed, rows);
}

/* A terminator of a result (EOF or OK with 0xFE): the reply ends unless more results follow. */
static __always_inline void my_result_end(struct scratch *s, struct conn_state *c, __u32 body,
					  __u32 end, __u32 plen)
{
	__u64 affected = 0;
	__u32 status = 0;

	if (plen == MYSQL_EOF_LEN)
		status = body + MYSQL_EOF_LEN <= end ? my_le16(s, body + 3) : 0;
	else
		status = my_ok(s, body, end, &affected);
	if (status & MYSQL_SERVER_MORE_RESULTS_EXISTS)
		c->mysql.rs = MYSQL_RS_FIRST;
	else
		my_reply_done(s, c, false);
}

/* The first packet of a reply (or of the next result of a multi-result reply). */
static __always_inline void my_reply_first(struct scratch *s, struct conn_state *c, __u32 body,
					   __u32 end, __u32 plen)
{
	struct stmt_key k = {.sk = c->sk, .kind = MYSQL_STMT_KIND};
	struct stmt_val v = {};
	struct conn_op *o = op_front(c);
	__u64 rows = 0, cols = 0;
	__u32 status, n;
	__u8 hdr = sb(s, body);

	if (hdr == MYSQL_ERR) {
		my_err_status(s, body, end);
		my_reply_done(s, c, true);
		return;
	}
	if (o && o->kind == MYSQL_OP_OTHER) {
		c->head++;
		c->mysql.rs = MYSQL_RS_SKIP; /* reply shape not known: skipped */
		c->mysql.rows = 0;
		return;
	}
	if (hdr == MYSQL_OK && o && o->kind == MYSQL_OP_PREPARE) {
		/* COM_STMT_PREPARE_OK: statement id, columns, parameters */
		if (body + 9 > end)
			return;
		k.name_hash = my_le32(s, body + 1);
		cols = my_le16(s, body + 5);
		c->mysql.left = my_le16(s, body + 7) + (__u32)cols;
		v.query_hash = o->query_hash;
		v.agg_flags = o->agg_flags;
		if (bpf_map_update_elem(&stmts, &k, &v, BPF_ANY))
			count(DBTAP_CNT_DROP_STMT_FULL);
		my_reply_done(s, c, false);
		c->mysql.rs = c->mysql.left ? MYSQL_RS_PREP_DEFS : MYSQL_RS_PREP_TAIL;
		return;
	}
	if (hdr == MYSQL_OK || (hdr == MYSQL_EOF && plen < MYSQL_OK_FE_MAX)) {
		status = hdr == MYSQL_OK ? my_ok(s, body, end, &rows)
			 : plen == MYSQL_EOF_LEN && body + MYSQL_EOF_LEN <= end
				 ? my_le16(s, body + 3)
				 : 0;
		c->mysql.rows += rows;
		if (!(status & MYSQL_SERVER_MORE_RESULTS_EXISTS))
			my_reply_done(s, c, false);
		return;
	}
	if (hdr == MYSQL_LOCAL_INFILE)
		return; /* the client sends the file, then the server's OK ends the reply */
	/* a result set: int<lenenc> column count [, int<1> metadata follows (MariaDB)] */
	n = my_lenenc(s, body, end, &cols);
	if (!n) {
		count(DBTAP_CNT_DESYNC);
		c->mysql.rs = MYSQL_RS_SKIP;
		return;
	}
	if (plen == n + 1 && !sb(s, body + n))
		cols = 0; /* MARIADB_CLIENT_CACHE_METADATA: definitions not sent again */
	c->mysql.left = cols > 0xffff ? 0xffff : (__u32)cols;
	c->mysql.rs = c->mysql.left ? MYSQL_RS_COLDEFS : MYSQL_RS_COLS_END;
}

/* One reply packet (sequence id > 0) of @plen bytes at @body. */
static __always_inline void my_reply(struct scratch *s, struct conn_state *c, __u32 seq, __u32 body,
				     __u32 plen)
{
	__u32 end = body + plen < s->ch.msg_end ? body + plen : s->ch.msg_end;
	__u8 hdr;

	if (body >= end)
		return; /* an empty packet ends a 0xFFFFFF one: nothing to decode */
	hdr = sb(s, body);
	switch (c->mysql.rs) {
	case MYSQL_RS_SKIP:
		if (seq != 1)
			return;
		c->mysql.rs = MYSQL_RS_FIRST;
		break;
	case MYSQL_RS_COLDEFS:
		if (c->mysql.left)
			c->mysql.left--;
		if (!c->mysql.left)
			c->mysql.rs = MYSQL_RS_COLS_END;
		return;
	case MYSQL_RS_PREP_DEFS:
		if (hdr == MYSQL_EOF && plen == MYSQL_EOF_LEN)
			return; /* the EOF after the parameters */
		if (c->mysql.left)
			c->mysql.left--;
		if (!c->mysql.left)
			c->mysql.rs = MYSQL_RS_PREP_TAIL;
		return;
	case MYSQL_RS_PREP_TAIL:
		c->mysql.rs = MYSQL_RS_FIRST;
		if (hdr == MYSQL_EOF && plen == MYSQL_EOF_LEN && seq != 1)
			return; /* the EOF after the column definitions */
		break;
	case MYSQL_RS_COLS_END:
		c->mysql.rs = MYSQL_RS_ROWS;
		if (hdr == MYSQL_EOF && plen == MYSQL_EOF_LEN) {
			/* the EOF after the definitions (no CLIENT_DEPRECATE_EOF) */
			if (body + MYSQL_EOF_LEN <= end &&
			    (my_le16(s, body + 3) & MYSQL_SERVER_STATUS_CURSOR_EXISTS))
				my_reply_done(s, c, false);
			return;
		}
		/* rows (or the end) follow the definitions at once */
		__attribute__((fallthrough));
	case MYSQL_RS_ROWS:
		if (hdr == MYSQL_ERR) {
			my_err_status(s, body, end);
			my_reply_done(s, c, true);
		} else if (hdr == MYSQL_EOF && plen < MYSQL_MAX_PAYLOAD) {
			my_result_end(s, c, body, end, plen);
		} else {
			c->mysql.rows++;
		}
		return;
	}
	my_reply_first(s, c, body, end, plen);
}

/* ---- packets ---- */

/*
 * One packet, its payload at @body in the scratch; the caller sets ch.msg_end where its
 * readable bytes end (before body + @plen when the packet was longer than what is read).
 * Counts what it completes. Global: verified once.
 */
__noinline int dbtap_mysql_packet(struct scratch *s, struct conn_state *c, __u32 seq, __u32 body,
				  __u32 plen)
{
	__u8 *cont;
	bool continued;

	if (!s || !c)
		return 0;
	s->ch.done_pending = 0;
	cont = s->ch.dir == IO_RECV ? &c->mysql.req_cont : &c->mysql.resp_cont;
	continued = *cont;
	*cont = plen == MYSQL_MAX_PAYLOAD;
	if (continued)
		return 0; /* the rest of a payload of 16 MiB or more */
	if (s->ch.dir == IO_RECV) {
		if (c->phase == MYSQL_PHASE_HANDSHAKE)
			my_login(s, c, body, s->ch.msg_end, plen);
		else if (c->phase == MYSQL_PHASE_NORMAL && seq == 0)
			my_command(s, c, body, plen);
	} else if (c->phase == MYSQL_PHASE_AUTH) {
		if (body < s->ch.msg_end && sb(s, body) == MYSQL_OK) {
			c->phase = MYSQL_PHASE_NORMAL;
		} else if (body < s->ch.msg_end && sb(s, body) == MYSQL_ERR) {
			c->phase = MYSQL_PHASE_IGNORE; /* login refused: the server closes */
		}
	} else if (c->phase == MYSQL_PHASE_START) {
		if (seq == 0 && body < s->ch.msg_end && sb(s, body) == MYSQL_PROTOCOL_V10)
			my_greeting(s, c, body, s->ch.msg_end);
	} else if (c->phase == MYSQL_PHASE_NORMAL) {
		my_reply(s, c, seq, body, plen);
	}
	if (s->ch.done_pending) {
		s->ch.done_pending = 0;
		dbtap_complete(s, c);
	}
	return 0;
}

/* ---- framing and reassembly ---- */

/* Bytes of a packet (header included, @plen payload) the decoder reads. */
static __always_inline __u32 my_want(struct scratch *s, struct conn_state *c, __u32 seq, __u32 plen)
{
	__u32 total = MYSQL_HDR_LEN + plen, want;

	if (s->ch.dir == IO_RECV)
		want = (seq == 0 && !c->mysql.req_cont) || c->phase == MYSQL_PHASE_HANDSHAKE
			       ? REASM_MAX
			       : MYSQL_HDR_LEN;
	else if (c->mysql.resp_cont)
		want = MYSQL_HDR_LEN;
	else
		want = c->phase == MYSQL_PHASE_START ? MYSQL_GREETING_WANT : MYSQL_RESP_WANT;
	return total < want ? total : want;
}

/* Decode a collected packet: copy it next to the chunk and hand it over. */
static __always_inline void my_reasm_decode(struct scratch *s, struct conn_state *c,
					    struct reasm *r)
{
	__u32 have = r->have;

	if (have < MYSQL_HDR_LEN || have > REASM_MAX)
		return;
	if (bpf_probe_read_kernel(&s->buf[REASM_AT], bound(have - 1, REASM_MASK) + 1, r->buf))
		return;
	s->ch.msg_end = REASM_AT + have;
	dbtap_mysql_packet(s, c, sb(s, REASM_AT + 3), REASM_AT + MYSQL_HDR_LEN,
			   my_le24(s, REASM_AT));
}

struct my_frame_walk {
	struct scratch *s;
	struct conn_state *c;
	struct frame_state *fs;
};

/* The 4-byte header at @pos (scratch, or user memory past the scratch). */
static __always_inline int my_header(struct scratch *s, __u32 pos, __u32 *ret_seq, __u32 *ret_len)
{
	__u8 h[MYSQL_HDR_LEN];

	if (pos + MYSQL_HDR_LEN <= s->ch.avail) {
		*ret_len = my_le24(s, pos);
		*ret_seq = sb(s, pos + 3);
		return 0;
	}
	if (!s->ch.user_buf || bpf_probe_read_user(h, sizeof(h), (void *)(s->ch.user_buf + pos)))
		return -1;
	*ret_len = (__u32)h[0] | ((__u32)h[1] << 8) | ((__u32)h[2] << 16);
	*ret_seq = h[3];
	return 0;
}

/* A packet whose header is known starts at @pos: decode it from the chunk when the bytes the
 * decoder needs are there, else collect it across chunks. Moves ch.pos past it. */
static __always_inline void my_take(struct scratch *s, struct conn_state *c, struct frame_state *fs,
				    __u32 pos, __u32 seq, __u32 plen)
{
	__u32 total = MYSQL_HDR_LEN + plen, want = my_want(s, c, seq, plen), end = pos + total;
	struct reasm *r;

	if (pos + want <= s->ch.avail) {
		s->ch.msg_end = pos + want;
		dbtap_mysql_packet(s, c, seq, pos + MYSQL_HDR_LEN, plen);
	} else {
		r = reasm_start(s, want);
		if (r) {
			reasm_append(s, r, pos, s->ch.total - pos);
			if (r->have >= want)
				my_reasm_decode(s, c, r);
			else
				fs->reasm = FRAME_REASM_TYPED;
		}
	}
	if (end > s->ch.total) {
		fs->skip = end - s->ch.total;
		s->ch.pos = s->ch.total;
	} else {
		s->ch.pos = end;
	}
}

static long my_frame_cb(__u64 i, void *arg)
{
	struct my_frame_walk *w = arg;
	struct scratch *s = w->s;
	__u32 pos = s->ch.pos, plen, seq;
	struct reasm *r;

	if (pos >= s->ch.total || w->c->phase == MYSQL_PHASE_IGNORE)
		return 1;
	if (s->ch.total - pos < MYSQL_HDR_LEN) {
		/* header cut by the chunk's end: collect it */
		r = reasm_start(s, MYSQL_HDR_LEN);
		if (r) {
			reasm_append(s, r, pos, s->ch.total - pos);
			w->fs->reasm = FRAME_REASM_TYPED;
			w->fs->skip = 0;
		}
		s->ch.pos = s->ch.total;
		return 1;
	}
	if (my_header(s, pos, &seq, &plen) < 0) {
		count(DBTAP_CNT_DROP_READ);
		s->ch.stop = 1;
		return 1;
	}
	my_take(s, w->c, w->fs, pos, seq, plen);
	return w->fs->reasm || w->fs->skip;
}

/*
 * Continue a packet collected across chunks: first its header (when cut), then the bytes the
 * decoder reads; decode when they are all there, and skip the rest. Global: verified once.
 */
__noinline int dbtap_mysql_continue(struct scratch *s, struct conn_state *c, struct frame_state *fs)
{
	__u64 key;
	struct reasm *r;
	__u32 n, plen;

	if (!s || !c || !fs)
		return 0;
	key = reasm_key(s);
	r = bpf_map_lookup_elem(&reasms, &key);
	if (!r) {
		fs->reasm = FRAME_REASM_NONE;
		count(DBTAP_CNT_DESYNC);
		return 0;
	}
	if (r->have < MYSQL_HDR_LEN) {
		n = MYSQL_HDR_LEN - r->have;
		if (n > s->ch.total - s->ch.pos)
			n = s->ch.total - s->ch.pos;
		reasm_append(s, r, s->ch.pos, n);
		s->ch.pos += n;
		if (r->have < MYSQL_HDR_LEN)
			return 0; /* still not a whole header */
		plen = (__u32)r->buf[0] | ((__u32)r->buf[1] << 8) | ((__u32)r->buf[2] << 16);
		r->want = my_want(s, c, r->buf[3], plen);
		fs->skip = plen;
	}
	n = fs->skip < s->ch.total - s->ch.pos ? fs->skip : s->ch.total - s->ch.pos;
	reasm_append(s, r, s->ch.pos, n);
	fs->skip -= n;
	s->ch.pos += n;
	if (r->have >= r->want || !fs->skip) {
		fs->reasm = FRAME_REASM_NONE;
		my_reasm_decode(s, c, r);
	}
	return 0;
}

/* Frame the chunk from ch.pos on, continuing a packet left by the last chunk. */
static __always_inline void my_frame(struct scratch *s, struct conn_state *c)
{
	struct frame_state *fs = s->ch.dir == IO_RECV ? &c->req : &c->resp;
	struct my_frame_walk w = {.s = s, .c = c, .fs = fs};
	__u32 n;

	if (fs->reasm == FRAME_REASM_TYPED) {
		dbtap_mysql_continue(s, c, fs);
		if (fs->reasm || s->ch.stop)
			return;
	}
	if (fs->skip) {
		n = fs->skip < s->ch.total - s->ch.pos ? fs->skip : s->ch.total - s->ch.pos;
		fs->skip -= n;
		s->ch.pos += n;
		if (fs->skip)
			return;
	}
	/* every packet is at least MYSQL_HDR_LEN bytes: the loop cannot end early */
	if (s->ch.pos < s->ch.total && !s->ch.stop && !fs->reasm && !fs->skip)
		bpf_loop(s->ch.total / MYSQL_HDR_LEN + 1, my_frame_cb, &w, 0);
}

/* ---- connection start ---- */

static __always_inline bool my_known_command(__u8 cmd)
{
	switch (cmd) {
	case MYSQL_COM_QUIT:
	case MYSQL_COM_INIT_DB:
	case MYSQL_COM_QUERY:
	case MYSQL_COM_FIELD_LIST:
	case MYSQL_COM_STATISTICS:
	case MYSQL_COM_PING:
	case MYSQL_COM_CHANGE_USER:
	case MYSQL_COM_STMT_PREPARE:
	case MYSQL_COM_STMT_EXECUTE:
	case MYSQL_COM_STMT_SEND_LONG:
	case MYSQL_COM_STMT_CLOSE:
	case MYSQL_COM_STMT_RESET:
	case MYSQL_COM_SET_OPTION:
	case MYSQL_COM_STMT_FETCH:
	case MYSQL_COM_RESET_CONNECTION:
	case MYSQL_COM_STMT_BULK_EXECUTE:
		return true;
	}
	return false;
}

/* Start decoding a connection joined mid-stream at a command: replies framed afresh. */
static __always_inline void my_join(struct scratch *s, struct conn_state *c)
{
	c->flags |= DBTAP_CONN_F_MIDSTREAM;
	c->phase = MYSQL_PHASE_NORMAL;
	c->resp.skip = 0;
	c->resp.reasm = FRAME_REASM_NONE;
	c->mysql.resp_cont = 0;
	c->mysql.req_cont = 0;
	c->mysql.rs = MYSQL_RS_FIRST;
	emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
}

/*
 * A chunk of a connection not seen from its start. Replies: framed when they may begin with
 * the server's greeting (sequence id 0, protocol 10; a greeting cut across chunks is
 * collected), else skipped. Requests: a whole command with sequence id 0 read at once, or its
 * 4-byte header read alone and then exactly its payload (as mariadbd reads), starts decoding
 * a connection opened before capture started (joined mid-stream). Anything else is skipped
 * until one of those comes. Global: verified once.
 */
__noinline int dbtap_mysql_start(struct scratch *s, struct conn_state *c)
{
	__u32 plen;

	if (!s || !c)
		return 0;
	if (s->ch.dir == IO_SEND) {
		if (c->resp.reasm || c->resp.skip)
			return 0; /* a packet in progress: framing goes on */
		if (s->ch.avail >= MYSQL_HDR_LEN &&
		    (sb(s, 3) != 0 ||
		     (s->ch.avail > MYSQL_HDR_LEN && sb(s, MYSQL_HDR_LEN) != MYSQL_PROTOCOL_V10)))
			s->ch.pos = s->ch.total; /* a reply to a request not seen */
		return 0;
	}
	if (c->mysql.mid_hdr) {
		/* the payload after a lone header (servers read the header on its own) */
		c->mysql.mid_hdr = 0;
		plen = c->mysql.left;
		c->mysql.left = 0;
		if (plen == s->ch.total && s->ch.avail && my_known_command(sb(s, 0))) {
			my_join(s, c);
			s->ch.msg_end = s->ch.avail < REASM_MAX ? s->ch.avail : REASM_MAX;
			dbtap_mysql_packet(s, c, 0, 0, plen);
			s->ch.pos = s->ch.total;
			return 0;
		}
	}
	plen = s->ch.avail >= MYSQL_HDR_LEN ? my_le24(s, 0) : 0;
	if (plen && sb(s, 3) == 0 && s->ch.total == MYSQL_HDR_LEN) {
		c->mysql.mid_hdr = 1;
		c->mysql.left = plen;
		s->ch.pos = s->ch.total;
		return 0;
	}
	if (!plen || sb(s, 3) != 0 || MYSQL_HDR_LEN + plen != s->ch.total ||
	    !my_known_command(sb(s, MYSQL_HDR_LEN))) {
		s->ch.pos = s->ch.total;
		return 0;
	}
	my_join(s, c);
	return 0;
}

/* Decode one chunk of MySQL/MariaDB connection @c. Global: verified once. */
__noinline int dbtap_mysql_chunk(struct scratch *s, struct conn_state *c)
{

	if (!s || !c)
		return 0;
	s->ch.closing = 0;
	if (c->phase == MYSQL_PHASE_START)
		dbtap_mysql_start(s, c);
	if (c->phase != MYSQL_PHASE_IGNORE &&
	    (s->ch.pos < s->ch.total || (s->ch.dir == IO_RECV ? c->req.reasm : c->resp.reasm)))
		my_frame(s, c);
	if (s->ch.closing)
		conn_close(s, c);
	return 0;
}

#endif /* DBTAP_MYSQL_BPF_H */
