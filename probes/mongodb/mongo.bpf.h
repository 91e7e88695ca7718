/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mongo.bpf.h - MongoDB wire protocol decoder running in the BPF capture programs.
 *
 * Included by bpf/decoders.bpf.h. Frames each direction into messages (16-byte little-endian
 * header: messageLength, requestID, responseTo, opCode; a message may span chunks: its first
 * REASM_MAX bytes are collected, the rest skipped) and turns requests into operations queued
 * on the connection, replies into completions matched by responseTo == the request's
 * requestID (conn_op.tag):
 *   OP_MSG request ..... command = first key of the body (section kind 0); fingerprint of
 *                        command, collection (first value when a string), $db and the shape
 *                        of the filter (filter/query/pipeline/updates/deletes, from the body
 *                        or a kind 1 document sequence) with every value replaced;
 *                        moreToCome: no reply comes, counted at once with no latency
 *   OP_MSG reply ....... ok / code -> failed with the code as status; n / nModified -> rows;
 *                        cursor.id of a find/aggregate remembered (getMore joins its series);
 *                        moreToCome (exhaust): each further reply is one more getMore
 *   OP_QUERY / OP_REPLY  the legacy handshake (isMaster/hello on admin.$cmd): same rules
 *   OP_COMPRESSED ...... the payload is compressed (zlib/snappy/zstd): the operation is
 *                        counted and timed, its command unknown (DBTAP_AGG_F_UNKNOWN_STMT,
 *                        one DBTAP_CNT_UNDECODABLE per compressed message)
 * Names follow the MongoDB Wire Protocol reference and the BSON specification (bsonspec.org).
 */
#ifndef DBTAP_MONGO_BPF_H
#define DBTAP_MONGO_BPF_H

#include "probes/mongodb/mongo_wire.h"

#define MG_MAX_MSGS_PER_CHUNK (SCRATCH_SIZE / MG_HDR_LEN + 1)
#define MG_NAME_MAX	      128 /* bytes of a section identifier / collection name read */

/* TLS record header of a ClientHello: handshake content type, version major 3 */
#define MG_TLS_HANDSHAKE 0x16
#define MG_TLS_MAJOR	 0x03

/* FNV-1a 32 of the names the decoder looks for (dbtap_name_hash_step) */
#define MG_H_DB	       0x264536b5u /* "$db" */
#define MG_H_GETMORE   0x79f5aae2u
#define MG_H_FIND      0xbdf0855au
#define MG_H_AGGREGATE 0x9e847fa8u
#define MG_H_FILTER    0xc7e16877u
#define MG_H_QUERY     0xf8ce75e3u
#define MG_H_PIPELINE  0xd3442983u
#define MG_H_UPDATES   0x17860705u
#define MG_H_DELETES   0x8fd165bbu
#define MG_H_OK	       0x663437afu
#define MG_H_CODE      0xf9316cf4u
#define MG_H_N	       0xeb0c3431u
#define MG_H_NMODIFIED 0x9488e1feu
#define MG_H_CURSOR    0xe336320fu
#define MG_H_ID	       0x37386ae0u

/*
 * Bytes fed to the fingerprint besides names: they make the shape unambiguous and are the
 * ones userspace prints (mongo_user.c builds the same text from the same walk).
 */
#define MG_FP_COLL    ' ' /* the collection follows the command name */
#define MG_FP_DB      '@' /* the $db value follows */
#define MG_FP_FILTER  '|' /* the filter's shape follows */
#define MG_FP_VALUE   '?' /* a value (consecutive scalars in an array: one) */
#define MG_FP_NAME    ':' /* ends a field name */
#define MG_FP_DOC     '{'
#define MG_FP_DOC_END '}'
#define MG_FP_ARR     '['
#define MG_FP_ARR_END ']'
#define MG_FP_DEEP    '~' /* a document nested deeper than MG_MAX_DEPTH, not walked */

/* ---- little-endian reads from the scratch ---- */

static __always_inline __u32 mg_le32(struct scratch *s, __u32 off)
{
	return (__u32)sb(s, off) | ((__u32)sb(s, off + 1) << 8) | ((__u32)sb(s, off + 2) << 16) |
	       ((__u32)sb(s, off + 3) << 24);
}

static __always_inline __u64 mg_le64(struct scratch *s, __u32 off)
{
	return (__u64)mg_le32(s, off) | ((__u64)mg_le32(s, off + 4) << 32);
}

static __always_inline __u64 mg_fp_step(__u64 h, __u8 c)
{
	return (h ^ c) * DBTAP_FNV64_PRIME;
}

/* ---- BSON walk ---- */

/* What a walk collects. */
enum mg_walk_mode {
	MG_WALK_COMMAND = 0, /* a request's command document */
	MG_WALK_SHAPE = 1,   /* a document whose whole shape is fingerprinted */
	MG_WALK_REPLY = 2,   /* a reply document: ok, code, n, nModified, cursor.id */
};

enum mg_walk_state {
	MG_ST_DOC = 0,	 /* a document's int32 length at pos */
	MG_ST_TYPE = 1,	 /* an element's type byte, or a document's terminating NUL */
	MG_ST_NAME = 2,	 /* an element's name bytes */
	MG_ST_STR = 3,	 /* string value bytes (str_left of them) */
	MG_ST_CSTRS = 4, /* regex value: str_left C strings to skip */
};

/* What string bytes feed. */
#define MG_STR_FP (1 << 0) /* the fingerprint */
#define MG_STR_DB (1 << 1) /* the $db hash */

