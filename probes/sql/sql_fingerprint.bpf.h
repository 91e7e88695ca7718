/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sql_fingerprint.bpf.h - the SQL fingerprint (sql_fingerprint.h) run over a query text in the
 * per-CPU scratch, for every SQL decoder (PostgreSQL, MySQL/MariaDB). Included by
 * bpf/decoders.bpf.h after the capture core.
 */
#ifndef DBTAP_SQL_FINGERPRINT_BPF_H
#define DBTAP_SQL_FINGERPRINT_BPF_H

/* Global (not static) functions are verified once, on their own, with opaque arguments:
 * the lexer's many branches cost the verifier once instead of once per caller state. */
/* Feed up to 8 bytes packed little-endian in @bytes (@n of them): one call per 8 bytes keeps
 * the per-byte overhead of bpf_loop and the call itself low. Returns the bytes consumed, with
 * FP_STEP_NUL set when a NUL ended the text. */
#define FP_STEP_NUL 0x100
__noinline int dbtap_fp_step8(struct sql_fp *fp, __u64 bytes, __u32 n)
{
	__u32 i;

	if (!fp)
		return FP_STEP_NUL;
	for (i = 0; i < 8; i++) {
		__u8 c = (__u8)(bytes >> (i * 8));

		if (i >= n)
			return i;
		if (c == 0)
			return i | FP_STEP_NUL;
		sql_fp_step_fast(fp, c);
	}
	return 8;
}

__noinline __u64 dbtap_fp_finish(struct sql_fp *fp)
{
	if (!fp)
		return 1;
	return sql_fp_finish(fp);
}

/* ---- prefix cache (struct fp_cache_entry) ---- */

#define FP_RAW_SEED 0x6a09e667f3bcc908ULL

