// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_mysql_decoder.c - the kernel's MySQL/MariaDB decoder (probes/mysql/mysql.bpf.h), run in
 * userspace through tests/lib/pg_harness: protocol scenarios with exact counts, errors, rows,
 * error numbers, texts and connection events; each framing scenario is replayed with every
 * chunking (one chunk per packet, each exchange's direction coalesced, split in two at every
 * byte offset of either direction, one byte per chunk) and must give exactly the results of
 * the one-chunk-per-packet run.
 *
 * Run: build/tests/test_mysql_decoder ['s03*']   (optional cmocka name filter)
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
#include "probes/sql/sql_fingerprint.h"
#include "probes/mysql/mysql_user.h"

/* ---- MySQL client/server protocol (MySQL source documentation) ---- */

#define COM_QUIT	       0x01
#define COM_INIT_DB	       0x02
#define COM_QUERY	       0x03
#define COM_STATISTICS	       0x09
#define COM_PING	       0x0e
#define COM_STMT_PREPARE       0x16
#define COM_STMT_EXECUTE       0x17
#define COM_STMT_SEND_LONG     0x18
#define COM_STMT_CLOSE	       0x19
#define HDR_OK		       0x00
#define HDR_EOF		       0xfe
#define HDR_ERR		       0xff
#define HDR_LOCAL_INFILE       0xfb
#define PROTOCOL_V10	       10
#define CLIENT_MYSQL	       (1u << 0)
#define CLIENT_CONNECT_WITH_DB (1u << 3)
#define CLIENT_COMPRESS	       (1u << 5)
#define CLIENT_PROTOCOL_41     (1u << 9)
#define CLIENT_SSL	       (1u << 11)
#define CLIENT_SECURE_CONN     (1u << 15)
#define CLIENT_MULTI_STMTS     (1u << 16)
#define CLIENT_MULTI_RESULTS   (1u << 17)
#define CLIENT_PLUGIN_AUTH     (1u << 19)
#define CLIENT_AUTH_LENENC     (1u << 21)
#define CLIENT_DEPRECATE_EOF   (1u << 24)
#define SERVER_AUTOCOMMIT      0x0002
#define SERVER_MORE_RESULTS    0x0008
#define MAX_PAYLOAD	       0xffffffu
#define CHARSET_UTF8MB4	       45
#define TYPE_LONG	       3
#define TYPE_VAR_STRING	       253
#define STMT_ID_LAST	       0xffffffffu
#define AUTH_DATA_LEN	       20

/* probes/mysql/mysql.bpf.h: hash of a statement id never seen prepared, fixed texts */
#define UNKNOWN_STMT_TAG 0x4d53u
#define HASH_USE	 0x4d59534c55534531ull
#define HASH_PING	 0x4d59534c50494e47ull

/* ---- identities and clock ---- */

#define INSTANCE  5151
#define SK_A	  0xffff888022340000ull
#define SK_B	  0xffff888022341000ull
#define T0_NS	  1000000000ull
#define EX_GAP_NS 1000000ull
#define LAT_NS	  7000ull

#define MARIADB_VERSION "5.5.5-10.11.6-MariaDB-0+deb12u1"
#define MYSQL_VERSION	"8.0.36"

static uint32_t name_hash(const char *s)
{
	uint32_t h = DBTAP_FNV32_OFFSET;

	if (!*s)
		return 0;
	while (*s)
		h = dbtap_name_hash_step(h, (uint8_t)*s++);
	return h ? h : 1;
}

static uint64_t fp(const char *sql)
{
	struct sql_fp f;

	sql_fp_init(&f, SQL_FP_MYSQL);
	while (*sql)
		sql_fp_step(&f, (uint8_t)*sql++);
	return sql_fp_finish(&f);
}

/* ---- byte streams with packet boundaries ---- */

