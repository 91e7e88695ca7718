// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_otlp.c - unit tests of the OTLP encoder (exporters/otlp_encode.c) and the transport's
 * pure parts: the encoding rules of docs/otlp.md (64-bit integers as strings, hex ids,
 * integer enums, bucketCounts = bounds + 1, increasing bounds, cumulative vs delta), the
 * histogram fold, request splitting, key=value lists, backoff, gzip, OTEL_* settings.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <zlib.h>

#include "exporters/otlp_internal.h"

#define NS_PER_S 1000000000LL
#define T0	 1700000000000000000LL

static struct dbtap_status_count codes[] = {{"42P01", 2}};

static struct dbtap_series make_series(uint64_t count)
{
	struct dbtap_series s = {
		.system = "postgresql",
		.instance_pid = 100,
		.server_address = "127.0.0.1",
		.server_port = 5432,
		.server_socket = "",
		.db_namespace = "postgres",
		.db_user = "postgres",
		.operation = "SELECT",
		.collection = "pgbench_accounts",
		.summary = "SELECT pgbench_accounts",
		.query_text = "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
		.count = count,
		.sum_s = 0.00005 * count,
		.min_s = 0.00004,
		.max_s = 0.00006,
	};
	/* all at 40 us: in the (25 us, 50 us] OTLP bucket */
	s.hist[dbtap_hist_bucket(40000)] = count;
	return s;
}

static struct dbtap_otlp_enc *enc_new(bool delta, uint32_t max_series)
{
	struct dbtap_otlp_enc_options o = {.delta = delta,
					   .max_series = max_series,
					   .host_name = "host1",
					   .host_id = "abc",
					   .start_ns = T0 - 10 * NS_PER_S};
	struct dbtap_otlp_enc *e = dbtap_otlp_enc_new(&o);

	assert_non_null(e);
	return e;
}

/* The metric named @name in the first resource whose attributes contain it. */
static cJSON *find_metric(cJSON *doc, const char *name)
{
	cJSON *rm, *sm, *m;

	cJSON_ArrayForEach (rm, cJSON_GetObjectItem(doc, "resourceMetrics"))
		cJSON_ArrayForEach (sm, cJSON_GetObjectItem(rm, "scopeMetrics"))
			cJSON_ArrayForEach (m, cJSON_GetObjectItem(sm, "metrics"))
				if (!strcmp(cJSON_GetObjectItem(m, "name")->valuestring, name))
					return m;
	return NULL;
}

static const char *attr_value(cJSON *attrs, const char *key, const char *kind)
{
	cJSON *a;

	cJSON_ArrayForEach (a, attrs)
		if (!strcmp(cJSON_GetObjectItem(a, "key")->valuestring, key)) {
			cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(a, "value"), kind);

			return cJSON_IsString(v) ? v->valuestring : NULL;
		}
	return NULL;
}

static void test_bounds(void **state)
{
	unsigned int i, b;

	for (i = 0; i < DBTAP_OTLP_N_BOUNDS; i++) {
		bool edge = false;
		uint64_t ns = dbtap_otlp_bound_ns(i);

		if (i)
			assert_true(ns > dbtap_otlp_bound_ns(i - 1));
		for (b = 0; b < DBTAP_HIST_BUCKETS; b++)
			edge |= dbtap_hist_bucket_lower_ns(b) == ns;
		assert_true(edge);
		/* within half a dbtap bucket (1/32) of the nominal value */
		assert_true(ns > dbtap_otlp_bound_nominal_s(i) * NS_PER_S * (1 - 1.0 / 32));
		assert_true(ns < dbtap_otlp_bound_nominal_s(i) * NS_PER_S * (1 + 1.0 / 32));
	}
	assert_int_equal(dbtap_otlp_bound_ns(0), 10240);   /* 10 us */
	assert_int_equal(dbtap_otlp_bound_ns(6), 1015808); /* 1 ms */
}

