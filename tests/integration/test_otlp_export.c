/* OTLP export end to end: a real PostgreSQL cluster, pgbench and libpq clients, the agent under
 * test (build/dbtap or $DBTAP_BIN) with --output otlp next to --output json, and the Node.js
 * receiver of tests/otlp-receiver, which decodes every request with the official protobuf
 * definitions. Asserts exact counts, spans (names, kinds, timings, parents from a traceparent
 * in application_name), slow-query logs, gzip, and the behaviour against a failing backend:
 * 503 + Retry-After retried, 400 not retried, 30 s down with memory within the queue bound and
 * the drops counted, export resuming. Needs root, node and npm. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/agent.h"
#include "lib/otlp_receiver.h"
#include "lib/pgserver.h"
#include "lib/testutil.h"

#define MATCH(...) ((const char *const[]){__VA_ARGS__, NULL})

#define PGBENCH_CLIENTS	      2
#define PGBENCH_TX_PER_CLIENT 1000
#define PGBENCH_TX	      (PGBENCH_CLIENTS * PGBENCH_TX_PER_CLIENT)
#define PGBENCH_TIMEOUT_MS    300000
#define TRACE_ID	      "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT_SPAN_ID	      "00f067aa0ba902b7"
#define SLEEP_S		      0.2  /* pg_sleep() of the slow query: over the 100 ms threshold */
#define SPAN_SLACK_S	      0.15 /* a span may be this much longer than the sleep */
#define RETRY_AFTER_S	      1
#define RETRY_EARLY_MS	      900  /* the retry must not come before Retry-After ... */
#define RETRY_LATE_MS	      6000 /* ... nor much after it (a loaded machine delays it) */
#define DOWN_S		      30
#define QUEUE_BYTES	      (512 * 1024) /* fills in about 10 s of this load */
/*
 * RSS allowed above the highest RSS seen under the same load before the outage: the queue
 * bound, plus the one request in flight (taken out of the queue, at most one interval's
 * compressed body, well under 1 MiB here), plus 4 MiB for allocator slack (glibc arenas of the
 * sender thread and of the event loop keep freed blocks of the per-interval encoding).
 */
#define RSS_MARGIN_BYTES      (QUEUE_BYTES + 1 * 1024 * 1024 + 4 * 1024 * 1024)
#define KIB		      1024

struct fixture {
	struct pgserver srv;
	struct otlp_receiver rx;
	struct agent agent;
	struct pgbench_run bench;
};

static struct fixture fx;

/* ---- reading what the receiver recorded ---- */

static const char *attr_str(const cJSON *attrs, const char *key)
{
	const cJSON *a;

	cJSON_ArrayForEach (a, attrs) {
		const cJSON *k = cJSON_GetObjectItem(a, "key");
		const cJSON *v = cJSON_GetObjectItem(a, "value");

		if (cJSON_IsString(k) && !strcmp(k->valuestring, key)) {
			const cJSON *s = cJSON_GetObjectItem(v, "stringValue");

			if (!s)
				s = cJSON_GetObjectItem(v, "intValue");
			return cJSON_IsString(s) ? s->valuestring : NULL;
		}
	}
	return NULL;
}

static bool attrs_match(const cJSON *attrs, const char *const *match)
{
	for (; match && *match; match += 2) {
		const char *v = attr_str(attrs, match[0]);

		if (!v || strcmp(v, match[1]))
			return false;
	}
	return true;
}

static uint64_t json_u64(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(obj, key);

	if (cJSON_IsString(v))
		return strtoull(v->valuestring, NULL, 10);
	return cJSON_IsNumber(v) ? (uint64_t)v->valuedouble : 0;
}

/*
 * Value of the last data point of metric @name whose attributes match @match, over the
 * accepted metrics requests in order (cumulative: the last is the total). @field: "count" for
 * histograms, "asInt" for sums and gauges. Returns false when no point matched.
 */
