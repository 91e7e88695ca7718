// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * decoder_cost.c - replays byte-exact synthetic client/server traffic of one benchmark workload
 * (pgbench -S, -S -M prepared, TPC-B; redis-benchmark GET/SET, pipelined by 16; sysbench point
 * selects on MariaDB) through the kernel decoders compiled in userspace (tests/lib/pg_harness),
 * one chunk per recv/send the server makes, so that callgrind can count the decoders'
 * instructions per database operation. Every byte is built before the measured loop; only the
 * replay runs with callgrind's collection on (CALLGRIND_TOGGLE_COLLECT, run it with
 * --collect-atstart=no). After the replay the program checks that the decoder saw exactly the
 * operations sent (counters, series, rows) and exits 1 when not.
 *
 * Run: build/bench/decoder_cost --workload pg-select [--ops N] [--conns C]   (--list: names)
 * Driver: tests/bench/decoder-cost.sh (`make bench-decoder`); reading: docs/decoder-cost.md.
 */
#include "tests/lib/pg_harness.h"

#include <alloca.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <valgrind/callgrind.h>

/* ---- run parameters ---- */

#define DEFAULT_OPS   20000
#define DEFAULT_CONNS 4 /* like pgbench -c 4 */
#define MAX_OPS	      10000000u
#define INSTANCE      4242
#define SK_BASE	      0xffff888040000000ull /* struct sock addresses: aligned, low bit free */
#define SK_STRIDE     0x1000ull
#define RNG_SEED      0x2545f491u /* fixed: every run replays the same bytes */
#define CONSUME_EVERY 1024	  /* chunks between two reads of the ring buffer by "userspace" */
/*
 * glibc's memcmp/memcpy take different paths by address (page crossing, alignment), so the
 * replay's stack must not move with argv and the environment: run() starts at this offset in
 * a page, whatever the binary's path or the caller's environment (multiple of 16).
 */
#define STACK_PAGE    4096u
#define STACK_PHASE   1024u

/* Timeline: a request, its response LAT_MIN_NS..+LAT_SPREAD_NS later, the next request
 * THINK_NS after that (one clock for all connections, so time only moves forward). */
#define T0_NS	      1000000000ull
#define LAT_MIN_NS    20000u
#define LAT_SPREAD_NS 65536u
#define THINK_NS      5000u

/* ---- PostgreSQL protocol v3 (documentation, "Message Formats") ---- */

#define PG_FE_QUERY	       'Q'
#define PG_FE_PARSE	       'P'
#define PG_FE_BIND	       'B'
#define PG_FE_DESCRIBE	       'D'
#define PG_FE_EXECUTE	       'E'
#define PG_FE_SYNC	       'S'
#define PG_BE_AUTHENTICATION   'R'
#define PG_BE_PARAMETER_STATUS 'S'
#define PG_BE_BACKEND_KEY_DATA 'K'
#define PG_BE_READY_FOR_QUERY  'Z'
#define PG_BE_ROW_DESCRIPTION  'T'
#define PG_BE_DATA_ROW	       'D'
#define PG_BE_COMMAND_COMPLETE 'C'
#define PG_BE_PARSE_COMPLETE   '1'
#define PG_BE_BIND_COMPLETE    '2'
#define PG_PROTOCOL_3_0	       196608u
#define PG_AUTH_OK	       0
#define PG_TXN_IDLE	       'I'
#define PG_TXN_BLOCK	       'T'
#define PG_DESCRIBE_PORTAL     'P'
#define PG_FORMAT_TEXT	       0
#define PG_EXECUTE_ALL_ROWS    0
#define PG_OID_INT4	       23
#define PG_INT4_LEN	       4
#define PG_TYPMOD_NONE	       0xffffffffu /* -1 */
#define PG_ACCOUNTS_OID	       16396	   /* pgbench_accounts in a fresh pgbench -i database */
#define PG_ABALANCE_ATTNUM     3	   /* aid, bid, abalance, filler */
#define PG_BACKEND_PID	       31337
#define PG_BACKEND_KEY	       0x5eed
#define PG_STMT_NAME	       "P_0" /* pgbench -M prepared: the script's first command */

/* pgbench at scale 10: \set aid random(1, 100000 * :scale), bid, tid, delta */
#define PGB_ACCOUNTS  1000000u
#define PGB_TELLERS   100u
#define PGB_BRANCHES  10u
#define PGB_DELTA_MAX 5000

/* ---- RESP2 (redis.io protocol spec) and redis-benchmark ---- */

#define RB_KEYSPACE	100000u /* redis-benchmark -r 100000: key:__rand_int__ */
#define RB_KEY_FMT	"key:%012u"
#define RB_VALUE	"xxx" /* -d 3 */
#define RB_PIPELINE	16    /* -P 16 */
#define RESP_ARRAY_TYPE '*'
#define RESP_BULK_TYPE	'$'
#define RESP_OK		"+OK\r\n" /* simple string reply to SET */
#define RESP_CRLF	"\r\n"

/* ---- MySQL client/server protocol (MySQL source documentation) and sysbench ---- */

