/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * redis.bpf.h - Redis serialization protocol (RESP2 and RESP3) decoder running in the BPF
 * capture programs; also Valkey and KeyDB, which speak the same protocol.
 *
 * Included by bpf/decoders.bpf.h after the capture core. Both directions are parsed by
 * resumable state machines kept in c->redis (probes/redis/redis_state.h): only the bytes that
 * matter are looked at (headers, the command name, the first key, the first word of error
 * replies), bulk payloads are skipped by their length. So a request or reply may be cut
 * anywhere across chunks, and the results do not depend on where.
 *
 * Speed: a step of the machines (one bpf_loop iteration) takes a whole token when its bytes
 * are in the scratch: a header from its type byte to its LF, the bytes of an argument looked
 * at in one loop, the rest skipped; a request array whose bytes are all there is read in one
 * call (dbtap_redis_req_whole()). A token cut by the chunk's or the scratch's end is finished
 * by the next steps from the state left, each byte taken exactly as one byte per step would
 * take it (tests/unit/test_redis_decoder.c replays every scenario cut at every offset and one
 * byte per chunk, against whole messages).
 *
 *   request (array of bulk strings, or an inline command line) -> one operation queued on
 *       the connection when its last byte is read: fingerprint = FNV-1a 64 of
 *       "COMMAND [SUBCOMMAND] [key pattern]" (digit runs of the key folded to one '?'),
 *       text record "COMMAND [SUBCOMMAND] [key as seen]" once per fingerprint
 *   top-level reply -> completes the oldest operation when its last byte is written; an error
 *       reply ('-' or '!') fails it with the error's first word as status ("ERR", "WRONGTYPE")
 *   MULTI ... EXEC: commands answered +QUEUED stay queued; each element of EXEC's array
 *       completes one of them (an error element fails it); EXEC itself is DBTAP_AGG_F_BATCH
 *       with the number of commands it ran as rows. DISCARD, an aborted EXEC (-EXECABORT, or
 *       null after a failed WATCH) drop them uncounted: the server never ran them.
 *   pushes: RESP3 '>' values are never replies; after a subscription, RESP2 arrays whose first
 *       element is "message"/"pmessage"/"smessage" are not replies either. Subscription
 *       confirmations complete the (UN)SUBSCRIBE command once one per channel has come.
 *   pipelines: up to CONN_MAX_OPS commands in flight are timed each, from the chunk that
 *       ended the request to the chunk that ended its reply. Past that, a command identical
 *       to the newest queued one is merged into it (conn_op.tag counts the repeats; they share
 *       its start time); any other command is counted at once with a zero duration
 *       (DBTAP_CNT_DROP_PIPELINE) and its reply consumed uncounted (c->redis.lost). Counts stay
 *       exact either way.
 *   replies past the scratch of a writev (no user buffer to read them from): the commands in
 *       flight are counted then, and later ones when read (REDIS_PHASE_REQUESTS).
 *
 * Protocol names follow https://redis.io/docs/latest/develop/reference/protocol-spec/.
 */
#ifndef DBTAP_REDIS_BPF_H
#define DBTAP_REDIS_BPF_H

/* RESP type bytes (RESP2 and RESP3). */
#define RESP_SIMPLE_STRING '+'
#define RESP_ERROR	   '-'
#define RESP_INTEGER	   ':'
#define RESP_BULK_STRING   '$'
#define RESP_ARRAY	   '*'
#define RESP_NULL	   '_'
#define RESP_BOOLEAN	   '#'
#define RESP_DOUBLE	   ','
#define RESP_BIG_NUMBER	   '('
#define RESP_BULK_ERROR	   '!'
#define RESP_VERBATIM	   '='
#define RESP_MAP	   '%'
#define RESP_ATTRIBUTE	   '|'
#define RESP_SET	   '~'
#define RESP_PUSH	   '>'
#define RESP_CR		   '\r'
#define RESP_LF		   '\n'
#define RESP_CRLF_LEN	   2

/* masks indexes into rp_stack for the verifier (d < REDIS_MAX_DEPTH is checked first; the
 * mask keeps the access inside struct conn_state) */
#define REDIS_DEPTH_MASK     7
#define REDIS_MAX_LEN	     (512u << 20) /* proto-max-bulk-len's default: longer is not RESP */
#define REDIS_INLINE_SEP     ' '
#define REDIS_INLINE_TAB     '\t'
#define REDIS_NAME_MAX	     32 /* command name bytes looked at (longest command: 20) */
#define REDIS_SELECT_MAX     10 /* digits of SELECT's index hashed */
#define REDIS_FIRST_MAX	     16 /* bytes of a top aggregate's first element hashed */
/* rp_word indexes are masked with this for the verifier (clang may drop a range check it
 * proves redundant); the mask keeps them inside struct redis_conn */
#define REDIS_WORD_MASK	     15
#define REDIS_KEY_DIGITS     '?'
#define REDIS_BLOCK_LEN	     5	  /* "BLOCK": the XREAD/XREADGROUP option that makes them block */
#define REDIS_QUEUED_LEN     6	  /* "QUEUED": status reply to a command queued in a transaction */
#define TLS_RECORD_HANDSHAKE 0x16 /* first byte of a TLS ClientHello record */

/* Bytes of an argument or a line value looked at in one parser step (more: in the next ones).
 * Looking at a name, a key (whose text stops at REDIS_TEXT_BUF), SELECT's index or "BLOCK"
 * ends within them, so an argument needs one run (dbtap_redis_arg_whole() relies on it). */
#define REDIS_RUN_MAX	 (REDIS_NAME_MAX + 1)
#define REDIS_RUN_MASK	 63 /* REDIS_RUN_MAX rounded up to a power of two, less one */
/* Digits of a length (and its CR) read in one parser step: all of any length up to
 * REDIS_MAX_LEN; leading zeros past them are read in the next steps. */
#define REDIS_NUM_RUN	 12
/* Arguments of a request read in one call when all its bytes are in the scratch (more: token
 * by token). */
#define REDIS_WHOLE_ARGS 64
_Static_assert(REDIS_RUN_MAX > REDIS_TEXT_BUF && REDIS_RUN_MAX > REDIS_SELECT_MAX &&
		       REDIS_RUN_MAX > REDIS_BLOCK_LEN,
	       "one run ends the looking at any argument");
_Static_assert((REDIS_TEXT_BUF & (REDIS_TEXT_BUF - 1)) == 0, "req_text indexes are masked");
_Static_assert(REDIS_NAME_MAX <= REDIS_TEXT_BUF, "a command name fits in the text");
_Static_assert(__builtin_offsetof(struct redis_conn, rp_word) + REDIS_WORD_MASK <
			       sizeof(struct redis_conn) &&
		       REDIS_WORD_MASK >= REDIS_WORD_MAX - 1,
	       "masked rp_word indexes stay in struct redis_conn");
_Static_assert(REDIS_RUN_MAX <= REDIS_RUN_MASK + 1 &&
		       ((REDIS_RUN_MASK + 1) & REDIS_RUN_MASK) == 0 &&
		       REDIS_RUN_MASK < SCRATCH_SIZE,
	       "a run read without masks stays in the scratch buffer");

/* Request parser states (redis_conn.req_state). */
#define REDIS_RQ_START	   0 /* a request starts: '*' or an inline command */
#define REDIS_RQ_ARRAY_LEN 1 /* digits of "*<n>" */
#define REDIS_RQ_ARRAY_LF  2
#define REDIS_RQ_BULK_HDR  3 /* '$' of the next argument */
#define REDIS_RQ_BULK_LEN  4 /* digits of "$<len>" */
#define REDIS_RQ_BULK_LF   5
#define REDIS_RQ_BULK_DATA 6 /* argument bytes looked at */
#define REDIS_RQ_SKIP	   7 /* the rest of an argument and its CRLF */
#define REDIS_RQ_INLINE	   8 /* an inline command line, up to LF */

/* Reply parser states (redis_conn.rp_state). */
#define REDIS_RP_TYPE	   0 /* a value starts: its type byte */
#define REDIS_RP_LINE	   1 /* a line value up to CR */
#define REDIS_RP_LINE_LF   2
#define REDIS_RP_NUM	   3 /* the length or element count of a blob or aggregate */
#define REDIS_RP_NUM_LF	   4
#define REDIS_RP_BLOB_DATA 5 /* blob bytes looked at */
#define REDIS_RP_SKIP	   6 /* the rest of a blob and its CRLF */

