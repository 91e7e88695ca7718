// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * otlp_encode.c - turns a snapshot into OTLP JSON export requests (cJSON documents): metrics
 * with the running sums that cumulative temporality needs, spans and slow-query log records
 * per sample, resources per instance; and splits requests that are too big.
 *
 * Encoding rules (OTLP JSON, opentelemetry-proto docs/specification.md): lowerCamelCase keys,
 * 64-bit integers as decimal strings, trace and span ids as lower-case hex, enums as
 * integers. The mapping is documented in docs/otlp.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "exporters/otlp_internal.h"

#ifndef DBTAP_VERSION
#define DBTAP_VERSION "0.0.0"
#endif

#define NS_PER_S      1000000000LL
#define SCOPE_NAME    "dbtap"
#define U64_DIGITS    24
#define HOST_ID_PATH  "/etc/machine-id"
#define HOST_NAME_LEN 256
#define TRACE_ID_LEN  16
#define SPAN_ID_LEN   8

/* OTLP enums (opentelemetry-proto) */
#define OTLP_TEMPORALITY_DELTA	    1
#define OTLP_TEMPORALITY_CUMULATIVE 2
#define OTLP_SPAN_KIND_SERVER	    2
#define OTLP_STATUS_ERROR	    2
#define OTLP_SEVERITY_WARN	    13

/* Semantic-convention names */
#define ERROR_TYPE_OTHER   "_OTHER"
#define OVERFLOW_ATTRIBUTE "otel.metric.overflow"
#define SLOW_QUERY_EVENT   "db.server.slow_query"
#define DROP_PREFIX	   "drop." /* dbtap_counter_name() prefix of the loss counters */

/* ---- histogram bounds ---- */

/* semconv db.client.operation.duration advisory bounds, with 10 us .. 500 us added below */
static const double bounds_nominal_s[DBTAP_OTLP_N_BOUNDS] = {
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005,
	0.01,	 0.05,	   0.1,	    0.5,    1,	     5,	     10,
};

/* Edge used for each bound: the dbtap bucket edge nearest to the nominal value, so that the
 * fold below is exact. Computed once; the values are listed in docs/otlp.md. */
static uint64_t bounds_ns[DBTAP_OTLP_N_BOUNDS];
/* first dbtap bucket past each OTLP bucket: dbtap bucket b goes to OTLP bucket k when
 * bucket_end[k-1] <= b < bucket_end[k] */
static uint32_t bucket_end[DBTAP_OTLP_N_BOUNDS];

static void bounds_init(void)
{
	unsigned int i, b;

	if (bounds_ns[0])
		return;
	for (i = 0; i < DBTAP_OTLP_N_BOUNDS; i++) {
		double want = bounds_nominal_s[i] * NS_PER_S, best_d = -1;

		/* edges are the lower bounds of buckets 1 .. DBTAP_HIST_BUCKETS - 1 */
		for (b = 1; b < DBTAP_HIST_BUCKETS; b++) {
			double edge = (double)dbtap_hist_bucket_lower_ns(b);
			double d = edge > want ? edge - want : want - edge;

			if (best_d < 0 || d < best_d) {
				best_d = d;
				bounds_ns[i] = (uint64_t)edge;
				bucket_end[i] = b;
			}
		}
	}
}

double dbtap_otlp_bound_nominal_s(unsigned int i)
{
	return i < DBTAP_OTLP_N_BOUNDS ? bounds_nominal_s[i] : 0;
}

uint64_t dbtap_otlp_bound_ns(unsigned int i)
{
	bounds_init();
	return i < DBTAP_OTLP_N_BOUNDS ? bounds_ns[i] : 0;
}

void dbtap_otlp_hist_fold(const uint32_t hist[DBTAP_HIST_BUCKETS],
			  uint64_t ret[DBTAP_OTLP_N_BOUNDS + 1])
{
	unsigned int b, k = 0;

	bounds_init();
	memset(ret, 0, sizeof(uint64_t) * (DBTAP_OTLP_N_BOUNDS + 1));
	for (b = 0; b < DBTAP_HIST_BUCKETS; b++) {
		while (k < DBTAP_OTLP_N_BOUNDS && b >= bucket_end[k])
			k++;
		ret[k] += hist[b];
	}
}