struct stream {
	uint8_t *buf;
	size_t len, cap;
	size_t *ends;
	size_t n_msgs, cap_msgs;
	uint8_t seq; /* next sequence id */
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

static void put_u8(struct stream *st, uint8_t v)
{
	put(st, &v, 1);
}

static void put_le16(struct stream *st, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	put(st, b, sizeof(b));
}

static void put_le32(struct stream *st, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	put(st, b, sizeof(b));
}

static void put_lenenc(struct stream *st, uint64_t v)
{
	if (v < 0xfb) {
		put_u8(st, (uint8_t)v);
	} else if (v < 0x10000) {
		put_u8(st, 0xfc);
		put_le16(st, (uint16_t)v);
	} else if (v < 0x1000000) {
		put_u8(st, 0xfd);
		put_le16(st, (uint16_t)v);
		put_u8(st, (uint8_t)(v >> 16));
	} else {
		put_u8(st, 0xfe);
		put_le32(st, (uint32_t)v);
		put_le32(st, (uint32_t)(v >> 32));
	}
}

static void put_lenstr(struct stream *st, const char *s)
{
	put_lenenc(st, strlen(s));
	put(st, s, strlen(s));
}

static void put_cstr(struct stream *st, const char *s)
{
	put(st, s, strlen(s) + 1);
}

/* Start a packet with the stream's next sequence id; pkt_end() patches its length. */
static size_t pkt_begin(struct stream *st)
{
	size_t at = st->len;

	put_le16(st, 0);
	put_u8(st, 0);
	put_u8(st, st->seq++);
	return at;
}

static void pkt_end(struct stream *st, size_t at)
{
	size_t n = st->len - at - 4;

	st->buf[at] = (uint8_t)n;
	st->buf[at + 1] = (uint8_t)(n >> 8);
	st->buf[at + 2] = (uint8_t)(n >> 16);
	if (st->n_msgs == st->cap_msgs) {
		st->cap_msgs = st->cap_msgs * 2 + 16;
		st->ends = realloc(st->ends, st->cap_msgs * sizeof(*st->ends));
		assert_non_null(st->ends);
	}
	st->ends[st->n_msgs++] = st->len;
}

static void stream_free(struct stream *st)
{
	free(st->buf);
	free(st->ends);
	memset(st, 0, sizeof(*st));
}

/* ---- client packets ---- */

static void cmd_text(struct stream *st, uint8_t cmd, const char *text)
{
	size_t at;

	st->seq = 0;
	at = pkt_begin(st);
	put_u8(st, cmd);
	put(st, text, strlen(text));
	pkt_end(st, at);
}

static void cmd_id(struct stream *st, uint8_t cmd, uint32_t id, bool params)
{
	size_t at;

	st->seq = 0;
	at = pkt_begin(st);
	put_u8(st, cmd);
	put_le32(st, id);
	if (cmd == COM_STMT_EXECUTE) {
		put_u8(st, 0);	 /* flags: no cursor */
		put_le32(st, 1); /* iteration count */
		if (params) {
			put_u8(st, 0); /* NULL bitmap */
			put_u8(st, 1); /* new params bound */
			put_le16(st, TYPE_LONG);
			put_le32(st, 42);
		}
	}
	pkt_end(st, at);
}

static void cmd_simple(struct stream *st, uint8_t cmd)
{
	size_t at;

	st->seq = 0;
	at = pkt_begin(st);
	put_u8(st, cmd);
	pkt_end(st, at);
}

static void handshake_response(struct stream *st, uint32_t caps, const char *user, const char *db)
{
	size_t at;
	int i;

	st->seq = 1;
	at = pkt_begin(st);
	put_le32(st, caps | (db ? CLIENT_CONNECT_WITH_DB : 0));
	put_le32(st, 1u << 24); /* max packet */
	put_u8(st, CHARSET_UTF8MB4);
	for (i = 0; i < 23; i++)
		put_u8(st, 0);
	put_cstr(st, user);
	if (caps & CLIENT_AUTH_LENENC)
		put_lenenc(st, AUTH_DATA_LEN);
	else
		put_u8(st, AUTH_DATA_LEN);
	for (i = 0; i < AUTH_DATA_LEN; i++)
		put_u8(st, (uint8_t)(0x30 + i)); /* scramble: never NUL */
	if (db)
		put_cstr(st, db);
	put_cstr(st, "mysql_native_password");
	pkt_end(st, at);
}

static void ssl_request(struct stream *st, uint32_t caps)
{
	size_t at;
	int i;

	st->seq = 1;
	at = pkt_begin(st);
	put_le32(st, caps | CLIENT_SSL);
	put_le32(st, 1u << 24);
	put_u8(st, CHARSET_UTF8MB4);
	for (i = 0; i < 23; i++)
		put_u8(st, 0);
	pkt_end(st, at);
}

/* ---- server packets ---- */

static void greeting(struct stream *st, const char *version, uint32_t caps)
{
	size_t at;
	int i;

	st->seq = 0;
	at = pkt_begin(st);
	put_u8(st, PROTOCOL_V10);
	put_cstr(st, version);
	put_le32(st, 77); /* thread id */
	for (i = 0; i < 8; i++)
		put_u8(st, (uint8_t)('a' + i));
	put_u8(st, 0);
	put_le16(st, (uint16_t)caps);
	put_u8(st, CHARSET_UTF8MB4);
	put_le16(st, SERVER_AUTOCOMMIT);
	put_le16(st, (uint16_t)(caps >> 16));
	put_u8(st, 21);
	for (i = 0; i < 10; i++)
		put_u8(st, 0);
	for (i = 0; i < 13; i++)
		put_u8(st, (uint8_t)('k' + i % 10));
	put_cstr(st, "mysql_native_password");
	pkt_end(st, at);
}

static void ok_pkt(struct stream *st, uint8_t hdr, uint64_t affected, uint16_t status)
{
	size_t at = pkt_begin(st);

	put_u8(st, hdr);
	put_lenenc(st, affected);
	put_lenenc(st, 0); /* last insert id */
	put_le16(st, status);
	put_le16(st, 0); /* warnings */
	pkt_end(st, at);
}

static void ok(struct stream *st, uint64_t affected)
{
	ok_pkt(st, HDR_OK, affected, SERVER_AUTOCOMMIT);
}

static void eof(struct stream *st, uint16_t status)
{
	size_t at = pkt_begin(st);

	put_u8(st, HDR_EOF);
	put_le16(st, 0);
	put_le16(st, status);
	pkt_end(st, at);
}

static void err(struct stream *st, uint16_t code, const char *sqlstate, const char *msg)
{
	size_t at = pkt_begin(st);

	put_u8(st, HDR_ERR);
	put_le16(st, code);
	put_u8(st, '#');
	put(st, sqlstate, 5);
	put(st, msg, strlen(msg));
	pkt_end(st, at);
}

static void coldef(struct stream *st, unsigned int i)
{
	size_t at = pkt_begin(st);
	char name[16];

	snprintf(name, sizeof(name), "c%u", i);
	put_lenstr(st, "def");
	put_lenstr(st, "shop");
	put_lenstr(st, "t");
	put_lenstr(st, "t");
	put_lenstr(st, name);
	put_lenstr(st, name);
	put_u8(st, 0x0c);
	put_le16(st, CHARSET_UTF8MB4);
	put_le32(st, 11);
	put_u8(st, TYPE_VAR_STRING);
	put_le16(st, 0);
	put_u8(st, 0);
	put_le16(st, 0);
	pkt_end(st, at);
}

/* A result set of @cols columns and @rows text rows (binary rows when @binary); ended by an
 * EOF, or an OK with 0xFE under CLIENT_DEPRECATE_EOF; @status on the terminator. */
static void result_set(struct stream *st, unsigned int cols, unsigned int rows, bool deprecate_eof,
		       bool binary, uint16_t status)
{
	unsigned int i, j;
	size_t at = pkt_begin(st);
	char val[16];

	put_lenenc(st, cols);
	pkt_end(st, at);
	for (i = 0; i < cols; i++)
		coldef(st, i);
	if (!deprecate_eof)
		eof(st, SERVER_AUTOCOMMIT);
	for (i = 0; i < rows; i++) {
		at = pkt_begin(st);
		if (binary)
			put_u8(st, 0x00); /* binary row header */
		for (j = 0; j < cols; j++) {
			snprintf(val, sizeof(val), "%u", i * 10 + j);
			put_lenstr(st, val);
		}
		pkt_end(st, at);
	}
	if (deprecate_eof)
		ok_pkt(st, HDR_EOF, 0, status);
	else
		eof(st, status);
}

static void prepare_ok(struct stream *st, uint32_t id, uint16_t cols, uint16_t params,
		       bool deprecate_eof)
{
	size_t at = pkt_begin(st);
	unsigned int i;

	put_u8(st, HDR_OK);
	put_le32(st, id);
	put_le16(st, cols);
	put_le16(st, params);
	put_u8(st, 0);
	put_le16(st, 0);
	pkt_end(st, at);
	for (i = 0; i < params; i++)
		coldef(st, 100 + i);
	if (params && !deprecate_eof)
		eof(st, SERVER_AUTOCOMMIT);
	for (i = 0; i < cols; i++)
		coldef(st, i);
	if (cols && !deprecate_eof)
		eof(st, SERVER_AUTOCOMMIT);
}

/* ---- scenarios ---- */

#define MAX_EX 48

struct exchange {
	uint64_t sk;
	struct stream req;
	struct stream resp;
	bool eof; /* the client goes away after the request */
};

struct scenario {
	uint64_t sks[2];
	uint16_t systems[2];
	unsigned int n_conns;
	struct exchange ex[MAX_EX];
	unsigned int n_ex;
	bool whole_requests; /* joined mid-stream: requests only in whole commands */
};

static struct scenario *sc_new(void)
{
	struct scenario *sc = calloc(1, sizeof(*sc));

