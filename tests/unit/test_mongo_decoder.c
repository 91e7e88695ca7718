// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_mongo_decoder.c - the kernel's MongoDB decoder (probes/mongodb/mongo.bpf.h), run in
 * userspace through tests/lib/pg_harness, and its userspace half (probes/mongodb/mongo_user.c)
 * on the text records it sends. Messages are built with libbson (the documents a driver
 * sends). Each scenario is checked with exact counts, errors, rows, codes and texts in its
 * one-chunk-per-message run, then replayed coalesced, split in two at every byte offset of
 * each direction and one byte per chunk: every replay must give exactly the same maps,
 * counters (but EVENTS) and ring records.
 *
 * Run: build/tests/test_mongo_decoder ['s03*']   (optional cmocka name filter)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/pg_harness.h"
#include "probes/mongodb/mongo_user.h"

/* bpf/capture.h has the kernel's values; libbson includes <sys/stat.h>, which has the same */
#undef S_IFMT
#undef S_IFSOCK
#include <bson/bson.h>

/* ---- MongoDB wire protocol (Wire Protocol reference) ---- */

#define OPCODE_REPLY	  1
#define OPCODE_QUERY	  2004
#define OPCODE_COMPRESSED 2012
#define OPCODE_MSG	  2013
#define MSG_CHECKSUM	  (1u << 0)
#define MSG_MORE_TO_COME  (1u << 1)
#define MSG_EXHAUST	  (1u << 16)
#define SECTION_BODY	  0
#define SECTION_SEQUENCE  1
#define COMPRESSOR_ZLIB	  2
#define REPLY_AWAIT	  (1u << 3) /* OP_REPLY responseFlags: AwaitCapable */
#define HDR_LEN		  16
#define TLS_CLIENT_HELLO  "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"

/* ---- identities and clock ---- */

#define INSTANCE 5151
#define SK_A	 0xffff888022220000ull
#define SK_B	 0xffff888022221000ull
#define T0_NS	 1000000000ull
#define GAP_NS	 1000000ull
#define LAT_NS	 7000ull

/* ---- byte streams with message boundaries ---- */

struct stream {
	uint8_t *buf;
	size_t len, cap;
	size_t ends[64]; /* offset just past each message */
	size_t n_msgs;
};

static void put(struct stream *st, const void *p, size_t n)
{
	if (st->len + n > st->cap) {
		st->cap = (st->len + n) * 2 + 64;
		st->buf = realloc(st->buf, st->cap);
		assert_non_null(st->buf);
	}
	memcpy(st->buf + st->len, p, n);
	st->len += n;
}

static void put_le32(struct stream *st, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	put(st, b, sizeof(b));
}

static void put_u8(struct stream *st, uint8_t v)
{
	put(st, &v, 1);
}

static void put_doc(struct stream *st, const bson_t *b)
{
	put(st, bson_get_data(b), b->len);
}

/* Header with length 0, patched by msg_end(). Returns where the message starts. */
static size_t msg_begin(struct stream *st, uint32_t request_id, uint32_t response_to,
			uint32_t opcode)
{
	size_t at = st->len;

	put_le32(st, 0);
	put_le32(st, request_id);
	put_le32(st, response_to);
	put_le32(st, opcode);
	return at;
}

static void msg_end(struct stream *st, size_t at)
{
	uint32_t len = (uint32_t)(st->len - at);

	st->buf[at] = (uint8_t)len;
	st->buf[at + 1] = (uint8_t)(len >> 8);
	st->buf[at + 2] = (uint8_t)(len >> 16);
	st->buf[at + 3] = (uint8_t)(len >> 24);
	assert_true(st->n_msgs < 64);
	st->ends[st->n_msgs++] = st->len;
}

/* OP_MSG: flagBits, a body section, optionally one document sequence, optionally a CRC. */
static void op_msg(struct stream *st, uint32_t rid, uint32_t rto, uint32_t flags,
		   const bson_t *body, const char *seq_id, bson_t *const *seq, size_t n_seq)
{
	size_t at = msg_begin(st, rid, rto, OPCODE_MSG), len_at, i;
	uint32_t slen;

	put_le32(st, flags);
	put_u8(st, SECTION_BODY);
	put_doc(st, body);
	if (seq_id) {
		put_u8(st, SECTION_SEQUENCE);
		len_at = st->len;
		put_le32(st, 0);
		put(st, seq_id, strlen(seq_id) + 1);
		for (i = 0; i < n_seq; i++)
			put_doc(st, seq[i]);
		slen = (uint32_t)(st->len - len_at);
		memcpy(st->buf + len_at, &slen, 4); /* little-endian host */
	}
	if (flags & MSG_CHECKSUM)
		put_le32(st, 0xc0ffee00u); /* CRC-32C: not checked by the decoder */
	msg_end(st, at);
}