static void test_hist_fold(void **state)
{
	uint32_t hist[DBTAP_HIST_BUCKETS] = {0};
	uint64_t out[DBTAP_OTLP_N_BOUNDS + 1], total = 0;
	unsigned int k;

	hist[dbtap_hist_bucket(100)] = 1;	   /* < 10 us: bucket 0 */
	hist[dbtap_hist_bucket(10240 - 1)] = 2;	   /* just under the 10 us edge: bucket 0 */
	hist[dbtap_hist_bucket(10240)] = 3;	   /* on the edge: bucket 1 */
	hist[dbtap_hist_bucket(40000)] = 4;	   /* 25..50 us: bucket 2 */
	hist[dbtap_hist_bucket(2 * NS_PER_S)] = 5; /* 1..5 s: bucket 13 */
	hist[DBTAP_HIST_BUCKETS - 1] = 6;	   /* > 68 s: overflow bucket 15 */
	dbtap_otlp_hist_fold(hist, out);
	assert_int_equal(out[0], 3);
	assert_int_equal(out[1], 3);
	assert_int_equal(out[2], 4);
	assert_int_equal(out[13], 5);
	assert_int_equal(out[15], 6);
	for (k = 0; k <= DBTAP_OTLP_N_BOUNDS; k++)
		total += out[k];
	assert_int_equal(total, 21);
}

static void check_histogram_point(cJSON *p, const char *count)
{
	cJSON *counts = cJSON_GetObjectItem(p, "bucketCounts");
	cJSON *bounds = cJSON_GetObjectItem(p, "explicitBounds"), *c;
	double prev = 0;

	assert_string_equal(cJSON_GetObjectItem(p, "count")->valuestring, count);
	assert_int_equal(cJSON_GetArraySize(counts), cJSON_GetArraySize(bounds) + 1);
	assert_int_equal(cJSON_GetArraySize(bounds), DBTAP_OTLP_N_BOUNDS);
	cJSON_ArrayForEach (c, counts)
		assert_true(cJSON_IsString(c));
	cJSON_ArrayForEach (c, bounds) {
		assert_true(cJSON_IsNumber(c));
		assert_true(c->valuedouble > prev);
		prev = c->valuedouble;
	}
	assert_true(cJSON_IsString(cJSON_GetObjectItem(p, "timeUnixNano")));
	assert_true(cJSON_IsString(cJSON_GetObjectItem(p, "startTimeUnixNano")));
}

