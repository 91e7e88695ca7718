// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pg_harness.c - runs the kernel's PostgreSQL decoder in userspace: the shim's maps and
 * helpers, then bpf/capture_core.bpf.h and probes/postgresql/pg.bpf.h compiled as they are,
 * driven like on_chunk() and conn_get() of bpf/capture.bpf.c drive them: through the same
 * conn_lookup(), chunk_begin() and conn_close(); only reading the struct sock (addresses,
 * identity) and the user memory copy are the harness's own. Plus accessors, invariant checks
 * and snapshots for tests and fuzzers.
 *
 * The include order is capture.bpf.c's: dbtap.h, capture.h, the maps and globals (here the
 * shim), then capture_core.bpf.h, then the decoders.
 */
#include <stdio.h>

#include "tests/lib/bpf_shim.h"

#include "bpf/capture_core.bpf.h"
#include "bpf/decoders.bpf.h"

#include "tests/lib/pg_harness.h"

#define PGH_LOOPBACK_ADDR {127, 0, 0, 1}

/* A connection the test opened: its backend process (tgid), slot (peer port) and peer
 * identity (conn_ident(): changes when the socket address is reused by a new connection). */
struct pgh_conn_reg {
	__u64 sk;
	__u64 ident;
	__u32 tgid;
	__u32 generation;
	bool used;
};

static struct {
	struct pgh_conn_reg regs[PGH_MAX_CONNS];
	bool user_buf;	     /* pass user_buf with each chunk */
	__u8 stale_byte;     /* scratch content past the current chunk's copy */
	__u32 scratch_dirty; /* scratch bytes [0, dirty) may hold chunk data */
} pgh = {.user_buf = true, .stale_byte = PGH_DEFAULT_STALE_BYTE};

/* ---- setup ---- */

static struct scratch *pgh_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratches, &zero);
}

static void pgh_fill_stale(__u32 from)
{
	struct scratch *s = pgh_scratch();

	if (s && from < sizeof(s->buf))
		memset(s->buf + from, pgh.stale_byte, sizeof(s->buf) - from);
}

void pgh_reset(void)
{
	size_t i;

	for (i = 0; i < sizeof(shim_all_maps) / sizeof(shim_all_maps[0]); i++)
		shim_map_reset(shim_all_maps[i]);
	shim_ringbuf_consume(&events);
	events.capacity = SIZE_MAX;
	memset(pgh.regs, 0, sizeof(pgh.regs));
	pgh.user_buf = true;
	pgh.stale_byte = PGH_DEFAULT_STALE_BYTE;
	pgh.scratch_dirty = 0;
	pgh_fill_stale(0);
	cfg_sample_rate = 0;
	cfg_slow_ns = SHIM_DEFAULT_SLOW_NS;
	epoch = SHIM_FIRST_EPOCH;
	shim_clock_ns = 0;
	shim_pid_tgid = 0;
	shim_prandom_state = 1;
	shim_user_lo = NULL;
	shim_user_hi = NULL;
	shim_user_faults = 0;
	shim_loop_calls = 0;
}

void pgh_free(void)
{
	size_t i;

	for (i = 0; i < sizeof(shim_all_maps) / sizeof(shim_all_maps[0]); i++)
		shim_map_free(shim_all_maps[i]);
	shim_ringbuf_consume(&events);
	memset(pgh.regs, 0, sizeof(pgh.regs));
	pgh.scratch_dirty = 0;
}

void pgh_set_sampling(__u32 sample_rate, __u64 slow_ns)
{
	cfg_sample_rate = sample_rate;
	cfg_slow_ns = slow_ns;
}

void pgh_set_epoch(__u32 e)
{
	epoch = e;
}

static struct shim_map *pgh_map_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(shim_all_maps) / sizeof(shim_all_maps[0]); i++)
		if (strcmp(shim_all_maps[i]->name, name) == 0)
			return shim_all_maps[i];
	return NULL;
}

int pgh_set_map_capacity(const char *name, __u32 entries)
{
	struct shim_map *m = pgh_map_by_name(name);

	if (!m)
		return -ENOENT;
	if (entries > m->max_entries || m->type == SHIM_MAP_ARRAY ||
	    m->type == SHIM_MAP_PERCPU_ARRAY)
		return -EINVAL;
	m->capacity = entries;
	return 0;
}