#define MY_HDR_LEN		  4
#define MY_COM_QUERY		  0x03
#define MY_PROTOCOL_V10		  10
#define MY_HDR_OK		  0x00
#define MY_HDR_EOF		  0xfe
#define MY_CLIENT_CONNECT_WITH_DB (1u << 3)
#define MY_CLIENT_PROTOCOL_41	  (1u << 9)
#define MY_CLIENT_SECURE_CONN	  (1u << 15)
#define MY_CLIENT_MULTI_RESULTS	  (1u << 17)
#define MY_CLIENT_PLUGIN_AUTH	  (1u << 19)
#define MY_CLIENT_AUTH_LENENC	  (1u << 21)
#define MY_CLIENT_DEPRECATE_EOF	  (1u << 24)
/* what the login negotiates (libmariadb against MariaDB 10.11, as tests/unit's s01) */
#define MY_CAPS                                                                      \
	(MY_CLIENT_CONNECT_WITH_DB | MY_CLIENT_PROTOCOL_41 | MY_CLIENT_SECURE_CONN | \
	 MY_CLIENT_MULTI_RESULTS | MY_CLIENT_PLUGIN_AUTH | MY_CLIENT_AUTH_LENENC |   \
	 MY_CLIENT_DEPRECATE_EOF)
#define MY_SERVER_AUTOCOMMIT 0x0002
#define MY_CHARSET_UTF8MB4   45
#define MY_TYPE_STRING	     254 /* CHAR(n) */
#define MY_NOT_NULL_FLAG     1
#define MY_COLDEF_FIXED_LEN  0x0c /* length of the fixed-length fields of a column definition */
#define MY_SCRAMBLE_LEN	     20
#define MY_HS_FILLER_LEN     23
#define MY_MAX_PACKET	     (1u << 24)
#define MY_THREAD_ID	     77
#define MY_VERSION	     "5.5.5-10.11.6-MariaDB-0+deb12u1"
#define MY_AUTH_PLUGIN	     "mysql_native_password"
#define SB_TABLE_SIZE	     10000u /* sysbench --table-size default */
#define SB_C_GROUPS	     10	    /* sysbench's c: 10 groups of 11 digits joined by '-' */
#define SB_C_GROUP_DIGITS    11
#define SB_C_LEN	     (SB_C_GROUPS * (SB_C_GROUP_DIGITS + 1) - 1)
#define SB_C_CHARS	     120 /* CHAR(120) */
#define MY_UTF8MB4_MAX_BYTES 4

/* ---- the trace: every chunk's bytes, built before the replay ---- */

struct chunk_rec {
	__u64 sk;
	__u64 now_ns;
	size_t off; /* in trace.bytes */
	__u32 len;
	__u8 dir; /* enum io_dir */
};

struct trace {
	__u8 *bytes;
	size_t len, cap;
	struct chunk_rec *recs;
	size_t n, cap_recs;
	size_t open; /* first byte of the chunk being written */
};

/* What the generator sent, and where the phases of the trace end. */
struct gen {
	struct trace t;
	__u64 clock;
	__u32 rng;
	unsigned int conns;
	unsigned int ops;      /* operations in the exchanges made so far */
	__u64 rows;	       /* rows those operations return, as the decoder counts them */
	size_t setup_end;      /* chunks: [0, setup_end) connection setup */
	size_t warm_end;       /* [setup_end, warm_end) warm-up, then the measured ones */
	unsigned int warm_ops; /* operations in the warm-up */
};

static void die_oom(void)
{
	fprintf(stderr, "decoder_cost: out of memory\n");
	exit(1);
}

static void put(struct gen *g, const void *p, size_t n)
{
	struct trace *t = &g->t;

	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2 + 4096;
		t->bytes = realloc(t->bytes, t->cap);
		if (!t->bytes)
			die_oom();
	}
	memcpy(t->bytes + t->len, p, n);
	t->len += n;
}

static void put_u8(struct gen *g, __u8 v)
{
	put(g, &v, 1);
}

static void put_str(struct gen *g, const char *s)
{
	put(g, s, strlen(s));
}

static void put_cstr(struct gen *g, const char *s)
{
	put(g, s, strlen(s) + 1);
}

static void put_be16(struct gen *g, __u16 v)
{
	__u8 b[2] = {(__u8)(v >> 8), (__u8)v};

	put(g, b, sizeof(b));
}

static void put_be32(struct gen *g, __u32 v)
{
	__u8 b[4] = {(__u8)(v >> 24), (__u8)(v >> 16), (__u8)(v >> 8), (__u8)v};

	put(g, b, sizeof(b));
}

static void put_le16(struct gen *g, __u16 v)
{
	__u8 b[2] = {(__u8)v, (__u8)(v >> 8)};

	put(g, b, sizeof(b));
}

static void put_le32(struct gen *g, __u32 v)
{
	__u8 b[4] = {(__u8)v, (__u8)(v >> 8), (__u8)(v >> 16), (__u8)(v >> 24)};

	put(g, b, sizeof(b));
}

/* MySQL length-encoded integer, for values below 2^16 (all this file needs). */
static void put_lenenc(struct gen *g, __u16 v)
{
	if (v < 0xfb) {
		put_u8(g, (__u8)v);
		return;
	}
	put_u8(g, 0xfc);
	put_le16(g, v);
}

static void put_lenstr(struct gen *g, const char *s)
{
	put_lenenc(g, (__u16)strlen(s));
	put_str(g, s);
}

/* End the chunk written since the last cut: one recv (IO_RECV) or send (IO_SEND) at now. */
static void cut(struct gen *g, unsigned int conn, enum io_dir dir)
{
	struct trace *t = &g->t;
	struct chunk_rec *r;

	if (t->n == t->cap_recs) {
		t->cap_recs = t->cap_recs * 2 + 1024;
		t->recs = realloc(t->recs, t->cap_recs * sizeof(*t->recs));
		if (!t->recs)
			die_oom();
	}
	r = &t->recs[t->n++];
	r->sk = SK_BASE + conn * SK_STRIDE;
	r->now_ns = g->clock;
	r->off = t->open;
	r->len = (__u32)(t->len - t->open);
	r->dir = dir;
	t->open = t->len;
}

