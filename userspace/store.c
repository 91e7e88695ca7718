// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * store.c - the series store: turns the kernel's cumulative per-fingerprint counters into
 * per-interval series, labelled with what userspace learned from the ring buffer (query
 * texts, names) and from discovery (instances). Kernel keys whose texts normalize to the same
 * text are merged into one series. The samples of the interval are kept (bounded) and labelled
 * as the series their key belongs to.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "probes/sql/sql_normalize.h"
#include "userspace/probes.h"
#include "userspace/loader.h"
#include "userspace/store.h"

/* ---- a small chained hash map over byte keys ---- */

struct hm_node {
	struct hm_node *next;
	uint64_t hash;
	size_t klen;
	void *val;
	unsigned char key[];
};

struct hm {
	struct hm_node **b;
	size_t cap;
	size_t n;
};

static uint64_t hm_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = DBTAP_FNV64_OFFSET;

	while (len--)
		h = (h ^ *p++) * DBTAP_FNV64_PRIME;
	return h;
}

static struct hm_node *hm_find(struct hm *m, const void *key, size_t klen)
{
	uint64_t h = hm_hash(key, klen);
	struct hm_node *n;

	if (!m->cap)
		return NULL;
	for (n = m->b[h % m->cap]; n; n = n->next)
		if (n->hash == h && n->klen == klen && !memcmp(n->key, key, klen))
			return n;
	return NULL;
}

static void *hm_get(struct hm *m, const void *key, size_t klen)
{
	struct hm_node *n = hm_find(m, key, klen);

	return n ? n->val : NULL;
}

/* Insert or replace; returns the previous value (for the caller to free) or NULL. */
static int hm_put(struct hm *m, const void *key, size_t klen, void *val, void **ret_old)
{
	struct hm_node *n = hm_find(m, key, klen);

	if (ret_old)
		*ret_old = NULL;
	if (n) {
		if (ret_old)
			*ret_old = n->val;
		n->val = val;
		return 0;
	}
	if (m->n + 1 > m->cap * 2) {
		size_t cap = m->cap ? m->cap * 4 : 256, i;
		struct hm_node **b = calloc(cap, sizeof(*b));

		if (!b)
			return -ENOMEM;
		for (i = 0; i < m->cap; i++) {
			struct hm_node *x = m->b[i], *next;

			for (; x; x = next) {
				next = x->next;
				x->next = b[x->hash % cap];
				b[x->hash % cap] = x;
			}
		}
		free(m->b);
		m->b = b;
		m->cap = cap;
	}
	n = malloc(sizeof(*n) + klen);
	if (!n)
		return -ENOMEM;
	n->hash = hm_hash(key, klen);
	n->klen = klen;
	n->val = val;
	memcpy(n->key, key, klen);
	n->next = m->b[n->hash % m->cap];
	m->b[n->hash % m->cap] = n;
	m->n++;
	return 0;
}

/* Remove @key; returns its value (for the caller to free) or NULL. */
static void *hm_del(struct hm *m, const void *key, size_t klen)
{
	uint64_t h = hm_hash(key, klen);
	struct hm_node **pp, *n;
	void *val;

	if (!m->cap)
		return NULL;
	for (pp = &m->b[h % m->cap]; (n = *pp); pp = &n->next) {
		if (n->hash == h && n->klen == klen && !memcmp(n->key, key, klen)) {
			*pp = n->next;
			val = n->val;
			free(n);
			m->n--;
			return val;
		}
	}
	return NULL;
}