void pgh_set_ringbuf_capacity(size_t bytes)
{
	events.capacity = bytes;
}

void pgh_set_user_buf(bool given)
{
	pgh.user_buf = given;
}

void pgh_set_stale_byte(__u8 value)
{
	pgh.stale_byte = value;
	pgh_fill_stale(pgh.scratch_dirty);
}

/* ---- connections: conn_get() of bpf/capture.bpf.c ---- */

static struct pgh_conn_reg *pgh_reg_find(__u64 sk)
{
	unsigned int i;

	for (i = 0; i < PGH_MAX_CONNS; i++)
		if (pgh.regs[i].used && pgh.regs[i].sk == sk)
			return &pgh.regs[i];
	return NULL;
}

/* addr_from_sock() for a TCP connection over loopback. */
static void pgh_addr(struct conn_state *c, const struct pgh_conn_reg *r)
{
	static const __u8 loopback[] = PGH_LOOPBACK_ADDR;

	memset(&c->peer, 0, sizeof(c->peer));
	memset(&c->local, 0, sizeof(c->local));
	c->peer.family = AF_INET;
	c->local.family = AF_INET;
	memcpy(c->peer.addr, loopback, sizeof(loopback));
	memcpy(c->local.addr, loopback, sizeof(loopback));
	c->peer.port = PGH_PEER_PORT_BASE + (__u16)(r - pgh.regs);
	c->local.port = PGH_LOCAL_PORT;
}

static struct conn_state *pgh_conn_get(const struct pgh_conn_reg *r, bool create)
{
	bool fresh;
	struct conn_state *c = conn_lookup(r->sk, r->ident, r->tgid, create, &fresh);

	if (c && fresh)
		pgh_addr(c, r); /* what conn_get() reads from the struct sock */
	return c;
}

int pgh_conn_open(__u64 sk, __u32 instance, __u32 db_id, __u32 user_id)
{
	return pgh_conn_open_system(sk, instance, DBTAP_SYS_POSTGRESQL, db_id, user_id);
}

int pgh_conn_open_system(__u64 sk, __u32 instance, __u16 system, __u32 db_id, __u32 user_id)
{
	struct dbtap_proc proc = {
		.instance = instance,
		.system = system,
		.db_id = db_id,
		.user_id = user_id,
	};
	struct pgh_conn_reg *r;
	unsigned int i;

	if (!sk)
		return -EINVAL; /* 0 marks a fresh conn_state */
	r = pgh_reg_find(sk);
	for (i = 0; !r && i < PGH_MAX_CONNS; i++)
		if (!pgh.regs[i].used)
			r = &pgh.regs[i];
	if (!r)
		return -ENOSPC;
	if (!r->used)
		r->generation = 0;
	r->used = true;
	r->sk = sk;
	r->generation++; /* a new connection: a new peer, whatever the socket address */
	r->ident = ((__u64)(PGH_PEER_PORT_BASE + (r - pgh.regs)) << 48) ^ r->generation;
	r->tgid = instance + 1 + (__u32)(r - pgh.regs); /* one backend per connection */
	if (bpf_map_update_elem(&procs, &r->tgid, &proc, BPF_ANY))
		return -E2BIG;
	if (!bpf_map_lookup_elem(&procs, &r->tgid))
		return -ENOENT;
	shim_pid_tgid = ((__u64)r->tgid << 32) | r->tgid;
	return pgh_conn_get(r, true) ? 0 : -E2BIG;
}

/* ---- chunks: on_chunk() of bpf/capture.bpf.c ---- */

