// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * jsonl.c - writes each interval's snapshot as JSON lines (docs/output.md is the contract).
 *
 * The JSON is written by hand, without a library, into a reusable line buffer that goes to
 * the stream with one fwrite per line, so a reader never sees half a line from a failed
 * allocation. Strings are escaped per RFC 8259; bytes that are not valid UTF-8 become U+FFFD.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "exporters/jsonl.h"
#include "userspace/utf8.h"

#define NS_PER_S	     1000000000LL
#define NS_PER_MS	     1000000LL
#define NS_PER_US	     1000LL
#define MS_DIGITS	     3 /* decimals of a time with milliseconds */
#define US_DIGITS	     6 /* decimals of a time with microseconds */
#define LINE_BUF_INITIAL     4096
#define DBL_ROUNDTRIP_DIGITS 17	     /* significant digits that always round-trip a double */
#define DROP_PREFIX	     "drop." /* dbtap_counter_name() prefix of the loss counters */

#define KIND_SERIES "dbtap.series"
#define KIND_SAMPLE "dbtap.sample"
#define KIND_SELF   "dbtap.self"

/* error.type of a failed operation whose status code is not known (OpenTelemetry's value) */
#define ERROR_TYPE_OTHER "_OTHER"

/* Names of the DBTAP_SAMPLE_* reasons, in the order they are written. */
static const struct {
	uint32_t bit;
	const char *name;
} sample_reasons[] = {
	{DBTAP_SAMPLE_SLOW, "slow"},
	{DBTAP_SAMPLE_ERROR, "error"},
	{DBTAP_SAMPLE_MAX, "max"},
	{DBTAP_SAMPLE_RANDOM, "random"},
};

struct dbtap_jsonl {
	FILE *fp;
	char *buf; /* the line being built */
	size_t len;
	size_t cap;
	int err; /* first -errno while building the line, 0 if none */
};

/* ---- line buffer ---- */

/* Make room for @n more bytes plus a NUL; false (and j->err set) when out of memory. */
static bool buf_reserve(struct dbtap_jsonl *j, size_t n)
{
	size_t cap = j->cap ? j->cap : LINE_BUF_INITIAL;
	char *p;

	if (j->err)
		return false;
	if (j->len + n + 1 <= j->cap)
		return true;
	while (cap < j->len + n + 1)
		cap *= 2;
	p = realloc(j->buf, cap);
	if (!p) {
		j->err = -ENOMEM;
		return false;
	}
	j->buf = p;
	j->cap = cap;
	return true;
}

