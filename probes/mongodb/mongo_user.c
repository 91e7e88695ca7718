// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mongo_user.c - MongoDB: the userspace half. A text record is the first bytes of a request
 * message as the kernel decoder read them (probes/mongodb/mongo.bpf.h): this walks the same
 * BSON with the same rules, bounds-checked, into `find users {"status": ?, "age": {"$gt": ?}}`
 * (command, collection, shape of the filter; values only with raw text), and finds the $db
 * name the kernel hashed into db_id.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/mongodb/mongo_user.h"
#include "probes/mongodb/mongo_wire.h"

#define MG_MAX_DEPTH 8 /* as MG_MAX_DEPTH in mongo_state.h */

/* ---- output buffer ---- */

struct out {
	char *buf;
	size_t len;
	size_t cap;
	int err;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	char *nb;

	if (o->err)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->len + n + 1) * 2;

		nb = realloc(o->buf, cap);
		if (!nb) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = 0;
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* A JSON string of @n bytes (control bytes and quotes escaped). */
static void out_json(struct out *o, const uint8_t *s, size_t n)
{
	char esc[8];
	size_t i;

	out_put(o, "\"", 1);
	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)s[i];
			out_put(o, esc, 2);
		} else if (s[i] < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
			out_put(o, esc, 6);
		} else {
			out_put(o, (const char *)&s[i], 1);
		}
	}
	out_put(o, "\"", 1);
}

/* ---- bounds-checked reads ---- */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32);
}

/* Bytes of the value of type @t at @p (readable to @end), -1 when unknown or not readable. */
static int64_t value_len(uint8_t t, const uint8_t *p, const uint8_t *end)
{
	const uint8_t *q;
	int i;

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
	}
	if (t == BSON_REGEX) {
		for (q = p, i = 0; i < 2; i++) {
			q = memchr(q, 0, (size_t)(end - q));
			if (!q)
				return -1;
			q++;
		}
		return q - p;
	}
	if (end - p < 4)
		return -1;
	switch (t) {
	case BSON_STRING:
	case BSON_JS:
	case BSON_SYMBOL:
		return 4 + (int64_t)le32(p);
	case BSON_DBPOINTER:
		return 4 + (int64_t)le32(p) + BSON_OID_LEN;
	case BSON_BINARY:
		return 5 + (int64_t)le32(p);
	case BSON_DOCUMENT:
	case BSON_ARRAY:
	case BSON_JS_SCOPE:
		return (int64_t)le32(p);
	}
	return -1;
}

/* One element of a document: type, name and value, the value possibly cut by the view. */
struct elem {
	uint8_t type;
	const char *name;
	size_t name_len;
	const uint8_t *val;
	int64_t val_len; /* -1: not known (cut) */
};

/* The element at *@pp before @end; advances *@pp. 1 when one was read, 0 at the document's
 * end or where the view ends. */
static int next_elem(const uint8_t **pp, const uint8_t *end, struct elem *e)
{
	const uint8_t *p = *pp, *nul;

	if (p >= end || *p == 0)
		return 0;
	e->type = *p++;
	nul = memchr(p, 0, (size_t)(end - p));
	if (!nul)
		return 0;
	e->name = (const char *)p;
	e->name_len = (size_t)(nul - p);
	e->val = nul + 1;
	e->val_len = value_len(e->type, e->val, end);
	*pp = e->val_len >= 0 && e->val_len <= end - e->val ? e->val + e->val_len : end;
	return 1;
}

static bool is_doc(uint8_t t)
{
	return t == BSON_DOCUMENT || t == BSON_ARRAY;
}

/* A scalar's text with raw values, or "?". */
static void out_scalar(struct out *o, const struct elem *e, const uint8_t *end, bool raw)
{
	char num[64];
	double d;
	uint64_t bits;

	if (!raw) {
		out_str(o, "?");
		return;
	}
	switch (e->type) {
	case BSON_STRING:
		if (e->val_len >= 5 && e->val + e->val_len <= end) {
			out_json(o, e->val + 4, (size_t)e->val_len - 5);
			return;
		}
		break;
	case BSON_INT32:
		if (e->val + 4 <= end) {
			snprintf(num, sizeof(num), "%" PRId32, (int32_t)le32(e->val));
			out_str(o, num);
			return;
		}
		break;
	case BSON_INT64:
		if (e->val + 8 <= end) {
			snprintf(num, sizeof(num), "%" PRId64, (int64_t)le64(e->val));
			out_str(o, num);
			return;
		}
		break;
	case BSON_DOUBLE:
		if (e->val + 8 <= end) {
			bits = le64(e->val);
			memcpy(&d, &bits, sizeof(d));
			snprintf(num, sizeof(num), "%.17g", d);
			out_str(o, num);
			return;
		}
		break;
	case BSON_BOOL:
		if (e->val + 1 <= end) {
			out_str(o, *e->val ? "true" : "false");
			return;
		}
		break;
	case BSON_NULL:
		out_str(o, "null");
		return;
	}
	out_str(o, "?");
}