int pgh_chunk(__u64 sk, enum io_dir dir, const void *bytes, __u32 len, __u64 now_ns)
{
	struct pgh_conn_reg *r = pgh_reg_find(sk);
	struct conn_state *c;
	struct scratch *s;
	__u32 want;

	if (!r)
		return -ENOENT;
	if (len && !bytes)
		return -EINVAL;
	shim_clock_ns = now_ns;
	shim_pid_tgid = ((__u64)r->tgid << 32) | r->tgid;
	count(DBTAP_CNT_EVENTS);
	c = pgh_conn_get(r, len > 0);
	if (!c)
		return 0;
	s = chunk_begin(sk, r->tgid, dir);
	if (!s)
		return 0;
	if (len == 0) { /* end of stream: the client went away */
		if (dir == IO_RECV)
			conn_close(s, c);
		return 0;
	}
	if (dir == IO_RECV)
		c->bytes_in += len;
	else
		c->bytes_out += len;
	if (c->phase == CONN_PHASE_IGNORE)
		return 0;
	s->ch.total = len;
	/* copy_chunk() for one user buffer; the user memory is exactly the chunk */
	shim_user_lo = bytes;
	shim_user_hi = (const __u8 *)bytes + len;
	want = len < SCRATCH_SIZE ? len : SCRATCH_SIZE;
	s->ch.avail = bpf_probe_read_user(s->buf, want, bytes) ? 0 : want;
	if (pgh.scratch_dirty > want)
		memset(s->buf + want, pgh.stale_byte, pgh.scratch_dirty - want);
	pgh.scratch_dirty = want;
	if (!s->ch.avail) {
		count(DBTAP_CNT_DROP_READ);
		goto out;
	}
	s->ch.user_buf = pgh.user_buf ? (__u64)(uintptr_t)bytes : 0;
	decode_chunk(s, c);
out:
	shim_user_lo = NULL;
	shim_user_hi = NULL;
	return 0;
}

/* ---- accessors ---- */

const struct conn_state *pgh_conn(__u64 sk)
{
	return bpf_map_lookup_elem(&conns, &sk);
}

__u64 pgh_counter(enum dbtap_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);

	return v ? *v : 0;
}

unsigned int pgh_map_count(const char *name)
{
	struct shim_map *m = pgh_map_by_name(name);

	return m ? m->count : 0;
}

static struct shim_elem *pgh_elem_at(struct shim_map *m, unsigned int i)
{
	struct shim_elem *e;

	for (e = m->first; e && i; e = e->next)
		i--;
	return e;
}

const struct dbtap_agg_val *pgh_agg_get(const struct dbtap_agg_key *key)
{
	return bpf_map_lookup_elem(&aggs, key);
}

unsigned int pgh_agg_count(void)
{
	return aggs.count;
}

int pgh_agg_at(unsigned int i, struct dbtap_agg_key *ret_key, const struct dbtap_agg_val **ret_val)
{
	struct shim_elem *e = pgh_elem_at(&aggs, i);

	if (!e)
		return -ENOENT;
	memcpy(ret_key, shim_elem_key(e), sizeof(*ret_key));
	*ret_val = shim_elem_value(&aggs, e);
	return 0;
}

__u64 pgh_err_get(const struct dbtap_agg_key *key, const char *status)
{
	struct dbtap_err_key ek;
	__u64 *n;

	memset(&ek, 0, sizeof(ek));
	ek.agg = *key;
	memcpy(ek.status, status, strnlen(status, sizeof(ek.status)));
	n = bpf_map_lookup_elem(&errs, &ek);
	return n ? *n : 0;
}

unsigned int pgh_err_count(void)
{
	return errs.count;
}

int pgh_err_at(unsigned int i, struct dbtap_err_key *ret_key, __u64 *ret_n)
{
	struct shim_elem *e = pgh_elem_at(&errs, i);

	if (!e)
		return -ENOENT;
	memcpy(ret_key, shim_elem_key(e), sizeof(*ret_key));
	memcpy(ret_n, shim_elem_value(&errs, e), sizeof(*ret_n));
	return 0;
}

static bool pgh_record_visible(const struct shim_record *r)
{
	return r->submitted && !r->discarded;
}

unsigned int pgh_event_count(void)
{
	const struct shim_record *r;
	unsigned int n = 0;

	for (r = events.first; r; r = r->next)
		n += pgh_record_visible(r);
	return n;
}

const struct dbtap_ev_hdr *pgh_event_at(unsigned int i)
{
	const struct shim_record *r;

	for (r = events.first; r; r = r->next) {
		if (!pgh_record_visible(r))
			continue;
		if (!i--)
			return (const struct dbtap_ev_hdr *)r->data;
	}
	return NULL;
}

const void *pgh_event_of_type(__u16 type, unsigned int i)
{
	const struct dbtap_ev_hdr *h;
	unsigned int k;

	for (k = 0; (h = pgh_event_at(k)); k++) {
		if (h->type != type)
			continue;
		if (!i--)
			return h;
	}
	return NULL;
}

unsigned int pgh_event_count_type(__u16 type)
{
	unsigned int n = 0;

	while (pgh_event_of_type(type, n))
		n++;
	return n;
}

