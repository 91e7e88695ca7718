// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_jsonl.c - the JSON-lines exporter (exporters/jsonl.c) against the contract in
 * docs/output.md: every key and value of constructed snapshots (series, samples, self), parsed
 * back with cJSON, plus string escaping, omission rules, number and time forms, write errors.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "exporters/jsonl.h"

/* 2026-11-22T19:00:05.123Z */
#define T_2026_NS (1795374005LL * 1000000000LL + 123456789LL)
#define MAX_LINES 16

/* ---- helpers ---- */

struct output {
	char *text; /* everything written */
	size_t len;
	char *lines[MAX_LINES]; /* each line, '\n' cut off, pointing into text */
	int n_lines;
	cJSON *json[MAX_LINES];
};

/* Run the exporter on @snap into memory; split and parse the lines. */
static void write_snapshot(const struct dbtap_snapshot *snap, struct output *out)
{
	struct dbtap_jsonl *j;
	FILE *fp;
	char *p;

	memset(out, 0, sizeof(*out));
	fp = open_memstream(&out->text, &out->len);
	assert_non_null(fp);
	j = dbtap_jsonl_new(fp);
	assert_non_null(j);
	assert_int_equal(dbtap_jsonl_write(j, snap), 0);
	dbtap_jsonl_free(j);
	assert_int_equal(fclose(fp), 0);

	/* every line ends in '\n' and no other byte below 0x20 appears */
	assert_true(out->len > 0);
	assert_int_equal(out->text[out->len - 1], '\n');
	for (p = out->text; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\n')
			fail_msg("raw control byte 0x%02x at offset %td", *p, p - out->text);

	for (p = out->text; *p;) {
		char *nl = strchr(p, '\n');

		assert_non_null(nl);
		assert_true(out->n_lines < MAX_LINES);
		*nl = '\0';
		out->lines[out->n_lines] = p;
		out->json[out->n_lines] = cJSON_Parse(p);
		if (!out->json[out->n_lines])
			fail_msg("line %d is not JSON: %s", out->n_lines, p);
		assert_true(cJSON_IsObject(out->json[out->n_lines]));
		out->n_lines++;
		p = nl + 1;
	}
}

static void output_free(struct output *out)
{
	int i;

	for (i = 0; i < out->n_lines; i++)
		cJSON_Delete(out->json[i]);
	free(out->text);
}

/* @obj has exactly the members named in the NULL-terminated @keys, each once. */
static void assert_keys(const cJSON *obj, const char *const *keys)
{
	const cJSON *it;
	int n_keys = 0, n_members = 0, i;

	for (i = 0; keys[i]; i++) {
		n_keys++;
		if (!cJSON_GetObjectItemCaseSensitive(obj, keys[i]))
			fail_msg("key \"%s\" missing", keys[i]);
	}
	cJSON_ArrayForEach (it, obj) {
		bool expected = false;

		n_members++;
		for (i = 0; keys[i]; i++)
			expected |= strcmp(it->string, keys[i]) == 0;
		if (!expected)
			fail_msg("unexpected key \"%s\"", it->string);
	}
	assert_int_equal(n_members, n_keys);
}

static const cJSON *get(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!v)
		fail_msg("key \"%s\" missing", key);
	return v;
}

static void assert_str_member(const cJSON *obj, const char *key, const char *want)
{
	const cJSON *v = get(obj, key);

	if (!cJSON_IsString(v))
		fail_msg("\"%s\" is not a string", key);
	assert_string_equal(v->valuestring, want);
}

/* Numbers compared exactly: the writer prints doubles in a form that reads back the same. */
static void assert_num_member(const cJSON *obj, const char *key, double want)
{
	const cJSON *v = get(obj, key);

	if (!cJSON_IsNumber(v))
		fail_msg("\"%s\" is not a number", key);
	if (v->valuedouble != want)
		fail_msg("\"%s\" = %.17g, want %.17g", key, v->valuedouble, want);
}

/* @line contains @needle verbatim (for forms cJSON hides: integer text, escapes). */
static void assert_raw(const char *line, const char *needle)
{
	if (!strstr(line, needle))
		fail_msg("\"%s\" not in: %s", needle, line);
}

/* ---- fixtures ---- */

static const struct dbtap_status_count full_status[] = {
	{.code = "42P01", .count = 3},
	{.code = "23505", .count = 1},
};

static const struct dbtap_prog_stat progs[] = {
	{.name = "dbtap_sock_recv", .run_cnt = 120034, .run_time_ns = 9876543},
	{.name = "dbtap_sock_send", .run_cnt = 98000, .run_time_ns = 5432100},
};

/* An interval the kernel did not count in (bpf_stats false). */
static const struct dbtap_prog_stat uncounted_progs[] = {
	{.name = "dbtap_sock_recv", .run_cnt = 0, .run_time_ns = 0},
};