static bool last_point(const cJSON *reqs, const char *name, const char *const *match,
		       const char *field, uint64_t *ret)
{
	const cJSON *req, *rm, *sm, *m, *data, *p;
	bool found = false;

	cJSON_ArrayForEach (req, reqs) {
		const cJSON *body = cJSON_GetObjectItem(req, "request");

		if (strcmp(testutil_json_string(req, "signal"), "metrics") ||
		    json_u64(req, "status") != 200)
			continue;
		cJSON_ArrayForEach (rm, cJSON_GetObjectItem(body, "resourceMetrics"))
			cJSON_ArrayForEach (sm, cJSON_GetObjectItem(rm, "scopeMetrics"))
				cJSON_ArrayForEach (m, cJSON_GetObjectItem(sm, "metrics")) {
					if (strcmp(cJSON_GetObjectItem(m, "name")->valuestring,
						   name))
						continue;
					data = cJSON_GetObjectItem(m, "histogram");
					if (!data)
						data = cJSON_GetObjectItem(m, "sum");
					if (!data)
						data = cJSON_GetObjectItem(m, "gauge");
					cJSON_ArrayForEach (p,
							    cJSON_GetObjectItem(data, "dataPoints"))
						if (attrs_match(
							    cJSON_GetObjectItem(p, "attributes"),
							    match)) {
							*ret = json_u64(p, field);
							found = true;
						}
				}
	}
	return found;
}

/* Every request decoded and followed the encoding rules; count them. */
static int check_all_valid(const cJSON *reqs, int want_gzip)
{
	const cJSON *req, *e;
	int n = 0;

	cJSON_ArrayForEach (req, reqs) {
		cJSON_ArrayForEach (e, cJSON_GetObjectItem(req, "errors"))
			fail_msg("receiver: %s", e->valuestring);
		if (want_gzip >= 0)
			assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(req, "gzip")), want_gzip);
		n++;
	}
	return n;
}

/* Wait until the receiver recorded at least @n requests (or @timeout_ms passed). */
static void wait_requests(int n, int timeout_ms)
{
	uint64_t until = testutil_now_ms() + timeout_ms;

	while (testutil_now_ms() < until) {
		cJSON *reqs = otlp_receiver_requests(&fx.rx);
		int have = reqs ? cJSON_GetArraySize(reqs) : 0;

		cJSON_Delete(reqs);
		if (have >= n)
			return;
		testutil_sleep_ms(100);
	}
}

/* ---- setup ---- */