const struct dbtap_ev_text *pgh_text_find(__u64 query_hash)
{
	const struct dbtap_ev_text *t;
	unsigned int i;

	for (i = 0; (t = pgh_event_of_type(DBTAP_EV_QUERY_TEXT, i)); i++)
		if (t->query_hash == query_hash)
			return t;
	return NULL;
}

void pgh_events_consume(void)
{
	shim_ringbuf_consume(&events);
}

__u64 pgh_user_faults(void)
{
	return shim_user_faults;
}

/* ---- invariants ---- */

#define PGH_FAIL(...)                                        \
	do {                                                 \
		if (why && why_len)                          \
			snprintf(why, why_len, __VA_ARGS__); \
		return -EPROTO;                              \
	} while (0)

static size_t pgh_record_size(__u16 type)
{
	switch (type) {
	case DBTAP_EV_QUERY_TEXT:
		return sizeof(struct dbtap_ev_text);
	case DBTAP_EV_SAMPLE:
		return sizeof(struct dbtap_ev_sample);
	case DBTAP_EV_CONN_OPEN:
	case DBTAP_EV_CONN_CLOSE:
		return sizeof(struct dbtap_ev_conn);
	case DBTAP_EV_PROC_EXEC:
	case DBTAP_EV_PROC_EXIT:
		return sizeof(struct dbtap_ev_proc);
	}
	return 0;
}

static int pgh_check_frame(const struct frame_state *fs, const char *dir, __u64 sk, char *why,
			   size_t why_len)
{
	if (fs->reasm > FRAME_REASM_START)
		PGH_FAIL("conn %#llx %s: reasm %u", (unsigned long long)sk, dir, fs->reasm);
	if (fs->skip > PG_MAX_MSG_LEN)
		PGH_FAIL("conn %#llx %s: skip %u > %u", (unsigned long long)sk, dir, fs->skip,
			 PG_MAX_MSG_LEN);
	return 0;
}

static int pgh_check_conns(char *why, size_t why_len)
{
	struct shim_elem *e;

	for (e = conns.first; e; e = e->next) {
		const struct conn_state *c = shim_elem_value(&conns, e);
		__u64 key;

		memcpy(&key, shim_elem_key(e), sizeof(key));
		if (c->sk != key)
			PGH_FAIL("conn %#llx: sk field %#llx", (unsigned long long)key,
				 (unsigned long long)c->sk);
		if ((__u8)(c->tail - c->head) > CONN_MAX_OPS)
			PGH_FAIL("conn %#llx: %u ops in flight (head %u tail %u) > %u",
				 (unsigned long long)key, (__u8)(c->tail - c->head), c->head,
				 c->tail, CONN_MAX_OPS);
		if (c->phase > PG_PHASE_NORMAL)
			PGH_FAIL("conn %#llx: phase %u", (unsigned long long)key, c->phase);
		if (c->pg.cur_err > 1)
			PGH_FAIL("conn %#llx: cur_err %u", (unsigned long long)key, c->pg.cur_err);
		if (pgh_check_frame(&c->req, "request", key, why, why_len) ||
		    pgh_check_frame(&c->resp, "response", key, why, why_len))
			return -EPROTO;
	}
	return 0;
}

