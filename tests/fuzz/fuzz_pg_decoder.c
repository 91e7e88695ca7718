// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fuzz_pg_decoder.c - libFuzzer target for the kernel's PostgreSQL decoder, run in userspace
 * through tests/lib/pg_harness: the input is a script of chunks on two connections; after each
 * chunk every invariant of the decoder state must hold, and the whole script run twice with
 * different stale bytes past the scratch copy (0x00, 'Q') must give identical results.
 *
 * Script (all lengths bounded by what is left of the input):
 *   byte 0: options  bit0 small ring buffer, bit1 small maps, bit2 no user_buf,
 *                    bit3 sample 1 in 3, bit4 slow threshold 0 (sample everything)
 *   then commands, one byte c each: connection = bit2, direction = bit3 (1 = server sends),
 *   arg = c >> 4, and c & 3:
 *     0 RAW    next byte n: a chunk of the following n + 1 bytes, fed at once
 *     1 MSG    append a framed message to the connection/direction's pending stream:
 *              type byte, body length byte L, L body bytes repeated to L << arg bytes (so
 *              messages and chunks reach past the 8 KiB scratch); arg 15: L bytes once, the
 *              int32 length field taken raw from 4 more bytes instead of the real one
 *     2 FLUSH  feed the pending stream in chunks of (next byte) << arg bytes, 0 = one chunk
 *     3 SPECIAL by arg: 0 EOF, 1 StartupMessage (user/database lengths from the next byte),
 *              2 SSLRequest, 3 GSSENCRequest, 4 CancelRequest, 5 one byte (next byte),
 *              6 clock += next byte * 1 us, 7 epoch + 1, 8 userspace consumes the ring,
 *              9 a new connection on the same socket address, others: nothing
 * Pending streams are flushed whole at the end.
 *
 * DBTAP_FUZZ_NO_STALE_CHECK=1 in the environment skips the second run (to look for other
 * problems while a known stale read is open).
 */
// fuzz-sources: tests/lib/pg_harness.c
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/pg_harness.h"

/* Crash with a message libFuzzer saves along with the input. */
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
#define INSTANCE    777
#define PENDING_MAX (1 << 16) /* bytes of one pending stream */
#define STEP_NS	    1000      /* clock advance per command */

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
	SP_STARTUP = 1,
	SP_SSL = 2,
	SP_GSSENC = 3,
	SP_CANCEL = 4,
	SP_BYTE = 5,
	SP_CLOCK = 6,
	SP_EPOCH = 7,
	SP_CONSUME = 8,
	SP_REOPEN = 9,
};

/* PostgreSQL untyped first messages */
#define PROTOCOL_3_0 196608u
#define CODE_CANCEL  80877102u
#define CODE_SSL     80877103u
#define CODE_GSSENC  80877104u

#define SMALL_RING_BYTES 3000 /* one text record does not fit, a few others do */
#define STALE_A		 0x00
#define STALE_B		 'Q' /* a frontend message type */

static const __u64 conn_sk[N_CONNS] = {0xffff888000001000ull, 0xffff888000002000ull};

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
	char why[512];

	FUZZ_CHECK(pgh_check_invariants(why, sizeof(why)) == 0, "after %s: %s", what, why);
}

/* Feed @len bytes from a heap copy of exactly that size, so ASan sees any read past them. */
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

static void append_be32(struct pending *pd, __u32 v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

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

static void cmd_msg(struct input *in, struct pending *pd, unsigned int arg)
{
	uint8_t type = take_or_zero(in), body_len = take_or_zero(in), raw[4];
	size_t n, total, done;
	unsigned int i;

	append(pd, &type, 1);
	if (arg == ARG_RAW_LENGTH) {
		for (i = 0; i < sizeof(raw); i++)
			raw[i] = take_or_zero(in);
		append(pd, raw, sizeof(raw));
	}
	n = body_len < in->left ? body_len : in->left;
	total = arg == ARG_RAW_LENGTH ? n : n << arg;
	if (total > PENDING_MAX)
		total = PENDING_MAX;
	if (arg != ARG_RAW_LENGTH)
		append_be32(pd, (__u32)total + 4);
	for (done = 0; n && done < total; done += n)
		append(pd, in->p, total - done < n ? total - done : n);
	in->p += n;
	in->left -= n;
}

/* StartupMessage with user and database names cut from the input. */
static void cmd_startup(struct input *in, struct pending *pd)
{
	uint8_t lens = take_or_zero(in), msg[64 + 2 * 16], *p = msg + 8;
	size_t user_len = lens & 15, db_len = lens >> 4, len;

	user_len = user_len < in->left ? user_len : in->left;
	memcpy(p, "user", 5);
	p += 5;
	memcpy(p, in->p, user_len);
	p += user_len;
	*p++ = 0;
	in->p += user_len;
	in->left -= user_len;
	db_len = db_len < in->left ? db_len : in->left;
	if (db_len) {
		memcpy(p, "database", 9);
		p += 9;
		memcpy(p, in->p, db_len);
		p += db_len;
		*p++ = 0;
		in->p += db_len;
		in->left -= db_len;
	}
	*p++ = 0;
	len = (size_t)(p - msg);
	msg[0] = 0;
	msg[1] = 0;
	msg[2] = (uint8_t)(len >> 8);
	msg[3] = (uint8_t)len;
	msg[4] = (uint8_t)(PROTOCOL_3_0 >> 24);
	msg[5] = (uint8_t)(PROTOCOL_3_0 >> 16);
	msg[6] = (uint8_t)(PROTOCOL_3_0 >> 8);
	msg[7] = (uint8_t)PROTOCOL_3_0;
	append(pd, msg, len);
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
	uint8_t opts = 0, c, b;
	int conn, i, err;
	enum io_dir dir;

	pgh_reset();
	pgh_set_stale_byte(stale);
	memset(pending, 0, sizeof(pending));
	cur_epoch = 1;
	take(&in, &opts);
	configure(opts);
	for (i = 0; i < N_CONNS; i++) {
		err = pgh_conn_open(conn_sk[i], INSTANCE, 0, 0);
		FUZZ_CHECK(err == 0 || err == -E2BIG, "pgh_conn_open: %d", err);
	}
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
		case CMD_MSG:
			cmd_msg(&in, &pending[conn][dir], c >> 4);
			break;
		case CMD_FLUSH:
			flush(conn, dir, (size_t)take_or_zero(&in) << (c >> 4), now);
			break;
		case CMD_SPECIAL:
			switch (c >> 4) {
			case SP_EOF:
				feed(conn, dir, NULL, 0, now);
				break;
			case SP_STARTUP:
				cmd_startup(&in, &pending[conn][IO_RECV]);
				break;
			case SP_SSL:
			case SP_GSSENC:
				append_be32(&pending[conn][IO_RECV], 8);
				append_be32(&pending[conn][IO_RECV],
					    (c >> 4) == SP_SSL ? CODE_SSL : CODE_GSSENC);
				break;
			case SP_CANCEL:
				append_be32(&pending[conn][IO_RECV], 16);
				append_be32(&pending[conn][IO_RECV], CODE_CANCEL);
				append_be32(&pending[conn][IO_RECV], 4242);
				append_be32(&pending[conn][IO_RECV], 0x5eed);
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
				err = pgh_conn_open(conn_sk[conn], INSTANCE, 0, 0);
				FUZZ_CHECK(err == 0 || err == -E2BIG, "pgh_conn_open: %d", err);
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
	/* the same script twice; only the bytes past each chunk's copy differ (one of them a
	 * message type, so that a decision taken on a stale byte changes the outcome) */
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
