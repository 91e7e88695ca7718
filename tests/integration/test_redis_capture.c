// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_redis_capture.c - the agent ($DBTAP_BIN, default build/dbtap) against a real
 * redis-server started here on loopback (tests/lib/redisserver): per-command counts from its
 * JSON output equal the server's INFO commandstats deltas exactly, for redis-benchmark
 * unpipelined and with -P 16, a MULTI/EXEC batch, an error reply, SELECT 3 then SET, and a
 * BLPOP that waits 1 s, flagged blocking; long (writev) replies. Needs root. Each test prints its
 * counted-versus-server figures ("figure:" lines). Every test runs on both capture paths
 * (--capture socket, then syscall; DBTAP_TEST_CAPTURE=socket|syscall for one).
 *
 * Run: build/tests/test_redis_capture ['benchmark*']   (optional cmocka name filter)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/agent.h"
#include "lib/redisserver.h"
#include "lib/testutil.h"

#define INTERVAL_S    1.0
#define BENCH_N	      5000 /* requests per redis-benchmark test */
#define BENCH_CLIENTS 4
#define BLPOP_WAIT_S  1

static const char *const bench_commands[] = {"SET", "GET", "INCR", "LPUSH"};

struct fixture {
	struct redisserver srv;
	struct agent agent;
	redisContext *admin; /* INFO commandstats */
	cJSON *lines;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (redisserver_start(&f->srv, NULL)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	agent_stop_all();
	if (f->admin)
		redisFree(f->admin);
	cJSON_Delete(f->lines);
	redisserver_stop(&f->srv);
	free(f);
	return 0;
}

/* The capture path under test (--capture), set by the group setup. */
static const char *capture = "socket";

static int group_setup_socket(void **state)
{
	(void)state;
	capture = "socket";
	return 0;
}

static int group_setup_syscall(void **state)
{
	(void)state;
	capture = "syscall";
	return 0;
}

static void start_agent(struct fixture *f)
{
	char pid[16];
	const char *args[] = {"--capture", capture, "--pid", pid, NULL};

	snprintf(pid, sizeof(pid), "%d", (int)f->srv.pid);
	assert_int_equal(agent_start(&f->agent, INTERVAL_S, args), 0);
	/* connected after the agent: its INFO calls are seen too, under "INFO" */
	f->admin = redisserver_connect(&f->srv, false);
}

static cJSON *stop_agent(struct fixture *f)
{
	assert_int_equal(agent_stop(&f->agent), 0);
	cJSON_Delete(f->lines);
	f->lines = agent_read_lines(&f->agent);
	assert_non_null(f->lines);
	return f->lines;
}

static uint64_t counted(struct fixture *f, const char *operation)
{
	const char *const match[] = {"db.system.name", "redis", "db.operation.name", operation,
				     NULL};

	return agent_sum_series(f->lines, "count", match);
}

static void lower(char *dst, const char *src, size_t size)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < size; i++)
		dst[i] = src[i] >= 'A' && src[i] <= 'Z' ? src[i] + ('a' - 'A') : src[i];
	dst[i] = 0;
}

/* Counted by the agent == delta of INFO commandstats, printed as a figure line. */
static void expect_calls(struct fixture *f, const char *test, const char *operation,
			 uint64_t before)
{
	char name[64];
	uint64_t server, agent;

	lower(name, operation, sizeof(name));
	server = redisserver_calls(f->admin, name) - before;
	agent = counted(f, operation);
	printf("figure: [%s] %s %s counted %llu, INFO commandstats delta %llu\n", capture, test,
	       operation, (unsigned long long)agent, (unsigned long long)server);
	if (agent != server)
		fail_msg("%s %s: counted %llu, server %llu", test, operation,
			 (unsigned long long)agent, (unsigned long long)server);
}

/* The series object with @summary (the first one), or fail. */
static const cJSON *series_with_summary(struct fixture *f, const char *summary)
{
	const cJSON *line;

	cJSON_ArrayForEach (line, f->lines) {
		const char *kind = testutil_json_string(line, "kind");
		const char *s = testutil_json_string(line, "db.query.summary");

		if (kind && !strcmp(kind, "dbtap.series") && s && !strcmp(s, summary))
			return line;
	}
	fail_msg("no series with db.query.summary \"%s\"", summary);
	return NULL;
}

/* ---- redis-benchmark ---- */