static void op_query(struct stream *st, uint32_t rid, const char *ns, const bson_t *q)
{
	size_t at = msg_begin(st, rid, 0, OPCODE_QUERY);

	put_le32(st, 0);
	put(st, ns, strlen(ns) + 1);
	put_le32(st, 0);  /* numberToSkip */
	put_le32(st, -1); /* numberToReturn */
	put_doc(st, q);
	msg_end(st, at);
}

static void op_reply(struct stream *st, uint32_t rid, uint32_t rto, uint32_t flags,
		     const bson_t *doc)
{
	size_t at = msg_begin(st, rid, rto, OPCODE_REPLY);

	put_le32(st, flags);
	put_le32(st, 0); /* cursorID (8 bytes) */
	put_le32(st, 0);
	put_le32(st, 0); /* startingFrom */
	put_le32(st, 1); /* numberReturned */
	put_doc(st, doc);
	msg_end(st, at);
}

/* OP_COMPRESSED of @n payload bytes (not real zlib: the decoder cannot read them anyway). */
static void op_compressed(struct stream *st, uint32_t rid, uint32_t rto, uint32_t original,
			  size_t n)
{
	size_t at = msg_begin(st, rid, rto, OPCODE_COMPRESSED), i;

	put_le32(st, original);
	put_le32(st, (uint32_t)(n * 3));
	put_u8(st, COMPRESSOR_ZLIB);
	for (i = 0; i < n; i++)
		put_u8(st, (uint8_t)(0x78 + i * 31));
	msg_end(st, at);
}

/* ---- documents ---- */

static bson_t *ok_reply(double ok)
{
	bson_t *b = bson_new();

	BSON_APPEND_DOUBLE(b, "ok", ok);
	return b;
}

static bson_t *cursor_reply(const char *batch, int64_t id, int n_docs, const char *ns)
{
	bson_t *b = bson_new(), cur, arr, d;
	char key[16];
	int i;

	BSON_APPEND_DOCUMENT_BEGIN(b, "cursor", &cur);
	BSON_APPEND_ARRAY_BEGIN(&cur, batch, &arr);
	for (i = 0; i < n_docs; i++) {
		snprintf(key, sizeof(key), "%d", i);
		BSON_APPEND_DOCUMENT_BEGIN(&arr, key, &d);
		BSON_APPEND_INT32(&d, "_id", i);
		BSON_APPEND_UTF8(&d, "status", "A");
		bson_append_document_end(&arr, &d);
	}
	bson_append_array_end(&cur, &arr);
	BSON_APPEND_INT64(&cur, "id", id);
	BSON_APPEND_UTF8(&cur, "ns", ns);
	bson_append_document_end(b, &cur);
	BSON_APPEND_DOUBLE(b, "ok", 1.0);
	return b;
}

static bson_t *find_cmd(const char *coll, const char *status, int age, const char *db)
{
	bson_t *b = bson_new(), f, gt;

	BSON_APPEND_UTF8(b, "find", coll);
	BSON_APPEND_DOCUMENT_BEGIN(b, "filter", &f);
	BSON_APPEND_UTF8(&f, "status", status);
	BSON_APPEND_DOCUMENT_BEGIN(&f, "age", &gt);
	BSON_APPEND_INT32(&gt, "$gt", age);
	bson_append_document_end(&f, &gt);
	bson_append_document_end(b, &f);
	BSON_APPEND_INT32(b, "batchSize", 2);
	BSON_APPEND_UTF8(b, "$db", db);
	return b;
}

static bson_t *getmore_cmd(int64_t id, const char *coll, const char *db)
{
	bson_t *b = bson_new();

	BSON_APPEND_INT64(b, "getMore", id);
	BSON_APPEND_UTF8(b, "collection", coll);
	BSON_APPEND_UTF8(b, "$db", db);
	return b;
}

static bson_t *write_cmd(const char *cmd, const char *coll, const char *db)
{
	bson_t *b = bson_new();

	BSON_APPEND_UTF8(b, cmd, coll);
	BSON_APPEND_BOOL(b, "ordered", true);
	BSON_APPEND_UTF8(b, "$db", db);
	return b;
}

static bson_t *n_reply(int32_t n, int32_t n_modified)
{
	bson_t *b = bson_new();

	BSON_APPEND_INT32(b, "n", n);
	if (n_modified >= 0)
		BSON_APPEND_INT32(b, "nModified", n_modified);
	BSON_APPEND_DOUBLE(b, "ok", 1.0);
	return b;
}

static bson_t *error_reply(int32_t code, const char *name, const char *msg)
{
	bson_t *b = bson_new();

	BSON_APPEND_DOUBLE(b, "ok", 0.0);
	BSON_APPEND_UTF8(b, "errmsg", msg);
	BSON_APPEND_INT32(b, "code", code);
	BSON_APPEND_UTF8(b, "codeName", name);
	return b;
}

