/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bpf_shim.h - the BPF side of the capture path (maps, helpers, rodata/bss globals) in plain C,
 * so that bpf/capture_core.bpf.h and probes/postgresql/pg.bpf.h compile with gcc or clang and
 * run unchanged in userspace, for unit tests and fuzzers.
 *
 * Include it before those two headers, in exactly ONE translation unit (tests/lib/pg_harness.c):
 * the map objects carry the kernel's names (conns, aggs, events, ...) and are file-static there.
 * Everything the shim adds of its own is prefixed shim_.
 *
 * Semantics kept from the kernel:
 *  - hash maps: BPF_NOEXIST on a present key is -EEXIST, BPF_EXIST on a missing one -ENOENT, an
 *    insert into a full map -E2BIG (tests lower the capacity to exercise "map full"); LRU hash
 *    maps behave as plain hash maps (no eviction); values keep their address until deleted.
 *  - arrays (per-CPU ones have one CPU): every index exists, updates with BPF_NOEXIST fail with
 *    -EEXIST, deletes with -EINVAL; an index past the end is not found.
 *  - the ring buffer keeps every submitted record until the test consumes them; a reservation
 *    that does not fit the remaining capacity fails (NULL), as a full kernel ring buffer does.
 *    Reserved memory is not zeroed (filled with SHIM_RB_FILL) to catch fields left unset.
 *  - bpf_probe_read_user() succeeds only inside the user memory the harness declared (the
 *    chunk being decoded): a read elsewhere fails with -EFAULT, zeroes the destination and is
 *    counted in shim_user_faults, because in the kernel it would read unrelated memory.
 *  - bpf_loop() runs the callback up to nr_loops times, stopping when it returns non-zero, and
 *    returns the number of calls made.
 */
#ifndef DBTAP_BPF_SHIM_H
#define DBTAP_BPF_SHIM_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

/* glibc's <sys/cdefs.h> already defines __always_inline; libbpf's bpf_helpers.h would too. */
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
/*
 * BPF global functions (dbtap_complete, dbtap_pg_chunk, ...) are marked __noinline so the
 * verifier checks them once each. Here they become file-static: the harness object is linked
 * into every test binary and must export nothing but pgh_* (and no dbtap_* that could clash
 * with libdbtap.a).
 */
#ifndef __noinline
#define __noinline static __attribute__((noinline, unused))
#endif

#ifndef BPF_ANY
#define BPF_ANY	    0 /* create or update */
#define BPF_NOEXIST 1 /* create only */
#define BPF_EXIST   2 /* update only */
#endif

#include "bpf/dbtap.h"
#include "bpf/capture.h"

/* ---- maps ---- */

enum shim_map_type {
	SHIM_MAP_HASH,
	SHIM_MAP_LRU_HASH, /* behaves as SHIM_MAP_HASH: no eviction */
	SHIM_MAP_ARRAY,
	SHIM_MAP_PERCPU_ARRAY, /* one CPU */
};

/* One hash map element; the key (padded to 8 bytes) then the value follow in data[]. */
struct shim_elem {
	struct shim_elem *bucket_next;
	struct shim_elem *prev; /* insertion order, for iteration */
	struct shim_elem *next;
	__u64 data[];
};

#define SHIM_HASH_BUCKETS 1024 /* a power of two */

struct shim_map {
	const char *name;
	enum shim_map_type type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries; /* from the kernel's map definition */
	__u32 capacity;	   /* limit on entries, <= max_entries (shim_map_reset: max) */
	__u32 count;	   /* hash maps: entries present */
	struct shim_elem **buckets;
	struct shim_elem *first;
	struct shim_elem *last;
	__u8 *array; /* arrays: max_entries values of shim_value_stride() bytes */
};

static inline __u32 shim_round8(__u32 n)
{
	return (n + 7) & ~7u;
}

static inline __u32 shim_value_stride(const struct shim_map *m)
{
	return shim_round8(m->value_size);
}

static inline void *shim_elem_key(struct shim_elem *e)
{
	return e->data;
}

static inline void *shim_elem_value(const struct shim_map *m, struct shim_elem *e)
{
	return (__u8 *)e->data + shim_round8(m->key_size);
}