/* A series with every attribute known. */
static void fill_full_series(struct dbtap_series *s)
{
	memset(s, 0, sizeof(*s));
	s->system = "postgresql";
	s->instance_pid = 4242;
	s->server_address = "127.0.0.1";
	s->server_port = 5432;
	s->server_socket = "/var/run/postgresql/.s.PGSQL.5432";
	s->db_namespace = "bench";
	s->db_user = "alice";
	s->operation = "SELECT";
	s->collection = "pgbench_accounts";
	s->summary = "SELECT pgbench_accounts";
	s->query_text = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
	s->query_hash = 0x00ab12cd34ef5678ULL;
	s->text_known = true;
	s->count = 12345;
	s->errors = 4;
	s->rows = 12341;
	s->sum_s = 1.5;
	s->min_s = 0.000125;
	s->max_s = 0.25;
	/* 100 values in [131072, 139264) ns and 1 in [262144, 278528) */
	s->hist[dbtap_hist_bucket(131072)] = 100;
	s->hist[dbtap_hist_bucket(262144)] = 1;
	s->status = full_status;
	s->n_status = 2;
}

static void fill_snapshot(struct dbtap_snapshot *snap, const struct dbtap_series *series, size_t n)
{
	int c;

	memset(snap, 0, sizeof(*snap));
	snap->time_ns = T_2026_NS;
	snap->interval_s = 5.002;
	snap->series = series;
	snap->n_series = n;
	for (c = 0; c < DBTAP_CNT_MAX; c++)
		snap->self.counters[c] = 1000 + (uint64_t)c; /* distinct per counter */
	snap->self.ringbuf_events = 77;
	snap->self.series_dropped = 2;
	snap->self.samples_dropped = 3;
	snap->self.progs = progs;
	snap->self.n_progs = 2;
	snap->self.bpf_stats = true;
	snap->self.cpu_s = 0.1;
	snap->self.cpu_total_s = 12.75;
	snap->self.rss_bytes = 25165824;
	snap->self.capture_path = "socket";
}

/* ---- series object ---- */

static void test_series_full(void **state)
{
	static const char *const keys[] = {
		"time",
		"interval_s",
		"kind",
		"db.system.name",
		"process.pid",
		"server.address",
		"server.port",
		"server.socket",
		"db.namespace",
		"db.user",
		"db.operation.name",
		"db.query.summary",
		"db.collection.name",
		"db.query.text",
		"dbtap.query_hash",
		"dbtap.text_known",
		"count",
		"errors",
		"rows",
		"error_codes",
		"duration_s",
		NULL,
	};
	static const char *const duration_keys[] = {"sum", "min", "max", "p50", "p90", "p99", NULL};
	static const char *const code_keys[] = {"42P01", "23505", NULL};
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct output out;
	const cJSON *o, *d, *codes;

	fill_full_series(&s);
	fill_snapshot(&snap, &s, 1);
	write_snapshot(&snap, &out);
	assert_int_equal(out.n_lines, 2);
	o = out.json[0];

	assert_keys(o, keys);
	assert_str_member(o, "time", "2026-11-22T19:00:05.123Z");
	assert_num_member(o, "interval_s", 5.002);
	assert_str_member(o, "kind", "dbtap.series");
	assert_str_member(o, "db.system.name", "postgresql");
	assert_num_member(o, "process.pid", 4242);
	assert_str_member(o, "server.address", "127.0.0.1");
	assert_num_member(o, "server.port", 5432);
	assert_str_member(o, "server.socket", "/var/run/postgresql/.s.PGSQL.5432");
	assert_str_member(o, "db.namespace", "bench");
	assert_str_member(o, "db.user", "alice");
	assert_str_member(o, "db.operation.name", "SELECT");
	assert_str_member(o, "db.query.summary", "SELECT pgbench_accounts");
	assert_str_member(o, "db.collection.name", "pgbench_accounts");
	assert_str_member(o, "db.query.text",
			  "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
	assert_str_member(o, "dbtap.query_hash", "00ab12cd34ef5678");
	assert_true(cJSON_IsTrue(get(o, "dbtap.text_known")));
	assert_num_member(o, "count", 12345);
	assert_num_member(o, "errors", 4);
	assert_num_member(o, "rows", 12341);

	codes = get(o, "error_codes");
	assert_true(cJSON_IsObject(codes));
	assert_keys(codes, code_keys);
	assert_num_member(codes, "42P01", 3);
	assert_num_member(codes, "23505", 1);

	d = get(o, "duration_s");
	assert_true(cJSON_IsObject(d));
	assert_keys(d, duration_keys);
	assert_num_member(d, "sum", 1.5);
	assert_num_member(d, "min", 0.000125);
	assert_num_member(d, "max", 0.25);
	/*
	 * 101 values: ranks 51, 91 and 100 fall in the first bucket (width 8192 ns), interpolated
	 * at the middle of their slice and rounded to whole nanoseconds
	 */
	assert_num_member(d, "p50", nearbyint(dbtap_hist_percentile(s.hist, 0.5) * 1e9) / 1e9);
	assert_num_member(d, "p90", nearbyint(dbtap_hist_percentile(s.hist, 0.9) * 1e9) / 1e9);
	assert_num_member(d, "p99", nearbyint(dbtap_hist_percentile(s.hist, 0.99) * 1e9) / 1e9);
	/* 131072 + 8192 * (rank - 0.5) / 100 ns for ranks 51, 91, 100 */
	assert_raw(out.lines[0], "\"p50\":0.000135209,\"p90\":0.000138486,\"p99\":0.000139223}");

	/* integers are written as JSON integers, hashes as strings, in contract order */
	assert_raw(out.lines[0], "{\"time\":\"2026-11-22T19:00:05.123Z\",\"interval_s\":5.002,"
				 "\"kind\":\"dbtap.series\",");
	assert_raw(out.lines[0], "\"process.pid\":4242,");
	assert_raw(out.lines[0], "\"server.port\":5432,");
	assert_raw(out.lines[0], "\"count\":12345,\"errors\":4,\"rows\":12341,");
	assert_raw(out.lines[0], "\"error_codes\":{\"42P01\":3,\"23505\":1}");
	assert_raw(out.lines[0], "\"dbtap.text_known\":true,");
	output_free(&out);
}

static void test_series_omissions(void **state)
{
	static const char *const keys[] = {
		"time",
		"interval_s",
		"kind",
		"db.system.name",
		"process.pid",
		"server.socket",
		"db.operation.name",
		"db.query.summary",
		"dbtap.query_hash",
		"dbtap.text_known",
		"count",
		"errors",
		"rows",
		"error_codes",
		"duration_s",
		NULL,
	};
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct output out;
	const cJSON *o;

	fill_full_series(&s);
	s.server_address = "";
	s.server_port = 0;
	s.db_namespace = "";
	s.db_user = "";
	s.collection = "";
	s.operation = "";
	s.summary = "";
	/* prepared before capture: the statement name is not query text */
	s.text_known = false;
	s.query_text = "S_1";
	s.query_hash = 7;
	s.errors = 0;
	s.status = NULL;
	s.n_status = 0;
	fill_snapshot(&snap, &s, 1);
	write_snapshot(&snap, &out);
	assert_int_equal(out.n_lines, 2);
	o = out.json[0];

	assert_keys(o, keys);
	assert_str_member(o, "server.socket", "/var/run/postgresql/.s.PGSQL.5432");
	assert_str_member(o, "db.operation.name", "");
	assert_str_member(o, "db.query.summary", "");
	assert_str_member(o, "dbtap.query_hash", "0000000000000007");
	assert_true(cJSON_IsFalse(get(o, "dbtap.text_known")));
	assert_true(cJSON_IsObject(get(o, "error_codes")));
	assert_null(get(o, "error_codes")->child);
	assert_raw(out.lines[0], "\"error_codes\":{},");
	output_free(&out);

	/* TCP only; text known but empty is omitted too */
	fill_full_series(&s);
	s.server_socket = "";
	s.query_text = "";
	fill_snapshot(&snap, &s, 1);
	write_snapshot(&snap, &out);
	o = out.json[0];
	assert_str_member(o, "server.address", "127.0.0.1");
	assert_num_member(o, "server.port", 5432);
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "server.socket"));
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "db.query.text"));
	assert_true(cJSON_IsTrue(get(o, "dbtap.text_known")));
	output_free(&out);
}

