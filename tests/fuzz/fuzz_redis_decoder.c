// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fuzz_redis_decoder.c - libFuzzer target for the kernel's Redis decoder
 * (probes/redis/redis.bpf.h), run in userspace through tests/lib/pg_harness: the input is a
 * script of chunks on two connections; after each chunk every invariant of the decoder state
 * must hold, and the whole script run twice with different stale bytes past the scratch copy
 * (0x00, '*') must give identical results. With a user buffer (option bit0 clear) it is run
 * a third time with every chunk fed in pieces of 1 to SPLIT_MAX bytes (once the connection's
 * first bytes made it RESP), which must give the same results too: a token cut anywhere is
 * read as a whole one.
 *
 * Script (all lengths bounded by what is left of the input):
 *   byte 0: options  bit0 no user_buf, bit1 small ring buffer, bit2 slow threshold 0
 *   then commands, one byte c each: connection = bit0, direction = bit1 (1 = server sends),
 *   arg = c >> 4, and (c >> 2) & 3:
 *     0 RAW     next byte n: a chunk of the following n + 1 bytes, fed at once
 *     1 APPEND  next byte n: the following n + 1 bytes appended to the connection/direction's
 *               pending stream 1 << (arg & 7) times (so streams reach past the 8 KiB scratch)
 *     2 FLUSH   feed the pending stream in chunks of (next byte + 1) << (arg & 7) bytes
 *     3 SPECIAL by arg: 0 EOF, 1 clock += next byte * 1 us, 2 userspace consumes the ring,
 *               3 a new connection on the same socket address, 4.. append the RESP token
 *               (next byte) of the table below to the pending stream
 * Pending streams are flushed whole at the end.
 */
// fuzz-sources: tests/lib/pg_harness.c
#include <errno.h>
#include <stdbool.h>
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

#define OPT_NO_USER_BUF (1 << 0)
#define OPT_SMALL_RING	(1 << 1)
#define OPT_SLOW_ZERO	(1 << 2)

#define CMD_RAW	    0
#define CMD_APPEND  1
#define CMD_FLUSH   2
#define CMD_SPECIAL 3

enum special {
	SP_EOF = 0,
	SP_CLOCK = 1,
	SP_CONSUME = 2,
	SP_REOPEN = 3,
};

#define SMALL_RING_BYTES 3000
#define STALE_A		 0x00
#define STALE_B		 '*' /* a RESP array: what a misread past the chunk would start */

#define SPLIT_MAX  48	       /* longest piece of a chunk in the split run */
#define SPLIT_SEED 0x9e3779b9u /* the split run's pieces: the same for the same input */

static const __u64 conn_sk[N_CONNS] = {0xffff888000001000ull, 0xffff888000002000ull};

/* Pieces of RESP that reach the decoder's interesting states quickly. */
static const char *const tokens[] = {
	"*2\r\n$3\r\nGET\r\n$6\r\nkey:12\r\n",
	"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
	"*1\r\n$5\r\nMULTI\r\n",
	"*1\r\n$4\r\nEXEC\r\n",
	"*1\r\n$7\r\nDISCARD\r\n",
	"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n",
	"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n",
	"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n",
	"*4\r\n$5\r\nXREAD\r\n$5\r\nBLOCK\r\n$1\r\n0\r\n$1\r\ns\r\n",
	"*1\r\n$5\r\nRESET\r\n",
	"PING\r\n",
	"+OK\r\n",
	"+QUEUED\r\n",
	"-ERR x\r\n",
	"-WRONGTYPE y\r\n",
	"-EXECABORT z\r\n",
	":1\r\n",
	"$1\r\nv\r\n",
	"$-1\r\n",
	"*-1\r\n",
	"_\r\n",
	"*2\r\n",
	"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
	"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n",
	">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n",
	">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
	"|1\r\n+a\r\n:1\r\n",
	"%1\r\n+k\r\n*1\r\n~1\r\n#t\r\n",
	"!3\r\nERR\r\n",
	"=7\r\ntxt:abc\r\n",
	",1.5\r\n(12\r\n",
};

struct input {
	const uint8_t *p;
	size_t left;
};

struct pending {
	uint8_t buf[PENDING_MAX];
	size_t len;
};