static inline __u32 shim_key_hash(const struct shim_map *m, const void *key)
{
	const __u8 *k = key;
	__u64 h = DBTAP_FNV64_OFFSET;
	__u32 i;

	for (i = 0; i < m->key_size; i++)
		h = (h ^ k[i]) * DBTAP_FNV64_PRIME;
	return (__u32)(h ^ (h >> 32)) & (SHIM_HASH_BUCKETS - 1);
}

/* Storage is allocated on first use; NULL (and the caller fails) when memory is short. */
static inline int shim_map_alloc(struct shim_map *m)
{
	if (m->type == SHIM_MAP_HASH || m->type == SHIM_MAP_LRU_HASH) {
		if (!m->buckets)
			m->buckets = calloc(SHIM_HASH_BUCKETS, sizeof(*m->buckets));
		return m->buckets ? 0 : -ENOMEM;
	}
	if (!m->array)
		m->array = calloc(m->max_entries, shim_value_stride(m));
	return m->array ? 0 : -ENOMEM;
}

static inline struct shim_elem *shim_hash_find(struct shim_map *m, const void *key)
{
	struct shim_elem *e;

	if (!m->buckets)
		return NULL;
	for (e = m->buckets[shim_key_hash(m, key)]; e; e = e->bucket_next)
		if (memcmp(shim_elem_key(e), key, m->key_size) == 0)
			return e;
	return NULL;
}

static inline void shim_hash_unlink(struct shim_map *m, struct shim_elem *e)
{
	struct shim_elem **pp = &m->buckets[shim_key_hash(m, shim_elem_key(e))];

	while (*pp != e)
		pp = &(*pp)->bucket_next;
	*pp = e->bucket_next;
	if (e->prev)
		e->prev->next = e->next;
	else
		m->first = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		m->last = e->prev;
	m->count--;
	free(e);
}

/* Empty the map (hash: free every element; array: zero every value), capacity back to max. */
static inline void shim_map_reset(struct shim_map *m)
{
	while (m->first)
		shim_hash_unlink(m, m->first);
	if (m->array)
		memset(m->array, 0, (size_t)m->max_entries * shim_value_stride(m));
	m->capacity = m->max_entries;
}

/* Release all memory (the map is usable again afterwards). */
static inline void shim_map_free(struct shim_map *m)
{
	shim_map_reset(m);
	free(m->buckets);
	m->buckets = NULL;
	free(m->array);
	m->array = NULL;
}

static inline void *bpf_map_lookup_elem(struct shim_map *m, const void *key)
{
	struct shim_elem *e;
	__u32 idx;

	if (m->type == SHIM_MAP_ARRAY || m->type == SHIM_MAP_PERCPU_ARRAY) {
		memcpy(&idx, key, sizeof(idx));
		if (idx >= m->max_entries || shim_map_alloc(m))
			return NULL;
		return m->array + (size_t)idx * shim_value_stride(m);
	}
	e = shim_hash_find(m, key);
	return e ? shim_elem_value(m, e) : NULL;
}

static inline long bpf_map_update_elem(struct shim_map *m, const void *key, const void *value,
				       __u64 flags)
{
	struct shim_elem *e;
	__u32 idx, b;

	if (flags > BPF_EXIST)
		return -EINVAL;
	if (shim_map_alloc(m))
		return -ENOMEM;
	if (m->type == SHIM_MAP_ARRAY || m->type == SHIM_MAP_PERCPU_ARRAY) {
		memcpy(&idx, key, sizeof(idx));
		if (idx >= m->max_entries)
			return -E2BIG;
		if (flags == BPF_NOEXIST)
			return -EEXIST;
		memmove(m->array + (size_t)idx * shim_value_stride(m), value, m->value_size);
		return 0;
	}
	e = shim_hash_find(m, key);
	if (e) {
		if (flags == BPF_NOEXIST)
			return -EEXIST;
		memmove(shim_elem_value(m, e), value, m->value_size);
		return 0;
	}
	if (flags == BPF_EXIST)
		return -ENOENT;
	if (m->count >= m->capacity)
		return -E2BIG;
	e = calloc(1, sizeof(*e) + shim_round8(m->key_size) + shim_value_stride(m));
	if (!e)
		return -ENOMEM;
	memcpy(shim_elem_key(e), key, m->key_size);
	memcpy(shim_elem_value(m, e), value, m->value_size);
	b = shim_key_hash(m, key);
	e->bucket_next = m->buckets[b];
	m->buckets[b] = e;
	e->prev = m->last;
	if (m->last)
		m->last->next = e;
	else
		m->first = e;
	m->last = e;
	m->count++;
	return 0;
}