static int pgh_check_aggs(char *why, size_t why_len)
{
	const __u16 known = DBTAP_AGG_F_UNKNOWN_STMT | DBTAP_AGG_F_EXTENDED;
	__u64 ops = 0, hist_total;
	struct shim_elem *e;
	__u32 i;

	for (e = aggs.first; e; e = e->next) {
		const struct dbtap_agg_key *k = shim_elem_key(e);
		const struct dbtap_agg_val *v = shim_elem_value(&aggs, e);
		const __typeof__(v->win[0]) *w = &v->win[epoch & 1];
		unsigned long long h = k->query_hash;

		ops += v->count;
		if (!k->query_hash)
			PGH_FAIL("series with fingerprint 0");
		if (k->system != DBTAP_SYS_POSTGRESQL || (k->flags & ~known) ||
		    ((k->flags & DBTAP_AGG_F_UNKNOWN_STMT) && !(k->flags & DBTAP_AGG_F_EXTENDED)))
			PGH_FAIL("series %#llx: system %u flags %#x", h, k->system, k->flags);
		if (v->errors > v->count)
			PGH_FAIL("series %#llx: errors %llu > count %llu", h,
				 (unsigned long long)v->errors, (unsigned long long)v->count);
		for (hist_total = 0, i = 0; i < DBTAP_HIST_BUCKETS; i++)
			hist_total += v->hist[i];
		if ((__u32)hist_total != (__u32)v->count)
			PGH_FAIL("series %#llx: histogram holds %llu, count %llu", h,
				 (unsigned long long)hist_total, (unsigned long long)v->count);
		if (w->epoch == epoch && w->min_ns > w->max_ns)
			PGH_FAIL("series %#llx: min %llu > max %llu", h,
				 (unsigned long long)w->min_ns, (unsigned long long)w->max_ns);
		if (w->epoch == epoch && v->sum_ns < w->max_ns)
			PGH_FAIL("series %#llx: sum %llu < max %llu", h,
				 (unsigned long long)v->sum_ns, (unsigned long long)w->max_ns);
	}
	if (ops != pgh_counter(DBTAP_CNT_OPS))
		PGH_FAIL("OPS counter %llu, series counts add up to %llu",
			 (unsigned long long)pgh_counter(DBTAP_CNT_OPS), (unsigned long long)ops);
	return 0;
}

static int pgh_check_errs(char *why, size_t why_len)
{
	struct shim_elem *e, *f;

	for (e = errs.first; e; e = e->next) {
		const struct dbtap_err_key *k = shim_elem_key(e);
		const struct dbtap_agg_val *v = bpf_map_lookup_elem(&aggs, &k->agg);
		__u64 sum = 0;
		__u32 i;

		if (!v)
			PGH_FAIL("error count %.5s of a series not in aggs", k->status);
		for (i = PG_SQLSTATE_LEN; i < DBTAP_STATUS_LEN; i++)
			if (k->status[i])
				PGH_FAIL("status not NUL padded after %u bytes", PG_SQLSTATE_LEN);
		for (f = errs.first; f; f = f->next) {
			const struct dbtap_err_key *fk = shim_elem_key(f);

			if (memcmp(&fk->agg, &k->agg, sizeof(k->agg)) == 0)
				sum += *(const __u64 *)shim_elem_value(&errs, f);
		}
		if (sum > v->errors || (sum != v->errors && !pgh_counter(DBTAP_CNT_DROP_ERR_FULL)))
			PGH_FAIL("series %#llx: error codes add up to %llu, errors %llu",
				 (unsigned long long)k->agg.query_hash, (unsigned long long)sum,
				 (unsigned long long)v->errors);
	}
	return 0;
}

static int pgh_check_records(char *why, size_t why_len)
{
	const __u16 text_flags = DBTAP_TEXT_F_TRUNCATED | DBTAP_TEXT_F_STMT_NAME;
	const struct shim_record *r;
	unsigned int texts = 0, samples = 0;

	for (r = events.first; r; r = r->next) {
		const struct dbtap_ev_hdr *h = (const void *)r->data;

		if (!r->submitted && !r->discarded)
			PGH_FAIL("ring record reserved and never submitted");
		if (!pgh_record_visible(r))
			continue;
		if (h->size != r->size || pgh_record_size(h->type) != r->size)
			PGH_FAIL("ring record type %u: size %u, reserved %u", h->type, h->size,
				 r->size);
		if (h->type == DBTAP_EV_QUERY_TEXT) {
			const struct dbtap_ev_text *t = (const void *)h;

			texts++;
			if (t->text_len > DBTAP_TEXT_MAX || (t->flags & ~text_flags) ||
			    t->system != DBTAP_SYS_POSTGRESQL || !t->query_hash)
				PGH_FAIL("text record: len %u flags %#x system %u hash %#llx",
					 t->text_len, t->flags, t->system,
					 (unsigned long long)t->query_hash);
		} else if (h->type == DBTAP_EV_CONN_OPEN || h->type == DBTAP_EV_CONN_CLOSE) {
			const struct dbtap_ev_conn *c = (const void *)h;

			if (c->startup_len > DBTAP_STARTUP_MAX)
				PGH_FAIL("conn record: startup_len %u", c->startup_len);
		} else if (h->type == DBTAP_EV_SAMPLE) {
			const struct dbtap_ev_sample *sm = (const void *)h;

			samples++;
			if (!sm->reasons || sm->end_ns < sm->start_ns)
				PGH_FAIL("sample: reasons %#x, start %llu end %llu", sm->reasons,
					 (unsigned long long)sm->start_ns,
					 (unsigned long long)sm->end_ns);
		}
	}
	if (texts > pgh_counter(DBTAP_CNT_TEXTS) || samples > pgh_counter(DBTAP_CNT_SAMPLES))
		PGH_FAIL("ring holds %u texts / %u samples, counters say %llu / %llu", texts,
			 samples, (unsigned long long)pgh_counter(DBTAP_CNT_TEXTS),
			 (unsigned long long)pgh_counter(DBTAP_CNT_SAMPLES));
	return 0;
}

