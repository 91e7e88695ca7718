/* PostgreSQL capture end to end: real clusters, real clients (libpq, pgbench, a raw socket) and
 * the agent under test (build/dbtap, or $DBTAP_BIN) on each capture path, asserting exact counts
 * and the JSON-lines contract of docs/output.md. Needs root.
 *
 * Every test runs twice, in the groups "pg_capture_socket" and "pg_capture_syscall" (--capture
 * socket / syscall); $DBTAP_TEST_CAPTURE=socket|syscall runs one group only, and an argument is
 * a cmocka test-name filter ("test_errors", "*pgbench*"). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "lib/agent.h"
#include "lib/pgserver.h"
#include "lib/testutil.h"

#define MATCH(...) ((const char *const[]){__VA_ARGS__, NULL})

#define MAX_CONNS	      8
#define MAX_AGENTS	      2
#define MAX_BPF_IDS	      512
#define INTERVAL_S	      1.0  /* default --interval for tests that sum over intervals */
#define LONG_INTERVAL_S	      60.0 /* everything lands in the final interval written at stop */
#define PGBENCH_CLIENTS	      2
#define PGBENCH_TX_PER_CLIENT 250
#define PGBENCH_TX	      (PGBENCH_CLIENTS * PGBENCH_TX_PER_CLIENT)
#define PGBENCH_TIMEOUT_MS    300000
#define SLEEP_S		      0.05 /* pg_sleep() argument of test_latency_percentiles */
#define GARBAGE_BYTES	      4096
#define GARBAGE_SEED	      0x5eed1234abcd9876ULL
#define TIME_SKEW_S	      600  /* series time must be within this of the wall clock */
#define US_S		      1e-6 /* a sample's start and end are truncated to microseconds */
#define SAMPLE_LATE_S	      0.01 /* a sample ends at most this after its interval's time */
#define SAMPLE_EARLY_S	      1.0  /* ... and at most one interval and this before it */

struct fixture {
	const char *capture; /* --capture value of this group */
	struct pgserver srv; /* the group's cluster, pgbench tables initialised */

	/* Started by the running test; test_teardown() stops whatever is left, by PID. */
	struct agent agents[MAX_AGENTS];
	PGconn *conns[MAX_CONNS];
	struct pgserver extra;
	struct pgbench_run bench;
	cJSON *lines;
	cJSON *lines_second; /* the output of agents[1], when a test compares two */
};

/* ---- helpers ---- */

static void expect_u64(uint64_t got, uint64_t want, const char *what)
{
	if (got != want)
		fail_msg("%s: got %llu, want %llu", what, (unsigned long long)got,
			 (unsigned long long)want);
}

#define MAX_EXTRA_ARGS 8

/* Start an agent on @instance with this group's --capture and @extra flags (may be NULL). */
static void start_agent_with(struct fixture *f, int slot, double interval_s, pid_t instance,
			     const char *const *extra)
{
	char pid[16];
	const char *args[5 + MAX_EXTRA_ARGS] = {"--capture", f->capture, "--pid", pid};
	int n = 4;

	snprintf(pid, sizeof(pid), "%d", (int)instance);
	while (extra && *extra) {
		assert_true(n < 4 + MAX_EXTRA_ARGS);
		args[n++] = *extra++;
	}
	args[n] = NULL;
	assert_int_equal(agent_start(&f->agents[slot], interval_s, args), 0);
}

static void start_agent(struct fixture *f, int slot, double interval_s, pid_t instance)
{
	start_agent_with(f, slot, interval_s, instance, NULL);
}

/* Stop the agent (it must exit 0) and parse its output into *@store (freeing what was there). */
static cJSON *stop_agent_into(struct fixture *f, int slot, cJSON **store)
{
	assert_int_equal(agent_stop(&f->agents[slot]), 0);
	cJSON_Delete(*store);
	*store = agent_read_lines(&f->agents[slot]);
	assert_non_null(*store);
	return *store;
}

/* Stop the agent (it must exit 0) and parse its output into f->lines. */
static cJSON *stop_agent(struct fixture *f, int slot)
{
	return stop_agent_into(f, slot, &f->lines);
}

static PGconn *connect_client(struct fixture *f, const struct pgserver *srv, bool unix_socket)
{
	int i;

	for (i = 0; i < MAX_CONNS; i++) {
		if (f->conns[i])
			continue;
		f->conns[i] = pgserver_connect(srv, unix_socket);
		return f->conns[i];
	}
	fail_msg("more than %d connections in one test", MAX_CONNS);
	return NULL;
}

static void close_client(struct fixture *f, PGconn *c)
{
	int i;

	for (i = 0; i < MAX_CONNS; i++)
		if (f->conns[i] == c)
			f->conns[i] = NULL;
	PQfinish(c);
}

/* Run @sql @n times; each must succeed. */
static void run_times(PGconn *c, const char *sql, int n)
{
	int i;

	for (i = 0; i < n; i++)
		pgserver_exec(c, sql);
}

/* Run @sql @n times; each must fail with SQLSTATE @sqlstate. */
static void run_failing_times(PGconn *c, const char *sql, int n, const char *sqlstate)
{
	int i;

	for (i = 0; i < n; i++) {
		PGresult *res = PQexec(c, sql);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (PQresultStatus(res) != PGRES_FATAL_ERROR || !state || strcmp(state, sqlstate)) {
			char got[16];

			snprintf(got, sizeof(got), "%s", state ? state : "none");
			PQclear(res);
			fail_msg("'%s': want SQLSTATE %s, got %s", sql, sqlstate, got);
		}
		PQclear(res);
	}
}

static const cJSON *get(const cJSON *line, const char *key)
{
	const cJSON *item = testutil_json_get(line, key);

	if (!item)
		fail_msg("key \"%s\" missing in %s line", key,
			 testutil_json_string(line, "kind") ?: "(no kind)");
	return item;
}

static void assert_string_at(const cJSON *line, const char *key, const char *want)
{
	const cJSON *item = get(line, key);

	if (!cJSON_IsString(item))
		fail_msg("\"%s\" is not a string", key);
	if (strcmp(item->valuestring, want))
		fail_msg("\"%s\": got \"%s\", want \"%s\"", key, item->valuestring, want);
}

static int64_t int_at(const cJSON *line, const char *key)
{
	int64_t v;

	get(line, key);
	if (!testutil_json_int(line, key, &v))
		fail_msg("\"%s\" is not an integer", key);
	return v;
}

static double number_at(const cJSON *line, const char *key)
{
	const cJSON *item = get(line, key);

	if (!cJSON_IsNumber(item))
		fail_msg("\"%s\" is not a number", key);
	return item->valuedouble;
}

/* @t in the form of @pattern ('d' a digit, "dddd-dd-ddTdd:dd:dd.dddZ"), and close to the wall
 * clock (so it is UTC). Returns the time in units of its last digit since the epoch. */