static int group_setup(void **state)
{
	if (pgserver_start(&fx.srv, NULL) || pgserver_pgbench(&fx.srv, "-i -s 1 -q", NULL) != 0) {
		fprintf(stderr, "group setup: PostgreSQL or pgbench -i failed\n");
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	pgserver_stop(&fx.srv);
	return 0;
}

static int test_setup(void **state)
{
	memset(&fx.rx, 0, sizeof(fx.rx));
	memset(&fx.agent, 0, sizeof(fx.agent));
	memset(&fx.bench, 0, sizeof(fx.bench));
	return otlp_receiver_start(&fx.rx);
}

static int test_teardown(void **state)
{
	if (fx.bench.pid)
		pgserver_pgbench_wait(&fx.bench, 0, NULL);
	agent_stop_all();
	otlp_receiver_stop(&fx.rx);
	return 0;
}

/* The agent with OTLP export to the receiver, watching only the test's cluster (other
 * servers on the machine would add their own requests and counts). */
static void start_agent(double interval_s, const char *const *more)
{
	static char pid[16];
	const char *args[32] = {"--output",	"otlp",	 "--otlp-endpoint",
				fx.rx.endpoint, "--pid", pid};
	int n = 6;

	snprintf(pid, sizeof(pid), "%d", fx.srv.pid);
	while (more && *more)
		args[n++] = *more++;
	args[n] = NULL;
	assert_int_equal(agent_start(&fx.agent, interval_s, args), 0);
}

/* ---- 1. counts of a pgbench run ---- */

struct statement {
	const char *op, *collection;
};

/* pgbench's TPC-B transaction, one of each per transaction (docs: pgbench "tpcb-like") */
static const struct statement tpcb[] = {
	{"UPDATE", "pgbench_accounts"}, {"SELECT", "pgbench_accounts"},
	{"UPDATE", "pgbench_tellers"},	{"UPDATE", "pgbench_branches"},
	{"INSERT", "pgbench_history"},
};

static void test_pgbench_counts(void **state)
{
	char args[64], port[16];
	uint64_t total_body = 0, total_json = 0, v;
	const cJSON *req;
	cJSON *reqs, *lines;
	size_t i;
	int n, intervals = 0;

	start_agent(1, NULL);
	snprintf(args, sizeof(args), "-n -c %d -t %d", PGBENCH_CLIENTS, PGBENCH_TX_PER_CLIENT);
	assert_int_equal(pgserver_pgbench(&fx.srv, args, NULL), 0);
	assert_int_equal(agent_stop(&fx.agent), 0);

	reqs = otlp_receiver_requests(&fx.rx);
	assert_non_null(reqs);
	n = check_all_valid(reqs, 1);
	assert_true(n >= 2);
	lines = agent_read_lines(&fx.agent);
	assert_non_null(lines);
	for (i = 0; i < sizeof(tpcb) / sizeof(tpcb[0]); i++) {
		const char *const *m = MATCH("db.operation.name", tpcb[i].op, "db.collection.name",
					     tpcb[i].collection);
		uint64_t json = agent_sum_series(lines, "count",
						 MATCH("db.operation.name", tpcb[i].op,
						       "db.collection.name", tpcb[i].collection));

		assert_true(last_point(reqs, "db.server.operation.duration", m, "count", &v));
		if (v != PGBENCH_TX || json != PGBENCH_TX)
			fail_msg("%s %s: otlp %" PRIu64 ", json %" PRIu64 ", want %d", tpcb[i].op,
				 tpcb[i].collection, v, json, PGBENCH_TX);
	}
	/* the resource is the instance */
	req = NULL;
	cJSON_ArrayForEach (req, reqs) {
		const cJSON *res = cJSON_GetObjectItem(
			cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(req, "request"),
							       "resourceMetrics"),
					   0),
			"resource");
		const cJSON *attrs = cJSON_GetObjectItem(res, "attributes");
		char pid[16];

		if (!attr_str(attrs, "db.system.name"))
			continue;
		snprintf(pid, sizeof(pid), "%d", fx.srv.pid);
		assert_string_equal(attr_str(attrs, "db.system.name"), "postgresql");
		assert_string_equal(attr_str(attrs, "process.pid"), pid);
		snprintf(port, sizeof(port), ":%d", fx.srv.port);
		assert_non_null(strstr(attr_str(attrs, "service.name"), port));
		assert_non_null(attr_str(attrs, "host.name"));
		break;
	}
	/* bytes per interval for the closing note: every request of every signal */
	cJSON_ArrayForEach (req, reqs) {
		total_body += json_u64(req, "body_bytes");
		total_json += json_u64(req, "json_bytes");
		if (!strcmp(testutil_json_string(req, "signal"), "metrics"))
			intervals++;
	}
	fprintf(stderr,
		"otlp bytes per interval (pgbench %s, %d intervals): %" PRIu64
		" uncompressed, %" PRIu64 " gzip\n",
		args, intervals, total_json / intervals, total_body / intervals);
	cJSON_Delete(lines);
	cJSON_Delete(reqs);
}

/* ---- 2. spans, parent from application_name, slow-query logs ---- */

static const cJSON *find_span(const cJSON *reqs, const char *text_part)
{
	const cJSON *req, *rs, *ss, *sp;

	cJSON_ArrayForEach (req, reqs) {
		if (strcmp(testutil_json_string(req, "signal"), "traces"))
			continue;
		cJSON_ArrayForEach (rs, cJSON_GetObjectItem(cJSON_GetObjectItem(req, "request"),
							    "resourceSpans"))
			cJSON_ArrayForEach (ss, cJSON_GetObjectItem(rs, "scopeSpans"))
				cJSON_ArrayForEach (sp, cJSON_GetObjectItem(ss, "spans")) {
					const char *t =
						attr_str(cJSON_GetObjectItem(sp, "attributes"),
							 "db.query.text");

					if (t && strstr(t, text_part))
						return sp;
				}
	}
	return NULL;
}