/* ---- scenarios ---- */

#define MAX_EX 16

struct exchange {
	uint64_t sk;
	struct stream req, resp;
};

struct scenario {
	struct exchange ex[MAX_EX];
	unsigned int n_ex;
};

static struct exchange *ex_add(struct scenario *sc, uint64_t sk)
{
	assert_true(sc->n_ex < MAX_EX);
	sc->ex[sc->n_ex].sk = sk;
	return &sc->ex[sc->n_ex++];
}

static void sc_free(struct scenario *sc)
{
	unsigned int i;

	for (i = 0; i < sc->n_ex; i++) {
		free(sc->ex[i].req.buf);
		free(sc->ex[i].resp.buf);
	}
	free(sc);
}

enum chunking {
	CH_MESSAGES,  /* one chunk per message: the reference */
	CH_COALESCED, /* each exchange's request, then its response, as one chunk */
	CH_SPLIT,     /* like CH_COALESCED, one direction's stream cut once at plan.at */
	CH_BYTES,     /* one byte per chunk */
};

struct plan {
	enum chunking how;
	enum io_dir dir;
	size_t at;
};

static size_t next_cut(const struct plan *pl, enum io_dir dir, const struct stream *st, size_t base,
		       size_t pos)
{
	size_t i;

	switch (pl->how) {
	case CH_MESSAGES:
		for (i = 0; i < st->n_msgs; i++)
			if (st->ends[i] > pos)
				return st->ends[i];
		return st->len;
	case CH_COALESCED:
		return st->len;
	case CH_SPLIT:
		if (dir == pl->dir && pl->at > base + pos && pl->at < base + st->len)
			return pl->at - base;
		return st->len;
	case CH_BYTES:
		return pos + 1;
	}
	return st->len;
}

/* What must hold whatever the chunking: op queues bounded, counts add up. */
static void check_state(void)
{
	struct dbtap_agg_key k;
	const struct dbtap_agg_val *v;
	uint64_t ops = 0;
	unsigned int i;

	for (i = 0; i < pgh_agg_count(); i++) {
		assert_int_equal(pgh_agg_at(i, &k, &v), 0);
		assert_int_equal(k.system, DBTAP_SYS_MONGODB);
		assert_true(v->errors <= v->count);
		assert_true(k.query_hash != 0);
		ops += v->count;
	}
	assert_int_equal(ops, pgh_counter(DBTAP_CNT_OPS));
	assert_int_equal(pgh_user_faults(), 0);
}

static void feed(const struct plan *pl, uint64_t sk, enum io_dir dir, const struct stream *st,
		 size_t base, uint64_t now)
{
	size_t pos = 0, next;

	while (pos < st->len) {
		next = next_cut(pl, dir, st, base, pos);
		assert_int_equal(pgh_chunk(sk, dir, st->buf + pos, (uint32_t)(next - pos), now), 0);
		check_state();
		pos = next;
	}
}

static void run_scenario(const struct scenario *sc, const struct plan *pl)
{
	size_t base[2] = {0, 0};
	unsigned int i;

	pgh_reset();
	assert_int_equal(pgh_conn_open_system(SK_A, INSTANCE, DBTAP_SYS_MONGODB, 0, 0), 0);
	assert_int_equal(pgh_conn_open_system(SK_B, INSTANCE, DBTAP_SYS_MONGODB, 0, 0), 0);
	for (i = 0; i < sc->n_ex; i++) {
		const struct exchange *e = &sc->ex[i];
		uint64_t t = T0_NS + i * GAP_NS;

		feed(pl, e->sk, IO_RECV, &e->req, base[IO_RECV], t);
		base[IO_RECV] += e->req.len;
		feed(pl, e->sk, IO_SEND, &e->resp, base[IO_SEND], t + LAT_NS);
		base[IO_SEND] += e->resp.len;
	}
}

static size_t dir_len(const struct scenario *sc, enum io_dir dir)
{
	size_t n = 0;
	unsigned int i;

	for (i = 0; i < sc->n_ex; i++)
		n += dir == IO_RECV ? sc->ex[i].req.len : sc->ex[i].resp.len;
	return n;
}