	assert_non_null(sc);
	return sc;
}

static void sc_conn(struct scenario *sc, uint64_t sk, uint16_t system)
{
	sc->sks[sc->n_conns] = sk;
	sc->systems[sc->n_conns++] = system;
}

static struct exchange *ex_add(struct scenario *sc, uint64_t sk)
{
	struct exchange *e;

	assert_true(sc->n_ex < MAX_EX);
	e = &sc->ex[sc->n_ex++];
	e->sk = sk;
	e->resp.seq = 1;
	return e;
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

/* Login: greeting, HandshakeResponse41, the server's OK. */
static void ex_login(struct scenario *sc, uint64_t sk, const char *version, uint32_t caps,
		     const char *user, const char *db)
{
	struct exchange *e = ex_add(sc, sk);

	greeting(&e->resp, version,
		 caps | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONN | CLIENT_PLUGIN_AUTH |
			 CLIENT_CONNECT_WITH_DB | CLIENT_SSL | CLIENT_COMPRESS |
			 CLIENT_MULTI_RESULTS);
	/* the greeting comes first: its own exchange with an empty request */
	e = ex_add(sc, sk);
	handshake_response(&e->req,
			   caps | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONN | CLIENT_PLUGIN_AUTH |
				   CLIENT_MULTI_RESULTS,
			   user, db);
	e->resp.seq = 2;
	ok(&e->resp, 0);
}

static struct exchange *ex_query(struct scenario *sc, uint64_t sk, const char *sql)
{
	struct exchange *e = ex_add(sc, sk);