static int64_t check_rfc3339(const char *t, const char *pattern, const char *what)
{
	size_t i, frac_digits = strlen(pattern) - strlen("dddd-dd-ddTdd:dd:dd.Z");
	int64_t per_s = 1;
	struct tm tm = {0};
	time_t sec;

	if (strlen(t) != strlen(pattern))
		fail_msg("time \"%s\" is not RFC 3339 UTC with %s", t, what);
	for (i = 0; pattern[i]; i++)
		if (pattern[i] == 'd' ? !isdigit((unsigned char)t[i]) : t[i] != pattern[i])
			fail_msg("time \"%s\" is not RFC 3339 UTC with %s", t, what);
	assert_non_null(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
	sec = timegm(&tm);
	if (llabs((long long)(sec - time(NULL))) > TIME_SKEW_S)
		fail_msg("time \"%s\" is more than %d s from now (not UTC?)", t, TIME_SKEW_S);
	for (i = 0; i < frac_digits; i++)
		per_s *= 10;
	return (int64_t)sec * per_s + strtol(t + strlen("dddd-dd-ddTdd:dd:dd."), NULL, 10);
}

/* "2026-11-22T19:00:05.123Z": a line's time, with milliseconds. In seconds since the epoch. */
static double check_time(const char *t)
{
	return check_rfc3339(t, "dddd-dd-ddTdd:dd:dd.dddZ", "milliseconds") / 1e3;
}

/* "2026-11-22T19:00:05.123456Z": a sample's start or end, with microseconds. In microseconds
 * since the epoch (exact: a double in seconds would round away the last digit). */
static int64_t check_time_us(const char *t)
{
	return check_rfc3339(t, "dddd-dd-ddTdd:dd:dd.ddddddZ", "microseconds");
}

static bool is_lower_hex16(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return i == 16;
}

/* The instance attributes every series of @srv carries (docs/output.md). */
static void check_series_instance(const cJSON *line, const struct pgserver *srv)
{
	char socket_path[300];

	assert_string_at(line, "kind", "dbtap.series");
	assert_string_at(line, "db.system.name", "postgresql");
	expect_u64(int_at(line, "process.pid"), srv->pid, "process.pid");
	assert_string_at(line, "server.address", "127.0.0.1");
	expect_u64(int_at(line, "server.port"), srv->port, "server.port");
	snprintf(socket_path, sizeof(socket_path), "%s/.s.PGSQL.%d", srv->socket_dir, srv->port);
	assert_string_at(line, "server.socket", socket_path);
}

/* Every field of a series line of test_select_literals: a query "SELECT <n>" with no errors. */
static void check_select_series(const cJSON *line, const struct pgserver *srv)
{
	double sum, min, max, p50, p90, p99;
	const cJSON *d, *codes;
	int64_t count;

	check_time(testutil_json_string(line, "time") ?: "");
	assert_true(number_at(line, "interval_s") > 0);
	check_series_instance(line, srv);
	assert_string_at(line, "db.namespace", "postgres");
	assert_string_at(line, "db.user", "postgres");
	assert_string_at(line, "db.operation.name", "SELECT");
	assert_string_at(line, "db.query.summary", "SELECT");
	assert_null(testutil_json_get(line, "db.collection.name"));
	assert_string_at(line, "db.query.text", "SELECT ?");
	assert_true(is_lower_hex16(testutil_json_string(line, "dbtap.query_hash") ?: ""));
	assert_true(cJSON_IsTrue(get(line, "dbtap.text_known")));
	count = int_at(line, "count");
	assert_true(count > 0);
	expect_u64(int_at(line, "errors"), 0, "errors");
	expect_u64(int_at(line, "rows"), count, "rows (one per SELECT <n>)");
	codes = get(line, "error_codes");
	assert_true(cJSON_IsObject(codes));
	assert_null(codes->child);

	d = get(line, "duration_s");
	assert_true(cJSON_IsObject(d));
	sum = number_at(d, "sum");
	min = number_at(d, "min");
	max = number_at(d, "max");
	p50 = number_at(d, "p50");
	p90 = number_at(d, "p90");
	p99 = number_at(d, "p99");
	assert_true(min > 0 && min <= max);
	assert_true(max < 1.0); /* a SELECT <n> takes far less than 1 s */
	assert_true(sum >= max && sum <= max * count * 1.001);
	assert_true(p50 > 0 && p50 <= p90 && p90 <= p99);
}

/* Whether the "reasons" array of a sample line holds @reason. */
static bool sample_has_reason(const cJSON *line, const char *reason)
{
	const cJSON *r;

	cJSON_ArrayForEach (r, get(line, "reasons")) {
		if (cJSON_IsString(r) && !strcmp(r->valuestring, reason))
			return true;
	}
	return false;
}

/* The contract of every dbtap.sample line (docs/output.md), whatever the query: labels of a
 * PostgreSQL series, times in the line's interval that agree with duration_s, known reasons,
 * error keys exactly on failures, peer keys only for TCP. */
static void check_sample(const cJSON *line)
{
	static const char *const known_reasons[] = {"slow", "error", "max", "random"};
	double t = check_time(testutil_json_string(line, "time") ?: "");
	int64_t start, end;
	double duration;
	const char *transport;
	const cJSON *r;
	bool failed;
	size_t i;

	assert_string_at(line, "kind", "dbtap.sample");
	assert_string_at(line, "db.system.name", "postgresql");
	assert_true(int_at(line, "process.pid") > 0);
	get(line, "db.operation.name");
	get(line, "db.query.summary");
	assert_true(is_lower_hex16(testutil_json_string(line, "dbtap.query_hash") ?: ""));
	assert_true(cJSON_IsBool(get(line, "dbtap.text_known")));

	start = check_time_us(testutil_json_string(line, "start") ?: "");
	end = check_time_us(testutil_json_string(line, "end") ?: "");
	duration = number_at(line, "duration_s");
	/* both truncated to whole microseconds: their distance is within 1 us of the duration */
	if (start > end || fabs((double)(end - start) * US_S - duration) > US_S * 1.001)
		fail_msg("start %lld us end %lld us do not match duration_s %.9f", (long long)start,
			 (long long)end, duration);
	if (end * US_S > t + SAMPLE_LATE_S ||
	    end * US_S < t - number_at(line, "interval_s") - SAMPLE_EARLY_S)
		fail_msg("sample end %lld us is not in its interval (time %.3f)", (long long)end,
			 t);

	assert_true(cJSON_IsArray(get(line, "reasons")));
	assert_true(cJSON_GetArraySize(get(line, "reasons")) > 0);
	cJSON_ArrayForEach (r, get(line, "reasons")) {
		bool known = false;

		assert_true(cJSON_IsString(r));
		for (i = 0; i < sizeof(known_reasons) / sizeof(known_reasons[0]); i++)
			known |= !strcmp(r->valuestring, known_reasons[i]);
		if (!known)
			fail_msg("unknown sample reason \"%s\"", r->valuestring);
	}
	failed = sample_has_reason(line, "error");
	assert_true(!!testutil_json_get(line, "error.type") == failed);
	if (!failed)
		assert_null(testutil_json_get(line, "db.response.status_code"));
	assert_true(int_at(line, "rows") >= 0);
	assert_true(int_at(line, "thread.id") > 0);
	transport = testutil_json_string(line, "network.transport") ?: "";
	if (!strcmp(transport, "tcp")) {
		assert_non_null(testutil_json_string(line, "network.peer.address"));
		assert_true(int_at(line, "network.peer.port") > 0);
	} else if (!strcmp(transport, "unix") || !testutil_json_get(line, "network.transport")) {
		/* unix, or a family the kernel did not know: no peer address */
		assert_null(testutil_json_get(line, "network.peer.address"));
		assert_null(testutil_json_get(line, "network.peer.port"));
	} else {
		fail_msg("network.transport \"%s\", want tcp or unix", transport);
	}
}

/* Sample lines of @lines whose string @key is @value (any when @key is NULL) and whose reasons
 * hold @reason (any when NULL). */
static unsigned int count_samples(const cJSON *lines, const char *key, const char *value,
				  const char *reason)
{
	unsigned int n = 0;
	const cJSON *line;

	cJSON_ArrayForEach (line, lines) {
		const char *v = key ? testutil_json_string(line, key) : NULL;

		if (strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.sample"))
			continue;
		if (key && (!v || strcmp(v, value)))
			continue;
		if (reason && !sample_has_reason(line, reason))
			continue;
		n++;
	}
	return n;
}

/* The BPF program of @capture's path that sees the server read each query: PostgreSQL reads
 * with recv(), the recvfrom syscall. */
static const char *recv_program(const char *capture)
{
	return strcmp(capture, "syscall") ? "dbtap_sock_recv" : "dbtap_sys_recvfrom";
}

/* The bpf_programs entry named @name in @line, or NULL. */
static const cJSON *find_program(const cJSON *line, const char *name)
{
	const cJSON *prog;

	cJSON_ArrayForEach (prog, get(line, "bpf_programs")) {
		if (!strcmp(testutil_json_string(prog, "name") ?: "", name))
			return prog;
	}
	return NULL;
}

/*
 * bpf_stats and bpf_programs of a dbtap.self line: @capture's recv program is listed, no program
 * twice, and none of the other path's (they were never loaded). A program cannot
 * spend time without runs (the kernel counts both together), and an interval the agent says
 * the kernel did not count in has no runs at all.
 */
static void check_bpf_programs(const cJSON *line, const char *capture)
{
	const char *other = strcmp(capture, "syscall") ? "dbtap_sys_" : "dbtap_sock_";
	const cJSON *item = get(line, "bpf_stats"), *prog, *prev;
	bool counted;

	if (!cJSON_IsBool(item))
		fail_msg("\"bpf_stats\" is not a boolean");
	counted = cJSON_IsTrue(item);
	item = get(line, "bpf_programs");
	assert_true(cJSON_IsArray(item));
	assert_non_null(find_program(line, recv_program(capture)));
	cJSON_ArrayForEach (prog, item) {
		const char *name = testutil_json_string(prog, "name");
		int64_t runs = int_at(prog, "run_cnt"), ns = int_at(prog, "run_time_ns");

		assert_non_null(name);
		if (!strncmp(name, other, strlen(other)))
			fail_msg("program %s of the other capture path is loaded", name);
		for (prev = item->child; prev != prog; prev = prev->next)
			if (!strcmp(testutil_json_string(prev, "name") ?: "", name))
				fail_msg("program %s listed twice", name);
		if (ns > 0 && runs == 0)
			fail_msg("program %s: %lld ns in 0 runs", name, (long long)ns);
		if (!counted && (runs || ns))
			fail_msg("bpf_stats false, but program %s ran %lld times in %lld ns", name,
				 (long long)runs, (long long)ns);
	}
}

/* Every field of a dbtap.self line. */
static void check_self(const cJSON *line, const char *capture)
{
	static const char *const ints[] = {"events",	      "ops",
					   "samples",	      "texts",
					   "ringbuf_events",  "series_dropped",
					   "samples_dropped", "undecodable",
					   "rss_bytes"};
	const cJSON *item, *prog;
	size_t i;

	check_time(testutil_json_string(line, "time") ?: "");
	assert_true(number_at(line, "interval_s") > 0);
	assert_string_at(line, "kind", "dbtap.self");
	assert_string_at(line, "capture_path", capture);
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		assert_true(int_at(line, ints[i]) >= 0);
	assert_true(int_at(line, "rss_bytes") > 0);
	assert_true(number_at(line, "cpu_s") >= 0);
	assert_true(number_at(line, "cpu_total_s") >= number_at(line, "cpu_s") - 0.001);

	item = get(line, "counters");
	assert_true(cJSON_IsObject(item));
	int_at(item, "undecodable");
	cJSON_ArrayForEach (prog, item) {
		assert_true(cJSON_IsNumber(prog) && prog->valuedouble >= 0);
	}
	item = get(line, "drops");
	assert_true(cJSON_IsObject(item));
	int_at(item, "sample_ringbuf");
	cJSON_ArrayForEach (prog, item) {
		assert_true(cJSON_IsNumber(prog) && prog->valuedouble >= 0);
	}

	check_bpf_programs(line, capture);
}

/* Some dbtap.series line of @lines has the dbtap.query_hash and process.pid of @sample. */
static bool sample_has_series(const cJSON *lines, const cJSON *sample)
{
	const char *hash = testutil_json_string(sample, "dbtap.query_hash") ?: "";
	const cJSON *line;

	cJSON_ArrayForEach (line, lines) {
		if (!strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.series") &&
		    !strcmp(testutil_json_string(line, "dbtap.query_hash") ?: "", hash) &&
		    int_at(line, "process.pid") == int_at(sample, "process.pid"))
			return true;
	}
	return false;
}

/* Per interval: its series lines, then its sample lines, then exactly one dbtap.self line, all
 * with the same time and interval_s; intervals follow each other (end times increase by
 * interval_s). Every sample line passes check_sample() and joins a series line (the operation
 * it samples was counted). Returns the number of intervals. */
static int check_interval_structure(const cJSON *lines, const char *capture)
{
	const cJSON *line, *first = NULL;
	bool in_samples = false;
	double prev_end = 0;
	int intervals = 0;

	cJSON_ArrayForEach (line, lines) {
		const char *kind = testutil_json_string(line, "kind") ?: "";

		if (!strcmp(kind, "dbtap.series") || !strcmp(kind, "dbtap.sample")) {
			if (!strcmp(kind, "dbtap.sample")) {
				check_sample(line);
				if (!sample_has_series(lines, line))
					fail_msg("sample of query hash %s has no series line",
						 testutil_json_string(line, "dbtap.query_hash"));
				in_samples = true;
			} else if (in_samples) {
				fail_msg("a series line after the sample lines of its interval");
			}
			if (!first)
				first = line;
			assert_string_at(line, "time", testutil_json_string(first, "time"));
			assert_true(number_at(line, "interval_s") ==
				    number_at(first, "interval_s"));
			continue;
		}
		if (strcmp(kind, "dbtap.self"))
			fail_msg("line with unknown kind \"%s\"", kind);
		check_self(line, capture);
		if (first) {
			assert_string_at(line, "time", testutil_json_string(first, "time"));
			assert_true(number_at(line, "interval_s") ==
				    number_at(first, "interval_s"));
		}
		if (intervals > 0) {
			double end = check_time(testutil_json_string(line, "time"));

			if (end <= prev_end)
				fail_msg("two dbtap.self lines for one interval, or time going "
					 "back");
			/* Measured length ~ distance between interval ends (ms rounding, jitter). */
			assert_true(fabs(end - prev_end - number_at(line, "interval_s")) < 0.25);
		}
		prev_end = check_time(testutil_json_string(line, "time"));
		first = NULL;
		in_samples = false;
		intervals++;
	}
	if (first)
		fail_msg("series or sample lines after the last dbtap.self line");
	return intervals;
}

/* Integers in the raw JSON text are JSON integers: digits only, no fraction or exponent. */
static void check_raw_integers(const char *path)
{
	static const char *const keys[] = {"\"count\"", "\"errors\"", "\"rows\"", "\"process.pid\"",
					   "\"server.port\""};
	char *text = testutil_read_file(path, NULL);
	size_t i;

	assert_non_null(text);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *p = text;

		while ((p = strstr(p, keys[i]))) {
			p += strlen(keys[i]);
			while (*p == ' ')
				p++;
			if (*p != ':')
				continue; /* the word inside a string, not a key */
			p++;
			while (*p == ' ')
				p++;
			if (!isdigit((unsigned char)*p))
				fail_msg("%s is not a JSON integer", keys[i]);
			while (isdigit((unsigned char)*p))
				p++;
			if (*p != ',' && *p != '}' && *p != ' ')
				fail_msg("%s is not a JSON integer", keys[i]);
		}
	}
	free(text);
}

/* ---- fixtures ---- */

static int group_setup(void **state, const char *capture)
{
	struct fixture *f = calloc(1, sizeof(*f));
	PGconn *c;
	int rc;

	if (!f)
		return -1;
	f->capture = capture;
	/* IPv6 loopback too, for test_ipv6 (later lines of postgresql.conf win) */
	if (pgserver_start(&f->srv, "listen_addresses = '127.0.0.1,::1'")) {
		free(f);
		return -1;
	}
	c = PQconnectdb(f->srv.conninfo_tcp);
	rc = PQstatus(c) == CONNECTION_OK ? 0 : -1;
	if (!rc) {
		PGresult *res = PQexec(c, "CREATE EXTENSION pg_stat_statements");

		rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
		PQclear(res);
	}
	PQfinish(c);
	/* pgbench tables for test_pgbench_modes and test_restart_under_load */
	if (!rc && pgserver_pgbench(&f->srv, "-i -s 1 -q", NULL) != 0)
		rc = -1;
	if (rc) {
		fprintf(stderr, "group setup: pg_stat_statements or pgbench -i failed\n");
		pgserver_stop(&f->srv);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int group_setup_socket(void **state)
{
	return group_setup(state, "socket");
}

static int group_setup_syscall(void **state)
{
	return group_setup(state, "syscall");
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	if (f) {
		pgserver_stop(&f->srv);
		free(f);
	}
	return 0;
}

static int test_setup(void **state)
{
	struct fixture *f = *state;

	memset(f->agents, 0, sizeof(f->agents));
	memset(f->conns, 0, sizeof(f->conns));
	memset(&f->extra, 0, sizeof(f->extra));
	memset(&f->bench, 0, sizeof(f->bench));
	f->lines = NULL;
	f->lines_second = NULL;
	return 0;
}

/* Stop, by PID, whatever the test started and left running (it failed half-way). */
static int test_teardown(void **state)
{
	struct fixture *f = *state;
	int i;

	for (i = 0; i < MAX_AGENTS; i++)
		if (f->agents[i].pid > 0)
			agent_stop(&f->agents[i]);
	for (i = 0; i < MAX_CONNS; i++) {
		PQfinish(f->conns[i]);
		f->conns[i] = NULL;
	}
	if (f->bench.pid > 0)
		pgserver_pgbench_wait(&f->bench, 0, NULL);
	pgserver_stop(&f->extra);
	cJSON_Delete(f->lines);
	f->lines = NULL;
	cJSON_Delete(f->lines_second);
	f->lines_second = NULL;
	return 0;
}

/* ---- 1. literals share one series; the JSON contract ---- */

#define SELECT_QUERIES 1000

static void test_select_literals(void **state)
{
	struct fixture *f = *state;
	const cJSON *line, *hash = NULL;
	unsigned int series_lines = 0;
	cJSON *lines;
	PGconn *c;
	int i;

	start_agent(f, 0, INTERVAL_S / 2, f->srv.pid);
	c = connect_client(f, &f->srv, false);
	for (i = 1; i <= SELECT_QUERIES; i++) {
		char sql[32], want[16], *got;

		snprintf(sql, sizeof(sql), "SELECT %d", i);
		snprintf(want, sizeof(want), "%d", i);
		got = pgserver_query_value(c, sql);
		assert_string_equal(got, want);
		free(got);
		/* Sleep across intervals half-way: the series must add up over intervals. */
		if (i == SELECT_QUERIES / 2)
			testutil_sleep_ms(1200);
	}
	lines = stop_agent(f, 0);

	cJSON_ArrayForEach (line, lines) {
		const char *kind = testutil_json_string(line, "kind") ?: "";

		if (strcmp(kind, "dbtap.series"))
			continue;
		/* Nothing else ran on this cluster: every series line is the one series. */
		check_select_series(line, &f->srv);
		if (!hash)
			hash = get(line, "dbtap.query_hash");
		assert_string_at(line, "dbtap.query_hash", hash->valuestring);
		series_lines++;
	}
	assert_true(series_lines >= 2); /* before and after the sleep */
	expect_u64(
		agent_sum_series(lines, "count",
				 MATCH("db.query.summary", "SELECT", "db.query.text", "SELECT ?")),
		SELECT_QUERIES, "count of SELECT ?");
	expect_u64(agent_sum_series(lines, "errors", NULL), 0, "errors");
	expect_u64(agent_sum_series(lines, "rows", NULL), SELECT_QUERIES, "rows");
	expect_u64(agent_sum_self(lines, "ops"), SELECT_QUERIES, "dbtap.self ops");
	assert_true(check_interval_structure(lines, f->capture) >= 3);
	check_raw_integers(f->agents[0].out_path);
}

/* ---- 2. pgbench in every query mode vs pg_stat_statements ---- */

struct pgbench_statement {
	const char *operation;	/* db.operation.name */
	const char *collection; /* db.collection.name, NULL when none */
	const char *pgss_regex; /* matches its text in pg_stat_statements */
	bool utility;		/* BEGIN/END: a utility statement for pg_stat_statements */
};

static const struct pgbench_statement tpcb_statements[] = {
	{"BEGIN", NULL, "^BEGIN;?$", true},
	{"UPDATE", "pgbench_accounts", "^UPDATE pgbench_accounts ", false},
	{"SELECT", "pgbench_accounts", "^SELECT abalance FROM pgbench_accounts ", false},
	{"UPDATE", "pgbench_tellers", "^UPDATE pgbench_tellers ", false},
	{"UPDATE", "pgbench_branches", "^UPDATE pgbench_branches ", false},
	{"INSERT", "pgbench_history", "^INSERT INTO pgbench_history ", false},
	{"END", NULL, "^END;?$", true},
};

static uint64_t pgss_calls(PGconn *c, const char *regex)
{
	char sql[512], *v;
	uint64_t calls;

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d "
		 "ON d.oid = s.dbid WHERE d.datname = 'postgres' AND s.query ~ '%s'",
		 regex);
	v = pgserver_query_value(c, sql);
	assert_non_null(v);
	calls = strtoull(v, NULL, 10);
	free(v);
	return calls;
}

static void test_pgbench_modes(void **state)
{
	static const char *const modes[] = {"simple", "extended", "prepared"};
	struct fixture *f = *state;
	PGconn *c = connect_client(f, &f->srv, false);
	size_t m, i;

	for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		char args[128], what[160], *out = NULL;
		cJSON *lines;
		int rc;

		pgserver_exec(c, "SELECT pg_stat_statements_reset()");
		start_agent(f, 0, INTERVAL_S, f->srv.pid);
		snprintf(args, sizeof(args), "-M %s -c %d -t %d -n", modes[m], PGBENCH_CLIENTS,
			 PGBENCH_TX_PER_CLIENT);
		rc = pgserver_pgbench(&f->srv, args, &out);
		if (rc != 0)
			fail_msg("pgbench %s: exit %d\n%s", args, rc, out ?: "");
		free(out);
		lines = stop_agent(f, 0);

		for (i = 0; i < sizeof(tpcb_statements) / sizeof(tpcb_statements[0]); i++) {
			const struct pgbench_statement *st = &tpcb_statements[i];
			const char *const *match =
				st->collection ? MATCH("db.operation.name", st->operation,
						       "db.collection.name", st->collection)
					       : MATCH("db.operation.name", st->operation);

			snprintf(what, sizeof(what), "-M %s: dbtap count of %s %s", modes[m],
				 st->operation, st->collection ?: "");
			expect_u64(agent_sum_series(lines, "count", match), PGBENCH_TX, what);
			snprintf(what, sizeof(what), "-M %s: dbtap errors of %s %s", modes[m],
				 st->operation, st->collection ?: "");
			expect_u64(agent_sum_series(lines, "errors", match), 0, what);
			/* pg_stat_statements 15 counts a utility statement run from a named prepared
			 * statement once per PREPARE (once per client), not per execution: only
			 * dbtap's count can be compared there. */
			if (st->utility && !strcmp(modes[m], "prepared"))
				continue;
			snprintf(what, sizeof(what), "-M %s: pg_stat_statements calls of %s %s",
				 modes[m], st->operation, st->collection ?: "");
			expect_u64(pgss_calls(c, st->pgss_regex), PGBENCH_TX, what);
		}
	}
}

/* ---- 3. latency percentiles ---- */

/*
 * A shared machine can stretch any one round trip (CI saw 50 ms sleeps take 60-600 ms), so the
 * agent is judged against what this run really did, never against a quiet-machine window:
 * each query's server time lies between SLEEP_S and the client's round trip of that query
 * (plus the send hook's lag, HOOK_LAG_S); the --slow-threshold 40ms agent samples every query
 * with its exact duration; the default agent's histogram percentiles, min and max match those
 * exact durations to a bucket; its "slow" samples are exactly the queries of 100 ms or more.
 */
#define SLEEP_QUERIES	   20
#define SLEEP_TEXT	   "SELECT pg_sleep(?)"
#define SLOW_THRESHOLD_ARG "40ms" /* --slow-threshold of the second agent: below SLEEP_S */
#define SLOW_THRESHOLD_S   0.04
#define DEFAULT_SLOW_S	   0.1	  /* the default --slow-threshold */
#define TWO_AGENTS_S	   0.002  /* both agents time one query within this of each other */
#define BUCKET_REL	   0.0625 /* a histogram bucket's width, relative (16 per power of 2) */
/* The server's send hook runs after the reply left (at syscall exit on the syscall path), and
 * the woken client may preempt the server before it gets there: a query's time can exceed
 * the client's round trip by that lag (65 us seen on an idle machine). */
#define HOOK_LAG_S	   0.05

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run pg_sleep SLEEP_QUERIES times; each round trip as the client saw it, in seconds. */
static void run_sleeps(PGconn *c, double rtt[SLEEP_QUERIES])
{
	char sql[64];
	int i;

	snprintf(sql, sizeof(sql), "SELECT pg_sleep(%g)", SLEEP_S);
	for (i = 0; i < SLEEP_QUERIES; i++) {
		double t0 = monotonic_s();

		pgserver_exec(c, sql);
		rtt[i] = monotonic_s() - t0;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank quantile @q of the @n values in @v (sorted ascending). */
static double nearest_rank(const double *v, int n, double q)
{
	int rank = (int)ceil(q * n * (1 - 1e-12));

	return v[(rank < 1 ? 1 : rank > n ? n : rank) - 1];
}

/*
 * The samples of pg_sleep in @lines (the --slow-threshold SLOW_THRESHOLD_ARG agent): every one
 * of the SLEEP_QUERIES, each "slow", the i-th at least SLEEP_S long and at most the client's
 * i-th round trip @rtt (plus HOOK_LAG_S), one after the other on the connection (each starts after the previous
 * one ended). Their durations go to @dur, in order.
 */
static void check_slow_samples(const cJSON *lines, const double rtt[SLEEP_QUERIES],
			       double dur[SLEEP_QUERIES])
{
	const cJSON *line;
	int64_t prev_end = 0;
	unsigned int n = 0;

	cJSON_ArrayForEach (line, lines) {
		const char *text = testutil_json_string(line, "db.query.text");
		int64_t start;
		double duration;

		if (strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.sample") || !text ||
		    strcmp(text, SLEEP_TEXT))
			continue;
		if (n >= SLEEP_QUERIES)
			fail_msg("more than %d pg_sleep samples", SLEEP_QUERIES);
		check_sample(line);
		if (!sample_has_reason(line, "slow"))
			fail_msg("pg_sleep(%g) sample %u not \"slow\" at --slow-threshold %s",
				 SLEEP_S, n, SLOW_THRESHOLD_ARG);
		assert_false(sample_has_reason(line, "error"));
		duration = number_at(line, "duration_s");
		if (duration < SLEEP_S || duration > rtt[n] + HOOK_LAG_S)
			fail_msg("pg_sleep sample %u: duration_s %.6f, want in [%.3f, %.6f] (the "
				 "client's round trip %.6f + %.3f)",
				 n, duration, SLEEP_S, rtt[n] + HOOK_LAG_S, rtt[n], HOOK_LAG_S);
		dur[n] = duration;
		start = check_time_us(testutil_json_string(line, "start"));
		if (start < prev_end)
			fail_msg("pg_sleep sample %u starts at %lld us, before the previous ended "
				 "(%lld us)",
				 n, (long long)start, (long long)prev_end);
		prev_end = check_time_us(testutil_json_string(line, "end"));
		expect_u64(int_at(line, "rows"), 1, "rows of a pg_sleep sample");
		assert_string_at(line, "network.transport", "tcp");
		assert_string_at(line, "network.peer.address", "127.0.0.1");
		n++;
	}
	expect_u64(n, SLEEP_QUERIES, "pg_sleep samples at --slow-threshold " SLOW_THRESHOLD_ARG);
}

/* @got (a histogram figure) is @want (an exact duration) to within a bucket and both agents'
 * timing difference. */
static void expect_near(double got, double want, const char *what)
{
	if (fabs(got - want) > want * BUCKET_REL + TWO_AGENTS_S)
		fail_msg("%s %.6f s, want %.6f s (exact, from the samples) +- %.1f%% + %.3f s",
			 what, got, want, BUCKET_REL * 100, TWO_AGENTS_S);
}

static void test_latency_percentiles(void **state)
{
	struct fixture *f = *state;
	double rtt[SLEEP_QUERIES], dur[SLEEP_QUERIES], sorted[SLEEP_QUERIES], slowest = 0;
	unsigned int slow_sure = 0, slow_maybe = 0, slow_got;
	const cJSON *line, *found = NULL;
	cJSON *lines;
	PGconn *c;
	int i;

	_Static_assert(SLOW_THRESHOLD_S < SLEEP_S, "the second agent must see every sleep as slow");
	start_agent(f, 0, LONG_INTERVAL_S, f->srv.pid);
	start_agent_with(f, 1, LONG_INTERVAL_S, f->srv.pid,
			 (const char *const[]){"--slow-threshold", SLOW_THRESHOLD_ARG, NULL});
	c = connect_client(f, &f->srv, false);
	run_sleeps(c, rtt);
	stop_agent_into(f, 1, &f->lines_second);
	lines = stop_agent(f, 0);
	close_client(f, c);
	for (i = 0; i < SLEEP_QUERIES; i++)
		slowest = rtt[i] > slowest ? rtt[i] : slowest;
	if (slowest > SLEEP_S + 0.005) /* only said: the checks below hold either way */
		printf("note: the slowest pg_sleep(%g) round trip took %.4f s (machine busy)\n",
		       SLEEP_S, slowest);

	/* --slow-threshold 40ms: all of them, each within its own round trip */
	check_slow_samples(f->lines_second, rtt, dur);
	assert_int_equal(check_interval_structure(f->lines_second, f->capture), 1);
	expect_u64(agent_sum_self(f->lines_second, "samples_dropped"), 0, "samples_dropped");

	/* default agent: one series line whose figures are the exact durations' */
	cJSON_ArrayForEach (line, lines) {
		const char *text = testutil_json_string(line, "db.query.text");

		if (strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.series") || !text ||
		    strcmp(text, SLEEP_TEXT))
			continue;
		assert_null(found); /* one interval, so one line */
		found = line;
	}
	assert_non_null(found);
	assert_int_equal(check_interval_structure(lines, f->capture), 1);
	expect_u64(int_at(found, "count"), SLEEP_QUERIES, "count of pg_sleep");
	memcpy(sorted, dur, sizeof(sorted));
	qsort(sorted, SLEEP_QUERIES, sizeof(sorted[0]), cmp_double);
	assert_true(number_at(found, "duration_s.min") >= SLEEP_S);
	assert_true(number_at(found, "duration_s.max") <= slowest + HOOK_LAG_S);
	expect_near(number_at(found, "duration_s.min"), sorted[0], "duration_s.min");
	expect_near(number_at(found, "duration_s.max"), sorted[SLEEP_QUERIES - 1],
		    "duration_s.max");
	expect_near(number_at(found, "duration_s.p50"), nearest_rank(sorted, SLEEP_QUERIES, 0.5),
		    "duration_s.p50");
	expect_near(number_at(found, "duration_s.p99"), nearest_rank(sorted, SLEEP_QUERIES, 0.99),
		    "duration_s.p99");

	/* Default --slow-threshold (100 ms): "slow" exactly for the queries that took that long
	 * (one within both agents' difference of 100 ms may go either way); the first of the
	 * interval and each new maximum are sampled as "max" (the first at least). */
	for (i = 0; i < SLEEP_QUERIES; i++) {
		if (dur[i] >= DEFAULT_SLOW_S + TWO_AGENTS_S)
			slow_sure++;
		else if (dur[i] > DEFAULT_SLOW_S - TWO_AGENTS_S)
			slow_maybe++;
	}
	slow_got = count_samples(lines, "db.query.text", SLEEP_TEXT, "slow");
	if (slow_got < slow_sure || slow_got > slow_sure + slow_maybe)
		fail_msg("%u pg_sleep samples \"slow\" at the default threshold, want %u (+%u near "
			 "100 ms)",
			 slow_got, slow_sure, slow_maybe);
	if (count_samples(lines, "db.query.text", SLEEP_TEXT, "max") < 1)
		fail_msg("no pg_sleep sample with reason \"max\"");
	cJSON_ArrayForEach (line, lines) { /* every sample is "max" or "slow" */
		const char *text = testutil_json_string(line, "db.query.text");

		if (strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.sample") || !text ||
		    strcmp(text, SLEEP_TEXT))
			continue;
		if (!sample_has_reason(line, "max") && !sample_has_reason(line, "slow"))
			fail_msg("a pg_sleep sample neither \"max\" nor \"slow\"");
	}
	assert_true(count_samples(lines, "db.query.text", SLEEP_TEXT, NULL) <= SLEEP_QUERIES);
	expect_u64(agent_sum_self(lines, "samples_dropped"), 0, "samples_dropped");
}

/* ---- 4. errors and their SQLSTATE codes ---- */

#define FAILING_QUERIES 5
#define OK_QUERIES	3

/* The client's own port of a TCP connection: the server's peer port. */
static int client_port(PGconn *c)
{
	struct sockaddr_in addr;
	socklen_t len = sizeof(addr);

	assert_int_equal(getsockname(PQsocket(c), (struct sockaddr *)&addr, &len), 0);
	assert_int_equal(addr.sin_family, AF_INET);
	return ntohs(addr.sin_port);
}

/* Every failed SELECT of test_errors as a sample: exactly FAILING_QUERIES, every key. */
static void check_error_samples(const cJSON *lines, const struct pgserver *srv, int port,
				int backend_pid)
{
	unsigned int n = 0;
	const cJSON *line;

	cJSON_ArrayForEach (line, lines) {
		if (strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.sample") ||
		    !sample_has_reason(line, "error"))
			continue;
		check_sample(line);
		expect_u64(int_at(line, "process.pid"), srv->pid, "sample process.pid");
		assert_string_at(line, "db.namespace", "postgres");
		assert_string_at(line, "db.user", "postgres");
		assert_string_at(line, "db.operation.name", "SELECT");
		assert_string_at(line, "db.collection.name", "no_such_table");
		assert_string_at(line, "db.query.text", "SELECT * FROM no_such_table");
		assert_string_at(line, "db.response.status_code", "42P01");
		assert_string_at(line, "error.type", "42P01");
		expect_u64(int_at(line, "rows"), 0, "rows of a failed SELECT");
		assert_string_at(line, "network.transport", "tcp");
		assert_string_at(line, "network.peer.address", "127.0.0.1");
		expect_u64(int_at(line, "network.peer.port"), port, "network.peer.port");
		/* a PostgreSQL backend is one process of one thread */
		expect_u64(int_at(line, "thread.id"), backend_pid, "thread.id (backend PID)");
		assert_true(number_at(line, "duration_s") > 0);
		n++;
	}
	expect_u64(n, FAILING_QUERIES, "sample lines with reason \"error\"");
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	const cJSON *line;
	cJSON *lines;
	PGconn *c;
	int port, backend_pid;

	start_agent(f, 0, INTERVAL_S, f->srv.pid);
	c = connect_client(f, &f->srv, false);
	port = client_port(c);
	backend_pid = PQbackendPID(c);
	run_failing_times(c, "SELECT * FROM no_such_table", FAILING_QUERIES, "42P01");
	run_times(c, "SELECT 1", OK_QUERIES);
	lines = stop_agent(f, 0);

	expect_u64(agent_sum_series(lines, "errors", MATCH("db.collection.name", "no_such_table")),
		   FAILING_QUERIES, "errors of SELECT no_such_table");
	expect_u64(agent_sum_series(lines, "count", MATCH("db.collection.name", "no_such_table")),
		   FAILING_QUERIES, "count of SELECT no_such_table (failed operations count)");
	expect_u64(agent_sum_series(lines, "error_codes.42P01",
				    MATCH("db.collection.name", "no_such_table")),
		   FAILING_QUERIES, "error_codes 42P01");
	cJSON_ArrayForEach (line, lines) {
		const char *coll = testutil_json_string(line, "db.collection.name");
		const cJSON *codes, *code;

		if (strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.series") || !coll ||
		    strcmp(coll, "no_such_table"))
			continue;
		assert_string_at(line, "db.operation.name", "SELECT");
		assert_string_at(line, "db.query.text", "SELECT * FROM no_such_table");
		codes = get(line, "error_codes");
		cJSON_ArrayForEach (code, codes) {
			assert_string_equal(code->string, "42P01");
		}
	}
	expect_u64(agent_sum_series(lines, "count", MATCH("db.query.text", "SELECT ?")), OK_QUERIES,
		   "count of SELECT ?");
	expect_u64(agent_sum_series(lines, "errors", MATCH("db.query.text", "SELECT ?")), 0,
		   "errors of SELECT ?");
	expect_u64(agent_sum_series(lines, "errors", NULL), FAILING_QUERIES, "all errors");

	/* every failure sampled; the successful SELECTs sampled as the first of their series
	 * ("max"), never as failures */
	check_error_samples(lines, &f->srv, port, backend_pid);
	expect_u64(count_samples(lines, "db.query.text", "SELECT ?", "error"), 0,
		   "\"error\" samples of SELECT ?");
	if (count_samples(lines, "db.query.text", "SELECT ?", "max") < 1)
		fail_msg("no \"max\" sample of SELECT ?");
	cJSON_ArrayForEach (line, lines) {
		const char *text = testutil_json_string(line, "db.query.text");

		if (strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.sample") || !text ||
		    strcmp(text, "SELECT ?"))
			continue;
		assert_null(testutil_json_get(line, "db.response.status_code"));
		assert_null(testutil_json_get(line, "error.type"));
		expect_u64(int_at(line, "rows"), 1, "rows of a SELECT 1 sample");
		expect_u64(int_at(line, "thread.id"), backend_pid, "thread.id (backend PID)");
	}
	expect_u64(agent_sum_self(lines, "samples_dropped"), 0, "samples_dropped");
	assert_true(check_interval_structure(lines, f->capture) >= 1);
}

/* ---- 5. connections opened before and after the agent, TCP and unix ---- */

#define CLIENT_QUERIES 10

static void test_connections(void **state)
{
	static const struct {
		const char *alias;
		bool unix_socket;
		bool before_agent;
	} clients[] = {
		{"pre_tcp", false, true},
		{"pre_unix", true, true},
		{"post_tcp", false, false},
		{"post_unix", true, false},
	};
	const size_t n = sizeof(clients) / sizeof(clients[0]);
	struct fixture *f = *state;
	PGconn *conns[4];
	cJSON *lines;
	char pid[16];
	size_t i;

	for (i = 0; i < n; i++)
		if (clients[i].before_agent)
			conns[i] = connect_client(f, &f->srv, clients[i].unix_socket);
	testutil_sleep_ms(200); /* idle: the backends' titles settle before the agent scans */
	start_agent(f, 0, INTERVAL_S, f->srv.pid);
	for (i = 0; i < n; i++)
		if (!clients[i].before_agent)
			conns[i] = connect_client(f, &f->srv, clients[i].unix_socket);
	for (i = 0; i < n; i++) {
		char sql[64];

		snprintf(sql, sizeof(sql), "SELECT 1 AS %s", clients[i].alias);
		run_times(conns[i], sql, CLIENT_QUERIES);
	}
	lines = stop_agent(f, 0);

	snprintf(pid, sizeof(pid), "%d", (int)f->srv.pid);
	for (i = 0; i < n; i++) {
		char text[64], what[160];

		snprintf(text, sizeof(text), "SELECT ? AS %s", clients[i].alias);
		snprintf(what, sizeof(what), "count of %s", text);
		expect_u64(agent_sum_series(lines, "count", MATCH("db.query.text", text)),
			   CLIENT_QUERIES, what);
		/* Pre-existing connections too: database and user from the process title. */
		snprintf(what, sizeof(what), "count of %s with db.namespace, db.user, process.pid",
			 text);
		expect_u64(agent_sum_series(lines, "count",
					    MATCH("db.query.text", text, "db.namespace", "postgres",
						  "db.user", "postgres", "process.pid", pid)),
			   CLIENT_QUERIES, what);
	}
}

/* ---- 6. garbage on the server port ---- */

#define GARBAGE_AFTER_QUERIES 10

/* xorshift64*: a fixed, portable byte stream. */
static uint64_t prng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static void send_garbage(int port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 5};
	unsigned char buf[GARBAGE_BYTES], sink[512];
	uint64_t seed = GARBAGE_SEED;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(buf); i += sizeof(uint64_t)) {
		uint64_t v = prng_next(&seed);

		memcpy(buf + i, &v, sizeof(v));
	}
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The server may close after the first bad bytes: later sends can fail, which is fine. */
	(void)send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	while (recv(fd, sink, sizeof(sink), 0) > 0)
		;
	close(fd);
}

static void test_garbage(void **state)
{
	struct fixture *f = *state;
	cJSON *lines;
	PGconn *c;

	start_agent(f, 0, INTERVAL_S, f->srv.pid);
	send_garbage(f->srv.port);
	testutil_sleep_ms(200);
	/* The agent keeps running. */
	assert_int_equal(testutil_wait(f->agents[0].pid, 0, NULL), -ETIMEDOUT);
	c = connect_client(f, &f->srv, false);
	run_times(c, "SELECT 1 AS after_garbage", GARBAGE_AFTER_QUERIES);
	lines = stop_agent(f, 0);

	assert_true(agent_sum_self(lines, "counters.undecodable") >= 1);
	expect_u64(agent_sum_series(lines, "count",
				    MATCH("db.query.text", "SELECT ? AS after_garbage")),
		   GARBAGE_AFTER_QUERIES, "count after garbage");
}

/* ---- 7. restart under load leaves nothing loaded ---- */

#define RESTART_ROUNDS	     2
#define RESTART_PGBENCH_ARGS "-S -c 2 -T 6"
#define RESTART_RUN_MS	     500
#define RESTART_FREE_POLLS   50 /* ... of RESTART_FREE_POLL_MS: 5 s for deferred frees */
#define RESTART_FREE_POLL_MS 100
#define BPF_NAME_PREFIX	     "dbtap"

struct id_set {
	unsigned int n;
	uint32_t ids[MAX_BPF_IDS];
};

static bool id_set_has(const struct id_set *s, uint32_t id)
{
	unsigned int i;

	for (i = 0; i < s->n; i++)
		if (s->ids[i] == id)
			return true;
	return false;
}

static void id_set_add(struct id_set *s, uint32_t id)
{
	if (!id_set_has(s, id) && s->n < MAX_BPF_IDS)
		s->ids[s->n++] = id;
}

/* BPF program and link IDs behind the open fds of @pid (/proc/PID/fdinfo: prog_id, link_id). */
static void collect_fd_bpf_ids(pid_t pid, struct id_set *progs, struct id_set *links)
{
	char path[64];
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		char file[320], *text, *p;

		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		text = testutil_read_file(file, NULL);
		if (!text)
			continue;
		if ((p = strstr(text, "\nprog_id:")))
			id_set_add(progs, strtoul(p + strlen("\nprog_id:"), NULL, 10));
		if (links && (p = strstr(text, "\nlink_id:")))
			id_set_add(links, strtoul(p + strlen("\nlink_id:"), NULL, 10));
		free(text);
	}
	closedir(dir);
}