/* What a command is (redis_conn.req_class: these bits, and the op kind << 8). */
#define REDIS_CLS_SUBCMD     (1 << 0) /* the second word is a subcommand: CLIENT SETNAME */
#define REDIS_CLS_NOKEY	     (1 << 1) /* no key in the fingerprint (AUTH's password...) */
#define REDIS_CLS_BLOCKING   (1 << 2) /* waits for data by design: BLPOP... */
#define REDIS_CLS_XREAD	     (1 << 3) /* blocking when an argument is "BLOCK" */
#define REDIS_CLS_KIND_SHIFT 8

/* What a top-level aggregate's first element says (redis_conn.rp_first). */
#define REDIS_FIRST_OTHER   0
#define REDIS_FIRST_MESSAGE 1 /* a pushed message: "message", "pmessage", "smessage" */
#define REDIS_FIRST_CONFIRM 2 /* a (un)subscription confirmation */

static __always_inline __u8 redis_upper(__u8 b)
{
	return b >= 'a' && b <= 'z' ? b - ('a' - 'A') : b;
}

static __always_inline __u8 redis_lower(__u8 b)
{
	return b >= 'A' && b <= 'Z' ? b + ('a' - 'A') : b;
}

/* Byte @n of "BLOCK" (no string constants: BPF has no memcmp). */
static __always_inline __u8 redis_block_char(__u32 n)
{
	switch (n) {
	case 0:
		return 'B';
	case 1:
		return 'L';
	case 2:
		return 'O';
	case 3:
		return 'C';
	}
	return 'K';
}

/* Is the status word "QUEUED"? */
static __always_inline bool redis_word_queued(struct redis_conn *r)
{
	return r->rp_word_len == REDIS_QUEUED_LEN && r->rp_word[0] == 'Q' && r->rp_word[1] == 'U' &&
	       r->rp_word[2] == 'E' && r->rp_word[3] == 'U' && r->rp_word[4] == 'E' &&
	       r->rp_word[5] == 'D';
}

static __always_inline void redis_fp_step(struct redis_conn *r, __u8 b)
{
	r->req_fp = (r->req_fp ^ b) * DBTAP_FNV64_PRIME;
}

/* Append @b to the text record; false when it is full. */
static __always_inline bool redis_text_put(struct redis_conn *r, __u8 b)
{
	__u8 n = r->req_text_len;

	if (n >= REDIS_TEXT_BUF)
		return false;
	r->req_text[n < REDIS_TEXT_BUF ? n : 0] = b;
	r->req_text_len = n + 1;
	return true;
}

/* ---- requests ---- */

/* Class bits and op kind of a command by the hash of its upper-cased name. Global: verified
 * once. */
__noinline int dbtap_redis_classify(__u32 name)
{
	switch (name) {
	case REDIS_CMD_SELECT:
		return REDIS_CLS_NOKEY | (REDIS_OP_SELECT << REDIS_CLS_KIND_SHIFT);
	case REDIS_CMD_MULTI:
		return REDIS_CLS_NOKEY | (REDIS_OP_MULTI << REDIS_CLS_KIND_SHIFT);
	case REDIS_CMD_EXEC:
		return REDIS_CLS_NOKEY | (REDIS_OP_EXEC << REDIS_CLS_KIND_SHIFT);
	case REDIS_CMD_DISCARD:
		return REDIS_CLS_NOKEY | (REDIS_OP_DISCARD << REDIS_CLS_KIND_SHIFT);
	case REDIS_CMD_RESET:
		return REDIS_CLS_NOKEY | (REDIS_OP_RESET << REDIS_CLS_KIND_SHIFT);
	case REDIS_CMD_SUBSCRIBE:
	case REDIS_CMD_PSUBSCRIBE:
	case REDIS_CMD_SSUBSCRIBE:
	case REDIS_CMD_UNSUBSCRIBE:
	case REDIS_CMD_PUNSUBSCRIBE:
	case REDIS_CMD_SUNSUBSCRIBE:
		return REDIS_OP_SUB << REDIS_CLS_KIND_SHIFT;
	case REDIS_CMD_BLPOP:
	case REDIS_CMD_BRPOP:
	case REDIS_CMD_BRPOPLPUSH:
	case REDIS_CMD_BLMOVE:
	case REDIS_CMD_BZPOPMIN:
	case REDIS_CMD_BZPOPMAX:
		return REDIS_CLS_BLOCKING | (REDIS_OP_CMD << REDIS_CLS_KIND_SHIFT);
	case REDIS_CMD_BLMPOP: /* first argument: the timeout */
	case REDIS_CMD_BZMPOP:
	case REDIS_CMD_WAIT:
	case REDIS_CMD_WAITAOF:
		return REDIS_CLS_BLOCKING | REDIS_CLS_NOKEY |
		       (REDIS_OP_CMD << REDIS_CLS_KIND_SHIFT);
	case REDIS_CMD_XREAD:
	case REDIS_CMD_XREADGROUP:
		return REDIS_CLS_XREAD | REDIS_CLS_NOKEY | (REDIS_OP_CMD << REDIS_CLS_KIND_SHIFT);
	case REDIS_CMD_ACL:
	case REDIS_CMD_CLIENT:
	case REDIS_CMD_CLUSTER:
	case REDIS_CMD_COMMAND:
	case REDIS_CMD_CONFIG:
	case REDIS_CMD_DEBUG:
	case REDIS_CMD_FUNCTION:
	case REDIS_CMD_LATENCY:
	case REDIS_CMD_MEMORY:
	case REDIS_CMD_MODULE:
	case REDIS_CMD_OBJECT:
	case REDIS_CMD_PUBSUB:
	case REDIS_CMD_SCRIPT:
	case REDIS_CMD_SLOWLOG:
	case REDIS_CMD_XGROUP:
	case REDIS_CMD_XINFO:
		return REDIS_CLS_SUBCMD | (REDIS_OP_CMD << REDIS_CLS_KIND_SHIFT);
	case REDIS_CMD_AUTH: /* arguments are secrets */
	case REDIS_CMD_HELLO:
	case REDIS_CMD_PING:
	case REDIS_CMD_ECHO:
	case REDIS_CMD_INFO:
	case REDIS_CMD_EVAL: /* first argument: a script */
	case REDIS_CMD_EVALSHA:
	case REDIS_CMD_EVAL_RO:
	case REDIS_CMD_EVALSHA_RO:
	case REDIS_CMD_FCALL:
	case REDIS_CMD_FCALL_RO:
	case REDIS_CMD_QUIT:
		return REDIS_CLS_NOKEY | (REDIS_OP_CMD << REDIS_CLS_KIND_SHIFT);
	}
	return REDIS_OP_CMD << REDIS_CLS_KIND_SHIFT;
}

static __always_inline __u8 redis_kind(struct redis_conn *r)
{
	return r->req_class >> REDIS_CLS_KIND_SHIFT;
}

/* A new request: forget the last one's name, key and flags. */
static __always_inline void redis_req_begin(struct redis_conn *r, bool inline_cmd)
{
	r->req_fp = DBTAP_FNV64_OFFSET;
	r->req_name = DBTAP_FNV32_OFFSET;
	r->req_arg = 0;
	r->req_arg_len = 0;
	r->req_class = 0;
	r->req_text_len = 0;
	r->req_flags = inline_cmd ? REDIS_RQ_F_INLINE : 0;
}

/* A new argument: start looking at its bytes. */
static __always_inline void redis_arg_begin(struct redis_conn *r)
{
	r->req_arg_len = 0;
	r->req_num = DBTAP_FNV32_OFFSET;
	r->req_flags &= ~REDIS_RQ_F_DIGITS;
	if (r->req_class & REDIS_CLS_XREAD)
		r->req_flags |= REDIS_RQ_F_ARG_MATCH;
	else
		r->req_flags &= ~REDIS_RQ_F_ARG_MATCH;
}

/* Whether the bytes of the current argument (@len of them) are looked at. */
static __always_inline bool redis_arg_wanted(struct redis_conn *r, __u32 len)
{
	if (r->req_arg == 0)
		return true;
	if (r->req_class & REDIS_CLS_XREAD)
		return len == REDIS_BLOCK_LEN;
	if (r->req_arg != 1)
		return false;
	return redis_kind(r) == REDIS_OP_SELECT || !(r->req_class & REDIS_CLS_NOKEY);
}

/*
 * Look at byte @b of the current argument: the command name, its subcommand, the key (digit
 * runs folded), SELECT's index, XREAD's "BLOCK". Returns 1 while further bytes of the argument
 * are wanted, 0 when the rest can be skipped. Global: verified once.
 */