/* xorshift32: deterministic. */
static __u32 rnd(struct gen *g)
{
	__u32 x = g->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	g->rng = x;
	return x;
}

/* Uniform in [lo, hi] (the small modulo bias does not matter here). */
static __u32 rnd_range(struct gen *g, __u32 lo, __u32 hi)
{
	return lo + rnd(g) % (hi - lo + 1);
}

/* The server works on the request: the response comes a while later. */
static void serve(struct gen *g)
{
	g->clock += LAT_MIN_NS + rnd(g) % LAT_SPREAD_NS;
}

/* The client thinks before its next request. */
static void think(struct gen *g)
{
	g->clock += THINK_NS;
}

/* ---- PostgreSQL messages ---- */

/* Start a typed message; returns where its length goes (pg_end() patches it). */
static size_t pg_begin(struct gen *g, __u8 type)
{
	size_t at;

	put_u8(g, type);
	at = g->t.len;
	put_be32(g, 0);
	return at;
}

static void pg_end(struct gen *g, size_t at)
{
	__u32 n = (__u32)(g->t.len - at);

	g->t.bytes[at] = (__u8)(n >> 24);
	g->t.bytes[at + 1] = (__u8)(n >> 16);
	g->t.bytes[at + 2] = (__u8)(n >> 8);
	g->t.bytes[at + 3] = (__u8)n;
}

static void pg_startup(struct gen *g)
{
	size_t at = g->t.len;

	put_be32(g, 0);
	put_be32(g, PG_PROTOCOL_3_0);
	put_cstr(g, "user");
	put_cstr(g, "postgres");
	put_cstr(g, "database");
	put_cstr(g, "pgbench");
	put_cstr(g, "application_name");
	put_cstr(g, "pgbench");
	put_u8(g, 0);
	pg_end(g, at); /* untyped: the length, at its start, covers the whole message */
}

static void pg_parameter_status(struct gen *g, const char *name, const char *value)
{
	size_t at = pg_begin(g, PG_BE_PARAMETER_STATUS);

	put_cstr(g, name);
	put_cstr(g, value);
	pg_end(g, at);
}

static void pg_ready(struct gen *g, __u8 txn_status)
{
	size_t at = pg_begin(g, PG_BE_READY_FOR_QUERY);

	put_u8(g, txn_status);
	pg_end(g, at);
}

static void pg_login_response(struct gen *g)
{
	size_t at = pg_begin(g, PG_BE_AUTHENTICATION);

	put_be32(g, PG_AUTH_OK);
	pg_end(g, at);
	pg_parameter_status(g, "server_version", "16.2");
	pg_parameter_status(g, "client_encoding", "UTF8");
	pg_parameter_status(g, "DateStyle", "ISO, MDY");
	at = pg_begin(g, PG_BE_BACKEND_KEY_DATA);
	put_be32(g, PG_BACKEND_PID);
	put_be32(g, PG_BACKEND_KEY);
	pg_end(g, at);
	pg_ready(g, PG_TXN_IDLE);
}

static void pg_query(struct gen *g, const char *sql)
{
	size_t at = pg_begin(g, PG_FE_QUERY);

	put_cstr(g, sql);
	pg_end(g, at);
}

/* RowDescription of pgbench's one int4 column abalance of pgbench_accounts. */
static void pg_row_description_abalance(struct gen *g)
{
	size_t at = pg_begin(g, PG_BE_ROW_DESCRIPTION);

	put_be16(g, 1);
	put_cstr(g, "abalance");
	put_be32(g, PG_ACCOUNTS_OID);
	put_be16(g, PG_ABALANCE_ATTNUM);
	put_be32(g, PG_OID_INT4);
	put_be16(g, PG_INT4_LEN);
	put_be32(g, PG_TYPMOD_NONE);
	put_be16(g, PG_FORMAT_TEXT);
	pg_end(g, at);
}

static void pg_data_row1(struct gen *g, const char *val)
{
	size_t at = pg_begin(g, PG_BE_DATA_ROW);

	put_be16(g, 1);
	put_be32(g, (__u32)strlen(val));
	put_str(g, val);
	pg_end(g, at);
}

static void pg_command_complete(struct gen *g, const char *tag)
{
	size_t at = pg_begin(g, PG_BE_COMMAND_COMPLETE);

	put_cstr(g, tag);
	pg_end(g, at);
}

/* The value of abalance in a DataRow: a short integer. */
static void pg_abalance_row(struct gen *g)
{
	char val[16];

	snprintf(val, sizeof(val), "%d", (int)rnd_range(g, 0, 2 * PGB_DELTA_MAX) - PGB_DELTA_MAX);
	pg_data_row1(g, val);
}

/* ---- workloads: connection setup, and one exchange (request chunks, response chunks) ---- */

/* StartupMessage (one recv), the server's answer (one send). */
static void pg_setup(struct gen *g, unsigned int conn)
{
	pg_startup(g);
	cut(g, conn, IO_RECV);
	serve(g);
	pg_login_response(g);
	cut(g, conn, IO_SEND);
	think(g);
}

/* pgbench -S, simple protocol: Query, then RowDescription, DataRow, CommandComplete, ready. */
static unsigned int pg_select_exchange(struct gen *g, unsigned int conn, unsigned int j,
				       unsigned int ops_left)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SELECT abalance FROM pgbench_accounts WHERE aid = %u;",
		 rnd_range(g, 1, PGB_ACCOUNTS));
	pg_query(g, sql);
	cut(g, conn, IO_RECV);
	serve(g);
	pg_row_description_abalance(g);
	pg_abalance_row(g);
	pg_command_complete(g, "SELECT 1");
	pg_ready(g, PG_TXN_IDLE);
	cut(g, conn, IO_SEND);
	think(g);
	g->rows += 1;
	return 1;
}