static struct pending pending[N_CONNS][2];
static bool split_run; /* feed every chunk in pieces */
static __u32 split_rng;

static int take(struct input *in, uint8_t *ret)
{
	if (!in->left)
		return -1;
	*ret = *in->p++;
	in->left--;
	return 0;
}

static void append(struct pending *p, const void *b, size_t n)
{
	if (n > PENDING_MAX - p->len)
		n = PENDING_MAX - p->len;
	memcpy(p->buf + p->len, b, n);
	p->len += n;
}

static void check_invariants(void)
{
	uint64_t ops = 0, errs = 0, errors = 0, hist;
	const struct dbtap_agg_val *v;
	struct dbtap_agg_key k;
	struct dbtap_err_key ek;
	unsigned int i, j;
	__u64 n;

	for (i = 0; pgh_agg_at(i, &k, &v) == 0; i++) {
		FUZZ_CHECK(k.system == DBTAP_SYS_REDIS && k.query_hash && k.db_id,
			   "series %u: system %u db %#x", i, k.system, k.db_id);
		for (hist = 0, j = 0; j < DBTAP_HIST_BUCKETS; j++)
			hist += v->hist[j];
		FUZZ_CHECK(hist == v->count && v->errors <= v->count,
			   "series %u: count %llu hist %llu", i, (unsigned long long)v->count,
			   (unsigned long long)hist);
		ops += v->count;
		errors += v->errors;
	}
	for (i = 0; pgh_err_at(i, &ek, &n) == 0; i++)
		errs += n;
	FUZZ_CHECK(ops == pgh_counter(DBTAP_CNT_OPS), "ops %llu", (unsigned long long)ops);
	FUZZ_CHECK(errs == errors, "errs %llu errors %llu", (unsigned long long)errs,
		   (unsigned long long)errors);
	for (i = 0; i < N_CONNS; i++) {
		const struct conn_state *c = pgh_conn(conn_sk[i]);

		if (!c)
			continue;
		FUZZ_CHECK((__u8)(c->tail - c->head) <= CONN_MAX_OPS &&
				   c->redis.qpos <= (__u8)(c->tail - c->head) &&
				   c->redis.rp_depth <= REDIS_MAX_DEPTH &&
				   c->redis.req_text_len <= REDIS_TEXT_BUF &&
				   c->phase <= REDIS_PHASE_REQUESTS,
			   "conn %u: head %u tail %u qpos %u depth %u phase %u", i, c->head,
			   c->tail, c->redis.qpos, c->redis.rp_depth, c->phase);
	}
	FUZZ_CHECK(pgh_user_faults() == 0, "read past the chunk");
}

static void chunk_once(unsigned int ci, enum io_dir dir, const uint8_t *b, size_t n, __u64 now)
{
	int err = pgh_chunk(conn_sk[ci], dir, b, (__u32)n, now);

	if (err == -ENOENT) { /* closed by EOF: a new connection */
		pgh_conn_open_system(conn_sk[ci], INSTANCE, DBTAP_SYS_REDIS, 0, 0);
		err = pgh_chunk(conn_sk[ci], dir, b, (__u32)n, now);
	}
	check_invariants();
}

/* Feed a chunk: whole, or in the split run in pieces. The first byte of a chunk decides
 * whether a connection's stream is RESP (redis_start()): until it is, chunks go whole. */
static void chunk(unsigned int ci, enum io_dir dir, const uint8_t *b, size_t n, __u64 now)
{
	const struct conn_state *cs = pgh_conn(conn_sk[ci]);
	size_t off = 0, piece;

	if (!split_run || !cs || cs->phase == REDIS_PHASE_START) {
		chunk_once(ci, dir, b, n, now);
		return;
	}
	while (off < n) {
		split_rng = split_rng * 1103515245u + 12345u;
		piece = 1 + (split_rng >> 16) % SPLIT_MAX;
		if (piece > n - off)
			piece = n - off;
		chunk_once(ci, dir, b + off, piece, now);
		off += piece;
	}
}

static void flush(unsigned int ci, enum io_dir dir, size_t step, __u64 now)
{
	struct pending *p = &pending[ci][dir];
	size_t pos = 0, n;

	while (pos < p->len) {
		n = step && step < p->len - pos ? step : p->len - pos;
		chunk(ci, dir, p->buf + pos, n, now);
		pos += n;
	}
	p->len = 0;
}