/* Programs held open by any live process. */
static void collect_held_prog_ids(struct id_set *progs)
{
	struct dirent *de;
	DIR *proc = opendir("/proc");

	assert_non_null(proc);
	while ((de = readdir(proc)))
		if (isdigit((unsigned char)de->d_name[0]))
			collect_fd_bpf_ids(atoi(de->d_name), progs, NULL);
	closedir(proc);
}

/* `bpftool -j <what> show` parsed. */
static cJSON *bpftool_show(const char *what)
{
	const char *argv[] = {"bpftool", "-j", what, "show", NULL};
	char *out = NULL;
	cJSON *json;
	int rc = testutil_run(argv, 30000, &out);

	if (rc != 0)
		fail_msg("bpftool -j %s show: exit %d\n%s", what, rc, out ?: "");
	json = cJSON_Parse(out);
	free(out);
	assert_true(cJSON_IsArray(json));
	return json;
}

/* Whether any program of @ids is still loaded. */
static bool any_loaded(const struct id_set *ids)
{
	cJSON *progs = bpftool_show("prog"), *prog;
	bool found = false;

	cJSON_ArrayForEach (prog, progs) {
		if (id_set_has(ids, int_at(prog, "id")))
			found = true;
	}
	cJSON_Delete(progs);
	return found;
}