/*
 * The shape of the document at @p (depth @depth, readable to @end) as the kernel hashes it:
 * names kept, values "?", consecutive scalars of an array one "?", documents below
 * MG_MAX_DEPTH "…"; @first_only: only the first element (a write's first statement).
 */
static void out_shape(struct out *o, const uint8_t *p, const uint8_t *end, int depth, bool array,
		      bool first_only, bool raw)
{
	const uint8_t *q, *doc_end;
	struct elem e;
	bool first = true, prev_scalar = false;
	uint32_t len;

	out_str(o, array ? "[" : "{");
	if (end - p >= 4) {
		len = le32(p);
		doc_end = len <= (size_t)(end - p) ? p + len : end;
		q = p + 4;
		while (len >= BSON_MIN_DOC_LEN && next_elem(&q, doc_end, &e)) {
			if (array && !is_doc(e.type) && prev_scalar && !raw)
				continue;
			if (!first)
				out_str(o, ", ");
			first = false;
			if (!array) {
				out_json(o, (const uint8_t *)e.name, e.name_len);
				out_str(o, ": ");
			}
			prev_scalar = !is_doc(e.type);
			if (!is_doc(e.type))
				out_scalar(o, &e, doc_end, raw);
			else if (depth < MG_MAX_DEPTH)
				out_shape(o, e.val, doc_end, depth + 1, e.type == BSON_ARRAY, false,
					  raw);
			else
				out_str(o, "…");
			if (first_only)
				break;
		}
	}
	out_str(o, array ? "]" : "}");
}

static bool name_is(const struct elem *e, const char *name)
{
	return e->name_len == strlen(name) && !memcmp(e->name, name, e->name_len);
}

static bool is_filter_field(const struct elem *e)
{
	return name_is(e, "filter") || name_is(e, "query") || name_is(e, "pipeline") ||
	       name_is(e, "updates") || name_is(e, "deletes");
}

/* What a request's command document says. */
struct command {
	char name[SQL_OPERATION_MAX];
	char collection[SQL_COLLECTION_MAX];
	char database[DBTAP_NAME_MAX];
	struct elem filter; /* type 0 when none */
};