static void test_spans_and_parent(void **state)
{
	char conninfo[700], sql[64];
	const cJSON *sp, *err, *req, *rl, *sl, *rec, *status;
	const cJSON *slow_log = NULL;
	cJSON *reqs;
	PGresult *res;
	PGconn *c;
	double dur;

	start_agent(1, NULL);
	snprintf(conninfo, sizeof(conninfo),
		 "%s sslmode=disable gssencmode=disable application_name=00-%s-%s-01",
		 fx.srv.conninfo_tcp, TRACE_ID, PARENT_SPAN_ID);
	c = PQconnectdb(conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	snprintf(sql, sizeof(sql), "SELECT pg_sleep(%g)", SLEEP_S);
	res = PQexec(c, sql);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	PQclear(res);
	res = PQexec(c, "SELECT * FROM otlp_no_such_table");
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	PQclear(res);
	/* Closed at once: the store takes the connection's trace context when the sample
	 * arrives, so a client gone before the interval ends keeps its parent. */
	PQfinish(c);
	assert_int_equal(agent_stop(&fx.agent), 0);

	reqs = otlp_receiver_requests(&fx.rx);
	assert_non_null(reqs);
	check_all_valid(reqs, 1);
	sp = find_span(reqs, "pg_sleep");
	assert_non_null(sp);
	assert_string_equal(cJSON_GetObjectItem(sp, "traceId")->valuestring, TRACE_ID);
	assert_string_equal(cJSON_GetObjectItem(sp, "parentSpanId")->valuestring, PARENT_SPAN_ID);
	assert_int_equal(strlen(cJSON_GetObjectItem(sp, "spanId")->valuestring), 16);
	assert_string_not_equal(cJSON_GetObjectItem(sp, "spanId")->valuestring, PARENT_SPAN_ID);
	assert_int_equal(json_u64(sp, "kind"), 2);
	assert_string_equal(
		cJSON_GetObjectItem(sp, "name")->valuestring,
		attr_str(cJSON_GetObjectItem(sp, "attributes"), "db.query.summary")
			? attr_str(cJSON_GetObjectItem(sp, "attributes"), "db.query.summary")
			: "SELECT");
	dur = (double)(json_u64(sp, "endTimeUnixNano") - json_u64(sp, "startTimeUnixNano")) / 1e9;
	if (dur < SLEEP_S || dur > SLEEP_S + SPAN_SLACK_S)
		fail_msg("span lasted %.6f s, slept %g s", dur, SLEEP_S);
	assert_null(cJSON_GetObjectItem(sp, "status"));

	err = find_span(reqs, "otlp_no_such_table");
	assert_non_null(err);
	status = cJSON_GetObjectItem(err, "status");
	assert_int_equal(json_u64(status, "code"), 2);
	assert_string_equal(cJSON_GetObjectItem(status, "message")->valuestring, "42P01");
	assert_string_equal(attr_str(cJSON_GetObjectItem(err, "attributes"), "error.type"),
			    "42P01");
	assert_string_equal(cJSON_GetObjectItem(err, "traceId")->valuestring, TRACE_ID);
	assert_string_equal(attr_str(cJSON_GetObjectItem(err, "attributes"), "client.address"),
			    "127.0.0.1");

	/* the slow query's log record, linked to its span */
	cJSON_ArrayForEach (req, reqs) {
		if (strcmp(testutil_json_string(req, "signal"), "logs"))
			continue;
		cJSON_ArrayForEach (rl, cJSON_GetObjectItem(cJSON_GetObjectItem(req, "request"),
							    "resourceLogs"))
			cJSON_ArrayForEach (sl, cJSON_GetObjectItem(rl, "scopeLogs"))
				cJSON_ArrayForEach (rec, cJSON_GetObjectItem(sl, "logRecords"))
					if (!strcmp(cJSON_GetObjectItem(rec, "spanId")->valuestring,
						    cJSON_GetObjectItem(sp, "spanId")->valuestring))
						slow_log = rec;
	}
	assert_non_null(slow_log);
	assert_int_equal(json_u64(slow_log, "severityNumber"), 13);
	assert_string_equal(attr_str(cJSON_GetObjectItem(slow_log, "attributes"), "event.name"),
			    "db.server.slow_query");
	cJSON_Delete(reqs);
}

/* ---- 3. faults ---- */

/* The first request answered @status and the next request of the same signal after it. */
static void first_and_next(const cJSON *reqs, uint64_t status, const cJSON **ret_first,
			   const cJSON **ret_next)
{
	const cJSON *req;

	*ret_first = *ret_next = NULL;
	cJSON_ArrayForEach (req, reqs) {
		if (!*ret_first && json_u64(req, "status") == status)
			*ret_first = req;
		else if (*ret_first && !strcmp(testutil_json_string(req, "signal"),
					       testutil_json_string(*ret_first, "signal"))) {
			*ret_next = req;
			return;
		}
	}
}

/* How many requests of @reqs carry the body of @req (a retry resends the same body). */
static int same_body(const cJSON *reqs, const cJSON *req)
{
	const char *sha = testutil_json_string(req, "json_sha1");
	const cJSON *r;
	int n = 0;

	assert_non_null(sha);
	cJSON_ArrayForEach (r, reqs)
		n += !strcmp(testutil_json_string(r, "json_sha1") ?: "", sha);
	return n;
}

static void test_503_retry_after(void **state)
{
	const cJSON *first, *next;
	cJSON *reqs;
	int64_t gap;

	assert_int_equal(otlp_receiver_mode(&fx.rx, "503", RETRY_AFTER_S, 1), 0);
	start_agent(3, MATCH("--otlp-compression", "none"));
	wait_requests(2, 20000); /* the 503 and its retry */
	assert_int_equal(agent_stop(&fx.agent), 0);
	reqs = otlp_receiver_requests(&fx.rx);
	check_all_valid(reqs, 0);
	first_and_next(reqs, 503, &first, &next);
	assert_non_null(first);
	assert_non_null(next);
	assert_int_equal(json_u64(next, "status"), 200);
	assert_string_equal(testutil_json_string(next, "json_sha1"),
			    testutil_json_string(first, "json_sha1")); /* the same batch again */
	gap = (int64_t)json_u64(next, "time_ms") - (int64_t)json_u64(first, "time_ms");
	if (gap < RETRY_EARLY_MS || gap > RETRY_LATE_MS)
		fail_msg("retried %" PRId64 " ms after the 503 (Retry-After: %d)", gap,
			 RETRY_AFTER_S);
	cJSON_Delete(reqs);
}

static void test_400_not_retried(void **state)
{
	const cJSON *first, *next, *req;
	uint64_t rejected = 0;
	cJSON *reqs;
	int n400 = 0;

	assert_int_equal(otlp_receiver_mode(&fx.rx, "400", 0, 1), 0);
	start_agent(2, NULL);
	wait_requests(2, 20000); /* the 400 and the next interval's request */
	assert_int_equal(agent_stop(&fx.agent), 0);
	reqs = otlp_receiver_requests(&fx.rx);
	check_all_valid(reqs, 1);
	cJSON_ArrayForEach (req, reqs)
		n400 += json_u64(req, "status") == 400;
	assert_int_equal(n400, 1);
	first_and_next(reqs, 400, &first, &next);
	assert_non_null(next);
	/* the next request is the next interval's: the rejected body is never sent again */
	if (same_body(reqs, first) != 1)
		fail_msg("the body answered 400 was sent %d times", same_body(reqs, first));
	assert_true(last_point(reqs, "dbtap.otlp.requests", MATCH("outcome", "rejected"), "asInt",
			       &rejected));
	assert_int_equal(rejected, 1);
	cJSON_Delete(reqs);
}

static void test_partial_success_logged(void **state)
{
	const cJSON *first, *next;
	uint64_t partial = 0;
	cJSON *reqs;
	char *err;

	assert_int_equal(otlp_receiver_mode(&fx.rx, "partial", 0, 1), 0);
	start_agent(2, NULL);
	wait_requests(2, 20000);
	assert_int_equal(agent_stop(&fx.agent), 0);
	err = agent_read_stderr(&fx.agent);
	assert_non_null(err);
	assert_non_null(strstr(err, "partial success"));
	free(err);
	reqs = otlp_receiver_requests(&fx.rx);
	check_all_valid(reqs, 1);
	first_and_next(reqs, 200, &first, &next);
	assert_non_null(next);
	if (same_body(reqs, first) != 1)
		fail_msg("the partially accepted body was sent %d times", same_body(reqs, first));
	assert_true(last_point(reqs, "dbtap.otlp.requests", MATCH("outcome", "partial_success"),
			       "asInt", &partial));
	assert_int_equal(partial, 1);
	cJSON_Delete(reqs);
}

static uint64_t rss_bytes(pid_t pid)
{
	char path[64], *text, *p;
	uint64_t kib = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	text = testutil_read_file(path, NULL);
	if (text && (p = strstr(text, "VmRSS:")))
		kib = strtoull(p + strlen("VmRSS:"), NULL, 10);
	free(text);
	return kib * KIB;
}

static void test_down_under_load(void **state)
{
	char queue[32];
	uint64_t rss_before = 0, rss_max = 0, dropped = 0, sent_dropped = 0, t_up;
	const cJSON *req;
	cJSON *reqs;
	int i, ok_after = 0;

	snprintf(queue, sizeof(queue), "%d", QUEUE_BYTES);
	start_agent(1, MATCH("--sample-rate", "10", "--otlp-queue-size", queue));
	assert_int_equal(pgserver_pgbench_start(&fx.srv, "-n -S -c 2 -T 50", &fx.bench), 0);
	for (i = 0; i < 10; i++) { /* 5 s of the load with the receiver up */
		uint64_t r = rss_bytes(fx.agent.pid);

		rss_before = r > rss_before ? r : rss_before;
		testutil_sleep_ms(500);
	}
	assert_int_equal(otlp_receiver_down(&fx.rx), 0);
	for (i = 0; i < DOWN_S * 2; i++) {
		uint64_t r = rss_bytes(fx.agent.pid);

		rss_max = r > rss_max ? r : rss_max;
		if (i % 10 == 0)
			fprintf(stderr, "RSS after %d s down: %" PRIu64 " KiB\n", i / 2, r / KIB);
		testutil_sleep_ms(500);
	}
	assert_int_equal(otlp_receiver_up(&fx.rx), 0);
	t_up = testutil_now_ms();
	testutil_sleep_ms(10000);
	assert_int_equal(pgserver_pgbench_wait(&fx.bench, PGBENCH_TIMEOUT_MS, NULL), 0);
	assert_int_equal(agent_stop(&fx.agent), 0);

	fprintf(stderr,
		"RSS: %" PRIu64 " KiB before the outage, at most %" PRIu64
		" KiB during it (queue %d KiB)\n",
		rss_before / KIB, rss_max / KIB, QUEUE_BYTES / KIB);
	if (rss_max > rss_before + RSS_MARGIN_BYTES)
		fail_msg("RSS grew to %" PRIu64 " KiB from %" PRIu64 " KiB", rss_max / KIB,
			 rss_before / KIB);
	reqs = otlp_receiver_requests(&fx.rx);
	check_all_valid(reqs, 1);
	cJSON_ArrayForEach (req, reqs)
		ok_after += json_u64(req, "time_ms") >= t_up && json_u64(req, "status") == 200;
	assert_true(ok_after >= 3);
	assert_true(last_point(reqs, "dbtap.drops", MATCH("cause", "otlp_queue_full"), "asInt",
			       &dropped));
	assert_true(last_point(reqs, "dbtap.otlp.requests", MATCH("outcome", "dropped"), "asInt",
			       &sent_dropped));
	fprintf(stderr, "requests dropped from the full queue: %" PRIu64 "\n", dropped);
	assert_true(dropped > 0);
	assert_int_equal(sent_dropped, dropped);
	cJSON_Delete(reqs);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pgbench_counts, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_spans_and_parent, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_503_retry_after, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_400_not_retried, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_partial_success_logged, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_down_under_load, test_setup, test_teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_otlp_export: needs root, skipped\n");
		return 0;
	}
	if (argc > 1)
		cmocka_set_test_filter(argv[1]); /* "test_503*": run only these */
	return cmocka_run_group_tests_name("otlp_export", tests, group_setup, group_teardown);
}