	cmd_text(&e->req, COM_QUERY, sql);
	return e;
}

/* ---- chunkings ---- */

enum chunking {
	CH_PACKETS,   /* one chunk per packet: the reference */
	CH_COALESCED, /* each exchange's request, then its response, as one chunk */
	CH_HEADERS,   /* each packet's 4-byte header, then its payload (as mariadbd reads) */
	CH_SPLIT,     /* coalesced, one direction's stream cut once at plan.at */
	CH_BYTES,     /* one byte per chunk */
};

struct plan {
	enum chunking how;
	enum io_dir dir; /* CH_SPLIT: the direction cut at @at */
	size_t at;	 /* CH_SPLIT: offset in that direction's whole stream */
};

static size_t next_cut(const struct plan *pl, enum io_dir dir, const struct stream *st, size_t base,
		       size_t pos, size_t *msg_i)
{
	switch (pl->how) {
	case CH_PACKETS:
		while (*msg_i < st->n_msgs && st->ends[*msg_i] <= pos)
			(*msg_i)++;
		return *msg_i < st->n_msgs ? st->ends[*msg_i] : st->len;
	case CH_COALESCED:
		return st->len;
	case CH_HEADERS:
		while (*msg_i < st->n_msgs && st->ends[*msg_i] <= pos)
			(*msg_i)++;
		if (*msg_i >= st->n_msgs)
			return st->len;
		if (pos == (*msg_i ? st->ends[*msg_i - 1] : 0) && pos + 4 < st->ends[*msg_i])
			return pos + 4;
		return st->ends[*msg_i];
	case CH_SPLIT:
		if (dir == pl->dir && pl->at > base + pos && pl->at < base + st->len)
			return pl->at - base;
		return st->len;
	case CH_BYTES:
		return pos + 1;
	}
	return st->len;
}

static void feed(const struct plan *pl, uint64_t sk, enum io_dir dir, const struct stream *st,
		 size_t base, uint64_t now)
{
	size_t pos = 0, next, msg_i = 0;

	while (pos < st->len) {
		next = next_cut(pl, dir, st, base, pos, &msg_i);
		assert_int_equal(pgh_chunk(sk, dir, st->buf + pos, (uint32_t)(next - pos), now), 0);
		pos = next;
	}
}

static void run(const struct scenario *sc, const struct plan *pl)
{
	size_t base[2] = {0, 0};
	unsigned int i;

	pgh_reset();
	for (i = 0; i < sc->n_conns; i++)
		assert_int_equal(pgh_conn_open_system(sc->sks[i], INSTANCE, sc->systems[i], 0, 0),
				 0);
	for (i = 0; i < sc->n_ex; i++) {
		const struct exchange *e = &sc->ex[i];
		uint64_t t = T0_NS + i * EX_GAP_NS;

		feed(pl, e->sk, IO_RECV, &e->req, base[IO_RECV], t);
		base[IO_RECV] += e->req.len;
		if (e->eof)
			assert_int_equal(pgh_eof(e->sk, t), 0);
		feed(pl, e->sk, IO_SEND, &e->resp, base[IO_SEND], t + LAT_NS);
		base[IO_SEND] += e->resp.len;
	}
}

/* Run with one chunk per packet (the reference, left in the harness), then every other
 * chunking: each must give the same maps, counters and records. */
static void run_all_chunkings(const struct scenario *sc)
{
	struct pgh_snapshot *ref, *snap;
	struct plan pl = {.how = CH_PACKETS};
	size_t total[2] = {0, 0}, at;
	char why[512];
	unsigned int i;
	size_t n_runs = 0;
	int dir;

	for (i = 0; i < sc->n_ex; i++) {
		total[IO_RECV] += sc->ex[i].req.len;
		total[IO_SEND] += sc->ex[i].resp.len;
	}
	run(sc, &pl);
	ref = pgh_snapshot_take();
	assert_non_null(ref);
	for (pl.how = CH_COALESCED; pl.how <= CH_BYTES; pl.how++) {
		if (sc->whole_requests && pl.how != CH_COALESCED && pl.how != CH_HEADERS)
			continue;
		for (dir = IO_RECV; dir <= IO_SEND; dir++) {
			pl.dir = dir;
			for (at = 1; at < (pl.how == CH_SPLIT ? total[dir] : 2); at++) {
				pl.at = at;
				run(sc, &pl);
				snap = pgh_snapshot_take();
				assert_non_null(snap);
				if (pgh_snapshot_diff(ref, snap, PGH_DIFF_IGNORE_EVENTS_COUNTER,
						      why, sizeof(why))) {
					fail_msg("chunking %d dir %d at %zu: %s", pl.how, dir, at,
						 why);
				}
				pgh_snapshot_free(snap);
				n_runs++;
			}
		}
	}
	pgh_snapshot_free(ref);
	/* every offset of both directions was tried */
	if (!sc->whole_requests)
		assert_int_equal(n_runs, 2 + 2 + total[IO_RECV] - 1 + total[IO_SEND] - 1 + 2);
	pl.how = CH_PACKETS;
	run(sc, &pl); /* leave the reference in the harness for the assertions */
}

/* ---- reading the results ---- */

static const struct dbtap_agg_val *agg(uint16_t system, uint32_t db, uint32_t user, uint16_t flags,
				       uint64_t hash)
{
	struct dbtap_agg_key k = {.instance = INSTANCE,
				  .db_id = db,
				  .user_id = user,
				  .system = system,
				  .flags = flags,
				  .query_hash = hash};

	return pgh_agg_get(&k);
}

static __u64 errs_of(uint16_t system, uint32_t db, uint32_t user, uint16_t flags, uint64_t hash,
		     const char *status)
{
	struct dbtap_agg_key k = {.instance = INSTANCE,
				  .db_id = db,
				  .user_id = user,
				  .system = system,
				  .flags = flags,
				  .query_hash = hash};

	return pgh_err_get(&k, status);
}

#define ASSERT_AGG(sys, db, user, flags, sql_hash, n, n_err, n_rows)                  \
	do {                                                                          \
		const struct dbtap_agg_val *v_ = agg(sys, db, user, flags, sql_hash); \
		assert_non_null(v_);                                                  \
		assert_int_equal(v_->count, n);                                       \
		assert_int_equal(v_->errors, n_err);                                  \
		assert_int_equal(v_->rows, n_rows);                                   \
		assert_int_equal(v_->sum_ns, (n) * LAT_NS);                           \
	} while (0)

static const struct dbtap_ev_text *text_of(uint64_t hash, const char *want, uint16_t flags)
{
	const struct dbtap_ev_text *t = pgh_text_find(hash);

	assert_non_null(t);
	assert_int_equal(t->text_len, strlen(want));
	assert_memory_equal(t->text, want, strlen(want));
	assert_int_equal(t->flags, flags);
	return t;
}

static const struct dbtap_ev_conn *conn_event(uint16_t type, unsigned int i)
{
	const struct dbtap_ev_conn *e = pgh_event_of_type(type, i);

	assert_non_null(e);
	return e;
}

/* ---- s01: MariaDB login, text queries, OK, ERR, PING, INIT_DB, QUIT ---- */

#define S01_SELECT  "SELECT c FROM t WHERE id = 1"
#define S01_SELECT2 "SELECT c FROM t WHERE id = 22"
#define S01_UPDATE  "UPDATE t SET k = k + 1 WHERE id = 5"
#define S01_MISSING "SELECT * FROM nope"
#define S01_OTHER   "SELECT 1"

static struct scenario *s01(void)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	sc_conn(sc, SK_A, DBTAP_SYS_MYSQL); /* discovery says mysqld; the greeting says MariaDB */
	ex_login(sc, SK_A, MARIADB_VERSION, CLIENT_DEPRECATE_EOF | CLIENT_AUTH_LENENC, "sbtest",
		 "shop");
	e = ex_query(sc, SK_A, S01_SELECT);
	result_set(&e->resp, 2, 3, true, false, SERVER_AUTOCOMMIT);
	e = ex_query(sc, SK_A, S01_UPDATE);
	ok(&e->resp, 4);
	e = ex_query(sc, SK_A, S01_SELECT2);
	result_set(&e->resp, 1, 2, true, false, SERVER_AUTOCOMMIT);
	e = ex_query(sc, SK_A, S01_MISSING);
	err(&e->resp, 1146, "42S02", "Table 'shop.nope' doesn't exist");
	e = ex_add(sc, SK_A);
	cmd_simple(&e->req, COM_PING);
	ok(&e->resp, 0);
	e = ex_add(sc, SK_A);
	cmd_simple(&e->req, COM_STATISTICS); /* a reply that is no OK/result: skipped */
	{
		size_t at = pkt_begin(&e->resp);

		put(&e->resp, "Uptime: 5  Threads: 1", 21);
		pkt_end(&e->resp, at);
	}
	e = ex_add(sc, SK_A);
	cmd_text(&e->req, COM_INIT_DB, "other");
	ok(&e->resp, 0);
	e = ex_query(sc, SK_A, S01_OTHER);
	result_set(&e->resp, 1, 1, true, false, SERVER_AUTOCOMMIT);
	e = ex_add(sc, SK_A);
	cmd_simple(&e->req, COM_QUIT);
	return sc;
}

static void s01_login_queries(void **state)
{
	struct scenario *sc = s01();
	uint32_t shop = name_hash("shop"), other = name_hash("other"), user = name_hash("sbtest");
	const struct dbtap_ev_conn *open, *close;

	(void)state;
	run_all_chunkings(sc);
	ASSERT_AGG(DBTAP_SYS_MARIADB, shop, user, 0, fp(S01_SELECT), 2, 0, 5);
	ASSERT_AGG(DBTAP_SYS_MARIADB, shop, user, 0, fp(S01_UPDATE), 1, 0, 4);
	ASSERT_AGG(DBTAP_SYS_MARIADB, shop, user, 0, fp(S01_MISSING), 1, 1, 0);
	assert_int_equal(errs_of(DBTAP_SYS_MARIADB, shop, user, 0, fp(S01_MISSING), "1146"), 1);
	ASSERT_AGG(DBTAP_SYS_MARIADB, shop, user, 0, HASH_PING, 1, 0, 0);
	ASSERT_AGG(DBTAP_SYS_MARIADB, other, user, 0, HASH_USE, 1, 0, 0);
	ASSERT_AGG(DBTAP_SYS_MARIADB, other, user, 0, fp(S01_OTHER), 1, 0, 1);
	assert_int_equal(pgh_agg_count(), 6);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 7);
	assert_int_equal(pgh_err_count(), 1);
	text_of(fp(S01_SELECT), S01_SELECT, 0);
	text_of(fp(S01_MISSING), S01_MISSING, 0);
	text_of(HASH_USE, "USE ?", 0);
	text_of(HASH_PING, "PING", 0);
	assert_int_equal(pgh_counter(DBTAP_CNT_TEXTS), 6);
	/* one open with the HandshakeResponse41 payload, one close at COM_QUIT */
	assert_int_equal(pgh_event_count_type(DBTAP_EV_CONN_OPEN), 1);
	open = conn_event(DBTAP_EV_CONN_OPEN, 0);
	assert_int_equal(open->system, DBTAP_SYS_MARIADB);
	assert_int_equal(open->flags, DBTAP_CONN_F_STARTUP);
	assert_int_equal(open->user_id, user);
	assert_int_equal(open->db_id, shop);
	assert_int_equal(open->startup_len, sc->ex[1].req.len - 4);
	assert_memory_equal(open->startup, sc->ex[1].req.buf + 4, open->startup_len);
	close = conn_event(DBTAP_EV_CONN_CLOSE, 0);
	assert_int_equal(close->ops, 7);
	assert_null(pgh_conn(SK_A));
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 0);
	sc_free(sc);
}