/* What a walk found; the fingerprint goes on from one walk to the next (body, sequence). */
struct mg_result {
	__u64 fp;	 /* FNV-1a 64 of the shape */
	__u64 first_int; /* the first element's value when an integer (getMore's cursor id) */
	__u64 cursor_id; /* reply: cursor.id */
	__u64 n;	 /* reply: n */
	__u64 n_modified;
	__u32 db_hash;	/* FNV-1a 32 of $db, 0 when not seen */
	__u32 cmd_hash; /* FNV-1a 32 of the command name */
	__s32 code;
	__u8 mode; /* in: enum mg_walk_mode */
	__u8 filter_taken;
	__u8 ok_found;
	__u8 ok;
	__u8 code_found;
	__u8 n_found;
	__u8 nmod_found;
	__u8 cursor_found;
};

/* The walk itself: on the stack of dbtap_mg_walk() (bpf_loop's context must be). */
struct mg_walk {
	struct mg_result r;
	__u32 pos;
	__u32 end; /* bytes readable in the scratch end here */
	__u32 name_hash;
	__u32 str_left;
	__u8 depth; /* open documents: the top one is 1 */
	__u8 state;
	__u8 type; /* of the element being read */
	__u8 mode;
	__u8 shape_from;   /* depth from which elements are fingerprinted, 0 = none */
	__u8 arr_mask;	   /* bit d-1: document d is an array */
	__u8 scalar_mask;  /* bit d-1: the last element of array d was a scalar */
	__u8 first_only;   /* bit d-1: only the first element of document d is walked */
	__u8 seen_mask;	   /* bit d-1: document d had an element */
	__u8 str_use;	   /* MG_STR_* */
	__u8 cursor_depth; /* reply: depth of the cursor document, 0 = not in it */
	__u8 elems;	   /* top-level elements seen */
};

static __always_inline __u8 mg_bit(__u8 depth)
{
	return (__u8)(1u << ((depth - 1) & (MG_MAX_DEPTH - 1)));
}

static __always_inline bool mg_shaping(struct mg_walk *w)
{
	return w->shape_from && w->depth >= w->shape_from;
}

static __always_inline void mg_rfeed(struct mg_result *r, __u8 c)
{
	r->fp = mg_fp_step(r->fp, c);
}

static __always_inline void mg_feed(struct mg_walk *w, __u8 c)
{
	mg_rfeed(&w->r, c);
}

/* Open the document whose int32 length is at pos (@array: an array). 0, or -1 when bad. */
static __always_inline int mg_push(struct scratch *s, struct conn_state *c, struct mg_walk *w,
				   bool array)
{
	__u32 len = mg_le32(s, w->pos), end;

	if (len < BSON_MIN_DOC_LEN || len > MG_MAX_MSG_LEN || w->depth >= MG_MAX_DEPTH)
		return -1;
	end = w->pos + len;
	if (w->depth && end > c->mongo.frame_end[bound((__u32)w->depth - 1, MG_MAX_DEPTH - 1)])
		return -1;
	w->depth++;
	c->mongo.frame_end[bound((__u32)w->depth - 1, MG_MAX_DEPTH - 1)] = end;
	w->arr_mask &= ~mg_bit(w->depth);
	w->scalar_mask &= ~mg_bit(w->depth);
	w->first_only &= ~mg_bit(w->depth);
	w->seen_mask &= ~mg_bit(w->depth);
	if (array)
		w->arr_mask |= mg_bit(w->depth);
	if (mg_shaping(w))
		mg_feed(w, array ? MG_FP_ARR : MG_FP_DOC);
	w->pos += 4;
	w->state = MG_ST_TYPE;
	return 0;
}

/* Bytes of the value of type @t at pos, or -1 when @t is not a BSON type. */
static __always_inline __s64 mg_value_len(struct scratch *s, struct mg_walk *w, __u8 t)
{
	switch (t) {
	case BSON_UNDEFINED:
	case BSON_NULL:
	case BSON_MINKEY:
	case BSON_MAXKEY:
		return 0;
	case BSON_BOOL:
		return 1;
	case BSON_INT32:
		return 4;
	case BSON_DOUBLE:
	case BSON_DATETIME:
	case BSON_TIMESTAMP:
	case BSON_INT64:
		return 8;
	case BSON_OBJECTID:
		return BSON_OID_LEN;
	case BSON_DECIMAL128:
		return BSON_DEC128_LEN;
	case BSON_STRING:
	case BSON_JS:
	case BSON_SYMBOL:
		return 4 + (__s64)mg_le32(s, w->pos);
	case BSON_DBPOINTER:
		return 4 + (__s64)mg_le32(s, w->pos) + BSON_OID_LEN;
	case BSON_BINARY:
		return 5 + (__s64)mg_le32(s, w->pos);
	case BSON_DOCUMENT:
	case BSON_ARRAY:
	case BSON_JS_SCOPE:
		return (__s64)mg_le32(s, w->pos);
	case BSON_REGEX:
		return -2; /* two C strings */
	}
	return -1;
}

/* Bytes of a value of type @t the walk reads or needs to size it: it stops where they are not
 * all in the view, so that nothing past it is ever read. */
static __always_inline __u32 mg_value_need(__u8 t)
{
	switch (t) {
	case BSON_BOOL:
		return 1;
	case BSON_INT32:
		return 4;
	case BSON_DOUBLE:
	case BSON_DATETIME:
	case BSON_TIMESTAMP:
	case BSON_INT64:
		return 8;
	case BSON_OBJECTID:
		return BSON_OID_LEN;
	case BSON_DECIMAL128:
		return BSON_DEC128_LEN;
	case BSON_STRING:
	case BSON_JS:
	case BSON_SYMBOL:
	case BSON_DBPOINTER:
	case BSON_BINARY:
	case BSON_DOCUMENT:
	case BSON_ARRAY:
	case BSON_JS_SCOPE:
		return 4; /* the int32 length */
	}
	return 0;
}