static void test_metrics_cumulative(void **state)
{
	struct dbtap_otlp_enc *e = enc_new(false, 100);
	struct dbtap_series s[2] = {make_series(3), make_series(0)};
	struct dbtap_snapshot snap = {.time_ns = T0, .interval_s = 5, .series = s, .n_series = 2};
	cJSON *doc, *m, *p, *h;

	s[0].errors = 3;
	s[0].status = codes;
	s[0].n_status = 1;
	doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
	assert_non_null(doc);
	m = find_metric(doc, "db.server.operation.duration");
	assert_non_null(m);
	assert_string_equal(cJSON_GetObjectItem(m, "unit")->valuestring, "s");
	h = cJSON_GetObjectItem(m, "histogram");
	assert_int_equal(cJSON_GetObjectItem(h, "aggregationTemporality")->valueint, 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(h, "dataPoints")), 1);
	p = cJSON_GetArrayItem(cJSON_GetObjectItem(h, "dataPoints"), 0);
	check_histogram_point(p, "3");
	assert_string_equal(
		cJSON_GetArrayItem(cJSON_GetObjectItem(p, "bucketCounts"), 2)->valuestring, "3");
	assert_string_equal(
		attr_value(cJSON_GetObjectItem(p, "attributes"), "db.query.summary", "stringValue"),
		"SELECT pgbench_accounts");
	assert_string_equal(cJSON_GetObjectItem(p, "startTimeUnixNano")->valuestring,
			    "1699999995000000000");
	/* errors: 2 with 42P01, 1 without a code */
	m = find_metric(doc, "db.server.operation.errors");
	assert_non_null(m);
	h = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "sum"), "dataPoints");
	assert_int_equal(cJSON_GetArraySize(h), 2);
	p = cJSON_GetArrayItem(h, 0);
	assert_string_equal(cJSON_GetObjectItem(p, "asInt")->valuestring, "2");
	assert_string_equal(attr_value(cJSON_GetObjectItem(p, "attributes"),
				       "db.response.status_code", "stringValue"),
			    "42P01");
	assert_string_equal(
		attr_value(cJSON_GetObjectItem(p, "attributes"), "error.type", "stringValue"),
		"42P01");
	p = cJSON_GetArrayItem(h, 1);
	assert_string_equal(cJSON_GetObjectItem(p, "asInt")->valuestring, "1");
	assert_null(attr_value(cJSON_GetObjectItem(p, "attributes"), "db.response.status_code",
			       "stringValue"));
	assert_string_equal(
		attr_value(cJSON_GetObjectItem(p, "attributes"), "error.type", "stringValue"),
		"_OTHER");
	cJSON_Delete(doc);

	/* second interval: cumulative sums carry on, same start time */
	s[0] = make_series(5);
	snap.time_ns = T0 + 5 * NS_PER_S;
	doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
	p = cJSON_GetArrayItem(
		cJSON_GetObjectItem(
			cJSON_GetObjectItem(find_metric(doc, "db.server.operation.duration"),
					    "histogram"),
			"dataPoints"),
		0);
	check_histogram_point(p, "8");
	assert_string_equal(cJSON_GetObjectItem(p, "startTimeUnixNano")->valuestring,
			    "1699999995000000000");
	assert_string_equal(cJSON_GetObjectItem(p, "timeUnixNano")->valuestring,
			    "1700000005000000000");
	/* the error stream is still reported with its total */
	p = cJSON_GetArrayItem(
		cJSON_GetObjectItem(
			cJSON_GetObjectItem(find_metric(doc, "db.server.operation.errors"), "sum"),
			"dataPoints"),
		0);
	assert_string_equal(cJSON_GetObjectItem(p, "asInt")->valuestring, "2");
	cJSON_Delete(doc);

	/* a third interval without operations still reports the running total */
	s[0].count = 0;
	snap.time_ns = T0 + 10 * NS_PER_S;
	doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
	p = cJSON_GetArrayItem(
		cJSON_GetObjectItem(
			cJSON_GetObjectItem(find_metric(doc, "db.server.operation.duration"),
					    "histogram"),
			"dataPoints"),
		0);
	check_histogram_point(p, "8");
	cJSON_Delete(doc);
	dbtap_otlp_enc_free(e);
}

static void test_metrics_delta(void **state)
{
	struct dbtap_otlp_enc *e = enc_new(true, 100);
	struct dbtap_series s = make_series(3);
	struct dbtap_snapshot snap = {.time_ns = T0, .interval_s = 5, .series = &s, .n_series = 1};
	cJSON *doc, *h, *p;

	doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
	cJSON_Delete(doc);
	s = make_series(5);
	snap.time_ns = T0 + 5 * NS_PER_S;
	doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
	h = cJSON_GetObjectItem(find_metric(doc, "db.server.operation.duration"), "histogram");
	assert_int_equal(cJSON_GetObjectItem(h, "aggregationTemporality")->valueint, 1);
	p = cJSON_GetArrayItem(cJSON_GetObjectItem(h, "dataPoints"), 0);
	check_histogram_point(p, "5");
	/* delta points start where the previous interval ended */
	assert_string_equal(cJSON_GetObjectItem(p, "startTimeUnixNano")->valuestring,
			    "1700000000000000000");
	cJSON_Delete(doc);
	/* no operations: no point, no metric */
	s.count = 0;
	snap.time_ns = T0 + 10 * NS_PER_S;
	doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
	assert_null(find_metric(doc, "db.server.operation.duration"));
	cJSON_Delete(doc);
	dbtap_otlp_enc_free(e);
}