int pgh_check_invariants(char *why, size_t why_len)
{
	if (pgh_check_conns(why, why_len) || pgh_check_aggs(why, why_len) ||
	    pgh_check_errs(why, why_len) || pgh_check_records(why, why_len))
		return -EPROTO;
	if (shim_user_faults)
		PGH_FAIL("%llu user memory reads outside the chunk",
			 (unsigned long long)shim_user_faults);
	return 0;
}

/* ---- snapshots ---- */

struct pgh_snap_agg {
	struct dbtap_agg_key key;
	struct dbtap_agg_val val;
};

struct pgh_snap_err {
	struct dbtap_err_key key;
	__u64 n;
};

struct pgh_snapshot {
	__u64 counters[DBTAP_CNT_MAX];
	unsigned int n_aggs, n_errs, n_records;
	struct pgh_snap_agg *aggs;
	struct pgh_snap_err *errs;
	__u8 **records; /* copies, bytes past the used text/startup zeroed */
	__u32 *record_sizes;
};

static int pgh_cmp_agg(const void *a, const void *b)
{
	return memcmp(&((const struct pgh_snap_agg *)a)->key,
		      &((const struct pgh_snap_agg *)b)->key, sizeof(struct dbtap_agg_key));
}

static int pgh_cmp_err(const void *a, const void *b)
{
	return memcmp(&((const struct pgh_snap_err *)a)->key,
		      &((const struct pgh_snap_err *)b)->key, sizeof(struct dbtap_err_key));
}

/*
 * Zero what has no defined value: text/startup bytes past their length, and the totals of an
 * open record (bytes_in, bytes_out, ops are "close only" in dbtap.h; at open they are
 * whatever the first chunk happened to hold, so they differ between chunkings).
 */
static void pgh_normalize_record(__u8 *rec)
{
	struct dbtap_ev_hdr *h = (void *)rec;

	if (h->type == DBTAP_EV_QUERY_TEXT) {
		struct dbtap_ev_text *t = (void *)rec;

		if (t->text_len <= DBTAP_TEXT_MAX)
			memset(t->text + t->text_len, 0, DBTAP_TEXT_MAX - t->text_len);
	} else if (h->type == DBTAP_EV_CONN_OPEN || h->type == DBTAP_EV_CONN_CLOSE) {
		struct dbtap_ev_conn *c = (void *)rec;

		if (c->startup_len <= DBTAP_STARTUP_MAX)
			memset(c->startup + c->startup_len, 0, DBTAP_STARTUP_MAX - c->startup_len);
		if (h->type == DBTAP_EV_CONN_OPEN) {
			c->bytes_in = 0;
			c->bytes_out = 0;
			c->ops = 0;
		}
	}
}

void pgh_snapshot_free(struct pgh_snapshot *snap)
{
	unsigned int i;

	if (!snap)
		return;
	for (i = 0; i < snap->n_records; i++)
		free(snap->records[i]);
	free(snap->records);
	free(snap->record_sizes);
	free(snap->aggs);
	free(snap->errs);
	free(snap);
}

struct pgh_snapshot *pgh_snapshot_take(void)
{
	struct pgh_snapshot *snap = calloc(1, sizeof(*snap));
	const struct shim_record *r;
	struct shim_elem *e;
	unsigned int i, n;