/* An integer-ish value (int32, int64, double's bits, bool) at pos: nonzero test and value. */
static __always_inline __u64 mg_int_value(struct scratch *s, struct mg_walk *w, __u8 t)
{
	switch (t) {
	case BSON_INT32:
		return (__u64)(__s64)(__s32)mg_le32(s, w->pos);
	case BSON_INT64:
		return mg_le64(s, w->pos);
	case BSON_BOOL:
		return sb(s, w->pos);
	case BSON_DOUBLE:
		/* only "is it zero" matters for doubles: +0.0 and -0.0 */
		return mg_le64(s, w->pos) & ~(1ull << 63);
	}
	return 0;
}

static __always_inline bool mg_is_int(__u8 t)
{
	return t == BSON_INT32 || t == BSON_INT64 || t == BSON_BOOL || t == BSON_DOUBLE;
}

/* The value of the element just named: remember, descend or skip. 0, or -1 to stop. */
static __always_inline int mg_value(struct scratch *s, struct conn_state *c, struct mg_walk *w)
{
	__u8 t = w->type, d = w->depth;
	bool top = d == 1, doc = t == BSON_DOCUMENT || t == BSON_ARRAY;
	__s64 len;

	if (w->pos + mg_value_need(t) > w->end)
		return -1;

	if (w->mode == MG_WALK_COMMAND && top) {
		if (w->elems++ == 0) {
			w->r.cmd_hash = w->name_hash;
			if (t == BSON_STRING && mg_le32(s, w->pos) >= 1) {
				mg_feed(w, MG_FP_COLL);
				w->str_left = mg_le32(s, w->pos) - 1;
				w->str_use = MG_STR_FP;
				w->pos += 4;
				w->state = MG_ST_STR;
				return 0;
			}
			if (t == BSON_INT32 || t == BSON_INT64)
				w->r.first_int = mg_int_value(s, w, t);
		} else if (w->name_hash == MG_H_DB && t == BSON_STRING && mg_le32(s, w->pos) >= 1) {
			mg_feed(w, MG_FP_DB);
			w->r.db_hash = DBTAP_FNV32_OFFSET;
			w->str_left = mg_le32(s, w->pos) - 1;
			w->str_use = MG_STR_FP | MG_STR_DB;
			w->pos += 4;
			w->state = MG_ST_STR;
			return 0;
		} else if (doc && !w->r.filter_taken &&
			   (w->name_hash == MG_H_FILTER || w->name_hash == MG_H_QUERY ||
			    w->name_hash == MG_H_PIPELINE || w->name_hash == MG_H_UPDATES ||
			    w->name_hash == MG_H_DELETES)) {
			w->r.filter_taken = 1;
			w->shape_from = d + 1;
			mg_feed(w, MG_FP_FILTER);
			if (mg_push(s, c, w, t == BSON_ARRAY))
				return -1;
			if (w->name_hash == MG_H_UPDATES || w->name_hash == MG_H_DELETES)
				w->first_only |= mg_bit(w->depth); /* the first statement */
			return 0;
		}
	} else if (w->mode == MG_WALK_REPLY && top) {
		if (w->name_hash == MG_H_OK && mg_is_int(t)) {
			w->r.ok_found = 1;
			w->r.ok = mg_int_value(s, w, t) != 0;
		} else if (w->name_hash == MG_H_CODE && (t == BSON_INT32 || t == BSON_INT64)) {
			w->r.code_found = 1;
			w->r.code = (__s32)mg_int_value(s, w, t);
		} else if (w->name_hash == MG_H_N && (t == BSON_INT32 || t == BSON_INT64)) {
			w->r.n_found = 1;
			w->r.n = mg_int_value(s, w, t);
		} else if (w->name_hash == MG_H_NMODIFIED && (t == BSON_INT32 || t == BSON_INT64)) {
			w->r.nmod_found = 1;
			w->r.n_modified = mg_int_value(s, w, t);
		} else if (w->name_hash == MG_H_CURSOR && t == BSON_DOCUMENT && !w->cursor_depth) {
			if (mg_push(s, c, w, false))
				return -1;
			w->cursor_depth = w->depth;
			return 0;
		}
	} else if (w->mode == MG_WALK_REPLY && d == w->cursor_depth) {
		if (w->name_hash == MG_H_ID && t == BSON_INT64) {
			w->r.cursor_found = 1;
			w->r.cursor_id = mg_int_value(s, w, t);
		}
	} else if (mg_shaping(w)) {
		bool in_array = w->arr_mask & mg_bit(d);

		if (doc) {
			w->scalar_mask &= ~mg_bit(d);
			if (d < MG_MAX_DEPTH)
				return mg_push(s, c, w, t == BSON_ARRAY);
			mg_feed(w, MG_FP_DEEP);
		} else if (!in_array || !(w->scalar_mask & mg_bit(d))) {
			mg_feed(w, MG_FP_VALUE);
			if (in_array)
				w->scalar_mask |= mg_bit(d);
		}
	}
	len = mg_value_len(s, w, t);
	if (len == -2) {
		w->str_left = 2;
		w->state = MG_ST_CSTRS;
		return 0;
	}
	if (len < 0 || len > MG_MAX_MSG_LEN)
		return -1;
	w->pos += (__u32)len;
	w->state = MG_ST_TYPE;
	return 0;
}

/* One step of the walk: a byte of a name or string, or a whole value. 0 to go on, 1 to stop.
 * Global: verified once, whatever state the walk is in. */