/* Every other chunking gives exactly the reference run's results. */
static void check_chunkings(const struct scenario *sc)
{
	struct plan ref = {CH_MESSAGES}, pl;
	struct pgh_snapshot *a, *b;
	char why[512];
	int dir;
	size_t at;

	run_scenario(sc, &ref);
	a = pgh_snapshot_take();
	assert_non_null(a);
	for (pl.how = CH_COALESCED; pl.how <= CH_BYTES; pl.how++) {
		for (dir = IO_RECV; dir <= IO_SEND; dir++) {
			size_t n = pl.how == CH_SPLIT ? dir_len(sc, dir) : 1;

			for (at = pl.how == CH_SPLIT ? 1 : 0; at < n; at++) {
				pl.dir = dir;
				pl.at = at;
				run_scenario(sc, &pl);
				b = pgh_snapshot_take();
				assert_non_null(b);
				if (pgh_snapshot_diff(a, b, PGH_DIFF_IGNORE_EVENTS_COUNTER, why,
						      sizeof(why)))
					fail_msg("chunking %d dir %d at %zu: %s", pl.how, dir, at,
						 why);
				pgh_snapshot_free(b);
			}
			if (pl.how != CH_SPLIT)
				break;
		}
	}
	pgh_snapshot_free(a);
	run_scenario(sc, &ref); /* leave the reference results for the caller */
}

/* ---- expected values, computed independently of the decoder ---- */