static void test_cardinality_cap(void **state)
{
	struct dbtap_otlp_enc *e = enc_new(false, 2);
	struct dbtap_series s[4] = {make_series(1), make_series(2), make_series(3), make_series(4)};
	struct dbtap_snapshot snap = {.time_ns = T0, .interval_s = 5, .series = s, .n_series = 4};
	const char *colls[4] = {"a", "b", "c", "d"};
	cJSON *doc, *pts, *last;
	int i;

	for (i = 0; i < 4; i++) {
		s[i].collection = colls[i];
		s[i].summary = colls[i];
	}
	doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
	pts = cJSON_GetObjectItem(
		cJSON_GetObjectItem(find_metric(doc, "db.server.operation.duration"), "histogram"),
		"dataPoints");
	assert_int_equal(cJSON_GetArraySize(pts), 3);
	last = cJSON_GetArrayItem(pts, 2);
	assert_string_equal(cJSON_GetObjectItem(last, "count")->valuestring, "7");
	assert_int_equal(dbtap_otlp_enc_folded(e), 2);
	{
		cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(last, "attributes"), 0);

		assert_string_equal(cJSON_GetObjectItem(a, "key")->valuestring,
				    "otel.metric.overflow");
		assert_true(cJSON_IsTrue(
			cJSON_GetObjectItem(cJSON_GetObjectItem(a, "value"), "boolValue")));
	}
	cJSON_Delete(doc);
	dbtap_otlp_enc_free(e);
}

static void test_self_metrics(void **state)
{
	struct dbtap_otlp_enc *e = enc_new(false, 10);
	struct dbtap_prog_stat progs[] = {{"on_recv", 10, 2000000000}};
	struct dbtap_snapshot snap = {.time_ns = T0, .interval_s = 5};
	struct dbtap_otlp_stats st = {
		.bytes_sent = 1000, .bytes_uncompressed = 5000, .requests_dropped = 4};
	cJSON *doc, *m, *p;

	snap.self.counters[DBTAP_CNT_EVENTS] = 7;
	snap.self.counters[DBTAP_CNT_DROP_SAMPLE_RB] = 2;
	snap.self.progs = progs;
	snap.self.n_progs = 1;
	snap.self.bpf_stats = true;
	snap.self.rss_bytes = 1 << 20;
	snap.self.cpu_total_s = 1.5;
	doc = dbtap_otlp_enc_metrics(e, &snap, &st);
	snap.time_ns += 5 * NS_PER_S;
	cJSON_Delete(doc);
	doc = dbtap_otlp_enc_metrics(e, &snap, &st);
	m = find_metric(doc, "dbtap.events");
	p = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "sum"), "dataPoints"), 0);
	assert_string_equal(cJSON_GetObjectItem(p, "asInt")->valuestring, "14");
	assert_true(
		cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "sum"), "isMonotonic")));
	m = find_metric(doc, "dbtap.drops");
	p = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "sum"), "dataPoints"), 0);
	assert_string_equal(
		attr_value(cJSON_GetObjectItem(p, "attributes"), "cause", "stringValue"),
		"sample_ringbuf");
	assert_string_equal(cJSON_GetObjectItem(p, "asInt")->valuestring, "4");
	m = find_metric(doc, "dbtap.bpf.run_time");
	p = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "sum"), "dataPoints"), 0);
	assert_true(cJSON_GetObjectItem(p, "asDouble")->valuedouble == 4.0);
	m = find_metric(doc, "process.memory.usage");
	p = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "gauge"), "dataPoints"),
			       0);
	assert_string_equal(cJSON_GetObjectItem(p, "asInt")->valuestring, "1048576");
	m = find_metric(doc, "dbtap.otlp.bytes");
	p = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "sum"), "dataPoints"), 1);
	assert_string_equal(cJSON_GetObjectItem(p, "asInt")->valuestring, "1000");
	cJSON_Delete(doc);
	dbtap_otlp_enc_free(e);
}

/* The first data point of metric @name in @doc (which must have it). */
static cJSON *first_sum_point(cJSON *doc, const char *name)
{
	cJSON *m = find_metric(doc, name);

	if (!m)
		fail_msg("metric %s missing", name);
	return cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "sum"), "dataPoints"),
				  0);
}