__noinline int dbtap_mg_step(struct scratch *s, struct conn_state *c, struct mg_walk *w)
{
	__u32 pos, fe;
	__u8 ch, d;

	if (!s || !c || !w)
		return 1;
	pos = w->pos;
	d = w->depth;
	if (pos >= w->end)
		return 1;
	switch (w->state) {
	case MG_ST_DOC:
		if (pos + 4 > w->end)
			return 1;
		return mg_push(s, c, w, false) ? 1 : 0;
	case MG_ST_TYPE:
		ch = sb(s, pos);
		w->pos = pos + 1;
		if (!d)
			return 1;
		if (ch == 0) { /* end of document d */
			if (mg_shaping(w))
				mg_feed(w,
					(w->arr_mask & mg_bit(d)) ? MG_FP_ARR_END : MG_FP_DOC_END);
			if (d == w->cursor_depth)
				w->cursor_depth = 0;
			if (d == w->shape_from && w->mode == MG_WALK_COMMAND)
				w->shape_from = 0; /* the filter ended */
			w->depth = d - 1;
			if (!w->depth) {
				return 1;
			}
			return 0;
		}
		if ((w->first_only & mg_bit(d)) && (w->seen_mask & mg_bit(d))) {
			/* the rest of the document is not walked: to its terminating NUL */
			fe = c->mongo.frame_end[bound((__u32)d - 1, MG_MAX_DEPTH - 1)];
			if (fe - 1 < pos)
				return 1;
			w->pos = fe - 1;
			return 0;
		}
		w->seen_mask |= mg_bit(d);
		w->type = ch;
		w->name_hash = DBTAP_FNV32_OFFSET;
		w->state = MG_ST_NAME;
		return 0;
	case MG_ST_NAME:
		ch = sb(s, pos);
		w->pos = pos + 1;
		if (ch) {
			w->name_hash = dbtap_name_hash_step(w->name_hash, ch);
			if ((mg_shaping(w) && !(w->arr_mask & mg_bit(d))) ||
			    (w->mode == MG_WALK_COMMAND && d == 1 && w->elems == 0))
				mg_feed(w, ch);
			return 0;
		}
		if (mg_shaping(w) && !(w->arr_mask & mg_bit(d)))
			mg_feed(w, MG_FP_NAME);
		return mg_value(s, c, w) ? 1 : 0;
	case MG_ST_STR:
		if (!w->str_left) {
			w->pos = pos + 1; /* the NUL */
			w->state = MG_ST_TYPE;
			return 0;
		}
		ch = sb(s, pos);
		if (w->str_use & MG_STR_FP)
			mg_feed(w, ch);
		if (w->str_use & MG_STR_DB)
			w->r.db_hash = dbtap_name_hash_step(w->r.db_hash, ch);
		w->str_left--;
		w->pos = pos + 1;
		return 0;
	case MG_ST_CSTRS:
		ch = sb(s, pos);
		w->pos = pos + 1;
		if (!ch && !--w->str_left)
			w->state = MG_ST_TYPE;
		return 0;
	}
	return 1;
}

struct mg_walk_ctx {
	struct scratch *s;
	struct conn_state *c;
	struct mg_walk w;
};

static long mg_walk_cb(__u64 i, void *arg)
{
	struct mg_walk_ctx *x = arg;

	/* the step returns 0 or 1: the mask says so to the verifier */
	return bound((__u32)dbtap_mg_step(x->s, x->c, &x->w), 1);
}

/* Walk the BSON document at @off, readable up to @end, in r->mode; what it finds is added to
 * @r. Global: verified once. */
__noinline int dbtap_mg_walk(struct scratch *s, struct conn_state *c, struct mg_result *r,
			     __u32 off, __u32 end)
{
	struct mg_walk_ctx x = {};
	__u8 mode;

	if (!s || !c || !r)
		return 0;
	x.s = s;
	x.c = c;
	__builtin_memcpy(&x.w.r, r, sizeof(x.w.r));
	mode = r->mode;
	x.w.pos = off;
	x.w.end = end;
	x.w.mode = mode;
	x.w.state = MG_ST_DOC;
	x.w.shape_from = mode == MG_WALK_SHAPE ? 1 : 0;
	bpf_loop(REASM_MAX + MG_MAX_DEPTH, mg_walk_cb, &x, 0);
	__builtin_memcpy(r, &x.w.r, sizeof(x.w.r));
	return 0;
}

/* ---- requests ---- */

struct mg_cstr {
	struct scratch *s;
	__u32 off;
	__u32 end;
	__u32 hash; /* FNV-1a 32 of the bytes (before the first '.' when db_only) */
	__u32 len;
	__u8 done;
	__u8 db_only; /* stop hashing at the first '.' (fullCollectionName -> database) */
	__u8 dot;
};

static long mg_cstr_cb(__u64 i, void *arg)
{
	struct mg_cstr *w = arg;
	__u32 p = w->off + (__u32)i;
	__u8 c;

	if (p >= w->end)
		return 1;
	c = sb(w->s, p);
	if (!c) {
		w->done = 1;
		return 1;
	}
	if (w->db_only && c == '.')
		w->dot = 1;
	if (!w->dot)
		w->hash = dbtap_name_hash_step(w->hash, c);
	w->len++;
	return 0;
}

/* FNV-1a 32 and length of the C string at @off; -1 when its NUL is not in the view. */
static __always_inline int mg_cstr(struct scratch *s, __u32 off, __u32 end, bool db_only,
				   __u32 *ret_hash, __u32 *ret_len)
{
	struct mg_cstr w = {
		.s = s, .off = off, .end = end, .hash = DBTAP_FNV32_OFFSET, .db_only = db_only};

	bpf_loop(MG_NAME_MAX, mg_cstr_cb, &w, 0);
	if (!w.done)
		return -1;
	*ret_hash = w.hash;
	*ret_len = w.len;
	return 0;
}