static uint32_t fnv32(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* The fingerprint of the shape bytes @shape (see MG_FP_* in mongo.bpf.h): FNV-1a 64. */
static uint64_t fnv64n(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 14695981039346656037ull;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static uint64_t fnv64(const char *s)
{
	return fnv64n(s, strlen(s));
}

/* OP_QUERY's fingerprint: the command's, then '@' and the database's FNV-1a 32 bytes. */
static uint64_t query_fp(const char *cmd, const char *db)
{
	uint8_t b[64];
	uint32_t h = fnv32(db);
	size_t n = strlen(cmd);

	memcpy(b, cmd, n);
	b[n++] = '@';
	memcpy(b + n, &h, 4); /* little-endian host, low byte first as the decoder feeds */
	return fnv64n(b, n + 4);
}

static uint64_t compressed_fp(uint32_t original, uint8_t compressor)
{
	uint8_t b[6] = {'Z',
			(uint8_t)original,
			(uint8_t)(original >> 8),
			(uint8_t)(original >> 16),
			(uint8_t)(original >> 24),
			compressor};

	return fnv64n(b, sizeof(b));
}

static const struct dbtap_agg_val *series(const char *db, uint16_t flags, uint64_t hash)
{
	struct dbtap_agg_key k = {.instance = INSTANCE,
				  .db_id = db ? fnv32(db) : 0,
				  .system = DBTAP_SYS_MONGODB,
				  .flags = flags,
				  .query_hash = hash};

	return pgh_agg_get(&k);
}

static void expect_series(const char *db, uint16_t flags, uint64_t hash, uint64_t count,
			  uint64_t errors, uint64_t rows)
{
	const struct dbtap_agg_val *v = series(db, flags, hash);

	if (!v)
		fail_msg("no series db %s hash %#llx", db ? db : "-", (unsigned long long)hash);
	assert_int_equal(v->count, count);
	assert_int_equal(v->errors, errors);
	assert_int_equal(v->rows, rows);
	assert_int_equal(v->sum_ns, count * LAT_NS - 0); /* every op answered after LAT_NS */
}

static uint64_t err_count(const char *db, uint64_t hash, const char *status)
{
	struct dbtap_agg_key k = {.instance = INSTANCE,
				  .db_id = fnv32(db),
				  .system = DBTAP_SYS_MONGODB,
				  .query_hash = hash};

	return pgh_err_get(&k, status);
}

/* The text record of @hash normalizes to @text (and names @db). */
static void expect_text(uint64_t hash, const char *text, const char *op, const char *coll,
			const char *db)
{
	const struct dbtap_ev_text *t = pgh_text_find(hash);
	struct sql_normalized n;
	struct dbtap_conn_names names;

	if (!t)
		fail_msg("no text record for %#llx", (unsigned long long)hash);
	assert_int_equal(t->system, DBTAP_SYS_MONGODB);
	assert_int_equal(dbtap_mongo_normalize(t->text, t->text_len, t->flags, false, &n), 0);
	assert_string_equal(n.text, text);
	assert_string_equal(n.operation, op);
	assert_string_equal(n.collection, coll);
	free(n.text);
	if (db) {
		assert_int_equal(dbtap_mongo_text_names(t->text, t->text_len, t->flags, &names), 0);
		assert_string_equal(names.database, db);
	}
}

/* ---- s01: legacy handshake, find, getMore joining its find, a second find ---- */

#define CURSOR_ID 0x1122334455667788ll

static void build_s01(struct scenario *sc)
{
	struct exchange *e;
	bson_t *q, *r, client;

	e = ex_add(sc, SK_A);
	q = bson_new();
	BSON_APPEND_INT32(q, "isMaster", 1);
	BSON_APPEND_DOCUMENT_BEGIN(q, "client", &client);
	BSON_APPEND_UTF8(&client, "application", "test");
	bson_append_document_end(q, &client);
	op_query(&e->req, 1, "admin.$cmd", q);
	r = bson_new();
	BSON_APPEND_BOOL(r, "ismaster", true);
	BSON_APPEND_INT32(r, "maxWireVersion", 17);
	BSON_APPEND_DOUBLE(r, "ok", 1.0);
	op_reply(&e->resp, 100, 1, REPLY_AWAIT, r);
	bson_destroy(q);
	bson_destroy(r);

	e = ex_add(sc, SK_A);
	q = find_cmd("users", "A", 30, "shop");
	r = cursor_reply("firstBatch", CURSOR_ID, 2, "shop.users");
	op_msg(&e->req, 2, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 101, 2, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);

	e = ex_add(sc, SK_A);
	q = getmore_cmd(CURSOR_ID, "users", "shop");
	r = cursor_reply("nextBatch", 0, 1, "shop.users");
	op_msg(&e->req, 3, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 102, 3, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);

	/* the cursor is gone: a getMore of it now is its own series */
	e = ex_add(sc, SK_A);
	q = getmore_cmd(CURSOR_ID, "users", "shop");
	r = error_reply(43, "CursorNotFound", "cursor id 1 not found");
	op_msg(&e->req, 4, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 103, 4, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);

	e = ex_add(sc, SK_A);
	q = find_cmd("users", "B", 99, "shop");
	r = cursor_reply("firstBatch", 0, 0, "shop.users");
	op_msg(&e->req, 5, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 104, 5, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);
}

#define S01_FIND    "find users|{status:?age:{$gt:?}}@shop"
#define S01_GETMORE "getMore@shop"

static void test_s01(void **state)
{
	struct scenario *sc = calloc(1, sizeof(*sc));

	(void)state;
	build_s01(sc);
	check_chunkings(sc);
	assert_int_equal(pgh_agg_count(), 3);
	expect_series("admin", 0, query_fp("isMaster", "admin"), 1, 0, 0);
	expect_series("shop", 0, fnv64(S01_FIND), 3, 0, 0); /* find, getMore, find */
	expect_series("shop", 0, fnv64(S01_GETMORE), 1, 1, 0);
	assert_int_equal(err_count("shop", fnv64(S01_GETMORE), "43"), 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 5);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 0);
	assert_int_equal(pgh_map_count("stmts"), 0); /* the cursor was forgotten */
	expect_text(fnv64(S01_FIND), "find users {\"status\": ?, \"age\": {\"$gt\": ?}}", "find",
		    "users", "shop");
	expect_text(query_fp("isMaster", "admin"), "isMaster", "isMaster", "", "admin");
	expect_text(fnv64(S01_GETMORE), "getMore", "getMore", "", "shop");
	assert_int_equal(pgh_event_count_type(DBTAP_EV_CONN_OPEN), 1);
	sc_free(sc);
}

/* ---- s02: writes: document sequences, body arrays, n / nModified, checksum ---- */

static void build_s02(struct scenario *sc)
{
	struct exchange *e;
	bson_t *q, *r, *docs[3], set, qq, arr, st;
	int i;

	e = ex_add(sc, SK_B);
	q = write_cmd("insert", "users", "shop");
	for (i = 0; i < 3; i++) {
		docs[i] = bson_new();
		BSON_APPEND_INT32(docs[i], "_id", i);
		BSON_APPEND_UTF8(docs[i], "name", "n");
	}
	r = n_reply(3, -1);
	op_msg(&e->req, 10, 0, 0, q, "documents", docs, 3);
	op_msg(&e->resp, 200, 10, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);
	for (i = 0; i < 3; i++)
		bson_destroy(docs[i]);

	/* update as mongoc sends it: statements in a kind 1 section, with a checksum */
	e = ex_add(sc, SK_B);
	q = write_cmd("update", "users", "shop");
	docs[0] = bson_new();
	BSON_APPEND_DOCUMENT_BEGIN(docs[0], "q", &qq);
	BSON_APPEND_UTF8(&qq, "name", "x");
	bson_append_document_end(docs[0], &qq);
	BSON_APPEND_DOCUMENT_BEGIN(docs[0], "u", &set);
	BSON_APPEND_DOCUMENT_BEGIN(&set, "$set", &st);
	BSON_APPEND_INT32(&st, "v", 7);
	bson_append_document_end(&set, &st);
	bson_append_document_end(docs[0], &set);
	r = n_reply(4, 2);
	op_msg(&e->req, 11, 0, MSG_CHECKSUM, q, "updates", docs, 1);
	op_msg(&e->resp, 201, 11, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);
	bson_destroy(docs[0]);

	/* delete with the statements in the body; $in of three values */
	e = ex_add(sc, SK_B);
	q = bson_new();
	BSON_APPEND_UTF8(q, "delete", "users");
	BSON_APPEND_ARRAY_BEGIN(q, "deletes", &arr);
	BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &st);
	BSON_APPEND_DOCUMENT_BEGIN(&st, "q", &qq);
	{
		bson_t in, vals;

		BSON_APPEND_DOCUMENT_BEGIN(&qq, "age", &in);
		BSON_APPEND_ARRAY_BEGIN(&in, "$in", &vals);
		BSON_APPEND_INT32(&vals, "0", 1);
		BSON_APPEND_INT32(&vals, "1", 2);
		BSON_APPEND_UTF8(&vals, "2", "three");
		bson_append_array_end(&in, &vals);
		bson_append_document_end(&qq, &in);
	}
	bson_append_document_end(&st, &qq);
	BSON_APPEND_INT32(&st, "limit", 0);
	bson_append_document_end(&arr, &st);
	BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &st);
	BSON_APPEND_INT32(&st, "other", 1);
	bson_append_document_end(&arr, &st);
	bson_append_array_end(q, &arr);
	BSON_APPEND_UTF8(q, "$db", "shop");
	r = n_reply(5, -1);
	op_msg(&e->req, 12, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 202, 12, MSG_CHECKSUM, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);
}