static void copy_name(char *dst, size_t cap, const void *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* The command document at @p, readable to @end, as mongo.bpf.h's MG_WALK_COMMAND reads it. */
static void parse_command(const uint8_t *p, const uint8_t *end, struct command *cmd)
{
	const uint8_t *q, *doc_end;
	struct elem e;
	uint32_t len;
	int i = 0;

	memset(cmd, 0, sizeof(*cmd));
	if (end - p < 4)
		return;
	len = le32(p);
	if (len < BSON_MIN_DOC_LEN)
		return;
	doc_end = len <= (size_t)(end - p) ? p + len : end;
	q = p + 4;
	while (next_elem(&q, doc_end, &e)) {
		bool str = e.type == BSON_STRING && e.val_len >= 5 && e.val + e.val_len <= doc_end;

		if (i++ == 0) {
			copy_name(cmd->name, sizeof(cmd->name), e.name, e.name_len);
			if (str)
				copy_name(cmd->collection, sizeof(cmd->collection), e.val + 4,
					  (size_t)e.val_len - 5);
		} else if (name_is(&e, "$db") && str) {
			copy_name(cmd->database, sizeof(cmd->database), e.val + 4,
				  (size_t)e.val_len - 5);
		} else if (is_doc(e.type) && !cmd->filter.type && is_filter_field(&e)) {
			cmd->filter = e;
		}
	}
}

/* A parsed request message. */
struct request {
	struct command cmd;
	const uint8_t *view_end;
	const uint8_t *seq_doc; /* OP_MSG: first document of an updates/deletes sequence */
	uint32_t opcode;
	uint32_t original_opcode; /* OP_COMPRESSED */
	uint8_t compressor;
};

static int parse_request(const uint8_t *m, size_t len, struct request *r)
{
	const uint8_t *end = m + len, *p, *sec_end, *seq = NULL, *seq_end = NULL, *nul;
	uint32_t flags, slen;
	int i;

	memset(r, 0, sizeof(*r));
	r->view_end = end;
	if (len < MG_HDR_LEN)
		return -EINVAL;
	r->opcode = le32(m + MG_OFF_OPCODE);
	switch (r->opcode) {
	case MG_OPCODE_MSG:
		if (len < MG_HDR_LEN + 4)
			return -EINVAL;
		flags = le32(m + MG_HDR_LEN);
		sec_end = m + le32(m);
		if (flags & MG_MSG_FLAG_CHECKSUM)
			sec_end -= MG_CHECKSUM_LEN;
		p = m + MG_HDR_LEN + 4;
		for (i = 0; i < MG_MAX_SECTIONS && p + 5 <= end && p < sec_end; i++) {
			slen = le32(p + 1);
			if (*p == MG_SECTION_BODY) {
				if (!r->cmd.name[0] && !r->cmd.filter.type)
					parse_command(p + 1, end, &r->cmd);
				if (slen < BSON_MIN_DOC_LEN)
					break;
			} else if (*p == MG_SECTION_SEQUENCE) {
				if (slen < 5)
					break;
				if (!seq) {
					seq = p + 5;
					seq_end = p + 1 + slen;
				}
			} else {
				break;
			}
			p += 1 + (size_t)slen;
		}
		if (!r->cmd.name[0])
			return -EINVAL;
		if (seq && !r->cmd.filter.type && seq < end) {
			nul = memchr(seq, 0, (size_t)(end - seq));
			if (nul && (size_t)(nul - seq) < 128 && nul + 1 < seq_end &&
			    (!strcmp((const char *)seq, "updates") ||
			     !strcmp((const char *)seq, "deletes")))
				r->seq_doc = nul + 1;
		}
		return 0;
	case MG_OPCODE_QUERY:
		p = m + MG_OFF_QUERY_NAME;
		nul = p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
		if (!nul)
			return -EINVAL;
		parse_command(nul + 1 + MG_QUERY_SKIP_RETURN, end, &r->cmd);
		if (!r->cmd.database[0]) {
			const uint8_t *dot = memchr(p, '.', (size_t)(nul - p));

			copy_name(r->cmd.database, sizeof(r->cmd.database), p,
				  (size_t)((dot ? dot : nul) - p));
		}
		return r->cmd.name[0] ? 0 : -EINVAL;
	case MG_OPCODE_COMPRESSED:
		if (len < MG_COMP_HDR_LEN)
			return -EINVAL;
		r->original_opcode = le32(m + MG_OFF_COMP_ORIGINAL);
		r->compressor = m[MG_OFF_COMP_ID];
		return 0;
	}
	return -EINVAL;
}

static const char *compressor_name(uint8_t id)
{
	switch (id) {
	case MG_COMPRESSOR_NOOP:
		return "noop";
	case MG_COMPRESSOR_SNAPPY:
		return "snappy";
	case MG_COMPRESSOR_ZLIB:
		return "zlib";
	case MG_COMPRESSOR_ZSTD:
		return "zstd";
	}
	return "unknown";
}

static const char *opcode_name(uint32_t op)
{
	switch (op) {
	case MG_OPCODE_MSG:
		return "OP_MSG";
	case MG_OPCODE_QUERY:
		return "OP_QUERY";
	}
	return "OP_OTHER";
}

int dbtap_mongo_normalize(const char *text, size_t len, uint16_t flags, bool raw,
			  struct sql_normalized *ret)
{
	struct request r;
	struct out o = {};
	char buf[96];
	int err;

	(void)flags;
	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!text && len)
		return -EINVAL;
	err = parse_request((const uint8_t *)text, len, &r);
	if (err)
		return err;
	if (r.opcode == MG_OPCODE_COMPRESSED) {
		/* the command is compressed: what the header says */
		snprintf(buf, sizeof(buf), "compressed %s %s", compressor_name(r.compressor),
			 opcode_name(r.original_opcode));
		out_str(&o, buf);
		snprintf(ret->summary, sizeof(ret->summary), "compressed %s",
			 compressor_name(r.compressor));
	} else {
		out_str(&o, r.cmd.name);
		if (r.cmd.collection[0]) {
			out_str(&o, " ");
			out_str(&o, r.cmd.collection);
		}
		if (r.cmd.filter.type) {
			out_str(&o, " ");
			out_shape(&o, r.cmd.filter.val, r.view_end, 2,
				  r.cmd.filter.type == BSON_ARRAY,
				  name_is(&r.cmd.filter, "updates") ||
					  name_is(&r.cmd.filter, "deletes"),
				  raw);
		} else if (r.seq_doc) {
			out_str(&o, " [");
			out_shape(&o, r.seq_doc, r.view_end, 1, false, false, raw);
			out_str(&o, "]");
		}
		snprintf(ret->operation, sizeof(ret->operation), "%s", r.cmd.name);
		snprintf(ret->collection, sizeof(ret->collection), "%s", r.cmd.collection);
		snprintf(ret->summary, sizeof(ret->summary), "%s%s%s", r.cmd.name,
			 r.cmd.collection[0] ? " " : "", r.cmd.collection);
	}
	if (o.err || !o.buf) {
		free(o.buf);
		memset(ret, 0, sizeof(*ret));
		return -ENOMEM;
	}
	ret->text = o.buf;
	return 0;
}

int dbtap_mongo_text_names(const char *text, size_t len, uint16_t flags,
			   struct dbtap_conn_names *ret)
{
	struct request r;
	int err;

	(void)flags;
	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!text && len)
		return -EINVAL;
	err = parse_request((const uint8_t *)text, len, &r);
	if (err)
		return err;
	if (!r.cmd.database[0])
		return -ENOENT;
	snprintf(ret->database, sizeof(ret->database), "%s", r.cmd.database);
	return 0;
}

int dbtap_mongo_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret)
{
	(void)msg;
	(void)len;
	memset(ret, 0, sizeof(*ret));
	return -ENOTSUP; /* MongoDB connections carry no startup record (names come from $db) */
}
