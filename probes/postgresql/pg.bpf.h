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
#define PG_TAG_MAX	      32   /* CommandComplete tag bytes examined */
#define PG_ERR_SCAN_MAX	      96   /* ErrorResponse bytes searched for the SQLSTATE field */

/* FNV-1a 32 of startup parameter names. */
#define PG_KEY_HASH_USER     0x60785ef2u
#define PG_KEY_HASH_DATABASE 0xa165ddb8u

static __always_inline bool pg_frontend_type(__u8 t)
{
	switch (t) {
	case PG_MSG_QUERY:
	case PG_MSG_PARSE:
	case PG_MSG_BIND:
	case PG_MSG_EXECUTE:
	case PG_MSG_SYNC:
	case PG_MSG_DESCRIBE:
	case PG_MSG_CLOSE:
	case PG_MSG_FLUSH:
	case PG_MSG_TERMINATE:
	case PG_MSG_COPY_DATA:
	case PG_MSG_COPY_DONE:
	case PG_MSG_COPY_FAIL:
	case PG_MSG_FUNCTION_CALL:
	case PG_MSG_PASSWORD:
		return true;
	}
	return false;
}

static __always_inline bool pg_backend_type(__u8 t)
{
	switch (t) {
	case PG_MSG_COMMAND_COMPLETE:
	case PG_MSG_ERROR_RESPONSE:
	case PG_MSG_READY_FOR_QUERY:
	case PG_MSG_EMPTY_QUERY:
	case PG_MSG_PORTAL_SUSPENDED:
	case PG_MSG_ROW_DESCRIPTION:
	case PG_MSG_DATA_ROW:
	case PG_MSG_PARSE_COMPLETE:
	case PG_MSG_BIND_COMPLETE:
	case PG_MSG_CLOSE_COMPLETE:
	case PG_MSG_NO_DATA:
	case PG_MSG_PARAMETER_DESCRIPTION:
	case PG_MSG_NOTICE:
	case PG_MSG_NOTIFICATION:
	case PG_MSG_PARAMETER_STATUS:
	case PG_MSG_BACKEND_KEY_DATA:
	case PG_MSG_AUTHENTICATION:
	case PG_MSG_COPY_IN:
	case PG_MSG_COPY_OUT:
	case PG_MSG_COPY_BOTH:
	case PG_MSG_FUNCTION_RESULT:
	case PG_MSG_NEGOTIATE_VERSION:
	case PG_MSG_COPY_DATA:
	case PG_MSG_COPY_DONE:
		return true;
	}
	return false;
}

/* ---- text helpers over the scratch buffer ---- */

/* Global (not static) functions are verified once, on their own, with opaque arguments:
 * the lexer's many branches cost the verifier once instead of once per caller state. */
/* Feed up to 8 bytes packed little-endian in @bytes (@n of them): one call per 8 bytes keeps
 * the per-byte overhead of bpf_loop and the call itself low. Returns the bytes consumed, with
 * FP_STEP_NUL set when a NUL ended the text. */
#define FP_STEP_NUL 0x100
__noinline int dbtap_fp_step8(struct sql_fp *fp, __u64 bytes, __u32 n)
{
	__u32 i;

	if (!fp)
		return FP_STEP_NUL;
	for (i = 0; i < 8; i++) {
		__u8 c = (__u8)(bytes >> (i * 8));

		if (i >= n)
			return i;
		if (c == 0)
			return i | FP_STEP_NUL;
		sql_fp_step(fp, c);
	}
	return 8;
}

__noinline __u64 dbtap_fp_finish(struct sql_fp *fp)
{
	if (!fp)
		return 1;
	return sql_fp_finish(fp);
}

struct scan {
	struct scratch *s;
	__u32 off;
	__u32 end;
	__u32 hash;	  /* cstr: FNV-1a 32 */
	__u32 len;	  /* cstr: bytes before the NUL; fp: bytes fingerprinted */
	__u32 at;	  /* err: offset of the SQLSTATE value */
	__u64 rows;	  /* tag: the last number */
	__u8 done;	  /* cstr: NUL found */
	__u8 field_start; /* err: next byte is a field code */
};