static void hm_free(struct hm *m, void (*free_val)(void *))
{
	size_t i;

	for (i = 0; i < m->cap; i++) {
		struct hm_node *x = m->b[i], *next;

		for (; x; x = next) {
			next = x->next;
			if (free_val)
				free_val(x->val);
			free(x);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

/* ---- what the store keeps ---- */

struct text_entry {
	char *text; /* normalized (sanitized unless raw) */
	char operation[SQL_OPERATION_MAX];
	char collection[SQL_COLLECTION_MAX];
	char summary[SQL_SUMMARY_MAX];
	bool known; /* false: a prepared statement's name stands in for its text */
};

struct instance_entry {
	char system[16];
	char address[64];
	int port;
	char socket[128];
	char exe_path[256];
	char version[64];
	char container_id[80];
};

/* The trace context a connection's client gave (application_name). */
struct conn_trace {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t flags;
};

/* A sample as received, with its connection's trace context taken at once: the connection may
 * close before the interval ends. */
struct pending_sample {
	struct dbtap_ev_sample ev;
	struct conn_trace trace;
	bool has_trace;
};

/* Connections with a trace context kept at most; beyond, new ones are not remembered. */
#define STORE_MAX_TRACED_CONNS 65536

/* Cumulative values last read for one kernel key. */
struct prev_entry {
	uint64_t count, errors, rows, sum_ns;
	uint32_t hist[DBTAP_HIST_BUCKETS];
};

/* A series being built for the current snapshot. */
struct building {
	struct dbtap_series s;
	struct dbtap_status_count *status;
	size_t n_status;
	uint64_t min_ns, max_ns;
	bool have_minmax;
};

struct dbtap_store {
	const struct dbtap_config *cfg;
	struct hm texts;     /* u64 query hash -> struct text_entry */
	struct hm names;     /* u32 name id -> char * */
	struct hm instances; /* u32 pid -> struct instance_entry */
	struct hm traces;    /* u64 conn id -> struct conn_trace, while the connection is open */
	struct dbtap_instance_info *inst_out; /* the current snapshot's instances */
	struct hm prev;			      /* struct dbtap_agg_key -> struct prev_entry */
	struct hm prev_errs;		      /* struct dbtap_err_key -> uint64_t * */
	/* the current snapshot */
	struct building *b;
	size_t nb, capb;
	struct dbtap_series *out;
	struct hm groups;    /* group key string -> index + 1 */
	struct hm key_group; /* struct dbtap_agg_key -> index + 1 */
	char **strs;	     /* strings owned by the current snapshot */
	size_t nstrs, capstrs;
	uint64_t series_dropped;
	/* samples received since the last snapshot, DBTAP_STORE_MAX_SAMPLES at most */
	struct pending_sample *pending;
	size_t n_pending;
	uint64_t pending_dropped; /* received beyond the cap (or without memory) */
	/* the current snapshot's samples, and the index of each one's series in out[] */
	struct dbtap_sample *samples;
	size_t *sample_series;
	size_t n_samples;
	uint64_t samples_dropped;
};

static void free_text(void *v)
{
	struct text_entry *t = v;

	if (t)
		free(t->text);
	free(t);
}

struct dbtap_store *dbtap_store_new(const struct dbtap_config *cfg)
{
	struct dbtap_store *st = calloc(1, sizeof(*st));

	if (st)
		st->cfg = cfg;
	return st;
}

static void snapshot_reset(struct dbtap_store *st)
{
	size_t i;

	for (i = 0; i < st->nb; i++)
		free(st->b[i].status);
	st->nb = 0;
	for (i = 0; i < st->nstrs; i++)
		free(st->strs[i]);
	st->nstrs = 0;
	hm_free(&st->groups, NULL);
	hm_free(&st->key_group, NULL);
}

void dbtap_store_free(struct dbtap_store *st)
{
	if (!st)
		return;
	snapshot_reset(st);
	free(st->b);
	free(st->out);
	free(st->strs);
	free(st->pending);
	free(st->samples);
	free(st->sample_series);
	hm_free(&st->texts, free_text);
	hm_free(&st->names, free);
	hm_free(&st->instances, free);
	hm_free(&st->traces, free);
	free(st->inst_out);
	hm_free(&st->prev, free);
	hm_free(&st->prev_errs, free);
	free(st);
}

void dbtap_store_add_instance(struct dbtap_store *st, const struct dbtap_instance *inst)
{
	const struct dbtap_probe *probe = dbtap_probe_for(inst->system);
	struct instance_entry *e = calloc(1, sizeof(*e));
	uint32_t pid = (uint32_t)inst->pid;
	void *old;
	int i;

	if (!e)
		return;
	snprintf(e->system, sizeof(e->system), "%s", dbtap_system_name(inst->system));
	snprintf(e->exe_path, sizeof(e->exe_path), "%s", inst->exe);
	snprintf(e->version, sizeof(e->version), "%s", inst->version);
	snprintf(e->container_id, sizeof(e->container_id), "%s", inst->container_id);
	for (i = 0; probe && probe->fixed_names && probe->fixed_names[i]; i++)
		dbtap_store_add_name(st, probe->fixed_names[i]);
	for (i = 0; i < inst->n_listen; i++) {
		const struct dbtap_listen *l = &inst->listen[i];

		if (l->unix_socket && !e->socket[0])
			snprintf(e->socket, sizeof(e->socket), "%s", l->path);
		else if (!l->unix_socket && !e->port) {
			snprintf(e->address, sizeof(e->address), "%s", l->address);
			e->port = l->port;
		}
	}
	if (hm_put(&st->instances, &pid, sizeof(pid), e, &old))
		free(e);
	else
		free(old);
}

void dbtap_store_add_name(struct dbtap_store *st, const char *name)
{
	uint32_t id = dbtap_name_hash(name);
	char *copy;
	void *old;

	if (!id || hm_get(&st->names, &id, sizeof(id)))
		return;
	copy = strdup(name);
	if (!copy || hm_put(&st->names, &id, sizeof(id), copy, &old))
		free(copy);
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* W3C trace context: lowercase hex only */
}

static int hex_bytes(const char *s, uint8_t *out, size_t n)
{
	size_t i;
	int any = 0;

	for (i = 0; i < n; i++) {
		int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
		any |= out[i];
	}
	return any ? 0 : -EINVAL; /* all-zero ids are invalid */
}

#define TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

int dbtap_traceparent_parse(const char *s, uint8_t trace_id[16], uint8_t span_id[8], uint8_t *flags)
{
	const char *p;

	for (p = s ? strstr(s, "00-") : NULL; p; p = strstr(p + 1, "00-")) {
		if (strnlen(p, TRACEPARENT_LEN) < TRACEPARENT_LEN || p[35] != '-' || p[52] != '-')
			continue;
		if (p[TRACEPARENT_LEN] && p[TRACEPARENT_LEN] != ' ' && p[TRACEPARENT_LEN] != ';')
			continue;
		if (hex_bytes(p + 3, trace_id, 16) || hex_bytes(p + 36, span_id, 8))
			continue;
		if (hex_val(p[53]) < 0 || hex_val(p[54]) < 0)
			continue;
		*flags = (uint8_t)(hex_val(p[53]) << 4 | hex_val(p[54]));
		return 0;
	}
	return -EINVAL;
}

void dbtap_store_add_conn(struct dbtap_store *st, const struct dbtap_ev_conn *ev)
{
	const struct dbtap_probe *probe = dbtap_probe_for(ev->system);
	struct dbtap_conn_names names;
	struct conn_trace *t;
	size_t len = ev->startup_len < DBTAP_STARTUP_MAX ? ev->startup_len : DBTAP_STARTUP_MAX;
	void *old;

	if (ev->hdr.type == DBTAP_EV_CONN_CLOSE) {
		free(hm_del(&st->traces, &ev->conn_id, sizeof(ev->conn_id)));
		return;
	}
	/* an open event replaces what a reused socket address said before */
	free(hm_del(&st->traces, &ev->conn_id, sizeof(ev->conn_id)));
	if (!(ev->flags & DBTAP_CONN_F_STARTUP) || !probe || !probe->startup ||
	    probe->startup((const uint8_t *)ev->startup, len, &names))
		return;
	dbtap_store_add_name(st, names.user);
	dbtap_store_add_name(st, names.database);
	if (st->traces.n >= STORE_MAX_TRACED_CONNS || !(t = calloc(1, sizeof(*t))))
		return;
	if (dbtap_traceparent_parse(names.application_name, t->trace_id, t->span_id, &t->flags) ||
	    hm_put(&st->traces, &ev->conn_id, sizeof(ev->conn_id), t, &old)) {
		free(t);
		return;
	}
	free(old);
}

void dbtap_store_add_text(struct dbtap_store *st, const struct dbtap_ev_text *ev)
{
	struct text_entry *t = calloc(1, sizeof(*t));
	struct sql_normalized n = {0};
	const struct dbtap_probe *probe;
	struct dbtap_conn_names names;
	size_t len = ev->text_len < DBTAP_TEXT_MAX ? ev->text_len : DBTAP_TEXT_MAX;
	void *old;

	if (!t)
		return;
	if (ev->flags & DBTAP_TEXT_F_STMT_NAME) {
		/* a statement prepared before capture: only its name is known */
		snprintf(t->operation, sizeof(t->operation), "EXECUTE");
		snprintf(t->summary, sizeof(t->summary), "EXECUTE %.*s", (int)(len ? len : 9),
			 len ? ev->text : "<unnamed>");
		t->text = strdup("");
		t->known = false;
	} else if ((probe = dbtap_probe_for(ev->system)) && probe->normalize &&
		   probe->normalize(ev->text, len, ev->flags, st->cfg->raw_text, &n) == 0) {
		t->text = n.text;
		n.text = NULL;
		memcpy(t->operation, n.operation, sizeof(t->operation));
		memcpy(t->collection, n.collection, sizeof(t->collection));
		memcpy(t->summary, n.summary, sizeof(t->summary));
		t->known = true;
		sql_normalized_free(&n);
		if (probe->text_names && probe->text_names(ev->text, len, ev->flags, &names) == 0)
			dbtap_store_add_name(st, names.database);
	}
	if (!t->text) {
		free(t);
		return;
	}
	if (hm_put(&st->texts, &ev->query_hash, sizeof(ev->query_hash), t, &old))
		free_text(t);
	else
		free_text(old);
}

void dbtap_store_add_sample(struct dbtap_store *st, const struct dbtap_ev_sample *ev)
{
	const struct conn_trace *trace;
	struct pending_sample *p;

	if (!st->pending)
		st->pending = calloc(DBTAP_STORE_MAX_SAMPLES, sizeof(*st->pending));
	if (!st->pending || st->n_pending >= DBTAP_STORE_MAX_SAMPLES) {
		st->pending_dropped++;
		return;
	}
	p = &st->pending[st->n_pending++];
	p->ev = *ev;
	trace = hm_get(&st->traces, &ev->conn_id, sizeof(ev->conn_id));
	p->has_trace = trace != NULL;
	if (trace)
		p->trace = *trace;
}

/* ---- collecting a snapshot ---- */

static const char *own(struct dbtap_store *st, char *s)
{
	if (!s)
		return "";
	if (st->nstrs == st->capstrs) {
		size_t cap = st->capstrs ? st->capstrs * 2 : 64;
		char **n = realloc(st->strs, cap * sizeof(*n));

		if (!n) {
			free(s);
			return "";
		}
		st->strs = n;
		st->capstrs = cap;
	}
	st->strs[st->nstrs++] = s;
	return s;
}

static const char *name_of(struct dbtap_store *st, uint32_t id)
{
	const char *n = id ? hm_get(&st->names, &id, sizeof(id)) : NULL;

	return n ? n : "";
}

/* The series a kernel key belongs to in this snapshot (created on first use), or NULL when
 * the cardinality cap is reached. */
static struct building *group_for(struct dbtap_store *st, const struct dbtap_agg_key *k)
{
	struct text_entry *t = hm_get(&st->texts, &k->query_hash, sizeof(k->query_hash));
	uint32_t pid = k->instance;
	struct instance_entry *inst = hm_get(&st->instances, &pid, sizeof(pid));
	struct building *b;
	char *gkey = NULL;
	uintptr_t idx;
	int r;

	if (t && t->known)
		r = asprintf(&gkey, "%u/%u/%u/%u/%s", k->instance, k->db_id, k->user_id, k->system,
			     t->text);
	else
		r = asprintf(&gkey, "%u/%u/%u/%u/#%016llx", k->instance, k->db_id, k->user_id,
			     k->system, (unsigned long long)k->query_hash);
	if (r < 0)
		return NULL;
	idx = (uintptr_t)hm_get(&st->groups, gkey, strlen(gkey));
	if (idx) {
		free(gkey);
		b = &st->b[idx - 1];
		goto found;
	}
	if (st->nb >= st->cfg->max_series) {
		st->series_dropped++;
		free(gkey);
		return NULL;
	}
	if (st->nb == st->capb) {
		size_t cap = st->capb ? st->capb * 2 : 64;
		struct building *nb = realloc(st->b, cap * sizeof(*nb));

		if (!nb) {
			free(gkey);
			return NULL;
		}
		st->b = nb;
		st->capb = cap;
	}
	b = &st->b[st->nb++];
	memset(b, 0, sizeof(*b));
	hm_put(&st->groups, gkey, strlen(gkey), (void *)(uintptr_t)st->nb, NULL);
	free(gkey);
	b->s.system = dbtap_system_name(k->system);
	b->s.instance_pid = k->instance;
	b->s.server_address = inst ? own(st, strdup(inst->address)) : "";
	b->s.server_port = inst ? inst->port : 0;
	b->s.server_socket = inst ? own(st, strdup(inst->socket)) : "";
	b->s.db_namespace = name_of(st, k->db_id);
	b->s.db_user = name_of(st, k->user_id);
	b->s.operation = t ? t->operation : "";
	b->s.collection = t ? t->collection : "";
	b->s.summary = t ? t->summary : "";
	b->s.query_text = t && t->known ? t->text : "";
	b->s.text_known = t && t->known;
	b->s.query_hash = k->query_hash;
	b->s.flags = k->flags;
found:
	idx = (uintptr_t)(b - st->b) + 1;
	hm_put(&st->key_group, k, sizeof(*k), (void *)idx, NULL);
	return b;
}

static void add_status(struct building *b, const char *code, uint64_t n)
{
	struct dbtap_status_count *s;
	size_t i;

	for (i = 0; i < b->n_status; i++) {
		if (!strncmp(b->status[i].code, code, DBTAP_STATUS_LEN)) {
			b->status[i].count += n;
			return;
		}
	}
	s = realloc(b->status, (b->n_status + 1) * sizeof(*s));
	if (!s)
		return;
	b->status = s;
	memset(&s[b->n_status], 0, sizeof(*s));
	memcpy(s[b->n_status].code, code, DBTAP_STATUS_LEN);
	s[b->n_status].code[DBTAP_STATUS_LEN - 1] = 0;
	s[b->n_status].count = n;
	b->n_status++;
}

static int collect_aggs(struct dbtap_store *st, int fd, uint32_t closed_epoch)
{
	struct dbtap_agg_key key, next, *cur = NULL;
	struct dbtap_agg_val v;
	uint32_t slot = closed_epoch & 1;

	while (bpf_map_get_next_key(fd, cur, &next) == 0) {
		struct prev_entry *p;
		struct building *b;
		uint64_t dcount;
		size_t i;

		key = next;
		cur = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue; /* deleted meanwhile */
		p = hm_get(&st->prev, &key, sizeof(key));
		if (!p) {
			p = calloc(1, sizeof(*p));
			if (!p || hm_put(&st->prev, &key, sizeof(key), p, NULL)) {
				free(p);
				return -ENOMEM;
			}
		}
		dcount = v.count - p->count;
		if (dcount) {
			b = group_for(st, &key);
			if (b) {
				b->s.count += dcount;
				b->s.errors += v.errors - p->errors;
				b->s.rows += v.rows - p->rows;
				b->s.sum_s += (double)(v.sum_ns - p->sum_ns) / 1e9;
				for (i = 0; i < DBTAP_HIST_BUCKETS; i++)
					b->s.hist[i] += v.hist[i] - p->hist[i];
				if (v.win[slot].epoch == closed_epoch) {
					if (!b->have_minmax || v.win[slot].min_ns < b->min_ns)
						b->min_ns = v.win[slot].min_ns;
					if (!b->have_minmax || v.win[slot].max_ns > b->max_ns)
						b->max_ns = v.win[slot].max_ns;
					b->have_minmax = true;
				}
			}
		}
		p->count = v.count;
		p->errors = v.errors;
		p->rows = v.rows;
		p->sum_ns = v.sum_ns;
		memcpy(p->hist, v.hist, sizeof(p->hist));
	}
	return 0;
}

static int collect_errs(struct dbtap_store *st, int fd)
{
	struct dbtap_err_key key, next, *cur = NULL;
	uint64_t v;

	while (bpf_map_get_next_key(fd, cur, &next) == 0) {
		uint64_t *p;
		uintptr_t idx;

		key = next;
		cur = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		p = hm_get(&st->prev_errs, &key, sizeof(key));
		if (!p) {
			p = calloc(1, sizeof(*p));
			if (!p || hm_put(&st->prev_errs, &key, sizeof(key), p, NULL)) {
				free(p);
				return -ENOMEM;
			}
		}
		if (v != *p) {
			idx = (uintptr_t)hm_get(&st->key_group, &key.agg, sizeof(key.agg));
			if (idx)
				add_status(&st->b[idx - 1], key.status, v - *p);
		}
		*p = v;
	}
	return 0;
}

/*
 * Label the samples received since the last snapshot with their series (found or created by
 * group_for(), as for the maps' keys) and convert their times to wall clock. A sample whose
 * series the cardinality cap folded away is dropped and counted.
 */
static int collect_samples(struct dbtap_store *st, int64_t realtime_offset_ns)
{
	size_t i;

	st->n_samples = 0;
	st->samples_dropped = st->pending_dropped;
	st->pending_dropped = 0;
	if (st->n_pending && (!st->samples || !st->sample_series)) {
		st->samples = calloc(DBTAP_STORE_MAX_SAMPLES, sizeof(*st->samples));
		st->sample_series = calloc(DBTAP_STORE_MAX_SAMPLES, sizeof(*st->sample_series));
		if (!st->samples || !st->sample_series) {
			free(st->samples);
			free(st->sample_series);
			st->samples = NULL;
			st->sample_series = NULL;
			st->samples_dropped += st->n_pending;
			st->n_pending = 0;
			return -ENOMEM;
		}
	}
	for (i = 0; i < st->n_pending; i++) {
		const struct dbtap_ev_sample *ev = &st->pending[i].ev;
		uint64_t series_dropped = st->series_dropped;
		struct dbtap_sample *out = &st->samples[st->n_samples];
		struct building *b = group_for(st, &ev->key);
		const struct conn_trace *trace;

		if (!b) {
			/* a loss of this sample, not of one more series: its operation was counted
			 * (and any fold of its series) when the maps were read */
			st->series_dropped = series_dropped;
			st->samples_dropped++;
			continue;
		}
		memset(out, 0, sizeof(*out));
		out->start_ns = (int64_t)ev->start_ns + realtime_offset_ns;
		out->end_ns = (int64_t)ev->end_ns + realtime_offset_ns;
		out->duration_ns = ev->end_ns > ev->start_ns ? ev->end_ns - ev->start_ns : 0;
		out->reasons = ev->reasons;
		memcpy(out->status, ev->status, DBTAP_STATUS_LEN);
		out->status[DBTAP_STATUS_LEN] = '\0';
		out->rows = ev->rows;
		out->tid = ev->tid;
		out->peer = ev->peer;
		out->conn_id = ev->conn_id;
		trace = st->pending[i].has_trace ? &st->pending[i].trace : NULL;
		if (trace) {
			out->has_parent = true;
			memcpy(out->trace_id, trace->trace_id, sizeof(out->trace_id));
			memcpy(out->parent_span_id, trace->span_id, sizeof(out->parent_span_id));
			out->trace_flags = trace->flags;
		}
		st->sample_series[st->n_samples++] = (size_t)(b - st->b);
	}
	st->n_pending = 0;
	return 0;
}

/* Bounds from the histogram when the exact interval min/max slot was overwritten. */
static void minmax_from_hist(struct building *b)
{
	uint32_t i, lo = DBTAP_HIST_BUCKETS, hi = 0;

	for (i = 0; i < DBTAP_HIST_BUCKETS; i++) {
		if (b->s.hist[i]) {
			if (lo == DBTAP_HIST_BUCKETS)
				lo = i;
			hi = i;
		}
	}
	if (lo == DBTAP_HIST_BUCKETS)
		return;
	b->min_ns = dbtap_hist_bucket_lower_ns(lo);
	b->max_ns = dbtap_hist_bucket_upper_ns(hi);
}

/* Every instance known so far, for the exporters' resources. */
static void collect_instances(struct dbtap_store *st, struct dbtap_snapshot *snap)
{
	struct dbtap_instance_info *out;
	size_t i, n = 0;

	snap->instances = NULL;
	snap->n_instances = 0;
	out = realloc(st->inst_out, (st->instances.n ? st->instances.n : 1) * sizeof(*out));
	if (!out)
		return;
	st->inst_out = out;
	for (i = 0; i < st->instances.cap; i++) {
		const struct hm_node *x;

		for (x = st->instances.b[i]; x; x = x->next) {
			const struct instance_entry *e = x->val;
			const char *slash = strrchr(e->exe_path, '/');

			memcpy(&out[n].pid, x->key, sizeof(out[n].pid));
			out[n].system = e->system;
			out[n].exe_path = e->exe_path;
			out[n].exe_name = slash ? slash + 1 : e->exe_path;
			out[n].version = e->version;
			out[n].container_id = e->container_id;
			out[n].server_address = e->address;
			out[n].server_port = e->port;
			out[n].server_socket = e->socket;
			n++;
		}
	}
	snap->instances = out;
	snap->n_instances = n;
}

int dbtap_store_collect(struct dbtap_store *st, int aggs_fd, int errs_fd, uint32_t closed_epoch,
			int64_t realtime_offset_ns, struct dbtap_snapshot *snap)
{
	size_t i;
	int ret, ret_samples;

	snapshot_reset(st);
	st->series_dropped = 0;
	ret = collect_aggs(st, aggs_fd, closed_epoch);
	if (!ret)
		ret = collect_errs(st, errs_fd);
	/* after the maps, so that series with operations come first under the cap */
	ret_samples = collect_samples(st, realtime_offset_ns);
	if (!ret)
		ret = ret_samples;
	free(st->out);
	st->out = calloc(st->nb ? st->nb : 1, sizeof(*st->out));
	if (!st->out) {
		st->samples_dropped += st->n_samples;
		st->n_samples = 0;
		snap->self.samples_dropped = st->samples_dropped;
		return -ENOMEM;
	}
	for (i = 0; i < st->nb; i++) {
		struct building *b = &st->b[i];

		if (!b->have_minmax)
			minmax_from_hist(b);
		b->s.min_s = (double)b->min_ns / 1e9;
		b->s.max_s = (double)b->max_ns / 1e9;
		b->s.status = b->status;
		b->s.n_status = b->n_status;
		st->out[i] = b->s;
	}
	for (i = 0; i < st->n_samples; i++)
		st->samples[i].series = &st->out[st->sample_series[i]];
	collect_instances(st, snap);
	snap->series = st->out;
	snap->n_series = st->nb;
	snap->samples = st->samples;
	snap->n_samples = st->n_samples;
	snap->self.series_dropped = st->series_dropped;
	snap->self.samples_dropped = st->samples_dropped;
	return ret;
}
