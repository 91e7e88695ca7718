/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * redis.bpf.h - Redis serialization protocol (RESP2 and RESP3) decoder running in the BPF
 * capture programs; also Valkey and KeyDB, which speak the same protocol.
 *
 * Included by bpf/decoders.bpf.h after the capture core. Both directions are parsed byte by
 * byte by resumable state machines kept in c->redis (probes/redis/redis_state.h): only the
 * bytes that matter are looked at (headers, the command name, the first key, the first word
 * of error replies), bulk payloads are skipped by their length. So a request or reply may be
 * cut anywhere across chunks, and the results do not depend on where.
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
#define REDIS_KEY_DIGITS     '?'
#define REDIS_BLOCK_LEN	     5	  /* "BLOCK": the XREAD/XREADGROUP option that makes them block */
#define REDIS_QUEUED_LEN     6	  /* "QUEUED": status reply to a command queued in a transaction */
#define TLS_RECORD_HANDSHAKE 0x16 /* first byte of a TLS ClientHello record */

/* Request parser states (redis_conn.req_state). */
#define REDIS_RQ_START	   0 /* a request starts: '*' or an inline command */
#define REDIS_RQ_ARRAY_LEN 1 /* digits of "*<n>" */
#define REDIS_RQ_ARRAY_LF  2
#define REDIS_RQ_BULK_HDR  3 /* '$' of the next argument */
#define REDIS_RQ_BULK_LEN  4 /* digits of "$<len>" */
#define REDIS_RQ_BULK_LF   5
#define REDIS_RQ_BULK_DATA 6 /* argument bytes looked at one by one */
#define REDIS_RQ_SKIP	   7 /* the rest of an argument and its CRLF */
#define REDIS_RQ_INLINE	   8 /* an inline command line, up to LF */

/* Reply parser states (redis_conn.rp_state). */
#define REDIS_RP_TYPE	   0 /* a value starts: its type byte */
#define REDIS_RP_LINE	   1 /* a line value up to CR */
#define REDIS_RP_LINE_LF   2
#define REDIS_RP_NUM	   3 /* the length or element count of a blob or aggregate */
#define REDIS_RP_NUM_LF	   4
#define REDIS_RP_BLOB_DATA 5 /* blob bytes looked at one by one */
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

/* The chunk's byte at @pos: from the scratch, which is refilled from the user buffer past
 * the first SCRATCH_SIZE bytes; -1 when it cannot be read (counted). */
static __always_inline int redis_byte(struct redis_walk *w, __u32 pos)
{
	struct scratch *s = w->s;
	__u32 n;

	if (pos >= w->base && pos - w->base < w->wlen)
		return sb(s, pos - w->base);
	n = s->ch.total - pos;
	if (n > SCRATCH_SIZE)
		n = SCRATCH_SIZE;
	if (!s->ch.user_buf || !n ||
	    bpf_probe_read_user(s->buf, bound(n - 1, SCRATCH_MASK) + 1,
				(void *)(s->ch.user_buf + pos))) {
		count(DBTAP_CNT_DROP_READ);
		return -1;
	}
	w->base = pos;
	w->wlen = n;
	return sb(s, 0);
}