__noinline int dbtap_redis_arg_byte(struct conn_state *c, __u32 b)
{
	struct redis_conn *r;
	__u32 n;
	__u8 u;

	if (!c)
		return 0;
	r = &c->redis;
	n = r->req_arg_len;
	u = redis_upper((__u8)b);
	r->req_arg_len = n + 1;
	if (r->req_arg == 0) {
		if (n >= REDIS_NAME_MAX)
			return 0;
		r->req_name = dbtap_name_hash_step(r->req_name, u);
		redis_fp_step(r, u);
		redis_text_put(r, u);
		return 1;
	}
	if (r->req_class & REDIS_CLS_XREAD) {
		if (n >= REDIS_BLOCK_LEN || u != redis_block_char(n)) {
			r->req_flags &= ~REDIS_RQ_F_ARG_MATCH;
			return 0;
		}
		return 1;
	}
	if (r->req_arg != 1)
		return 0;
	if (redis_kind(r) == REDIS_OP_SELECT) {
		if (n >= REDIS_SELECT_MAX)
			return 0;
		r->req_num = dbtap_name_hash_step(r->req_num, (__u8)b);
		return 1;
	}
	if (r->req_class & REDIS_CLS_NOKEY)
		return 0;
	if (n == 0) {
		if (r->req_text_len + 2 > REDIS_TEXT_BUF) {
			r->req_flags |= REDIS_RQ_F_TRUNCATED;
			return 0;
		}
		redis_fp_step(r, REDIS_INLINE_SEP);
		redis_text_put(r, REDIS_INLINE_SEP);
	}
	if (r->req_class & REDIS_CLS_SUBCMD) {
		if (!redis_text_put(r, u)) {
			r->req_flags |= REDIS_RQ_F_TRUNCATED;
			return 0;
		}
		redis_fp_step(r, u);
		return 1;
	}
	/* the key: as seen in the text, its pattern in the fingerprint, both cut together */
	if (!redis_text_put(r, (__u8)b)) {
		r->req_flags |= REDIS_RQ_F_TRUNCATED;
		return 0;
	}
	if (b >= '0' && b <= '9') {
		if (!(r->req_flags & REDIS_RQ_F_DIGITS))
			redis_fp_step(r, REDIS_KEY_DIGITS);
		r->req_flags |= REDIS_RQ_F_DIGITS;
	} else {
		r->req_flags &= ~REDIS_RQ_F_DIGITS;
		redis_fp_step(r, (__u8)b);
	}
	return 1;
}

/* The scratch's bytes from @off (a place in the chunk's window, below SCRATCH_SIZE) for a
 * run: up to REDIS_RUN_MAX of them are read without a mask each, the buffer being twice
 * SCRATCH_SIZE long. */
static __always_inline const __u8 *redis_run_src(struct scratch *s, __u32 off)
{
	return &s->buf[bound(off, SCRATCH_MASK)];
}

/* The command name's bytes at @off in the scratch (@len of them): upper-cased into its hash,
 * the fingerprint and the text. As dbtap_redis_arg_byte() for each, in a tighter loop. */
static __always_inline int redis_name_run(struct scratch *s, struct redis_conn *r, __u32 off,
					  __u32 len)
{
	__u32 n = r->req_arg_len, name = r->req_name, tl = r->req_text_len, k, m;
	const __u8 *src = redis_run_src(s, off);
	__u64 fp = r->req_fp;
	__u8 u;

	/* bytes still hashed: the one after them ends the name. The name is the text's first
	 * bytes (text_len == arg_len while it is read), so they all fit in it. */
	m = n < REDIS_NAME_MAX ? REDIS_NAME_MAX - n : 0;
	if (m > len)
		m = len;
	for (k = 0; k < REDIS_RUN_MAX; k++) {
		if (k >= m)
			break;
		u = redis_upper(src[k]);
		name = dbtap_name_hash_step(name, u);
		fp = (fp ^ u) * DBTAP_FNV64_PRIME;
		r->req_text[bound(tl + k, REDIS_TEXT_BUF - 1)] = u;
	}
	r->req_name = name;
	r->req_fp = fp;
	r->req_text_len = tl + m;
	if (m < len) {
		r->req_arg_len = n + m + 1;
		return 0;
	}
	r->req_arg_len = n + m;
	return 1;
}

/* The key's (or subcommand's) bytes at @off in the scratch (@len of them): into the text as
 * seen, into the fingerprint with digit runs folded (a subcommand upper-cased), both cut
 * together when the text is full. As dbtap_redis_arg_byte() for each, in a tighter loop. */
static __always_inline int redis_key_run(struct scratch *s, struct redis_conn *r, __u32 off,
					 __u32 len)
{
	__u32 n = r->req_arg_len, tl = r->req_text_len, k, m;
	bool digits = r->req_flags & REDIS_RQ_F_DIGITS;
	const __u8 *src = redis_run_src(s, off);
	__u64 fp = r->req_fp;
	__u8 b;

	if (n == 0) {
		if (tl + 2 > REDIS_TEXT_BUF) {
			r->req_arg_len = 1;
			r->req_flags |= REDIS_RQ_F_TRUNCATED;
			return 0;
		}
		fp = (fp ^ REDIS_INLINE_SEP) * DBTAP_FNV64_PRIME;
		r->req_text[bound(tl, REDIS_TEXT_BUF - 1)] = REDIS_INLINE_SEP;
		tl++;
	}
	/* bytes that fit in the text: the one after them ends the key */
	m = tl < REDIS_TEXT_BUF ? REDIS_TEXT_BUF - tl : 0;
	if (m > len)
		m = len;
	if (r->req_class & REDIS_CLS_SUBCMD) {
		for (k = 0; k < REDIS_RUN_MAX; k++) {
			if (k >= m)
				break;
			b = redis_upper(src[k]);
			fp = (fp ^ b) * DBTAP_FNV64_PRIME;
			r->req_text[bound(tl + k, REDIS_TEXT_BUF - 1)] = b;
		}
	} else {
		for (k = 0; k < REDIS_RUN_MAX; k++) {
			if (k >= m)
				break;
			b = src[k];
			r->req_text[bound(tl + k, REDIS_TEXT_BUF - 1)] = b;
			if (b >= '0' && b <= '9') {
				if (!digits)
					fp = (fp ^ REDIS_KEY_DIGITS) * DBTAP_FNV64_PRIME;
				digits = true;
			} else {
				digits = false;
				fp = (fp ^ b) * DBTAP_FNV64_PRIME;
			}
		}
	}
	r->req_text_len = tl + k;
	r->req_fp = fp;
	if (digits)
		r->req_flags |= REDIS_RQ_F_DIGITS;
	else
		r->req_flags &= ~REDIS_RQ_F_DIGITS;
	if (k < len) {
		r->req_arg_len = n + k + 1;
		r->req_flags |= REDIS_RQ_F_TRUNCATED;
		return 0;
	}
	r->req_arg_len = n + k;
	return 1;
}

/*
 * Look at the current argument's bytes at @off in the scratch (@len of them, at most
 * REDIS_RUN_MAX): exactly dbtap_redis_arg_byte() for each in turn, up to the first that ends
 * what is wanted. Returns 1 while further bytes of the argument are wanted, 0 when the rest
 * can be skipped.
 */
static __always_inline int redis_arg_run(struct scratch *s, struct conn_state *c, __u32 off,
					 __u32 len)
{
	struct redis_conn *r = &c->redis;
	__u32 k;

	if (r->req_arg == 0)
		return redis_name_run(s, r, off, len);
	if (r->req_arg == 1 && !(r->req_class & (REDIS_CLS_XREAD | REDIS_CLS_NOKEY)) &&
	    redis_kind(r) != REDIS_OP_SELECT)
		return redis_key_run(s, r, off, len);
	/* SELECT's index, XREAD's "BLOCK": a few bytes, byte by byte */
	for (k = 0; k < REDIS_RUN_MAX; k++) {
		if (k >= len)
			break;
		if (!dbtap_redis_arg_byte(c, sb(s, off + k)))
			return 0;
	}
	return 1;
}

/* redis_arg_run() for the step machine: one call per argument instead of one per byte.
 * Global: verified once. */
__noinline int dbtap_redis_arg_run(struct scratch *s, struct conn_state *c, __u32 off, __u32 len)
{
	if (!s || !c)
		return 0;
	return redis_arg_run(s, c, off, len);
}

/* Count an operation now, with a zero duration: it has no place in the queue, or replies are
 * not followed (REDIS_PHASE_REQUESTS). */
static __always_inline void redis_count_now(struct scratch *s, struct conn_state *c, __u64 h,
					    __u16 flags)
{
	struct op_done *d = &s->ch.done;

	d->query_hash = h;
	d->start_ns = s->ch.now;
	d->agg_flags = flags;
	d->rows = 0;
	d->failed = 0;
	__builtin_memset(d->status, 0, DBTAP_STATUS_LEN);
	dbtap_complete(s, c);
	if (c->phase == REDIS_PHASE_NORMAL)
		c->redis.lost++; /* its reply is still to come */
}