struct mg_sections {
	struct scratch *s;
	__u32 pos;
	__u32 end;  /* where the sections end (before the checksum) */
	__u32 view; /* readable bytes end */
	__u32 body; /* offset of the body document, 0 = none */
	__u32 seq;  /* offset of the first document sequence's identifier, 0 = none */
	__u32 seq_end;
};

static long mg_sections_cb(__u64 i, void *arg)
{
	struct mg_sections *w = arg;
	__u32 p = w->pos, len;
	__u8 kind;

	if (p + 1 + 4 > w->view || p >= w->end)
		return 1;
	kind = sb(w->s, p);
	len = mg_le32(w->s, p + 1);
	if (kind == MG_SECTION_BODY) {
		if (!w->body)
			w->body = p + 1;
		if (len < BSON_MIN_DOC_LEN)
			return 1;
		w->pos = p + 1 + len;
	} else if (kind == MG_SECTION_SEQUENCE) {
		if (len < 4 + 1)
			return 1;
		if (!w->seq) {
			w->seq = p + 1 + 4;
			w->seq_end = p + 1 + len;
		}
		w->pos = p + 1 + len;
	} else {
		return 1;
	}
	return 0;
}

/* The fingerprint of a request walked in @w: never 0. */
static __always_inline __u64 mg_hash(struct mg_result *w)
{
	return w->fp ? w->fp : 1;
}

/* Queue (or, with @no_reply, count at once) the command walked in @w. */
static __always_inline void mg_command(struct scratch *s, struct conn_state *c, struct mg_result *w,
				       __u32 msg, __u32 view_len, __u32 msg_len, __u32 request_id,
				       bool no_reply)
{
	struct stmt_key k = {.sk = c->instance, .kind = MG_STMT_KIND_CURSOR};
	struct stmt_val *sv;
	struct conn_op *o;
	__u8 kind = MG_OP_COMMAND;
	__u64 h = mg_hash(w);
	/* view_len is in [MG_HDR_LEN, REASM_MAX]: said so to the verifier */
	__u32 tlen = bound(view_len - 1, REASM_MASK) + 1;

	if (w->db_hash)
		c->db_id = w->db_hash;
	c->mongo.getmore_key = 0;
	if (w->cmd_hash == MG_H_GETMORE && w->first_int) {
		k.name_hash = (__u32)w->first_int ^ (__u32)(w->first_int >> 32);
		sv = bpf_map_lookup_elem(&stmts, &k);
		kind = MG_OP_GETMORE;
		c->mongo.getmore_key = k.name_hash;
		if (sv)
			h = sv->query_hash; /* the series of the find/aggregate */
		else
			emit_text_once(s, DBTAP_SYS_MONGODB, h, msg, tlen,
				       msg_len > view_len ? DBTAP_TEXT_F_TRUNCATED : 0);
	} else {
		if (w->cmd_hash == MG_H_FIND || w->cmd_hash == MG_H_AGGREGATE)
			kind = MG_OP_CURSOR;
		emit_text_once(s, DBTAP_SYS_MONGODB, h, msg, tlen,
			       msg_len > view_len ? DBTAP_TEXT_F_TRUNCATED : 0);
	}
	o = op_push(s, c, kind, h, 0);
	if (!o)
		return;
	o->tag = request_id;
	if (no_reply)
		op_finish(s, c, o, false, 0);
}

/* An OP_MSG request at @msg (@view_len bytes readable of @msg_len). */
static __always_inline void mg_msg_request(struct scratch *s, struct conn_state *c,
					   struct mg_result *w, __u32 msg, __u32 view_len,
					   __u32 msg_len)
{
	__u32 flags = mg_le32(s, msg + MG_HDR_LEN), end = msg + msg_len, id_hash = 0, id_len = 0;
	struct mg_sections sec = {.s = s, .pos = msg + MG_HDR_LEN + 4, .view = msg + view_len};

	if (flags & MG_MSG_FLAG_CHECKSUM)
		end -= MG_CHECKSUM_LEN;
	sec.end = end;
	bpf_loop(MG_MAX_SECTIONS, mg_sections_cb, &sec, 0);
	if (!sec.body)
		return;
	w->mode = MG_WALK_COMMAND;
	dbtap_mg_walk(s, c, w, sec.body, msg + view_len);
	/* a write's statements as a document sequence: the first one's shape */
	if (sec.seq && !w->filter_taken &&
	    mg_cstr(s, sec.seq, msg + view_len, false, &id_hash, &id_len) == 0 &&
	    (id_hash == MG_H_UPDATES || id_hash == MG_H_DELETES) &&
	    sec.seq + id_len + 1 < sec.seq_end) {
		w->filter_taken = 1;
		mg_rfeed(w, MG_FP_FILTER);
		mg_rfeed(w, MG_FP_ARR);
		w->mode = MG_WALK_SHAPE;
		dbtap_mg_walk(s, c, w, sec.seq + id_len + 1, msg + view_len);
		mg_rfeed(w, MG_FP_ARR_END);
	}
	mg_command(s, c, w, msg, view_len, msg_len, mg_le32(s, msg + MG_OFF_REQUEST_ID),
		   flags & MG_MSG_FLAG_MORE);
}

