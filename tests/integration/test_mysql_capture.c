/* MariaDB capture end to end: a real mariadbd (tests/lib/mariadbserver), real clients (sysbench,
 * libmariadb) and the agent under test (build/dbtap, or $DBTAP_BIN), asserting that dbtap's
 * counts equal the server's own: performance_schema statement digests and SHOW GLOBAL STATUS
 * Com_* deltas. Needs root. An argument is a cmocka test-name filter ("*prepared*");
 * $DBTAP_TEST_CAPTURE=socket|syscall picks the agent's capture path (default: its own).
 *
 * Each test prints a "closing note" line: what dbtap counted next to the server's counter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/agent.h"
#include "lib/mariadbserver.h"
#include "lib/testutil.h"

#define MATCH(...) ((const char *const[]){__VA_ARGS__, NULL})

#define LONG_INTERVAL_S	  60.0 /* everything lands in the final interval written at stop */
#define TABLE_SIZE	  1000
#define SYSBENCH_EVENTS	  200
#define SYSBENCH_THREADS  2 /* prepared run: concurrent transactions, deadlocks retried */
#define FAILING_QUERIES	  5
#define MIDSTREAM_QUERIES 7
#define MIDSTREAM_EXECS	  3
#define ER_NO_SUCH_TABLE  "1146"
#define MAX_DIGESTS	  64

static const char *const operations[] = {"SELECT", "INSERT", "UPDATE", "DELETE",
					 "BEGIN",  "COMMIT", NULL};

struct fixture {
	struct mariadbserver srv;
	struct agent agent;
	MYSQL *root;
	MYSQL *client;
	cJSON *lines;
};

/* ---- helpers ---- */

static void expect_u64(uint64_t got, uint64_t want, const char *what)
{
	if (got != want)
		fail_msg("%s: got %llu, want %llu", what, (unsigned long long)got,
			 (unsigned long long)want);
}

/* The agent on the server, with --capture $DBTAP_TEST_CAPTURE (socket, syscall) when set. */
static void start_agent(struct fixture *f)
{
	const char *capture = getenv("DBTAP_TEST_CAPTURE");
	char pid[16];
	const char *args[] = {"--pid", pid, capture ? "--capture" : NULL, capture, NULL};

	snprintf(pid, sizeof(pid), "%d", (int)f->srv.pid);
	assert_int_equal(agent_start(&f->agent, LONG_INTERVAL_S, args), 0);
}

static cJSON *stop_agent(struct fixture *f)
{
	assert_int_equal(agent_stop(&f->agent), 0);
	cJSON_Delete(f->lines);
	f->lines = agent_read_lines(&f->agent);
	assert_non_null(f->lines);
	return f->lines;
}

/* SHOW GLOBAL STATUS counter @name ("Com_select"): not itself counted in any Com_ but
 * Com_show_status. */
static uint64_t global_status(struct fixture *f, const char *name)
{
	char sql[128];
	MYSQL_RES *res;
	MYSQL_ROW row;
	uint64_t v = 0;

	snprintf(sql, sizeof(sql), "SHOW GLOBAL STATUS LIKE '%s'", name);
	if (mysql_query(f->root, sql))
		fail_msg("%s: %s", sql, mysql_error(f->root));
	res = mysql_store_result(f->root);
	assert_non_null(res);
	row = mysql_fetch_row(res);
	if (row && row[1])
		v = strtoull(row[1], NULL, 10);
	mysql_free_result(res);
	return v;
}

/* "Com_select" for "SELECT". */
static void com_name(const char *op, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "Com_%s", op);
	for (i = 4; buf[i]; i++)
		buf[i] = (char)(buf[i] >= 'A' && buf[i] <= 'Z' ? buf[i] + 'a' - 'A' : buf[i]);
}