/* ---- s02: MySQL, classic EOF, multi-statement, empty results, no database ---- */

#define S02_MULTI "SELECT a FROM t; UPDATE t SET a = 1"
#define S02_EMPTY "SELECT a FROM t WHERE a > 100"
#define S02_CALL  "CALL p(1)"
#define S02_MISS  "SELECT 1; SELECT * FROM gone"

static struct scenario *s02(void)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	sc_conn(sc, SK_B, DBTAP_SYS_MYSQL);
	ex_login(sc, SK_B, MYSQL_VERSION, CLIENT_MULTI_STMTS, "app", NULL);
	e = ex_query(sc, SK_B, S02_MULTI);
	result_set(&e->resp, 1, 2, false, false, SERVER_AUTOCOMMIT | SERVER_MORE_RESULTS);
	ok(&e->resp, 3);
	e = ex_query(sc, SK_B, S02_EMPTY);
	result_set(&e->resp, 3, 0, false, false, SERVER_AUTOCOMMIT);
	e = ex_query(sc, SK_B, S02_CALL); /* two result sets and the final OK */
	result_set(&e->resp, 1, 1, false, false, SERVER_AUTOCOMMIT | SERVER_MORE_RESULTS);
	result_set(&e->resp, 2, 4, false, false, SERVER_AUTOCOMMIT | SERVER_MORE_RESULTS);
	ok(&e->resp, 0);
	e = ex_query(sc, SK_B, S02_MISS); /* the second statement fails: ERR ends the reply */
	result_set(&e->resp, 1, 1, false, false, SERVER_AUTOCOMMIT | SERVER_MORE_RESULTS);
	err(&e->resp, 1146, "42S02", "Table 'gone' doesn't exist");
	e = ex_query(sc, SK_B, S02_EMPTY);
	result_set(&e->resp, 3, 0, false, false, SERVER_AUTOCOMMIT);
	return sc;
}

static void s02_multi_results_classic_eof(void **state)
{
	struct scenario *sc = s02();
	uint32_t user = name_hash("app");

	(void)state;
	run_all_chunkings(sc);
	ASSERT_AGG(DBTAP_SYS_MYSQL, 0, user, 0, fp(S02_MULTI), 1, 0, 5);
	ASSERT_AGG(DBTAP_SYS_MYSQL, 0, user, 0, fp(S02_EMPTY), 2, 0, 0);
	ASSERT_AGG(DBTAP_SYS_MYSQL, 0, user, 0, fp(S02_CALL), 1, 0, 5);
	ASSERT_AGG(DBTAP_SYS_MYSQL, 0, user, 0, fp(S02_MISS), 1, 1, 1);
	assert_int_equal(errs_of(DBTAP_SYS_MYSQL, 0, user, 0, fp(S02_MISS), "1146"), 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 5);
	assert_int_equal(pgh_conn(SK_B)->system, DBTAP_SYS_MYSQL);
	assert_int_equal(pgh_conn(SK_B)->db_id, 0);
	assert_int_equal(pgh_conn(SK_B)->ops_done, 5);
	sc_free(sc);
}

/* ---- s03: prepared statements, both EOF modes ---- */

#define S03_SEL	 "SELECT c FROM sbtest1 WHERE id=?"
#define S03_UPD	 "UPDATE sbtest1 SET k=k+1 WHERE id=?"
#define S03_BAD	 "SELECT * FROM nope WHERE id=?"
#define S03_LAST "DELETE FROM sbtest1 WHERE id=?"