static void put_mem(struct dbtap_jsonl *j, const char *s, size_t n)
{
	if (!buf_reserve(j, n))
		return;
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void put_raw(struct dbtap_jsonl *j, const char *s)
{
	put_mem(j, s, strlen(s));
}

static void put_char(struct dbtap_jsonl *j, char c)
{
	put_mem(j, &c, 1);
}

__attribute__((format(printf, 2, 3))) static void put_fmt(struct dbtap_jsonl *j, const char *fmt,
							  ...)
{
	char small[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		j->err = j->err ? j->err : -EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		put_mem(j, small, (size_t)n);
		return;
	}
	if (!buf_reserve(j, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(j->buf + j->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	j->len += (size_t)n;
}

/* ---- JSON values ---- */

#define UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */
#define JSON_CTRL_LIMIT	 0x20		/* RFC 8259: U+0000..U+001F must be escaped */

/*
 * @s as a JSON string: '"' and '\' backslash-escaped, control characters as \u00XX, each byte
 * that is not part of well-formed UTF-8 replaced by U+FFFD. NULL is written as "".
 */
static void put_string(struct dbtap_jsonl *j, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	const unsigned char *run = p; /* start of bytes copied as they are */
	int n;

	put_char(j, '"');
	while (*p) {
		if (*p >= JSON_CTRL_LIMIT && *p != '"' && *p != '\\' && *p < 0x80) {
			p++;
			continue;
		}
		n = *p >= 0x80 ? dbtap_utf8_seq_len(p) : 0;
		if (n > 1) {
			p += n;
			continue;
		}
		put_mem(j, (const char *)run, (size_t)(p - run));
		if (*p == '"')
			put_raw(j, "\\\"");
		else if (*p == '\\')
			put_raw(j, "\\\\");
		else if (*p < JSON_CTRL_LIMIT)
			put_fmt(j, "\\u%04x", *p);
		else
			put_raw(j, UTF8_REPLACEMENT);
		p++;
		run = p;
	}
	put_mem(j, (const char *)run, (size_t)(p - run));
	put_char(j, '"');
}

/*
 * A double in the shortest %g form that reads back to the same value, so 0.1 is "0.1" and
 * not "0.10000000000000001". JSON has no NaN or infinity: those are written as 0.
 */
static void put_double(struct dbtap_jsonl *j, double v)
{
	char tmp[40];
	int prec;

	if (!isfinite(v))
		v = 0;
	for (prec = 1; prec <= DBL_ROUNDTRIP_DIGITS; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	/* a locale with a decimal comma would break JSON; strtod above used the same locale */
	for (char *c = tmp; *c; c++)
		if (*c == ',')
			*c = '.';
	put_raw(j, tmp);
}

static void put_u64(struct dbtap_jsonl *j, uint64_t v)
{
	put_fmt(j, "%" PRIu64, v);
}

/* "key": with the comma that separates it from a previous member of the same object. */
static void put_key(struct dbtap_jsonl *j, const char *key)
{
	if (j->len && j->buf[j->len - 1] != '{' && j->buf[j->len - 1] != '[')
		put_char(j, ',');
	put_string(j, key);
	put_char(j, ':');
}

static void member_str(struct dbtap_jsonl *j, const char *key, const char *v)
{
	put_key(j, key);
	put_string(j, v);
}

/* Only when @v is a non-empty string: the contract omits unknown attributes. */
static void member_str_opt(struct dbtap_jsonl *j, const char *key, const char *v)
{
	if (v && v[0])
		member_str(j, key, v);
}

static void member_u64(struct dbtap_jsonl *j, const char *key, uint64_t v)
{
	put_key(j, key);
	put_u64(j, v);
}

static void member_double(struct dbtap_jsonl *j, const char *key, double v)
{
	put_key(j, key);
	put_double(j, v);
}

/*
 * @key: @time_ns as RFC 3339 UTC with the fraction of a second truncated to @frac_digits (3:
 * milliseconds, "2026-11-22T19:00:05.123Z"; 6: microseconds, "2026-11-22T19:00:05.123456Z"),
 * @frac_unit_ns being the nanoseconds of one last digit.
 */
static void member_timestamp(struct dbtap_jsonl *j, const char *key, int64_t time_ns,
			     int frac_digits, int64_t frac_unit_ns)
{
	int64_t sec = time_ns / NS_PER_S, rem = time_ns % NS_PER_S;
	time_t t;
	struct tm tm;

	if (rem < 0) { /* floor division for times before 1970 */
		rem += NS_PER_S;
		sec--;
	}
	t = (time_t)sec;
	put_key(j, key);
	if (!gmtime_r(&t, &tm)) {
		j->err = j->err ? j->err : -EOVERFLOW;
		return;
	}
	put_fmt(j, "\"%04d-%02d-%02dT%02d:%02d:%02d.%0*" PRId64 "Z\"", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac_digits,
		rem / frac_unit_ns);
}

/* "time": the end of the interval, with milliseconds. */
static void member_time(struct dbtap_jsonl *j, int64_t time_ns)
{
	member_timestamp(j, "time", time_ns, MS_DIGITS, NS_PER_MS);
}

/* A sample's "start" or "end", with microseconds. */
static void member_time_us(struct dbtap_jsonl *j, const char *key, int64_t time_ns)
{
	member_timestamp(j, key, time_ns, US_DIGITS, NS_PER_US);
}

/* ---- objects ---- */

/* Common head of every line: time, interval_s, kind. */
static void put_head(struct dbtap_jsonl *j, const struct dbtap_snapshot *snap, const char *kind)
{
	put_char(j, '{');
	member_time(j, snap->time_ns);
	member_double(j, "interval_s", snap->interval_s);
	member_str(j, "kind", kind);
}

/* The percentile rounded to whole nanoseconds (the resolution of the measurements; more digits
 * would only print interpolation noise). */
static double series_percentile(const struct dbtap_series *s, double q)
{
	return nearbyint(dbtap_series_percentile(s, q) * NS_PER_S) / NS_PER_S;
}

/* What identifies a series, also written on each of its samples: instance, names, query. */
static void put_labels(struct dbtap_jsonl *j, const struct dbtap_series *s)
{
	member_str(j, "db.system.name", s->system);
	member_u64(j, "process.pid", s->instance_pid);
	member_str_opt(j, "server.address", s->server_address);
	if (s->server_port > 0)
		member_u64(j, "server.port", (uint64_t)s->server_port);
	member_str_opt(j, "server.socket", s->server_socket);
	member_str_opt(j, "db.namespace", s->db_namespace);
	member_str_opt(j, "db.user", s->db_user);
	member_str(j, "db.operation.name", s->operation);
	member_str(j, "db.query.summary", s->summary);
	member_str_opt(j, "db.collection.name", s->collection);
	if (s->text_known)
		member_str_opt(j, "db.query.text", s->query_text);
	put_key(j, "dbtap.query_hash");
	put_fmt(j, "\"%016" PRIx64 "\"", s->query_hash);
	put_key(j, "dbtap.text_known");
	put_raw(j, s->text_known ? "true" : "false");
	if (s->flags & DBTAP_AGG_F_BLOCKING) {
		put_key(j, "dbtap.blocking");
		put_raw(j, "true");
	}
	if (s->flags & DBTAP_AGG_F_BATCH) {
		put_key(j, "dbtap.batch");
		put_raw(j, "true");
	}
}

static void put_series(struct dbtap_jsonl *j, const struct dbtap_snapshot *snap,
		       const struct dbtap_series *s)
{
	size_t i;

	put_head(j, snap, KIND_SERIES);
	put_labels(j, s);
	member_u64(j, "count", s->count);
	member_u64(j, "errors", s->errors);
	member_u64(j, "rows", s->rows);

	put_key(j, "error_codes");
	put_char(j, '{');
	for (i = 0; i < s->n_status; i++) {
		const struct dbtap_status_count *st = &s->status[i];
		char code[DBTAP_STATUS_LEN + 1];

		/* NUL padded, but a code may use all DBTAP_STATUS_LEN bytes */
		memcpy(code, st->code, DBTAP_STATUS_LEN);
		code[DBTAP_STATUS_LEN] = '\0';
		member_u64(j, code, st->count);
	}
	put_char(j, '}');

	put_key(j, "duration_s");
	put_char(j, '{');
	member_double(j, "sum", s->sum_s);
	member_double(j, "min", s->min_s);
	member_double(j, "max", s->max_s);
	member_double(j, "p50", series_percentile(s, 0.50));
	member_double(j, "p90", series_percentile(s, 0.90));
	member_double(j, "p99", series_percentile(s, 0.99));
	put_char(j, '}');
	put_raw(j, "}\n");
}

/*
 * The client end of a sample's connection: TCP peers by address and port, unix sockets by
 * transport alone (their peer has no useful name); nothing when the family is unknown.
 */
static void put_peer(struct dbtap_jsonl *j, const struct dbtap_addr *peer)
{
	char addr[INET6_ADDRSTRLEN];

	if (peer->family == AF_UNIX) {
		member_str(j, "network.transport", "unix");
		return;
	}
	if (peer->family != AF_INET && peer->family != AF_INET6)
		return;
	member_str(j, "network.transport", "tcp");
	if (inet_ntop(peer->family, peer->addr, addr, sizeof(addr)))
		member_str(j, "network.peer.address", addr);
	if (peer->port)
		member_u64(j, "network.peer.port", peer->port);
}

static void put_sample(struct dbtap_jsonl *j, const struct dbtap_snapshot *snap,
		       const struct dbtap_sample *sm)
{
	bool failed = sm->reasons & DBTAP_SAMPLE_ERROR;
	bool first = true;
	size_t i;

	put_head(j, snap, KIND_SAMPLE);
	put_labels(j, sm->series);
	member_time_us(j, "start", sm->start_ns);
	member_time_us(j, "end", sm->end_ns);
	member_double(j, "duration_s", (double)sm->duration_ns / NS_PER_S);

	put_key(j, "reasons");
	put_char(j, '[');
	for (i = 0; i < sizeof(sample_reasons) / sizeof(sample_reasons[0]); i++) {
		if (!(sm->reasons & sample_reasons[i].bit))
			continue;
		if (!first)
			put_char(j, ',');
		put_string(j, sample_reasons[i].name);
		first = false;
	}
	put_char(j, ']');

	if (failed) {
		member_str_opt(j, "db.response.status_code", sm->status);
		member_str(j, "error.type", sm->status[0] ? sm->status : ERROR_TYPE_OTHER);
	}
	member_u64(j, "rows", sm->rows);
	if (sm->series->flags & DBTAP_AGG_F_BATCH) /* a batch's rows are its commands */
		member_u64(j, "db.operation.batch.size", sm->rows);
	put_peer(j, &sm->peer);
	member_u64(j, "thread.id", sm->tid);
	put_raw(j, "}\n");
}

static void put_self(struct dbtap_jsonl *j, const struct dbtap_snapshot *snap)
{
	const struct dbtap_self_stats *st = &snap->self;
	size_t drop_len = strlen(DROP_PREFIX);
	size_t i;
	int c;

	put_head(j, snap, KIND_SELF);
	member_str(j, "capture_path", st->capture_path);
	member_u64(j, "events", st->counters[DBTAP_CNT_EVENTS]);
	member_u64(j, "ops", st->counters[DBTAP_CNT_OPS]);
	member_u64(j, "samples", st->counters[DBTAP_CNT_SAMPLES]);
	member_u64(j, "texts", st->counters[DBTAP_CNT_TEXTS]);
	member_u64(j, "ringbuf_events", st->ringbuf_events);
	member_u64(j, "series_dropped", st->series_dropped);
	member_u64(j, "samples_dropped", st->samples_dropped);
	if (st->otlp) {
		put_key(j, "otlp");
		put_char(j, '{');
		member_u64(j, "requests_dropped", st->otlp_requests_dropped);
		member_u64(j, "bytes_dropped", st->otlp_bytes_dropped);
		member_u64(j, "requests_rejected", st->otlp_requests_rejected);
		member_u64(j, "requests_expired", st->otlp_requests_expired);
		put_char(j, '}');
	}

	put_key(j, "counters");
	put_char(j, '{');
	for (c = 0; c < DBTAP_CNT_MAX; c++)
		member_u64(j, dbtap_counter_name(c), st->counters[c]);
	put_char(j, '}');

	put_key(j, "drops");
	put_char(j, '{');
	for (c = 0; c < DBTAP_CNT_MAX; c++) {
		const char *name = dbtap_counter_name(c);

		if (strncmp(name, DROP_PREFIX, drop_len) == 0)
			member_u64(j, name + drop_len, st->counters[c]);
	}
	put_char(j, '}');

	member_u64(j, "undecodable", st->counters[DBTAP_CNT_UNDECODABLE]);

	/* false: the kernel did not count, and every run_cnt and run_time_ns below is 0 */
	put_key(j, "bpf_stats");
	put_raw(j, st->bpf_stats ? "true" : "false");
	put_key(j, "bpf_programs");
	put_char(j, '[');
	for (i = 0; i < st->n_progs; i++) {
		if (i)
			put_char(j, ',');
		put_char(j, '{');
		member_str(j, "name", st->progs[i].name);
		member_u64(j, "run_cnt", st->progs[i].run_cnt);
		member_u64(j, "run_time_ns", st->progs[i].run_time_ns);
		put_char(j, '}');
	}
	put_char(j, ']');

	member_double(j, "cpu_s", st->cpu_s);
	member_double(j, "cpu_total_s", st->cpu_total_s);
	member_u64(j, "rss_bytes", st->rss_bytes);
	put_raw(j, "}\n");
}

/* ---- output ---- */

/* Send the built line to the stream and empty the buffer. 0 or -errno. */
static int flush_line(struct dbtap_jsonl *j)
{
	int err = j->err;

	j->err = 0;
	if (!err) {
		errno = 0;
		if (fwrite(j->buf, 1, j->len, j->fp) != j->len)
			err = errno ? -errno : -EIO;
	}
	j->len = 0;
	return err;
}

struct dbtap_jsonl *dbtap_jsonl_new(FILE *fp)
{
	struct dbtap_jsonl *j;

	if (!fp) {
		errno = EINVAL;
		return NULL;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->fp = fp;
	return j;
}

int dbtap_jsonl_write(struct dbtap_jsonl *j, const struct dbtap_snapshot *snap)
{
	int err;
	size_t i;

	if (!j || !snap || (snap->n_series && !snap->series) ||
	    (snap->n_samples && !snap->samples) || (snap->self.n_progs && !snap->self.progs))
		return -EINVAL;
	for (i = 0; i < snap->n_samples; i++)
		if (!snap->samples[i].series)
			return -EINVAL;

	for (i = 0; i < snap->n_series; i++) {
		if (snap->series[i].count == 0)
			continue;
		put_series(j, snap, &snap->series[i]);
		err = flush_line(j);
		if (err)
			return err;
	}
	for (i = 0; i < snap->n_samples; i++) {
		put_sample(j, snap, &snap->samples[i]);
		err = flush_line(j);
		if (err)
			return err;
	}
	put_self(j, snap);
	err = flush_line(j);
	if (err)
		return err;
	errno = 0;
	if (fflush(j->fp) != 0)
		return errno ? -errno : -EIO;
	return 0;
}

void dbtap_jsonl_free(struct dbtap_jsonl *j)
{
	if (!j)
		return;
	free(j->buf);
	free(j);
}
