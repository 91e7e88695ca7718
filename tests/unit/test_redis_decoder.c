// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_redis_decoder.c - the kernel's Redis decoder (probes/redis/redis.bpf.h), run in
 * userspace through tests/lib/pg_harness: RESP2/RESP3 scenarios with exact counts, errors,
 * rows, statuses, flags, databases and texts; each scenario is replayed with every chunking
 * (one chunk per message, each exchange's request and reply coalesced, split in two at every
 * byte offset of either direction, one byte per chunk) and must give exactly the results of
 * the one-chunk-per-message run.
 *
 * Run: build/tests/test_redis_decoder ['r05*']   (optional cmocka name filter)
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
#include "probes/redis/redis_user.h"

#define INSTANCE  7
#define T0_NS	  1000000000ull
#define EX_GAP_NS 1000000ull /* exchanges 1 ms apart */
#define LAT_NS	  50000ull   /* replies 50 us after their requests */
#define SK1	  0xffff888000001000ull
#define SK2	  0xffff888000002000ull

/* FNV-1a 32 of "0" and "3": the database ids SELECT sets (dbtap_name_hash). */
static uint32_t name32(const char *s)
{
	uint32_t h = DBTAP_FNV32_OFFSET;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * DBTAP_FNV32_PRIME;
	return h ? h : 1;
}

/* The kernel's fingerprint: FNV-1a 64 of "COMMAND [SUB] [key pattern]". */
static uint64_t fp(const char *text)
{
	uint64_t h = DBTAP_FNV64_OFFSET;

	for (; *text; text++)
		h = (h ^ (uint8_t)*text) * DBTAP_FNV64_PRIME;
	return h ? h : 1;
}

/* ---- byte streams with message boundaries ---- */

#define MAX_MSGS 1024

struct stream {
	uint8_t *buf;
	size_t len, cap;
	size_t ends[MAX_MSGS]; /* end offset of each message */
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

static void msg_end(struct stream *st)
{
	assert_true(st->n_msgs < MAX_MSGS);
	st->ends[st->n_msgs++] = st->len;
}

/* Raw RESP text as one message. */
static void raw(struct stream *st, const char *resp)
{
	put(st, resp, strlen(resp));
	msg_end(st);
}

/* A request as an array of bulk strings, one message. */
static void cmd(struct stream *st, int argc, ...)
{
	char hdr[32];
	va_list ap;
	int i;

	snprintf(hdr, sizeof(hdr), "*%d\r\n", argc);
	put(st, hdr, strlen(hdr));
	va_start(ap, argc);
	for (i = 0; i < argc; i++) {
		const char *a = va_arg(ap, const char *);

		snprintf(hdr, sizeof(hdr), "$%zu\r\n", strlen(a));
		put(st, hdr, strlen(hdr));
		put(st, a, strlen(a));
		put(st, "\r\n", 2);
	}
	va_end(ap);
	msg_end(st);
}

/* A bulk string reply of @n bytes of filler. */
static void bulk_filler(struct stream *st, size_t n)
{
	char hdr[32];
	size_t i;

	snprintf(hdr, sizeof(hdr), "$%zu\r\n", n);
	put(st, hdr, strlen(hdr));
	for (i = 0; i < n; i++)
		put(st, i % 7 ? "x" : "\r", 1); /* CRs inside payload must not matter */
	put(st, "\r\n", 2);
	msg_end(st);
}

static void stream_free(struct stream *st)
{
	free(st->buf);
	memset(st, 0, sizeof(*st));
}

/* ---- scenarios ---- */

#define MAX_EX 64

struct exchange {
	uint64_t sk;
	struct stream req;  /* read by the server at the exchange's time */
	struct stream resp; /* written LAT_NS later */
};

struct scenario {
	uint64_t sks[2];
	unsigned int n_sks;
	struct exchange ex[MAX_EX];
	unsigned int n_ex;
	bool no_user_buf;
	size_t split_step; /* CH_SPLIT: cut at every split_step-th offset (0: every one) */
};

static struct scenario *sc_new(void)
{
	struct scenario *sc = calloc(1, sizeof(*sc));