static inline long bpf_map_delete_elem(struct shim_map *m, const void *key)
{
	struct shim_elem *e;

	if (m->type == SHIM_MAP_ARRAY || m->type == SHIM_MAP_PERCPU_ARRAY)
		return -EINVAL;
	e = shim_hash_find(m, key);
	if (!e)
		return -ENOENT;
	shim_hash_unlink(m, e);
	return 0;
}

#define SHIM_MAP(var, map_type, key_t, value_t, entries)       \
	static struct shim_map var __attribute__((unused)) = { \
		.name = #var,                                  \
		.type = map_type,                              \
		.key_size = sizeof(key_t),                     \
		.value_size = sizeof(value_t),                 \
		.max_entries = entries,                        \
		.capacity = entries,                           \
	}

/* The maps of bpf/capture.bpf.c, same names, key/value types and sizes. */
#define SHIM_PID_BITMAP_WORDS (4194304 / 64) /* PID_BITMAP_WORDS in bpf/pid_bitmap.bpf.h */
SHIM_MAP(tracked, SHIM_MAP_ARRAY, __u32, __u64, SHIM_PID_BITMAP_WORDS);
SHIM_MAP(procs, SHIM_MAP_HASH, __u32, struct dbtap_proc, 65536);
SHIM_MAP(conns, SHIM_MAP_LRU_HASH, __u64, struct conn_state, 32768);
SHIM_MAP(stmts, SHIM_MAP_LRU_HASH, struct stmt_key, struct stmt_val, 65536);
SHIM_MAP(texts_seen, SHIM_MAP_LRU_HASH, __u64, __u8, 65536);
SHIM_MAP(aggs, SHIM_MAP_HASH, struct dbtap_agg_key, struct dbtap_agg_val, 16384);
SHIM_MAP(errs, SHIM_MAP_HASH, struct dbtap_err_key, __u64, 16384);
SHIM_MAP(counters, SHIM_MAP_PERCPU_ARRAY, __u32, __u64, DBTAP_CNT_MAX);
SHIM_MAP(scratches, SHIM_MAP_PERCPU_ARRAY, __u32, struct scratch, 1);
SHIM_MAP(agg_zero, SHIM_MAP_ARRAY, __u32, struct dbtap_agg_val, 1);
SHIM_MAP(conn_zero, SHIM_MAP_ARRAY, __u32, struct conn_state, 1);
SHIM_MAP(reasms, SHIM_MAP_LRU_HASH, __u64, struct reasm, 1024);
SHIM_MAP(reasm_zero, SHIM_MAP_ARRAY, __u32, struct reasm, 1);

static struct shim_map *const shim_all_maps[] __attribute__((unused)) = {
	&tracked,  &procs,     &conns,	  &stmts,     &texts_seen, &aggs,	&errs,
	&counters, &scratches, &agg_zero, &conn_zero, &reasms,	   &reasm_zero,
};

/* ---- ring buffer ---- */

#define SHIM_RB_HDR  8	  /* BPF_RINGBUF_HDR_SZ: each record's header in the kernel's ring */
#define SHIM_RB_FILL 0xa5 /* content of freshly reserved records */

/* One reserved record; the data handed to the program follows. */
struct shim_record {
	struct shim_record *next;
	__u32 size;
	bool submitted;
	bool discarded;
	__u64 data[];
};

struct shim_ringbuf {
	size_t capacity; /* bytes of records (headers included) it can hold */
	size_t used;
	unsigned int n; /* records reserved and not consumed */
	struct shim_record *first;
	struct shim_record *last;
};

static struct shim_ringbuf events __attribute__((unused)) = {.capacity = SIZE_MAX};

static inline size_t shim_record_cost(__u64 size)
{
	return SHIM_RB_HDR + shim_round8((__u32)size);
}

