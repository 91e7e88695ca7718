// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fuzz_mongo_decoder.c - libFuzzer target for the kernel's MongoDB decoder
 * (probes/mongodb/mongo.bpf.h), run in userspace through tests/lib/pg_harness, and for the
 * userspace half (probes/mongodb/mongo_user.c) on every text record the decoder sends. The
 * input is a script of chunks on two connections; after each chunk the decoder's state must be
 * consistent (below), and the whole script run twice with different stale bytes past the
 * scratch copy (0x00, 0x03: a BSON document type) must give identical results.
 *
 * Script (all lengths bounded by what is left of the input):
 *   byte 0: options  bit0 small ring buffer, bit1 small maps, bit2 no user_buf,
 *                    bit3 sample 1 in 3, bit4 slow threshold 0
 *   then commands, one byte c each: connection = bit2, direction = bit3 (1 = server sends),
 *   arg = c >> 4, and c & 3:
 *     0 RAW    next byte n: a chunk of the following n + 1 bytes, fed at once
 *     1 MSG    append a message to the connection/direction's pending stream: next bytes
 *              requestID (1 byte), responseTo (1 byte), body length L (1 byte), L body bytes
 *              repeated to L << (arg & 7) bytes; opcode by arg >> 3: 0 OP_MSG, 1 OP_QUERY
 *              when receiving / OP_REPLY when sending; arg 15: the int32 length taken raw from
 *              4 more bytes, opcode OP_COMPRESSED
 *     2 FLUSH  feed the pending stream in chunks of (next byte) << arg bytes, 0 = one chunk
 *     3 SPECIAL by arg: 0 EOF, 1 TLS ClientHello bytes, 6 clock += next byte * 1 us,
 *              7 epoch + 1, 8 userspace consumes the ring, 9 a new connection on the same
 *              socket address, others: nothing
 * Pending streams are flushed whole at the end.
 */
// fuzz-sources: tests/lib/pg_harness.c probes/mongodb/mongo_user.c
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/pg_harness.h"
#include "probes/mongodb/mongo_user.h"

#define FUZZ_CHECK(cond, ...)                                                                    \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                            \
			fputc('\n', stderr);                                                     \
			abort();                                                                 \
		}                                                                                \
	} while (0)

#define N_CONNS	    2
#define INSTANCE    778
#define PENDING_MAX (1 << 16)
#define STEP_NS	    1000

#define OPT_SMALL_RING	(1 << 0)
#define OPT_SMALL_MAPS	(1 << 1)
#define OPT_NO_USER_BUF (1 << 2)
#define OPT_SAMPLE	(1 << 3)
#define OPT_SLOW_ZERO	(1 << 4)

#define CMD_RAW	       0
#define CMD_MSG	       1
#define CMD_FLUSH      2
#define CMD_SPECIAL    3
#define ARG_RAW_LENGTH 15

enum special {
	SP_EOF = 0,
	SP_TLS = 1,
	SP_CLOCK = 6,
	SP_EPOCH = 7,
	SP_CONSUME = 8,
	SP_REOPEN = 9,
};

/* MongoDB opcodes */
#define OPCODE_REPLY	  1
#define OPCODE_QUERY	  2004
#define OPCODE_COMPRESSED 2012
#define OPCODE_MSG	  2013
#define HDR_LEN		  16

#define SMALL_RING_BYTES 3000
#define STALE_A		 0x00
#define STALE_B		 0x03

static const __u64 conn_sk[N_CONNS] = {0xffff888000011000ull, 0xffff888000012000ull};
static const uint8_t tls_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};

struct input {
	const uint8_t *p;
	size_t left;
};

struct pending {
	uint8_t buf[PENDING_MAX];
	size_t len;
};

static struct pending pending[N_CONNS][2];
static __u32 cur_epoch;

static int take(struct input *in, uint8_t *ret)
{
	if (!in->left)
		return -1;
	*ret = *in->p++;
	in->left--;
	return 0;
}

static uint8_t take_or_zero(struct input *in)
{
	uint8_t b = 0;

	take(in, &b);
	return b;
}

/* Everything the decoder keeps must stay consistent, and the userspace half must take every
 * text record the decoder sent without reading past it (ASan). */
