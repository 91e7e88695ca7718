/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * capture_core.bpf.h - what every protocol decoder uses: counters, scratch access, events to
 * userspace and the in-kernel aggregation of finished operations (dbtap_complete).
 *
 * Included by bpf/capture.bpf.c after its maps, and by the userspace decoder harness
 * (tests/lib/bpf_shim.h) which provides the same map names and helpers, so the decoders' unit
 * tests and fuzzers run this exact code.
 */
#ifndef DBTAP_CAPTURE_CORE_BPF_H
#define DBTAP_CAPTURE_CORE_BPF_H

/* ---- small helpers ---- */

static __always_inline void count(enum dbtap_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);

	if (v)
		*v += 1;
}

/* x & mask, kept by the compiler even where it proves it redundant, for the verifier. */
static __always_inline __u32 bound(__u32 x, __u32 mask)
{
#ifdef __bpf__
	asm volatile("%0 &= %1" : "+r"(x) : "i"(mask));
	return x;
#else
	return x & mask;
#endif
}

static __always_inline __u8 sb(struct scratch *s, __u32 off)
{
	return s->buf[bound(off, 2 * SCRATCH_SIZE - 1)];
}

/* Big-endian 32 bits at @off: one load (the tail of buf keeps a masked offset + 4 inside). */
static __always_inline __u32 sb_be32(struct scratch *s, __u32 off)
{
	__u32 v;

	__builtin_memcpy(&v, &s->buf[bound(off, 2 * SCRATCH_SIZE - 1)], sizeof(v));
	return __builtin_bswap32(v);
}

/* ---- events to userspace ---- */

static __always_inline void ev_hdr(struct dbtap_ev_hdr *h, __u16 type, __u16 size, __u32 tgid,
				   __u64 now)
{
	h->type = type;
	h->size = size;
	h->tgid = tgid;
	h->ts_ns = now;
}

static __always_inline struct conn_state *conn_of(struct scratch *s)
{
	return bpf_map_lookup_elem(&conns, &s->ch.sk);
}

/* Emit a connection event; @startup_len bytes of startup message from the scratch at @off. */
static __always_inline void emit_conn(struct scratch *s, struct conn_state *c, __u16 type,
				      __u32 off, __u32 startup_len)
{
	struct dbtap_ev_conn *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(DBTAP_CNT_DROP_CONN_RB);
		return;
	}
	ev_hdr(&e->hdr, type, sizeof(*e), s->ch.tgid, s->ch.now);
	e->conn_id = c->sk;
	e->instance = c->instance;
	e->system = c->system;
	e->flags = c->flags;
	e->db_id = c->db_id;
	e->user_id = c->user_id;
	e->bytes_in = c->bytes_in;
	e->bytes_out = c->bytes_out;
	e->ops = c->ops_done;
	e->peer = c->peer;
	e->local = c->local;
	e->startup_len = 0;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	if (startup_len > DBTAP_STARTUP_MAX)
		startup_len = DBTAP_STARTUP_MAX;
	if (startup_len && bpf_probe_read_kernel(e->startup, startup_len,
						 &s->buf[bound(off, 2 * SCRATCH_SIZE - 1)]) == 0)
		e->startup_len = startup_len;
	bpf_ringbuf_submit(e, 0);
}

