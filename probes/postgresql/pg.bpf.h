/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pg.bpf.h - PostgreSQL wire protocol (v3) decoder running in the BPF capture programs.
 *
 * Included by bpf/capture.bpf.c after its helpers. Frames the byte stream of each direction
 * into messages (a message may span chunks: its remainder is skipped in later chunks, a split
 * 5-byte header is kept in the connection state), and turns requests into operations queued
 * on the connection and responses into completions:
 *   Query ............................. SIMPLE op, done at ReadyForQuery (rows: every
 *                                        CommandComplete; error: any ErrorResponse)
 *   Parse/Bind/Execute ................ EXEC op (statement -> portal -> execute), done at its
 *                                        CommandComplete, ErrorResponse, PortalSuspended
 *   Sync .............................. SYNC marker: ReadyForQuery drops the Executes the
 *                                        server skipped after an error (counted ABORTED)
 * Protocol names follow the PostgreSQL documentation, "Message Formats".
 */
#ifndef DBTAP_PG_BPF_H
#define DBTAP_PG_BPF_H

/* Frontend (client) message types. */
#define PG_MSG_QUERY	     'Q'
#define PG_MSG_PARSE	     'P'
#define PG_MSG_BIND	     'B'
#define PG_MSG_EXECUTE	     'E'
#define PG_MSG_SYNC	     'S'
#define PG_MSG_DESCRIBE	     'D'
#define PG_MSG_CLOSE	     'C'
#define PG_MSG_FLUSH	     'H'
#define PG_MSG_TERMINATE     'X'
#define PG_MSG_COPY_DATA     'd'
#define PG_MSG_COPY_DONE     'c'
#define PG_MSG_COPY_FAIL     'f'
#define PG_MSG_FUNCTION_CALL 'F'
#define PG_MSG_PASSWORD	     'p'

/* Backend (server) message types. */
#define PG_MSG_COMMAND_COMPLETE	     'C'
#define PG_MSG_ERROR_RESPONSE	     'E'
#define PG_MSG_READY_FOR_QUERY	     'Z'
#define PG_MSG_EMPTY_QUERY	     'I'
#define PG_MSG_PORTAL_SUSPENDED	     's'
#define PG_MSG_ROW_DESCRIPTION	     'T'
#define PG_MSG_DATA_ROW		     'D'
#define PG_MSG_PARSE_COMPLETE	     '1'
#define PG_MSG_BIND_COMPLETE	     '2'
#define PG_MSG_CLOSE_COMPLETE	     '3'
#define PG_MSG_NO_DATA		     'n'
#define PG_MSG_PARAMETER_DESCRIPTION 't'
#define PG_MSG_NOTICE		     'N'
#define PG_MSG_NOTIFICATION	     'A'
#define PG_MSG_PARAMETER_STATUS	     'S'
#define PG_MSG_BACKEND_KEY_DATA	     'K'
#define PG_MSG_AUTHENTICATION	     'R'
#define PG_MSG_COPY_IN		     'G'
#define PG_MSG_COPY_OUT		     'H'
#define PG_MSG_COPY_BOTH	     'W'
#define PG_MSG_FUNCTION_RESULT	     'V'
#define PG_MSG_NEGOTIATE_VERSION     'v'

/* Untyped first messages: length, then a code. */
#define PG_PROTOCOL_3_0	      196608u	/* StartupMessage */
#define PG_CODE_CANCEL	      80877102u /* CancelRequest */
#define PG_CODE_SSL	      80877103u /* SSLRequest */
#define PG_CODE_GSSENC	      80877104u /* GSSENCRequest */
#define PG_MAX_STARTUP_PACKET 10000u	/* MAX_STARTUP_PACKET_LENGTH in the server */
#define PG_SSL_ACCEPT	      'S'	/* single-byte answers to SSLRequest/GSSENCRequest */
#define PG_GSS_ACCEPT	      'G'
#define PG_ENC_REFUSE	      'N'
#define PG_CLOSE_STATEMENT    'S' /* Close/Describe target kinds */
#define PG_CLOSE_PORTAL	      'P'
#define PG_ERR_FIELD_SQLSTATE 'C' /* ErrorResponse field code */
#define PG_SQLSTATE_LEN	      5

#define PG_HDR_LEN	      5 /* type byte + int32 length */
#define PG_MAX_MSG_LEN	      (1u << 30)
#define PG_MAX_MSGS_PER_CHUNK 1024 /* bpf_loop bound; more messages in one chunk: desync */
#define PG_NAME_MAX	      64   /* statement/portal name bytes hashed */
#define PG_ROWS_DIGITS_MAX    20   /* digits of a CommandComplete row count (2^64 has 20) */
#define PG_ERR_SCAN_MAX	      96   /* ErrorResponse bytes searched for the SQLSTATE field */

/* FNV-1a 32 of startup parameter names. */
#define PG_KEY_HASH_USER     0x60785ef2u
#define PG_KEY_HASH_DATABASE 0xa165ddb8u