/*
 * dbtap.bpf.run_time and dbtap.bpf.runs only for intervals with bpf_stats: the zeros of an
 * uncounted interval would read as "free". The first interval counted 3 runs (1 s) before the
 * statistics went off; the second, counted, 10 runs (2 s): cumulative points carry both, a
 * delta point only its own interval.
 */
static void test_bpf_metrics_need_stats(void **state)
{
	static const char *const bpf_metrics[] = {"dbtap.bpf.run_time", "dbtap.bpf.runs"};
	static const struct {
		bool delta;
		double run_time_s;
		const char *runs;
	} cases[] = {
		{false, 3.0, "13"},
		{true, 2.0, "10"},
	};
	struct dbtap_prog_stat before[] = {{"dbtap_sock_recv", 3, 1000000000}};
	struct dbtap_prog_stat counted[] = {{"dbtap_sock_recv", 10, 2000000000}};
	cJSON *doc, *p;
	size_t i, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dbtap_otlp_enc *e = enc_new(cases[i].delta, 10);
		struct dbtap_snapshot snap = {.time_ns = T0, .interval_s = 5};

		snap.self.progs = before;
		snap.self.n_progs = 1;
		snap.self.bpf_stats = false;
		doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
		assert_non_null(doc);
		for (k = 0; k < sizeof(bpf_metrics) / sizeof(bpf_metrics[0]); k++)
			if (find_metric(doc, bpf_metrics[k]))
				fail_msg("delta=%d: %s without bpf_stats", cases[i].delta,
					 bpf_metrics[k]);
		assert_non_null(find_metric(doc, "process.cpu.time")); /* the rest is there */
		cJSON_Delete(doc);

		snap.time_ns += 5 * NS_PER_S;
		snap.self.progs = counted;
		snap.self.bpf_stats = true;
		doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
		assert_non_null(doc);
		p = first_sum_point(doc, "dbtap.bpf.run_time");
		assert_string_equal(attr_value(cJSON_GetObjectItem(p, "attributes"),
					       "dbtap.bpf.program", "stringValue"),
				    "dbtap_sock_recv");
		assert_true(cJSON_GetObjectItem(p, "asDouble")->valuedouble == cases[i].run_time_s);
		p = first_sum_point(doc, "dbtap.bpf.runs");
		assert_string_equal(cJSON_GetObjectItem(p, "asInt")->valuestring, cases[i].runs);
		cJSON_Delete(doc);
		dbtap_otlp_enc_free(e);
	}
}