	if (!snap)
		return NULL;
	for (i = 0; i < DBTAP_CNT_MAX; i++)
		snap->counters[i] = pgh_counter(i);
	snap->aggs = calloc(aggs.count + 1, sizeof(*snap->aggs));
	snap->errs = calloc(errs.count + 1, sizeof(*snap->errs));
	n = pgh_event_count();
	snap->records = calloc(n + 1, sizeof(*snap->records));
	snap->record_sizes = calloc(n + 1, sizeof(*snap->record_sizes));
	if (!snap->aggs || !snap->errs || !snap->records || !snap->record_sizes)
		goto fail;
	for (e = aggs.first; e; e = e->next, snap->n_aggs++) {
		memcpy(&snap->aggs[snap->n_aggs].key, shim_elem_key(e),
		       sizeof(struct dbtap_agg_key));
		memcpy(&snap->aggs[snap->n_aggs].val, shim_elem_value(&aggs, e),
		       sizeof(struct dbtap_agg_val));
	}
	qsort(snap->aggs, snap->n_aggs, sizeof(*snap->aggs), pgh_cmp_agg);
	for (e = errs.first; e; e = e->next, snap->n_errs++) {
		memcpy(&snap->errs[snap->n_errs].key, shim_elem_key(e),
		       sizeof(struct dbtap_err_key));
		memcpy(&snap->errs[snap->n_errs].n, shim_elem_value(&errs, e), sizeof(__u64));
	}
	qsort(snap->errs, snap->n_errs, sizeof(*snap->errs), pgh_cmp_err);
	for (r = events.first; r; r = r->next) {
		if (!pgh_record_visible(r))
			continue;
		snap->records[snap->n_records] = malloc(r->size);
		if (!snap->records[snap->n_records])
			goto fail;
		memcpy(snap->records[snap->n_records], r->data, r->size);
		pgh_normalize_record(snap->records[snap->n_records]);
		snap->record_sizes[snap->n_records++] = r->size;
	}
	return snap;
fail:
	pgh_snapshot_free(snap);
	return NULL;
}

static const char *const pgh_counter_names[DBTAP_CNT_MAX] = {
	[DBTAP_CNT_EVENTS] = "EVENTS",
	[DBTAP_CNT_OPS] = "OPS",
	[DBTAP_CNT_SAMPLES] = "SAMPLES",
	[DBTAP_CNT_TEXTS] = "TEXTS",
	[DBTAP_CNT_CONN_OPEN] = "CONN_OPEN",
	[DBTAP_CNT_CONN_CLOSE] = "CONN_CLOSE",
	[DBTAP_CNT_UNDECODABLE] = "UNDECODABLE",
	[DBTAP_CNT_ENCRYPTED] = "ENCRYPTED",
	[DBTAP_CNT_DROP_SAMPLE_RB] = "DROP_SAMPLE_RB",
	[DBTAP_CNT_DROP_TEXT_RB] = "DROP_TEXT_RB",
	[DBTAP_CNT_DROP_CONN_RB] = "DROP_CONN_RB",
	[DBTAP_CNT_DROP_PROC_RB] = "DROP_PROC_RB",
	[DBTAP_CNT_DROP_AGG_FULL] = "DROP_AGG_FULL",
	[DBTAP_CNT_DROP_ERR_FULL] = "DROP_ERR_FULL",
	[DBTAP_CNT_DROP_CONN_FULL] = "DROP_CONN_FULL",
	[DBTAP_CNT_DROP_STMT_FULL] = "DROP_STMT_FULL",
	[DBTAP_CNT_DROP_PIPELINE] = "DROP_PIPELINE",
	[DBTAP_CNT_DROP_READ] = "DROP_READ",
	[DBTAP_CNT_DROP_SYSCALL] = "DROP_SYSCALL",
	[DBTAP_CNT_DROP_PROC_FULL] = "DROP_PROC_FULL",
	[DBTAP_CNT_DESYNC] = "DESYNC",
	[DBTAP_CNT_ABORTED] = "ABORTED",
};

static void pgh_describe_agg(const struct pgh_snap_agg *a, char *buf, size_t len)
{
	snprintf(buf, len,
		 "series hash %#llx flags %#x db %#x user %#x: count %llu errors %llu rows %llu "
		 "sum_ns %llu",
		 (unsigned long long)a->key.query_hash, a->key.flags, a->key.db_id, a->key.user_id,
		 (unsigned long long)a->val.count, (unsigned long long)a->val.errors,
		 (unsigned long long)a->val.rows, (unsigned long long)a->val.sum_ns);
}