/* ---- key=value lists ---- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copy of @len bytes at @s, trimmed, percent-decoded when @decode. NULL on ENOMEM. */
static char *dup_trimmed(const char *s, size_t len, bool decode)
{
	char *out, *o;
	size_t i;

	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	out = malloc(len + 1);
	if (!out)
		return NULL;
	for (i = 0, o = out; i < len; i++) {
		if (decode && s[i] == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 &&
		    hex_value(s[i + 2]) >= 0) {
			*o++ = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

int dbtap_otlp_parse_kv(const char *text, struct dbtap_otlp_kv **ret, size_t *ret_n)
{
	struct dbtap_otlp_kv *kv = NULL, *tmp;
	const char *item, *end, *eq;
	size_t n = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!text)
		return 0;
	for (item = text; *item; item = *end ? end + 1 : end) {
		char *key;

		end = strchr(item, ',');
		if (!end)
			end = item + strlen(item);
		eq = memchr(item, '=', end - item);
		if (!eq)
			continue;
		key = dup_trimmed(item, eq - item, false);
		if (!key)
			goto nomem;
		if (!*key) {
			free(key);
			continue;
		}
		tmp = realloc(kv, (n + 1) * sizeof(*kv));
		if (!tmp) {
			free(key);
			goto nomem;
		}
		kv = tmp;
		kv[n].key = key;
		kv[n].value = dup_trimmed(eq + 1, end - eq - 1, true);
		if (!kv[n].value) {
			free(key);
			goto nomem;
		}
		n++;
	}
	*ret = kv;
	*ret_n = n;
	return 0;
nomem:
	dbtap_otlp_kv_free(kv, n);
	return -ENOMEM;
}

void dbtap_otlp_kv_free(struct dbtap_otlp_kv *kv, size_t n)
{
	size_t i;

	for (i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/* ---- JSON helpers ---- */

static cJSON *add_u64_string(cJSON *obj, const char *name, uint64_t v)
{
	char buf[U64_DIGITS];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return cJSON_AddStringToObject(obj, name, buf);
}

static void array_add_u64(cJSON *arr, uint64_t v)
{
	char buf[U64_DIGITS];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
}

static cJSON *attr_new(cJSON *attrs, const char *key)
{
	cJSON *a = cJSON_CreateObject(), *v;

	cJSON_AddStringToObject(a, "key", key);
	v = cJSON_AddObjectToObject(a, "value");
	cJSON_AddItemToArray(attrs, a);
	return v;
}

/* string attribute; empty values are omitted (series.h: "" means unknown) */
static void attr_str(cJSON *attrs, const char *key, const char *val)
{
	if (val && *val)
		cJSON_AddStringToObject(attr_new(attrs, key), "stringValue", val);
}

static void attr_int(cJSON *attrs, const char *key, int64_t val)
{
	char buf[U64_DIGITS];

	snprintf(buf, sizeof(buf), "%" PRId64, val);
	cJSON_AddStringToObject(attr_new(attrs, key), "intValue", buf);
}

static void attr_double(cJSON *attrs, const char *key, double val)
{
	cJSON_AddNumberToObject(attr_new(attrs, key), "doubleValue", val);
}

static void attr_bool(cJSON *attrs, const char *key, bool val)
{
	cJSON_AddBoolToObject(attr_new(attrs, key), "boolValue", val);
}

static void hex_encode(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static void add_hex(cJSON *obj, const char *name, const uint8_t *b, size_t n)
{
	char buf[2 * TRACE_ID_LEN + 1];

	hex_encode(b, n, buf);
	cJSON_AddStringToObject(obj, name, buf);
}

static bool all_zero(const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* Random non-zero id (a zero trace or span id is invalid). */
static void random_id(uint8_t *b, size_t n)
{
	do {
		if (getrandom(b, n, 0) != (ssize_t)n) {
			size_t i;

			for (i = 0; i < n; i++)
				b[i] = (uint8_t)random();
		}
	} while (all_zero(b, n));
}

static int64_t now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* ---- metric streams (running sums) ---- */

struct err_count {
	char code[DBTAP_STATUS_LEN + 1]; /* "" = failed without a known code */
	uint64_t total, cur;
};

/* One stream of db.server.operation.*: one instance and attribute set. */
struct stream {
	char *key; /* pid + attributes, '\x1f' separated */
	uint32_t pid;
	bool overflow;
	char *system, *ns, *op, *coll, *summary;
	int64_t start_ns; /* cumulative: start of the interval it first appeared in */
	uint64_t total_count, cur_count;
	double total_sum, cur_sum;
	double total_min, total_max, cur_min, cur_max;
	uint64_t total_buckets[DBTAP_OTLP_N_BOUNDS + 1], cur_buckets[DBTAP_OTLP_N_BOUNDS + 1];
	struct err_count *errs;
	size_t n_errs;
	struct stream *next_in_bucket;
};

#define STREAM_HASH_SIZE 4096

/* Totals of one self metric data point, for delta and cumulative output. */
struct self_total {
	char *name; /* program name or cause */
	uint64_t total, prev;
	double dtotal, dprev;
};

struct dbtap_otlp_enc {
	struct dbtap_otlp_enc_options o;
	char *service_name;
	struct dbtap_otlp_kv *res_attrs;
	size_t n_res_attrs;
	char host_name[HOST_NAME_LEN];
	char host_id[HOST_NAME_LEN];
	int64_t start_ns;
	int64_t last_time_ns;
	struct stream **streams; /* in creation order */
	size_t n_streams, cap_streams;
	struct stream *hash[STREAM_HASH_SIZE];
	uint64_t folded;
	/* self metrics */
	uint64_t counter_total[DBTAP_CNT_MAX], counter_prev[DBTAP_CNT_MAX];
	struct self_total *progs; /* run time (dtotal) and run count (total) per program */
	size_t n_progs;
	uint64_t series_dropped, samples_dropped;
	struct dbtap_otlp_stats stats_prev;
	uint64_t series_dropped_prev, samples_dropped_prev;
	double cpu_prev;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void stream_free(struct stream *s)
{
	if (!s)
		return;
	free(s->key);
	free(s->system);
	free(s->ns);
	free(s->op);
	free(s->coll);
	free(s->summary);
	free(s->errs);
	free(s);
}

static struct stream *stream_find(struct dbtap_otlp_enc *e, const char *key)
{
	struct stream *s;

	for (s = e->hash[fnv1a(key) % STREAM_HASH_SIZE]; s; s = s->next_in_bucket)
		if (strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

static struct stream *stream_add(struct dbtap_otlp_enc *e, char *key,
				 const struct dbtap_series *ser, bool overflow, int64_t start_ns)
{
	struct stream *s = calloc(1, sizeof(*s));
	uint64_t h;

	if (!s)
		goto fail;
	if (e->n_streams == e->cap_streams) {
		size_t cap = e->cap_streams ? 2 * e->cap_streams : 64;
		struct stream **p = realloc(e->streams, cap * sizeof(*p));

		if (!p)
			goto fail;
		e->streams = p;
		e->cap_streams = cap;
	}
	s->key = key;
	s->pid = ser->instance_pid;
	s->overflow = overflow;
	s->system = strdup(ser->system);
	s->ns = strdup(overflow ? "" : ser->db_namespace);
	s->op = strdup(overflow ? "" : ser->operation);
	s->coll = strdup(overflow ? "" : ser->collection);
	s->summary = strdup(overflow ? "" : ser->summary);
	if (!s->system || !s->ns || !s->op || !s->coll || !s->summary) {
		s->key = NULL;
		goto fail;
	}
	s->start_ns = start_ns;
	h = fnv1a(key) % STREAM_HASH_SIZE;
	s->next_in_bucket = e->hash[h];
	e->hash[h] = s;
	e->streams[e->n_streams++] = s;
	return s;
fail:
	stream_free(s);
	free(key);
	return NULL;
}

static char *series_key(const struct dbtap_series *s, bool overflow)
{
	char *key;

	if (overflow) {
		if (asprintf(&key, "%u\x1f%s\x1f" OVERFLOW_ATTRIBUTE, s->instance_pid, s->system) <
		    0)
			return NULL;
		return key;
	}
	if (asprintf(&key, "%u\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", s->instance_pid, s->system,
		     s->db_namespace, s->operation, s->collection, s->summary) < 0)
		return NULL;
	return key;
}

/* The stream @s counts into, created when new; the overflow stream past the cap. */
static struct stream *stream_for(struct dbtap_otlp_enc *e, const struct dbtap_series *ser,
				 int64_t start_ns)
{
	struct stream *s;
	char *key = series_key(ser, false);

	if (!key)
		return NULL;
	s = stream_find(e, key);
	if (s) {
		free(key);
		return s;
	}
	if (e->n_streams < e->o.max_series)
		return stream_add(e, key, ser, false, start_ns);
	free(key);
	e->folded++;
	key = series_key(ser, true);
	if (!key)
		return NULL;
	s = stream_find(e, key);
	if (s) {
		free(key);
		return s;
	}
	/* the overflow streams themselves may go past the cap: one per instance at most */
	return stream_add(e, key, ser, true, start_ns);
}

static int stream_add_errors(struct stream *s, const struct dbtap_series *ser)
{
	uint64_t coded = 0;
	size_t i, j;

	for (i = 0; i <= ser->n_status; i++) {
		const char *code;
		uint64_t n;

		if (i < ser->n_status) {
			code = s->overflow ? "" : ser->status[i].code;
			n = ser->status[i].count;
			coded += n;
		} else {
			/* failures whose code was not counted (errs map full) */
			code = "";
			n = ser->errors > coded ? ser->errors - coded : 0;
		}
		if (!n)
			continue;
		for (j = 0; j < s->n_errs; j++)
			if (strncmp(s->errs[j].code, code, DBTAP_STATUS_LEN) == 0)
				break;
		if (j == s->n_errs) {
			struct err_count *p = realloc(s->errs, (j + 1) * sizeof(*p));

			if (!p)
				return -ENOMEM;
			s->errs = p;
			memset(&p[j], 0, sizeof(p[j]));
			snprintf(p[j].code, sizeof(p[j].code), "%.*s", DBTAP_STATUS_LEN, code);
			s->n_errs++;
		}
		s->errs[j].total += n;
		s->errs[j].cur += n;
	}
	return 0;
}

static int stream_update(struct stream *s, const struct dbtap_series *ser)
{
	uint64_t folded[DBTAP_OTLP_N_BOUNDS + 1];
	unsigned int k;

	dbtap_otlp_hist_fold(ser->hist, folded);
	for (k = 0; k <= DBTAP_OTLP_N_BOUNDS; k++) {
		s->total_buckets[k] += folded[k];
		s->cur_buckets[k] += folded[k];
	}
	if (!s->cur_count || ser->min_s < s->cur_min)
		s->cur_min = ser->min_s;
	if (!s->cur_count || ser->max_s > s->cur_max)
		s->cur_max = ser->max_s;
	if (!s->total_count || ser->min_s < s->total_min)
		s->total_min = ser->min_s;
	if (!s->total_count || ser->max_s > s->total_max)
		s->total_max = ser->max_s;
	s->total_count += ser->count;
	s->cur_count += ser->count;
	s->total_sum += ser->sum_s;
	s->cur_sum += ser->sum_s;
	return stream_add_errors(s, ser);
}

static void stream_reset_interval(struct stream *s)
{
	size_t j;

	s->cur_count = 0;
	s->cur_sum = 0;
	s->cur_min = s->cur_max = 0;
	memset(s->cur_buckets, 0, sizeof(s->cur_buckets));
	for (j = 0; j < s->n_errs; j++)
		s->errs[j].cur = 0;
}

/* ---- encoder life ---- */

static void read_host_id(char *buf, size_t size)
{
	FILE *f = fopen(HOST_ID_PATH, "r");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, size, f))
		buf[strcspn(buf, "\r\n")] = '\0';
	fclose(f);
}

struct dbtap_otlp_enc *dbtap_otlp_enc_new(const struct dbtap_otlp_enc_options *o)
{
	struct dbtap_otlp_enc *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	bounds_init();
	e->o = *o;
	if (!e->o.max_series)
		e->o.max_series = 10000;
	e->o.service_name = NULL;
	e->o.resource_attributes = NULL;
	e->o.host_name = NULL;
	e->o.host_id = NULL;
	if (o->service_name && *o->service_name && !(e->service_name = strdup(o->service_name)))
		goto fail;
	if (dbtap_otlp_parse_kv(o->resource_attributes, &e->res_attrs, &e->n_res_attrs))
		goto fail;
	if (o->host_name)
		snprintf(e->host_name, sizeof(e->host_name), "%s", o->host_name);
	else if (gethostname(e->host_name, sizeof(e->host_name) - 1))
		e->host_name[0] = '\0';
	if (o->host_id)
		snprintf(e->host_id, sizeof(e->host_id), "%s", o->host_id);
	else
		read_host_id(e->host_id, sizeof(e->host_id));
	e->start_ns = o->start_ns ? o->start_ns : now_real_ns();
	return e;
fail:
	dbtap_otlp_enc_free(e);
	return NULL;
}

void dbtap_otlp_enc_free(struct dbtap_otlp_enc *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->n_streams; i++)
		stream_free(e->streams[i]);
	free(e->streams);
	for (i = 0; i < e->n_progs; i++)
		free(e->progs[i].name);
	free(e->progs);
	dbtap_otlp_kv_free(e->res_attrs, e->n_res_attrs);
	free(e->service_name);
	free(e);
}

uint64_t dbtap_otlp_enc_folded(const struct dbtap_otlp_enc *e)
{
	return e->folded;
}

/* ---- resources ---- */

static const struct dbtap_instance_info *instance_of(const struct dbtap_snapshot *snap,
						     uint32_t pid)
{
	size_t i;

	for (i = 0; i < snap->n_instances; i++)
		if (snap->instances[i].pid == pid)
			return &snap->instances[i];
	return NULL;
}

static bool res_attr_overridden(const struct dbtap_otlp_enc *e, const char *key)
{
	size_t i;

	for (i = 0; i < e->n_res_attrs; i++)
		if (strcmp(e->res_attrs[i].key, key) == 0)
			return true;
	return false;
}

/*
 * Resource attributes of one instance (@pid, @system, @addr, @port as the series say when
 * the instance is not in the snapshot) or, with @agent, of dbtap itself. Precedence for
 * service.name: the option (--otlp-service-name / OTEL_SERVICE_NAME), then
 * OTEL_RESOURCE_ATTRIBUTES, then the default; for every other key OTEL_RESOURCE_ATTRIBUTES
 * wins over what dbtap detects.
 */
static cJSON *resource_new(const struct dbtap_otlp_enc *e, const struct dbtap_instance_info *in,
			   uint32_t pid, const char *system, const char *addr, int port, bool agent)
{
	cJSON *res = cJSON_CreateObject(), *attrs = cJSON_AddArrayToObject(res, "attributes");
	char name[HOST_NAME_LEN + 64], inst[HOST_NAME_LEN + 32];
	size_t i;

	if (in) {
		system = in->system;
		addr = in->server_address;
		port = in->server_port;
	}
	if (agent)
		snprintf(name, sizeof(name), "dbtap");
	else if (port)
		snprintf(name, sizeof(name), "%s@%s:%d", system, *addr ? addr : e->host_name, port);
	else
		snprintf(name, sizeof(name), "%s@%s:pid%u", system, e->host_name, pid);
	snprintf(inst, sizeof(inst), "%s:%u", e->host_id[0] ? e->host_id : e->host_name, pid);
	if (agent)
		attr_str(attrs, "service.name", name);
	else if (e->service_name)
		attr_str(attrs, "service.name", e->service_name);
	else if (!res_attr_overridden(e, "service.name"))
		attr_str(attrs, "service.name", name);

#define DETECTED_STR(k, v)                      \
	do {                                    \
		if (!res_attr_overridden(e, k)) \
			attr_str(attrs, k, v);  \
	} while (0)
	DETECTED_STR("service.instance.id", inst);
	DETECTED_STR("host.name", e->host_name);
	DETECTED_STR("host.id", e->host_id);
	if (!res_attr_overridden(e, "process.pid"))
		attr_int(attrs, "process.pid", pid);
	if (agent) {
		DETECTED_STR("process.executable.name", "dbtap");
		DETECTED_STR("service.version", DBTAP_VERSION);
	} else {
		DETECTED_STR("process.executable.name", in ? in->exe_name : "");
		DETECTED_STR("db.system.name", system);
		DETECTED_STR("db.version", in ? in->version : "");
		DETECTED_STR("container.id", in ? in->container_id : "");
	}
#undef DETECTED_STR
	for (i = 0; i < e->n_res_attrs; i++) {
		if (!strcmp(e->res_attrs[i].key, "service.name") && (agent || e->service_name))
			continue;
		attr_str(attrs, e->res_attrs[i].key, e->res_attrs[i].value);
	}
	return res;
}

static cJSON *scope_new(void)
{
	cJSON *scope = cJSON_CreateObject();

	cJSON_AddStringToObject(scope, "name", SCOPE_NAME);
	cJSON_AddStringToObject(scope, "version", DBTAP_VERSION);
	return scope;
}

/* {resource, scopeX: [{scope, <items>: []}]} appended to @top; returns the items array. */
static cJSON *resource_block(cJSON *top, cJSON *resource, const char *scope_key,
			     const char *items_key)
{
	cJSON *rb = cJSON_CreateObject(), *scopes, *sc;

	cJSON_AddItemToObject(rb, "resource", resource);
	scopes = cJSON_AddArrayToObject(rb, scope_key);
	sc = cJSON_CreateObject();
	cJSON_AddItemToObject(sc, "scope", scope_new());
	cJSON_AddItemToArray(scopes, sc);
	cJSON_AddItemToArray(top, rb);
	return cJSON_AddArrayToObject(sc, items_key);
}

/* ---- metrics ---- */

/* A metric object in @metrics; returns its data point array. @kind: histogram, sum, gauge. */
static cJSON *metric_new(cJSON *metrics, const char *name, const char *unit, const char *desc,
			 const char *kind, int temporality, bool monotonic)
{
	cJSON *m = cJSON_CreateObject(), *data;

	cJSON_AddStringToObject(m, "name", name);
	cJSON_AddStringToObject(m, "unit", unit);
	cJSON_AddStringToObject(m, "description", desc);
	data = cJSON_AddObjectToObject(m, kind);
	if (temporality)
		cJSON_AddNumberToObject(data, "aggregationTemporality", temporality);
	if (!strcmp(kind, "sum"))
		cJSON_AddBoolToObject(data, "isMonotonic", monotonic);
	cJSON_AddItemToArray(metrics, m);
	return cJSON_AddArrayToObject(data, "dataPoints");
}

static cJSON *point_new(cJSON *points, int64_t start_ns, int64_t time_ns)
{
	cJSON *p = cJSON_CreateObject();

	cJSON_AddArrayToObject(p, "attributes");
	if (start_ns)
		add_u64_string(p, "startTimeUnixNano", (uint64_t)start_ns);
	add_u64_string(p, "timeUnixNano", (uint64_t)time_ns);
	cJSON_AddItemToArray(points, p);
	return p;
}

static void stream_attrs(cJSON *attrs, const struct stream *s)
{
	if (s->overflow) {
		attr_bool(attrs, OVERFLOW_ATTRIBUTE, true);
		return;
	}
	attr_str(attrs, "db.system.name", s->system);
	attr_str(attrs, "db.namespace", s->ns);
	attr_str(attrs, "db.operation.name", s->op);
	attr_str(attrs, "db.collection.name", s->coll);
	attr_str(attrs, "db.query.summary", s->summary);
}

static void histogram_point(cJSON *points, const struct stream *s, bool delta, int64_t start_ns,
			    int64_t time_ns)
{
	cJSON *p = point_new(points, delta ? start_ns : s->start_ns, time_ns);
	cJSON *counts, *bounds;
	unsigned int k;

	stream_attrs(cJSON_GetObjectItem(p, "attributes"), s);
	add_u64_string(p, "count", delta ? s->cur_count : s->total_count);
	cJSON_AddNumberToObject(p, "sum", delta ? s->cur_sum : s->total_sum);
	counts = cJSON_AddArrayToObject(p, "bucketCounts");
	bounds = cJSON_AddArrayToObject(p, "explicitBounds");
	for (k = 0; k <= DBTAP_OTLP_N_BOUNDS; k++)
		array_add_u64(counts, delta ? s->cur_buckets[k] : s->total_buckets[k]);
	for (k = 0; k < DBTAP_OTLP_N_BOUNDS; k++)
		cJSON_AddItemToArray(bounds, cJSON_CreateNumber((double)bounds_ns[k] / NS_PER_S));
	if (delta ? s->cur_count : s->total_count) {
		cJSON_AddNumberToObject(p, "min", delta ? s->cur_min : s->total_min);
		cJSON_AddNumberToObject(p, "max", delta ? s->cur_max : s->total_max);
	}
}

static void error_points(cJSON *points, const struct stream *s, bool delta, int64_t start_ns,
			 int64_t time_ns)
{
	size_t j;

	for (j = 0; j < s->n_errs; j++) {
		const struct err_count *ec = &s->errs[j];
		cJSON *p, *attrs;

		if (delta && !ec->cur)
			continue;
		p = point_new(points, delta ? start_ns : s->start_ns, time_ns);
		attrs = cJSON_GetObjectItem(p, "attributes");
		stream_attrs(attrs, s);
		attr_str(attrs, "db.response.status_code", ec->code);
		attr_str(attrs, "error.type", ec->code[0] ? ec->code : ERROR_TYPE_OTHER);
		add_u64_string(p, "asInt", delta ? ec->cur : ec->total);
	}
}

/* Sum data point with an optional attribute @akey=@aval; integer or double value. */
static void sum_point_u64(cJSON *points, int64_t start_ns, int64_t time_ns, const char *akey,
			  const char *aval, uint64_t v)
{
	cJSON *p = point_new(points, start_ns, time_ns);

	if (akey)
		attr_str(cJSON_GetObjectItem(p, "attributes"), akey, aval);
	add_u64_string(p, "asInt", v);
}

static void sum_point_double(cJSON *points, int64_t start_ns, int64_t time_ns, const char *akey,
			     const char *aval, double v)
{
	cJSON *p = point_new(points, start_ns, time_ns);

	if (akey)
		attr_str(cJSON_GetObjectItem(p, "attributes"), akey, aval);
	cJSON_AddNumberToObject(p, "asDouble", v);
}

static struct self_total *prog_total(struct dbtap_otlp_enc *e, const char *name)
{
	struct self_total *p;
	size_t i;

	for (i = 0; i < e->n_progs; i++)
		if (!strcmp(e->progs[i].name, name))
			return &e->progs[i];
	p = realloc(e->progs, (e->n_progs + 1) * sizeof(*p));
	if (!p)
		return NULL;
	e->progs = p;
	p = &e->progs[e->n_progs];
	memset(p, 0, sizeof(*p));
	p->name = strdup(name);
	if (!p->name)
		return NULL;
	e->n_progs++;
	return p;
}

/* A counter value: the running total (cumulative) or its change since the last export. */
#define COUNTER(total, prev) (delta ? (total) - (prev) : (total))

static int self_metrics(struct dbtap_otlp_enc *e, cJSON *metrics, const struct dbtap_snapshot *snap,
			const struct dbtap_otlp_stats *st, int64_t start_ns)
{
	const struct dbtap_self_stats *self = &snap->self;
	bool delta = e->o.delta;
	int temp = delta ? OTLP_TEMPORALITY_DELTA : OTLP_TEMPORALITY_CUMULATIVE;
	int64_t t = snap->time_ns, st0 = delta ? start_ns : e->start_ns;
	struct dbtap_otlp_stats zero = {0}, prev = e->stats_prev;
	cJSON *pts;
	unsigned int c;
	size_t i;

	if (!st)
		st = &zero;
	for (c = 0; c < DBTAP_CNT_MAX; c++)
		e->counter_total[c] += self->counters[c];
	e->series_dropped += self->series_dropped;
	e->samples_dropped += self->samples_dropped;

	pts = metric_new(metrics, "dbtap.events", "{event}",
			 "socket operations inspected on tracked processes", "sum", temp, true);
	sum_point_u64(
		pts, st0, t, NULL, NULL,
		COUNTER(e->counter_total[DBTAP_CNT_EVENTS], e->counter_prev[DBTAP_CNT_EVENTS]));
	pts = metric_new(metrics, "dbtap.operations", "{operation}",
			 "database operations completed and aggregated", "sum", temp, true);
	sum_point_u64(pts, st0, t, NULL, NULL,
		      COUNTER(e->counter_total[DBTAP_CNT_OPS], e->counter_prev[DBTAP_CNT_OPS]));

	pts = metric_new(metrics, "dbtap.drops", "{item}", "data lost, by cause", "sum", temp,
			 true);
	for (c = 0; c < DBTAP_CNT_MAX; c++) {
		const char *n = dbtap_counter_name(c);

		if (strncmp(n, DROP_PREFIX, strlen(DROP_PREFIX)) != 0)
			continue;
		sum_point_u64(pts, st0, t, "cause", n + strlen(DROP_PREFIX),
			      COUNTER(e->counter_total[c], e->counter_prev[c]));
	}
	sum_point_u64(pts, st0, t, "cause", "series_cap",
		      COUNTER(e->series_dropped, e->series_dropped_prev));
	sum_point_u64(pts, st0, t, "cause", "sample_cap",
		      COUNTER(e->samples_dropped, e->samples_dropped_prev));
	sum_point_u64(pts, st0, t, "cause", "otlp_queue_full",
		      COUNTER(st->requests_dropped, prev.requests_dropped));
	sum_point_u64(pts, st0, t, "cause", "otlp_rejected",
		      COUNTER(st->requests_rejected, prev.requests_rejected));
	sum_point_u64(pts, st0, t, "cause", "otlp_retries_expired",
		      COUNTER(st->requests_expired, prev.requests_expired));

	/*
	 * Only for an interval the kernel counted in: otherwise the zeros would read as "free".
	 * The totals follow the kernel's counters either way, so a later point stays right.
	 */
	if (self->n_progs) {
		cJSON *times = NULL, *runs = NULL;

		if (self->bpf_stats) {
			times = metric_new(metrics, "dbtap.bpf.run_time", "s",
					   "time spent in each BPF program (bpf-stats)", "sum",
					   temp, true);
			runs = metric_new(metrics, "dbtap.bpf.runs", "{run}",
					  "runs of each BPF program (bpf-stats)", "sum", temp,
					  true);
		}
		for (i = 0; i < self->n_progs; i++) {
			struct self_total *p = prog_total(e, self->progs[i].name);

			if (!p)
				return -ENOMEM;
			p->dtotal += (double)self->progs[i].run_time_ns / NS_PER_S;
			p->total += self->progs[i].run_cnt;
			if (self->bpf_stats) {
				sum_point_double(times, st0, t, "dbtap.bpf.program", p->name,
						 COUNTER(p->dtotal, p->dprev));
				sum_point_u64(runs, st0, t, "dbtap.bpf.program", p->name,
					      COUNTER(p->total, p->prev));
			}
			p->dprev = p->dtotal;
			p->prev = p->total;
		}
	}
	pts = metric_new(metrics, "process.cpu.time", "s", "dbtap's CPU time, user + system", "sum",
			 temp, true);
	sum_point_double(pts, st0, t, NULL, NULL, delta ? self->cpu_s : self->cpu_total_s);
	pts = metric_new(metrics, "process.memory.usage", "By", "dbtap's resident set size",
			 "gauge", 0, false);
	add_u64_string(point_new(pts, 0, t), "asInt", self->rss_bytes);

	pts = metric_new(metrics, "dbtap.otlp.bytes", "By",
			 "OTLP request bodies: encoded JSON (uncompressed) and sent (after gzip)",
			 "sum", temp, true);
	sum_point_u64(pts, st0, t, "dbtap.otlp.body", "uncompressed",
		      COUNTER(st->bytes_uncompressed, prev.bytes_uncompressed));
	sum_point_u64(pts, st0, t, "dbtap.otlp.body", "sent",
		      COUNTER(st->bytes_sent, prev.bytes_sent));
	pts = metric_new(metrics, "dbtap.otlp.requests", "{request}", "OTLP requests by outcome",
			 "sum", temp, true);
	sum_point_u64(pts, st0, t, "outcome", "ok", COUNTER(st->requests_ok, prev.requests_ok));
	sum_point_u64(pts, st0, t, "outcome", "retried",
		      COUNTER(st->requests_retried, prev.requests_retried));
	sum_point_u64(pts, st0, t, "outcome", "rejected",
		      COUNTER(st->requests_rejected, prev.requests_rejected));
	sum_point_u64(pts, st0, t, "outcome", "expired",
		      COUNTER(st->requests_expired, prev.requests_expired));
	sum_point_u64(pts, st0, t, "outcome", "dropped",
		      COUNTER(st->requests_dropped, prev.requests_dropped));
	sum_point_u64(pts, st0, t, "outcome", "partial_success",
		      COUNTER(st->partial_success, prev.partial_success));
	pts = metric_new(metrics, "dbtap.otlp.queue.size", "By", "bytes waiting to be sent",
			 "gauge", 0, false);
	add_u64_string(point_new(pts, 0, t), "asInt", st->queue_bytes);
	pts = metric_new(metrics, "dbtap.otlp.series.folded", "{series}",
			 "metric streams folded into the otel.metric.overflow stream by the cap",
			 "sum", temp, true);
	sum_point_u64(pts, st0, t, NULL, NULL, COUNTER(e->folded, e->stats_prev.series_folded));

	memcpy(e->counter_prev, e->counter_total, sizeof(e->counter_prev));
	e->series_dropped_prev = e->series_dropped;
	e->samples_dropped_prev = e->samples_dropped;
	e->stats_prev = *st;
	e->stats_prev.series_folded = e->folded;
	return 0;
}

cJSON *dbtap_otlp_enc_metrics(struct dbtap_otlp_enc *e, const struct dbtap_snapshot *snap,
			      const struct dbtap_otlp_stats *stats)
{
	int64_t start_ns = e->last_time_ns ? e->last_time_ns
					   : snap->time_ns - (int64_t)(snap->interval_s * NS_PER_S);
	bool delta = e->o.delta;
	int temp = delta ? OTLP_TEMPORALITY_DELTA : OTLP_TEMPORALITY_CUMULATIVE;
	cJSON *doc = cJSON_CreateObject(), *top, *metrics;
	uint32_t *pids = NULL;
	size_t i, j, n_pids = 0;

	if (!doc)
		return NULL;
	top = cJSON_AddArrayToObject(doc, "resourceMetrics");
	for (i = 0; i < e->n_streams; i++)
		stream_reset_interval(e->streams[i]);
	for (i = 0; i < snap->n_series; i++) {
		const struct dbtap_series *ser = &snap->series[i];
		struct stream *s;

		if (!ser->count)
			continue;
		s = stream_for(e, ser, start_ns);
		if (!s || stream_update(s, ser))
			goto fail;
	}
	/* one resource per instance, in the order streams were created */
	pids = calloc(e->n_streams + 1, sizeof(*pids));
	if (!pids)
		goto fail;
	for (i = 0; i < e->n_streams; i++) {
		for (j = 0; j < n_pids; j++)
			if (pids[j] == e->streams[i]->pid)
				break;
		if (j == n_pids)
			pids[n_pids++] = e->streams[i]->pid;
	}
	for (j = 0; j < n_pids; j++) {
		cJSON *hist = NULL, *errs = NULL;
		const struct stream *first = NULL;

		for (i = 0; i < e->n_streams; i++) {
			const struct stream *s = e->streams[i];

			if (s->pid != pids[j] || (delta && !s->cur_count))
				continue;
			if (!first) {
				const struct dbtap_instance_info *in = instance_of(snap, s->pid);
				const char *addr = "";
				int port = 0;
				size_t k;

				for (k = 0; !in && k < snap->n_series; k++)
					if (snap->series[k].instance_pid == s->pid) {
						addr = snap->series[k].server_address;
						port = snap->series[k].server_port;
						break;
					}
				first = s;
				metrics = resource_block(
					top,
					resource_new(e, in, s->pid, s->system, addr, port, false),
					"scopeMetrics", "metrics");
				hist = metric_new(metrics, "db.server.operation.duration", "s",
						  "Duration of database operations as the server "
						  "handled them (request read to response written)",
						  "histogram", temp, false);
			}
			histogram_point(hist, s, delta, start_ns, snap->time_ns);
			if (s->n_errs) {
				if (!errs)
					errs = metric_new(
						metrics, "db.server.operation.errors",
						"{operation}",
						"Failed database operations by status code", "sum",
						temp, true);
				error_points(errs, s, delta, start_ns, snap->time_ns);
			}
		}
		/* a delta interval without failures: no empty metric */
		if (errs && !cJSON_GetArraySize(errs))
			cJSON_DeleteItemFromArray(metrics, cJSON_GetArraySize(metrics) - 1);
	}
	metrics = resource_block(top, resource_new(e, NULL, getpid(), "", "", 0, true),
				 "scopeMetrics", "metrics");
	if (self_metrics(e, metrics, snap, stats, start_ns))
		goto fail;
	e->last_time_ns = snap->time_ns;
	free(pids);
	return doc;
fail:
	free(pids);
	cJSON_Delete(doc);
	return NULL;
}

/* ---- spans and logs ---- */

/* Span name by the semantic-convention rule. */
static void span_name(const struct dbtap_series *s, char *buf, size_t size)
{
	if (*s->summary)
		snprintf(buf, size, "%s", s->summary);
	else if (*s->operation && *s->collection)
		snprintf(buf, size, "%s %s", s->operation, s->collection);
	else if (*s->operation)
		snprintf(buf, size, "%s", s->operation);
	else if (*s->collection)
		snprintf(buf, size, "%s", s->collection);
	else
		snprintf(buf, size, "%s", s->system);
}

static bool sample_failed(const struct dbtap_sample *sm)
{
	return (sm->reasons & DBTAP_SAMPLE_ERROR) || sm->status[0];
}

/* Attributes shared by a sample's span and log record. */
static void sample_attrs(cJSON *attrs, const struct dbtap_sample *sm)
{
	const struct dbtap_series *s = sm->series;
	char addr[INET6_ADDRSTRLEN];

	attr_str(attrs, "db.system.name", s->system);
	attr_str(attrs, "db.namespace", s->db_namespace);
	attr_str(attrs, "db.operation.name", s->operation);
	attr_str(attrs, "db.collection.name", s->collection);
	attr_str(attrs, "db.query.summary", s->summary);
	attr_str(attrs, "db.query.text", s->query_text);
	if (sample_failed(sm)) {
		attr_str(attrs, "db.response.status_code", sm->status);
		attr_str(attrs, "error.type", sm->status[0] ? sm->status : ERROR_TYPE_OTHER);
	}
	if (s->flags & DBTAP_AGG_F_BATCH) /* a batch's rows are its commands (Redis EXEC) */
		attr_int(attrs, "db.operation.batch.size", (int64_t)sm->rows);
	else
		attr_int(attrs, "db.response.returned_rows", (int64_t)sm->rows);
	attr_str(attrs, "server.address", s->server_address);
	if (s->server_port)
		attr_int(attrs, "server.port", s->server_port);
	if (sm->peer.family == AF_UNIX) {
		attr_str(attrs, "network.transport", "unix");
	} else if (sm->peer.family == AF_INET || sm->peer.family == AF_INET6) {
		attr_str(attrs, "network.transport", "tcp");
		if (inet_ntop(sm->peer.family, sm->peer.addr, addr, sizeof(addr)))
			attr_str(attrs, "client.address", addr);
		if (sm->peer.port)
			attr_int(attrs, "client.port", sm->peer.port);
	}
}

/* Resource block for @pid in @top, created on first use: items array returned. */
static cJSON *items_for(const struct dbtap_otlp_enc *e, const struct dbtap_snapshot *snap,
			cJSON *top, uint32_t *pids, cJSON **items, size_t *n,
			const struct dbtap_series *s, const char *scope_key, const char *items_key)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (pids[i] == s->instance_pid)
			return items[i];
	pids[*n] = s->instance_pid;
	items[*n] =
		resource_block(top,
			       resource_new(e, instance_of(snap, s->instance_pid), s->instance_pid,
					    s->system, s->server_address, s->server_port, false),
			       scope_key, items_key);
	return items[(*n)++];
}

int dbtap_otlp_enc_samples(struct dbtap_otlp_enc *e, const struct dbtap_snapshot *snap,
			   cJSON **ret_traces, cJSON **ret_logs)
{
	size_t n = snap->n_samples + 1, nt = 0, nl = 0, i;
	uint32_t *tpids = calloc(n, sizeof(*tpids)), *lpids = calloc(n, sizeof(*lpids));
	cJSON **titems = calloc(n, sizeof(*titems)), **litems = calloc(n, sizeof(*litems));
	cJSON *traces = cJSON_CreateObject(), *logs = cJSON_CreateObject(), *ttop, *ltop;
	char name[512];
	int ret = -ENOMEM;

	*ret_traces = *ret_logs = NULL;
	if (!tpids || !lpids || !titems || !litems || !traces || !logs)
		goto out;
	ttop = cJSON_AddArrayToObject(traces, "resourceSpans");
	ltop = cJSON_AddArrayToObject(logs, "resourceLogs");
	for (i = 0; i < snap->n_samples; i++) {
		const struct dbtap_sample *sm = &snap->samples[i];
		uint8_t trace_id[TRACE_ID_LEN], span_id[SPAN_ID_LEN];
		cJSON *span, *status, *attrs;

		if (!sm->series)
			continue;
		if (sm->has_parent && !all_zero(sm->trace_id, TRACE_ID_LEN))
			memcpy(trace_id, sm->trace_id, TRACE_ID_LEN);
		else
			random_id(trace_id, TRACE_ID_LEN);
		random_id(span_id, SPAN_ID_LEN);
		span_name(sm->series, name, sizeof(name));

		span = cJSON_CreateObject();
		add_hex(span, "traceId", trace_id, TRACE_ID_LEN);
		add_hex(span, "spanId", span_id, SPAN_ID_LEN);
		if (sm->has_parent && !all_zero(sm->parent_span_id, SPAN_ID_LEN))
			add_hex(span, "parentSpanId", sm->parent_span_id, SPAN_ID_LEN);
		cJSON_AddStringToObject(span, "name", name);
		cJSON_AddNumberToObject(span, "kind", OTLP_SPAN_KIND_SERVER);
		add_u64_string(span, "startTimeUnixNano", (uint64_t)sm->start_ns);
		add_u64_string(span, "endTimeUnixNano", (uint64_t)sm->end_ns);
		attrs = cJSON_AddArrayToObject(span, "attributes");
		sample_attrs(attrs, sm);
		if (sample_failed(sm)) {
			status = cJSON_AddObjectToObject(span, "status");
			cJSON_AddNumberToObject(status, "code", OTLP_STATUS_ERROR);
			if (sm->status[0])
				cJSON_AddStringToObject(status, "message", sm->status);
		}
		cJSON_AddItemToArray(items_for(e, snap, ttop, tpids, titems, &nt, sm->series,
					       "scopeSpans", "spans"),
				     span);

		if (sm->reasons & DBTAP_SAMPLE_SLOW) {
			cJSON *rec = cJSON_CreateObject(), *body;
			char text[700];

			add_u64_string(rec, "timeUnixNano", (uint64_t)sm->end_ns);
			add_u64_string(rec, "observedTimeUnixNano", (uint64_t)snap->time_ns);
			cJSON_AddNumberToObject(rec, "severityNumber", OTLP_SEVERITY_WARN);
			cJSON_AddStringToObject(rec, "severityText", "WARN");
			snprintf(text, sizeof(text), "slow query: %s took %.3f ms", name,
				 (double)sm->duration_ns / 1e6);
			body = cJSON_AddObjectToObject(rec, "body");
			cJSON_AddStringToObject(body, "stringValue", text);
			attrs = cJSON_AddArrayToObject(rec, "attributes");
			attr_str(attrs, "event.name", SLOW_QUERY_EVENT);
			sample_attrs(attrs, sm);
			attr_double(attrs, "db.server.operation.duration",
				    (double)sm->duration_ns / NS_PER_S);
			add_hex(rec, "traceId", trace_id, TRACE_ID_LEN);
			add_hex(rec, "spanId", span_id, SPAN_ID_LEN);
			cJSON_AddItemToArray(items_for(e, snap, ltop, lpids, litems, &nl,
						       sm->series, "scopeLogs", "logRecords"),
					     rec);
		}
	}
	if (nt) {
		*ret_traces = traces;
		traces = NULL;
	}
	if (nl) {
		*ret_logs = logs;
		logs = NULL;
	}
	ret = 0;
out:
	cJSON_Delete(traces);
	cJSON_Delete(logs);
	free(tpids);
	free(lpids);
	free(titems);
	free(litems);
	return ret;
}

/* ---- splitting ---- */

/* The array member of @obj whose name starts with @prefix. */
static cJSON *member_array(const cJSON *obj, const char *prefix)
{
	cJSON *c;

	cJSON_ArrayForEach (c, obj)
		if (cJSON_IsArray(c) && c->string && !strncmp(c->string, prefix, strlen(prefix)))
			return c;
	return NULL;
}

/* Arrays of leaves of a metric: its data object's dataPoints. */
static cJSON *metric_points(const cJSON *metric)
{
	cJSON *c;

	cJSON_ArrayForEach (c, metric)
		if (cJSON_IsObject(c) && cJSON_GetObjectItem(c, "dataPoints"))
			return cJSON_GetObjectItem(c, "dataPoints");
	return NULL;
}

/* Delete leaves outside [lo, hi) in document order and containers left empty; count leaves. */
static size_t leaves_prune(cJSON *doc, size_t lo, size_t hi, bool prune)
{
	cJSON *top = doc ? doc->child : NULL, *res, *res_next;
	size_t idx = 0;

	if (!top || !cJSON_IsArray(top))
		return 0;
	for (res = top->child; res; res = res_next) {
		cJSON *scopes = member_array(res, "scope"), *sc, *sc_next;

		res_next = res->next;
		for (sc = scopes ? scopes->child : NULL; sc; sc = sc_next) {
			cJSON *metrics = cJSON_GetObjectItem(sc, "metrics");
			cJSON *items = metrics ? NULL : member_array(sc, "spans");
			cJSON *m, *m_next, *leaf, *leaf_next;

			sc_next = sc->next;
			if (!items)
				items = metrics ? NULL : member_array(sc, "logRecords");
			for (m = metrics ? metrics->child : NULL; m; m = m_next) {
				cJSON *pts = metric_points(m);

				m_next = m->next;
				for (leaf = pts ? pts->child : NULL; leaf; leaf = leaf_next) {
					leaf_next = leaf->next;
					if (prune && (idx < lo || idx >= hi))
						cJSON_Delete(cJSON_DetachItemViaPointer(pts, leaf));
					idx++;
				}
				if (prune && (!pts || !pts->child))
					cJSON_Delete(cJSON_DetachItemViaPointer(metrics, m));
			}
			for (leaf = items ? items->child : NULL; leaf; leaf = leaf_next) {
				leaf_next = leaf->next;
				if (prune && (idx < lo || idx >= hi))
					cJSON_Delete(cJSON_DetachItemViaPointer(items, leaf));
				idx++;
			}
			if (prune && !(metrics ? metrics->child : items ? items->child : NULL))
				cJSON_Delete(cJSON_DetachItemViaPointer(scopes, sc));
		}
		if (prune && (!scopes || !scopes->child))
			cJSON_Delete(cJSON_DetachItemViaPointer(top, res));
	}
	return idx;
}

size_t dbtap_otlp_leaves(const cJSON *doc)
{
	return leaves_prune((cJSON *)doc, 0, SIZE_MAX, false);
}

struct bodies {
	char **v;
	size_t n;
};

static int split_rec(const cJSON *doc, size_t max_bytes, struct bodies *out)
{
	char *body = cJSON_PrintUnformatted(doc), **p;
	size_t leaves, half;
	cJSON *a, *b;
	int ret;

	if (!body)
		return -ENOMEM;
	leaves = dbtap_otlp_leaves(doc);
	if (strlen(body) <= max_bytes || leaves <= 1) {
		p = realloc(out->v, (out->n + 1) * sizeof(*p));
		if (!p) {
			free(body);
			return -ENOMEM;
		}
		out->v = p;
		out->v[out->n++] = body;
		return 0;
	}
	free(body);
	half = leaves / 2;
	a = cJSON_Duplicate(doc, true);
	b = cJSON_Duplicate(doc, true);
	if (!a || !b) {
		cJSON_Delete(a);
		cJSON_Delete(b);
		return -ENOMEM;
	}
	leaves_prune(a, 0, half, true);
	leaves_prune(b, half, leaves, true);
	ret = split_rec(a, max_bytes, out);
	if (!ret)
		ret = split_rec(b, max_bytes, out);
	cJSON_Delete(a);
	cJSON_Delete(b);
	return ret;
}

int dbtap_otlp_split(const cJSON *doc, size_t max_bytes, char ***ret_bodies, size_t *ret_n)
{
	struct bodies out = {0};
	size_t i;
	int ret = split_rec(doc, max_bytes, &out);

	if (ret) {
		for (i = 0; i < out.n; i++)
			free(out.v[i]);
		free(out.v);
		return ret;
	}
	*ret_bodies = out.v;
	*ret_n = out.n;
	return 0;
}