/*
 * The last byte of a request was read: its text record once, and an operation queued (or
 * merged, or counted now: see the head of this file). Global: verified once.
 */
__noinline int dbtap_redis_request(struct scratch *s, struct conn_state *c)
{
	struct redis_conn *r;
	struct conn_op *o, *last;
	__u16 flags = 0;
	__u64 h;
	__u8 kind;

	if (!s || !c)
		return 0;
	r = &c->redis;
	kind = redis_kind(r);
	if (!kind)
		kind = REDIS_OP_CMD;
	h = r->req_fp ? r->req_fp : 1;
	if ((r->req_class & REDIS_CLS_BLOCKING) || (r->req_flags & REDIS_RQ_F_BLOCK_ARG))
		flags |= DBTAP_AGG_F_BLOCKING;
	if (kind == REDIS_OP_EXEC)
		flags |= DBTAP_AGG_F_BATCH;
	__builtin_memcpy(&s->buf[REASM_AT], r->req_text, REDIS_TEXT_BUF);
	emit_text_once(s, DBTAP_SYS_REDIS, h, REASM_AT, r->req_text_len,
		       (r->req_flags & REDIS_RQ_F_TRUNCATED) ? DBTAP_TEXT_F_TRUNCATED : 0);

	if (kind == REDIS_OP_MULTI)
		r->req_multi = 1;
	else if (kind == REDIS_OP_EXEC || kind == REDIS_OP_DISCARD || kind == REDIS_OP_RESET)
		r->req_multi = 0;

	if (c->phase != REDIS_PHASE_NORMAL) {
		/* replies are not followed: counted now */
	} else if (r->lost) {
		count(DBTAP_CNT_DROP_PIPELINE);
	} else {
		if ((__u8)(c->tail - c->head) >= CONN_MAX_OPS && kind == REDIS_OP_CMD &&
		    !r->req_multi) {
			last = &c->ops[(__u8)(c->tail - 1) & (CONN_MAX_OPS - 1)];
			if (last->kind == REDIS_OP_CMD && last->query_hash == h &&
			    last->agg_flags == flags) {
				last->tag++;
				return 0;
			}
		}
		o = op_push(s, c, kind, h, flags);
		if (o) {
			if (kind == REDIS_OP_SELECT)
				o->tag = r->req_num ? r->req_num : 1;
			else if (kind == REDIS_OP_SUB)
				o->tag = r->req_arg > 1 ? r->req_arg - 1 : 0;
			return 0;
		}
	}
	redis_count_now(s, c, h, flags);
	if (kind == REDIS_OP_SELECT)
		c->db_id = r->req_num ? r->req_num : 1; /* its reply will not be matched */
	return 0;
}

/* The current argument ended: classify the command after its name; the request ends after
 * its last argument (arrays; an inline command ends at its LF). Global: verified once. */
__noinline int dbtap_redis_arg_end(struct scratch *s, struct conn_state *c)
{
	struct redis_conn *r;

	if (!s || !c)
		return 0;
	r = &c->redis;
	if (r->req_arg == 0)
		r->req_class = dbtap_redis_classify(r->req_name);
	else if ((r->req_class & REDIS_CLS_XREAD) && (r->req_flags & REDIS_RQ_F_ARG_MATCH) &&
		 r->req_arg_len == REDIS_BLOCK_LEN)
		r->req_flags |= REDIS_RQ_F_BLOCK_ARG;
	r->req_arg++;
	if (r->req_flags & REDIS_RQ_F_INLINE)
		return 0;
	if (r->req_args > 1) {
		r->req_args--;
		r->req_state = REDIS_RQ_BULK_HDR;
		return 0;
	}
	r->req_args = 0;
	r->req_state = REDIS_RQ_START;
	dbtap_redis_request(s, c);
	return 0;
}

/* A whole "<digits>\r\n" at @off in the scratch, within @n bytes: its value, its bytes in
 * *@ret_len; -1 when it is not all there, not plain digits, or past REDIS_MAX_LEN. */
static __always_inline long redis_whole_num(struct scratch *s, __u32 off, __u32 n, __u32 *ret_len)
{
	const __u8 *src = redis_run_src(s, off);
	__u32 num = 0, k;
	__u8 b = 0;

	for (k = 0; k < REDIS_NUM_RUN; k++) {
		if (k >= n)
			return -1;
		b = src[k];
		if (b < '0' || b > '9')
			break;
		if (num > REDIS_MAX_LEN / 10)
			return -1;
		num = num * 10 + (b - '0');
	}
	if (b != RESP_CR || k + 1 >= n || src[k + 1] != RESP_LF)
		return -1;
	*ret_len = k + RESP_CRLF_LEN;
	return num;
}

/*
 * An argument "$<len>\r\n<bytes>\r\n" whose bytes are all in the scratch from @off (@n bytes
 * there): its bytes looked at and its end, with the helpers of the step machine in its order
 * (the CRLF after the bytes is skipped unread, as there). Returns the bytes read; 0 when it is
 * not all there or its header is not plain, with nothing counted. Global: verified once.
 */
__noinline int dbtap_redis_arg_whole(struct scratch *s, struct conn_state *c, __u32 off, __u32 n)
{
	struct redis_conn *r;
	__u32 hl = 0, len;
	long v;

	if (!s || !c || n < 1 || sb(s, off) != RESP_BULK_STRING)
		return 0;
	r = &c->redis;
	v = redis_whole_num(s, off + 1, n - 1, &hl);
	if (v < 0)
		return 0;
	/* the length and the header's size through memory (where the byte path keeps them
	 * too): for the verifier any values from here on, not one state per digit count */
	r->req_num = v;
	r->req_left = hl + 1;
	asm volatile("" ::: "memory");
	len = r->req_num;
	hl = r->req_left;
	if (n - hl < len + RESP_CRLF_LEN)
		return 0;
	redis_arg_begin(r);
	if (len && redis_arg_wanted(r, len) &&
	    redis_arg_run(s, c, off + hl, len < REDIS_RUN_MAX ? len : REDIS_RUN_MAX) &&
	    len > REDIS_RUN_MAX)
		return 0; /* more wanted than one run: never, see REDIS_RUN_MAX */
	/* dbtap_redis_arg_end() but the end of the request */
	if (r->req_arg == 0)
		r->req_class = dbtap_redis_classify(r->req_name);
	else if ((r->req_class & REDIS_CLS_XREAD) && (r->req_flags & REDIS_RQ_F_ARG_MATCH) &&
		 r->req_arg_len == REDIS_BLOCK_LEN)
		r->req_flags |= REDIS_RQ_F_BLOCK_ARG;
	r->req_arg++;
	return hl + len + RESP_CRLF_LEN;
}

/*
 * A request array whose bytes are all in the scratch from @off (@n bytes there, the first
 * its '*'), read in one call: the same helpers in the same order as the step machine, so the
 * same state and the same operation, without a state change per token. Returns the bytes
 * read; 0 when the request is not all there, has more than REDIS_WHOLE_ARGS arguments, or a
 * header that is not plain (then nothing was counted, and redis_req_step() reads it token by
 * token from its '*'). Global: verified once.
 */
__noinline int dbtap_redis_req_whole(struct scratch *s, struct conn_state *c, __u32 off, __u32 n)
{
	struct redis_conn *r;
	__u32 k, i, hl = 0, args;
	long v;
	int a;

	if (!s || !c || n < 2)
		return 0;
	r = &c->redis;
	v = redis_whole_num(s, off + 1, n - 1, &hl);
	if (v <= 0 || v > REDIS_WHOLE_ARGS)
		return 0;
	args = v;
	k = 1 + hl;
	redis_req_begin(r, false);
	for (i = 0; i < REDIS_WHOLE_ARGS; i++) {
		if (i >= args)
			break;
		if (k >= n)
			return 0;
		a = dbtap_redis_arg_whole(s, c, off + k, n - k);
		if (a <= 0)
			return 0;
		k += a;
	}
	r->req_left = 0;
	r->req_args = 0;
	r->req_state = REDIS_RQ_START;
	s->ch.pos += k;
	dbtap_redis_request(s, c);
	return k;
}

/* Framing lost: the connection is only counted from now on. */
static __always_inline long redis_desync(struct scratch *s, struct conn_state *c)
{
	count(DBTAP_CNT_DESYNC);
	c->phase = REDIS_PHASE_IGNORE;
	c->flags |= DBTAP_CONN_F_UNDECODABLE;
	s->ch.stop = 1;
	return 1;
}