/* An OP_QUERY (legacy handshake): the database from fullCollectionName, then the command. */
static __always_inline void mg_query_request(struct scratch *s, struct conn_state *c,
					     struct mg_result *w, __u32 msg, __u32 view_len,
					     __u32 msg_len)
{
	__u32 db_hash = 0, name_len = 0, doc;

	if (mg_cstr(s, msg + MG_OFF_QUERY_NAME, msg + view_len, true, &db_hash, &name_len))
		return;
	doc = msg + MG_OFF_QUERY_NAME + name_len + 1 + MG_QUERY_SKIP_RETURN;
	w->mode = MG_WALK_COMMAND;
	dbtap_mg_walk(s, c, w, doc, msg + view_len);
	if (!w->db_hash) {
		w->db_hash = db_hash;
		mg_rfeed(w, MG_FP_DB);
		mg_rfeed(w, (__u8)db_hash);
		mg_rfeed(w, (__u8)(db_hash >> 8));
		mg_rfeed(w, (__u8)(db_hash >> 16));
		mg_rfeed(w, (__u8)(db_hash >> 24));
	}
	mg_command(s, c, w, msg, view_len, msg_len, mg_le32(s, msg + MG_OFF_REQUEST_ID), false);
}

/* Hash of a compressed message: what is visible (original opcode, compressor). */
static __always_inline __u64 mg_compressed_hash(__u32 original, __u8 compressor)
{
	__u64 h = DBTAP_FNV64_OFFSET;
	__u32 i;

	h = mg_fp_step(h, 'Z');
	for (i = 0; i < 4; i++)
		h = mg_fp_step(h, (__u8)(original >> (i * 8)));
	return mg_fp_step(h, compressor);
}

/* ---- replies ---- */

/* The code of a failed reply as decimal text into s->ch.done.status ("?" without one). */
static __always_inline void mg_status(struct scratch *s, struct mg_result *w)
{
	char *st = s->ch.done.status;
	__u32 v, n = 0, i, div = 1000000000u;
	bool started = false;

	__builtin_memset(st, 0, DBTAP_STATUS_LEN);
	if (!w->code_found) {
		st[0] = '?';
		return;
	}
	v = (__u32)w->code;
	if (w->code < 0) {
		st[n++] = '-';
		v = (__u32)(-(__s64)w->code);
	}
	for (i = 0; i < 10; i++) {
		__u32 digit = v / div;

		if (digit || started || i == 9) {
			st[n & (DBTAP_STATUS_LEN - 1)] = '0' + (char)digit;
			n++;
			started = true;
		}
		v -= digit * div;
		div /= 10;
	}
}

/* The queued op @response_to answers, dropping older ones that got no reply; NULL if none. */
static __always_inline struct conn_op *mg_match(struct conn_state *c, __u32 response_to)
{
	struct conn_op *o;
	__u32 i, found = CONN_MAX_OPS;

	for (i = 0; i < CONN_MAX_OPS; i++) {
		if ((__u8)(c->head + i) == c->tail)
			break;
		o = &c->ops[(c->head + i) & (CONN_MAX_OPS - 1)];
		if (o->tag == response_to) {
			found = i;
			break;
		}
	}
	if (found == CONN_MAX_OPS)
		return NULL;
	if (found)
		count(DBTAP_CNT_DESYNC); /* requests answered never (or unseen) */
	c->head += (__u8)found;
	return op_front(c);
}

/* A reply walked in @w (@failed: the reply says so outside the document) answering
 * @response_to; @exhaust: more replies follow without a request, the next one answering
 * @request_id. */
static __always_inline void mg_reply(struct scratch *s, struct conn_state *c, struct mg_result *w,
				     __u32 response_to, __u32 request_id, bool failed, bool exhaust)
{
	struct stmt_key k = {.sk = c->instance, .kind = MG_STMT_KIND_CURSOR};
	struct stmt_val v = {};
	struct conn_op *o = mg_match(c, response_to), *next;
	__u64 rows = w->nmod_found ? w->n_modified : w->n_found ? w->n : 0, h;
	__u8 kind;

	if (!o)
		return;
	failed = failed || (w->ok_found && !w->ok);
	h = o->query_hash;
	kind = o->kind;
	if (kind == MG_OP_CURSOR && !failed && w->cursor_found && w->cursor_id) {
		k.name_hash = (__u32)w->cursor_id ^ (__u32)(w->cursor_id >> 32);
		v.query_hash = h;
		if (bpf_map_update_elem(&stmts, &k, &v, BPF_ANY))
			count(DBTAP_CNT_DROP_STMT_FULL);
	} else if (kind == MG_OP_GETMORE && c->mongo.getmore_key &&
		   (failed || (w->cursor_found && !w->cursor_id))) {
		k.name_hash = c->mongo.getmore_key;
		bpf_map_delete_elem(&stmts, &k);
	}
	if (failed)
		mg_status(s, w);
	op_finish(s, c, o, failed, rows);
	if (exhaust && !failed) {
		next = op_push(s, c, kind == MG_OP_CURSOR ? MG_OP_GETMORE : kind, h, 0);
		if (next)
			next->tag = request_id;
	}
}

/* ---- one message ---- */

/*
 * One message at @msg in the scratch, @view_len of its @msg_len bytes readable there (the
 * first REASM_MAX at most). Counts what it completes. Global: verified once.
 */