static bool has_dbtap_name(const cJSON *prog)
{
	const char *name = testutil_json_string(prog, "name");

	return name && !strncmp(name, BPF_NAME_PREFIX, strlen(BPF_NAME_PREFIX));
}

/* ---- stopped from a shell script ---- */

/* A shell starts `dbtap ... &` with SIGINT ignored (as tests/bench/bench.sh does): SIGINT
 * stops it all the same (the harness gives it 15 s, then prints its stacks), exit 0, and the
 * final interval is written. */
static void test_stop_from_shell_job(void **state)
{
	struct fixture *f = *state;
	const cJSON *line;
	unsigned int selfs = 0;
	cJSON *lines;
	PGconn *c;

	agent_next_start_ignores_sigint();
	start_agent(f, 0, LONG_INTERVAL_S, f->srv.pid);
	c = connect_client(f, &f->srv, false);
	pgserver_exec(c, "SELECT 42 AS shell_job");
	close_client(f, c);
	lines = stop_agent(f, 0);
	cJSON_ArrayForEach (line, lines)
		selfs += !strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.self");
	expect_u64(selfs, 1, "dbtap.self lines (the final interval)");
}

static void test_restart_under_load(void **state)
{
	struct fixture *f = *state;
	struct id_set before_set = {0}, ours_set = {0}, links_set = {0}, held_set = {0};
	struct id_set *before = &before_set, *ours = &ours_set, *our_links = &links_set;
	struct id_set *held = &held_set;
	const cJSON *prog, *link;
	cJSON *progs, *links;
	char *out = NULL;
	int round, rc;

	/* dbtap programs of other agents already on this machine are not ours to judge */
	progs = bpftool_show("prog");
	cJSON_ArrayForEach (prog, progs) {
		if (has_dbtap_name(prog))
			id_set_add(before, int_at(prog, "id"));
	}
	cJSON_Delete(progs);

	assert_int_equal(pgserver_pgbench_start(&f->srv, RESTART_PGBENCH_ARGS, &f->bench), 0);
	for (round = 0; round < RESTART_ROUNDS; round++) {
		unsigned int n_before = ours->n;

		start_agent(f, round, INTERVAL_S, f->srv.pid);
		collect_fd_bpf_ids(f->agents[round].pid, ours, our_links);
		if (ours->n == n_before)
			fail_msg("agent round %d holds no BPF program fd", round);
		/* Its programs carry the prefix the leak check below looks for. */
		progs = bpftool_show("prog");
		cJSON_ArrayForEach (prog, progs) {
			if (id_set_has(ours, int_at(prog, "id")) && !has_dbtap_name(prog))
				fail_msg("BPF program \"%s\" does not start with \"%s\"",
					 testutil_json_string(prog, "name") ?: "?",
					 BPF_NAME_PREFIX);
		}
		cJSON_Delete(progs);
		testutil_sleep_ms(RESTART_RUN_MS);
		assert_int_equal(agent_stop(&f->agents[round]), 0);
	}
	rc = pgserver_pgbench_wait(&f->bench, PGBENCH_TIMEOUT_MS, &out);
	if (rc != 0)
		fail_msg("pgbench " RESTART_PGBENCH_ARGS ": exit %d\n%s", rc, out ?: "");
	free(out);

	/* The kernel frees a program whose last reference went away in deferred (RCU) work:
	 * on a busy machine bpftool may still list it for a moment. Wait for that, boundedly. */
	for (round = 0; round < RESTART_FREE_POLLS && any_loaded(ours); round++)
		testutil_sleep_ms(RESTART_FREE_POLL_MS);
	collect_held_prog_ids(held);
	progs = bpftool_show("prog");
	cJSON_ArrayForEach (prog, progs) {
		uint32_t id = int_at(prog, "id");

		if (id_set_has(ours, id))
			fail_msg("BPF program %u (%s) still loaded after the agent exited", id,
				 testutil_json_string(prog, "name") ?: "?");
		/* A dbtap program nobody holds open was left behind (pinned, or a leak). */
		if (has_dbtap_name(prog) && !id_set_has(before, id) && !id_set_has(held, id))
			fail_msg("BPF program %u (%s) left loaded", id,
				 testutil_json_string(prog, "name"));
	}
	cJSON_Delete(progs);
	links = bpftool_show("link");
	cJSON_ArrayForEach (link, links) {
		int64_t prog_id = 0;

		testutil_json_int(link, "prog_id", &prog_id);
		if (id_set_has(our_links, int_at(link, "id")) || id_set_has(ours, prog_id))
			fail_msg("BPF link %lld still there after the agent exited",
				 (long long)int_at(link, "id"));
	}
	cJSON_Delete(links);
}