static void test_only_series_with_operations(void **state)
{
	static struct dbtap_series s[4];
	struct dbtap_snapshot snap;
	struct output out;
	int i;

	for (i = 0; i < 4; i++) {
		fill_full_series(&s[i]);
		s[i].query_hash = 0x100 + (uint64_t)i;
	}
	s[1].count = 0; /* idle this interval */
	s[3].count = 0;
	fill_snapshot(&snap, s, 4);
	write_snapshot(&snap, &out);
	assert_int_equal(out.n_lines, 3);
	assert_str_member(out.json[0], "dbtap.query_hash", "0000000000000100");
	assert_str_member(out.json[1], "dbtap.query_hash", "0000000000000102");
	assert_str_member(out.json[2], "kind", "dbtap.self");
	output_free(&out);

	/* no series at all: the self line alone */
	fill_snapshot(&snap, NULL, 0);
	write_snapshot(&snap, &out);
	assert_int_equal(out.n_lines, 1);
	assert_str_member(out.json[0], "kind", "dbtap.self");
	output_free(&out);
}

static void test_percentiles_clamped_to_min_max(void **state)
{
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct output out;
	const cJSON *d;

	/* ten queries of exactly 50 ns: the bucket [0, 64) alone would say 3.2..60.8 ns */
	fill_full_series(&s);
	memset(s.hist, 0, sizeof(s.hist));
	s.hist[0] = 10;
	s.count = 10;
	s.sum_s = 500e-9;
	s.min_s = 50e-9;
	s.max_s = 50e-9;
	fill_snapshot(&snap, &s, 1);
	write_snapshot(&snap, &out);
	d = get(out.json[0], "duration_s");
	assert_num_member(d, "sum", 500e-9);
	assert_num_member(d, "min", 50e-9);
	assert_num_member(d, "max", 50e-9);
	assert_num_member(d, "p50", 50e-9);
	assert_num_member(d, "p90", 50e-9);
	assert_num_member(d, "p99", 50e-9);
	output_free(&out);
}

/* ---- sample objects ---- */

/* A TCP/IPv4 client's failed operation, sampled for every reason. */
static void fill_sample_v4_failed(struct dbtap_sample *sm, const struct dbtap_series *series)
{
	static const uint8_t loopback[] = {127, 0, 0, 1};

	memset(sm, 0, sizeof(*sm));
	sm->series = series;
	sm->start_ns = T_2026_NS - 250123456; /* 19:00:04.873333333 */
	sm->end_ns = T_2026_NS - 1000;	      /* 19:00:05.123455789 */
	sm->duration_ns = 250122456;
	sm->reasons =
		DBTAP_SAMPLE_SLOW | DBTAP_SAMPLE_ERROR | DBTAP_SAMPLE_MAX | DBTAP_SAMPLE_RANDOM;
	snprintf(sm->status, sizeof(sm->status), "42P01");
	sm->rows = 0;
	sm->tid = 4243;
	sm->peer.family = AF_INET;
	sm->peer.port = 54321;
	memcpy(sm->peer.addr, loopback, sizeof(loopback));
}