static __always_inline __u64 fp_raw_mix(__u64 h, __u64 w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

/* 8 bytes of the scratch at @p (p < 2 * SCRATCH_SIZE: the load stays inside, see struct
 * scratch), little-endian. */
static __always_inline __u64 fp_word(struct scratch *s, __u32 p)
{
	__u64 w;

	__builtin_memcpy(&w, &s->buf[bound(p, 2 * SCRATCH_SIZE - 1)], sizeof(w));
	return w;
}

#define FP_ONES	 0x0101010101010101ULL
#define FP_LOWS	 0x7f7f7f7f7f7f7f7fULL
#define FP_HIGHS 0x8080808080808080ULL

/* High bit of each byte of @x strictly between @m and @n (0 <= m < n <= 128): exact per byte,
 * no carry crosses bytes ("hasbetween", Bit Twiddling Hacks); bytes >= 0x80 are never in. */
#define FP_BETWEEN(x, m, n)                                 \
	((FP_ONES * (127 + (n)) - ((x) & FP_LOWS)) & ~(x) & \
	 (((x) & FP_LOWS) + FP_ONES * (127 - (m))) & FP_HIGHS)
/* High bit of each zero byte of @x, exact per byte. */
#define FP_ZERO(x) (~((((x) & FP_LOWS) + FP_LOWS) | (x) | FP_LOWS))

/* Bytes of @x that continue an identifier: letters, digits, '_', '$' and bytes >= 0x80. */
static __always_inline __u64 fp_ident_bytes(__u64 x)
{
	return FP_BETWEEN(x | (FP_ONES * 0x20), 'a' - 1, 'z' + 1) |
	       FP_BETWEEN(x, '0' - 1, '9' + 1) | FP_ZERO(x ^ (FP_ONES * '_')) |
	       FP_ZERO(x ^ (FP_ONES * '$')) | (x & FP_HIGHS);
}

/*
 * Whether block @w may hold what varies between executions of a statement, where a prefix
 * worth remembering ends: a digit that does not continue an identifier (a number: "id = 5",
 * but not the 1 of "sbtest1"), a quote (' " ` $), or a NUL (the text ends, and must end there
 * again). @prev is the byte before the block (0 at the start of the text).
 */
static __always_inline bool fp_word_varies(__u64 w, __u8 prev)
{
	__u64 before = (w << 8) | prev; /* byte i: the byte before byte i of w */

	return (FP_BETWEEN(w, '0' - 1, '9' + 1) & ~fp_ident_bytes(before)) || FP_ZERO(w) ||
	       FP_ZERO(w ^ (FP_ONES * '\'')) || FP_ZERO(w ^ (FP_ONES * '"')) ||
	       FP_ZERO(w ^ (FP_ONES * '`')) || FP_ZERO(w ^ (FP_ONES * '$'));
}

#undef FP_ZERO
#undef FP_BETWEEN
#undef FP_HIGHS
#undef FP_LOWS
#undef FP_ONES

struct sql_fp_walk {
	struct scratch *s;
	struct fp_cache_entry *e; /* being filled (a miss), or NULL */
	__u64 raw;		  /* hash of the bytes before off while e is filled */
	__u32 off;
	__u32 end;
	__u32 len; /* bytes fingerprinted */
	__u8 prev; /* last byte of the block before, while e is filled */
};

/* The prefix being filled ends: keep it when it saves more than the key costs. */
static __always_inline void fp_prefix_end(struct sql_fp_walk *w)
{
	if (w->e->plen >= FP_CACHE_KEY_LEN)
		w->e->raw = w->raw;
	else
		w->e->key = 0;
	w->e = NULL;
}

static long sql_fp_scratch_cb(__u64 i, void *arg)
{
	struct sql_fp_walk *w = arg;
	__u32 p = w->off + (__u32)i * 8, n;
	__u64 bytes;
	int r;

	if (p >= w->end)
		return 1;
	n = w->end - p < 8 ? w->end - p : 8;
	bytes = fp_word(w->s, p);
	if (w->e &&
	    (n < 8 || fp_word_varies(bytes, w->prev) || w->e->plen >= FP_CACHE_MAX_BLOCKS * 8))
		fp_prefix_end(w);
	r = dbtap_fp_step8(&w->s->fp, bytes, n);
	w->len += r & 0xff;
	if (w->e) { /* a whole block without NUL, digit or quote: the lexer state after it */
		w->raw = fp_raw_mix(w->raw, bytes);
		w->e->plen += 8;
		w->prev = (__u8)(bytes >> 56);
		__builtin_memcpy(&w->e->fp, &w->s->fp, sizeof(w->e->fp));
	}
	return (r & FP_STEP_NUL) || n < 8;
}

/* The hash of the @blocks 8-byte blocks at @off. */
static __always_inline __u64 fp_raw_prefix(struct scratch *s, __u32 off, __u32 blocks)
{
	__u64 h = FP_RAW_SEED;
	__u32 i;

	for (i = 0; i < FP_CACHE_MAX_BLOCKS; i++) {
		if (i >= blocks)
			break;
		h = fp_raw_mix(h, fp_word(s, off + i * 8));
	}
	return h;
}

/*
 * Fingerprint (@dialect: enum sql_fp_dialect) of the SQL at [off, end) of the scratch, up to a
 * NUL; its length in @ret_len. The same statement sent again with other literals shares its
 * text up to the first literal: that prefix's lexer state comes from the per-CPU prefix cache
 * (struct fp_cache_entry) when its bytes hash the same, and only the rest is lexed. The result
 * is the plain lexer's for every input (the decoder tests compare the two). Global: verified
 * once, for every decoder that calls it.
 */
__noinline __u64 dbtap_sql_fp_scratch(struct scratch *s, __u32 off, __u32 end, __u32 dialect,
				      __u32 *ret_len)
{
	struct sql_fp_walk w = {.off = off, .end = end, .raw = FP_RAW_SEED};
	__u32 n = end > off ? end - off : 0, plen;
	struct fp_cache_entry *e = NULL;
	__u64 key;

	if (!s || !ret_len)
		return 1;
	w.s = s;
	if (n > SCRATCH_SIZE)
		n = SCRATCH_SIZE;
	if (n >= FP_CACHE_KEY_LEN) {
		key = fp_raw_mix(fp_raw_mix(FP_RAW_SEED ^ dialect, fp_word(s, off)),
				 fp_word(s, off + 8)) |
		      1;
		e = &s->fp_cache[key & (FP_CACHE_SLOTS - 1)];
		plen = e->plen;
		if (e->key == key && plen <= n && plen <= FP_CACHE_MAX_BLOCKS * 8 &&
		    e->fp.dialect == dialect && fp_raw_prefix(s, off, plen / 8) == e->raw) {
			/* hit: resume after the prefix */
			__builtin_memcpy(&s->fp, &e->fp, sizeof(s->fp));
			w.off = off + plen;
			w.len = plen;
			n -= plen;
			e = NULL;
		} else { /* miss: lex from the start, filling the entry as long as it goes */
			e->key = key;
			e->plen = 0;
			w.e = e;
			sql_fp_init(&s->fp, dialect);
		}
	} else {
		sql_fp_init(&s->fp, dialect);
	}
	bpf_loop((n + 7) / 8, sql_fp_scratch_cb, &w, 0);
	if (w.e) /* every block went into the prefix */
		fp_prefix_end(&w);
	*ret_len = w.len;
	return dbtap_fp_finish(&s->fp);
}

#endif /* DBTAP_SQL_FINGERPRINT_BPF_H */