#define S02_INSERT "insert users@shop"
#define S02_UPDATE "update users@shop|[{q:{name:?}u:{$set:{v:?}}}]"
#define S02_DELETE "delete users|[{q:{age:{$in:[?]}}limit:?}]@shop"

static void test_s02(void **state)
{
	struct scenario *sc = calloc(1, sizeof(*sc));

	(void)state;
	build_s02(sc);
	check_chunkings(sc);
	assert_int_equal(pgh_agg_count(), 3);
	expect_series("shop", 0, fnv64(S02_INSERT), 1, 0, 3);
	expect_series("shop", 0, fnv64(S02_UPDATE), 1, 0, 2); /* nModified, not n */
	expect_series("shop", 0, fnv64(S02_DELETE), 1, 0, 5);
	expect_text(fnv64(S02_INSERT), "insert users", "insert", "users", "shop");
	expect_text(fnv64(S02_UPDATE),
		    "update users [{\"q\": {\"name\": ?}, \"u\": {\"$set\": {\"v\": ?}}}]",
		    "update", "users", "shop");
	expect_text(fnv64(S02_DELETE),
		    "delete users [{\"q\": {\"age\": {\"$in\": [?]}}, \"limit\": ?}]", "delete",
		    "users", "shop");
	sc_free(sc);
}

/* ---- s03: errors, moreToCome requests, exhaust replies ---- */

static void build_s03(struct scenario *sc)
{
	struct exchange *e;
	bson_t *q, *r, *docs[1];

	e = ex_add(sc, SK_A);
	q = find_cmd("nope", "A", 1, "shop");
	r = error_reply(26, "NamespaceNotFound", "ns does not exist");
	op_msg(&e->req, 20, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 300, 20, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);

	/* unacknowledged insert (w: 0): no reply; then a ping answered */
	e = ex_add(sc, SK_A);
	q = write_cmd("insert", "logs", "shop");
	docs[0] = bson_new();
	BSON_APPEND_UTF8(docs[0], "msg", "hello");
	op_msg(&e->req, 21, 0, MSG_MORE_TO_COME, q, "documents", docs, 1);
	bson_destroy(q);
	bson_destroy(docs[0]);
	q = bson_new();
	BSON_APPEND_INT32(q, "ping", 1);
	BSON_APPEND_UTF8(q, "$db", "admin");
	op_msg(&e->req, 22, 0, 0, q, NULL, NULL, 0);
	r = ok_reply(1.0);
	op_msg(&e->resp, 301, 22, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);

	/* exhaust: find, then a getMore answered by three replies */
	e = ex_add(sc, SK_A);
	q = find_cmd("events", "A", 2, "shop");
	r = cursor_reply("firstBatch", 55, 2, "shop.events");
	op_msg(&e->req, 23, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 302, 23, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);
	e = ex_add(sc, SK_A);
	q = getmore_cmd(55, "events", "shop");
	op_msg(&e->req, 24, 0, MSG_EXHAUST, q, NULL, NULL, 0);
	bson_destroy(q);
	r = cursor_reply("nextBatch", 55, 2, "shop.events");
	op_msg(&e->resp, 303, 24, MSG_MORE_TO_COME, r, NULL, NULL, 0);
	op_msg(&e->resp, 304, 303, MSG_MORE_TO_COME, r, NULL, NULL, 0);
	bson_destroy(r);
	r = cursor_reply("nextBatch", 0, 1, "shop.events");
	op_msg(&e->resp, 305, 304, 0, r, NULL, NULL, 0);
	bson_destroy(r);
}