static void pgh_describe_record(const __u8 *rec, char *buf, size_t len)
{
	const struct dbtap_ev_hdr *h = (const void *)rec;

	if (h->type == DBTAP_EV_QUERY_TEXT) {
		const struct dbtap_ev_text *t = (const void *)rec;

		snprintf(buf, len, "text hash %#llx flags %#x \"%.*s\"",
			 (unsigned long long)t->query_hash, t->flags,
			 t->text_len > 60 ? 60 : t->text_len, t->text);
	} else if (h->type == DBTAP_EV_CONN_OPEN || h->type == DBTAP_EV_CONN_CLOSE) {
		const struct dbtap_ev_conn *c = (const void *)rec;

		snprintf(buf, len,
			 "conn %s %#llx flags %#x db %#x user %#x in %llu out %llu ops %llu",
			 h->type == DBTAP_EV_CONN_OPEN ? "open" : "close",
			 (unsigned long long)c->conn_id, c->flags, c->db_id, c->user_id,
			 (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
			 (unsigned long long)c->ops);
	} else if (h->type == DBTAP_EV_SAMPLE) {
		const struct dbtap_ev_sample *sm = (const void *)rec;

		snprintf(buf, len, "sample hash %#llx reasons %#x rows %llu status \"%.5s\"",
			 (unsigned long long)sm->key.query_hash, sm->reasons,
			 (unsigned long long)sm->rows, sm->status);
	} else {
		snprintf(buf, len, "record type %u", h->type);
	}
}

int pgh_snapshot_diff(const struct pgh_snapshot *a, const struct pgh_snapshot *b, __u32 flags,
		      char *why, size_t why_len)
{
	char da[256], db[256];
	unsigned int i;

	if (!why || !why_len) {
		why = da;
		why_len = 0;
	}
#define PGH_DIFF(...)                                        \
	do {                                                 \
		if (why_len)                                 \
			snprintf(why, why_len, __VA_ARGS__); \
		return 1;                                    \
	} while (0)
	for (i = 0; i < DBTAP_CNT_MAX; i++) {
		if (i == DBTAP_CNT_EVENTS && (flags & PGH_DIFF_IGNORE_EVENTS_COUNTER))
			continue;
		if (a->counters[i] != b->counters[i])
			PGH_DIFF("counter %s: %llu vs %llu", pgh_counter_names[i],
				 (unsigned long long)a->counters[i],
				 (unsigned long long)b->counters[i]);
	}
	for (i = 0; i < a->n_aggs && i < b->n_aggs; i++) {
		if (memcmp(&a->aggs[i], &b->aggs[i], sizeof(a->aggs[i])) == 0)
			continue;
		pgh_describe_agg(&a->aggs[i], da, sizeof(da));
		pgh_describe_agg(&b->aggs[i], db, sizeof(db));
		PGH_DIFF("aggs[%u]: %s vs %s", i, da, db);
	}
	if (a->n_aggs != b->n_aggs) {
		pgh_describe_agg(a->n_aggs > b->n_aggs ? &a->aggs[i] : &b->aggs[i], da, sizeof(da));
		PGH_DIFF("%u vs %u series; first extra: %s", a->n_aggs, b->n_aggs, da);
	}
	for (i = 0; i < a->n_errs && i < b->n_errs; i++)
		if (memcmp(&a->errs[i], &b->errs[i], sizeof(a->errs[i])) != 0)
			PGH_DIFF("errs[%u]: %.5s x%llu vs %.5s x%llu", i, a->errs[i].key.status,
				 (unsigned long long)a->errs[i].n, b->errs[i].key.status,
				 (unsigned long long)b->errs[i].n);
	if (a->n_errs != b->n_errs)
		PGH_DIFF("%u vs %u error codes", a->n_errs, b->n_errs);
	for (i = 0; i < a->n_records && i < b->n_records; i++) {
		if (a->record_sizes[i] == b->record_sizes[i] &&
		    memcmp(a->records[i], b->records[i], a->record_sizes[i]) == 0)
			continue;
		pgh_describe_record(a->records[i], da, sizeof(da));
		pgh_describe_record(b->records[i], db, sizeof(db));
		PGH_DIFF("ring record %u: %s vs %s", i, da, db);
	}
	if (a->n_records != b->n_records) {
		pgh_describe_record(a->n_records > b->n_records ? a->records[i] : b->records[i], da,
				    sizeof(da));
		PGH_DIFF("%u vs %u ring records; first extra: %s", a->n_records, b->n_records, da);
	}
#undef PGH_DIFF
	return 0;
}