/* pgbench -M prepared prepares the statement on first use with PQprepare: Parse + Sync. */
static void pg_prepared_setup(struct gen *g, unsigned int conn)
{
	size_t at;

	pg_setup(g, conn);
	at = pg_begin(g, PG_FE_PARSE);
	put_cstr(g, PG_STMT_NAME);
	put_cstr(g, "SELECT abalance FROM pgbench_accounts WHERE aid = $1;");
	put_be16(g, 0); /* no parameter types given: inferred */
	pg_end(g, at);
	at = pg_begin(g, PG_FE_SYNC);
	pg_end(g, at);
	cut(g, conn, IO_RECV);
	serve(g);
	at = pg_begin(g, PG_BE_PARSE_COMPLETE);
	pg_end(g, at);
	pg_ready(g, PG_TXN_IDLE);
	cut(g, conn, IO_SEND);
	think(g);
}

/*
 * pgbench -S -M prepared: PQsendQueryPrepared sends Bind (unnamed portal, one text parameter,
 * one result format), Describe of the portal, Execute, Sync in one write; the answer is
 * BindComplete, RowDescription, DataRow, CommandComplete, ReadyForQuery in one send.
 */
static unsigned int pg_prepared_exchange(struct gen *g, unsigned int conn, unsigned int j,
					 unsigned int ops_left)
{
	char aid[16];
	size_t at;

	snprintf(aid, sizeof(aid), "%u", rnd_range(g, 1, PGB_ACCOUNTS));
	at = pg_begin(g, PG_FE_BIND);
	put_cstr(g, "");
	put_cstr(g, PG_STMT_NAME);
	put_be16(g, 0); /* parameter format codes: none, all text */
	put_be16(g, 1);
	put_be32(g, (__u32)strlen(aid));
	put_str(g, aid);
	put_be16(g, 1); /* result format codes: one, text */
	put_be16(g, PG_FORMAT_TEXT);
	pg_end(g, at);
	at = pg_begin(g, PG_FE_DESCRIBE);
	put_u8(g, PG_DESCRIBE_PORTAL);
	put_cstr(g, "");
	pg_end(g, at);
	at = pg_begin(g, PG_FE_EXECUTE);
	put_cstr(g, "");
	put_be32(g, PG_EXECUTE_ALL_ROWS);
	pg_end(g, at);
	at = pg_begin(g, PG_FE_SYNC);
	pg_end(g, at);
	cut(g, conn, IO_RECV);
	serve(g);
	at = pg_begin(g, PG_BE_BIND_COMPLETE);
	pg_end(g, at);
	pg_row_description_abalance(g);
	pg_abalance_row(g);
	pg_command_complete(g, "SELECT 1");
	pg_ready(g, PG_TXN_IDLE);
	cut(g, conn, IO_SEND);
	think(g);
	g->rows += 1;
	return 1;
}

#define TPCB_STATEMENTS 7

/* The parameters of the transaction a connection is in (drawn at its BEGIN). */
struct tpcb_txn {
	__u32 aid, bid, tid;
	int delta;
};

static struct tpcb_txn tpcb_txns[PGH_MAX_CONNS];

/* pgbench's TPC-B-like transaction, simple protocol: statement j % 7 of the connection's
 * current transaction, and its real response. */
static unsigned int pg_tpcb_exchange(struct gen *g, unsigned int conn, unsigned int j,
				     unsigned int ops_left)
{
	struct tpcb_txn *t = &tpcb_txns[conn];
	unsigned int stmt = j % TPCB_STATEMENTS;
	__u8 txn_status = PG_TXN_BLOCK;
	char sql[192];
	__u64 rows = 1;

	if (stmt == 0) {
		t->aid = rnd_range(g, 1, PGB_ACCOUNTS);
		t->bid = rnd_range(g, 1, PGB_BRANCHES);
		t->tid = rnd_range(g, 1, PGB_TELLERS);
		t->delta = (int)rnd_range(g, 0, 2 * PGB_DELTA_MAX) - PGB_DELTA_MAX;
	}
	switch (stmt) {
	case 0:
		snprintf(sql, sizeof(sql), "BEGIN;");
		break;
	case 1:
		snprintf(sql, sizeof(sql),
			 "UPDATE pgbench_accounts SET abalance = abalance + %d WHERE aid = %u;",
			 t->delta, t->aid);
		break;
	case 2:
		snprintf(sql, sizeof(sql), "SELECT abalance FROM pgbench_accounts WHERE aid = %u;",
			 t->aid);
		break;
	case 3:
		snprintf(sql, sizeof(sql),
			 "UPDATE pgbench_tellers SET tbalance = tbalance + %d WHERE tid = %u;",
			 t->delta, t->tid);
		break;
	case 4:
		snprintf(sql, sizeof(sql),
			 "UPDATE pgbench_branches SET bbalance = bbalance + %d WHERE bid = %u;",
			 t->delta, t->bid);
		break;
	case 5:
		snprintf(
			sql, sizeof(sql),
			"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (%u, %u, "
			"%u, %d, CURRENT_TIMESTAMP);",
			t->tid, t->bid, t->aid, t->delta);
		break;
	default:
		snprintf(sql, sizeof(sql), "END;");
		break;
	}
	pg_query(g, sql);
	cut(g, conn, IO_RECV);
	serve(g);
	switch (stmt) {
	case 0:
		pg_command_complete(g, "BEGIN");
		rows = 0;
		break;
	case 2:
		pg_row_description_abalance(g);
		pg_abalance_row(g);
		pg_command_complete(g, "SELECT 1");
		break;
	case 5:
		pg_command_complete(g, "INSERT 0 1");
		break;
	case 6:
		pg_command_complete(g, "COMMIT");
		txn_status = PG_TXN_IDLE;
		rows = 0;
		break;
	default:
		pg_command_complete(g, "UPDATE 1");
		break;
	}
	pg_ready(g, txn_status);
	cut(g, conn, IO_SEND);
	think(g);
	g->rows += rows;
	return 1;
}

