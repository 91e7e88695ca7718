// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fuzz_mysql_decoder.c - libFuzzer target for the kernel's MySQL/MariaDB decoder
 * (probes/mysql/mysql.bpf.h), run in userspace through tests/lib/pg_harness: the input is a
 * script of chunks on two connections; after each chunk the decoder's state must be
 * consistent (below), and the whole script run twice with different stale bytes past the
 * scratch copy (0x00, 0xFE) must give identical results.
 *
 * Script (all lengths bounded by what is left of the input):
 *   byte 0: options  bit0 small ring buffer, bit1 small maps, bit2 no user_buf,
 *                    bit3 sample 1 in 3, bit4 slow threshold 0 (sample everything)
 *   then commands, one byte c each: connection = bit2, direction = bit3 (1 = server sends),
 *   arg = c >> 4, and c & 3:
 *     0 RAW    next byte n: a chunk of the following n + 1 bytes, fed at once
 *     1 PKT    append a packet to the connection/direction's pending stream: sequence id
 *              byte, payload length byte L, L payload bytes repeated to L << arg bytes (so
 *              packets reach past the 8 KiB scratch); arg 15: the 3-byte length taken raw
 *              from the input instead
 *     2 FLUSH  feed the pending stream in chunks of (next byte) << arg bytes, 0 = one chunk
 *     3 SPECIAL by arg: 0 EOF, 1 greeting (MariaDB when the next byte is odd), 2 login
 *              (capabilities from the next 4 bytes, user/database lengths from the next
 *              byte), 3 one byte (next byte), 4 clock += next byte * 1 us, 5 epoch + 1,
 *              6 userspace consumes the ring, 7 a new connection on the same socket
 *              address, others: nothing
 * Pending streams are flushed whole at the end.
 *
 * Consistency: at most CONN_MAX_OPS operations in flight, phase and reply state in range,
 * per series errors <= count and the histogram holding count, the OPS counter equal to the
 * series' counts, error codes of at most 5 decimal digits, texts of MySQL/MariaDB only.
 */
// fuzz-sources: tests/lib/pg_harness.c
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/pg_harness.h"

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
#define CMD_PKT	       1
#define CMD_FLUSH      2
#define CMD_SPECIAL    3
#define ARG_RAW_LENGTH 15

enum special {
	SP_EOF = 0,
	SP_GREETING = 1,
	SP_LOGIN = 2,
	SP_BYTE = 3,
	SP_CLOCK = 4,
	SP_EPOCH = 5,
	SP_CONSUME = 6,
	SP_REOPEN = 7,
};

#define PROTOCOL_V10	  10
#define HS_FILLER	  23
#define SMALL_RING_BYTES  3000
#define STALE_A		  0x00
#define STALE_B		  0xfe /* EOF/OK header: a decision on a stale byte shows */
#define MYSQL_PHASE_LAST  4    /* MYSQL_PHASE_NORMAL */
#define MYSQL_RS_LAST	  6    /* MYSQL_RS_SKIP */
#define STATUS_DIGITS_MAX 5    /* a 16-bit error number */

static const __u64 conn_sk[N_CONNS] = {0xffff888000003000ull, 0xffff888000004000ull};

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