static void test_spans_and_logs(void **state)
{
	struct dbtap_otlp_enc *e = enc_new(false, 10);
	struct dbtap_series s = make_series(2);
	struct dbtap_sample sm[2] = {
		{.series = &s,
		 .start_ns = T0,
		 .end_ns = T0 + 200000000,
		 .duration_ns = 200000000,
		 .reasons = DBTAP_SAMPLE_SLOW,
		 .peer = {.family = AF_INET, .port = 40000, .addr = {127, 0, 0, 1}},
		 .has_parent = true,
		 .trace_id = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb,
			      0x21, 0x1c, 0x80, 0x31, 0x9c},
		 .parent_span_id = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}},
		{.series = &s,
		 .start_ns = T0,
		 .end_ns = T0 + 1000,
		 .reasons = DBTAP_SAMPLE_ERROR,
		 .status = "42P01",
		 .peer = {.family = AF_UNIX}},
	};
	struct dbtap_snapshot snap = {.time_ns = T0,
				      .interval_s = 5,
				      .series = &s,
				      .n_series = 1,
				      .samples = sm,
				      .n_samples = 2};
	cJSON *traces, *logs, *spans, *sp, *rec, *attrs;
	const char *hex;
	size_t i;

	s.summary = "";
	assert_int_equal(dbtap_otlp_enc_samples(e, &snap, &traces, &logs), 0);
	assert_non_null(traces);
	assert_non_null(logs);
	spans = cJSON_GetObjectItem(
		cJSON_GetArrayItem(
			cJSON_GetObjectItem(
				cJSON_GetArrayItem(cJSON_GetObjectItem(traces, "resourceSpans"), 0),
				"scopeSpans"),
			0),
		"spans");
	assert_int_equal(cJSON_GetArraySize(spans), 2);
	sp = cJSON_GetArrayItem(spans, 0);
	assert_string_equal(cJSON_GetObjectItem(sp, "traceId")->valuestring,
			    "0af7651916cd43dd8448eb211c80319c");
	assert_string_equal(cJSON_GetObjectItem(sp, "parentSpanId")->valuestring,
			    "b7ad6b7169203331");
	hex = cJSON_GetObjectItem(sp, "spanId")->valuestring;
	assert_int_equal(strlen(hex), 16);
	for (i = 0; i < 16; i++)
		assert_non_null(strchr("0123456789abcdef", hex[i]));
	/* no summary: operation + collection */
	assert_string_equal(cJSON_GetObjectItem(sp, "name")->valuestring,
			    "SELECT pgbench_accounts");
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(sp, "kind")));
	assert_int_equal(cJSON_GetObjectItem(sp, "kind")->valueint, 2);
	assert_string_equal(cJSON_GetObjectItem(sp, "startTimeUnixNano")->valuestring,
			    "1700000000000000000");
	assert_string_equal(cJSON_GetObjectItem(sp, "endTimeUnixNano")->valuestring,
			    "1700000000200000000");
	attrs = cJSON_GetObjectItem(sp, "attributes");
	assert_string_equal(attr_value(attrs, "client.address", "stringValue"), "127.0.0.1");
	assert_string_equal(attr_value(attrs, "client.port", "intValue"), "40000");
	assert_null(cJSON_GetObjectItem(sp, "status"));
	sp = cJSON_GetArrayItem(spans, 1);
	assert_int_equal(strlen(cJSON_GetObjectItem(sp, "traceId")->valuestring), 32);
	assert_null(cJSON_GetObjectItem(sp, "parentSpanId"));
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "status"), "code")->valueint,
			 2);
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "status"), "message")->valuestring,
		"42P01");
	attrs = cJSON_GetObjectItem(sp, "attributes");
	assert_string_equal(attr_value(attrs, "network.transport", "stringValue"), "unix");
	assert_string_equal(attr_value(attrs, "error.type", "stringValue"), "42P01");
	assert_null(attr_value(attrs, "client.address", "stringValue"));

	/* one log record, for the slow sample, linked to its span */
	rec = cJSON_GetObjectItem(
		cJSON_GetArrayItem(
			cJSON_GetObjectItem(
				cJSON_GetArrayItem(cJSON_GetObjectItem(logs, "resourceLogs"), 0),
				"scopeLogs"),
			0),
		"logRecords");
	assert_int_equal(cJSON_GetArraySize(rec), 1);
	rec = cJSON_GetArrayItem(rec, 0);
	assert_int_equal(cJSON_GetObjectItem(rec, "severityNumber")->valueint, 13);
	assert_string_equal(
		cJSON_GetObjectItem(rec, "spanId")->valuestring,
		cJSON_GetObjectItem(cJSON_GetArrayItem(spans, 0), "spanId")->valuestring);
	assert_string_equal(cJSON_GetObjectItem(rec, "timeUnixNano")->valuestring,
			    "1700000000200000000");
	assert_string_equal(
		attr_value(cJSON_GetObjectItem(rec, "attributes"), "event.name", "stringValue"),
		"db.server.slow_query");
	cJSON_Delete(traces);
	cJSON_Delete(logs);

	/* no samples: nothing to send */
	snap.n_samples = 0;
	assert_int_equal(dbtap_otlp_enc_samples(e, &snap, &traces, &logs), 0);
	assert_null(traces);
	assert_null(logs);
	dbtap_otlp_enc_free(e);
}