__noinline int dbtap_mg_message(struct scratch *s, struct conn_state *c, __u32 msg, __u32 view_len,
				__u32 msg_len)
{
	struct mg_result w = {};
	__u32 opcode, flags, response_to, request_id;
	struct conn_op *o;

	if (!s || !c || view_len < MG_HDR_LEN)
		return 0;
	w.fp = DBTAP_FNV64_OFFSET;
	s->ch.done_pending = 0;
	opcode = mg_le32(s, msg + MG_OFF_OPCODE);
	request_id = mg_le32(s, msg + MG_OFF_REQUEST_ID);
	response_to = mg_le32(s, msg + MG_OFF_RESPONSE_TO);
	if (s->ch.dir == IO_RECV) {
		if (opcode == MG_OPCODE_MSG && view_len >= MG_HDR_LEN + 4)
			mg_msg_request(s, c, &w, msg, view_len, msg_len);
		else if (opcode == MG_OPCODE_QUERY)
			mg_query_request(s, c, &w, msg, view_len, msg_len);
		else if (opcode == MG_OPCODE_COMPRESSED && view_len >= MG_COMP_HDR_LEN) {
			__u64 h = mg_compressed_hash(mg_le32(s, msg + MG_OFF_COMP_ORIGINAL),
						     sb(s, msg + MG_OFF_COMP_ID));

			count(DBTAP_CNT_COMPRESSED);
			emit_text_once(s, DBTAP_SYS_MONGODB, h, msg, MG_COMP_HDR_LEN, 0);
			o = op_push(s, c, MG_OP_COMPRESSED, h, DBTAP_AGG_F_UNKNOWN_STMT);
			if (o)
				o->tag = request_id;
		}
	} else {
		if (opcode == MG_OPCODE_MSG && view_len >= MG_HDR_LEN + 4 + 1) {
			flags = mg_le32(s, msg + MG_HDR_LEN);
			/* the body is the only section a reply has */
			w.mode = MG_WALK_REPLY;
			if (sb(s, msg + MG_HDR_LEN + 4) == MG_SECTION_BODY)
				dbtap_mg_walk(s, c, &w, msg + MG_HDR_LEN + 4 + 1, msg + view_len);
			mg_reply(s, c, &w, response_to, request_id, false,
				 flags & MG_MSG_FLAG_MORE);
		} else if (opcode == MG_OPCODE_REPLY && view_len >= MG_OFF_REPLY_DOCS) {
			flags = mg_le32(s, msg + MG_HDR_LEN);
			w.mode = MG_WALK_REPLY;
			dbtap_mg_walk(s, c, &w, msg + MG_OFF_REPLY_DOCS, msg + view_len);
			mg_reply(s, c, &w, response_to, request_id, flags & MG_REPLY_QUERY_FAILURE,
				 false);
		} else if (opcode == MG_OPCODE_COMPRESSED) {
			count(DBTAP_CNT_COMPRESSED);
			mg_reply(s, c, &w, response_to, request_id, false, false);
		}
	}
	if (s->ch.done_pending) {
		s->ch.done_pending = 0;
		dbtap_complete(s, c);
	}
	return 0;
}

/* ---- framing and reassembly ---- */

static __always_inline bool mg_opcode_ok(__u32 op)
{
	switch (op) {
	case MG_OPCODE_REPLY:
	case MG_OPCODE_UPDATE:
	case MG_OPCODE_INSERT:
	case MG_OPCODE_QUERY:
	case MG_OPCODE_GET_MORE:
	case MG_OPCODE_DELETE:
	case MG_OPCODE_KILL_CURSORS:
	case MG_OPCODE_COMPRESSED:
	case MG_OPCODE_MSG:
		return true;
	}
	return false;
}

static __always_inline bool mg_header_ok(__u32 len, __u32 op)
{
	return len >= MG_HDR_LEN && len <= MG_MAX_MSG_LEN && mg_opcode_ok(op);
}

/* Bytes of a message the decoder reads: the first REASM_MAX of the ones it decodes. */
static __always_inline __u32 mg_want(__u32 op, __u32 len)
{
	if (op != MG_OPCODE_MSG && op != MG_OPCODE_QUERY && op != MG_OPCODE_REPLY &&
	    op != MG_OPCODE_COMPRESSED)
		return MG_HDR_LEN;
	return len < REASM_MAX ? len : REASM_MAX;
}

/* Decode a message collected in @r: copy it next to the chunk and hand it over. */
static __always_inline void mg_reasm_decode(struct scratch *s, struct conn_state *c,
					    struct reasm *r)
{
	__u32 have = r->have;

	if (have < MG_HDR_LEN || have > REASM_MAX)
		return;
	if (bpf_probe_read_kernel(&s->buf[REASM_AT], bound(have - 1, REASM_MASK) + 1, r->buf))
		return;
	dbtap_mg_message(s, c, REASM_AT, have, mg_le32(s, REASM_AT));
}

/* Read the 16-byte header at @pos (scratch, or user memory past the scratch). */
static __always_inline int mg_header(struct scratch *s, __u32 pos, __u32 *ret_len, __u32 *ret_op)
{
	__u32 h[MG_HDR_LEN / 4];

	if (pos + MG_HDR_LEN <= s->ch.avail) {
		*ret_len = mg_le32(s, pos);
		*ret_op = mg_le32(s, pos + MG_OFF_OPCODE);
		return 0;
	}
	if (!s->ch.user_buf || bpf_probe_read_user(h, sizeof(h), (void *)(s->ch.user_buf + pos)))
		return -1;
	/* little-endian hosts only (x86-64, arm64): the fields are little-endian */
	*ret_len = h[0];
	*ret_op = h[MG_OFF_OPCODE / 4];
	return 0;
}

struct mg_frame_walk {
	struct scratch *s;
	struct conn_state *c;
	struct frame_state *fs;
};

/* A message whose header is known starts at @pos: decode it from the chunk when the bytes the
 * decoder needs are there, else collect it across chunks. Moves ch.pos past it. */