/* Message type classes: one table load instead of a chain of comparisons per message. */
#define PG_T_FE	    0x01 /* a frontend (client) message type */
#define PG_T_BE	    0x02 /* a backend (server) message type */
#define PG_T_FE_DEC 0x04 /* frontend: its body is read by the decoder */
#define PG_T_BE_DEC 0x08
#define PG_T_FE_ACT 0x10 /* frontend: pg_request() acts on it */
#define PG_T_BE_ACT 0x20 /* backend: pg_response() acts on it */

static const __u8 pg_type_class[256] = {
	/* frontend */
	[PG_MSG_QUERY] = PG_T_FE | PG_T_FE_DEC | PG_T_FE_ACT,
	[PG_MSG_PARSE] = PG_T_FE | PG_T_FE_DEC | PG_T_FE_ACT,
	[PG_MSG_BIND] = PG_T_FE | PG_T_FE_DEC | PG_T_FE_ACT,
	[PG_MSG_SYNC] = PG_T_FE | PG_T_FE_ACT | PG_T_BE, /* and ParameterStatus */
	[PG_MSG_TERMINATE] = PG_T_FE | PG_T_FE_ACT,
	[PG_MSG_FLUSH] = PG_T_FE | PG_T_BE, /* and CopyOutResponse */
	[PG_MSG_COPY_FAIL] = PG_T_FE,
	[PG_MSG_FUNCTION_CALL] = PG_T_FE,
	[PG_MSG_PASSWORD] = PG_T_FE,
	/* both directions */
	[PG_MSG_EXECUTE] = PG_T_FE | PG_T_FE_DEC | PG_T_FE_ACT | /* ErrorResponse: */
			   PG_T_BE | PG_T_BE_DEC | PG_T_BE_ACT,
	[PG_MSG_CLOSE] = PG_T_FE | PG_T_FE_DEC | PG_T_FE_ACT | /* CommandComplete: */
			 PG_T_BE | PG_T_BE_DEC | PG_T_BE_ACT,
	[PG_MSG_DESCRIBE] = PG_T_FE | PG_T_BE, /* and DataRow */
	[PG_MSG_COPY_DATA] = PG_T_FE | PG_T_BE,
	[PG_MSG_COPY_DONE] = PG_T_FE | PG_T_BE,
	/* backend */
	[PG_MSG_READY_FOR_QUERY] = PG_T_BE | PG_T_BE_ACT,
	[PG_MSG_EMPTY_QUERY] = PG_T_BE | PG_T_BE_ACT,
	[PG_MSG_PORTAL_SUSPENDED] = PG_T_BE | PG_T_BE_ACT,
	[PG_MSG_ROW_DESCRIPTION] = PG_T_BE,
	[PG_MSG_PARSE_COMPLETE] = PG_T_BE,
	[PG_MSG_BIND_COMPLETE] = PG_T_BE,
	[PG_MSG_CLOSE_COMPLETE] = PG_T_BE,
	[PG_MSG_NO_DATA] = PG_T_BE,
	[PG_MSG_PARAMETER_DESCRIPTION] = PG_T_BE,
	[PG_MSG_NOTICE] = PG_T_BE,
	[PG_MSG_NOTIFICATION] = PG_T_BE,
	[PG_MSG_BACKEND_KEY_DATA] = PG_T_BE,
	[PG_MSG_AUTHENTICATION] = PG_T_BE,
	[PG_MSG_COPY_IN] = PG_T_BE,
	[PG_MSG_COPY_BOTH] = PG_T_BE,
	[PG_MSG_FUNCTION_RESULT] = PG_T_BE,
	[PG_MSG_NEGOTIATE_VERSION] = PG_T_BE,
};

static __always_inline bool pg_frontend_type(__u8 t)
{
	return pg_type_class[t] & PG_T_FE;
}

static __always_inline bool pg_backend_type(__u8 t)
{
	return pg_type_class[t] & PG_T_BE;
}

/* ---- text helpers over the scratch buffer ---- */

struct scan {
	struct scratch *s;
	__u32 off;
	__u32 end;
	__u32 hash;	  /* cstr: FNV-1a 32 */
	__u32 len;	  /* cstr: bytes before the NUL */
	__u32 at;	  /* err: offset of the SQLSTATE value */
	__u8 done;	  /* cstr: NUL found */
	__u8 field_start; /* err: next byte is a field code */
};