static void test_sample_objects(void **state)
{
	/* labels of a series, then the sample's own keys; failures add two, TCP three */
	static const char *const v4_keys[] = {
		"time",
		"interval_s",
		"kind",
		"db.system.name",
		"process.pid",
		"server.address",
		"server.port",
		"server.socket",
		"db.namespace",
		"db.user",
		"db.operation.name",
		"db.query.summary",
		"db.collection.name",
		"db.query.text",
		"dbtap.query_hash",
		"dbtap.text_known",
		"start",
		"end",
		"duration_s",
		"reasons",
		"db.response.status_code",
		"error.type",
		"rows",
		"network.transport",
		"network.peer.address",
		"network.peer.port",
		"thread.id",
		NULL,
	};
	/* succeeded, over IPv6 */
	static const char *const v6_keys[] = {
		"time",
		"interval_s",
		"kind",
		"db.system.name",
		"process.pid",
		"server.address",
		"server.port",
		"server.socket",
		"db.namespace",
		"db.user",
		"db.operation.name",
		"db.query.summary",
		"db.collection.name",
		"db.query.text",
		"dbtap.query_hash",
		"dbtap.text_known",
		"start",
		"end",
		"duration_s",
		"reasons",
		"rows",
		"network.transport",
		"network.peer.address",
		"network.peer.port",
		"thread.id",
		NULL,
	};
	/* failed with a status code that fills all DBTAP_STATUS_LEN bytes, over a unix socket */
	static const char *const unix_keys[] = {
		"time",
		"interval_s",
		"kind",
		"db.system.name",
		"process.pid",
		"server.address",
		"server.port",
		"server.socket",
		"db.namespace",
		"db.user",
		"db.operation.name",
		"db.query.summary",
		"db.collection.name",
		"db.query.text",
		"dbtap.query_hash",
		"dbtap.text_known",
		"start",
		"end",
		"duration_s",
		"reasons",
		"db.response.status_code",
		"error.type",
		"rows",
		"network.transport",
		"thread.id",
		NULL,
	};
	/* failed with no status code, unknown peer, series with nothing known but the socket */
	static const char *const bare_keys[] = {
		"time",
		"interval_s",
		"kind",
		"db.system.name",
		"process.pid",
		"server.socket",
		"db.operation.name",
		"db.query.summary",
		"dbtap.query_hash",
		"dbtap.text_known",
		"start",
		"end",
		"duration_s",
		"reasons",
		"error.type",
		"rows",
		"thread.id",
		NULL,
	};
	static const uint8_t v6_addr[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x01}; /* 2001:db8::1 */
	static struct dbtap_series series[2];
	static struct dbtap_sample samples[4];
	struct dbtap_snapshot snap;
	struct output out;
	const cJSON *o, *reasons;
	int i;

	fill_full_series(&series[0]);
	/* counted in an earlier interval: no series line, only its sample's labels */
	fill_full_series(&series[1]);
	series[1].count = 0;
	series[1].server_address = "";
	series[1].server_port = 0;
	series[1].db_namespace = "";
	series[1].db_user = "";
	series[1].operation = "";
	series[1].summary = "";
	series[1].collection = "";
	series[1].query_text = "S_1";
	series[1].text_known = false;
	series[1].query_hash = 0xfeed;

	fill_sample_v4_failed(&samples[0], &series[0]);

	memset(&samples[1], 0, sizeof(samples[1]));
	samples[1].series = &series[0];
	samples[1].start_ns = T_2026_NS; /* 19:00:05.123456789: microseconds truncated */
	samples[1].end_ns = T_2026_NS + 500;
	samples[1].duration_ns = 500;
	samples[1].reasons = DBTAP_SAMPLE_SLOW | DBTAP_SAMPLE_RANDOM;
	samples[1].rows = 7;
	samples[1].tid = 1;
	samples[1].peer.family = AF_INET6;
	samples[1].peer.port = 40000;
	memcpy(samples[1].peer.addr, v6_addr, sizeof(v6_addr));

	memset(&samples[2], 0, sizeof(samples[2]));
	samples[2].series = &series[0];
	samples[2].start_ns = 1000000000LL * 951782400; /* 2000-02-29T00:00:00.000000Z */
	samples[2].end_ns = samples[2].start_ns + 1999999;
	samples[2].duration_ns = 1999999;
	samples[2].reasons = DBTAP_SAMPLE_ERROR;
	memcpy(samples[2].status, "ERR_LONG_PREFIX!", DBTAP_STATUS_LEN);
	samples[2].rows = 3;
	samples[2].tid = 99;
	samples[2].peer.family = AF_UNIX;
	samples[2].peer.port = 1234; /* meaningless for a unix socket: not written */

	memset(&samples[3], 0, sizeof(samples[3]));
	samples[3].series = &series[1];
	samples[3].start_ns = -1; /* floor division before 1970 */
	samples[3].end_ns = 999;
	samples[3].duration_ns = 1000;
	samples[3].reasons = DBTAP_SAMPLE_ERROR | DBTAP_SAMPLE_MAX | (1u << 7); /* unknown bit */
	samples[3].tid = 5;

	fill_snapshot(&snap, series, 2);
	snap.samples = samples;
	snap.n_samples = 4;
	write_snapshot(&snap, &out);

	/* the active series, the samples in order, then self */
	assert_int_equal(out.n_lines, 6);
	assert_str_member(out.json[0], "kind", "dbtap.series");
	for (i = 1; i <= 4; i++) {
		assert_str_member(out.json[i], "kind", "dbtap.sample");
		assert_str_member(out.json[i], "time", "2026-11-22T19:00:05.123Z");
		assert_num_member(out.json[i], "interval_s", 5.002);
	}
	assert_str_member(out.json[5], "kind", "dbtap.self");

	/* TCP over IPv4, failed, every reason */
	o = out.json[1];
	assert_keys(o, v4_keys);
	assert_str_member(o, "db.system.name", "postgresql");
	assert_num_member(o, "process.pid", 4242);
	assert_str_member(o, "server.address", "127.0.0.1");
	assert_num_member(o, "server.port", 5432);
	assert_str_member(o, "server.socket", "/var/run/postgresql/.s.PGSQL.5432");
	assert_str_member(o, "db.namespace", "bench");
	assert_str_member(o, "db.user", "alice");
	assert_str_member(o, "db.operation.name", "SELECT");
	assert_str_member(o, "db.query.summary", "SELECT pgbench_accounts");
	assert_str_member(o, "db.collection.name", "pgbench_accounts");
	assert_str_member(o, "db.query.text",
			  "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
	assert_str_member(o, "dbtap.query_hash", "00ab12cd34ef5678");
	assert_true(cJSON_IsTrue(get(o, "dbtap.text_known")));
	assert_str_member(o, "start", "2026-11-22T19:00:04.873333Z");
	assert_str_member(o, "end", "2026-11-22T19:00:05.123455Z");
	assert_num_member(o, "duration_s", 0.250122456);
	reasons = get(o, "reasons");
	assert_true(cJSON_IsArray(reasons));
	assert_int_equal(cJSON_GetArraySize(reasons), 4);
	assert_string_equal(cJSON_GetArrayItem(reasons, 0)->valuestring, "slow");
	assert_string_equal(cJSON_GetArrayItem(reasons, 1)->valuestring, "error");
	assert_string_equal(cJSON_GetArrayItem(reasons, 2)->valuestring, "max");
	assert_string_equal(cJSON_GetArrayItem(reasons, 3)->valuestring, "random");
	assert_str_member(o, "db.response.status_code", "42P01");
	assert_str_member(o, "error.type", "42P01");
	assert_num_member(o, "rows", 0);
	assert_str_member(o, "network.transport", "tcp");
	assert_str_member(o, "network.peer.address", "127.0.0.1");
	assert_num_member(o, "network.peer.port", 54321);
	assert_num_member(o, "thread.id", 4243);
	assert_raw(out.lines[1], "{\"time\":\"2026-11-22T19:00:05.123Z\",\"interval_s\":5.002,"
				 "\"kind\":\"dbtap.sample\",\"db.system.name\":\"postgresql\",");
	assert_raw(out.lines[1],
		   "\"dbtap.text_known\":true,\"start\":\"2026-11-22T19:00:04."
		   "873333Z\",\"end\":\"2026-11-22T19:00:05.123455Z\",\"duration_s\":"
		   "0.250122456,\"reasons\":[\"slow\",\"error\",\"max\",\"random\"],");
	assert_raw(out.lines[1],
		   "\"db.response.status_code\":\"42P01\",\"error.type\":\"42P01\","
		   "\"rows\":0,\"network.transport\":\"tcp\",\"network.peer.address\":"
		   "\"127.0.0.1\",\"network.peer.port\":54321,\"thread.id\":4243}");

	/* TCP over IPv6, succeeded: no status code, no error type */
	o = out.json[2];
	assert_keys(o, v6_keys);
	assert_str_member(o, "dbtap.query_hash", "00ab12cd34ef5678");
	assert_str_member(o, "start", "2026-11-22T19:00:05.123456Z");
	assert_str_member(o, "end", "2026-11-22T19:00:05.123457Z");
	assert_num_member(o, "duration_s", 5e-7);
	assert_raw(out.lines[2], "\"reasons\":[\"slow\",\"random\"],\"rows\":7,");
	assert_str_member(o, "network.transport", "tcp");
	assert_str_member(o, "network.peer.address", "2001:db8::1");
	assert_num_member(o, "network.peer.port", 40000);
	assert_num_member(o, "thread.id", 1);

	/* unix socket: the transport alone; a status code using every byte */
	o = out.json[3];
	assert_keys(o, unix_keys);
	assert_str_member(o, "start", "2000-02-29T00:00:00.000000Z");
	assert_str_member(o, "end", "2000-02-29T00:00:00.001999Z");
	assert_num_member(o, "duration_s", 0.001999999);
	assert_raw(out.lines[3], "\"reasons\":[\"error\"],");
	assert_str_member(o, "db.response.status_code", "ERR_LONG_PREFIX!");
	assert_str_member(o, "error.type", "ERR_LONG_PREFIX!");
	assert_num_member(o, "rows", 3);
	assert_str_member(o, "network.transport", "unix");
	assert_num_member(o, "thread.id", 99);

	/* a series known only by socket and hash; failed without a code; peer unknown */
	o = out.json[4];
	assert_keys(o, bare_keys);
	assert_str_member(o, "db.system.name", "postgresql");
	assert_num_member(o, "process.pid", 4242);
	assert_str_member(o, "server.socket", "/var/run/postgresql/.s.PGSQL.5432");
	assert_str_member(o, "db.operation.name", "");
	assert_str_member(o, "db.query.summary", "");
	assert_str_member(o, "dbtap.query_hash", "000000000000feed");
	assert_true(cJSON_IsFalse(get(o, "dbtap.text_known")));
	assert_str_member(o, "start", "1969-12-31T23:59:59.999999Z");
	assert_str_member(o, "end", "1970-01-01T00:00:00.000000Z");
	assert_num_member(o, "duration_s", 1e-6);
	assert_raw(out.lines[4], "\"reasons\":[\"error\",\"max\"],\"error.type\":\"_OTHER\","
				 "\"rows\":0,\"thread.id\":5}");
	output_free(&out);

	/* no active series: samples, then self; a TCP peer whose port is unknown (0) */
	samples[3].peer.family = AF_INET;
	memcpy(samples[3].peer.addr, (const uint8_t[]){10, 1, 2, 3}, 4);
	fill_snapshot(&snap, &series[1], 1);
	snap.samples = &samples[3];
	snap.n_samples = 1;
	write_snapshot(&snap, &out);
	assert_int_equal(out.n_lines, 2);
	o = out.json[0];
	assert_str_member(o, "kind", "dbtap.sample");
	assert_str_member(o, "dbtap.query_hash", "000000000000feed");
	assert_str_member(o, "network.transport", "tcp");
	assert_str_member(o, "network.peer.address", "10.1.2.3");
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "network.peer.port"));
	assert_str_member(out.json[1], "kind", "dbtap.self");
	output_free(&out);
}