static long redis_req_cb(__u64 i, void *arg)
{
	struct redis_walk *w = arg;
	struct scratch *s = w->s;
	struct conn_state *c = w->c;
	struct redis_conn *r = &c->redis;
	__u32 pos = s->ch.pos, n;
	int b;

	if (pos >= s->ch.total || s->ch.stop)
		return 1;
	if (r->req_state == REDIS_RQ_SKIP) {
		n = s->ch.total - pos;
		if (n > r->req_left)
			n = r->req_left;
		r->req_left -= n;
		s->ch.pos = pos + n;
		if (!r->req_left)
			dbtap_redis_arg_end(s, c);
		return 0;
	}
	b = redis_byte(w, pos);
	if (b < 0)
		return redis_desync(s, c);
	s->ch.pos = pos + 1;
	switch (r->req_state) {
	case REDIS_RQ_START:
		if (b == RESP_ARRAY) {
			r->req_state = REDIS_RQ_ARRAY_LEN;
			r->req_num = 0;
			return 0;
		}
		if (b == RESP_CR || b == RESP_LF || b == REDIS_INLINE_SEP)
			return 0; /* empty inline lines are skipped by the server too */
		redis_req_begin(r, true);
		r->req_state = REDIS_RQ_INLINE;
		return redis_inline_byte(s, c, b);
	case REDIS_RQ_ARRAY_LEN:
	case REDIS_RQ_BULK_LEN:
		if (b >= '0' && b <= '9') {
			if (r->req_num > REDIS_MAX_LEN / 10)
				return redis_desync(s, c);
			r->req_num = r->req_num * 10 + (b - '0');
			return 0;
		}
		if (b != RESP_CR)
			return redis_desync(s, c);
		r->req_state =
			r->req_state == REDIS_RQ_ARRAY_LEN ? REDIS_RQ_ARRAY_LF : REDIS_RQ_BULK_LF;
		return 0;
	case REDIS_RQ_ARRAY_LF:
		if (b != RESP_LF)
			return redis_desync(s, c);
		if (!r->req_num) {
			r->req_state = REDIS_RQ_START; /* "*0": no command */
			return 0;
		}
		redis_req_begin(r, false);
		r->req_args = r->req_num;
		r->req_state = REDIS_RQ_BULK_HDR;
		return 0;
	case REDIS_RQ_BULK_HDR:
		if (b != RESP_BULK_STRING)
			return redis_desync(s, c);
		r->req_num = 0;
		r->req_state = REDIS_RQ_BULK_LEN;
		return 0;
	case REDIS_RQ_BULK_LF:
		if (b != RESP_LF)
			return redis_desync(s, c);
		n = r->req_num;
		r->req_left = n + RESP_CRLF_LEN;
		redis_arg_begin(r);
		r->req_state = n && redis_arg_wanted(r, n) ? REDIS_RQ_BULK_DATA : REDIS_RQ_SKIP;
		return 0;
	case REDIS_RQ_BULK_DATA:
		r->req_left--;
		if (!dbtap_redis_arg_byte(c, b) || r->req_left <= RESP_CRLF_LEN)
			r->req_state = REDIS_RQ_SKIP;
		return 0;
	case REDIS_RQ_INLINE:
		return redis_inline_byte(s, c, b);
	}
	return redis_desync(s, c);
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
 * Returns 1 while more bytes are wanted. Global: verified once. */
__noinline int dbtap_redis_capture(struct conn_state *c, __u32 b)
{
	struct redis_conn *r;
	__u8 n;

	if (!c)
		return 0;
	r = &c->redis;
	n = r->rp_word_len;
	if (r->rp_flags & REDIS_RP_F_FIRST_VALUE) {
		if (n >= REDIS_FIRST_MAX) {
			r->rp_first_hash = 0; /* longer than any push kind */
			r->rp_flags &= ~REDIS_RP_F_FIRST_VALUE;
			return 0;
		}
		r->rp_first_hash = dbtap_name_hash_step(r->rp_first_hash, redis_lower((__u8)b));
		r->rp_word_len = n + 1;
		return 1;
	}
	if (!(r->rp_flags & REDIS_RP_F_WORD))
		return 0;
	if (b == REDIS_INLINE_SEP || n >= REDIS_WORD_MAX - 1) {
		r->rp_flags &= ~REDIS_RP_F_WORD;
		return 0;
	}
	r->rp_word[n < REDIS_WORD_MAX ? n : 0] = (char)b;
	r->rp_word_len = n + 1;
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

static long redis_rep_cb(__u64 i, void *arg)
{
	struct redis_walk *w = arg;
	struct scratch *s = w->s;
	struct conn_state *c = w->c;
	struct redis_conn *r = &c->redis;
	__u32 pos = s->ch.pos, n;
	int b;

	if (pos >= s->ch.total || s->ch.stop || c->phase != REDIS_PHASE_NORMAL)
		return 1;
	if (r->rp_state == REDIS_RP_SKIP) {
		n = s->ch.total - pos;
		if (n > r->rp_num)
			n = r->rp_num;
		r->rp_num -= n;
		s->ch.pos = pos + n;
		if (!r->rp_num)
			dbtap_redis_value_done(s, c);
		return 0;
	}
	b = redis_byte(w, pos);
	if (b < 0) {
		dbtap_redis_drop_replies(s, c);
		return 1;
	}
	s->ch.pos = pos + 1;
	switch (r->rp_state) {
	case REDIS_RP_TYPE:
		return redis_value_begin(s, c, b);
	case REDIS_RP_LINE:
		if (b == RESP_CR)
			r->rp_state = REDIS_RP_LINE_LF;
		else if (r->rp_flags & (REDIS_RP_F_WORD | REDIS_RP_F_FIRST_VALUE))
			dbtap_redis_capture(c, b);
		return 0;
	case REDIS_RP_LINE_LF:
	case REDIS_RP_NUM_LF:
		if (b != RESP_LF)
			return redis_desync(s, c);
		if (r->rp_state == REDIS_RP_LINE_LF)
			dbtap_redis_value_done(s, c);
		else
			redis_sized(s, c);
		return 0;
	case REDIS_RP_NUM:
		if (b == '-' && !r->rp_neg && !r->rp_num) {
			r->rp_neg = 1;
			return 0;
		}
		if (b >= '0' && b <= '9') {
			if (r->rp_num > REDIS_MAX_LEN / 10)
				return redis_desync(s, c);
			r->rp_num = r->rp_num * 10 + (b - '0');
			return 0;
		}
		if (b != RESP_CR)
			return redis_desync(s, c);
		r->rp_state = REDIS_RP_NUM_LF;
		return 0;
	case REDIS_RP_BLOB_DATA:
		r->rp_num--;
		if (!dbtap_redis_capture(c, b) || r->rp_num <= RESP_CRLF_LEN)
			r->rp_state = REDIS_RP_SKIP;
		return 0;
	}
	return redis_desync(s, c);
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