static struct scenario *s03(bool deprecate_eof)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	sc_conn(sc, SK_A, DBTAP_SYS_MARIADB);
	ex_login(sc, SK_A, MARIADB_VERSION, deprecate_eof ? CLIENT_DEPRECATE_EOF : 0, "sbtest",
		 "sbtest");
	e = ex_add(sc, SK_A);
	cmd_text(&e->req, COM_STMT_PREPARE, S03_SEL);
	prepare_ok(&e->resp, 1, 1, 1, deprecate_eof);
	e = ex_add(sc, SK_A);
	cmd_text(&e->req, COM_STMT_PREPARE, S03_UPD);
	prepare_ok(&e->resp, 2, 0, 1, deprecate_eof);
	e = ex_add(sc, SK_A);
	cmd_id(&e->req, COM_STMT_EXECUTE, 1, true);
	result_set(&e->resp, 1, 1, deprecate_eof, true, SERVER_AUTOCOMMIT);
	e = ex_add(sc, SK_A);
	cmd_id(&e->req, COM_STMT_EXECUTE, 1, false);
	result_set(&e->resp, 1, 2, deprecate_eof, true, SERVER_AUTOCOMMIT);
	e = ex_add(sc, SK_A);
	cmd_id(&e->req, COM_STMT_EXECUTE, 2, true);
	ok(&e->resp, 1);
	e = ex_add(sc, SK_A); /* prepared before capture */
	cmd_id(&e->req, COM_STMT_EXECUTE, 7, true);
	ok(&e->resp, 2);
	e = ex_add(sc, SK_A); /* close (no reply), then the id is unknown */
	cmd_id(&e->req, COM_STMT_CLOSE, 2, false);
	cmd_id(&e->req, COM_STMT_EXECUTE, 2, true);
	err(&e->resp, 1243, "HY000", "Unknown prepared statement handler (2) given to EXECUTE");
	e = ex_add(sc, SK_A); /* a failed prepare is an operation */
	cmd_text(&e->req, COM_STMT_PREPARE, S03_BAD);
	err(&e->resp, 1146, "42S02", "Table 'sbtest.nope' doesn't exist");
	e = ex_add(sc, SK_A); /* MariaDB: prepare and execute id -1 sent together */
	cmd_text(&e->req, COM_STMT_PREPARE, S03_LAST);
	cmd_id(&e->req, COM_STMT_EXECUTE, STMT_ID_LAST, true);
	prepare_ok(&e->resp, 3, 0, 1, deprecate_eof);
	e->resp.seq = 1;
	ok(&e->resp, 1);
	return sc;
}

static void check_s03(bool deprecate_eof)
{
	struct scenario *sc = s03(deprecate_eof);
	uint32_t db = name_hash("sbtest"), user = name_hash("sbtest");
	uint64_t h7 = (7ull << 16) ^ UNKNOWN_STMT_TAG, h2 = (2ull << 16) ^ UNKNOWN_STMT_TAG;

	run_all_chunkings(sc);
	ASSERT_AGG(DBTAP_SYS_MARIADB, db, user, 0, fp(S03_SEL), 2, 0, 3);
	ASSERT_AGG(DBTAP_SYS_MARIADB, db, user, 0, fp(S03_UPD), 1, 0, 1);
	ASSERT_AGG(DBTAP_SYS_MARIADB, db, user, DBTAP_AGG_F_UNKNOWN_STMT, h7, 1, 0, 2);
	ASSERT_AGG(DBTAP_SYS_MARIADB, db, user, DBTAP_AGG_F_UNKNOWN_STMT, h2, 1, 1, 0);
	assert_int_equal(errs_of(DBTAP_SYS_MARIADB, db, user, DBTAP_AGG_F_UNKNOWN_STMT, h2, "1243"),
			 1);
	ASSERT_AGG(DBTAP_SYS_MARIADB, db, user, 0, fp(S03_BAD), 1, 1, 0);
	assert_int_equal(errs_of(DBTAP_SYS_MARIADB, db, user, 0, fp(S03_BAD), "1146"), 1);
	ASSERT_AGG(DBTAP_SYS_MARIADB, db, user, 0, fp(S03_LAST), 1, 0, 1);
	assert_int_equal(pgh_agg_count(), 6);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 7);
	text_of(fp(S03_SEL), S03_SEL, 0);
	text_of(h7, "7", DBTAP_TEXT_F_STMT_NAME);
	text_of(h2, "2", DBTAP_TEXT_F_STMT_NAME);
	/* ids 1 and 3 remembered, 2 closed */
	assert_int_equal(pgh_map_count("stmts"), 2);
	assert_int_equal(pgh_counter(DBTAP_CNT_DESYNC), 0);
	sc_free(sc);
}

static void s03_prepared_deprecate_eof(void **state)
{
	(void)state;
	check_s03(true);
}

static void s03b_prepared_classic_eof(void **state)
{
	(void)state;
	check_s03(false);
}

/* ---- s04: a connection opened before capture (joined mid-stream) ---- */

#define S04_Q "SELECT k FROM sbtest1 WHERE id = 3"

static void s04_joined_mid_stream(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;
	const struct dbtap_ev_conn *open;

	(void)state;
	sc->whole_requests = true;
	sc_conn(sc, SK_A, DBTAP_SYS_MARIADB);
	e = ex_add(sc, SK_A); /* the tail of a reply to a request before capture */
	e->resp.seq = 3;
	eof(&e->resp, SERVER_AUTOCOMMIT);
	e = ex_add(sc, SK_A); /* a client packet that is no command: skipped */
	e->req.seq = 2;
	{
		size_t at = pkt_begin(&e->req);

		put(&e->req, "garbage", 7);
		pkt_end(&e->req, at);
	}
	e = ex_query(sc, SK_A, S04_Q);
	result_set(&e->resp, 1, 1, false, false, SERVER_AUTOCOMMIT);
	e = ex_add(sc, SK_A);
	cmd_id(&e->req, COM_STMT_EXECUTE, 4, true);
	result_set(&e->resp, 1, 3, false, true, SERVER_AUTOCOMMIT);
	e = ex_query(sc, SK_A, S04_Q);
	result_set(&e->resp, 1, 2, false, false, SERVER_AUTOCOMMIT);
	run_all_chunkings(sc);
	ASSERT_AGG(DBTAP_SYS_MARIADB, 0, 0, 0, fp(S04_Q), 2, 0, 3);
	ASSERT_AGG(DBTAP_SYS_MARIADB, 0, 0, DBTAP_AGG_F_UNKNOWN_STMT,
		   (4ull << 16) ^ UNKNOWN_STMT_TAG, 1, 0, 3);
	assert_int_equal(pgh_event_count_type(DBTAP_EV_CONN_OPEN), 1);
	open = conn_event(DBTAP_EV_CONN_OPEN, 0);
	assert_int_equal(open->flags, DBTAP_CONN_F_MIDSTREAM);
	assert_int_equal(open->startup_len, 0);
	sc_free(sc);
}