static void com_snapshot(struct fixture *f, uint64_t *ret)
{
	char name[32];
	int i;

	for (i = 0; operations[i]; i++) {
		com_name(operations[i], name, sizeof(name));
		ret[i] = global_status(f, name);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Series counts of @user's statements, sorted; their number. */
static unsigned int dbtap_statement_counts(cJSON *lines, const char *user, uint64_t *ret,
					   unsigned int max)
{
	const cJSON *line;
	unsigned int n = 0;
	int64_t count;

	/* one series per statement: the test's interval is longer than the run */
	cJSON_ArrayForEach (line, lines) {
		const char *kind = testutil_json_string(line, "kind");
		const char *u = testutil_json_string(line, "db.user");

		if (!kind || strcmp(kind, "dbtap.series") || !u || strcmp(u, user))
			continue;
		assert_true(testutil_json_int(line, "count", &count));
		assert_true(n < max);
		ret[n++] = (uint64_t)count;
	}
	qsort(ret, n, sizeof(*ret), cmp_u64);
	return n;
}

/* performance_schema digest counts of schema @schema, sorted; their number. */
static unsigned int server_digest_counts(struct fixture *f, const char *schema, uint64_t *ret,
					 unsigned int max, uint64_t *ret_rows)
{
	char sql[256];
	MYSQL_RES *res;
	MYSQL_ROW row;
	unsigned int n = 0;

	snprintf(sql, sizeof(sql),
		 "SELECT COUNT_STAR, SUM_ROWS_SENT + SUM_ROWS_AFFECTED FROM "
		 "performance_schema.events_statements_summary_by_digest WHERE SCHEMA_NAME = '%s'",
		 schema);
	if (mysql_query(f->root, sql))
		fail_msg("%s: %s", sql, mysql_error(f->root));
	res = mysql_store_result(f->root);
	assert_non_null(res);
	*ret_rows = 0;
	while ((row = mysql_fetch_row(res))) {
		assert_true(n < max);
		ret[n++] = strtoull(row[0], NULL, 10);
		*ret_rows += strtoull(row[1], NULL, 10);
	}
	mysql_free_result(res);
	qsort(ret, n, sizeof(*ret), cmp_u64);
	return n;
}

/* Run sysbench; returns its "ignored errors" (deadlocks it retried: the server's ERR 1213). */
static uint64_t sysbench(struct fixture *f, const char *args)
{
	char *out = NULL, *p;
	int rc = mariadbserver_sysbench(&f->srv, args, &out);
	uint64_t ignored = 0;

	if (rc != 0) {
		fprintf(stderr, "sysbench %s: exit %d\n%s\n", args, rc, out ? out : "");
		free(out);
		fail_msg("sysbench failed");
	}
	p = out ? strstr(out, "ignored errors:") : NULL;
	assert_non_null(p);
	ignored = strtoull(p + strlen("ignored errors:"), NULL, 10);
	free(out);
	return ignored;
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	if (mariadbserver_start(&f->srv, NULL)) {
		fprintf(stderr, "cannot start mariadbd\n");
		return -1;
	}
	{
		char *out = NULL;
		char args[128];

		snprintf(args, sizeof(args), "oltp_read_write --tables=1 --table-size=%d prepare",
			 TABLE_SIZE);
		if (mariadbserver_sysbench(&f->srv, args, &out)) {
			fprintf(stderr, "sysbench prepare failed:\n%s\n", out ? out : "");
			free(out);
			return -1;
		}
		free(out);
	}
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	if (f) {
		mariadbserver_stop(&f->srv);
		free(f);
	}
	return 0;
}

static int test_setup(void **state)
{
	struct fixture *f = *state;

	f->root = mariadbserver_connect_root(&f->srv);
	return 0;
}

static int test_teardown(void **state)
{
	struct fixture *f = *state;

	agent_stop_all();
	if (f->client)
		mysql_close(f->client);
	f->client = NULL;
	if (f->root)
		mysql_close(f->root);
	f->root = NULL;
	cJSON_Delete(f->lines);
	f->lines = NULL;
	return 0;
}

/* ---- tests ---- */

/*
 * sysbench oltp_read_write with @threads, @ps_mode "disable" (COM_QUERY) or "auto" (server-side
 * prepared statements): per operation dbtap's counts equal the Com_* deltas; with text queries,
 * the per-statement counts (and rows) equal the performance_schema digests. The digest check
 * runs single-threaded: when sysbench retries a deadlocked transaction, MariaDB 10.11's digest
 * table was seen to miss statements of it that Com_* (and dbtap) count, e.g. point selects
 * dbtap 2020 = Com_select's share, digest 2009.
 */
static void run_oltp(struct fixture *f, const char *ps_mode, int threads)
{
	uint64_t before[8], after[8], got, want, dig[MAX_DIGESTS], ser[MAX_DIGESTS], rows = 0;
	uint64_t exec_before = global_status(f, "Com_stmt_execute"), total = 0, retried;
	unsigned int n_dig, n_ser, i;
	char args[256], name[32];
	cJSON *lines;

	mariadbserver_exec(f->root,
			   "TRUNCATE performance_schema.events_statements_summary_by_digest");
	com_snapshot(f, before);
	start_agent(f);
	snprintf(args, sizeof(args),
		 "oltp_read_write --tables=1 --table-size=%d --events=%d --time=0 --threads=%d "
		 "--rand-seed=1 --db-ps-mode=%s run",
		 TABLE_SIZE, SYSBENCH_EVENTS, threads, ps_mode);
	retried = sysbench(f, args);
	lines = stop_agent(f);
	com_snapshot(f, after);
	for (i = 0; operations[i]; i++) {
		com_name(operations[i], name, sizeof(name));
		want = after[i] - before[i];
		got = agent_sum_series(
			lines, "count",
			MATCH("db.user", MARIADBSERVER_USER, "db.operation.name", operations[i]));
		printf("closing note: ps-mode=%s %-6s dbtap %llu, %s delta %llu\n", ps_mode,
		       operations[i], (unsigned long long)got, name, (unsigned long long)want);
		expect_u64(got, want, operations[i]);
		total += got;
	}
	assert_true(total > 0);
	expect_u64(agent_sum_series(lines, "count",
				    MATCH("db.user", MARIADBSERVER_USER, "db.system.name",
					  "mariadb", "db.namespace", MARIADBSERVER_DB)),
		   total, "all sysbench operations are in namespace sbtest, system mariadb");
	/* two threads may deadlock: sysbench retries those transactions ("ignored errors") */
	printf("closing note: ps-mode=%s errors dbtap %llu (1213: %llu), sysbench ignored errors "
	       "%llu\n",
	       ps_mode, (unsigned long long)agent_sum_series(lines, "errors", NULL),
	       (unsigned long long)agent_sum_series(lines, "error_codes.1213", NULL),
	       (unsigned long long)retried);
	expect_u64(agent_sum_series(lines, "errors", NULL), retried, "errors");
	if (!strcmp(ps_mode, "auto")) {
		want = global_status(f, "Com_stmt_execute") - exec_before;
		printf("closing note: ps-mode=auto EXECUTE dbtap %llu, Com_stmt_execute delta "
		       "%llu\n",
		       (unsigned long long)total, (unsigned long long)want);
		expect_u64(total, want, "executions");
		return;
	}
	n_dig = server_digest_counts(f, MARIADBSERVER_DB, dig, MAX_DIGESTS, &rows);
	n_ser = dbtap_statement_counts(lines, MARIADBSERVER_USER, ser, MAX_DIGESTS);
	printf("closing note: ps-mode=disable statements dbtap %u, performance_schema digests %u\n",
	       n_ser, n_dig);
	for (i = 0; i < n_dig || i < n_ser; i++)
		if (i >= n_dig || i >= n_ser || ser[i] != dig[i])
			printf("statement %u (sorted by count): dbtap %llu, digest %llu\n", i,
			       (unsigned long long)(i < n_ser ? ser[i] : 0),
			       (unsigned long long)(i < n_dig ? dig[i] : 0));
	expect_u64(n_ser, n_dig, "statements");
	for (i = 0; i < n_dig; i++)
		expect_u64(ser[i], dig[i], "a statement's count (sorted)");
	got = agent_sum_series(lines, "rows", MATCH("db.user", MARIADBSERVER_USER));
	printf("closing note: ps-mode=disable rows dbtap %llu, digests' rows sent + affected "
	       "%llu\n",
	       (unsigned long long)got, (unsigned long long)rows);
	expect_u64(got, rows, "rows");
}

static void test_sysbench_text_protocol(void **state)
{
	run_oltp(*state, "disable", 1);
}

static void test_sysbench_prepared(void **state)
{
	run_oltp(*state, "auto", SYSBENCH_THREADS);
}

/* ERR 1146 (no such table): counted as failed with its error number, as the server's digest
 * counts it. */
static void test_error_1146(void **state)
{
	struct fixture *f = *state;
	cJSON *lines;
	uint64_t server;
	int i;

	mariadbserver_exec(f->root,
			   "TRUNCATE performance_schema.events_statements_summary_by_digest");
	start_agent(f);
	f->client = mariadbserver_connect(&f->srv, NULL, false);
	for (i = 0; i < FAILING_QUERIES; i++) {
		assert_int_not_equal(mysql_query(f->client, "SELECT * FROM no_such_table"), 0);
		assert_int_equal(mysql_errno(f->client), 1146);
	}
	mariadbserver_exec(f->client, "SELECT 1");
	lines = stop_agent(f);
	server = mariadbserver_query_u64(
		f->root,
		"SELECT SUM_ERRORS FROM performance_schema.events_statements_summary_by_digest"
		" WHERE DIGEST_TEXT LIKE '%no_such_table%'");
	printf("closing note: ERR 1146 dbtap errors %llu (error_codes.1146 %llu), digest "
	       "SUM_ERRORS "
	       "%llu\n",
	       (unsigned long long)agent_sum_series(lines, "errors",
						    MATCH("db.collection.name", "no_such_table")),
	       (unsigned long long)agent_sum_series(lines, "error_codes." ER_NO_SUCH_TABLE, NULL),
	       (unsigned long long)server);
	expect_u64(server, FAILING_QUERIES, "server's SUM_ERRORS");
	expect_u64(agent_sum_series(lines, "count", MATCH("db.collection.name", "no_such_table")),
		   FAILING_QUERIES, "count");
	expect_u64(agent_sum_series(lines, "errors", MATCH("db.collection.name", "no_such_table")),
		   FAILING_QUERIES, "errors");
	expect_u64(agent_sum_series(
			   lines, "error_codes." ER_NO_SUCH_TABLE,
			   MATCH("db.user", MARIADBSERVER_USER, "db.namespace", MARIADBSERVER_DB)),
		   FAILING_QUERIES, "error_codes.1146");
	expect_u64(agent_sum_series(lines, "errors", NULL), FAILING_QUERIES, "all errors");
	expect_u64(agent_sum_series(lines, "count", MATCH("db.query.text", "SELECT ?")), 1,
		   "the good query");
}

/* A connection opened (and a statement prepared) before the agent started: its queries are
 * counted, the statement's executions marked as of unknown text. */
static void test_connection_opened_before_agent(void **state)
{
	struct fixture *f = *state;
	MYSQL_STMT *stmt;
	MYSQL_BIND bind;
	uint64_t before, want;
	char sql[128], summary[32];
	int i, id = 5;
	cJSON *lines;

	f->client = mariadbserver_connect(&f->srv, NULL, false);
	stmt = mysql_stmt_init(f->client);
	assert_non_null(stmt);
	snprintf(sql, sizeof(sql), "SELECT k FROM sbtest1 WHERE id = ?");
	assert_int_equal(mysql_stmt_prepare(stmt, sql, strlen(sql)), 0);
	memset(&bind, 0, sizeof(bind));
	bind.buffer_type = MYSQL_TYPE_LONG;
	bind.buffer = &id;
	assert_int_equal(mysql_stmt_bind_param(stmt, &bind), 0);
	before = global_status(f, "Com_select");
	start_agent(f);
	for (i = 0; i < MIDSTREAM_QUERIES; i++) {
		snprintf(sql, sizeof(sql), "SELECT k FROM sbtest1 WHERE id = %d", i + 1);
		mariadbserver_exec(f->client, sql);
	}
	for (i = 0; i < MIDSTREAM_EXECS; i++) {
		assert_int_equal(mysql_stmt_execute(stmt), 0);
		assert_int_equal(mysql_stmt_store_result(stmt), 0);
		mysql_stmt_free_result(stmt);
	}
	lines = stop_agent(f);
	want = global_status(f, "Com_select") - before;
	snprintf(summary, sizeof(summary), "EXECUTE %lu", (unsigned long)stmt->stmt_id);
	printf("closing note: opened before dbtap: dbtap SELECT %llu + %s %llu, Com_select delta "
	       "%llu\n",
	       (unsigned long long)agent_sum_series(
		       lines, "count",
		       MATCH("db.query.text", "SELECT k FROM sbtest1 WHERE id = ?")),
	       summary,
	       (unsigned long long)agent_sum_series(lines, "count",
						    MATCH("db.query.summary", summary)),
	       (unsigned long long)want);
	expect_u64(want, MIDSTREAM_QUERIES + MIDSTREAM_EXECS, "server's Com_select");
	expect_u64(agent_sum_series(lines, "count",
				    MATCH("db.query.text", "SELECT k FROM sbtest1 WHERE id = ?",
					  "db.system.name", "mariadb")),
		   MIDSTREAM_QUERIES, "queries on the connection opened before");
	expect_u64(agent_sum_series(lines, "rows",
				    MATCH("db.query.text", "SELECT k FROM sbtest1 WHERE id = ?")),
		   MIDSTREAM_QUERIES, "rows");
	expect_u64(agent_sum_series(lines, "count", MATCH("db.query.summary", summary)),
		   MIDSTREAM_EXECS, "executions of the statement prepared before");
	expect_u64(agent_count_series(lines, MATCH("db.query.summary", summary, "db.operation.name",
						   "EXECUTE")),
		   1, "one series for the unknown statement");
	mysql_stmt_close(stmt);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sysbench_text_protocol, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_sysbench_prepared, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_error_1146, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_connection_opened_before_agent, test_setup,
						test_teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("mysql_capture", tests, group_setup, group_teardown);
}