static void test_resource(void **state)
{
	struct dbtap_otlp_enc_options o = {.host_name = "h",
					   .host_id = "mid",
					   .resource_attributes = "deployment.environment=prod,"
								  "service.name=fromenv,k=a%2Cb"};
	struct dbtap_otlp_enc *e = dbtap_otlp_enc_new(&o);
	struct dbtap_instance_info in = {.pid = 100,
					 .system = "postgresql",
					 .exe_name = "postgres",
					 .version = "15.1",
					 .container_id = "c0ffee",
					 .server_address = "127.0.0.1",
					 .server_port = 5432,
					 .exe_path = "",
					 .server_socket = ""};
	struct dbtap_series s = make_series(1);
	struct dbtap_snapshot snap = {.time_ns = T0,
				      .interval_s = 5,
				      .series = &s,
				      .n_series = 1,
				      .instances = &in,
				      .n_instances = 1};
	cJSON *doc = dbtap_otlp_enc_metrics(e, &snap, NULL), *rm, *attrs;

	rm = cJSON_GetObjectItem(doc, "resourceMetrics");
	assert_int_equal(cJSON_GetArraySize(rm), 2); /* the instance, the agent */
	attrs = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(rm, 0), "resource"),
				    "attributes");
	assert_string_equal(attr_value(attrs, "service.name", "stringValue"), "fromenv");
	assert_string_equal(attr_value(attrs, "service.instance.id", "stringValue"), "mid:100");
	assert_string_equal(attr_value(attrs, "host.id", "stringValue"), "mid");
	assert_string_equal(attr_value(attrs, "process.pid", "intValue"), "100");
	assert_string_equal(attr_value(attrs, "container.id", "stringValue"), "c0ffee");
	assert_string_equal(attr_value(attrs, "process.executable.name", "stringValue"),
			    "postgres");
	assert_string_equal(attr_value(attrs, "k", "stringValue"), "a,b");
	assert_string_equal(attr_value(attrs, "deployment.environment", "stringValue"), "prod");
	attrs = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(rm, 1), "resource"),
				    "attributes");
	assert_string_equal(attr_value(attrs, "service.name", "stringValue"), "dbtap");
	cJSON_Delete(doc);
	dbtap_otlp_enc_free(e);

	/* default service name from system and instance */
	o.resource_attributes = NULL;
	e = dbtap_otlp_enc_new(&o);
	doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
	attrs = cJSON_GetObjectItem(
		cJSON_GetObjectItem(
			cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "resourceMetrics"), 0),
			"resource"),
		"attributes");
	assert_string_equal(attr_value(attrs, "service.name", "stringValue"),
			    "postgresql@127.0.0.1:5432");
	cJSON_Delete(doc);
	dbtap_otlp_enc_free(e);
}

static void test_split(void **state)
{
	enum { N = 50 };
	struct dbtap_otlp_enc *e = enc_new(false, 1000);
	struct dbtap_series s[N];
	char names[N][16];
	struct dbtap_snapshot snap = {.time_ns = T0, .interval_s = 5, .series = s, .n_series = N};
	size_t n, i, leaves = 0, whole;
	char **bodies;
	cJSON *doc;

	for (i = 0; i < N; i++) {
		s[i] = make_series(1);
		snprintf(names[i], sizeof(names[i]), "t%zu", i);
		s[i].summary = names[i];
	}
	doc = dbtap_otlp_enc_metrics(e, &snap, NULL);
	whole = dbtap_otlp_leaves(doc);
	assert_true(whole > N);
	assert_int_equal(dbtap_otlp_split(doc, 8192, &bodies, &n), 0);
	assert_true(n > 2);
	for (i = 0; i < n; i++) {
		cJSON *part = cJSON_Parse(bodies[i]);

		assert_true(strlen(bodies[i]) <= 8192);
		assert_non_null(part);
		leaves += dbtap_otlp_leaves(part);
		cJSON_Delete(part);
		free(bodies[i]);
	}
	free(bodies);
	assert_int_equal(leaves, whole);
	/* a limit it fits in: one body */
	assert_int_equal(dbtap_otlp_split(doc, 1 << 30, &bodies, &n), 0);
	assert_int_equal(n, 1);
	free(bodies[0]);
	free(bodies);
	cJSON_Delete(doc);
	dbtap_otlp_enc_free(e);
}