static inline void *bpf_ringbuf_reserve(struct shim_ringbuf *rb, __u64 size, __u64 flags)
{
	struct shim_record *r;
	size_t cost = shim_record_cost(size);

	if (flags || size > UINT32_MAX || cost > rb->capacity || rb->used > rb->capacity - cost)
		return NULL;
	r = malloc(sizeof(*r) + shim_round8((__u32)size));
	if (!r)
		return NULL;
	r->next = NULL;
	r->size = (__u32)size;
	r->submitted = false;
	r->discarded = false;
	memset(r->data, SHIM_RB_FILL, shim_round8((__u32)size));
	if (rb->last)
		rb->last->next = r;
	else
		rb->first = r;
	rb->last = r;
	rb->used += cost;
	rb->n++;
	return r->data;
}

static inline struct shim_record *shim_record_of(void *data)
{
	return (struct shim_record *)((__u8 *)data - offsetof(struct shim_record, data));
}

static inline void bpf_ringbuf_submit(void *data, __u64 flags)
{
	shim_record_of(data)->submitted = true;
}

static inline void bpf_ringbuf_discard(void *data, __u64 flags)
{
	shim_record_of(data)->discarded = true;
}

/* Consume every record: the ring is empty again. */
static inline void shim_ringbuf_consume(struct shim_ringbuf *rb)
{
	struct shim_record *r, *next;

	for (r = rb->first; r; r = next) {
		next = r->next;
		free(r);
	}
	rb->first = NULL;
	rb->last = NULL;
	rb->used = 0;
	rb->n = 0;
}

/* ---- helpers ---- */

#define SHIM_BPF_MAX_LOOPS (1u << 23) /* BPF_MAX_LOOPS in kernel/bpf/bpf_iter.c */

/* State the harness sets around each chunk. */
static __u64 shim_clock_ns; /* bpf_ktime_get_ns() */
static __u64 shim_pid_tgid; /* bpf_get_current_pid_tgid() */
static __u32 shim_prandom_state = 1;
static const __u8 *shim_user_lo; /* readable user memory: [lo, hi) */
static const __u8 *shim_user_hi;
static __u64 shim_user_faults; /* bpf_probe_read_user() calls outside it */
static __u64 shim_loop_calls;  /* bpf_loop() calls, for the curious */

static inline long bpf_probe_read_kernel(void *dst, __u32 size, const void *src)
{
	if (!src) {
		memset(dst, 0, size);
		return -EFAULT;
	}
	memmove(dst, src, size);
	return 0;
}

static inline long bpf_probe_read_user(void *dst, __u32 size, const void *src)
{
	const __u8 *p = src;

	if (!p || p < shim_user_lo || p > shim_user_hi || size > (size_t)(shim_user_hi - p)) {
		memset(dst, 0, size);
		shim_user_faults++;
		return -EFAULT;
	}
	memmove(dst, p, size);
	return 0;
}

static inline long bpf_loop(__u32 nr_loops, long (*callback_fn)(__u64 index, void *ctx), void *ctx,
			    __u64 flags)
{
	__u64 i;

	if (flags)
		return -EINVAL;
	if (nr_loops > SHIM_BPF_MAX_LOOPS)
		return -E2BIG;
	shim_loop_calls++;
	for (i = 0; i < nr_loops; i++)
		if (callback_fn(i, ctx))
			return (long)i + 1;
	return (long)i;
}

/* xorshift32: deterministic, so sampled runs repeat exactly. */
static inline __u32 bpf_get_prandom_u32(void)
{
	__u32 x = shim_prandom_state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	shim_prandom_state = x;
	return x;
}

static inline __u64 bpf_get_current_pid_tgid(void)
{
	return shim_pid_tgid;
}

static inline __u64 bpf_ktime_get_ns(void)
{
	return shim_clock_ns;
}

/* ---- rodata and bss of capture.bpf.c (const volatile there; set by the harness here) ---- */

#define SHIM_DEFAULT_SLOW_NS 100000000ULL /* cfg_slow_ns's default in capture.bpf.c */
#define SHIM_FIRST_EPOCH     1		  /* what userspace/loader.c sets before attaching */

static __u32 cfg_sample_rate __attribute__((unused));
static __u64 cfg_slow_ns __attribute__((unused)) = SHIM_DEFAULT_SLOW_NS;
static __u32 epoch __attribute__((unused)) = SHIM_FIRST_EPOCH;

#endif /* DBTAP_BPF_SHIM_H */