#define S03_FIND_NOPE	"find nope|{status:?age:{$gt:?}}@shop"
#define S03_INSERT	"insert logs@shop"
#define S03_PING	"ping@admin"
#define S03_FIND_EVENTS "find events|{status:?age:{$gt:?}}@shop"

static void test_s03(void **state)
{
	struct scenario *sc = calloc(1, sizeof(*sc));
	const struct dbtap_agg_val *v;

	(void)state;
	build_s03(sc);
	check_chunkings(sc);
	assert_int_equal(pgh_agg_count(), 4);
	expect_series("shop", 0, fnv64(S03_FIND_NOPE), 1, 1, 0);
	assert_int_equal(err_count("shop", fnv64(S03_FIND_NOPE), "26"), 1);
	/* counted when read, no reply awaited: no latency */
	v = series("shop", 0, fnv64(S03_INSERT));
	assert_non_null(v);
	assert_int_equal(v->count, 1);
	assert_int_equal(v->sum_ns, 0);
	expect_series("admin", 0, fnv64(S03_PING), 1, 0, 0);
	/* the find and the three batches of its exhaust getMore; each further batch is timed
	 * from the previous one, sent at the same instant here */
	v = series("shop", 0, fnv64(S03_FIND_EVENTS));
	assert_non_null(v);
	assert_int_equal(v->count, 4);
	assert_int_equal(v->errors, 0);
	assert_int_equal(v->sum_ns, 2 * LAT_NS);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 0);
	assert_int_equal(pgh_map_count("stmts"), 0);
	expect_text(fnv64(S03_PING), "ping", "ping", "", "admin");
	sc_free(sc);
}

/* ---- s04: compression negotiated: OP_COMPRESSED both ways ---- */

static void build_s04(struct scenario *sc)
{
	struct exchange *e;
	bson_t *q, *r, arr;

	e = ex_add(sc, SK_B);
	q = bson_new();
	BSON_APPEND_INT32(q, "hello", 1);
	BSON_APPEND_ARRAY_BEGIN(q, "compression", &arr);
	BSON_APPEND_UTF8(&arr, "0", "zlib");
	bson_append_array_end(q, &arr);
	BSON_APPEND_UTF8(q, "$db", "admin");
	r = ok_reply(1.0);
	op_msg(&e->req, 30, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 400, 30, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);

	e = ex_add(sc, SK_B);
	op_compressed(&e->req, 31, 0, OPCODE_MSG, 40);
	op_compressed(&e->resp, 401, 31, OPCODE_MSG, 3000); /* past REASM_MAX */
	e = ex_add(sc, SK_B);
	op_compressed(&e->req, 32, 0, OPCODE_MSG, 60);
	op_compressed(&e->resp, 402, 32, OPCODE_MSG, 10);
}

static void test_s04(void **state)
{
	struct scenario *sc = calloc(1, sizeof(*sc));

	(void)state;
	build_s04(sc);
	check_chunkings(sc);
	assert_int_equal(pgh_agg_count(), 2);
	expect_series("admin", 0, fnv64("hello@admin"), 1, 0, 0);
	expect_series("admin", DBTAP_AGG_F_UNKNOWN_STMT, compressed_fp(OPCODE_MSG, COMPRESSOR_ZLIB),
		      2, 0, 0);
	assert_int_equal(pgh_counter(DBTAP_CNT_COMPRESSED), 4);
	assert_int_equal(pgh_counter(DBTAP_CNT_UNDECODABLE), 0);
	expect_text(compressed_fp(OPCODE_MSG, COMPRESSOR_ZLIB), "compressed zlib OP_MSG", "", "",
		    NULL);
	sc_free(sc);
}

/* ---- s05: big messages cut across chunks and past what is read ---- */

static void build_s05(struct scenario *sc)
{
	struct exchange *e;
	bson_t *q, *r, f;
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	e = ex_add(sc, SK_A);
	q = bson_new();
	BSON_APPEND_UTF8(q, "find", "blobs");
	BSON_APPEND_DOCUMENT_BEGIN(q, "filter", &f);
	BSON_APPEND_UTF8(&f, "k", "v");
	bson_append_document_end(q, &f);
	BSON_APPEND_UTF8(q, "$db", "shop");
	BSON_APPEND_UTF8(q, "comment", big); /* the message is longer than REASM_MAX */
	r = cursor_reply("firstBatch", 0, 400, "shop.blobs"); /* ~12 KiB: past the scratch */
	op_msg(&e->req, 40, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 500, 40, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);
	/* then a small error reply: framing went on right */
	e = ex_add(sc, SK_A);
	q = find_cmd("nope", "A", 1, "shop");
	r = error_reply(13, "Unauthorized", "not authorized");
	op_msg(&e->req, 41, 0, 0, q, NULL, NULL, 0);
	op_msg(&e->resp, 501, 41, 0, r, NULL, NULL, 0);
	bson_destroy(q);
	bson_destroy(r);
}