static void test_kv(void **state)
{
	struct dbtap_otlp_kv *kv;
	size_t n;

	assert_int_equal(
		dbtap_otlp_parse_kv(" a = 1 ,novalue,=x,Authorization=Bearer%20t%3D", &kv, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(kv[0].key, "a");
	assert_string_equal(kv[0].value, "1");
	assert_string_equal(kv[1].key, "Authorization");
	assert_string_equal(kv[1].value, "Bearer t=");
	dbtap_otlp_kv_free(kv, n);
}

static void test_retry_rules(void **state)
{
	long yes[] = {429, 502, 503, 504}, no[] = {200, 400, 401, 403, 404, 413, 500, 501};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(dbtap_otlp_status_retryable(yes[i]));
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(dbtap_otlp_status_retryable(no[i]));
	assert_true(dbtap_otlp_backoff_s(1, 1, 0) == 1.0);
	assert_true(dbtap_otlp_backoff_s(1, 0, 0) == 0.5);
	assert_true(dbtap_otlp_backoff_s(3, 1, 0) == 4.0);
	assert_true(dbtap_otlp_backoff_s(20, 1, 0) == 5.0);
	assert_true(dbtap_otlp_backoff_s(4, 1, 0) == 5.0); /* 8 s capped */
	assert_true(dbtap_otlp_backoff_s(3, 0, 7) == 7.0); /* Retry-After wins */
}

static void test_gzip(void **state)
{
	const char *text = "{\"resourceMetrics\":[]}{\"resourceMetrics\":[]}";
	unsigned char *gz, out[256];
	size_t len;
	z_stream zs = {0};

	assert_int_equal(dbtap_otlp_gzip(text, strlen(text), &gz, &len), 0);
	assert_int_equal(gz[0], 0x1f); /* gzip magic */
	assert_int_equal(gz[1], 0x8b);
	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = gz;
	zs.avail_in = len;
	zs.next_out = out;
	zs.avail_out = sizeof(out);
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, strlen(text));
	assert_memory_equal(out, text, strlen(text));
	inflateEnd(&zs);
	free(gz);
}

static void test_options_env(void **state)
{
	char *env[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318/",
		       "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://t:1/x",
		       "OTEL_EXPORTER_OTLP_TIMEOUT=2500",
		       "OTEL_EXPORTER_OTLP_COMPRESSION=none",
		       "OTEL_SERVICE_NAME=svc",
		       NULL};
	char *bad[] = {"OTEL_EXPORTER_OTLP_COMPRESSION=zstd", NULL};
	struct dbtap_otlp_options o = {.gzip = -1};

	assert_int_equal(dbtap_otlp_options_resolve(&o, env), 0);
	assert_string_equal(o.endpoint, "http://collector:4318/");
	assert_string_equal(o.traces_endpoint, "http://t:1/x");
	assert_null(o.metrics_endpoint);
	assert_true(o.timeout_s == 2.5);
	assert_int_equal(o.gzip, 0);
	assert_string_equal(o.service_name, "svc");
	assert_int_equal(o.queue_bytes, 16 << 20);
	/* a config value wins over the variable */
	memset(&o, 0, sizeof(o));
	o.gzip = 1;
	o.endpoint = "http://mine:4318";
	assert_int_equal(dbtap_otlp_options_resolve(&o, env), 0);
	assert_string_equal(o.endpoint, "http://mine:4318");
	assert_int_equal(o.gzip, 1);
	memset(&o, 0, sizeof(o));
	o.gzip = -1;
	assert_int_equal(dbtap_otlp_options_resolve(&o, bad), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_hist_fold),
		cmocka_unit_test(test_metrics_cumulative),
		cmocka_unit_test(test_metrics_delta),
		cmocka_unit_test(test_cardinality_cap),
		cmocka_unit_test(test_self_metrics),
		cmocka_unit_test(test_bpf_metrics_need_stats),
		cmocka_unit_test(test_spans_and_logs),
		cmocka_unit_test(test_resource),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_retry_rules),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_options_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