	assert_non_null(sc);
	sc->sks[0] = SK1;
	sc->n_sks = 1;
	return sc;
}

static struct exchange *ex(struct scenario *sc, uint64_t sk)
{
	assert_true(sc->n_ex < MAX_EX);
	sc->ex[sc->n_ex].sk = sk;
	return &sc->ex[sc->n_ex++];
}

static void sc_free(struct scenario *sc)
{
	unsigned int i;

	for (i = 0; i < sc->n_ex; i++) {
		stream_free(&sc->ex[i].req);
		stream_free(&sc->ex[i].resp);
	}
	free(sc);
}

enum chunking {
	CH_MESSAGES,  /* one chunk per message: the reference */
	CH_COALESCED, /* each exchange's request, then its reply, as one chunk */
	CH_SPLIT,     /* coalesced, one direction's whole stream cut once at plan.at */
	CH_BYTES,     /* one byte per chunk */
	CH_REPLIES,   /* requests one chunk per message, each exchange's replies as one chunk */
};

struct plan {
	enum chunking how;
	enum io_dir dir;
	size_t at;
};

static size_t next_cut(const struct plan *pl, enum io_dir dir, const struct stream *st, size_t base,
		       size_t pos, size_t *msg_i)
{
	switch (pl->how) {
	case CH_MESSAGES:
		while (*msg_i < st->n_msgs && st->ends[*msg_i] <= pos)
			(*msg_i)++;
		return *msg_i < st->n_msgs ? st->ends[*msg_i] : st->len;
	case CH_COALESCED:
		return st->len;
	case CH_SPLIT:
		if (dir == pl->dir && pl->at > base + pos && pl->at < base + st->len)
			return pl->at - base;
		return st->len;
	case CH_BYTES:
		return pos + 1;
	case CH_REPLIES:
		if (dir == IO_SEND)
			return st->len;
		while (*msg_i < st->n_msgs && st->ends[*msg_i] <= pos)
			(*msg_i)++;
		return *msg_i < st->n_msgs ? st->ends[*msg_i] : st->len;
	}
	return st->len;
}

/* What must hold after every chunk, whatever the protocol did. */
static int check_invariants(char *why, size_t why_len)
{
	uint64_t ops = 0, errs = 0, errors = 0, hist;
	const struct dbtap_agg_val *v;
	struct dbtap_agg_key k;
	struct dbtap_err_key ek;
	unsigned int i, j;
	__u64 n;

	for (i = 0; pgh_agg_at(i, &k, &v) == 0; i++) {
		if (k.system != DBTAP_SYS_REDIS || !k.query_hash || !k.db_id) {
			snprintf(why, why_len, "series %u: system %u hash %#llx db %#x", i,
				 k.system, (unsigned long long)k.query_hash, k.db_id);
			return -EPROTO;
		}
		for (hist = 0, j = 0; j < DBTAP_HIST_BUCKETS; j++)
			hist += v->hist[j];
		if (hist != v->count || v->errors > v->count) {
			snprintf(why, why_len, "series %u: count %llu hist %llu errors %llu", i,
				 (unsigned long long)v->count, (unsigned long long)hist,
				 (unsigned long long)v->errors);
			return -EPROTO;
		}
		ops += v->count;
		errors += v->errors;
	}
	for (i = 0; pgh_err_at(i, &ek, &n) == 0; i++)
		errs += n;
	if (ops != pgh_counter(DBTAP_CNT_OPS) || errs != errors) {
		snprintf(why, why_len, "OPS %llu vs counts %llu; errs %llu vs errors %llu",
			 (unsigned long long)pgh_counter(DBTAP_CNT_OPS), (unsigned long long)ops,
			 (unsigned long long)errs, (unsigned long long)errors);
		return -EPROTO;
	}
	for (i = 0; i < 2; i++) {
		const struct conn_state *c = pgh_conn(i ? SK2 : SK1);

		if (!c)
			continue;
		if ((uint8_t)(c->tail - c->head) > CONN_MAX_OPS ||
		    c->redis.qpos > (uint8_t)(c->tail - c->head) ||
		    c->redis.rp_depth > REDIS_MAX_DEPTH || c->phase > REDIS_PHASE_REQUESTS) {
			snprintf(why, why_len, "conn %u: head %u tail %u qpos %u depth %u phase %u",
				 i, c->head, c->tail, c->redis.qpos, c->redis.rp_depth, c->phase);
			return -EPROTO;
		}
	}
	return 0;
}

static int feed(const struct plan *pl, uint64_t sk, enum io_dir dir, const struct stream *st,
		size_t base, uint64_t now, char *why, size_t why_len)
{
	size_t pos = 0, next, msg_i = 0;
	int err;

	while (pos < st->len) {
		next = next_cut(pl, dir, st, base, pos, &msg_i);
		err = pgh_chunk(sk, dir, st->buf + pos, (uint32_t)(next - pos), now);
		if (err) {
			snprintf(why, why_len, "pgh_chunk: %d", err);
			return err;
		}
		err = check_invariants(why, why_len);
		if (err)
			return err;
		pos = next;
	}
	return 0;
}

static int run(const struct scenario *sc, const struct plan *pl, char *why, size_t why_len)
{
	size_t base[2] = {0, 0};
	unsigned int i;
	int err;

	pgh_reset();
	if (sc->no_user_buf)
		pgh_set_user_buf(false);
	for (i = 0; i < sc->n_sks; i++) {
		err = pgh_conn_open_system(sc->sks[i], INSTANCE, DBTAP_SYS_REDIS, 0, 0);
		if (err) {
			snprintf(why, why_len, "pgh_conn_open_system: %d", err);
			return err;
		}
	}
	for (i = 0; i < sc->n_ex; i++) {
		const struct exchange *e = &sc->ex[i];
		uint64_t t = T0_NS + i * EX_GAP_NS;

		err = feed(pl, e->sk, IO_RECV, &e->req, base[IO_RECV], t, why, why_len);
		if (err)
			return err;
		base[IO_RECV] += e->req.len;
		err = feed(pl, e->sk, IO_SEND, &e->resp, base[IO_SEND], t + LAT_NS, why, why_len);
		if (err)
			return err;
		base[IO_SEND] += e->resp.len;
	}
	return 0;
}

/* Replay @sc with every chunking against the one-chunk-per-message run (left loaded). */
static void run_all(const struct scenario *sc)
{
	struct plan pl = {.how = CH_MESSAGES};
	struct pgh_snapshot *ref, *snap;
	size_t total[2] = {0, 0};
	char why[512];
	unsigned int i;
	int d;

	for (i = 0; i < sc->n_ex; i++) {
		total[IO_RECV] += sc->ex[i].req.len;
		total[IO_SEND] += sc->ex[i].resp.len;
	}
	if (run(sc, &pl, why, sizeof(why)))
		fail_msg("messages: %s", why);
	ref = pgh_snapshot_take();
	assert_non_null(ref);
	for (pl.how = CH_COALESCED; pl.how <= CH_BYTES; pl.how++) {
		size_t at_max = pl.how == CH_SPLIT ? total[IO_RECV] + total[IO_SEND] : 1;

		for (pl.at = 0; pl.at < at_max; pl.at += sc->split_step ? sc->split_step : 1) {
			pl.dir = pl.at < total[IO_RECV] ? IO_RECV : IO_SEND;
			if (pl.how == CH_SPLIT && pl.dir == IO_SEND) {
				size_t at = pl.at;

				pl.at -= total[IO_RECV];
				d = run(sc, &pl, why, sizeof(why));
				pl.at = at;
			} else {
				d = run(sc, &pl, why, sizeof(why));
			}
			if (d)
				fail_msg("chunking %d at %zu: %s", pl.how, pl.at, why);
			snap = pgh_snapshot_take();
			assert_non_null(snap);
			d = pgh_snapshot_diff(ref, snap, PGH_DIFF_IGNORE_EVENTS_COUNTER, why,
					      sizeof(why));
			pgh_snapshot_free(snap);
			if (d)
				fail_msg("chunking %d (dir %d at %zu) differs: %s", pl.how, pl.dir,
					 pl.at, why);
		}
	}
	/* leave the reference run loaded for the caller's assertions */
	pl.how = CH_MESSAGES;
	if (run(sc, &pl, why, sizeof(why)))
		fail_msg("messages: %s", why);
	pgh_snapshot_free(ref);
}

/* ---- expectations ---- */

static const struct dbtap_agg_val *series_f(uint32_t db, uint16_t flags, const char *text)
{
	struct dbtap_agg_key k;
	const struct dbtap_agg_val *v;

	memset(&k, 0, sizeof(k));
	k.instance = INSTANCE;
	k.db_id = db;
	k.system = DBTAP_SYS_REDIS;
	k.flags = flags;
	k.query_hash = fp(text);
	v = pgh_agg_get(&k);
	if (!v)
		print_error("no series \"%s\" db %#x flags %#x\n", text, db, flags);
	assert_non_null(v);
	return v;
}

static const struct dbtap_agg_val *series(const char *text)
{
	return series_f(name32("0"), 0, text);
}

static uint64_t err_count(uint32_t db, uint16_t flags, const char *text, const char *status)
{
	struct dbtap_agg_key k;

	memset(&k, 0, sizeof(k));
	k.instance = INSTANCE;
	k.db_id = db;
	k.system = DBTAP_SYS_REDIS;
	k.flags = flags;
	k.query_hash = fp(text);
	return pgh_err_get(&k, status);
}

static void expect_text(const char *pattern, const char *seen, uint16_t flags)
{
	const struct dbtap_ev_text *t = pgh_text_find(fp(pattern));

	if (!t)
		print_error("no text record for \"%s\"\n", pattern);
	assert_non_null(t);
	assert_int_equal(t->system, DBTAP_SYS_REDIS);
	assert_int_equal(t->flags, flags);
	assert_int_equal(t->text_len, strlen(seen));
	assert_memory_equal(t->text, seen, strlen(seen));
}

/* ---- r01: RESP2 requests and replies ---- */

static void r01_resp2_basic(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	(void)state;
	e = ex(sc, SK1);
	cmd(&e->req, 3, "SET", "user:1234:cart", "v1");
	raw(&e->resp, "+OK\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "get", "user:98:cart");
	raw(&e->resp, "$2\r\nv1\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "GET", "missing:7");
	raw(&e->resp, "$-1\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "INCR", "counter");
	raw(&e->resp, ":42\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 4, "LRANGE", "list:0", "0", "-1");
	raw(&e->resp, "*3\r\n$1\r\na\r\n$0\r\n\r\n*-1\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 3, "CLIENT", "SETNAME", "secret-name");
	raw(&e->resp, "+OK\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 3, "AUTH", "user", "password");
	raw(&e->resp, "-WRONGPASS invalid username-password pair\r\n");
	run_all(sc);

	assert_int_equal(series("SET user:?:cart")->count, 1);
	assert_int_equal(series("SET user:?:cart")->sum_ns, LAT_NS);
	assert_int_equal(series("GET user:?:cart")->count, 1);
	assert_int_equal(series("GET missing:?")->count, 1);
	assert_int_equal(series("INCR counter")->count, 1);
	assert_int_equal(series("LRANGE list:?")->count, 1);
	assert_int_equal(series("CLIENT SETNAME")->count, 1);
	assert_int_equal(series("AUTH")->count, 1);
	assert_int_equal(series("AUTH")->errors, 1);
	assert_int_equal(err_count(name32("0"), 0, "AUTH", "WRONGPASS"), 1);
	assert_int_equal(pgh_agg_count(), 7);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 7);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 0);
	expect_text("SET user:?:cart", "SET user:1234:cart", 0);
	expect_text("GET user:?:cart", "GET user:98:cart", 0);
	expect_text("CLIENT SETNAME", "CLIENT SETNAME", 0);
	expect_text("AUTH", "AUTH", 0);
	assert_int_equal(pgh_conn(SK1)->db_id, name32("0"));
	assert_int_equal(pgh_event_count_type(DBTAP_EV_CONN_OPEN), 1);
	sc_free(sc);
}

/* ---- r02: inline commands ---- */

static void r02_inline(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	(void)state;
	e = ex(sc, SK1);
	raw(&e->req, "PING\r\n");
	raw(&e->resp, "+PONG\r\n");
	e = ex(sc, SK1);
	raw(&e->req, "\r\nget  user:42:x\r\n");
	raw(&e->resp, "$-1\r\n");
	e = ex(sc, SK1);
	raw(&e->req, "set k1 v\nset k22 w\n");
	raw(&e->resp, "+OK\r\n+OK\r\n");
	run_all(sc);

	assert_int_equal(series("PING")->count, 1);
	assert_int_equal(series("GET user:?:x")->count, 1);
	assert_int_equal(series("SET k?")->count, 2);
	assert_int_equal(series("SET k?")->sum_ns, 2 * LAT_NS);
	expect_text("GET user:?:x", "GET user:42:x", 0);
	assert_int_equal(pgh_agg_count(), 3);
	sc_free(sc);
}

/* ---- r03: pipelines and error replies ---- */

static void r03_pipeline_errors(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	(void)state;
	e = ex(sc, SK1);
	cmd(&e->req, 3, "SET", "a", "1");
	cmd(&e->req, 3, "LPUSH", "a", "x");
	cmd(&e->req, 1, "NOSUCHCMD");
	cmd(&e->req, 2, "GET", "a");
	raw(&e->resp, "+OK\r\n");
	raw(&e->resp, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
	raw(&e->resp, "-ERR unknown command 'NOSUCHCMD', with args beginning with: \r\n");
	raw(&e->resp, "$1\r\n1\r\n");
	run_all(sc);

	assert_int_equal(series("SET a")->count, 1);
	assert_int_equal(series("LPUSH a")->count, 1);
	assert_int_equal(series("LPUSH a")->errors, 1);
	assert_int_equal(err_count(name32("0"), 0, "LPUSH a", "WRONGTYPE"), 1);
	assert_int_equal(series("NOSUCHCMD")->errors, 1);
	assert_int_equal(err_count(name32("0"), 0, "NOSUCHCMD", "ERR"), 1);
	assert_int_equal(series("GET a")->errors, 0);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 4);
	assert_int_equal(pgh_err_count(), 2);
	sc_free(sc);
}

/* ---- r04: RESP3 types, attributes, pushes, nesting ---- */

static void r04_resp3(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	(void)state;
	e = ex(sc, SK1);
	cmd(&e->req, 2, "HELLO", "3");
	raw(&e->resp, "%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n"
		      "$7\r\nmodules\r\n*0\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "GET", "k:1");
	/* an invalidation push first: never a reply */
	raw(&e->resp, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nk:1\r\n");
	raw(&e->resp, "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n$3\r\nabc\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "SMEMBERS", "s:2");
	raw(&e->resp, "~2\r\n=7\r\ntxt:abc\r\n(3492890328409238509324850943850943825024385\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "EXISTS", "x");
	raw(&e->resp, "#f\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "GET", "nil");
	raw(&e->resp, "_\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "XRANGE", "stream:9");
	raw(&e->resp, "*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n*1\r\n%1\r\n$1\r\nk\r\n_\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "FCALL", "f");
	raw(&e->resp, "!21\r\nSYNTAX invalid syntax\r\n");
	run_all(sc);

	assert_int_equal(series("HELLO")->count, 1);
	assert_int_equal(series("GET k:?")->count, 1);
	assert_int_equal(series("GET k:?")->sum_ns, LAT_NS);
	assert_int_equal(series("SMEMBERS s:?")->count, 1);
	assert_int_equal(series("EXISTS x")->count, 1);
	assert_int_equal(series("GET nil")->count, 1);
	assert_int_equal(series("XRANGE stream:?")->count, 1);
	assert_int_equal(series("FCALL")->errors, 1);
	assert_int_equal(err_count(name32("0"), 0, "FCALL", "SYNTAX"), 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 7);
	assert_int_equal(pgh_conn(SK1)->head, pgh_conn(SK1)->tail);
	assert_int_equal(pgh_conn(SK1)->redis.rp_depth, 0);
	sc_free(sc);
}

/* ---- r05: MULTI/EXEC, DISCARD, EXECABORT, WATCH ---- */

static void r05_transactions(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	(void)state;
	e = ex(sc, SK1);
	cmd(&e->req, 1, "MULTI");
	raw(&e->resp, "+OK\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 3, "SET", "t:1", "v");
	raw(&e->resp, "+QUEUED\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "INCR", "t:2");
	raw(&e->resp, "+QUEUED\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 3, "LPUSH", "t:1", "x");
	raw(&e->resp, "+QUEUED\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 1, "EXEC");
	raw(&e->resp, "*3\r\n+OK\r\n:1\r\n-WRONGTYPE Operation against a key\r\n");
	/* a discarded transaction: nothing ran */
	e = ex(sc, SK1);
	cmd(&e->req, 1, "MULTI");
	cmd(&e->req, 2, "INCR", "t:2");
	cmd(&e->req, 1, "DISCARD");
	raw(&e->resp, "+OK\r\n+QUEUED\r\n+OK\r\n");
	/* an aborted one (a command refused while queuing) */
	e = ex(sc, SK1);
	cmd(&e->req, 1, "MULTI");
	cmd(&e->req, 2, "INCR", "t:2");
	cmd(&e->req, 1, "BADCMD");
	cmd(&e->req, 1, "EXEC");
	raw(&e->resp, "+OK\r\n+QUEUED\r\n-ERR unknown command 'BADCMD'\r\n"
		      "-EXECABORT Transaction discarded because of previous errors.\r\n");
	/* WATCH failed: null reply */
	e = ex(sc, SK1);
	cmd(&e->req, 1, "MULTI");
	cmd(&e->req, 2, "INCR", "t:2");
	cmd(&e->req, 1, "EXEC");
	raw(&e->resp, "+OK\r\n+QUEUED\r\n*-1\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "GET", "t:1");
	raw(&e->resp, "$1\r\nv\r\n");
	run_all(sc);

	assert_int_equal(series("MULTI")->count, 4);
	assert_int_equal(series("SET t:?")->count, 1);
	/* a queued command is timed from its request to its element of EXEC's reply */
	assert_int_equal(series("SET t:?")->sum_ns, 3 * EX_GAP_NS + LAT_NS);
	assert_int_equal(series("INCR t:?")->count, 1);
	assert_int_equal(series("LPUSH t:?")->count, 1);
	assert_int_equal(series("LPUSH t:?")->errors, 1);
	assert_int_equal(err_count(name32("0"), 0, "LPUSH t:?", "WRONGTYPE"), 1);
	assert_int_equal(series_f(name32("0"), DBTAP_AGG_F_BATCH, "EXEC")->count, 3);
	assert_int_equal(series_f(name32("0"), DBTAP_AGG_F_BATCH, "EXEC")->rows, 3);
	assert_int_equal(series_f(name32("0"), DBTAP_AGG_F_BATCH, "EXEC")->errors, 1);
	assert_int_equal(err_count(name32("0"), DBTAP_AGG_F_BATCH, "EXEC", "EXECABORT"), 1);
	assert_int_equal(series("DISCARD")->count, 1);
	assert_int_equal(series("BADCMD")->errors, 1);
	assert_int_equal(series("GET t:?")->count, 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 4 + 3 + 3 + 1 + 1 + 1);
	assert_int_equal(pgh_conn(SK1)->redis.qpos, 0);
	assert_int_equal(pgh_conn(SK1)->redis.multi, 0);
	assert_int_equal(pgh_conn(SK1)->head, pgh_conn(SK1)->tail);
	sc_free(sc);
}

/* ---- r06: SELECT per connection ---- */

static void r06_select(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	(void)state;
	sc->sks[1] = SK2;
	sc->n_sks = 2;
	e = ex(sc, SK1);
	cmd(&e->req, 2, "SELECT", "3");
	raw(&e->resp, "+OK\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 3, "SET", "k", "v");
	raw(&e->resp, "+OK\r\n");
	e = ex(sc, SK2);
	cmd(&e->req, 3, "SET", "k", "v");
	raw(&e->resp, "+OK\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "SELECT", "99");
	raw(&e->resp, "-ERR DB index is out of range\r\n");
	e = ex(sc, SK1);
	raw(&e->req, "select 12\r\nget k\r\n");
	raw(&e->resp, "+OK\r\n$1\r\nv\r\n");
	run_all(sc);

	assert_int_equal(series_f(name32("0"), 0, "SELECT")->count, 1);
	assert_int_equal(series_f(name32("3"), 0, "SET k")->count, 1);
	assert_int_equal(series_f(name32("0"), 0, "SET k")->count, 1);
	assert_int_equal(series_f(name32("3"), 0, "SELECT")->count, 2);
	assert_int_equal(series_f(name32("3"), 0, "SELECT")->errors, 1);
	assert_int_equal(err_count(name32("3"), 0, "SELECT", "ERR"), 1);
	assert_int_equal(series_f(name32("12"), 0, "GET k")->count, 1);
	assert_int_equal(pgh_conn(SK1)->db_id, name32("12"));
	assert_int_equal(pgh_conn(SK2)->db_id, name32("0"));
	sc_free(sc);
}

/* ---- r07: blocking commands ---- */

static void r07_blocking(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	(void)state;
	e = ex(sc, SK1);
	cmd(&e->req, 3, "BLPOP", "queue:1", "1");
	raw(&e->resp, "*-1\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 6, "XREAD", "block", "1000", "STREAMS", "s", "$");
	raw(&e->resp, "_\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 6, "XREAD", "COUNT", "1", "STREAMS", "s", "0");
	raw(&e->resp, "*0\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 3, "WAIT", "1", "100");
	raw(&e->resp, ":0\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "LPOP", "queue:1");
	raw(&e->resp, "$-1\r\n");
	run_all(sc);

	assert_int_equal(series_f(name32("0"), DBTAP_AGG_F_BLOCKING, "BLPOP queue:?")->count, 1);
	assert_int_equal(series_f(name32("0"), DBTAP_AGG_F_BLOCKING, "XREAD")->count, 1);
	assert_int_equal(series_f(name32("0"), 0, "XREAD")->count, 1);
	assert_int_equal(series_f(name32("0"), DBTAP_AGG_F_BLOCKING, "WAIT")->count, 1);
	assert_int_equal(series_f(name32("0"), 0, "LPOP queue:?")->count, 1);
	assert_int_equal(pgh_agg_count(), 5);
	sc_free(sc);
}

/* ---- r08: pub/sub, RESP2 and RESP3 ---- */

static void r08_pubsub(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	(void)state;
	sc->sks[1] = SK2;
	sc->n_sks = 2;
	/* RESP2: one confirmation per channel, then pushed messages */
	e = ex(sc, SK1);
	cmd(&e->req, 3, "SUBSCRIBE", "news:1", "news:2");
	raw(&e->resp, "*3\r\n$9\r\nsubscribe\r\n$6\r\nnews:1\r\n:1\r\n");
	raw(&e->resp, "*3\r\n$9\r\nsubscribe\r\n$6\r\nnews:2\r\n:2\r\n");
	e = ex(sc, SK1);
	raw(&e->resp, "*3\r\n$7\r\nmessage\r\n$6\r\nnews:1\r\n$5\r\nhello\r\n");
	raw(&e->resp, "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$6\r\nnews:2\r\n$2\r\nhi\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 1, "PING");
	raw(&e->resp, "*3\r\n$7\r\nmessage\r\n$6\r\nnews:1\r\n$3\r\nbye\r\n");
	raw(&e->resp, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 1, "UNSUBSCRIBE");
	raw(&e->resp, "*3\r\n$11\r\nunsubscribe\r\n$6\r\nnews:1\r\n:1\r\n");
	raw(&e->resp, "*3\r\n$11\r\nunsubscribe\r\n$6\r\nnews:2\r\n:0\r\n");
	/* RESP3: confirmations and messages are pushes */
	e = ex(sc, SK2);
	cmd(&e->req, 2, "SSUBSCRIBE", "shard:5");
	raw(&e->resp, ">3\r\n$10\r\nssubscribe\r\n$7\r\nshard:5\r\n:1\r\n");
	e = ex(sc, SK2);
	raw(&e->resp, ">3\r\n$8\r\nsmessage\r\n$7\r\nshard:5\r\n$1\r\nm\r\n");
	e = ex(sc, SK2);
	cmd(&e->req, 2, "GET", "k");
	raw(&e->resp, ">3\r\n$8\r\nsmessage\r\n$7\r\nshard:5\r\n$1\r\nn\r\n");
	raw(&e->resp, "$1\r\nv\r\n");
	run_all(sc);

	assert_int_equal(series("SUBSCRIBE news:?")->count, 1);
	/* done at its last confirmation */
	assert_int_equal(series("SUBSCRIBE news:?")->sum_ns, LAT_NS);
	assert_int_equal(series("PING")->count, 1);
	assert_int_equal(series("PING")->sum_ns, LAT_NS);
	assert_int_equal(series("UNSUBSCRIBE")->count, 1);
	assert_int_equal(series("SSUBSCRIBE shard:?")->count, 1);
	assert_int_equal(series("GET k")->count, 1);
	assert_int_equal(series("GET k")->sum_ns, LAT_NS);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 5);
	assert_int_equal(pgh_conn(SK1)->head, pgh_conn(SK1)->tail);
	assert_int_equal(pgh_conn(SK2)->head, pgh_conn(SK2)->tail);
	sc_free(sc);
}

/* ---- r09: more than CONN_MAX_OPS commands in flight ---- */

static void r09_deep_pipeline(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;
	unsigned int i;

	(void)state;
	/* 40 identical GETs: merged into the newest queued entry, all timed */
	e = ex(sc, SK1);
	for (i = 0; i < 40; i++)
		cmd(&e->req, 2, "GET", i % 2 ? "key:000000000001" : "key:2");
	for (i = 0; i < 40; i++)
		raw(&e->resp, "$3\r\nxxx\r\n");
	/* 16 SETs then 4 INCRs: the INCRs are counted at once, their replies consumed */
	e = ex(sc, SK1);
	for (i = 0; i < 16; i++)
		cmd(&e->req, 3, "SET", "key:1", "v");
	for (i = 0; i < 4; i++)
		cmd(&e->req, 2, "INCR", "ctr");
	for (i = 0; i < 16; i++)
		raw(&e->resp, "+OK\r\n");
	for (i = 0; i < 4; i++)
		raw(&e->resp, ":1\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "GET", "key:1");
	raw(&e->resp, "$1\r\nv\r\n");
	run_all(sc);

	assert_int_equal(series("GET key:?")->count, 41);
	assert_int_equal(series("GET key:?")->sum_ns, 41 * LAT_NS);
	assert_int_equal(series("SET key:?")->count, 16);
	assert_int_equal(series("SET key:?")->sum_ns, 16 * LAT_NS);
	assert_int_equal(series("INCR ctr")->count, 4);
	assert_int_equal(series("INCR ctr")->sum_ns, 0);
	assert_int_equal(pgh_counter(DBTAP_CNT_DROP_PIPELINE), 4);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 61);
	assert_int_equal(pgh_conn(SK1)->redis.lost, 0);
	assert_int_equal(pgh_conn(SK1)->head, pgh_conn(SK1)->tail);
	sc_free(sc);
}

/* ---- r10: chunks past the scratch (refilled from the user buffer) ---- */

static struct scenario *big_scenario(void)
{
	struct scenario *sc = sc_new();
	struct exchange *e;
	char key[32];
	unsigned int i;

	/* 600 pipelined commands (~25 KiB in one read), two kinds alternating in runs */
	sc->split_step = 97;
	e = ex(sc, SK1);
	for (i = 0; i < 600; i++) {
		snprintf(key, sizeof(key), "item:%u", i);
		if (i < 300)
			cmd(&e->req, 3, "SET", key, "value-value-value");
		else
			cmd(&e->req, 2, "GET", key);
	}
	for (i = 0; i < 600; i++)
		raw(&e->resp, i < 300 ? "+OK\r\n" : "$17\r\nvalue-value-value\r\n");
	/* a 20000-byte value each way */
	e = ex(sc, SK1);
	cmd(&e->req, 2, "GET", "blob:1");
	bulk_filler(&e->resp, 20000);
	return sc;
}

static void r10_past_the_scratch(void **state)
{
	struct scenario *sc = big_scenario();
	struct plan pl = {.how = CH_COALESCED};
	char why[256];

	(void)state;
	run_all(sc);
	assert_int_equal(series("SET item:?")->count, 300);
	assert_int_equal(series("SET item:?")->sum_ns, 300 * LAT_NS);
	/* 16 SETs queued, 284 merged into the newest; the GETs find no room: counted at once */
	assert_int_equal(series("GET item:?")->count, 300);
	assert_int_equal(series("GET item:?")->sum_ns, 0);
	assert_int_equal(pgh_counter(DBTAP_CNT_DROP_PIPELINE), 300);
	assert_int_equal(series("GET blob:?")->count, 1);
	assert_int_equal(series("GET blob:?")->sum_ns, LAT_NS);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 0);

	/* without a user buffer (readv), request bytes past the scratch cannot be read:
	 * counted, and the connection is left alone rather than misread */
	sc->no_user_buf = true;
	if (run(sc, &pl, why, sizeof(why)))
		fail_msg("%s", why);
	assert_int_equal(pgh_counter(DBTAP_CNT_DROP_READ), 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 1);
	assert_int_equal(pgh_conn(SK1)->phase, REDIS_PHASE_IGNORE);

	/* replies past the scratch of a writev (Redis writes long replies so): the commands in
	 * flight are counted then, later ones when read; counts stay exact */
	pl.how = CH_REPLIES;
	if (run(sc, &pl, why, sizeof(why)))
		fail_msg("%s", why);
	assert_int_equal(pgh_counter(DBTAP_CNT_DROP_READ), 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 1);
	assert_int_equal(pgh_conn(SK1)->phase, REDIS_PHASE_REQUESTS);
	assert_int_equal(series("SET item:?")->count, 300);
	assert_int_equal(series("GET item:?")->count, 300);
	assert_int_equal(series("GET blob:?")->count, 1);
	assert_int_equal(series("GET blob:?")->sum_ns, 0);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 601);
	assert_int_equal(pgh_conn(SK1)->head, pgh_conn(SK1)->tail);
	sc_free(sc);
}

/* ---- r11: TLS and garbage ---- */

static void r11_tls_and_garbage(void **state)
{
	static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5};
	static const uint8_t junk[] = {0x00, 0x01, 0x02};
	struct plan pl = {.how = CH_MESSAGES};
	struct scenario *sc = sc_new();
	struct exchange *e;
	char why[256];

	(void)state;
	sc->sks[1] = SK2;
	sc->n_sks = 2;
	e = ex(sc, SK1);
	put(&e->req, hello, sizeof(hello));
	msg_end(&e->req);
	raw(&e->resp, "+OK\r\n");
	e = ex(sc, SK2);
	put(&e->req, junk, sizeof(junk));
	msg_end(&e->req);
	if (run(sc, &pl, why, sizeof(why)))
		fail_msg("%s", why);
	assert_int_equal(pgh_counter(DBTAP_CNT_ENCRYPTED), 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_UNDECODABLE), 1);
	assert_true(pgh_conn(SK1)->flags & DBTAP_CONN_F_ENCRYPTED);
	assert_true(pgh_conn(SK2)->flags & DBTAP_CONN_F_UNDECODABLE);
	assert_int_equal(pgh_agg_count(), 0);
	sc_free(sc);
}

/* ---- r12: a malformed request loses framing once, counted ---- */

static void r12_desync(void **state)
{
	struct plan pl = {.how = CH_MESSAGES};
	struct scenario *sc = sc_new();
	struct exchange *e;
	char why[256];

	(void)state;
	e = ex(sc, SK1);
	raw(&e->req, "*2\r\n$3\r\nGET\r\n#1\r\nk\r\n");
	e = ex(sc, SK1);
	cmd(&e->req, 2, "GET", "k");
	raw(&e->resp, "$-1\r\n");
	if (run(sc, &pl, why, sizeof(why)))
		fail_msg("%s", why);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 1);
	assert_int_equal(pgh_agg_count(), 0);
	sc_free(sc);
}

/* ---- r13: the hash constants in redis.bpf.h ---- */

static uint32_t raw32(const char *s)
{
	uint32_t h = DBTAP_FNV32_OFFSET;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * DBTAP_FNV32_PRIME;
	return h;
}

static void r13_hash_constants(void **state)
{
	(void)state;
#define CHECK(name) assert_int_equal(REDIS_CMD_##name, raw32(#name))
	CHECK(SELECT);
	CHECK(MULTI);
	CHECK(EXEC);
	CHECK(DISCARD);
	CHECK(RESET);
	CHECK(SUBSCRIBE);
	CHECK(PSUBSCRIBE);
	CHECK(SSUBSCRIBE);
	CHECK(UNSUBSCRIBE);
	CHECK(PUNSUBSCRIBE);
	CHECK(SUNSUBSCRIBE);
	CHECK(BLPOP);
	CHECK(BRPOP);
	CHECK(BRPOPLPUSH);
	CHECK(BLMOVE);
	CHECK(BLMPOP);
	CHECK(BZPOPMIN);
	CHECK(BZPOPMAX);
	CHECK(BZMPOP);
	CHECK(WAIT);
	CHECK(WAITAOF);
	CHECK(XREAD);
	CHECK(XREADGROUP);
	CHECK(ACL);
	CHECK(CLIENT);
	CHECK(CLUSTER);
	CHECK(COMMAND);
	CHECK(CONFIG);
	CHECK(DEBUG);
	CHECK(FUNCTION);
	CHECK(LATENCY);
	CHECK(MEMORY);
	CHECK(MODULE);
	CHECK(OBJECT);
	CHECK(PUBSUB);
	CHECK(SCRIPT);
	CHECK(SLOWLOG);
	CHECK(XGROUP);
	CHECK(XINFO);
	CHECK(AUTH);
	CHECK(HELLO);
	CHECK(PING);
	CHECK(ECHO);
	CHECK(INFO);
	CHECK(EVAL);
	CHECK(EVALSHA);
	CHECK(EVAL_RO);
	CHECK(EVALSHA_RO);
	CHECK(FCALL);
	CHECK(FCALL_RO);
	CHECK(QUIT);
#undef CHECK
	assert_int_equal(REDIS_PUSH_MESSAGE, raw32("message"));
	assert_int_equal(REDIS_PUSH_PMESSAGE, raw32("pmessage"));
	assert_int_equal(REDIS_PUSH_SMESSAGE, raw32("smessage"));
	assert_int_equal(REDIS_PUSH_SUBSCRIBE, raw32("subscribe"));
	assert_int_equal(REDIS_PUSH_PSUBSCRIBE, raw32("psubscribe"));
	assert_int_equal(REDIS_PUSH_SSUBSCRIBE, raw32("ssubscribe"));
	assert_int_equal(REDIS_PUSH_UNSUBSCRIBE, raw32("unsubscribe"));
	assert_int_equal(REDIS_PUSH_PUNSUBSCRIBE, raw32("punsubscribe"));
	assert_int_equal(REDIS_PUSH_SUNSUBSCRIBE, raw32("sunsubscribe"));
	assert_int_equal(REDIS_DB0_HASH, name32("0"));
}

/* ---- r14: long keys: text and fingerprint cut together ---- */

static void r14_long_key(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;
	char key[200], seen[64], pattern[64];

	(void)state;
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = 0;
	e = ex(sc, SK1);
	cmd(&e->req, 2, "GET", key);
	raw(&e->resp, "$-1\r\n");
	run_all(sc);
	/* REDIS_TEXT_BUF bytes: "GET " and the key's first bytes */
	snprintf(seen, sizeof(seen), "GET %.*s", REDIS_TEXT_BUF - 4, key);
	snprintf(pattern, sizeof(pattern), "%s", seen);
	expect_text(pattern, seen, DBTAP_TEXT_F_TRUNCATED);
	assert_int_equal(series(pattern)->count, 1);
	sc_free(sc);
}

/* ---- r16: the scratch refilled inside every kind of token ---- */

/* 4500 commands in 15 reads of 300 (about 20 KiB each way), values of every length up to
 * 96 bytes, GET replies five times as long: the ends of the scratch (refilled from the user
 * buffer) and of the split chunks fall inside headers, names, keys and skipped values, each
 * token then read across them. */
static void r16_scratch_cuts(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e = NULL;
	char key[32], field[32], val[128], hdr[32];
	unsigned int i, j, vlen;

	(void)state;
	sc->split_step = 4999;
	for (i = 0; i < 4500; i++) {
		if (i % 300 == 0)
			e = ex(sc, SK1);
		vlen = i % 97;
		memset(val, 'a' + i % 26, vlen);
		val[vlen] = 0;
		snprintf(key, sizeof(key), "key:%u", i);
		snprintf(field, sizeof(field), "f%u", i % 7);
		switch (i % 3) {
		case 0:
			cmd(&e->req, 3, "SET", key, val);
			raw(&e->resp, "+OK\r\n");
			break;
		case 1:
			cmd(&e->req, 2, "GET", key);
			snprintf(hdr, sizeof(hdr), "$%u\r\n", 5 * vlen);
			put(&e->resp, hdr, strlen(hdr));
			for (j = 0; j < 5; j++)
				put(&e->resp, val, vlen);
			raw(&e->resp, "\r\n");
			break;
		default:
			cmd(&e->req, 4, "HSET", key, field, val);
			raw(&e->resp, ":1\r\n");
			break;
		}
	}
	run_all(sc);
	assert_int_equal(series("SET key:?")->count, 1500);
	assert_int_equal(series("GET key:?")->count, 1500);
	assert_int_equal(series("HSET key:?")->count, 1500);
	assert_int_equal(pgh_agg_count(), 3);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 4500);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 0);
	assert_int_equal(pgh_counter(DBTAP_CNT_DROP_READ), 0);
	assert_int_equal(pgh_conn(SK1)->head, pgh_conn(SK1)->tail);
	assert_int_equal(pgh_conn(SK1)->redis.lost, 0);
	sc_free(sc);
}

/* ---- r17: headers, names and keys of unusual shapes ---- */

#define NAME_MAX_BYTES 32 /* REDIS_NAME_MAX (redis.bpf.h): command name bytes looked at */

static void r17_unusual_shapes(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;
	char name[41], sub[41], text[64], hdr[32], *big;
	unsigned int i;

	(void)state;
	/* lengths with leading zeros, some more than a step reads at once */
	e = ex(sc, SK1);
	raw(&e->req, "*002\r\n$0003\r\nget\r\n$00005\r\nkey:7\r\n");
	raw(&e->resp, "$003\r\nabc\r\n");
	e = ex(sc, SK1);
	raw(&e->req, "*2\r\n$00000000000000003\r\nGET\r\n$000000000000000005\r\nkey:8\r\n");
	raw(&e->resp, "$0000000000000003\r\nabc\r\n");
	/* no command, then one; an empty key */
	e = ex(sc, SK1);
	raw(&e->req, "*0\r\n*1\r\n$4\r\nPING\r\n");
	raw(&e->resp, "+PONG\r\n");
	e = ex(sc, SK1);
	raw(&e->req, "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
	raw(&e->resp, "$-1\r\n");
	/* 70 arguments (more than one call reads at once), then 64 */
	for (i = 0; i < 2; i++) {
		unsigned int n = i ? 64 : 70, j;

		e = ex(sc, SK1);
		snprintf(hdr, sizeof(hdr), "*%u\r\n$3\r\nDEL\r\n", n);
		put(&e->req, hdr, strlen(hdr));
		for (j = 1; j < n; j++) {
			snprintf(text, sizeof(text), "key:%u", j);
			snprintf(hdr, sizeof(hdr), "$%zu\r\n", strlen(text));
			put(&e->req, hdr, strlen(hdr));
			put(&e->req, text, strlen(text));
			put(&e->req, "\r\n", 2);
		}
		msg_end(&e->req);
		snprintf(hdr, sizeof(hdr), ":%u\r\n", n - 1);
		raw(&e->resp, hdr);
	}
	/* a name longer than REDIS_NAME_MAX, answered by a long error line */
	memset(name, 'z', 40);
	name[40] = 0;
	e = ex(sc, SK1);
	cmd(&e->req, 2, name, "arg");
	raw(&e->resp, "-ERR unknown command 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz', with args "
		      "beginning with: 'arg' and a message longer than one parser step reads\r\n");
	/* a subcommand longer than the text */
	memset(sub, 'x', 40);
	memcpy(sub, "get", 3);
	sub[40] = 0;
	e = ex(sc, SK1);
	cmd(&e->req, 2, "CONFIG", sub);
	raw(&e->resp, "!50\r\nERR a bulk error longer than one parser step reads\r\n");
	/* a key longer than the scratch */
	big = malloc(10001);
	assert_non_null(big);
	memset(big, 'q', 10000);
	big[10000] = 0;
	e = ex(sc, SK1);
	cmd(&e->req, 2, "GET", big);
	raw(&e->resp, "$-1\r\n");
	free(big);
	/* SELECT's index past the digits hashed; XREADGROUP's BLOCK among 10 arguments */
	e = ex(sc, SK1);
	cmd(&e->req, 2, "SELECT", "000000000003");
	cmd(&e->req, 10, "XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "BLOCK", "0", "STREAMS",
	    "s", ">");
	raw(&e->resp, "+OK\r\n*-1\r\n");
	run_all(sc);

	assert_int_equal(series("GET key:?")->count, 2);
	assert_int_equal(series("PING")->count, 1);
	assert_int_equal(series("GET")->count, 1);
	assert_int_equal(series("DEL key:?")->count, 2);
	/* the name's first REDIS_NAME_MAX bytes, upper-cased; the key did not fit */
	memset(text, 'Z', NAME_MAX_BYTES);
	text[NAME_MAX_BYTES] = 0;
	assert_int_equal(series(text)->errors, 1);
	assert_int_equal(err_count(name32("0"), 0, text, "ERR"), 1);
	expect_text(text, text, DBTAP_TEXT_F_TRUNCATED);
	/* "CONFIG " and the subcommand's first bytes, upper-cased, up to REDIS_TEXT_BUF */
	snprintf(text, sizeof(text), "CONFIG GET%.*s", REDIS_TEXT_BUF - 10,
		 "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
	assert_int_equal(series(text)->errors, 1);
	assert_int_equal(err_count(name32("0"), 0, text, "ERR"), 1);
	expect_text(text, text, DBTAP_TEXT_F_TRUNCATED);
	snprintf(text, sizeof(text), "GET %.*s", REDIS_TEXT_BUF - 4,
		 "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq");
	assert_int_equal(series(text)->count, 1);
	expect_text(text, text, DBTAP_TEXT_F_TRUNCATED);
	assert_int_equal(series("SELECT")->count, 1);
	assert_int_equal(series_f(name32("0000000000"), DBTAP_AGG_F_BLOCKING, "XREADGROUP")->count,
			 1);
	assert_int_equal(pgh_conn(SK1)->db_id, name32("0000000000"));
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 11);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 0);
	assert_int_equal(pgh_conn(SK1)->head, pgh_conn(SK1)->tail);
	sc_free(sc);
}

/* ---- r18: malformed headers lose framing at the same byte however the stream is cut ---- */

static void desync_case(const char *bad_req, const char *bad_resp)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	e = ex(sc, SK1);
	cmd(&e->req, 1, "PING");
	raw(&e->resp, "+PONG\r\n");
	e = ex(sc, SK1);
	if (bad_req) {
		raw(&e->req, bad_req);
	} else {
		cmd(&e->req, 2, "GET", "k");
		raw(&e->resp, bad_resp);
	}
	/* not decoded any more: framing is lost */
	e = ex(sc, SK1);
	cmd(&e->req, 1, "PING");
	raw(&e->resp, "+PONG\r\n");
	run_all(sc);
	assert_int_equal(series("PING")->count, 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 1);
	assert_int_equal(pgh_conn(SK1)->phase, REDIS_PHASE_IGNORE);
	assert_true(pgh_conn(SK1)->flags & DBTAP_CONN_F_UNDECODABLE);
	sc_free(sc);
}

static void r18_desync_shapes(void **state)
{
	(void)state;
	desync_case("*2\r\n$3\r\nGET\r\n$1000000000\r\nk\r\n", NULL); /* past REDIS_MAX_LEN */
	desync_case("*2\r\n$3\r\nGET\r\n$0000000000000001000000000\r\nk\r\n", NULL);
	desync_case("*-1\r\n", NULL);
	desync_case("*1\r\n:3\r\n", NULL);
	desync_case("*1\r\n$4x\r\nPING\r\n", NULL);
	desync_case("*1\r\n$4\r\rPING\r\n", NULL);
	desync_case("*1x\r\n$4\r\nPING\r\n", NULL);
	desync_case(NULL, "$1000000000\r\n");
	desync_case(NULL, "$-1-\r\n");
	desync_case(NULL, "+OK\rX");
	desync_case(NULL, "@1\r\n");
}

/* ---- r15: userspace normalization of text records (probes/redis/redis_user.c) ---- */

static void expect_norm(const char *text, bool raw, const char *op, const char *summary,
			const char *out)
{
	struct sql_normalized n;

	assert_int_equal(dbtap_redis_normalize(text, strlen(text), 0, raw, &n), 0);
	assert_string_equal(n.operation, op);
	assert_string_equal(n.summary, summary);
	assert_string_equal(n.collection, "");
	assert_string_equal(n.text, out);
	free(n.text);
}

static void r15_normalize(void **state)
{
	(void)state;
	expect_norm("GET user:1234:cart", false, "GET", "GET user:?:cart", "GET user:?:cart");
	expect_norm("GET user:1234:cart", true, "GET", "GET user:?:cart", "GET user:1234:cart");
	expect_norm("CLIENT SETNAME", false, "CLIENT SETNAME", "CLIENT SETNAME", "CLIENT SETNAME");
	expect_norm("CONFIG GET", false, "CONFIG GET", "CONFIG GET", "CONFIG GET");
	expect_norm("AUTH", false, "AUTH", "AUTH", "AUTH");
	expect_norm("SET a\x01"
		    "b 7",
		    false, "SET", "SET a?b ?", "SET a?b ?");
	expect_norm("HSET order:12-34:99x", false, "HSET", "HSET order:?-?:?x",
		    "HSET order:?-?:?x");
	/* identifiers (hex with a digit) fold whole, as session ids and hashes vary */
	expect_norm("GET session:3fa9c1d2", false, "GET", "GET session:?", "GET session:?");
	expect_norm("GET cache:user:42:feed", false, "GET", "GET cache:user:?:feed",
		    "GET cache:user:?:feed");
	expect_norm("GET order12", false, "GET", "GET order?", "GET order?");
	expect_norm("GET deadbeef:face", false, "GET", "GET deadbeef:face", "GET deadbeef:face");
	expect_norm("", false, "", "", "");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(r01_resp2_basic),     cmocka_unit_test(r02_inline),
		cmocka_unit_test(r03_pipeline_errors), cmocka_unit_test(r04_resp3),
		cmocka_unit_test(r05_transactions),    cmocka_unit_test(r06_select),
		cmocka_unit_test(r07_blocking),	       cmocka_unit_test(r08_pubsub),
		cmocka_unit_test(r09_deep_pipeline),   cmocka_unit_test(r10_past_the_scratch),
		cmocka_unit_test(r11_tls_and_garbage), cmocka_unit_test(r12_desync),
		cmocka_unit_test(r13_hash_constants),  cmocka_unit_test(r14_long_key),
		cmocka_unit_test(r15_normalize),       cmocka_unit_test(r16_scratch_cuts),
		cmocka_unit_test(r17_unusual_shapes),  cmocka_unit_test(r18_desync_shapes),
	};
	int rc;

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	pgh_free();
	return rc;
}