/* ---- 8. a cluster in its own PID and mount namespaces ---- */

#define UNSHARED_QUERIES 100

/* True when some line of @text has @pid as a whole word. */
static bool output_has_pid(const char *text, pid_t pid)
{
	char want[16];
	const char *p = text;
	size_t n;

	snprintf(want, sizeof(want), "%d", (int)pid);
	n = strlen(want);
	while (text && (p = strstr(p, want))) {
		bool start = p == text || !isalnum((unsigned char)p[-1]);
		bool end = !isalnum((unsigned char)p[n]);

		if (start && end)
			return true;
		p++;
	}
	return false;
}

static void test_unshared_server(void **state)
{
	struct fixture *f = *state;
	const char *bin = getenv("DBTAP_BIN") ?: "build/dbtap";
	const char *argv[] = {bin, "list", NULL};
	char pid[16], *out = NULL;
	cJSON *lines;
	PGconn *c;
	int rc;

	assert_int_equal(pgserver_start_unshared(&f->extra, NULL), 0);
	rc = testutil_run(argv, 60000, &out);
	if (rc != 0 || !output_has_pid(out, f->extra.pid))
		fail_msg("dbtap list: exit %d, want 0 and a line with PID %d:\n%s", rc,
			 (int)f->extra.pid, out ?: "");
	free(out);

	start_agent(f, 0, INTERVAL_S, f->extra.pid);
	c = connect_client(f, &f->extra, false);
	run_times(c, "SELECT 1 AS unshared", UNSHARED_QUERIES);
	lines = stop_agent(f, 0);
	snprintf(pid, sizeof(pid), "%d", (int)f->extra.pid);
	expect_u64(agent_sum_series(
			   lines, "count",
			   MATCH("db.query.text", "SELECT ? AS unshared", "process.pid", pid)),
		   UNSHARED_QUERIES, "count in the unshared cluster");
}