static void check(const char *what)
{
	const struct dbtap_agg_val *v;
	struct dbtap_agg_key k;
	__u64 ops = 0, hist;
	unsigned int i, j;
	int n;

	for (i = 0; i < N_CONNS; i++) {
		const struct conn_state *c = pgh_conn(conn_sk[i]);

		if (!c)
			continue;
		FUZZ_CHECK((__u8)(c->tail - c->head) <= CONN_MAX_OPS, "%s: %u ops in flight", what,
			   (__u8)(c->tail - c->head));
		FUZZ_CHECK(c->phase <= MG_PHASE_NORMAL, "%s: phase %u", what, c->phase);
		FUZZ_CHECK(c->req.reasm <= FRAME_REASM_TYPED && c->resp.reasm <= FRAME_REASM_TYPED,
			   "%s: reasm %u/%u", what, c->req.reasm, c->resp.reasm);
		FUZZ_CHECK(c->req.skip < (48u * 1000 * 1000) && c->resp.skip < (48u * 1000 * 1000),
			   "%s: skip %u/%u", what, c->req.skip, c->resp.skip);
	}
	n = (int)pgh_agg_count();
	for (i = 0; i < (unsigned int)n; i++) {
		FUZZ_CHECK(pgh_agg_at(i, &k, &v) == 0, "agg_at");
		FUZZ_CHECK(k.system == DBTAP_SYS_MONGODB && k.query_hash, "%s: series system %u",
			   what, k.system);
		FUZZ_CHECK(v->errors <= v->count, "%s: errors > count", what);
		for (hist = 0, j = 0; j < DBTAP_HIST_BUCKETS; j++)
			hist += v->hist[j];
		FUZZ_CHECK(hist == v->count, "%s: histogram %llu count %llu", what,
			   (unsigned long long)hist, (unsigned long long)v->count);
		ops += v->count;
	}
	FUZZ_CHECK(ops == pgh_counter(DBTAP_CNT_OPS), "%s: OPS %llu, series %llu", what,
		   (unsigned long long)pgh_counter(DBTAP_CNT_OPS), (unsigned long long)ops);
	FUZZ_CHECK(pgh_user_faults() == 0, "%s: user memory read outside the chunk", what);
}

static void normalize_texts(void)
{
	const struct dbtap_ev_text *t;
	struct sql_normalized n;
	struct dbtap_conn_names names;
	unsigned int i;
	char *copy;

	for (i = 0; (t = pgh_event_of_type(DBTAP_EV_QUERY_TEXT, i)); i++) {
		FUZZ_CHECK(t->text_len <= DBTAP_TEXT_MAX && t->system == DBTAP_SYS_MONGODB,
			   "text record len %u system %u", t->text_len, t->system);
		/* an exact-size heap copy: ASan sees any read past the record's text */
		copy = malloc(t->text_len ? t->text_len : 1);
		FUZZ_CHECK(copy != NULL, "out of memory");
		memcpy(copy, t->text, t->text_len);
		if (dbtap_mongo_normalize(copy, t->text_len, t->flags, false, &n) == 0) {
			FUZZ_CHECK(n.text != NULL, "normalized text NULL");
			free(n.text);
		}
		if (dbtap_mongo_normalize(copy, t->text_len, t->flags, true, &n) == 0)
			free(n.text);
		dbtap_mongo_text_names(copy, t->text_len, t->flags, &names);
		free(copy);
	}
}

static void feed(int conn, enum io_dir dir, const uint8_t *bytes, size_t len, __u64 now)
{
	uint8_t *copy = malloc(len ? len : 1);

	FUZZ_CHECK(copy != NULL, "out of memory");
	if (len)
		memcpy(copy, bytes, len);
	FUZZ_CHECK(pgh_chunk(conn_sk[conn], dir, copy, (__u32)len, now) == 0, "pgh_chunk");
	free(copy);
	check(len ? "a chunk" : "end of stream");
}

static void append(struct pending *pd, const void *p, size_t n)
{
	if (n > PENDING_MAX - pd->len)
		n = PENDING_MAX - pd->len;
	memcpy(pd->buf + pd->len, p, n);
	pd->len += n;
}

static void append_le32(struct pending *pd, __u32 v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	append(pd, b, sizeof(b));
}

static void flush(int conn, enum io_dir dir, size_t chunk, __u64 now)
{
	struct pending *pd = &pending[conn][dir];
	size_t pos = 0, n;

	while (pos < pd->len) {
		n = chunk && chunk < pd->len - pos ? chunk : pd->len - pos;
		feed(conn, dir, pd->buf + pos, n, now);
		pos += n;
	}
	pd->len = 0;
}