/* A byte of an inline command line. */
static __always_inline long redis_inline_byte(struct scratch *s, struct conn_state *c, __u8 b)
{
	struct redis_conn *r = &c->redis;

	if (b == RESP_LF) {
		if (r->req_flags & REDIS_RQ_F_IN_TOKEN) {
			r->req_flags &= ~REDIS_RQ_F_IN_TOKEN;
			dbtap_redis_arg_end(s, c);
		}
		if (r->req_arg)
			dbtap_redis_request(s, c);
		r->req_state = REDIS_RQ_START;
		return 0;
	}
	if (b == RESP_CR)
		return 0;
	if (b == REDIS_INLINE_SEP || b == REDIS_INLINE_TAB) {
		if (r->req_flags & REDIS_RQ_F_IN_TOKEN) {
			r->req_flags &= ~REDIS_RQ_F_IN_TOKEN;
			dbtap_redis_arg_end(s, c);
		}
		return 0;
	}
	if (!(r->req_flags & REDIS_RQ_F_IN_TOKEN)) {
		redis_arg_begin(r);
		r->req_flags |= REDIS_RQ_F_IN_TOKEN;
		r->req_left = 1; /* bytes wanted */
	}
	if (r->req_left && !dbtap_redis_arg_byte(c, b))
		r->req_left = 0;
	return 0;
}

struct redis_walk {
	struct scratch *s;
	struct conn_state *c;
	__u32 base; /* chunk offset of s->buf[0] */
	__u32 wlen; /* chunk bytes at s->buf[0..) */
};

/* Bytes of the chunk from @pos on that are in the scratch, at s->buf[pos - w->base]: it is
 * refilled from the user buffer when @pos is past the first SCRATCH_SIZE bytes; 0 when they
 * cannot be read (counted). */
static __always_inline __u32 redis_window(struct redis_walk *w, __u32 pos)
{
	struct scratch *s = w->s;
	__u32 n;

	if (pos >= w->base && pos - w->base < w->wlen)
		return w->wlen - (pos - w->base);
	n = s->ch.total - pos;
	if (n > SCRATCH_SIZE)
		n = SCRATCH_SIZE;
	if (!s->ch.user_buf || !n ||
	    bpf_probe_read_user(s->buf, bound(n - 1, SCRATCH_MASK) + 1,
				(void *)(s->ch.user_buf + pos))) {
		count(DBTAP_CNT_DROP_READ);
		return 0;
	}
	w->base = pos;
	w->wlen = n;
	return n;
}

/* The LF of "*<n>\r\n" or "$<n>\r\n" (req_state ARRAY_LF or BULK_LF) was read: the command's
 * arguments follow, or the argument's bytes are looked at or skipped. */
static __always_inline void redis_req_sized(struct redis_conn *r)
{
	__u32 n = r->req_num;

	if (r->req_state == REDIS_RQ_ARRAY_LF) {
		if (!n) {
			r->req_state = REDIS_RQ_START; /* "*0": no command */
			return;
		}
		redis_req_begin(r, false);
		r->req_args = n;
		r->req_state = REDIS_RQ_BULK_HDR;
		return;
	}
	r->req_left = n + RESP_CRLF_LEN;
	redis_arg_begin(r);
	r->req_state = n && redis_arg_wanted(r, n) ? REDIS_RQ_BULK_DATA : REDIS_RQ_SKIP;
}

/*
 * The digits of "*<n>" or "$<n>" and their CR, from the scratch at @off (@n bytes there; the
 * chunk's byte @pos): as many as there are, up to REDIS_NUM_RUN (leading zeros beyond that
 * are read in the next step). Returns the bytes read, the CR included (req_state then
 * ARRAY_LF or BULK_LF).
 */
static __always_inline __u32 redis_req_digits(struct scratch *s, struct conn_state *c, __u32 pos,
					      __u32 off, __u32 n)
{
	const __u8 *src = redis_run_src(s, off);
	struct redis_conn *r = &c->redis;
	__u32 num = r->req_num, k;
	__u8 b;

	for (k = 0; k < REDIS_NUM_RUN; k++) {
		if (k >= n)
			break;
		b = src[k];
		if (b >= '0' && b <= '9') {
			if (num > REDIS_MAX_LEN / 10) {
				s->ch.pos = pos + k + 1;
				redis_desync(s, c);
				return k + 1;
			}
			num = num * 10 + (b - '0');
			continue;
		}
		r->req_num = num;
		s->ch.pos = pos + k + 1;
		if (b != RESP_CR) {
			redis_desync(s, c);
			return k + 1;
		}
		r->req_state =
			r->req_state == REDIS_RQ_ARRAY_LEN ? REDIS_RQ_ARRAY_LF : REDIS_RQ_BULK_LF;
		return k + 1;
	}
	r->req_num = num;
	s->ch.pos = pos + k;
	return k;
}

/*
 * One step of the request parser over the chunk's bytes that are in the scratch: a header
 * from its type byte to its LF, then the argument's bytes looked at (up to REDIS_RUN_MAX),
 * then the rest of the argument skipped; or one byte of an inline command. A step stops
 * where the chunk or the scratch ends, and the next steps (in the next chunk) go on from the
 * state it left: every byte is taken as feeding the bytes one at a time through the states
 * would take it, so the results do not depend on where the stream is cut. Returns 1 to stop
 * the chunk.
 */
static __always_inline long redis_req_step(struct redis_walk *w)
{
	struct scratch *s = w->s;
	struct conn_state *c = w->c;
	struct redis_conn *r = &c->redis;
	__u32 pos = s->ch.pos, n, off, k;
	__u8 state, b;

	if (pos >= s->ch.total || s->ch.stop)
		return 1;
	state = r->req_state;
	if (state != REDIS_RQ_SKIP) {
		n = redis_window(w, pos);
		if (!n)
			return redis_desync(s, c);
		off = pos - w->base;
		b = sb(s, off);
		if (state == REDIS_RQ_START && b == RESP_ARRAY &&
		    dbtap_redis_req_whole(s, c, off, n))
			return 0;
		if ((state == REDIS_RQ_START && b == RESP_ARRAY) ||
		    (state == REDIS_RQ_BULK_HDR && b == RESP_BULK_STRING)) {
			state = state == REDIS_RQ_START ? REDIS_RQ_ARRAY_LEN : REDIS_RQ_BULK_LEN;
			r->req_state = state;
			r->req_num = 0;
			s->ch.pos = ++pos;
			if (n == 1)
				return 0;
			off++;
			n--;
		}
		switch (state) {
		case REDIS_RQ_ARRAY_LEN:
		case REDIS_RQ_BULK_LEN:
		case REDIS_RQ_ARRAY_LF:
		case REDIS_RQ_BULK_LF:
		case REDIS_RQ_BULK_DATA:
			break;
		case REDIS_RQ_START:
			s->ch.pos = pos + 1;
			if (b == RESP_CR || b == RESP_LF || b == REDIS_INLINE_SEP)
				return 0; /* empty inline lines are skipped by the server too */
			redis_req_begin(r, true);
			r->req_state = REDIS_RQ_INLINE;
			return redis_inline_byte(s, c, b);
		case REDIS_RQ_INLINE:
			s->ch.pos = pos + 1;
			return redis_inline_byte(s, c, b);
		default: /* REDIS_RQ_BULK_HDR: not a bulk string */
			s->ch.pos = pos + 1;
			return redis_desync(s, c);
		}
		if (state == REDIS_RQ_ARRAY_LEN || state == REDIS_RQ_BULK_LEN) {
			k = redis_req_digits(s, c, pos, off, n);
			if (s->ch.stop)
				return 1;
			if (k == n || r->req_state == state)
				return 0; /* the chunk or the scratch ended, or more digits follow */
			pos += k;
			off += k;
			n -= k;
			state = r->req_state;
		}
		if (state == REDIS_RQ_ARRAY_LF || state == REDIS_RQ_BULK_LF) {
			s->ch.pos = ++pos;
			if (sb(s, off) != RESP_LF)
				return redis_desync(s, c);
			redis_req_sized(r);
			state = r->req_state;
			if (state == REDIS_RQ_BULK_DATA) {
				if (n == 1)
					return 0;
				off++;
				n--;
			}
		}
		if (state == REDIS_RQ_BULK_DATA) {
			/* the argument's bytes looked at, up to its CRLF */
			k = r->req_left - RESP_CRLF_LEN;
			if (n > k)
				n = k;
			if (n > REDIS_RUN_MAX)
				n = REDIS_RUN_MAX;
			k = dbtap_redis_arg_run(s, c, off, n);
			r->req_left -= n;
			pos += n;
			s->ch.pos = pos;
			if (k && r->req_left > RESP_CRLF_LEN)
				return 0;
			r->req_state = REDIS_RQ_SKIP;
			state = REDIS_RQ_SKIP;
		}
		if (state != REDIS_RQ_SKIP || pos >= s->ch.total)
			return 0;
	}
	/* the rest of the argument and its CRLF */
	n = s->ch.total - pos;
	if (n > r->req_left)
		n = r->req_left;
	r->req_left -= n;
	s->ch.pos = pos + n;
	if (!r->req_left)
		dbtap_redis_arg_end(s, c);
	return 0;
}