/* ---- escaping ---- */

static void test_string_escaping(void **state)
{
	static const struct {
		const char *in;
		const char *decoded; /* what a JSON parser must read back */
		const char *raw;     /* how it must appear on the line */
	} cases[] = {
		{"say \"hi\"", "say \"hi\"", "\"say \\\"hi\\\"\""},
		{"C:\\dir\\", "C:\\dir\\", "\"C:\\\\dir\\\\\""},
		{"a\nb\tc\rd", "a\nb\tc\rd", "\"a\\u000ab\\u0009c\\u000dd\""},
		{"\x01\x1f", "\x01\x1f", "\"\\u0001\\u001f\""},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		 "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
		/* lone byte 0xff, stray continuation, lead without continuation */
		{"x\xffy\x80z\xc3", "x\xef\xbf\xbdy\xef\xbf\xbdz\xef\xbf\xbd", NULL},
		/* overlong '/' (C0 AF): both bytes invalid */
		{"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", NULL},
		/* overlong 3- and 4-byte forms of '/' and U+FFFF */
		{"\xe0\x80\xaf|\xf0\x8f\xbf\xbf",
		 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		 "\xef\xbf\xbd",
		 NULL},
		/* smallest 3- and 4-byte forms and U+10FFFF are valid */
		{"\xe0\xa0\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
		 "\xe0\xa0\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", NULL},
		/* UTF-16 surrogate U+D800 encoded in UTF-8: three invalid bytes */
		{"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", NULL},
		/* beyond U+10FFFF, and a 3-byte sequence cut short by the end */
		{"\xf4\x90\x80\x80!\xe2\x82",
		 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!"
		 "\xef\xbf\xbd\xef\xbf\xbd",
		 NULL},
		/* DEL and '/' need no escape */
		{"a/b\x7f", "a/b\x7f", "\"a/b\x7f\""},
	};
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct output out;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fill_full_series(&s);
		s.query_text = cases[i].in;
		s.db_namespace = cases[i].in;
		fill_snapshot(&snap, &s, 1);
		write_snapshot(&snap, &out);
		assert_str_member(out.json[0], "db.query.text", cases[i].decoded);
		assert_str_member(out.json[0], "db.namespace", cases[i].decoded);
		if (cases[i].raw)
			assert_raw(out.lines[0], cases[i].raw);
		output_free(&out);
	}
}