/* ---- s05: TLS and compression ---- */

static void s05_tls_and_compression(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;

	(void)state;
	sc_conn(sc, SK_A, DBTAP_SYS_MARIADB);
	sc_conn(sc, SK_B, DBTAP_SYS_MARIADB);
	e = ex_add(sc, SK_A);
	greeting(&e->resp, MARIADB_VERSION, CLIENT_PROTOCOL_41 | CLIENT_SSL);
	e = ex_add(sc, SK_A);
	ssl_request(&e->req, CLIENT_PROTOCOL_41);
	e = ex_add(sc, SK_A); /* TLS records: not decoded */
	cmd_text(&e->req, COM_QUERY, "\x16\x03\x01 not SQL");
	ok(&e->resp, 0);
	ex_login(sc, SK_B, MARIADB_VERSION, CLIENT_COMPRESS, "zip", "shop");
	e = ex_query(sc, SK_B, "SELECT 1"); /* would be compressed: not decoded */
	ok(&e->resp, 0);
	run_all_chunkings(sc);
	assert_int_equal(pgh_counter(DBTAP_CNT_ENCRYPTED), 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_UNDECODABLE), 1);
	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 0);
	assert_int_equal(pgh_agg_count(), 0);
	assert_int_equal(pgh_conn(SK_A)->flags, DBTAP_CONN_F_ENCRYPTED);
	assert_int_equal(pgh_conn(SK_A)->phase, CONN_PHASE_IGNORE);
	assert_int_equal(pgh_conn(SK_B)->flags, DBTAP_CONN_F_STARTUP | DBTAP_CONN_F_UNDECODABLE);
	assert_int_equal(pgh_conn(SK_B)->user_id, name_hash("zip"));
	assert_int_equal(pgh_event_count_type(DBTAP_EV_CONN_OPEN), 2);
	sc_free(sc);
}

/* ---- s06: rows past 255 packets (sequence id wraps) and LOCAL INFILE ---- */

#define S06_MANY "SELECT c FROM big"
#define S06_LOAD "LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE t"

static void s06_many_rows_and_local_infile(void **state)
{
	struct scenario *sc = sc_new();
	struct exchange *e;
	size_t at;

	(void)state;
	sc_conn(sc, SK_A, DBTAP_SYS_MARIADB);
	ex_login(sc, SK_A, MARIADB_VERSION, CLIENT_DEPRECATE_EOF, "u", "d");
	e = ex_query(sc, SK_A, S06_MANY);
	result_set(&e->resp, 1, 300, true, false, SERVER_AUTOCOMMIT);
	e = ex_query(sc, SK_A, S06_LOAD);
	at = pkt_begin(&e->resp);
	put_u8(&e->resp, HDR_LOCAL_INFILE);
	put(&e->resp, "/tmp/x", 6);
	pkt_end(&e->resp, at);
	e = ex_add(sc, SK_A); /* the file's contents, then an empty packet; the server's OK */
	e->req.seq = 2;
	at = pkt_begin(&e->req);
	put(&e->req, "1\t2\n3\t4\n", 8);
	pkt_end(&e->req, at);
	at = pkt_begin(&e->req);
	pkt_end(&e->req, at);
	e->resp.seq = 4;
	ok(&e->resp, 2);
	e = ex_query(sc, SK_A, S06_MANY);
	result_set(&e->resp, 1, 1, true, false, SERVER_AUTOCOMMIT);
	run_all_chunkings(sc);
	ASSERT_AGG(DBTAP_SYS_MARIADB, name_hash("d"), name_hash("u"), 0, fp(S06_MANY), 2, 0, 301);
	/* the load's op spans the client's file packets: request to the final OK */
	{
		const struct dbtap_agg_val *v =
			agg(DBTAP_SYS_MARIADB, name_hash("d"), name_hash("u"), 0, fp(S06_LOAD));

		assert_non_null(v);
		assert_int_equal(v->count, 1);
		assert_int_equal(v->rows, 2);
		assert_int_equal(v->sum_ns, EX_GAP_NS + LAT_NS);
	}
	sc_free(sc);
}

/* ---- s07: packets of 16 MiB and more (continued in a next packet) ---- */

static void feed_big(uint64_t sk, enum io_dir dir, const uint8_t *p, size_t n, uint64_t now)
{
	size_t pos, step = 65536;

	for (pos = 0; pos < n; pos += step)
		assert_int_equal(pgh_chunk(sk, dir, p + pos,
					   (uint32_t)(n - pos < step ? n - pos : step), now),
				 0);
}