static __always_inline void mg_take(struct scratch *s, struct conn_state *c, struct frame_state *fs,
				    __u32 pos, __u32 op, __u32 len)
{
	__u32 want = mg_want(op, len), end = pos + len;
	struct reasm *r;

	if (pos + want <= s->ch.avail) {
		dbtap_mg_message(s, c, pos, want, len);
	} else {
		r = reasm_start(s, want);
		if (r) {
			reasm_append(s, r, pos, s->ch.total - pos);
			if (r->have >= want)
				mg_reasm_decode(s, c, r);
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

static long mg_frame_cb(__u64 i, void *arg)
{
	struct mg_frame_walk *w = arg;
	struct scratch *s = w->s;
	__u32 pos = s->ch.pos, len, op;
	struct reasm *r;

	if (pos >= s->ch.total)
		return 1;
	if (s->ch.total - pos < MG_HDR_LEN) {
		/* header cut by the chunk's end: collect it */
		r = reasm_start(s, MG_HDR_LEN);
		if (r) {
			reasm_append(s, r, pos, s->ch.total - pos);
			w->fs->reasm = FRAME_REASM_TYPED;
			w->fs->skip = 0;
		}
		s->ch.pos = s->ch.total;
		return 1;
	}
	if (mg_header(s, pos, &len, &op) < 0) {
		count(DBTAP_CNT_DROP_READ);
		s->ch.stop = 1;
		return 1;
	}
	if (!mg_header_ok(len, op)) {
		count(DBTAP_CNT_DESYNC);
		s->ch.stop = 1;
		return 1;
	}
	mg_take(s, w->c, w->fs, pos, op, len);
	return w->fs->reasm || w->fs->skip;
}

/*
 * Continue a message collected across chunks: first its header (when cut), then the bytes
 * the decoder needs; decode when they are all there, and skip the rest of the message.
 * Global: verified once.
 */
__noinline int dbtap_mg_continue(struct scratch *s, struct conn_state *c, struct frame_state *fs)
{
	__u64 key;
	struct reasm *r;
	__u32 n, len, op;

	if (!s || !c || !fs)
		return 0;
	key = reasm_key(s);
	r = bpf_map_lookup_elem(&reasms, &key);
	if (!r) {
		fs->reasm = FRAME_REASM_NONE;
		count(DBTAP_CNT_DESYNC);
		return 0;
	}
	if (r->have < MG_HDR_LEN) {
		n = MG_HDR_LEN - r->have;
		if (n > s->ch.total - s->ch.pos)
			n = s->ch.total - s->ch.pos;
		reasm_append(s, r, s->ch.pos, n);
		s->ch.pos += n;
		if (r->have < MG_HDR_LEN)
			return 0; /* still not a whole header */
		len = (__u32)r->buf[0] | ((__u32)r->buf[1] << 8) | ((__u32)r->buf[2] << 16) |
		      ((__u32)r->buf[3] << 24);
		op = (__u32)r->buf[12] | ((__u32)r->buf[13] << 8) | ((__u32)r->buf[14] << 16) |
		     ((__u32)r->buf[15] << 24);
		if (!mg_header_ok(len, op)) {
			fs->reasm = FRAME_REASM_NONE;
			count(DBTAP_CNT_DESYNC);
			s->ch.stop = 1;
			return 0;
		}
		r->want = mg_want(op, len);
		fs->skip = len - MG_HDR_LEN;
	}
	n = fs->skip < s->ch.total - s->ch.pos ? fs->skip : s->ch.total - s->ch.pos;
	reasm_append(s, r, s->ch.pos, n);
	fs->skip -= n;
	s->ch.pos += n;
	if (r->have >= r->want || !fs->skip) {
		fs->reasm = FRAME_REASM_NONE;
		mg_reasm_decode(s, c, r);
	}
	return 0;
}

/* Frame the chunk from ch.pos on, continuing a message left by the last chunk. */
static __always_inline void mg_frame(struct scratch *s, struct conn_state *c)
{
	struct frame_state *fs = s->ch.dir == IO_RECV ? &c->req : &c->resp;
	struct mg_frame_walk w = {.s = s, .c = c, .fs = fs};
	__u32 n;

	if (fs->reasm == FRAME_REASM_TYPED) {
		dbtap_mg_continue(s, c, fs);
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
	if (s->ch.pos < s->ch.total && !s->ch.stop && !fs->reasm && !fs->skip)
		bpf_loop(MG_MAX_MSGS_PER_CHUNK, mg_frame_cb, &w, 0);
}

/* ---- connection start ---- */

/*
 * First bytes of a connection: a TLS ClientHello makes it encrypted (ignored); a header that
 * cannot be MongoDB's makes it undecodable; anything else is framed. The server speaking
 * first means the connection was open before capture started.
 */
static __always_inline void mg_start(struct scratch *s, struct conn_state *c)
{
	__u32 avail = s->ch.avail;

	if (s->ch.dir == IO_RECV && avail >= 2 && sb(s, 0) == MG_TLS_HANDSHAKE &&
	    sb(s, 1) == MG_TLS_MAJOR) {
		c->flags |= DBTAP_CONN_F_ENCRYPTED;
		c->phase = MG_PHASE_IGNORE;
		count(DBTAP_CNT_ENCRYPTED);
	} else if (avail >= MG_HDR_LEN && !mg_header_ok(mg_le32(s, 0), mg_le32(s, MG_OFF_OPCODE))) {
		c->flags |= DBTAP_CONN_F_UNDECODABLE;
		c->phase = MG_PHASE_IGNORE;
		count(DBTAP_CNT_UNDECODABLE);
	} else {
		if (s->ch.dir == IO_SEND)
			c->flags |= DBTAP_CONN_F_MIDSTREAM;
		c->phase = MG_PHASE_NORMAL;
	}
	emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
}

/* Decode one chunk of MongoDB connection @c. Global: verified once. */
__noinline int dbtap_mongo_chunk(struct scratch *s, struct conn_state *c)
{

	if (!s || !c)
		return 0;
	if (c->phase == MG_PHASE_START)
		mg_start(s, c);
	if (c->phase == MG_PHASE_NORMAL)
		mg_frame(s, c);
	return 0;
}

#endif /* DBTAP_MONGO_BPF_H */