static long redis_req_cb(__u64 i, void *arg)
{
	return redis_req_step(arg);
}

/* ---- replies ---- */

/* The operation the next reply answers: the first one not answered +QUEUED. */
static __always_inline struct conn_op *redis_front(struct conn_state *c)
{
	if ((__u8)(c->tail - c->head) <= c->redis.qpos)
		return NULL;
	return &c->ops[(__u8)(c->head + c->redis.qpos) & (CONN_MAX_OPS - 1)];
}

/*
 * Complete the operation @off places after the oldest (a reply to a command queued behind
 * commands that a transaction holds), failed with the reply's status when @failed; merged
 * repeats complete one at a time. Global: verified once.
 */
__noinline int dbtap_redis_finish(struct scratch *s, struct conn_state *c, __u32 off, __u32 failed,
				  __u32 rows)
{
	struct op_done *d;
	struct conn_op *o;
	__u32 j;

	if (!s || !c || off >= CONN_MAX_OPS || off >= (__u8)(c->tail - c->head))
		return 0;
	d = &s->ch.done;
	o = &c->ops[(__u8)(c->head + off) & (CONN_MAX_OPS - 1)];
	d->query_hash = o->query_hash;
	d->start_ns = o->start_ns;
	d->agg_flags = o->agg_flags;
	d->rows = rows;
	d->failed = failed ? 1 : 0;
	__builtin_memset(d->status, 0, DBTAP_STATUS_LEN);
	if (failed)
		__builtin_memcpy(d->status, c->redis.rp_word, REDIS_WORD_MAX);
	if (o->kind == REDIS_OP_CMD && o->tag) {
		o->tag--; /* a merged repeat: the entry stays for the next one */
	} else {
		/* remove it: the older ones it was queued behind move up one place */
		for (j = 0; j < CONN_MAX_OPS - 1; j++) {
			if (j >= off)
				break;
			c->ops[(__u8)(c->head + off - j) & (CONN_MAX_OPS - 1)] =
				c->ops[(__u8)(c->head + off - j - 1) & (CONN_MAX_OPS - 1)];
		}
		c->head++;
	}
	dbtap_complete(s, c);
	return 0;
}

/* Forget the commands a transaction queued: counted as succeeded when @counted (their
 * replies were lost with ours), else dropped (never run). Inline: call depth (see
 * redis_sized()). */
static __always_inline int redis_flush(struct scratch *s, struct conn_state *c, __u32 counted)
{
	__u32 j;

	if (!s || !c)
		return 0;
	for (j = 0; j < CONN_MAX_OPS; j++) {
		if (!c->redis.qpos)
			break;
		if (counted && c->head != c->tail)
			dbtap_redis_finish(s, c, 0, 0, 0);
		else if (c->head != c->tail)
			c->head++;
		c->redis.qpos--;
	}
	c->redis.qpos = 0;
	c->redis.multi = 0;
	return 0;
}

/* A subscription confirmation: the (UN)SUBSCRIBE it answers is done after one per channel. */
static __always_inline void redis_confirm(struct scratch *s, struct conn_state *c)
{
	struct conn_op *o = redis_front(c);

	if (!o || o->kind != REDIS_OP_SUB)
		return;
	c->redis.sub_mode = 1;
	if (o->tag > 1) {
		o->tag--;
		return;
	}
	dbtap_redis_finish(s, c, c->redis.qpos, 0, 0);
}

/* A whole top-level value was written. Global: verified once. */
__noinline int dbtap_redis_top_done(struct scratch *s, struct conn_state *c)
{
	struct redis_conn *r;
	struct conn_op *o;
	__u32 failed;
	__u8 top, kind;

	if (!s || !c)
		return 0;
	r = &c->redis;
	top = r->rp_top;
	failed = r->rp_flags & REDIS_RP_F_ERR;
	if (top == RESP_PUSH) {
		if (r->rp_first == REDIS_FIRST_CONFIRM)
			redis_confirm(s, c);
		return 0; /* never a reply */
	}
	o = redis_front(c);
	if (top == RESP_ARRAY && r->rp_first == REDIS_FIRST_CONFIRM &&
	    (r->sub_mode || (o && o->kind == REDIS_OP_SUB))) {
		redis_confirm(s, c);
		return 0;
	}
	if (top == RESP_ARRAY && r->rp_first == REDIS_FIRST_MESSAGE && r->sub_mode)
		return 0; /* a message pushed to a subscriber */
	if (!o) {
		if (r->lost) {
			r->lost--; /* the reply of a command counted when it was sent */
			if (r->qpos)
				redis_flush(s, c, 1);
		}
		return 0;
	}
	kind = o->kind;
	switch (kind) {
	case REDIS_OP_CMD:
	case REDIS_OP_SUB:
		if (r->multi && top == RESP_SIMPLE_STRING && redis_word_queued(r)) {
			r->qpos++; /* run at EXEC: stays queued */
			return 0;
		}
		dbtap_redis_finish(s, c, r->qpos, failed, 0);
		return 0;
	case REDIS_OP_MULTI:
		dbtap_redis_finish(s, c, r->qpos, failed, 0);
		if (!failed)
			r->multi = 1;
		return 0;
	case REDIS_OP_EXEC:
		if (r->rp_flags & REDIS_RP_F_EXEC) {
			/* the elements completed the queued commands; any left never ran */
			redis_flush(s, c, 0);
			dbtap_redis_finish(s, c, 0, 0, r->rp_elems);
		} else {
			/* -EXECABORT, or null after a failed WATCH: nothing ran */
			redis_flush(s, c, 0);
			dbtap_redis_finish(s, c, 0, failed, 0);
		}
		r->multi = 0;
		return 0;
	case REDIS_OP_DISCARD:
		redis_flush(s, c, 0);
		dbtap_redis_finish(s, c, 0, failed, 0);
		return 0;
	case REDIS_OP_SELECT:
		if (!failed && o->tag) {
			__u32 db = o->tag;

			dbtap_redis_finish(s, c, r->qpos, 0, 0);
			c->db_id = db; /* after: SELECT itself counts in the database it left */
			return 0;
		}
		dbtap_redis_finish(s, c, r->qpos, failed, 0);
		return 0;
	case REDIS_OP_RESET:
		redis_flush(s, c, 0);
		dbtap_redis_finish(s, c, 0, failed, 0);
		r->sub_mode = 0;
		c->db_id = REDIS_DB0_HASH;
		return 0;
	}
	dbtap_redis_finish(s, c, r->qpos, failed, 0);
	return 0;
}

/* An element of the top-level aggregate ended: classify the first one; inside EXEC's reply,
 * complete the queued command it answers. */
static __always_inline void redis_element_done(struct scratch *s, struct conn_state *c)
{
	struct redis_conn *r = &c->redis;
	__u32 h = r->rp_first_hash;

	if (r->rp_flags & REDIS_RP_F_FIRST) {
		r->rp_flags &= ~REDIS_RP_F_FIRST;
		if (h == REDIS_PUSH_MESSAGE || h == REDIS_PUSH_PMESSAGE || h == REDIS_PUSH_SMESSAGE)
			r->rp_first = REDIS_FIRST_MESSAGE;
		else if (h == REDIS_PUSH_SUBSCRIBE || h == REDIS_PUSH_PSUBSCRIBE ||
			 h == REDIS_PUSH_SSUBSCRIBE || h == REDIS_PUSH_UNSUBSCRIBE ||
			 h == REDIS_PUSH_PUNSUBSCRIBE || h == REDIS_PUSH_SUNSUBSCRIBE)
			r->rp_first = REDIS_FIRST_CONFIRM;
	}
	if ((r->rp_flags & REDIS_RP_F_EXEC) && r->qpos) {
		dbtap_redis_finish(s, c, 0, r->rp_flags & REDIS_RP_F_ERR, 0);
		r->qpos--;
	}
	r->rp_flags &= ~REDIS_RP_F_ERR;
}

/* A value ended: count it in the aggregates it closes, up to a top-level reply. Global:
 * verified once. */