static void s07_large_packets(void **state)
{
	struct stream req = {0}, resp = {0}, login = {0}, greet = {0};
	const char *prefix = "INSERT INTO blob_t VALUES ('";
	uint32_t db = name_hash("d"), user = name_hash("u");
	size_t at, total = MAX_PAYLOAD + 100, i;

	(void)state;
	pgh_reset();
	assert_int_equal(pgh_conn_open_system(SK_A, INSTANCE, DBTAP_SYS_MARIADB, 0, 0), 0);
	greeting(&greet, MARIADB_VERSION,
		 CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONN | CLIENT_CONNECT_WITH_DB |
			 CLIENT_DEPRECATE_EOF);
	feed_big(SK_A, IO_SEND, greet.buf, greet.len, T0_NS);
	handshake_response(&login, CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONN | CLIENT_DEPRECATE_EOF,
			   "u", "d");
	feed_big(SK_A, IO_RECV, login.buf, login.len, T0_NS);
	resp.seq = 2;
	ok(&resp, 0);
	feed_big(SK_A, IO_SEND, resp.buf, resp.len, T0_NS);
	stream_free(&resp);

	/* a COM_QUERY of MAX_PAYLOAD + 100 bytes: a full packet and a continuation */
	at = pkt_begin(&req);
	put_u8(&req, COM_QUERY);
	put(&req, prefix, strlen(prefix));
	for (i = 1 + strlen(prefix); i < MAX_PAYLOAD; i++)
		put_u8(&req, 'x');
	pkt_end(&req, at);
	at = pkt_begin(&req);
	for (i = 0; i < total - MAX_PAYLOAD - 2; i++)
		put_u8(&req, COM_QUERY); /* looks like commands: must not be taken as such */
	put(&req, "')", 2);
	pkt_end(&req, at);
	feed_big(SK_A, IO_RECV, req.buf, req.len, T0_NS + EX_GAP_NS);

	resp.seq = 1;
	ok(&resp, 1);
	feed_big(SK_A, IO_SEND, resp.buf, resp.len, T0_NS + EX_GAP_NS + LAT_NS);
	stream_free(&resp);

	req.len = 0;
	req.n_msgs = 0;
	cmd_text(&req, COM_QUERY, "SELECT b FROM blob_t");
	feed_big(SK_A, IO_RECV, req.buf, req.len, T0_NS + 2 * EX_GAP_NS);
	/* one row of MAX_PAYLOAD bytes, continued by a packet starting with 0xFE */
	resp.seq = 1;
	at = pkt_begin(&resp);
	put_lenenc(&resp, 1);
	pkt_end(&resp, at);
	coldef(&resp, 0);
	at = pkt_begin(&resp);
	/* a value of 16 MiB or more: its 8-byte length makes the row start with 0xFE */
	put_lenenc(&resp, MAX_PAYLOAD - 9 + 10);
	for (i = 9; i < MAX_PAYLOAD; i++)
		put_u8(&resp, 'y');
	pkt_end(&resp, at);
	at = pkt_begin(&resp);
	put_u8(&resp, HDR_EOF); /* continuation bytes, not a terminator */
	for (i = 1; i < 10; i++)
		put_u8(&resp, 'y');
	pkt_end(&resp, at);
	ok_pkt(&resp, HDR_EOF, 0, SERVER_AUTOCOMMIT);
	feed_big(SK_A, IO_SEND, resp.buf, resp.len, T0_NS + 2 * EX_GAP_NS + LAT_NS);

	assert_int_equal(pgh_counter(DBTAP_CNT_OPS), 2);
	ASSERT_AGG(DBTAP_SYS_MARIADB, db, user, 0, fp("SELECT b FROM blob_t"), 1, 0, 1);
	{
		const struct dbtap_ev_text *t = NULL;
		unsigned int k;

		for (k = 0; (t = pgh_event_of_type(DBTAP_EV_QUERY_TEXT, k)); k++)
			if (t->flags & DBTAP_TEXT_F_TRUNCATED)
				break;
		assert_non_null(t);
		assert_memory_equal(t->text, prefix, strlen(prefix));
		ASSERT_AGG(DBTAP_SYS_MARIADB, db, user, 0, t->query_hash, 1, 0, 1);
	}
	stream_free(&req);
	stream_free(&resp);
	stream_free(&login);
	stream_free(&greet);
}

/* ---- s08: the userspace half ---- */

static void s08_userspace_names_and_texts(void **state)
{
	struct stream st = {0};
	struct dbtap_conn_names names;
	struct sql_normalized n;
	static const char attrs[] = "\x20\x0c"
				    "program_name"
				    "\x08"
				    "sysbench"
				    "\x04"
				    "_pid"
				    "\x04"
				    "1234";
	const char *sql = "SELECT `c` FROM `sbtest1` WHERE id = \"x\" AND k IN (1, 2)";

	(void)state;
	handshake_response(&st, CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONN | CLIENT_PLUGIN_AUTH,
			   "sbtest", "shop");
	assert_int_equal(dbtap_mysql_startup(st.buf + 4, st.len - 4, &names), 0);
	assert_string_equal(names.user, "sbtest");
	assert_string_equal(names.database, "shop");
	assert_string_equal(names.application_name, "");
	stream_free(&st);
	/* lenenc auth data, no database, connection attributes */
	handshake_response(
		&st, CLIENT_PROTOCOL_41 | CLIENT_AUTH_LENENC | CLIENT_PLUGIN_AUTH | (1u << 20),
		"app", NULL);
	st.len--; /* drop the plugin name's NUL: put the attributes after it */
	put(&st, "", 1);
	put(&st, attrs, sizeof(attrs) - 1);
	assert_int_equal(dbtap_mysql_startup(st.buf + 4, st.len - 4, &names), 0);
	assert_string_equal(names.user, "app");
	assert_string_equal(names.database, "");
	assert_string_equal(names.application_name, "sysbench");
	/* cut inside the user name */
	assert_int_equal(dbtap_mysql_startup(st.buf + 4, 34, &names), -EINVAL);
	stream_free(&st);

	assert_int_equal(dbtap_mysql_normalize(sql, strlen(sql), 0, false, &n), 0);
	assert_string_equal(n.text, "SELECT `c` FROM `sbtest1` WHERE id = ? AND k IN (?)");
	assert_string_equal(n.operation, "SELECT");
	assert_string_equal(n.summary, "SELECT sbtest1");
	sql_normalized_free(&n);
	assert_int_equal(dbtap_mysql_normalize("PING", 4, 0, false, &n), 0);
	assert_string_equal(n.operation, "PING");
	sql_normalized_free(&n);
	assert_int_equal(dbtap_mysql_normalize("USE ?", 5, 0, false, &n), 0);
	assert_string_equal(n.operation, "USE");
	sql_normalized_free(&n);
	assert_int_equal(dbtap_mysql_normalize("17", 2, DBTAP_TEXT_F_STMT_NAME, false, &n), 0);
	assert_string_equal(n.text, "EXECUTE stmt 17");
	assert_string_equal(n.operation, "EXECUTE");
	assert_string_equal(n.summary, "EXECUTE 17");
	sql_normalized_free(&n);
}

static int group_teardown(void **state)
{
	(void)state;
	pgh_free();
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(s01_login_queries),
		cmocka_unit_test(s02_multi_results_classic_eof),
		cmocka_unit_test(s03_prepared_deprecate_eof),
		cmocka_unit_test(s03b_prepared_classic_eof),
		cmocka_unit_test(s04_joined_mid_stream),
		cmocka_unit_test(s05_tls_and_compression),
		cmocka_unit_test(s06_many_rows_and_local_infile),
		cmocka_unit_test(s07_large_packets),
		cmocka_unit_test(s08_userspace_names_and_texts),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("mysql_decoder", tests, NULL, group_teardown);
}