static long pg_fp_cb(__u64 i, void *arg)
{
	struct scan *w = arg;
	__u32 p = w->off + (__u32)i * 8, n;
	__u64 bytes;
	int r;

	if (p >= w->end)
		return 1;
	n = w->end - p < 8 ? w->end - p : 8;
	/* p < avail <= SCRATCH_SIZE: the 8-byte load stays inside the doubled buffer */
	__builtin_memcpy(&bytes, &w->s->buf[bound(p, SCRATCH_MASK)], sizeof(bytes));
	r = dbtap_fp_step8(&w->s->fp, bytes, n);
	w->len += r & 0xff;
	return (r & FP_STEP_NUL) || n < 8;
}

/* Fingerprint of the NUL-terminated SQL at [off, end) of the scratch; its length in @ret_len. */
static __always_inline __u64 pg_fingerprint(struct scratch *s, __u32 off, __u32 end,
					    __u32 *ret_len)
{
	struct scan w = {.s = s, .off = off, .end = end};
	__u32 n = end > off ? end - off : 0;

	sql_fp_init(&s->fp, SQL_FP_POSTGRESQL);
	if (n > SCRATCH_SIZE)
		n = SCRATCH_SIZE;
	bpf_loop((n + 7) / 8, pg_fp_cb, &w, 0);
	*ret_len = w.len;
	return dbtap_fp_finish(&s->fp);
}

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

static long pg_tag_cb(__u64 i, void *arg)
{
	struct scan *w = arg;
	__u32 p = w->off + (__u32)i;
	__u8 c;

	if (p >= w->end)
		return 1;
	c = sb(w->s, p);
	if (c == 0)
		return 1;
	if (c == ' ')
		w->rows = 0;
	else if (c >= '0' && c <= '9')
		w->rows = w->rows * 10 + (c - '0');
	return 0;
}