__noinline int dbtap_redis_value_done(struct scratch *s, struct conn_state *c)
{
	struct redis_conn *r;
	__u32 k, d;

	if (!s || !c)
		return 0;
	r = &c->redis;
	r->rp_state = REDIS_RP_TYPE;
	for (k = 0; k <= REDIS_MAX_DEPTH; k++) {
		d = r->rp_depth;
		if (d == 0 || d > REDIS_MAX_DEPTH) {
			r->rp_depth = 0;
			dbtap_redis_top_done(s, c);
			return 0;
		}
		d--;
		if (d == 0 && !(r->rp_attr & 1))
			redis_element_done(s, c);
		if (r->rp_stack[bound(d, REDIS_DEPTH_MASK)] > 1) {
			r->rp_stack[bound(d, REDIS_DEPTH_MASK)]--;
			return 0;
		}
		r->rp_stack[bound(d, REDIS_DEPTH_MASK)] = 0;
		r->rp_depth = d;
		if (r->rp_attr & (1u << d)) {
			r->rp_attr &= ~(1u << d);
			return 0; /* an attribute annotates the value that follows */
		}
	}
	return 0;
}

/* A value of type @b starts: what to capture of it, how to read it. */
static __always_inline long redis_value_begin(struct scratch *s, struct conn_state *c, __u8 b)
{
	struct redis_conn *r = &c->redis;
	bool err = b == RESP_ERROR || b == RESP_BULK_ERROR;

	r->rp_type = b;
	r->rp_num = 0;
	r->rp_neg = 0;
	r->rp_flags &= ~(REDIS_RP_F_WORD | REDIS_RP_F_FIRST_VALUE);
	if (r->rp_depth == 0) {
		r->rp_top = b;
		r->rp_flags = 0;
		r->rp_first = REDIS_FIRST_OTHER;
		r->rp_first_hash = 0;
		r->rp_elems = 0;
	}
	if ((r->rp_depth == 0 && (err || b == RESP_SIMPLE_STRING)) ||
	    (r->rp_depth == 1 && err && !(r->rp_attr & 1))) {
		r->rp_flags |= REDIS_RP_F_WORD;
		if (err)
			r->rp_flags |= REDIS_RP_F_ERR;
		r->rp_word_len = 0;
		__builtin_memset(r->rp_word, 0, REDIS_WORD_MAX);
	} else if (r->rp_depth == 1 && (r->rp_flags & REDIS_RP_F_FIRST) &&
		   (b == RESP_BULK_STRING || b == RESP_SIMPLE_STRING)) {
		r->rp_flags |= REDIS_RP_F_FIRST_VALUE;
		r->rp_word_len = 0;
		r->rp_first_hash = DBTAP_FNV32_OFFSET;
	}
	switch (b) {
	case RESP_SIMPLE_STRING:
	case RESP_ERROR:
	case RESP_INTEGER:
	case RESP_NULL:
	case RESP_BOOLEAN:
	case RESP_DOUBLE:
	case RESP_BIG_NUMBER:
		r->rp_state = REDIS_RP_LINE;
		return 0;
	case RESP_BULK_STRING:
	case RESP_BULK_ERROR:
	case RESP_VERBATIM:
	case RESP_ARRAY:
	case RESP_MAP:
	case RESP_SET:
	case RESP_ATTRIBUTE:
	case RESP_PUSH:
		r->rp_state = REDIS_RP_NUM;
		return 0;
	}
	return redis_desync(s, c);
}

/* A byte of a value being captured: the first word (status), or the first element's hash.
 * Returns 1 while more bytes are wanted. */
static __always_inline int redis_capture(struct redis_conn *r, __u8 b)
{
	__u8 n = r->rp_word_len;

	if (r->rp_flags & REDIS_RP_F_FIRST_VALUE) {
		if (n >= REDIS_FIRST_MAX) {
			r->rp_first_hash = 0; /* longer than any push kind */
			r->rp_flags &= ~REDIS_RP_F_FIRST_VALUE;
			return 0;
		}
		r->rp_first_hash = dbtap_name_hash_step(r->rp_first_hash, redis_lower(b));
		r->rp_word_len = n + 1;
		return 1;
	}
	if (!(r->rp_flags & REDIS_RP_F_WORD))
		return 0;
	if (b == REDIS_INLINE_SEP || n >= REDIS_WORD_MAX - 1) {
		r->rp_flags &= ~REDIS_RP_F_WORD;
		return 0;
	}
	r->rp_word[bound(n, REDIS_WORD_MASK)] = (char)b; /* n < REDIS_WORD_MAX - 1 */
	r->rp_word_len = n + 1;
	return 1;
}

/* Bytes of a line value at @off in the scratch (@len of them, at most REDIS_RUN_MAX), each
 * captured while wanted. Returns how many come before its CR (@len: none is the CR). Global:
 * verified once. */
__noinline int dbtap_redis_line_run(struct scratch *s, struct conn_state *c, __u32 off, __u32 len)
{
	struct redis_conn *r;
	const __u8 *src;
	__u32 k;
	__u8 b;

	if (!s || !c)
		return 0;
	r = &c->redis;
	src = redis_run_src(s, off);
	for (k = 0; k < REDIS_RUN_MAX; k++) {
		if (k >= len)
			break;
		b = src[k];
		if (b == RESP_CR)
			break;
		if (r->rp_flags & (REDIS_RP_F_WORD | REDIS_RP_F_FIRST_VALUE))
			redis_capture(r, b);
	}
	return k;
}

/* Bytes of a blob at @off in the scratch (@len of them, at most REDIS_RUN_MAX) captured in
 * turn. Returns 1 while more are wanted, 0 when the rest can be skipped. Global: verified
 * once. */
__noinline int dbtap_redis_blob_run(struct scratch *s, struct conn_state *c, __u32 off, __u32 len)
{
	const __u8 *src;
	__u32 k;

	if (!s || !c)
		return 0;
	src = redis_run_src(s, off);
	for (k = 0; k < REDIS_RUN_MAX; k++) {
		if (k >= len)
			break;
		if (!redis_capture(&c->redis, src[k]))
			return 0;
	}
	return 1;
}

/* The length or count of a blob or aggregate was read. Inline: a global function here would
 * make the call chain down to dbtap_complete() deeper than the verifier's 8 frames. */
static __always_inline int redis_sized(struct scratch *s, struct conn_state *c)
{
	struct redis_conn *r;
	__u32 n, d;
	__u8 t;

	if (!s || !c)
		return 0;
	r = &c->redis;
	t = r->rp_type;
	n = r->rp_num;
	r->rp_state = REDIS_RP_TYPE;
	if (t == RESP_BULK_STRING || t == RESP_BULK_ERROR || t == RESP_VERBATIM) {
		if (r->rp_neg) {
			dbtap_redis_value_done(s, c); /* null bulk string */
			return 0;
		}
		r->rp_num = n + RESP_CRLF_LEN;
		r->rp_state = n && (r->rp_flags & (REDIS_RP_F_WORD | REDIS_RP_F_FIRST_VALUE))
				      ? REDIS_RP_BLOB_DATA
				      : REDIS_RP_SKIP;
		return 0;
	}
	if (t == RESP_MAP || t == RESP_ATTRIBUTE)
		n *= 2; /* key and value */
	d = r->rp_depth;
	if (d == 0) {
		r->rp_elems = n;
		r->rp_flags |= REDIS_RP_F_FIRST;
		if (t == RESP_ARRAY && !r->rp_neg) {
			struct conn_op *o = redis_front(c);

			if (o && o->kind == REDIS_OP_EXEC && r->multi)
				r->rp_flags |= REDIS_RP_F_EXEC;
		}
	}
	if (r->rp_neg || n == 0) {
		if (t != RESP_ATTRIBUTE)
			dbtap_redis_value_done(s, c); /* null or empty aggregate */
		return 0;
	}
	if (d >= REDIS_MAX_DEPTH) {
		redis_desync(s, c);
		return 0;
	}
	r->rp_stack[bound(d, REDIS_DEPTH_MASK)] = n;
	if (t == RESP_ATTRIBUTE)
		r->rp_attr |= 1u << d;
	else
		r->rp_attr &= ~(1u << d);
	r->rp_depth = d + 1;
	return 0;
}

static long redis_drop_cb(__u64 i, void *arg)
{
	struct redis_walk *w = arg;

	if (w->c->head == w->c->tail)
		return 1;
	dbtap_redis_finish(w->s, w->c, 0, 0, 0);
	return 0;
}

/*
 * Replies can no longer be followed (their bytes lie past the scratch of a chunk written
 * with writev): every command in flight is counted as done now, and from here on commands
 * are counted when read (REDIS_PHASE_REQUESTS). Counted DESYNC. Global: verified once.
 */
