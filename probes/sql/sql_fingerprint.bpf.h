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

struct sql_fp_walk {
	struct scratch *s;
	__u32 off;
	__u32 end;
	__u32 len; /* bytes fingerprinted */
};

static long sql_fp_scratch_cb(__u64 i, void *arg)
{
	struct sql_fp_walk *w = arg;
	__u32 p = w->off + (__u32)i * 8, n;
	__u64 bytes;
	int r;

	if (p >= w->end)
		return 1;
	n = w->end - p < 8 ? w->end - p : 8;
	/* p < 2 * SCRATCH_SIZE: the 8-byte load stays inside the buffer (see struct scratch) */
	__builtin_memcpy(&bytes, &w->s->buf[bound(p, 2 * SCRATCH_SIZE - 1)], sizeof(bytes));
	r = dbtap_fp_step8(&w->s->fp, bytes, n);
	w->len += r & 0xff;
	return (r & FP_STEP_NUL) || n < 8;
}

/* Fingerprint (@dialect: enum sql_fp_dialect) of the SQL at [off, end) of the scratch, up to a
 * NUL; its length in @ret_len. Global: verified once, for every decoder that calls it. */
__noinline __u64 dbtap_sql_fp_scratch(struct scratch *s, __u32 off, __u32 end, __u32 dialect,
				      __u32 *ret_len)
{
	struct sql_fp_walk w = {.s = s, .off = off, .end = end};
	__u32 n = end > off ? end - off : 0;

	if (!s || !ret_len)
		return 1;
	sql_fp_init(&s->fp, dialect);
	if (n > SCRATCH_SIZE)
		n = SCRATCH_SIZE;
	bpf_loop((n + 7) / 8, sql_fp_scratch_cb, &w, 0);
	*ret_len = w.len;
	return dbtap_fp_finish(&s->fp);
}

#endif /* DBTAP_SQL_FINGERPRINT_BPF_H */