static void check(const char *what)
{
	__u64 ops = 0, hist;
	unsigned int i, j, k;
	struct dbtap_agg_key key;
	const struct dbtap_agg_val *v;
	struct dbtap_err_key ek;
	__u64 n;
	const struct conn_state *c;

	FUZZ_CHECK(pgh_user_faults() == 0, "after %s: reads outside the chunk", what);
	for (i = 0; i < N_CONNS; i++) {
		c = pgh_conn(conn_sk[i]);
		if (!c)
			continue;
		FUZZ_CHECK((__u8)(c->tail - c->head) <= CONN_MAX_OPS, "after %s: %u ops in flight",
			   what, (__u8)(c->tail - c->head));
		FUZZ_CHECK(c->phase <= MYSQL_PHASE_LAST, "after %s: phase %u", what, c->phase);
		FUZZ_CHECK(c->mysql.rs <= MYSQL_RS_LAST, "after %s: reply state %u", what,
			   c->mysql.rs);
	}
	for (i = 0; i < pgh_agg_count(); i++) {
		FUZZ_CHECK(pgh_agg_at(i, &key, &v) == 0, "agg %u", i);
		FUZZ_CHECK(key.system == DBTAP_SYS_MYSQL || key.system == DBTAP_SYS_MARIADB,
			   "after %s: series of system %u", what, key.system);
		FUZZ_CHECK(key.query_hash, "after %s: fingerprint 0", what);
		FUZZ_CHECK(v->errors <= v->count, "after %s: errors > count", what);
		for (hist = 0, j = 0; j < DBTAP_HIST_BUCKETS; j++)
			hist += v->hist[j];
		FUZZ_CHECK(hist == v->count, "after %s: histogram %llu, count %llu", what,
			   (unsigned long long)hist, (unsigned long long)v->count);
		ops += v->count;
	}
	FUZZ_CHECK(ops == pgh_counter(DBTAP_CNT_OPS), "after %s: OPS %llu, counts %llu", what,
		   (unsigned long long)pgh_counter(DBTAP_CNT_OPS), (unsigned long long)ops);
	for (i = 0; i < pgh_err_count(); i++) {
		FUZZ_CHECK(pgh_err_at(i, &ek, &n) == 0, "err %u", i);
		for (k = 0; k < DBTAP_STATUS_LEN && ek.status[k]; k++)
			FUZZ_CHECK(ek.status[k] >= '0' && ek.status[k] <= '9' &&
					   k < STATUS_DIGITS_MAX,
				   "after %s: status %.16s", what, ek.status);
		FUZZ_CHECK(k > 0, "after %s: empty status", what);
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

static void append_hdr(struct pending *pd, __u32 len, uint8_t seq)
{
	uint8_t b[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), seq};

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

static void cmd_pkt(struct input *in, struct pending *pd, unsigned int arg)
{
	uint8_t seq = take_or_zero(in), body_len = take_or_zero(in), raw[3];
	size_t n, total, done;
	unsigned int i;

	if (arg == ARG_RAW_LENGTH) {
		for (i = 0; i < sizeof(raw); i++)
			raw[i] = take_or_zero(in);
		append(pd, raw, sizeof(raw));
		append(pd, &seq, 1);
	}
	n = body_len < in->left ? body_len : in->left;
	total = arg == ARG_RAW_LENGTH ? n : n << arg;
	if (total > PENDING_MAX)
		total = PENDING_MAX;
	if (arg != ARG_RAW_LENGTH)
		append_hdr(pd, (__u32)total, seq);
	for (done = 0; n && done < total; done += n)
		append(pd, in->p, total - done < n ? total - done : n);
	in->p += n;
	in->left -= n;
}

static void cmd_greeting(struct input *in, struct pending *pd)
{
	static const char mariadb[] = "5.5.5-10.11.6-MariaDB", mysql[] = "8.0.36";
	uint8_t msg[128], *p = msg;
	bool maria = take_or_zero(in) & 1;
	const char *v = maria ? mariadb : mysql;
	int i;

	*p++ = PROTOCOL_V10;
	memcpy(p, v, strlen(v) + 1);
	p += strlen(v) + 1;
	memset(p, 'a', 4 + 8 + 1);
	p += 4 + 8 + 1;
	*p++ = 0xff; /* capabilities: all */
	*p++ = 0xff;
	*p++ = 45;
	*p++ = 2;
	*p++ = 0;
	*p++ = 0xff;
	*p++ = 0xff;
	*p++ = 21;
	for (i = 0; i < 10; i++)
		*p++ = 0;
	append_hdr(pd, (__u32)(p - msg), 0);
	append(pd, msg, (size_t)(p - msg));
}

/* HandshakeResponse41 with capabilities, user and database cut from the input. */
static void cmd_login(struct input *in, struct pending *pd)
{
	uint8_t msg[4 + 4 + 1 + HS_FILLER + 2 * 16 + 4 + 21], *p = msg, lens;
	size_t user_len, db_len, i;

	for (i = 0; i < 4; i++)
		*p++ = take_or_zero(in);
	memset(p, 0, 4 + 1 + HS_FILLER);
	p += 4 + 1 + HS_FILLER;
	lens = take_or_zero(in);
	user_len = lens & 15;
	db_len = lens >> 4;
	user_len = user_len < in->left ? user_len : in->left;
	memcpy(p, in->p, user_len);
	p += user_len;
	*p++ = 0;
	in->p += user_len;
	in->left -= user_len;
	*p++ = 20; /* auth data length */
	memset(p, 'x', 20);
	p += 20;
	db_len = db_len < in->left ? db_len : in->left;
	memcpy(p, in->p, db_len);
	p += db_len;
	*p++ = 0;
	in->p += db_len;
	in->left -= db_len;
	append_hdr(pd, (__u32)(p - msg), 1);
	append(pd, msg, (size_t)(p - msg));
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

static void open_conn(int conn)
{
	int err = pgh_conn_open_system(conn_sk[conn], INSTANCE, DBTAP_SYS_MYSQL, 0, 0);

	FUZZ_CHECK(err == 0 || err == -E2BIG, "pgh_conn_open_system: %d", err);
}

static void run(const uint8_t *data, size_t size, __u8 stale)
{
	struct input in = {data, size};
	__u64 now = 1000000000ull;
	uint8_t opts = 0, c, b;
	enum io_dir dir;
	int conn;

	pgh_reset();
	pgh_set_stale_byte(stale);
	memset(pending, 0, sizeof(pending));
	cur_epoch = 1;
	take(&in, &opts);
	configure(opts);
	for (conn = 0; conn < N_CONNS; conn++)
		open_conn(conn);
	check("opening");
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
		case CMD_PKT:
			cmd_pkt(&in, &pending[conn][dir], c >> 4);
			break;
		case CMD_FLUSH:
			flush(conn, dir, (size_t)take_or_zero(&in) << (c >> 4), now);
			break;
		case CMD_SPECIAL:
			switch (c >> 4) {
			case SP_EOF:
				feed(conn, dir, NULL, 0, now);
				break;
			case SP_GREETING:
				cmd_greeting(&in, &pending[conn][IO_SEND]);
				break;
			case SP_LOGIN:
				cmd_login(&in, &pending[conn][IO_RECV]);
				break;
			case SP_BYTE:
				b = take_or_zero(&in);
				append(&pending[conn][dir], &b, 1);
				break;
			case SP_CLOCK:
				now += (__u64)take_or_zero(&in) * 1000;
				break;
			case SP_EPOCH:
				pgh_set_epoch(++cur_epoch);
				break;
			case SP_CONSUME:
				pgh_events_consume();
				break;
			case SP_REOPEN:
				open_conn(conn);
				check("reopening");
				break;
			}
			break;
		}
	}
	for (conn = 0; conn < N_CONNS; conn++) {
		flush(conn, IO_RECV, 0, now);
		flush(conn, IO_SEND, 0, now);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int stale_check = -1;
	struct pgh_snapshot *a, *b;
	char why[512];

	if (stale_check < 0)
		stale_check = !getenv("DBTAP_FUZZ_NO_STALE_CHECK");
	if (!stale_check) {
		run(data, size, STALE_A);
		return 0;
	}
	run(data, size, STALE_A);
	a = pgh_snapshot_take();
	run(data, size, STALE_B);
	b = pgh_snapshot_take();
	FUZZ_CHECK(a && b, "out of memory");
	FUZZ_CHECK(pgh_snapshot_diff(a, b, 0, why, sizeof(why)) == 0,
		   "result depends on stale scratch bytes: %s (stale %#x vs %#x)", why, STALE_A,
		   STALE_B);
	pgh_snapshot_free(a);
	pgh_snapshot_free(b);
	return 0;
}