/* ---- Redis ---- */

static void resp_bulk(struct gen *g, const char *s)
{
	char hdr[24];

	snprintf(hdr, sizeof(hdr), "%c%zu" RESP_CRLF, RESP_BULK_TYPE, strlen(s));
	put_str(g, hdr);
	put_str(g, s);
	put_str(g, RESP_CRLF);
}

/* Command @k of a connection (SET and GET alternate) appended to the request being written;
 * the server's reply to it into @reply. */
static void redis_command(struct gen *g, unsigned int k, char *reply, size_t reply_size)
{
	const char *args[3];
	char key[24], hdr[24];
	bool set = !(k & 1);
	unsigned int argc = 0, i;

	snprintf(key, sizeof(key), RB_KEY_FMT, rnd_range(g, 0, RB_KEYSPACE - 1));
	args[argc++] = set ? "SET" : "GET";
	args[argc++] = key;
	if (set)
		args[argc++] = RB_VALUE;
	snprintf(hdr, sizeof(hdr), "%c%u" RESP_CRLF, RESP_ARRAY_TYPE, argc);
	put_str(g, hdr);
	for (i = 0; i < argc; i++)
		resp_bulk(g, args[i]);
	if (set)
		snprintf(reply, reply_size, RESP_OK);
	else
		snprintf(reply, reply_size, "%c%zu" RESP_CRLF RB_VALUE RESP_CRLF, RESP_BULK_TYPE,
			 strlen(RB_VALUE));
}

/* @n commands in one read, their replies in one write (redis-benchmark -P n). */
static unsigned int redis_pipeline(struct gen *g, unsigned int conn, unsigned int first,
				   unsigned int n)
{
	char replies[RB_PIPELINE][24];
	unsigned int i;

	for (i = 0; i < n; i++)
		redis_command(g, first + i, replies[i], sizeof(replies[i]));
	cut(g, conn, IO_RECV);
	serve(g);
	for (i = 0; i < n; i++)
		put_str(g, replies[i]);
	cut(g, conn, IO_SEND);
	think(g);
	return n;
}

static unsigned int redis_exchange(struct gen *g, unsigned int conn, unsigned int j,
				   unsigned int ops_left)
{
	return redis_pipeline(g, conn, j, 1);
}

static unsigned int redis_p16_exchange(struct gen *g, unsigned int conn, unsigned int j,
				       unsigned int ops_left)
{
	return redis_pipeline(g, conn, j * RB_PIPELINE,
			      ops_left < RB_PIPELINE ? ops_left : RB_PIPELINE);
}

/* ---- MariaDB ---- */

/* Start a packet with sequence id @seq; returns where its length goes (my_end() patches). */
static size_t my_begin(struct gen *g, __u8 seq)
{
	size_t at = g->t.len;

	put_le16(g, 0);
	put_u8(g, 0);
	put_u8(g, seq);
	return at;
}

static void my_end(struct gen *g, size_t at)
{
	size_t n = g->t.len - at - MY_HDR_LEN;

	g->t.bytes[at] = (__u8)n;
	g->t.bytes[at + 1] = (__u8)(n >> 8);
	g->t.bytes[at + 2] = (__u8)(n >> 16);
}

/*
 * A client packet as mariadbd reads it: the 4-byte header in one read, then exactly the
 * payload in another (net_serv.cc my_real_read()). my_request_begin() writes the header and
 * ends its chunk; the caller writes the payload; my_request_end() patches the length into the
 * header and ends the payload's chunk.
 */
static size_t my_request_begin(struct gen *g, unsigned int conn, __u8 seq)
{
	size_t at = my_begin(g, seq);

	cut(g, conn, IO_RECV);
	return at;
}

static void my_request_end(struct gen *g, unsigned int conn, size_t at)
{
	my_end(g, at);
	cut(g, conn, IO_RECV);
}

/* Server greeting (one send), HandshakeResponse41 (two reads), OK (one send). */
static void my_setup(struct gen *g, unsigned int conn)
{
	size_t at;
	int i;

	at = my_begin(g, 0);
	put_u8(g, MY_PROTOCOL_V10);
	put_cstr(g, MY_VERSION);
	put_le32(g, MY_THREAD_ID + conn);
	for (i = 0; i < 8; i++)
		put_u8(g, (__u8)('a' + i)); /* auth data, part 1 */
	put_u8(g, 0);
	put_le16(g, (__u16)MY_CAPS);
	put_u8(g, MY_CHARSET_UTF8MB4);
	put_le16(g, MY_SERVER_AUTOCOMMIT);
	put_le16(g, (__u16)(MY_CAPS >> 16));
	put_u8(g, MY_SCRAMBLE_LEN + 1);
	for (i = 0; i < 10; i++)
		put_u8(g, 0); /* filler (MariaDB: 6 bytes, then 4 of extended capabilities) */
	for (i = 0; i < 13; i++)
		put_u8(g, (__u8)('k' + i % 10)); /* auth data, part 2 */
	put_cstr(g, MY_AUTH_PLUGIN);
	my_end(g, at);
	cut(g, conn, IO_SEND);
	think(g);

	at = my_request_begin(g, conn, 1);
	put_le32(g, MY_CAPS);
	put_le32(g, MY_MAX_PACKET);
	put_u8(g, MY_CHARSET_UTF8MB4);
	for (i = 0; i < MY_HS_FILLER_LEN; i++)
		put_u8(g, 0);
	put_cstr(g, "sbtest");
	put_lenenc(g, MY_SCRAMBLE_LEN);
	for (i = 0; i < MY_SCRAMBLE_LEN; i++)
		put_u8(g, (__u8)(0x30 + i));
	put_cstr(g, "sbtest");
	put_cstr(g, MY_AUTH_PLUGIN);
	my_request_end(g, conn, at);
	serve(g);
	at = my_begin(g, 2);
	put_u8(g, MY_HDR_OK);
	put_lenenc(g, 0); /* affected rows */
	put_lenenc(g, 0); /* last insert id */
	put_le16(g, MY_SERVER_AUTOCOMMIT);
	put_le16(g, 0); /* warnings */
	my_end(g, at);
	cut(g, conn, IO_SEND);
	think(g);
}