static void run_script(const uint8_t *data, size_t size, __u8 stale, bool split)
{
	struct input in = {.p = data, .left = size};
	uint8_t opts = 0, c, n, b;
	__u64 now = 1000000000ull;
	unsigned int i, ci, arg;
	enum io_dir dir;

	split_run = split;
	split_rng = SPLIT_SEED;
	pgh_reset();
	pgh_set_stale_byte(stale);
	memset(pending, 0, sizeof(pending));
	take(&in, &opts);
	if (opts & OPT_NO_USER_BUF)
		pgh_set_user_buf(false);
	if (opts & OPT_SMALL_RING)
		pgh_set_ringbuf_capacity(SMALL_RING_BYTES);
	if (opts & OPT_SLOW_ZERO)
		pgh_set_sampling(0, 0);
	for (i = 0; i < N_CONNS; i++)
		pgh_conn_open_system(conn_sk[i], INSTANCE, DBTAP_SYS_REDIS, 0, 0);
	while (take(&in, &c) == 0) {
		ci = c & 1;
		dir = (c >> 1) & 1 ? IO_SEND : IO_RECV;
		arg = c >> 4;
		now += STEP_NS;
		switch ((c >> 2) & 3) {
		case CMD_RAW:
			n = 0;
			take(&in, &n);
			if ((size_t)n + 1 > in.left)
				n = in.left ? (uint8_t)(in.left - 1) : 0;
			if (!in.left)
				break;
			chunk(ci, dir, in.p, (size_t)n + 1, now);
			in.p += (size_t)n + 1;
			in.left -= (size_t)n + 1;
			break;
		case CMD_APPEND: {
			size_t len, k;

			n = 0;
			take(&in, &n);
			len = (size_t)n + 1 < in.left ? (size_t)n + 1 : in.left;
			for (k = 0; k < (1u << (arg & 7)); k++)
				append(&pending[ci][dir], in.p, len);
			in.p += len;
			in.left -= len;
			break;
		}
		case CMD_FLUSH:
			n = 0;
			take(&in, &n);
			flush(ci, dir, ((size_t)n + 1) << (arg & 7), now);
			break;
		case CMD_SPECIAL:
			b = 0;
			switch (arg) {
			case SP_EOF:
				pgh_eof(conn_sk[ci], now);
				check_invariants();
				break;
			case SP_CLOCK:
				take(&in, &b);
				now += (__u64)b * 1000;
				break;
			case SP_CONSUME:
				pgh_events_consume();
				break;
			case SP_REOPEN:
				pgh_conn_open_system(conn_sk[ci], INSTANCE, DBTAP_SYS_REDIS, 0, 0);
				break;
			default:
				take(&in, &b);
				b %= sizeof(tokens) / sizeof(tokens[0]);
				append(&pending[ci][dir], tokens[b], strlen(tokens[b]));
				break;
			}
			break;
		}
	}
	for (i = 0; i < N_CONNS; i++) {
		flush(i, IO_RECV, 0, now);
		flush(i, IO_SEND, 0, now);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgh_snapshot *a, *b;
	char why[512];

	run_script(data, size, STALE_A, false);
	a = pgh_snapshot_take();
	run_script(data, size, STALE_B, false);
	b = pgh_snapshot_take();
	FUZZ_CHECK(a && b, "snapshot");
	FUZZ_CHECK(!pgh_snapshot_diff(a, b, 0, why, sizeof(why)), "stale bytes changed: %s", why);
	pgh_snapshot_free(b);
	if (size && !(data[0] & OPT_NO_USER_BUF)) {
		/* (without a user buffer, bytes past the scratch are lost where chunks end) */
		run_script(data, size, STALE_A, true);
		b = pgh_snapshot_take();
		FUZZ_CHECK(b, "snapshot");
		FUZZ_CHECK(
			!pgh_snapshot_diff(a, b, PGH_DIFF_IGNORE_EVENTS_COUNTER, why, sizeof(why)),
			"chunks fed in pieces changed: %s", why);
		pgh_snapshot_free(b);
	}
	pgh_snapshot_free(a);
	return 0;
}