static void test_status_code_full_width(void **state)
{
	static const struct dbtap_status_count st[] = {
		/* all DBTAP_STATUS_LEN bytes used, no NUL; and a quote to escape */
		{.code = {'E', 'R', 'R', '_', 'L', 'O', 'N', 'G', '_', 'P', 'R', 'E', 'F', 'I', 'X',
			  '!'},
		 .count = 2},
		{.code = "a\"b", .count = 5},
	};
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct output out;
	const cJSON *codes;

	fill_full_series(&s);
	s.status = st;
	s.n_status = 2;
	fill_snapshot(&snap, &s, 1);
	write_snapshot(&snap, &out);
	codes = get(out.json[0], "error_codes");
	assert_num_member(codes, "ERR_LONG_PREFIX!", 2);
	assert_num_member(codes, "a\"b", 5);
	assert_raw(out.lines[0], "\"error_codes\":{\"ERR_LONG_PREFIX!\":2,\"a\\\"b\":5}");
	output_free(&out);
}

/* ---- self object ---- */

static void test_self_object(void **state)
{
	static const char *const keys[] = {
		"time",
		"interval_s",
		"kind",
		"capture_path",
		"events",
		"ops",
		"samples",
		"texts",
		"ringbuf_events",
		"series_dropped",
		"samples_dropped",
		"counters",
		"drops",
		"undecodable",
		"bpf_stats",
		"bpf_programs",
		"cpu_s",
		"cpu_total_s",
		"rss_bytes",
		NULL,
	};
	static const char *const counter_keys[] = {
		"events",
		"ops",
		"samples",
		"texts",
		"conn_open",
		"conn_close",
		"undecodable",
		"encrypted",
		"drop.sample_ringbuf",
		"drop.text_ringbuf",
		"drop.conn_ringbuf",
		"drop.proc_ringbuf",
		"drop.agg_full",
		"drop.err_full",
		"drop.conn_full",
		"drop.stmt_full",
		"drop.pipeline",
		"drop.read",
		"drop.syscall",
		"drop.proc_full",
		"desync",
		"aborted",
		"drop.reasm_full",
		"compressed",
		NULL,
	};
	static const char *const drop_keys[] = {
		"sample_ringbuf", "text_ringbuf", "conn_ringbuf", "proc_ringbuf", "agg_full",
		"err_full",	  "conn_full",	  "stmt_full",	  "pipeline",	  "read",
		"syscall",	  "proc_full",	  "reasm_full",	  NULL,
	};
	struct dbtap_snapshot snap;
	struct output out;
	const cJSON *o, *counters, *drops, *arr, *p;
	int c;

	_Static_assert(DBTAP_CNT_MAX == 24, "new counter: add it to counter_keys above");
	fill_snapshot(&snap, NULL, 0);
	write_snapshot(&snap, &out);
	assert_int_equal(out.n_lines, 1);
	o = out.json[0];

	assert_keys(o, keys);
	assert_str_member(o, "time", "2026-11-22T19:00:05.123Z");
	assert_num_member(o, "interval_s", 5.002);
	assert_str_member(o, "kind", "dbtap.self");
	assert_str_member(o, "capture_path", "socket");
	assert_num_member(o, "events", 1000 + DBTAP_CNT_EVENTS);
	assert_num_member(o, "ops", 1000 + DBTAP_CNT_OPS);
	assert_num_member(o, "samples", 1000 + DBTAP_CNT_SAMPLES);
	assert_num_member(o, "texts", 1000 + DBTAP_CNT_TEXTS);
	assert_num_member(o, "ringbuf_events", 77);
	assert_num_member(o, "series_dropped", 2);
	assert_num_member(o, "samples_dropped", 3);
	assert_num_member(o, "undecodable", 1000 + DBTAP_CNT_UNDECODABLE);
	assert_num_member(o, "cpu_s", 0.1);
	assert_num_member(o, "cpu_total_s", 12.75);
	assert_num_member(o, "rss_bytes", 25165824);

	counters = get(o, "counters");
	assert_keys(counters, counter_keys);
	for (c = 0; c < DBTAP_CNT_MAX; c++)
		assert_num_member(counters, counter_keys[c], 1000 + c);

	drops = get(o, "drops");
	assert_keys(drops, drop_keys);
	for (c = DBTAP_CNT_DROP_SAMPLE_RB; c <= DBTAP_CNT_DROP_PROC_FULL; c++)
		assert_num_member(drops, drop_keys[c - DBTAP_CNT_DROP_SAMPLE_RB], 1000 + c);
	assert_num_member(drops, "reasm_full", 1000 + DBTAP_CNT_DROP_REASM_FULL);

	assert_true(cJSON_IsTrue(get(o, "bpf_stats")));

	arr = get(o, "bpf_programs");
	assert_true(cJSON_IsArray(arr));
	assert_int_equal(cJSON_GetArraySize(arr), 2);
	p = cJSON_GetArrayItem(arr, 0);
	assert_str_member(p, "name", "dbtap_sock_recv");
	assert_num_member(p, "run_cnt", 120034);
	assert_num_member(p, "run_time_ns", 9876543);
	p = cJSON_GetArrayItem(arr, 1);
	assert_str_member(p, "name", "dbtap_sock_send");
	assert_num_member(p, "run_cnt", 98000);
	assert_num_member(p, "run_time_ns", 5432100);

	assert_raw(out.lines[0], "\"undecodable\":1006,\"bpf_stats\":true,\"bpf_programs\":[{"
				 "\"name\":\"dbtap_sock_recv\",\"run_cnt\":"
				 "120034,\"run_time_ns\":9876543},{\"name\":\"dbtap_sock_send\","
				 "\"run_cnt\":98000,\"run_time_ns\":5432100}],");
	assert_raw(out.lines[0], "\"cpu_s\":0.1,\"cpu_total_s\":12.75,\"rss_bytes\":25165824}");
	assert_raw(out.lines[0], "\"drops\":{\"sample_ringbuf\":1008,");
	output_free(&out);

	/* no programs: an empty array; syscall capture path */
	fill_snapshot(&snap, NULL, 0);
	snap.self.n_progs = 0;
	snap.self.progs = NULL;
	snap.self.capture_path = "syscall";
	write_snapshot(&snap, &out);
	assert_str_member(out.json[0], "capture_path", "syscall");
	assert_int_equal(cJSON_GetArraySize(get(out.json[0], "bpf_programs")), 0);
	assert_raw(out.lines[0], "\"bpf_stats\":true,\"bpf_programs\":[],");
	output_free(&out);

	/* the kernel did not count: bpf_stats false, the programs listed with their zeros */
	fill_snapshot(&snap, NULL, 0);
	snap.self.progs = uncounted_progs;
	snap.self.n_progs = 1;
	snap.self.bpf_stats = false;
	write_snapshot(&snap, &out);
	assert_keys(out.json[0], keys);
	assert_true(cJSON_IsFalse(get(out.json[0], "bpf_stats")));
	assert_raw(out.lines[0], "\"undecodable\":1006,\"bpf_stats\":false,\"bpf_programs\":[{"
				 "\"name\":\"dbtap_sock_recv\",\"run_cnt\":0,\"run_time_ns\":0}],");
	output_free(&out);
}