/* sysbench's c: 10 groups of 11 random digits joined by '-'. */
static void sb_c_value(struct gen *g, char *buf)
{
	int i, k;
	char *p = buf;

	for (i = 0; i < SB_C_GROUPS; i++) {
		if (i)
			*p++ = '-';
		for (k = 0; k < SB_C_GROUP_DIGITS; k++)
			*p++ = (char)('0' + rnd(g) % 10);
	}
	*p = 0;
}

/*
 * sysbench oltp_point_select with --db-ps-mode=disable: COM_QUERY (header, then payload), the
 * text result set in one send: column count, the definition of c (CHAR(120)), one row, and
 * the OK with header 0xFE that ends it under CLIENT_DEPRECATE_EOF.
 */
static unsigned int my_point_select_exchange(struct gen *g, unsigned int conn, unsigned int j,
					     unsigned int ops_left)
{
	char sql[64], c[SB_C_LEN + 1];
	__u8 seq = 1;
	size_t at;

	snprintf(sql, sizeof(sql), "SELECT c FROM sbtest1 WHERE id=%u",
		 rnd_range(g, 1, SB_TABLE_SIZE));
	at = my_request_begin(g, conn, 0);
	put_u8(g, MY_COM_QUERY);
	put_str(g, sql);
	my_request_end(g, conn, at);
	serve(g);
	at = my_begin(g, seq++);
	put_lenenc(g, 1); /* column count */
	my_end(g, at);
	at = my_begin(g, seq++);
	put_lenstr(g, "def");
	put_lenstr(g, "sbtest");
	put_lenstr(g, "sbtest1");
	put_lenstr(g, "sbtest1");
	put_lenstr(g, "c");
	put_lenstr(g, "c");
	put_u8(g, MY_COLDEF_FIXED_LEN);
	put_le16(g, MY_CHARSET_UTF8MB4);
	put_le32(g, SB_C_CHARS * MY_UTF8MB4_MAX_BYTES);
	put_u8(g, MY_TYPE_STRING);
	put_le16(g, MY_NOT_NULL_FLAG);
	put_u8(g, 0);	/* decimals */
	put_le16(g, 0); /* filler */
	my_end(g, at);
	at = my_begin(g, seq++);
	sb_c_value(g, c);
	put_lenstr(g, c);
	my_end(g, at);
	at = my_begin(g, seq++);
	put_u8(g, MY_HDR_EOF);
	put_lenenc(g, 0); /* affected rows */
	put_lenenc(g, 0); /* last insert id */
	put_le16(g, MY_SERVER_AUTOCOMMIT);
	put_le16(g, 0); /* warnings */
	my_end(g, at);
	cut(g, conn, IO_SEND);
	think(g);
	g->rows += 1;
	return 1;
}

/* ---- the workload table ---- */

struct workload {
	const char *name;
	__u16 system;	  /* as discovery registers the server (the MariaDB greeting refines it) */
	__u16 agg_system; /* what the series carry */
	void (*setup)(struct gen *g, unsigned int conn);
	/* the j-th exchange of @conn, at most @ops_left operations; returns its operations */
	unsigned int (*exchange)(struct gen *g, unsigned int conn, unsigned int j,
				 unsigned int ops_left);
	unsigned int cycle;  /* exchanges of a connection until every statement was sent */
	unsigned int series; /* distinct fingerprints: series in "aggs", texts sent */
};

static const struct workload workloads[] = {
	{"pg-select", DBTAP_SYS_POSTGRESQL, DBTAP_SYS_POSTGRESQL, pg_setup, pg_select_exchange, 1,
	 1},
	{"pg-prepared", DBTAP_SYS_POSTGRESQL, DBTAP_SYS_POSTGRESQL, pg_prepared_setup,
	 pg_prepared_exchange, 1, 1},
	{"pg-tpcb", DBTAP_SYS_POSTGRESQL, DBTAP_SYS_POSTGRESQL, pg_setup, pg_tpcb_exchange,
	 TPCB_STATEMENTS, TPCB_STATEMENTS},
	{"redis-get-set", DBTAP_SYS_REDIS, DBTAP_SYS_REDIS, NULL, redis_exchange, 2, 2},
	{"redis-get-set-p16", DBTAP_SYS_REDIS, DBTAP_SYS_REDIS, NULL, redis_p16_exchange, 1, 2},
	{"mariadb-point-select", DBTAP_SYS_MARIADB, DBTAP_SYS_MARIADB, my_setup,
	 my_point_select_exchange, 1, 1},
};

#define N_WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/*
 * The whole trace: every connection's setup; a warm-up of one cycle per connection (every
 * statement seen once: its text sent, its series created, caches filled), not measured;
 * then @ops operations, the connections taking turns by exchange.
 */