/* Send the text of a fingerprint the first time it is seen (retried while the ring is full). */
static __always_inline void emit_text_once(struct scratch *s, __u16 system, __u64 hash, __u32 off,
					   __u32 len, __u16 flags)
{
	__u64 *cached = &s->text_cache[hash & (TEXT_CACHE_SLOTS - 1)];
	struct dbtap_ev_text *e;
	__u8 one = 1;

	if (*cached == hash)
		return;
	if (bpf_map_lookup_elem(&texts_seen, &hash)) {
		*cached = hash;
		return;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(DBTAP_CNT_DROP_TEXT_RB);
		return;
	}
	ev_hdr(&e->hdr, DBTAP_EV_QUERY_TEXT, sizeof(*e), s->ch.tgid, s->ch.now);
	e->query_hash = hash;
	e->system = system;
	e->flags = flags;
	e->_pad = 0;
	if (len > DBTAP_TEXT_MAX) {
		len = DBTAP_TEXT_MAX;
		e->flags |= DBTAP_TEXT_F_TRUNCATED;
	}
	e->text_len = 0;
	if (len &&
	    bpf_probe_read_kernel(e->text, len, &s->buf[bound(off, 2 * SCRATCH_SIZE - 1)]) == 0)
		e->text_len = len;
	bpf_ringbuf_submit(e, 0);
	bpf_map_update_elem(&texts_seen, &hash, &one, BPF_ANY);
	*cached = hash;
	count(DBTAP_CNT_TEXTS);
}

/* ---- connections and chunks ---- */

/*
 * The state of connection @key (the struct sock address) seen from process @tgid with peer
 * identity @ident, created from the zero template when @create (with the instance, system and
 * names of @tgid's "procs" entry: looked up only then, so a known connection costs one
 * lookup); NULL when there is none, the process is not a server's, or the map is full
 * (counted). An entry whose owner or peer differs is stale (its connection ended unseen and
 * the socket was reused): it is counted closed and replaced. *@ret_new says the caller must
 * fill in the addresses.
 */
static __always_inline struct conn_state *conn_lookup(__u64 key, __u64 ident, __u32 tgid,
						      bool create, bool *ret_new)
{
	struct conn_state *c = bpf_map_lookup_elem(&conns, &key), *tmpl;
	struct dbtap_proc *p;
	__u32 zero = 0;

	*ret_new = false;
	if (c && (c->tgid != tgid || c->ident != ident)) {
		count(DBTAP_CNT_CONN_CLOSE);
		bpf_map_delete_elem(&conns, &key);
		c = NULL;
	}
	if (c || !create)
		return c;
	p = bpf_map_lookup_elem(&procs, &tgid);
	tmpl = bpf_map_lookup_elem(&conn_zero, &zero);
	if (!p || !tmpl)
		return NULL;
	if (bpf_map_update_elem(&conns, &key, tmpl, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&conns, &key)) {
		count(DBTAP_CNT_DROP_CONN_FULL);
		return NULL;
	}
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return NULL;
	if (c->sk == 0) {
		c->sk = key;
		c->ident = ident;
		c->tgid = tgid;
		c->instance = p->instance;
		c->system = p->system;
		c->db_id = p->db_id; /* known for backends found at start (process title) */
		c->user_id = p->user_id;
		count(DBTAP_CNT_CONN_OPEN);
		*ret_new = true;
	}
	return c;
}

/* The per-CPU scratch, reset for a chunk of connection @sk in direction @dir. */
static __always_inline struct scratch *chunk_begin(__u64 sk, __u32 tgid, __u8 dir)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratches, &zero);

	if (!s)
		return NULL;
	s->ch.sk = sk;
	s->ch.tgid = tgid;
	s->ch.now = bpf_ktime_get_ns();
	s->ch.dir = dir;
	s->ch.pos = 0;
	s->ch.stop = 0;
	s->ch.done_pending = 0;
	return s;
}

/* The client went away (end of stream, or Terminate): count, tell userspace, forget. */
static __always_inline void conn_close(struct scratch *s, struct conn_state *c)
{
	count(DBTAP_CNT_CONN_CLOSE);
	emit_conn(s, c, DBTAP_EV_CONN_CLOSE, 0, 0);
	bpf_map_delete_elem(&conns, &s->ch.sk);
}

/* ---- operations queued on a connection ---- */

/* Queue an operation started now; returns it (for the decoder's flags and tag), or NULL when
 * CONN_MAX_OPS are in flight (counted). */