/* ---- numbers and time ---- */

static void test_number_forms(void **state)
{
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct output out;

	/* u64 beyond 2^53 must be written digit for digit, not rounded through a double */
	fill_full_series(&s);
	s.count = UINT64_MAX;
	s.rows = 9007199254740993ULL; /* 2^53 + 1 */
	s.query_hash = UINT64_MAX;
	fill_snapshot(&snap, &s, 1);
	snap.self.rss_bytes = 0;
	snap.self.cpu_s = NAN;	      /* not JSON: written as 0 */
	snap.self.cpu_total_s = 1e-7; /* exponent form is valid JSON */
	snap.interval_s = INFINITY;
	write_snapshot(&snap, &out);
	assert_raw(out.lines[0], "\"count\":18446744073709551615,");
	assert_raw(out.lines[0], "\"rows\":9007199254740993,");
	assert_raw(out.lines[0], "\"dbtap.query_hash\":\"ffffffffffffffff\",");
	assert_raw(out.lines[0], "\"interval_s\":0,");
	assert_raw(out.lines[1], "\"cpu_s\":0,\"cpu_total_s\":1e-07,\"rss_bytes\":0}");
	assert_num_member(out.json[1], "cpu_total_s", 1e-7);
	output_free(&out);
}

static void test_time_format(void **state)
{
	static const struct {
		int64_t ns;
		const char *want;
	} cases[] = {
		{T_2026_NS, "2026-11-22T19:00:05.123Z"},
		{0, "1970-01-01T00:00:00.000Z"},
		{999999999, "1970-01-01T00:00:00.999Z"}, /* milliseconds truncated */
		{1000000000LL * 951782400 + 7000000, "2000-02-29T00:00:00.007Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
	};
	struct dbtap_snapshot snap;
	struct output out;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fill_snapshot(&snap, NULL, 0);
		snap.time_ns = cases[i].ns;
		write_snapshot(&snap, &out);
		assert_str_member(out.json[0], "time", cases[i].want);
		output_free(&out);
	}
}