static void cmd_msg(struct input *in, struct pending *pd, enum io_dir dir, unsigned int arg)
{
	uint8_t rid = take_or_zero(in), rto = take_or_zero(in), body_len = take_or_zero(in), raw[4];
	size_t n, total, done, i;
	__u32 opcode;

	if (arg == ARG_RAW_LENGTH)
		opcode = OPCODE_COMPRESSED;
	else if (arg >> 3)
		opcode = dir == IO_RECV ? OPCODE_QUERY : OPCODE_REPLY;
	else
		opcode = OPCODE_MSG;
	n = body_len < in->left ? body_len : in->left;
	total = arg == ARG_RAW_LENGTH ? n : n << (arg & 7);
	if (total > PENDING_MAX - HDR_LEN)
		total = PENDING_MAX - HDR_LEN;
	if (arg == ARG_RAW_LENGTH) {
		for (i = 0; i < sizeof(raw); i++)
			raw[i] = take_or_zero(in);
		append(pd, raw, sizeof(raw));
		n = body_len < in->left ? body_len : in->left;
		total = n;
	} else {
		append_le32(pd, (__u32)total + HDR_LEN);
	}
	append_le32(pd, rid);
	append_le32(pd, rto);
	append_le32(pd, opcode);
	for (done = 0; n && done < total; done += n)
		append(pd, in->p, total - done < n ? total - done : n);
	in->p += n;
	in->left -= n;
}

static void configure(uint8_t opts)
{
	if (opts & OPT_SMALL_RING)
		pgh_set_ringbuf_capacity(SMALL_RING_BYTES);
	if (opts & OPT_SMALL_MAPS) {
		FUZZ_CHECK(pgh_set_map_capacity("aggs", 4) == 0, "aggs");
		FUZZ_CHECK(pgh_set_map_capacity("errs", 2) == 0, "errs");
		FUZZ_CHECK(pgh_set_map_capacity("stmts", 2) == 0, "stmts");
		FUZZ_CHECK(pgh_set_map_capacity("texts_seen", 4) == 0, "texts_seen");
		FUZZ_CHECK(pgh_set_map_capacity("conns", 1) == 0, "conns");
	}
	if (opts & OPT_NO_USER_BUF)
		pgh_set_user_buf(false);
	pgh_set_sampling(opts & OPT_SAMPLE ? 3 : 0, opts & OPT_SLOW_ZERO ? 0 : 100000000ull);
}

static void run(const uint8_t *data, size_t size, __u8 stale)
{
	struct input in = {data, size};
	__u64 now = 1000000000ull;
	uint8_t opts = 0, c;
	int conn, i, err;
	enum io_dir dir;

	pgh_reset();
	pgh_set_stale_byte(stale);
	memset(pending, 0, sizeof(pending));
	cur_epoch = 1;
	take(&in, &opts);
	configure(opts);
	for (i = 0; i < N_CONNS; i++) {
		err = pgh_conn_open_system(conn_sk[i], INSTANCE, DBTAP_SYS_MONGODB, 0, 0);
		FUZZ_CHECK(err == 0 || err == -E2BIG, "pgh_conn_open_system: %d", err);
	}
	while (take(&in, &c) == 0) {
		conn = (c >> 2) & 1;
		dir = (c >> 3) & 1 ? IO_SEND : IO_RECV;
		now += STEP_NS;
		switch (c & 3) {
		case CMD_RAW: {
			size_t n = (size_t)take_or_zero(&in) + 1;

			n = n < in.left ? n : in.left;
			if (n) {
				feed(conn, dir, in.p, n, now);
				in.p += n;
				in.left -= n;
			}
			break;
		}
		case CMD_MSG:
			cmd_msg(&in, &pending[conn][dir], dir, c >> 4);
			break;
		case CMD_FLUSH:
			flush(conn, dir, (size_t)take_or_zero(&in) << (c >> 4), now);
			break;
		case CMD_SPECIAL:
			switch (c >> 4) {
			case SP_EOF:
				feed(conn, dir, NULL, 0, now);
				break;
			case SP_TLS:
				append(&pending[conn][IO_RECV], tls_hello, sizeof(tls_hello));
				break;
			case SP_CLOCK:
				now += (__u64)take_or_zero(&in) * 1000;
				break;
			case SP_EPOCH:
				pgh_set_epoch(++cur_epoch);
				break;
			case SP_CONSUME:
				normalize_texts();
				pgh_events_consume();
				break;
			case SP_REOPEN:
				err = pgh_conn_open_system(conn_sk[conn], INSTANCE,
							   DBTAP_SYS_MONGODB, 0, 0);
				FUZZ_CHECK(err == 0 || err == -E2BIG, "reopen: %d", err);
				break;
			}
			break;
		}
	}
	for (conn = 0; conn < N_CONNS; conn++) {
		flush(conn, IO_RECV, 0, now);
		flush(conn, IO_SEND, 0, now);
	}
	normalize_texts();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgh_snapshot *a, *b;
	char why[512];

	run(data, size, STALE_A);
	a = pgh_snapshot_take();
	run(data, size, STALE_B);
	b = pgh_snapshot_take();
	FUZZ_CHECK(a && b, "out of memory");
	FUZZ_CHECK(pgh_snapshot_diff(a, b, 0, why, sizeof(why)) == 0,
		   "result depends on stale scratch bytes: %s", why);
	pgh_snapshot_free(a);
	pgh_snapshot_free(b);
	return 0;
}