static __always_inline struct conn_op *op_push(struct scratch *s, struct conn_state *c, __u8 kind,
					       __u64 hash, __u16 flags)
{
	struct conn_op *o;

	if ((__u8)(c->tail - c->head) >= CONN_MAX_OPS) {
		count(DBTAP_CNT_DROP_PIPELINE);
		return NULL;
	}
	o = &c->ops[c->tail & (CONN_MAX_OPS - 1)];
	o->query_hash = hash;
	o->start_ns = s->ch.now;
	o->agg_flags = flags;
	o->kind = kind;
	o->flags = 0;
	o->tag = 0;
	c->tail++;
	return o;
}

static __always_inline struct conn_op *op_front(struct conn_state *c)
{
	if (c->head == c->tail)
		return NULL;
	return &c->ops[c->head & (CONN_MAX_OPS - 1)];
}

/* Pop the oldest operation into s->ch.done (status already there when failed); the caller
 * counts it with dbtap_complete(). */
static __always_inline void op_finish(struct scratch *s, struct conn_state *c, struct conn_op *o,
				      bool failed, __u64 rows)
{
	struct op_done *d = &s->ch.done;

	d->query_hash = o->query_hash;
	d->start_ns = o->start_ns;
	d->agg_flags = o->agg_flags;
	d->rows = rows;
	d->failed = failed;
	if (!failed)
		__builtin_memset(d->status, 0, DBTAP_STATUS_LEN);
	s->ch.done_pending = 1;
	c->head++;
}

/* ---- messages cut across chunks (the "reasms" map) ---- */
/* One message per connection and direction is collected at a time. */
static __always_inline __u64 reasm_key(struct scratch *s)
{
	return s->ch.sk | s->ch.dir; /* a struct sock address is aligned: the low bit is free */
}

/* Append up to @n bytes of the chunk at @pos to @r, no further than r->want. Bytes past the
 * scratch copy come from the user buffer when the chunk is one. */
static __always_inline void reasm_append(struct scratch *s, struct reasm *r, __u32 pos, __u32 n)
{
	__u32 room = r->want > r->have ? r->want - r->have : 0;

	if (n > room)
		n = room;
	if (!n || r->have >= REASM_MAX)
		return;
	if (pos + n <= s->ch.avail) {
		if (bpf_probe_read_kernel(&r->buf[bound(r->have, REASM_MASK)],
					  bound(n - 1, REASM_MASK) + 1,
					  &s->buf[bound(pos, SCRATCH_MASK)]))
			return;
	} else if (s->ch.user_buf) {
		if (bpf_probe_read_user(&r->buf[bound(r->have, REASM_MASK)],
					bound(n - 1, REASM_MASK) + 1,
					(void *)(s->ch.user_buf + pos)))
			return;
	} else {
		count(DBTAP_CNT_DROP_READ);
		return;
	}
	r->have += n;
}

static __always_inline struct reasm *reasm_start(struct scratch *s, __u32 want)
{
	__u64 key = reasm_key(s);
	struct reasm *r = bpf_map_lookup_elem(&reasms, &key);
	__u32 zero = 0;

	if (!r) {
		struct reasm *tmpl = bpf_map_lookup_elem(&reasm_zero, &zero);

		if (!tmpl)
			return NULL;
		bpf_map_update_elem(&reasms, &key, tmpl, BPF_ANY);
		r = bpf_map_lookup_elem(&reasms, &key);
		if (!r) {
			count(DBTAP_CNT_DROP_REASM_FULL);
			return NULL;
		}
	}
	r->have = 0;
	r->want = want;
	return r;
}

/* ---- aggregation ---- */

static __always_inline void emit_sample(struct scratch *s, struct conn_state *c,
					struct dbtap_agg_key *key, __u32 reasons)
{
	struct dbtap_ev_sample *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(DBTAP_CNT_DROP_SAMPLE_RB);
		return;
	}
	ev_hdr(&e->hdr, DBTAP_EV_SAMPLE, sizeof(*e), s->ch.tgid, s->ch.now);
	e->key = *key;
	e->conn_id = c->sk;
	e->start_ns = s->ch.done.start_ns;
	e->end_ns = s->ch.now;
	e->rows = s->ch.done.rows;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->reasons = reasons;
	e->peer = c->peer;
	e->local = c->local;
	__builtin_memcpy(e->status, s->ch.done.status, DBTAP_STATUS_LEN);
	bpf_ringbuf_submit(e, 0);
	count(DBTAP_CNT_SAMPLES);
}