/* ---- errors ---- */

static void test_write_errors(void **state)
{
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct dbtap_sample sm;
	struct dbtap_jsonl *j;
	char *text = NULL;
	size_t len = 0;
	FILE *fp;

	errno = 0;
	assert_null(dbtap_jsonl_new(NULL));
	assert_int_equal(errno, EINVAL);
	dbtap_jsonl_free(NULL);

	fill_full_series(&s);
	fill_snapshot(&snap, &s, 1);

	/* a full device: the flush fails */
	fp = fopen("/dev/full", "w");
	assert_non_null(fp);
	j = dbtap_jsonl_new(fp);
	assert_non_null(j);
	assert_int_equal(dbtap_jsonl_write(j, &snap), -ENOSPC);
	assert_int_equal(dbtap_jsonl_write(NULL, &snap), -EINVAL);
	assert_int_equal(dbtap_jsonl_write(j, NULL), -EINVAL);
	dbtap_jsonl_free(j);
	fclose(fp);

	/* samples missing, or one without its series: nothing is written */
	fp = open_memstream(&text, &len);
	assert_non_null(fp);
	j = dbtap_jsonl_new(fp);
	assert_non_null(j);
	snap.samples = NULL;
	snap.n_samples = 1;
	assert_int_equal(dbtap_jsonl_write(j, &snap), -EINVAL);
	fill_sample_v4_failed(&sm, NULL);
	snap.samples = &sm;
	assert_int_equal(dbtap_jsonl_write(j, &snap), -EINVAL);
	dbtap_jsonl_free(j);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(len, 0);
	free(text);
	snap.n_samples = 0;

	/* a stream opened for reading: the write itself fails */
	fp = fopen("/dev/null", "r");
	assert_non_null(fp);
	j = dbtap_jsonl_new(fp);
	assert_non_null(j);
	assert_int_equal(dbtap_jsonl_write(j, &snap), -EBADF);
	dbtap_jsonl_free(j);
	fclose(fp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_series_full),
		cmocka_unit_test(test_series_omissions),
		cmocka_unit_test(test_only_series_with_operations),
		cmocka_unit_test(test_percentiles_clamped_to_min_max),
		cmocka_unit_test(test_sample_objects),
		cmocka_unit_test(test_string_escaping),
		cmocka_unit_test(test_status_code_full_width),
		cmocka_unit_test(test_self_object),
		cmocka_unit_test(test_number_forms),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_write_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