__noinline int dbtap_redis_drop_replies(struct scratch *s, struct conn_state *c)
{
	struct redis_walk w = {.s = s, .c = c};
	__u32 n = 0, k;

	if (!s || !c)
		return 0;
	count(DBTAP_CNT_DESYNC);
	for (k = 0; k < CONN_MAX_OPS; k++) {
		struct conn_op *o = &c->ops[(__u8)(c->head + k) & (CONN_MAX_OPS - 1)];

		if (k >= (__u8)(c->tail - c->head))
			break;
		n += 1 + (o->kind == REDIS_OP_CMD ? o->tag : 0);
	}
	c->redis.qpos = 0;
	c->redis.multi = 0;
	c->redis.lost = 0;
	c->phase = REDIS_PHASE_REQUESTS;
	s->ch.stop = 1;
	bpf_loop(n < (1u << 23) ? n : (1u << 23), redis_drop_cb, &w, 0);
	c->head = c->tail;
	return 0;
}

/*
 * The sign and digits of a blob's length or an aggregate's count, and their CR, from the
 * scratch at @off (@n bytes there; the chunk's byte @pos): as many as there are, up to
 * REDIS_NUM_RUN. Returns the bytes read, the CR included (rp_state then REDIS_RP_NUM_LF).
 */
static __always_inline __u32 redis_rep_digits(struct scratch *s, struct conn_state *c, __u32 pos,
					      __u32 off, __u32 n)
{
	const __u8 *src = redis_run_src(s, off);
	struct redis_conn *r = &c->redis;
	__u32 num = r->rp_num, k;
	__u8 neg = r->rp_neg, b;

	for (k = 0; k < REDIS_NUM_RUN; k++) {
		if (k >= n)
			break;
		b = src[k];
		if (b == '-' && !neg && !num) {
			neg = 1;
			continue;
		}
		if (b >= '0' && b <= '9') {
			if (num > REDIS_MAX_LEN / 10) {
				s->ch.pos = pos + k + 1;
				redis_desync(s, c);
				return k + 1;
			}
			num = num * 10 + (b - '0');
			continue;
		}
		r->rp_num = num;
		r->rp_neg = neg;
		s->ch.pos = pos + k + 1;
		if (b != RESP_CR) {
			redis_desync(s, c);
			return k + 1;
		}
		r->rp_state = REDIS_RP_NUM_LF;
		return k + 1;
	}
	r->rp_num = num;
	r->rp_neg = neg;
	s->ch.pos = pos + k;
	return k;
}

/*
 * One step of the reply parser, as redis_req_step(): a value's type byte, its length or its
 * line up to the CR, the LF, then a blob's bytes looked at and the rest of it skipped.
 * Returns 1 to stop the chunk.
 */
static __always_inline long redis_rep_step(struct redis_walk *w)
{
	struct scratch *s = w->s;
	struct conn_state *c = w->c;
	struct redis_conn *r = &c->redis;
	__u32 pos = s->ch.pos, n, off, k;
	__u8 state;

	if (pos >= s->ch.total || s->ch.stop || c->phase != REDIS_PHASE_NORMAL)
		return 1;
	state = r->rp_state;
	if (state != REDIS_RP_SKIP) {
		n = redis_window(w, pos);
		if (!n) {
			dbtap_redis_drop_replies(s, c);
			return 1;
		}
		off = pos - w->base;
		if (state == REDIS_RP_TYPE) {
			s->ch.pos = ++pos;
			if (redis_value_begin(s, c, sb(s, off)))
				return 1;
			if (n == 1)
				return 0;
			off++;
			n--;
			state = r->rp_state;
		}
		if (state == REDIS_RP_NUM) {
			k = redis_rep_digits(s, c, pos, off, n);
			if (s->ch.stop)
				return 1;
			if (k == n || r->rp_state == state)
				return 0; /* the chunk or the scratch ended, or more digits follow */
			pos += k;
			off += k;
			n -= k;
			state = REDIS_RP_NUM_LF;
		} else if (state == REDIS_RP_LINE) {
			if (n > REDIS_RUN_MAX)
				n = REDIS_RUN_MAX;
			k = dbtap_redis_line_run(s, c, off, n);
			if (k >= n) {
				s->ch.pos = pos + n;
				return 0; /* no CR yet */
			}
			pos += k + 1;
			off += k + 1;
			n -= k + 1;
			s->ch.pos = pos;
			state = REDIS_RP_LINE_LF;
			r->rp_state = state;
			if (!n)
				return 0;
		}
		if (state == REDIS_RP_LINE_LF || state == REDIS_RP_NUM_LF) {
			s->ch.pos = ++pos;
			if (sb(s, off) != RESP_LF)
				return redis_desync(s, c);
			if (state == REDIS_RP_LINE_LF) {
				dbtap_redis_value_done(s, c);
				return 0;
			}
			redis_sized(s, c);
			state = r->rp_state;
			if (state == REDIS_RP_BLOB_DATA) {
				if (n == 1)
					return 0;
				off++;
				n--;
			}
		}
		if (state == REDIS_RP_BLOB_DATA) {
			/* the blob's bytes looked at, up to its CRLF */
			k = r->rp_num - RESP_CRLF_LEN;
			if (n > k)
				n = k;
			if (n > REDIS_RUN_MAX)
				n = REDIS_RUN_MAX;
			k = dbtap_redis_blob_run(s, c, off, n);
			r->rp_num -= n;
			pos += n;
			s->ch.pos = pos;
			if (k && r->rp_num > RESP_CRLF_LEN)
				return 0;
			r->rp_state = REDIS_RP_SKIP;
			state = REDIS_RP_SKIP;
		}
		if (state != REDIS_RP_SKIP)
			return state == REDIS_RP_TYPE ? 0 : redis_desync(s, c);
		if (pos >= s->ch.total || s->ch.stop)
			return 0;
	}
	/* the rest of a blob and its CRLF */
	n = s->ch.total - pos;
	if (n > r->rp_num)
		n = r->rp_num;
	r->rp_num -= n;
	s->ch.pos = pos + n;
	if (!r->rp_num)
		dbtap_redis_value_done(s, c);
	return 0;
}

static long redis_rep_cb(__u64 i, void *arg)
{
	return redis_rep_step(arg);
}

/* ---- connections ---- */

/* Is @b the first byte of a request (RESP array or an inline command's letter)? */
static __always_inline bool redis_request_start(__u8 b)
{
	return b == RESP_ARRAY || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
}

/* First bytes of a connection: RESP, TLS, or something else (ignored). */
static __always_inline void redis_start(struct scratch *s, struct conn_state *c)
{
	__u8 b = sb(s, 0);

	if (s->ch.dir == IO_RECV && b == TLS_RECORD_HANDSHAKE) {
		c->flags |= DBTAP_CONN_F_ENCRYPTED;
		c->phase = REDIS_PHASE_IGNORE;
		count(DBTAP_CNT_ENCRYPTED);
		emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
		return;
	}
	if (s->ch.dir == IO_RECV && !redis_request_start(b)) {
		c->flags |= DBTAP_CONN_F_UNDECODABLE;
		c->phase = REDIS_PHASE_IGNORE;
		count(DBTAP_CNT_UNDECODABLE);
		emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
		return;
	}
	if (s->ch.dir == IO_SEND) {
		/* replies before any request: joined mid-stream */
		switch (b) {
		case RESP_SIMPLE_STRING:
		case RESP_ERROR:
		case RESP_INTEGER:
		case RESP_BULK_STRING:
		case RESP_ARRAY:
		case RESP_NULL:
		case RESP_MAP:
		case RESP_SET:
		case RESP_PUSH:
			c->flags |= DBTAP_CONN_F_MIDSTREAM;
			break;
		default:
			return; /* wait for a request */
		}
	}
	if (!c->db_id)
		c->db_id = REDIS_DB0_HASH;
	c->phase = REDIS_PHASE_NORMAL;
	emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
}

/* Decode one chunk of Redis connection @c. Global: verified once. */
__noinline int dbtap_redis_chunk(struct scratch *s, struct conn_state *c)
{
	struct redis_walk w = {};
	__u32 nr;

	if (!s || !c)
		return 0;
	if (c->phase == REDIS_PHASE_START && s->ch.avail)
		redis_start(s, c);
	if (c->phase != REDIS_PHASE_NORMAL &&
	    (c->phase != REDIS_PHASE_REQUESTS || s->ch.dir != IO_RECV))
		return 0;
	w.s = s;
	w.c = c;
	w.base = 0;
	w.wlen = s->ch.avail;
	nr = s->ch.total < (1u << 23) ? s->ch.total + 1 : (1u << 23);
	if (s->ch.dir == IO_RECV)
		bpf_loop(nr, redis_req_cb, &w, 0);
	else
		bpf_loop(nr, redis_rep_cb, &w, 0);
	if (s->ch.pos < s->ch.total && !s->ch.stop)
		redis_desync(s, c); /* more steps than bpf_loop allows */
	return 0;
}

#endif /* DBTAP_REDIS_BPF_H */