/*
 * Count the finished operation in s->ch.done in the "aggs" map (exact: never dropped while
 * the map has room), its error code in "errs", and send a sample when it is slow, failed,
 * the slowest of its series this interval, or drawn 1 in N. Global: verified once.
 */
__noinline int dbtap_complete(struct scratch *s, struct conn_state *c)
{
	struct dbtap_agg_key key = {};
	struct dbtap_agg_val *v;
	struct op_done *op;
	__u64 dur;
	__u32 e = epoch, reasons = 0, bucket, zero = 0;

	if (!s || !c)
		return 0;
	op = &s->ch.done;
	dur = s->ch.now > op->start_ns ? s->ch.now - op->start_ns : 0;
	key.instance = c->instance;
	key.db_id = c->db_id;
	key.user_id = c->user_id;
	key.system = c->system;
	key.flags = op->agg_flags;
	key.query_hash = op->query_hash;

	v = bpf_map_lookup_elem(&aggs, &key);
	if (!v) {
		struct dbtap_agg_val *tmpl = bpf_map_lookup_elem(&agg_zero, &zero);

		if (!tmpl)
			return 0;
		bpf_map_update_elem(&aggs, &key, tmpl, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&aggs, &key);
		if (!v) {
			count(DBTAP_CNT_DROP_AGG_FULL);
			return 0;
		}
	}
	__sync_fetch_and_add(&v->count, 1);
	if (op->failed)
		__sync_fetch_and_add(&v->errors, 1);
	if (op->rows)
		__sync_fetch_and_add(&v->rows, op->rows);
	__sync_fetch_and_add(&v->sum_ns, dur);
	bucket = dbtap_hist_bucket(dur);
	if (bucket < DBTAP_HIST_BUCKETS)
		__sync_fetch_and_add(&v->hist[bucket], 1);

	/* interval min/max, double-buffered by epoch (see dbtap_agg_val); epoch starts at 1 */
	if (v->win[e & 1].epoch != e) {
		v->win[e & 1].epoch = e;
		v->win[e & 1].min_ns = dur;
		v->win[e & 1].max_ns = dur;
		reasons |= DBTAP_SAMPLE_MAX;
	} else {
		if (dur < v->win[e & 1].min_ns)
			v->win[e & 1].min_ns = dur;
		if (dur > v->win[e & 1].max_ns) {
			v->win[e & 1].max_ns = dur;
			reasons |= DBTAP_SAMPLE_MAX;
		}
	}
	count(DBTAP_CNT_OPS);
	c->ops_done++;

	if (op->failed) {
		struct dbtap_err_key ek = {};
		__u64 one = 1, *n;

		ek.agg = key;
		__builtin_memcpy(ek.status, op->status, DBTAP_STATUS_LEN);
		n = bpf_map_lookup_elem(&errs, &ek);
		if (n) {
			__sync_fetch_and_add(n, 1);
		} else if (bpf_map_update_elem(&errs, &ek, &one, BPF_NOEXIST)) {
			/* lost a race with another CPU (then add to its entry), or the map is full */
			n = bpf_map_lookup_elem(&errs, &ek);
			if (n)
				__sync_fetch_and_add(n, 1);
			else
				count(DBTAP_CNT_DROP_ERR_FULL);
		}
		reasons |= DBTAP_SAMPLE_ERROR;
	}
	if (dur >= cfg_slow_ns)
		reasons |= DBTAP_SAMPLE_SLOW;
	if (cfg_sample_rate && bpf_get_prandom_u32() % cfg_sample_rate == 0)
		reasons |= DBTAP_SAMPLE_RANDOM;
	if (reasons)
		emit_sample(s, c, &key, reasons);
	return 0;
}

#endif /* DBTAP_CAPTURE_CORE_BPF_H */