/* A client over IPv6 loopback: counted exactly, its samples carry the IPv6 peer. */
static void test_ipv6(void **state)
{
	struct fixture *f = *state;
	const cJSON *line;
	unsigned int samples = 0;
	char conninfo[256];
	cJSON *lines;
	PGconn *c;
	int i;

	start_agent(f, 0, INTERVAL_S, f->srv.pid);
	snprintf(conninfo, sizeof(conninfo), "host=::1 port=%d dbname=postgres user=postgres",
		 f->srv.port);
	c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connecting over ::1: %s", PQerrorMessage(c));
	for (i = 0; i < 10; i++) {
		char sql[48];
		PGresult *res;

		snprintf(sql, sizeof(sql), "SELECT %d AS over_ipv6", i);
		res = PQexec(c, sql);
		assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
		PQclear(res);
	}
	PQfinish(c);
	lines = stop_agent(f, 0);
	expect_u64(
		agent_sum_series(lines, "count", MATCH("db.query.text", "SELECT ? AS over_ipv6")),
		10, "count of SELECT ? AS over_ipv6");
	cJSON_ArrayForEach (line, lines) {
		const char *kind = testutil_json_string(line, "kind") ?: "";
		const char *text = testutil_json_string(line, "db.query.text") ?: "";

		if (strcmp(kind, "dbtap.sample") || strcmp(text, "SELECT ? AS over_ipv6"))
			continue;
		assert_string_at(line, "network.transport", "tcp");
		assert_string_at(line, "network.peer.address", "::1");
		samples++;
	}
	assert_true(samples >= 1); /* at least the slowest of the interval */
}