static long pg_cstr_cb(__u64 i, void *arg)
{
	struct scan *w = arg;
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

/* FNV-1a 32 of the C string at @off (0 for ""), its length (without NUL) in @ret_len;
 * returns -1 when no NUL within PG_NAME_MAX bytes and the chunk. */
static __always_inline int pg_cstr(struct scratch *s, __u32 off, __u32 end, __u32 *ret_hash,
				   __u32 *ret_len)
{
	struct scan w = {.s = s, .off = off, .end = end, .hash = DBTAP_FNV32_OFFSET};

	bpf_loop(PG_NAME_MAX + 1, pg_cstr_cb, &w, 0);
	if (!w.done)
		return -1;
	*ret_hash = w.len ? w.hash : 0;
	*ret_len = w.len;
	return 0;
}

/*
 * Rows from a CommandComplete tag: the number that ends it ("INSERT 0 5" -> 5, "BEGIN" -> 0),
 * read backwards from its NUL, so a query costs the digits of its count, not its tag.
 */
static __always_inline __u64 pg_tag_rows(struct scratch *s, __u32 body, __u32 end)
{
	__u64 rows = 0, scale = 1;
	__u32 i, p = end;
	__u8 c;

	if (p > body && sb(s, p - 1) == 0)
		p--;
	for (i = 0; i < PG_ROWS_DIGITS_MAX; i++) {
		if (p <= body)
			break;
		c = sb(s, p - 1);
		if (c < '0' || c > '9')
			break;
		rows += (c - '0') * scale;
		scale *= 10;
		p--;
	}
	return rows;
}

static long pg_err_cb(__u64 i, void *arg)
{
	struct scan *w = arg;
	__u32 p = w->off + (__u32)i;
	__u8 c;

	if (p >= w->end)
		return 1;
	c = sb(w->s, p);
	if (w->field_start) {
		if (c == PG_ERR_FIELD_SQLSTATE) {
			w->at = p + 1;
			return 1;
		}
		if (c == 0)
			return 1;
		w->field_start = 0;
	} else if (c == 0) {
		w->field_start = 1;
	}
	return 0;
}

/* SQLSTATE of an ErrorResponse into s->ch.done.status ("?????" when not found). */
static __always_inline void pg_sqlstate(struct scratch *s, __u32 body, __u32 end)
{
	struct scan w = {.s = s, .off = body, .end = end, .field_start = 1};
	char *status = s->ch.done.status;

	__builtin_memset(status, 0, DBTAP_STATUS_LEN);
	bpf_loop(PG_ERR_SCAN_MAX, pg_err_cb, &w, 0);
	if (w.at && w.at + PG_SQLSTATE_LEN <= end) {
		status[0] = sb(s, w.at);
		status[1] = sb(s, w.at + 1);
		status[2] = sb(s, w.at + 2);
		status[3] = sb(s, w.at + 3);
		status[4] = sb(s, w.at + 4);
	} else {
		__builtin_memcpy(status, "?????", PG_SQLSTATE_LEN);
	}
}

/* ---- requests ---- */

/* Query text at @off ends with NUL at @body_end - 1: fingerprint what the scratch holds. */
static __always_inline __u64 pg_query_hash(struct scratch *s, __u32 off, __u32 body_end)
{
	__u32 end = body_end < s->ch.msg_end ? body_end : s->ch.msg_end;
	__u32 len = 0;
	__u64 h = dbtap_sql_fp_scratch(s, off, end, SQL_FP_POSTGRESQL, &len);

	emit_text_once(s, DBTAP_SYS_POSTGRESQL, h, off, len,
		       end < body_end ? DBTAP_TEXT_F_TRUNCATED : 0);
	return h;
}

/* Hash for a statement we never saw parsed: derived from its name, marked unknown. */
static __always_inline __u64 pg_unknown_stmt(struct scratch *s, __u32 name_off, __u32 name_hash,
					     __u32 name_len)
{
	__u64 h = ((__u64)name_hash << 16) ^ 0x5354u; /* "ST" */

	emit_text_once(s, DBTAP_SYS_POSTGRESQL, h, name_off, name_len, DBTAP_TEXT_F_STMT_NAME);
	return h;
}

static __always_inline void pg_request(struct scratch *s, struct conn_state *c, __u8 type,
				       __u32 body, __u32 body_end)
{
	__u32 end = body_end < s->ch.msg_end ? body_end : s->ch.msg_end;
	struct stmt_key k = {.sk = c->sk};
	__u32 name_hash = 0, name_len = 0, portal_hash = 0, portal_len = 0;
	struct stmt_val v = {}, *sv;
	__u16 flags = DBTAP_AGG_F_EXTENDED;
	__u64 h;

	switch (type) {
	case PG_MSG_QUERY:
		h = pg_query_hash(s, body, body_end);
		c->pg.cur_err = 0;
		c->pg.cur_rows = 0;
		op_push(s, c, PG_OP_SIMPLE, h, 0);
		return;
	case PG_MSG_PARSE:
		if (pg_cstr(s, body, end, &name_hash, &name_len) < 0)
			return;
		h = pg_query_hash(s, body + name_len + 1, body_end);
		if (!name_len) {
			c->pg.unnamed_stmt = h;
			c->pg.unnamed_stmt_flags = flags;
			return;
		}
		k.kind = STMT_KIND_STATEMENT;
		k.name_hash = name_hash;
		v.query_hash = h;
		v.agg_flags = flags;
		if (bpf_map_update_elem(&stmts, &k, &v, BPF_ANY))
			count(DBTAP_CNT_DROP_STMT_FULL);
		return;
	case PG_MSG_BIND:
		if (pg_cstr(s, body, end, &portal_hash, &portal_len) < 0)
			return;
		if (pg_cstr(s, body + portal_len + 1, end, &name_hash, &name_len) < 0)
			return;
		h = 0;
		if (!name_len) {
			h = c->pg.unnamed_stmt;
			flags = c->pg.unnamed_stmt_flags;
		} else {
			k.kind = STMT_KIND_STATEMENT;
			k.name_hash = name_hash;
			sv = bpf_map_lookup_elem(&stmts, &k);
			if (sv) {
				h = sv->query_hash;
				flags = sv->agg_flags;
			}
		}
		if (!h) { /* prepared before we attached */
			h = pg_unknown_stmt(s, body + portal_len + 1, name_hash, name_len);
			flags = DBTAP_AGG_F_EXTENDED | DBTAP_AGG_F_UNKNOWN_STMT;
		}
		if (!portal_len) {
			c->pg.unnamed_portal = h;
			c->pg.unnamed_portal_flags = flags;
			return;
		}
		k.kind = STMT_KIND_PORTAL;
		k.name_hash = portal_hash;
		v.query_hash = h;
		v.agg_flags = flags;
		if (bpf_map_update_elem(&stmts, &k, &v, BPF_ANY))
			count(DBTAP_CNT_DROP_STMT_FULL);
		return;
	case PG_MSG_EXECUTE:
		if (pg_cstr(s, body, end, &name_hash, &name_len) < 0)
			return;
		h = 0;
		if (!name_len) {
			h = c->pg.unnamed_portal;
			flags = c->pg.unnamed_portal_flags;
		} else {
			k.kind = STMT_KIND_PORTAL;
			k.name_hash = name_hash;
			sv = bpf_map_lookup_elem(&stmts, &k);
			if (sv) {
				h = sv->query_hash;
				flags = sv->agg_flags;
			}
		}
		if (!h) {
			h = pg_unknown_stmt(s, body, name_hash, name_len);
			flags = DBTAP_AGG_F_EXTENDED | DBTAP_AGG_F_UNKNOWN_STMT;
		}
		op_push(s, c, PG_OP_EXEC, h, flags);
		return;
	case PG_MSG_SYNC:
		op_push(s, c, PG_OP_SYNC, 0, 0);
		return;
	case PG_MSG_TERMINATE:
		s->ch.closing = 1; /* closed once the chunk is decoded */
		return;
	case PG_MSG_CLOSE:
		if (body + 1 >= end || pg_cstr(s, body + 1, end, &name_hash, &name_len) < 0 ||
		    !name_len)
			return;
		k.kind = sb(s, body) == PG_CLOSE_PORTAL ? STMT_KIND_PORTAL : STMT_KIND_STATEMENT;
		k.name_hash = name_hash;
		bpf_map_delete_elem(&stmts, &k);
		return;
	}
}

/* ---- responses ---- */

static __always_inline void pg_response(struct scratch *s, struct conn_state *c, __u8 type,
					__u32 body, __u32 body_end)
{
	__u32 end = body_end < s->ch.msg_end ? body_end : s->ch.msg_end;
	struct conn_op *o;
	__u64 rows;
	__u32 i;

	switch (type) {
	case PG_MSG_COMMAND_COMPLETE:
		rows = pg_tag_rows(s, body, end);
		o = op_front(c);
		if (!o)
			return;
		if (o->kind == PG_OP_SIMPLE)
			c->pg.cur_rows += rows;
		else if (o->kind == PG_OP_EXEC)
			op_finish(s, c, o, false, rows);
		return;
	case PG_MSG_ERROR_RESPONSE:
		pg_sqlstate(s, body, end);
		o = op_front(c);
		if (!o)
			return;
		if (o->kind == PG_OP_SIMPLE) {
			if (!c->pg.cur_err)
				__builtin_memcpy(c->pg.cur_status, s->ch.done.status,
						 DBTAP_STATUS_LEN);
			c->pg.cur_err = 1;
		} else if (o->kind == PG_OP_EXEC) {
			op_finish(s, c, o, true, 0);
		}
		return;
	case PG_MSG_EMPTY_QUERY:
		o = op_front(c);
		if (o && o->kind == PG_OP_EXEC)
			c->head++; /* nothing executed: not an operation */
		else if (o && o->kind == PG_OP_SIMPLE)
			c->pg.cur_empty =
				1; /* dropped at ReadyForQuery, as pg_stat_statements does */
		return;
	case PG_MSG_PORTAL_SUSPENDED:
		o = op_front(c);
		if (o && o->kind == PG_OP_EXEC)
			op_finish(s, c, o, false, 0);
		return;
	case PG_MSG_READY_FOR_QUERY:
		o = op_front(c);
		if (!o)
			return;
		if (o->kind == PG_OP_SIMPLE && c->pg.cur_empty && !c->pg.cur_err) {
			c->head++; /* an empty query string: nothing executed */
			c->pg.cur_empty = 0;
			return;
		}
		if (o->kind == PG_OP_SIMPLE) {
			__builtin_memcpy(s->ch.done.status, c->pg.cur_status, DBTAP_STATUS_LEN);
			c->pg.cur_empty = 0;
			op_finish(s, c, o, c->pg.cur_err, c->pg.cur_rows);
			c->pg.cur_err = 0;
			c->pg.cur_rows = 0;
			__builtin_memset(c->pg.cur_status, 0, DBTAP_STATUS_LEN);
			return;
		}
		for (i = 0; i < CONN_MAX_OPS; i++) {
			o = op_front(c);
			if (!o)
				return;
			c->head++;
			if (o->kind == PG_OP_SYNC)
				return;
			count(DBTAP_CNT_ABORTED); /* an Execute the server skipped after an error */
		}
		return;
	}
}

/*
 * One message, its body at @body in the scratch; the caller sets ch.msg_end where its
 * readable bytes end (before body + @body_len when the message was longer than
 * REASM_MAX). Counts what it completes. Global: verified once.
 */
__noinline int dbtap_pg_message(struct scratch *s, struct conn_state *c, __u32 type, __u32 body,
				__u32 body_len)
{
	if (!s || !c)
		return 0;
	s->ch.done_pending = 0;
	if (s->ch.dir == IO_RECV)
		pg_request(s, c, type, body, body + body_len);
	else
		pg_response(s, c, type, body, body + body_len);
	if (s->ch.done_pending) {
		s->ch.done_pending = 0;
		dbtap_complete(s, c);
	}
	return 0;
}

/* ---- framing and reassembly ---- */

static __always_inline bool pg_type_ok(struct scratch *s, __u8 type)
{
	return pg_type_class[type] & (s->ch.dir == IO_RECV ? PG_T_FE : PG_T_BE);
}

/* Messages whose body the decoder reads; the others are framed and skipped. */
static __always_inline bool pg_type_decoded(struct scratch *s, __u8 type)
{
	return pg_type_class[type] & (s->ch.dir == IO_RECV ? PG_T_FE_DEC : PG_T_BE_DEC);
}

/* Messages pg_request()/pg_response() act on; the others (DataRow, RowDescription...) are only
 * framed, without a call. */
static __always_inline bool pg_type_handled(struct scratch *s, __u8 type)
{
	return pg_type_class[type] & (s->ch.dir == IO_RECV ? PG_T_FE_ACT : PG_T_BE_ACT);
}

/* Bytes of a message of @type and total size @msg_total the decoder needs. */
static __always_inline __u32 pg_want(struct scratch *s, __u8 type, __u32 msg_total)
{
	if (!pg_type_decoded(s, type))
		return PG_HDR_LEN;
	return msg_total < REASM_MAX ? msg_total : REASM_MAX;
}

/* Decode a collected typed message: copy it next to the chunk and hand it over. */
static __always_inline void reasm_decode(struct scratch *s, struct conn_state *c, struct reasm *r)
{
	__u32 have = r->have, len;
	__u8 type;

	if (have < PG_HDR_LEN || have > REASM_MAX)
		return;
	if (bpf_probe_read_kernel(&s->buf[REASM_AT], bound(have - 1, REASM_MASK) + 1, r->buf))
		return;
	type = sb(s, REASM_AT);
	len = sb_be32(s, REASM_AT + 1);
	s->ch.msg_end = REASM_AT + have;
	dbtap_pg_message(s, c, type, REASM_AT + PG_HDR_LEN, len - 4);
}

struct frame_walk {
	struct scratch *s;
	struct conn_state *c;
	struct frame_state *fs;
};

/* Read the 5-byte header at @pos (scratch, or user memory past the scratch). */
static __always_inline int pg_header(struct scratch *s, __u32 pos, __u8 *ret_type, __u32 *ret_len)
{
	__u8 h[PG_HDR_LEN];

	if (pos + PG_HDR_LEN <= s->ch.avail) {
		*ret_type = sb(s, pos);
		*ret_len = sb_be32(s, pos + 1);
		return 0;
	}
	if (!s->ch.user_buf || bpf_probe_read_user(h, sizeof(h), (void *)(s->ch.user_buf + pos)))
		return -1;
	*ret_type = h[0];
	*ret_len = ((__u32)h[1] << 24) | ((__u32)h[2] << 16) | ((__u32)h[3] << 8) | h[4];
	return 0;
}

/* A typed message whose header is known starts at @pos: decode it from the chunk when the
 * bytes the decoder needs are there, else collect it across chunks. Moves ch.pos past it. */
static __always_inline void pg_take(struct scratch *s, struct conn_state *c, struct frame_state *fs,
				    __u32 pos, __u8 type, __u32 len)
{
	__u32 msg_total = 1 + len, want = pg_want(s, type, msg_total), end = pos + msg_total;
	struct reasm *r;

	if (pos + want <= s->ch.avail) {
		s->ch.msg_end = pos + want;
		if (pg_type_handled(s, type))
			dbtap_pg_message(s, c, type, pos + PG_HDR_LEN, len - 4);
	} else {
		r = reasm_start(s, want);
		if (r) {
			reasm_append(s, r, pos, s->ch.total - pos);
			if (r->have >= want)
				reasm_decode(s, c, r);
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

static long pg_frame_cb(__u64 i, void *arg)
{
	struct frame_walk *w = arg;
	struct scratch *s = w->s;
	__u32 pos = s->ch.pos, len;
	struct reasm *r;
	__u8 type;

	if (pos >= s->ch.total)
		return 1;
	if (s->ch.total - pos < PG_HDR_LEN) {
		/* header cut by the chunk's end: collect it */
		r = reasm_start(s, PG_HDR_LEN);
		if (r) {
			reasm_append(s, r, pos, s->ch.total - pos);
			w->fs->reasm = FRAME_REASM_TYPED;
			w->fs->skip = 0;
		}
		s->ch.pos = s->ch.total;
		return 1;
	}
	if (pg_header(s, pos, &type, &len) < 0) {
		count(DBTAP_CNT_DROP_READ);
		s->ch.stop = 1;
		return 1;
	}
	if (len < 4 || len > PG_MAX_MSG_LEN || !pg_type_ok(s, type)) {
		count(DBTAP_CNT_DESYNC);
		s->ch.stop = 1;
		return 1;
	}
	if (!pg_type_handled(s, type) && pos + 1 + len <= s->ch.total) {
		/* RowDescription, DataRow...: nothing to read, the next header follows */
		s->ch.pos = pos + 1 + len;
		return s->ch.pos >= s->ch.total;
	}
	pg_take(s, w->c, w->fs, pos, type, len);
	return s->ch.pos >= s->ch.total || w->fs->reasm || w->fs->skip;
}

/*
 * Continue a message collected across chunks: first its header (when cut), then the bytes
 * the decoder needs; decode when they are all there, and skip the rest of the message.
 * Global: verified once.
 */
__noinline int dbtap_pg_continue(struct scratch *s, struct conn_state *c, struct frame_state *fs)
{
	__u64 key;
	struct reasm *r;
	__u32 n, len;
	__u8 type;

	if (!s || !c || !fs)
		return 0;
	key = reasm_key(s);
	r = bpf_map_lookup_elem(&reasms, &key);
	if (!r) {
		fs->reasm = FRAME_REASM_NONE;
		count(DBTAP_CNT_DESYNC);
		return 0;
	}
	if (r->have < PG_HDR_LEN) {
		n = PG_HDR_LEN - r->have;
		if (n > s->ch.total - s->ch.pos)
			n = s->ch.total - s->ch.pos;
		reasm_append(s, r, s->ch.pos, n);
		s->ch.pos += n;
		if (r->have < PG_HDR_LEN)
			return 0; /* still not a whole header */
		type = r->buf[0];
		len = ((__u32)r->buf[1] << 24) | ((__u32)r->buf[2] << 16) |
		      ((__u32)r->buf[3] << 8) | r->buf[4];
		if (len < 4 || len > PG_MAX_MSG_LEN || !pg_type_ok(s, type)) {
			fs->reasm = FRAME_REASM_NONE;
			count(DBTAP_CNT_DESYNC);
			s->ch.stop = 1;
			return 0;
		}
		r->want = pg_want(s, type, 1 + len);
		fs->skip = 1 + len - PG_HDR_LEN;
	}
	n = fs->skip < s->ch.total - s->ch.pos ? fs->skip : s->ch.total - s->ch.pos;
	reasm_append(s, r, s->ch.pos, n);
	fs->skip -= n;
	s->ch.pos += n;
	if (r->have >= r->want || !fs->skip) {
		fs->reasm = FRAME_REASM_NONE;
		reasm_decode(s, c, r);
	}
	return 0;
}

/* Frame the chunk from ch.pos on, continuing a message left by the last chunk. */
static __always_inline void pg_frame(struct scratch *s, struct conn_state *c)
{
	struct frame_state *fs = s->ch.dir == IO_RECV ? &c->req : &c->resp;
	struct frame_walk w = {.s = s, .c = c, .fs = fs};
	__u32 n;

	if (fs->reasm == FRAME_REASM_TYPED) {
		dbtap_pg_continue(s, c, fs);
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
	/* every message is at least PG_HDR_LEN bytes: the loop cannot end early */
	if (s->ch.pos < s->ch.total && !s->ch.stop && !fs->reasm && !fs->skip)
		bpf_loop(s->ch.total / PG_HDR_LEN + 1, pg_frame_cb, &w, 0);
}

/* ---- connection start ---- */

struct startup_walk {
	struct scratch *s;
	__u32 off;
	__u32 end;
	__u32 key_hash;
	__u32 val_hash;
	__u32 user_id;
	__u32 db_id;
	__u32 key_len;
	__u8 in_value;
};

static long pg_startup_cb(__u64 i, void *arg)
{
	struct startup_walk *w = arg;
	__u32 p = w->off + (__u32)i;
	__u8 c;

	if (p >= w->end)
		return 1;
	c = sb(w->s, p);
	if (!w->in_value) {
		if (c == 0) {
			if (!w->key_len)
				return 1; /* terminator */
			w->in_value = 1;
			w->val_hash = DBTAP_FNV32_OFFSET;
			return 0;
		}
		w->key_hash = dbtap_name_hash_step(w->key_hash, c);
		w->key_len++;
		return 0;
	}
	if (c == 0) {
		__u32 v = w->val_hash ? w->val_hash : 1;

		if (w->key_hash == PG_KEY_HASH_USER)
			w->user_id = v;
		else if (w->key_hash == PG_KEY_HASH_DATABASE)
			w->db_id = v;
		w->in_value = 0;
		w->key_hash = DBTAP_FNV32_OFFSET;
		w->key_len = 0;
		return 0;
	}
	w->val_hash = dbtap_name_hash_step(w->val_hash, c);
	return 0;
}

/* A StartupMessage of @len bytes whose first @have bytes are at @at in the scratch. */
static __always_inline void pg_startup(struct scratch *s, struct conn_state *c, __u32 at,
				       __u32 have, __u32 len)
{
	struct startup_walk w = {
		.s = s, .off = at + 8, .end = at + have, .key_hash = DBTAP_FNV32_OFFSET};

	bpf_loop(PG_MAX_STARTUP_PACKET, pg_startup_cb, &w, 0);
	c->user_id = w.user_id;
	c->db_id = w.db_id ? w.db_id : w.user_id; /* default: user name */
	c->flags |= DBTAP_CONN_F_STARTUP;
	c->phase = PG_PHASE_NORMAL;
	emit_conn(s, c, DBTAP_EV_CONN_OPEN, at, have);
}

/*
 * Decide what a connection is from its first @have bytes at @at (at least 5, or 8 when the
 * first byte is 0): a StartupMessage, an SSL/GSS request, a cancel request, a typed message
 * (a connection open before capture started), or not PostgreSQL. Returns the length of the
 * untyped first message, 0 when it is typed (framing starts at its first byte), or -1 when
 * the connection is to be ignored.
 */
static __always_inline int pg_classify(struct scratch *s, struct conn_state *c, __u32 at,
				       __u32 have, __u32 *ret_code)
{
	__u32 len, code;
	__u8 type = sb(s, at);

	if (type == 0 && have >= 8) {
		len = sb_be32(s, at);
		code = sb_be32(s, at + 4);
		*ret_code = code;
		if (len >= 8 && len <= PG_MAX_STARTUP_PACKET &&
		    (code == PG_PROTOCOL_3_0 ||
		     ((code == PG_CODE_SSL || code == PG_CODE_GSSENC) && len == 8) ||
		     code == PG_CODE_CANCEL))
			return len;
	} else if (type && have >= PG_HDR_LEN) {
		len = sb_be32(s, at + 1);
		/* the next message, when it lies in the bytes at hand, must start well too */
		if (pg_frontend_type(type) && len >= 4 && len <= (1u << 20) &&
		    (1 + len >= have || pg_frontend_type(sb(s, at + 1 + len)))) {
			c->flags |= DBTAP_CONN_F_MIDSTREAM;
			c->phase = PG_PHASE_NORMAL;
			emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
			return 0;
		}
	}
	c->flags |= DBTAP_CONN_F_UNDECODABLE;
	c->phase = PG_PHASE_IGNORE;
	count(DBTAP_CNT_UNDECODABLE);
	emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
	return -1;
}

/* Act on an untyped first message of @len bytes (@have of them at @at); code from classify. */
static __always_inline void pg_untyped(struct scratch *s, struct conn_state *c, __u32 at,
				       __u32 have, __u32 len, __u32 code)
{
	if (code == PG_PROTOCOL_3_0)
		pg_startup(s, c, at, have, len);
	else if (code == PG_CODE_SSL || code == PG_CODE_GSSENC)
		c->phase = PG_PHASE_ENC_WAIT;
	else
		c->phase = PG_PHASE_IGNORE; /* CancelRequest */
}

/*
 * First bytes of a connection. Decided on the spot when the chunk holds what is needed (5
 * bytes of a typed message, or an untyped message up to REASM_MAX bytes); otherwise
 * collected across chunks: first 5 or 8 bytes to decide, then the StartupMessage.
 * Global: verified once.
 */
__noinline int dbtap_pg_start(struct scratch *s, struct conn_state *c)
{
	__u32 avail, need, code = 0, len, before, round;
	struct reasm *r = NULL;
	__u64 key;
	int k;

	if (!s || !c)
		return 0;
	avail = s->ch.avail;
	if (c->req.reasm != FRAME_REASM_START) {
		need = sb(s, 0) ? PG_HDR_LEN : 8;
		if (avail >= need) {
			len = sb_be32(s, 0);
			/* an untyped message must be here up to what is read of it (or be no
			 * message at all, which pg_classify() says at once) */
			if (sb(s, 0) || len < 8 || len > PG_MAX_STARTUP_PACKET ||
			    avail >= (len < REASM_MAX ? len : REASM_MAX)) {
				k = pg_classify(s, c, 0, avail, &code);
				if (k > 0) {
					len = (__u32)k;
					pg_untyped(s, c, 0, len < avail ? len : avail, len, code);
					if (len > s->ch.total)
						c->req.skip = len - s->ch.total; /* the rest */
					s->ch.pos = len < s->ch.total ? len : s->ch.total;
				} else if (k < 0) {
					s->ch.pos = s->ch.total;
				}
				return 0;
			}
		}
		r = reasm_start(s, need);
		if (!r) {
			s->ch.pos = s->ch.total;
			return 0;
		}
		c->req.reasm = FRAME_REASM_START;
	} else {
		key = reasm_key(s);
		r = bpf_map_lookup_elem(&reasms, &key);
		if (!r) {
			c->req.reasm = FRAME_REASM_NONE;
			s->ch.pos = s->ch.total;
			return 0;
		}
	}
	/* up to three rounds: 5 bytes (typed?), 8 bytes (which untyped message?), the message */
	for (round = 0; round < 3; round++) {
		before = r->have;
		reasm_append(s, r, s->ch.pos, s->ch.total - s->ch.pos);
		s->ch.pos += r->have - before;
		if (r->have < r->want)
			return 0; /* the chunk is used up: wait for the next one */
		if (r->have > REASM_MAX ||
		    bpf_probe_read_kernel(&s->buf[REASM_AT], bound(r->have - 1, REASM_MASK) + 1,
					  r->buf))
			return 0;
		if (r->want > 8)
			break; /* the StartupMessage, or its first REASM_MAX bytes */
		if (r->have == PG_HDR_LEN && sb(s, REASM_AT) == 0) {
			r->want = 8; /* untyped: its code decides */
			continue;
		}
		k = pg_classify(s, c, REASM_AT, r->have, &code);
		if (k < 0) {
			c->req.reasm = FRAME_REASM_NONE;
			s->ch.pos = s->ch.total;
			return 0;
		}
		if (k == 0) {
			/* typed, joined mid-stream: go on as a typed message with a whole header */
			len = sb_be32(s, REASM_AT + 1);
			r->want = pg_want(s, sb(s, REASM_AT), 1 + len);
			c->req.skip = 1 + len - r->have;
			c->req.reasm = FRAME_REASM_TYPED;
			return 0;
		}
		len = (__u32)k;
		if (code != PG_PROTOCOL_3_0) {
			/* SSLRequest/GSSENCRequest (8 bytes) or CancelRequest: nothing to read */
			c->req.reasm = FRAME_REASM_NONE;
			c->req.skip = len > r->have ? len - r->have : 0;
			pg_untyped(s, c, REASM_AT, r->have, len, code);
			return 0;
		}
		r->want = len < REASM_MAX ? len : REASM_MAX;
	}
	if (r->want <= 8)
		return 0;
	len = sb_be32(s, REASM_AT);
	c->req.reasm = FRAME_REASM_NONE;
	c->req.skip = len > r->have ? len - r->have : 0; /* past REASM_MAX: skipped */
	pg_untyped(s, c, REASM_AT, r->have, len, PG_PROTOCOL_3_0);
	return 0;
}

/* Decode one chunk of PostgreSQL connection @c. Global: verified once. */
__noinline int dbtap_pg_chunk(struct scratch *s, struct conn_state *c)
{
	if (!s || !c)
		return 0;
	s->ch.closing = 0;
	if (s->ch.dir == IO_RECV) {
		if (c->phase == PG_PHASE_ENC_WAIT)
			c->phase = PG_PHASE_START; /* refused: the client goes on in clear */
		if (c->phase == PG_PHASE_START)
			dbtap_pg_start(s, c);
		if (c->phase == PG_PHASE_NORMAL && (s->ch.pos < s->ch.total || c->req.reasm))
			pg_frame(s, c);
		if (s->ch.closing)
			conn_close(s, c);
		return 0;
	}
	if (c->phase == PG_PHASE_ENC_WAIT) {
		__u8 answer = sb(s, 0);

		if (answer == PG_SSL_ACCEPT || answer == PG_GSS_ACCEPT) {
			c->flags |= DBTAP_CONN_F_ENCRYPTED;
			c->phase = PG_PHASE_IGNORE;
			count(DBTAP_CNT_ENCRYPTED);
			emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
		}
		return 0; /* 'N': the client goes on in clear */
	}
	if (c->phase == PG_PHASE_START && s->ch.avail && pg_backend_type(sb(s, 0))) {
		/* the server speaks first on a connection we joined mid-stream (outside
		 * PG_PHASE_ENC_WAIT no one-byte answer is expected: a type letter starts a
		 * message, whose header pg_frame() collects when it is cut) */
		c->flags |= DBTAP_CONN_F_MIDSTREAM;
		c->phase = PG_PHASE_NORMAL;
		emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
	}
	if (c->phase == PG_PHASE_NORMAL)
		pg_frame(s, c);
	return 0;
}

#endif /* DBTAP_PG_BPF_H */