static void run_benchmark(void **state, const char *test, const char *pipeline)
{
	struct fixture *f = *state;
	uint64_t before[4];
	char args[128], *out = NULL;
	unsigned int i;
	int rc;

	start_agent(f);
	for (i = 0; i < 4; i++) {
		char name[16];

		lower(name, bench_commands[i], sizeof(name));
		before[i] = redisserver_calls(f->admin, name);
	}
	snprintf(args, sizeof(args), "-t set,get,incr,lpush -n %d -c %d -q %s", BENCH_N,
		 BENCH_CLIENTS, pipeline);
	rc = redisserver_benchmark(&f->srv, args, &out);
	if (rc != 0)
		fail_msg("redis-benchmark %s: exit %d\n%s", args, rc, out ? out : "");
	free(out);
	testutil_sleep_ms(200);
	stop_agent(f);
	for (i = 0; i < 4; i++)
		expect_calls(f, test, bench_commands[i], before[i]);
	/* every command was counted: nothing lost to a full map or framing */
	assert_int_equal(agent_sum_self(f->lines, "counters.desync"), 0);
	assert_int_equal(agent_sum_self(f->lines, "counters.drop.agg_full"), 0);
	printf("figure: [%s] %s drop.pipeline %llu\n", capture, test,
	       (unsigned long long)agent_sum_self(f->lines, "counters.drop.pipeline"));
}

static void benchmark_unpipelined(void **state)
{
	run_benchmark(state, "benchmark_unpipelined", "");
}

static void benchmark_pipelined_16(void **state)
{
	run_benchmark(state, "benchmark_pipelined_16", "-P 16");
	/* 16 in flight per connection fit the op queue: every command timed */
	assert_int_equal(
		agent_sum_self(((struct fixture *)*state)->lines, "counters.drop.pipeline"), 0);
}

/* Long replies (600-element LRANGEs, pipelined): Redis writes them with writev, whose bytes
 * past the first 8 KiB the decoder cannot read; counts must stay exact all the same. */
static void long_replies(void **state)
{
	static const char *const ops[] = {"LPUSH", "LRANGE"};
	struct fixture *f = *state;
	uint64_t before[2];
	char *out = NULL;
	unsigned int i;
	int rc;

	start_agent(f);
	before[0] = redisserver_calls(f->admin, "lpush");
	before[1] = redisserver_calls(f->admin, "lrange");
	rc = redisserver_benchmark(&f->srv, "-t lpush,lrange_600 -n 1000 -c 2 -P 8 -q", &out);
	if (rc != 0)
		fail_msg("redis-benchmark: exit %d\n%s", rc, out ? out : "");
	free(out);
	testutil_sleep_ms(200);
	stop_agent(f);
	for (i = 0; i < 2; i++)
		expect_calls(f, "long_replies", ops[i], before[i]);
	printf("figure: [%s] long_replies desync %llu drop.read %llu\n", capture,
	       (unsigned long long)agent_sum_self(f->lines, "counters.desync"),
	       (unsigned long long)agent_sum_self(f->lines, "counters.drop.read"));
}

/* ---- MULTI/EXEC ---- */

static void multi_exec(void **state)
{
	static const char *const ops[] = {"MULTI", "EXEC", "SET", "INCR"};
	struct fixture *f = *state;
	redisContext *c;
	redisReply *r;
	uint64_t before[4];
	const cJSON *exec;
	unsigned int i;

	start_agent(f);
	for (i = 0; i < 4; i++) {
		char name[16];

		lower(name, ops[i], sizeof(name));
		before[i] = redisserver_calls(f->admin, name);
	}
	c = redisserver_connect(&f->srv, true);
	freeReplyObject(redisserver_command(c, "MULTI"));
	freeReplyObject(redisserver_command(c, "SET batch:1 v"));
	freeReplyObject(redisserver_command(c, "INCR batch:counter"));
	freeReplyObject(redisserver_command(c, "SET batch:2 w"));
	r = redisserver_command(c, "EXEC");
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 3);
	freeReplyObject(r);
	redisFree(c);
	testutil_sleep_ms(200);
	stop_agent(f);
	for (i = 0; i < 4; i++)
		expect_calls(f, "multi_exec", ops[i], before[i]);
	exec = series_with_summary(f, "EXEC");
	assert_true(cJSON_IsTrue(testutil_json_get(exec, "dbtap.batch")));
	/* the batch size: the commands EXEC ran */
	assert_int_equal(agent_sum_series(f->lines, "rows",
					  (const char *const[]){"db.query.summary", "EXEC", NULL}),
			 3);
	assert_int_equal(
		agent_sum_series(f->lines, "count",
				 (const char *const[]){"db.query.summary", "SET batch:?", NULL}),
		2);
}

/* ---- an error reply ---- */