/* Rows from a CommandComplete tag: the number after the last space ("INSERT 0 5" -> 5). */
static __always_inline __u64 pg_tag_rows(struct scratch *s, __u32 body, __u32 end)
{
	struct scan w = {.s = s, .off = body, .end = end};

	bpf_loop(PG_TAG_MAX, pg_tag_cb, &w, 0);
	return w.rows;
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

/* ---- operations queued on a connection ---- */

static __always_inline void pg_push(struct scratch *s, struct conn_state *c, __u8 kind, __u64 hash,
				    __u16 flags)
{
	struct pg_op *o;

	if ((__u8)(c->tail - c->head) >= CONN_MAX_OPS) {
		count(DBTAP_CNT_DROP_PIPELINE);
		return;
	}
	o = &c->ops[c->tail & (CONN_MAX_OPS - 1)];
	o->query_hash = hash;
	o->start_ns = s->ch.now;
	o->agg_flags = flags;
	o->kind = kind;
	c->tail++;
}

static __always_inline struct pg_op *pg_front(struct conn_state *c)
{
	if (c->head == c->tail)
		return NULL;
	return &c->ops[c->head & (CONN_MAX_OPS - 1)];
}

/* Pop the oldest operation into s->ch.done (status already there when failed); the caller
 * counts it with dbtap_complete(). */
static __always_inline void pg_finish(struct scratch *s, struct conn_state *c, struct pg_op *o,
				      bool failed, __u64 rows)
{
	struct op_done *d = &s->ch.done;

	d->query_hash = o->query_hash;
	d->start_ns = o->start_ns;
	d->agg_flags = o->agg_flags;
	d->rows = rows;
	d->failed = failed;
	if (!failed)
		__builtin_memset(d->status, 0, DBTAP_STATUS_LEN);
	s->ch.done_pending = 1;
	c->head++;
}

/* ---- requests ---- */

/* Query text at @off ends with NUL at @body_end - 1: fingerprint what the scratch holds. */
static __always_inline __u64 pg_query_hash(struct scratch *s, __u32 off, __u32 body_end)
{
	__u32 end = body_end < s->ch.avail ? body_end : s->ch.avail;
	__u32 len = 0;
	__u64 h = pg_fingerprint(s, off, end, &len);

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
	__u32 end = body_end < s->ch.avail ? body_end : s->ch.avail;
	struct stmt_key k = {.sk = c->sk};
	__u32 name_hash = 0, name_len = 0, portal_hash = 0, portal_len = 0;
	struct stmt_val v = {}, *sv;
	__u16 flags = DBTAP_AGG_F_EXTENDED;
	__u64 h;

	switch (type) {
	case PG_MSG_QUERY:
		h = pg_query_hash(s, body, body_end);
		c->cur_err = 0;
		c->cur_rows = 0;
		pg_push(s, c, PG_OP_SIMPLE, h, 0);
		return;
	case PG_MSG_PARSE:
		if (pg_cstr(s, body, end, &name_hash, &name_len) < 0)
			return;
		h = pg_query_hash(s, body + name_len + 1, body_end);
		if (!name_len) {
			c->unnamed_stmt = h;
			c->unnamed_stmt_flags = flags;
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
			h = c->unnamed_stmt;
			flags = c->unnamed_stmt_flags;
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
			c->unnamed_portal = h;
			c->unnamed_portal_flags = flags;
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
			h = c->unnamed_portal;
			flags = c->unnamed_portal_flags;
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
		pg_push(s, c, PG_OP_EXEC, h, flags);
		return;
	case PG_MSG_SYNC:
		pg_push(s, c, PG_OP_SYNC, 0, 0);
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
	__u32 end = body_end < s->ch.avail ? body_end : s->ch.avail;
	struct pg_op *o;
	__u64 rows;
	__u32 i;

	switch (type) {
	case PG_MSG_COMMAND_COMPLETE:
		rows = pg_tag_rows(s, body, end);
		o = pg_front(c);
		if (!o)
			return;
		if (o->kind == PG_OP_SIMPLE)
			c->cur_rows += rows;
		else if (o->kind == PG_OP_EXEC)
			pg_finish(s, c, o, false, rows);
		return;
	case PG_MSG_ERROR_RESPONSE:
		pg_sqlstate(s, body, end);
		o = pg_front(c);
		if (!o)
			return;
		if (o->kind == PG_OP_SIMPLE) {
			if (!c->cur_err)
				__builtin_memcpy(c->cur_status, s->ch.done.status,
						 DBTAP_STATUS_LEN);
			c->cur_err = 1;
		} else if (o->kind == PG_OP_EXEC) {
			pg_finish(s, c, o, true, 0);
		}
		return;
	case PG_MSG_EMPTY_QUERY:
		o = pg_front(c);
		if (o && o->kind == PG_OP_EXEC)
			c->head++; /* nothing executed: not an operation */
		return;
	case PG_MSG_PORTAL_SUSPENDED:
		o = pg_front(c);
		if (o && o->kind == PG_OP_EXEC)
			pg_finish(s, c, o, false, 0);
		return;
	case PG_MSG_READY_FOR_QUERY:
		o = pg_front(c);
		if (!o)
			return;
		if (o->kind == PG_OP_SIMPLE) {
			__builtin_memcpy(s->ch.done.status, c->cur_status, DBTAP_STATUS_LEN);
			pg_finish(s, c, o, c->cur_err, c->cur_rows);
			c->cur_err = 0;
			c->cur_rows = 0;
			__builtin_memset(c->cur_status, 0, DBTAP_STATUS_LEN);
			return;
		}
		for (i = 0; i < CONN_MAX_OPS; i++) {
			o = pg_front(c);
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

/* One whole-or-partial message of the current chunk; counts what it completes. Global. */
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

/* ---- framing ---- */

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

static long pg_frame_cb(__u64 i, void *arg)
{
	struct frame_walk *w = arg;
	struct scratch *s = w->s;
	struct frame_state *fs = w->fs;
	__u32 pos = s->ch.pos, left, end, len;
	__u8 type;

	if (pos >= s->ch.total)
		return 1;
	left = s->ch.total - pos;
	if (left < PG_HDR_LEN) {
		/* header split across chunks: keep its bytes for the next chunk */
		if (pos + left <= s->ch.avail) {
			fs->hdr_have = left;
			fs->hdr[0] = sb(s, pos);
			fs->hdr[1] = sb(s, pos + 1);
			fs->hdr[2] = sb(s, pos + 2);
			fs->hdr[3] = sb(s, pos + 3);
		}
		s->ch.pos = s->ch.total;
		return 1;
	}
	if (pg_header(s, pos, &type, &len) < 0) {
		count(DBTAP_CNT_DROP_READ);
		s->ch.stop = 1;
		return 1;
	}
	if (len < 4 || len > PG_MAX_MSG_LEN ||
	    !(s->ch.dir == IO_RECV ? pg_frontend_type(type) : pg_backend_type(type))) {
		count(DBTAP_CNT_DESYNC);
		s->ch.stop = 1;
		return 1;
	}
	dbtap_pg_message(s, w->c, type, pos + PG_HDR_LEN, len - 4);
	end = pos + 1 + len;
	if (end > s->ch.total) {
		fs->skip = end - s->ch.total;
		s->ch.pos = s->ch.total;
		return 1;
	}
	s->ch.pos = end;
	return 0;
}

/* Frame the chunk from ch.pos on, continuing a message or header left by the last chunk. */
static __always_inline void pg_frame(struct scratch *s, struct conn_state *c)
{
	struct frame_state *fs = s->ch.dir == IO_RECV ? &c->req : &c->resp;
	struct frame_walk w = {.s = s, .c = c, .fs = fs};

	if (fs->skip) {
		__u32 n = fs->skip < s->ch.total - s->ch.pos ? fs->skip : s->ch.total - s->ch.pos;

		fs->skip -= n;
		s->ch.pos += n;
		if (fs->skip)
			return;
	}
	if (fs->hdr_have && fs->hdr_have < PG_HDR_LEN) {
		/* complete a header split by the last chunk */
		__u32 have = fs->hdr_have, need = PG_HDR_LEN - have, len;
		__u8 h[PG_HDR_LEN];

		fs->hdr_have = 0;
		if (need > s->ch.avail) {
			count(DBTAP_CNT_DESYNC);
			return;
		}
		/* byte k of the header: kept from the last chunk, or at k - have in this one */
		h[0] = fs->hdr[0]; /* have >= 1 */
		h[1] = have > 1 ? fs->hdr[1] : sb(s, 1 - have);
		h[2] = have > 2 ? fs->hdr[2] : sb(s, 2 - have);
		h[3] = have > 3 ? fs->hdr[3] : sb(s, 3 - have);
		h[4] = sb(s, 4 - have);
		len = ((__u32)h[1] << 24) | ((__u32)h[2] << 16) | ((__u32)h[3] << 8) | h[4];
		if (len < 4 || len > PG_MAX_MSG_LEN) {
			count(DBTAP_CNT_DESYNC);
			return;
		}
		dbtap_pg_message(s, c, h[0], need, len - 4);
		s->ch.pos = need + len - 4;
		if (s->ch.pos > s->ch.total) {
			fs->skip = s->ch.pos - s->ch.total;
			return;
		}
	}
	bpf_loop(PG_MAX_MSGS_PER_CHUNK, pg_frame_cb, &w, 0);
	if (!s->ch.stop && s->ch.pos < s->ch.total)
		count(DBTAP_CNT_DESYNC); /* more messages than the loop bound */
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

/* First bytes of a connection: startup, SSL/GSS request, cancel, mid-stream, or garbage. */
static __always_inline void pg_start(struct scratch *s, struct conn_state *c)
{
	__u32 len, code, avail = s->ch.avail;
	__u8 type;

	if (avail >= 8) {
		len = sb_be32(s, 0);
		code = sb_be32(s, 4);
		if (len >= 8 && len <= PG_MAX_STARTUP_PACKET) {
			if (code == PG_PROTOCOL_3_0) {
				struct startup_walk w = {.s = s,
							 .off = 8,
							 .end = len < avail ? len : avail,
							 .key_hash = DBTAP_FNV32_OFFSET};

				bpf_loop(PG_MAX_STARTUP_PACKET, pg_startup_cb, &w, 0);
				c->user_id = w.user_id;
				c->db_id = w.db_id ? w.db_id : w.user_id; /* default: user name */
				c->flags |= DBTAP_CONN_F_STARTUP;
				c->phase = PG_PHASE_NORMAL;
				emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, len < avail ? len : avail);
				s->ch.pos = len;
				return;
			}
			if ((code == PG_CODE_SSL || code == PG_CODE_GSSENC) && len == 8) {
				c->phase = PG_PHASE_ENC_WAIT;
				s->ch.pos = 8;
				return;
			}
			if (code == PG_CODE_CANCEL) {
				c->phase = PG_PHASE_IGNORE;
				s->ch.pos = s->ch.total;
				return;
			}
		}
	}
	/* mid-stream: a connection that was open before capture started */
	if (avail >= PG_HDR_LEN) {
		type = sb(s, 0);
		len = sb_be32(s, 1);
		if (pg_frontend_type(type) && len >= 4 && len <= (1u << 20) &&
		    (1 + len >= s->ch.total || pg_frontend_type(sb(s, 1 + len)))) {
			c->flags |= DBTAP_CONN_F_MIDSTREAM;
			c->phase = PG_PHASE_NORMAL;
			emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
			return;
		}
	}
	c->flags |= DBTAP_CONN_F_UNDECODABLE;
	c->phase = PG_PHASE_IGNORE;
	count(DBTAP_CNT_UNDECODABLE);
	emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
	s->ch.pos = s->ch.total;
}

/* Decode one chunk of a PostgreSQL connection. Global: verified once. */
__noinline int dbtap_pg_chunk(struct scratch *s)
{
	struct conn_state *c;

	if (!s)
		return 0;
	c = conn_of(s);
	if (!c)
		return 0;
	if (s->ch.dir == IO_RECV) {
		if (c->phase == PG_PHASE_START || c->phase == PG_PHASE_ENC_WAIT) {
			/* after a refused SSLRequest the client sends its startup in clear */
			c->phase = PG_PHASE_START;
			pg_start(s, c);
		}
		if (c->phase == PG_PHASE_NORMAL && s->ch.pos < s->ch.total)
			pg_frame(s, c);
		/* Terminate alone in a chunk: the client is leaving */
		if (s->ch.total == PG_HDR_LEN && sb(s, 0) == PG_MSG_TERMINATE) {
			count(DBTAP_CNT_CONN_CLOSE);
			emit_conn(s, c, DBTAP_EV_CONN_CLOSE, 0, 0);
			bpf_map_delete_elem(&conns, &s->ch.sk);
		}
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
	if (c->phase == PG_PHASE_START && s->ch.avail >= PG_HDR_LEN && pg_backend_type(sb(s, 0))) {
		/* the server speaks first on a connection we joined mid-stream */
		c->flags |= DBTAP_CONN_F_MIDSTREAM;
		c->phase = PG_PHASE_NORMAL;
		emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
	}
	if (c->phase == PG_PHASE_NORMAL)
		pg_frame(s, c);
	return 0;
}

#endif /* DBTAP_PG_BPF_H */