static void build(struct gen *g, const struct workload *w, unsigned int ops)
{
	unsigned int conn, i, j = 0, made = 0;

	for (conn = 0; conn < g->conns; conn++)
		if (w->setup)
			w->setup(g, conn);
	g->setup_end = g->t.n;
	for (i = 0; i < w->cycle; i++, j++)
		for (conn = 0; conn < g->conns; conn++)
			made += w->exchange(g, conn, j, UINT32_MAX);
	g->warm_end = g->t.n;
	g->warm_ops = made;
	g->rows = 0;
	for (made = 0; made < ops; j++)
		for (conn = 0; conn < g->conns && made < ops; conn++)
			made += w->exchange(g, conn, j, ops - made);
	g->ops = made;
}

/* ---- replay and checks ---- */

static int replay(const struct gen *g, size_t from, size_t to)
{
	const struct trace *t = &g->t;
	size_t i;
	int err;

	for (i = from; i < to; i++) {
		const struct chunk_rec *r = &t->recs[i];

		err = pgh_chunk(r->sk, r->dir, t->bytes + r->off, r->len, r->now_ns);
		if (err) {
			fprintf(stderr, "decoder_cost: chunk %zu: pgh_chunk: %d\n", i, err);
			return err;
		}
	}
	pgh_events_consume();
	return 0;
}

/* The measured loop: nothing but the chunks (the ring buffer is read with collection off, as
 * userspace reads it outside the kernel's programs). Returns the number of failed chunks. */
static unsigned int replay_measured(const struct gen *g)
{
	const struct trace *t = &g->t;
	unsigned int failed = 0;
	size_t i;

	CALLGRIND_TOGGLE_COLLECT;
	for (i = g->warm_end; i < t->n; i++) {
		const struct chunk_rec *r = &t->recs[i];

		failed += pgh_chunk(r->sk, r->dir, t->bytes + r->off, r->len, r->now_ns) != 0;
		if ((i - g->warm_end) % CONSUME_EVERY == CONSUME_EVERY - 1) {
			CALLGRIND_TOGGLE_COLLECT;
			pgh_events_consume();
			CALLGRIND_TOGGLE_COLLECT;
		}
	}
	CALLGRIND_TOGGLE_COLLECT;
	pgh_events_consume();
	return failed;
}

/* Counters that must stay 0 on a clean replay: losses, framing errors, aborted work. */
static const enum dbtap_counter must_be_zero[] = {
	DBTAP_CNT_CONN_CLOSE,	  DBTAP_CNT_UNDECODABLE,    DBTAP_CNT_ENCRYPTED,
	DBTAP_CNT_DROP_SAMPLE_RB, DBTAP_CNT_DROP_TEXT_RB,   DBTAP_CNT_DROP_CONN_RB,
	DBTAP_CNT_DROP_PROC_RB,	  DBTAP_CNT_DROP_AGG_FULL,  DBTAP_CNT_DROP_ERR_FULL,
	DBTAP_CNT_DROP_CONN_FULL, DBTAP_CNT_DROP_STMT_FULL, DBTAP_CNT_DROP_PIPELINE,
	DBTAP_CNT_DROP_READ,	  DBTAP_CNT_DROP_SYSCALL,   DBTAP_CNT_DROP_PROC_FULL,
	DBTAP_CNT_DESYNC,	  DBTAP_CNT_ABORTED,	    DBTAP_CNT_DROP_REASM_FULL,
	DBTAP_CNT_COMPRESSED,
};

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "decoder_cost: %s: FAILED: ", w->name); \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			return -EPROTO;                                         \
		}                                                               \
	} while (0)

/*
 * What the decoder must have seen: every operation sent (OPS counter, the series' counts),
 * one series and one text per fingerprint, the rows of the measured ones, no error, no loss,
 * no read past a chunk. @ops_before: the OPS counter before the measured loop.
 */
static int check(const struct gen *g, const struct workload *w, __u64 ops_before, __u64 rows_before,
		 unsigned int failed)
{
	__u64 ops = 0, rows = 0, errors = 0;
	const struct dbtap_agg_val *v;
	struct dbtap_agg_key k;
	unsigned int i;
	char why[256];

	CHECK(!failed, "%u chunks refused by the harness", failed);
	CHECK(ops_before == g->warm_ops, "OPS after the warm-up %llu, sent %u",
	      (unsigned long long)ops_before, g->warm_ops);
	CHECK(pgh_counter(DBTAP_CNT_OPS) - ops_before == g->ops,
	      "OPS in the measured loop %llu, sent %u",
	      (unsigned long long)(pgh_counter(DBTAP_CNT_OPS) - ops_before), g->ops);
	for (i = 0; i < sizeof(must_be_zero) / sizeof(must_be_zero[0]); i++)
		CHECK(pgh_counter(must_be_zero[i]) == 0, "counter %u is %llu, want 0",
		      must_be_zero[i], (unsigned long long)pgh_counter(must_be_zero[i]));
	CHECK(pgh_counter(DBTAP_CNT_CONN_OPEN) == g->conns, "CONN_OPEN %llu, want %u",
	      (unsigned long long)pgh_counter(DBTAP_CNT_CONN_OPEN), g->conns);
	CHECK(pgh_counter(DBTAP_CNT_TEXTS) == w->series, "TEXTS %llu, want %u",
	      (unsigned long long)pgh_counter(DBTAP_CNT_TEXTS), w->series);
	CHECK(pgh_agg_count() == w->series, "%u series, want %u", pgh_agg_count(), w->series);
	for (i = 0; pgh_agg_at(i, &k, &v) == 0; i++) {
		CHECK(k.system == w->agg_system && k.instance == INSTANCE && k.query_hash,
		      "series %u: system %u instance %u hash %#llx", i, k.system, k.instance,
		      (unsigned long long)k.query_hash);
		ops += v->count;
		rows += v->rows;
		errors += v->errors;
	}
	CHECK(ops == pgh_counter(DBTAP_CNT_OPS), "series count %llu operations, OPS counter %llu",
	      (unsigned long long)ops, (unsigned long long)pgh_counter(DBTAP_CNT_OPS));
	CHECK(errors == 0 && pgh_err_count() == 0, "%llu errors", (unsigned long long)errors);
	CHECK(rows - rows_before == g->rows, "rows in the measured loop %llu, sent %llu",
	      (unsigned long long)(rows - rows_before), (unsigned long long)g->rows);
	CHECK(pgh_user_faults() == 0, "%llu reads outside the chunk",
	      (unsigned long long)pgh_user_faults());
	if (w->system == DBTAP_SYS_POSTGRESQL)
		CHECK(pgh_check_invariants(why, sizeof(why)) == 0, "invariants: %s", why);
	return 0;
}