static void test_s05(void **state)
{
	struct scenario *sc = calloc(1, sizeof(*sc));
	const struct dbtap_ev_text *t;

	(void)state;
	build_s05(sc);
	check_chunkings(sc);
	assert_int_equal(pgh_agg_count(), 2);
	expect_series("shop", 0, fnv64("find blobs|{k:?}@shop"), 1, 0, 0);
	expect_series("shop", 0, fnv64(S03_FIND_NOPE), 1, 1, 0);
	assert_int_equal(err_count("shop", fnv64(S03_FIND_NOPE), "13"), 1);
	t = pgh_text_find(fnv64("find blobs|{k:?}@shop"));
	assert_non_null(t);
	assert_int_equal(t->text_len, REASM_MAX);
	assert_int_equal(t->flags, DBTAP_TEXT_F_TRUNCATED);
	expect_text(fnv64("find blobs|{k:?}@shop"), "find blobs {\"k\": ?}", "find", "blobs",
		    "shop");
	sc_free(sc);
}

/* ---- s06: not MongoDB: TLS, garbage ---- */

static void test_s06_tls_and_garbage(void **state)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	bson_t *q = find_cmd("users", "A", 1, "shop");
	struct stream st = {};

	(void)state;
	pgh_reset();
	assert_int_equal(pgh_conn_open_system(SK_A, INSTANCE, DBTAP_SYS_MONGODB, 0, 0), 0);
	assert_int_equal(pgh_conn_open_system(SK_B, INSTANCE, DBTAP_SYS_MONGODB, 0, 0), 0);
	assert_int_equal(
		pgh_chunk(SK_A, IO_RECV, TLS_CLIENT_HELLO, sizeof(TLS_CLIENT_HELLO) - 1, T0_NS), 0);
	op_msg(&st, 1, 0, 0, q, NULL, NULL, 0);
	assert_int_equal(pgh_chunk(SK_A, IO_RECV, st.buf, (uint32_t)st.len, T0_NS + 1), 0);
	assert_int_equal(pgh_conn(SK_A)->flags & DBTAP_CONN_F_ENCRYPTED, DBTAP_CONN_F_ENCRYPTED);
	assert_int_equal(pgh_counter(DBTAP_CNT_ENCRYPTED), 1);
	assert_int_equal(pgh_chunk(SK_B, IO_RECV, junk, sizeof(junk) - 1, T0_NS), 0);
	assert_int_equal(pgh_conn(SK_B)->flags & DBTAP_CONN_F_UNDECODABLE,
			 DBTAP_CONN_F_UNDECODABLE);
	assert_int_equal(pgh_chunk(SK_B, IO_RECV, st.buf, (uint32_t)st.len, T0_NS + 1), 0);
	assert_int_equal(pgh_agg_count(), 0);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 0);
	assert_int_equal(pgh_event_count_type(DBTAP_EV_CONN_OPEN), 2);
	free(st.buf);
	bson_destroy(q);
}

/* ---- normalizer on its own: raw values, nesting, bad input ---- */

static void test_normalize_raw_and_bad(void **state)
{
	bson_t *q = find_cmd("users", "A\"q", 30, "shop");
	struct stream st = {};
	struct sql_normalized n;

	(void)state;
	op_msg(&st, 1, 0, 0, q, NULL, NULL, 0);
	assert_int_equal(dbtap_mongo_normalize((const char *)st.buf, st.len, 0, true, &n), 0);
	assert_string_equal(n.text, "find users {\"status\": \"A\\\"q\", \"age\": {\"$gt\": 30}}");
	assert_string_equal(n.summary, "find users");
	free(n.text);
	/* cut anywhere: never reads past, never fails but for a missing command */
	for (size_t len = 0; len <= st.len; len++) {
		int err = dbtap_mongo_normalize((const char *)st.buf, len, 0, false, &n);

		assert_true(err == 0 || err == -EINVAL);
		if (!err)
			free(n.text);
	}
	assert_int_equal(dbtap_mongo_normalize("\x10\0\0\0", 4, 0, false, &n), -EINVAL);
	free(st.buf);
	bson_destroy(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s01),
		cmocka_unit_test(test_s02),
		cmocka_unit_test(test_s03),
		cmocka_unit_test(test_s04),
		cmocka_unit_test(test_s05),
		cmocka_unit_test(test_s06_tls_and_garbage),
		cmocka_unit_test(test_normalize_raw_and_bad),
	};
	int rc = cmocka_run_group_tests_name("mongo_decoder", tests, NULL, NULL);

	pgh_free();
	return rc;
}