static void error_reply(void **state)
{
	struct fixture *f = *state;
	redisContext *c;
	redisReply *r;
	uint64_t before;

	start_agent(f);
	before = redisserver_calls(f->admin, "lpush");
	c = redisserver_connect(&f->srv, false);
	freeReplyObject(redisserver_command(c, "SET errkey notalist"));
	r = redisserver_command(c, "LPUSH errkey x");
	assert_int_equal(r->type, REDIS_REPLY_ERROR);
	assert_memory_equal(r->str, "WRONGTYPE", 9);
	freeReplyObject(r);
	redisFree(c);
	testutil_sleep_ms(200);
	stop_agent(f);
	expect_calls(f, "error_reply", "LPUSH", before);
	assert_int_equal(
		agent_sum_series(f->lines, "error_codes.WRONGTYPE",
				 (const char *const[]){"db.query.summary", "LPUSH errkey", NULL}),
		1);
	assert_int_equal(
		agent_sum_series(f->lines, "errors",
				 (const char *const[]){"db.query.summary", "LPUSH errkey", NULL}),
		1);
	printf("figure: [%s] error_reply LPUSH errkey errors 1, error_codes.WRONGTYPE 1\n",
	       capture);
}

/* ---- SELECT ---- */

static void select_namespace(void **state)
{
	struct fixture *f = *state;
	redisContext *c;

	start_agent(f);
	c = redisserver_connect(&f->srv, false);
	freeReplyObject(redisserver_command(c, "SET sel:1 in-db-0"));
	freeReplyObject(redisserver_command(c, "SELECT 3"));
	freeReplyObject(redisserver_command(c, "SET sel:2 in-db-3"));
	freeReplyObject(redisserver_command(c, "SET sel:3 in-db-3"));
	redisFree(c);
	testutil_sleep_ms(200);
	stop_agent(f);
	assert_int_equal(agent_sum_series(f->lines, "count",
					  (const char *const[]){"db.query.summary", "SET sel:?",
								"db.namespace", "3", NULL}),
			 2);
	assert_int_equal(agent_sum_series(f->lines, "count",
					  (const char *const[]){"db.query.summary", "SET sel:?",
								"db.namespace", "0", NULL}),
			 1);
	printf("figure: [%s] select_namespace SET in db 3: 2, in db 0: 1\n", capture);
}

/* ---- BLPOP ---- */

static void blpop_blocking(void **state)
{
	struct fixture *f = *state;
	const cJSON *s;
	redisContext *c;
	redisReply *r;
	uint64_t t0, rtt_ms, before;
	double sum;

	start_agent(f);
	before = redisserver_calls(f->admin, "blpop");
	c = redisserver_connect(&f->srv, false);
	t0 = testutil_now_ms();
	r = redisserver_command(c, "BLPOP emptylist %d", BLPOP_WAIT_S);
	assert_true(r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_ARRAY && !r->elements));
	freeReplyObject(r);
	rtt_ms = testutil_now_ms() - t0;
	assert_true(rtt_ms >= BLPOP_WAIT_S * 1000 - 50);
	redisFree(c);
	testutil_sleep_ms(200);
	stop_agent(f);
	expect_calls(f, "blpop_blocking", "BLPOP", before);
	s = series_with_summary(f, "BLPOP emptylist");
	assert_true(cJSON_IsTrue(testutil_json_get(s, "dbtap.blocking")));
	sum = cJSON_GetNumberValue(testutil_json_get(s, "duration_s.sum"));
	printf("figure: [%s] blpop_blocking duration_s.sum %.3f, dbtap.blocking true\n", capture,
	       sum);
	/* at most the client's round trip, plus the send hook's lag (it runs after the reply
	 * left; the woken client may run first): judged against this run, not a quiet machine */
	if (sum < BLPOP_WAIT_S * 0.9 || sum > rtt_ms / 1000.0 + 0.05)
		fail_msg("BLPOP duration_s.sum %.3f, want in [%.3f, %.3f] (round trip %.3f s)", sum,
			 BLPOP_WAIT_S * 0.9, rtt_ms / 1000.0 + 0.05, rtt_ms / 1000.0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(benchmark_unpipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(benchmark_pipelined_16, setup, teardown),
		cmocka_unit_test_setup_teardown(long_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(multi_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(error_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(select_namespace, setup, teardown),
		cmocka_unit_test_setup_teardown(blpop_blocking, setup, teardown),
	};
	const char *v = redisserver_version();
	const char *only = getenv("DBTAP_TEST_CAPTURE");
	int failed = 0;

	printf("server: %s\n", v ? v : "redis-server --version failed");
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	if (!only || !strcmp(only, "socket"))
		failed += cmocka_run_group_tests_name("redis_capture_socket", tests,
						      group_setup_socket, NULL);
	if (!only || !strcmp(only, "syscall"))
		failed += cmocka_run_group_tests_name("redis_capture_syscall", tests,
						      group_setup_syscall, NULL);
	return failed ? 1 : 0;
}