static __u64 agg_rows(void)
{
	const struct dbtap_agg_val *v;
	struct dbtap_agg_key k;
	__u64 rows = 0;
	unsigned int i;

	for (i = 0; pgh_agg_at(i, &k, &v) == 0; i++)
		rows += v->rows;
	return rows;
}

/* Open the connections, replay setup and warm-up, then the measured loop; check. 0, or
 * -errno with the reason printed. Not inlined: its frame (and what it calls) starts where main()
 * put the stack. */
static __attribute__((noinline)) int run(struct gen *g, const struct workload *w)
{
	__u64 ops_before, rows_before;
	unsigned int conn, failed;
	int err;

	pgh_reset();
	for (conn = 0; conn < g->conns; conn++) {
		err = pgh_conn_open_system(SK_BASE + conn * SK_STRIDE, INSTANCE, w->system, 0, 0);
		if (err) {
			fprintf(stderr, "decoder_cost: pgh_conn_open_system: %d\n", err);
			return err;
		}
	}
	err = replay(g, 0, g->setup_end);
	if (!err)
		err = replay(g, g->setup_end, g->warm_end);
	if (err)
		return err;
	ops_before = pgh_counter(DBTAP_CNT_OPS);
	rows_before = agg_rows();

	failed = replay_measured(g);

	err = check(g, w, ops_before, rows_before, failed);
	if (err)
		return err;
	printf("decoder_cost: workload=%s ops=%u conns=%u chunks=%zu bytes=%zu warmup_ops=%u "
	       "series=%u samples=%llu: OK\n",
	       w->name, g->ops, g->conns, g->t.n - g->warm_end,
	       g->t.len - g->t.recs[g->warm_end].off, g->warm_ops, pgh_agg_count(),
	       (unsigned long long)pgh_counter(DBTAP_CNT_SAMPLES));
	return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"Usage: decoder_cost --workload W [--ops N] [--conns C] | --list\n"
		"  --ops N     measured operations [%d]\n"
		"  --conns C   connections taking turns [%d, at most %d]\n"
		"Workloads:",
		DEFAULT_OPS, DEFAULT_CONNS, PGH_MAX_CONNS);
	for (i = 0; i < N_WORKLOADS; i++)
		fprintf(f, " %s", workloads[i].name);
	fputc('\n', f);
}

static int parse_uint(const char *s, unsigned int max, unsigned int *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max)
		return -EINVAL;
	*ret = (unsigned int)v;
	return 0;
}

int main(int argc, char **argv)
{
	const struct workload *w = NULL;
	unsigned int ops = DEFAULT_OPS, conns = DEFAULT_CONNS;
	struct gen g = {.clock = T0_NS, .rng = RNG_SEED};
	size_t i, stack_pad;
	volatile char *pad;
	int a, err = 0;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--list")) {
			for (i = 0; i < N_WORKLOADS; i++)
				printf("%s\n", workloads[i].name);
			return 0;
		} else if (!strcmp(argv[a], "--workload") && a + 1 < argc) {
			a++;
			for (i = 0; i < N_WORKLOADS; i++)
				if (!strcmp(argv[a], workloads[i].name))
					w = &workloads[i];
			if (!w) {
				fprintf(stderr, "decoder_cost: unknown workload '%s'\n", argv[a]);
				usage(stderr);
				return 2;
			}
		} else if (!strcmp(argv[a], "--ops") && a + 1 < argc) {
			err = parse_uint(argv[++a], MAX_OPS, &ops);
		} else if (!strcmp(argv[a], "--conns") && a + 1 < argc) {
			err = parse_uint(argv[++a], PGH_MAX_CONNS, &conns);
		} else if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
			usage(stdout);
			return 0;
		} else {
			err = -EINVAL;
		}
		if (err) {
			fprintf(stderr, "decoder_cost: bad argument '%s'\n", argv[a]);
			usage(stderr);
			return 2;
		}
	}
	if (!w) {
		usage(stderr);
		return 2;
	}
	g.conns = conns;
	build(&g, w, ops);
	/* the same stack addresses modulo a page whatever argv and the environment hold */
	stack_pad = ((uintptr_t)__builtin_frame_address(0) - STACK_PHASE) & (STACK_PAGE - 1);
	pad = alloca(stack_pad + 1);
	pad[0] = 0;
	err = run(&g, w);
	if (err)
		return 1;
	pgh_free();
	free(g.t.bytes);
	free(g.t.recs);
	return 0;
}