/* ---- 11. --bpf-stats: the kernel counts the programs' runs and time ---- */

#define BPF_STATS_QUERIES 200

/*
 * With --bpf-stats the agent holds the kernel's run-time statistics on: every interval says
 * so, and the program that sees the server read a query ran at least once per query and took
 * time. (Without the flag nothing can be asserted about the statistics: another tool on the
 * host may turn them on; check_bpf_programs() checks that the agent reports them consistently.)
 */
static void test_bpf_stats(void **state)
{
	struct fixture *f = *state;
	const char *prog_name = recv_program(f->capture);
	uint64_t runs = 0, ns = 0;
	unsigned int selfs = 0;
	const cJSON *line, *prog;
	char *err;
	cJSON *lines;
	PGconn *c;

	start_agent_with(f, 0, INTERVAL_S, f->srv.pid, (const char *const[]){"--bpf-stats", NULL});
	c = connect_client(f, &f->srv, false);
	run_times(c, "SELECT 1 AS bpf_stats", BPF_STATS_QUERIES);
	testutil_sleep_ms(1200); /* at least one whole interval besides the final one */
	lines = stop_agent(f, 0);

	cJSON_ArrayForEach (line, lines) {
		if (strcmp(testutil_json_string(line, "kind") ?: "", "dbtap.self"))
			continue;
		selfs++;
		if (!cJSON_IsTrue(get(line, "bpf_stats")))
			fail_msg("dbtap.self line %u: bpf_stats is not true with --bpf-stats",
				 selfs);
		prog = find_program(line, prog_name);
		assert_non_null(prog);
		runs += int_at(prog, "run_cnt");
		ns += int_at(prog, "run_time_ns");
	}
	assert_true(selfs >= 2);
	if (runs < BPF_STATS_QUERIES || ns == 0)
		fail_msg("%s: %llu runs in %llu ns, want >= %d runs and > 0 ns", prog_name,
			 (unsigned long long)runs, (unsigned long long)ns, BPF_STATS_QUERIES);
	expect_u64(
		agent_sum_series(lines, "count", MATCH("db.query.text", "SELECT ? AS bpf_stats")),
		BPF_STATS_QUERIES, "count of SELECT ? AS bpf_stats");
	assert_true(check_interval_structure(lines, f->capture) >= 2);
	err = agent_read_stderr(&f->agents[0]);
	assert_non_null(err);
	if (strstr(err, "bpf-stats"))
		fail_msg("the agent warned about bpf-stats:\n%s", err);
	free(err);
}

/* ---- main ---- */

#define CAPTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		CAPTURE_TEST(test_select_literals),	CAPTURE_TEST(test_pgbench_modes),
		CAPTURE_TEST(test_latency_percentiles), CAPTURE_TEST(test_errors),
		CAPTURE_TEST(test_connections),		CAPTURE_TEST(test_garbage),
		CAPTURE_TEST(test_restart_under_load),	CAPTURE_TEST(test_stop_from_shell_job),
		CAPTURE_TEST(test_unshared_server),	CAPTURE_TEST(test_ipv6),
		CAPTURE_TEST(test_bpf_stats),
	};
	const char *only = getenv("DBTAP_TEST_CAPTURE");
	int failed = 0;

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	if (!only || !strcmp(only, "socket"))
		failed += cmocka_run_group_tests_name("pg_capture_socket", tests,
						      group_setup_socket, group_teardown);
	if (!only || !strcmp(only, "syscall"))
		failed += cmocka_run_group_tests_name("pg_capture_syscall", tests,
						      group_setup_syscall, group_teardown);
	return failed ? 1 : 0;
}
