/* MongoDB capture end to end: the real mongo-c-driver (libmongoc) as the client, against the
 * wire-protocol stand-in of tests/mongo-stub (no MongoDB server is packaged here: see
 * docs/databases/mongodb.md), the agent built from this tree. Every count dbtap reports must
 * equal both what the client sent (computed from the workload) and what the stand-in logged
 * handling it, exactly: find/aggregate with getMores joining their series, inserts, updates
 * (nModified as rows), a delete, an error reply (its code in error_codes), the legacy OP_QUERY
 * handshake, and zlib-compressed messages (counted, command unknown).
 *
 * Run (root, from the repo root): build/tests/test_mongo_capture; DBTAP_BIN selects the agent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>

#include "lib/agent.h"
#include "lib/mongostub.h"
#include "lib/testutil.h"

#define MATCH(...) ((const char *const[]){__VA_ARGS__, NULL})

#define LONG_INTERVAL_S 60.0 /* everything lands in the final interval written at stop */
#define SETTLE_MS	300  /* after the last reply, before stopping the agent */
#define DB		"shop"
#define COLL		"users"
#define BULK_DOCS	12 /* insert_many: _id i, status "B" when i % 3 == 0 else "A", age 20+3i */
#define SINGLE_DOCS	5  /* insert_one each: status "A", age 60 + i */
#define FIND_BATCH	2
#define AGG_BATCH	3
#define UPDATE_ONES	3 /* update_one {_id: i} $inc for i = 1..3 */
#define PINGS		4
#define ZLIB_PINGS	7
#define CODE_NOT_FOUND	"59" /* CommandNotFound */

struct fixture {
	struct mongostub stub;
	struct agent agent;
	cJSON *lines;
};

static void expect_u64(uint64_t got, uint64_t want, const char *what)
{
	if (got != want)
		fail_msg("%s: got %llu, want %llu", what, (unsigned long long)got,
			 (unsigned long long)want);
	printf("  %-44s dbtap %llu = expected %llu\n", what, (unsigned long long)got,
	       (unsigned long long)want);
}

/* getMores a cursor of @n documents needs after a first batch of @batch (@batch later). */
static unsigned int get_mores(unsigned int n, unsigned int batch)
{
	return n > batch ? (n - batch + batch - 1) / batch : 0;
}

static uint64_t series_count(cJSON *lines, const char *field, const char *op)
{
	return agent_sum_series(lines, field,
				MATCH("db.system.name", "mongodb", "db.operation.name", op));
}

static int stub_count(const struct fixture *f, const char *cmd, const char *wire)
{
	int n = mongostub_count(&f->stub, cmd, wire);

	assert_true(n >= 0);
	return n;
}

static mongoc_client_t *client_new(const struct fixture *f, const char *options)
{
	char uri[256];
	mongoc_client_t *c;

	snprintf(uri, sizeof(uri), "%s/?appname=dbtap-test%s", f->stub.uri, options);
	c = mongoc_client_new(uri);
	assert_non_null(c);
	mongoc_client_set_error_api(c, MONGOC_ERROR_API_VERSION_2);
	return c;
}

static void command_ok(mongoc_client_t *c, const char *db, const bson_t *cmd)
{
	bson_error_t err;

	if (!mongoc_client_command_simple(c, db, cmd, NULL, NULL, &err))
		fail_msg("%s: %s", db, err.message);
}

/* Iterate a cursor to its end; the documents it gave. */
static unsigned int drain(mongoc_cursor_t *cur)
{
	const bson_t *doc;
	bson_error_t err;
	unsigned int n = 0;

	while (mongoc_cursor_next(cur, &doc))
		n++;
	if (mongoc_cursor_error(cur, &err))
		fail_msg("cursor: %s", err.message);
	mongoc_cursor_destroy(cur);
	return n;
}

/* The whole workload on one uncompressed connection; what the client sent, by command. */
struct sent {
	unsigned int inserts, insert_rows, finds, find_docs, aggregates, agg_docs, updates,
		update_rows, deletes, errors, pings;
};

static void workload(struct fixture *f, struct sent *s)
{
	mongoc_client_t *c = client_new(f, "");
	mongoc_collection_t *coll = mongoc_client_get_collection(c, DB, COLL);
	bson_t *docs[BULK_DOCS], *filter, *opts, *upd, *pipeline, reply;
	bson_error_t err;
	unsigned int i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < PINGS; i++) {
		bson_t *ping = BCON_NEW("ping", BCON_INT32(1));

		command_ok(c, "admin", ping);
		bson_destroy(ping);
		s->pings++;
	}
	for (i = 0; i < BULK_DOCS; i++)
		docs[i] =
			BCON_NEW("_id", BCON_INT32((int32_t)i), "status",
				 BCON_UTF8(i % 3 == 0 ? "B" : "A"), "age", BCON_INT32(20 + 3 * i));
	assert_true(mongoc_collection_insert_many(coll, (const bson_t **)docs, BULK_DOCS, NULL,
						  NULL, &err));
	for (i = 0; i < BULK_DOCS; i++)
		bson_destroy(docs[i]);
	s->inserts++;
	s->insert_rows += BULK_DOCS;
	for (i = 0; i < SINGLE_DOCS; i++) {
		bson_t *d = BCON_NEW("status", BCON_UTF8("A"), "age", BCON_INT32(60 + i));

		assert_true(mongoc_collection_insert_one(coll, d, NULL, NULL, &err));
		bson_destroy(d);
		s->inserts++;
		s->insert_rows++;
	}

	/* A and older than 30: bulk i in {4, 5, 7, 8, 10, 11}, and the single inserts */
	filter = BCON_NEW("status", BCON_UTF8("A"), "age", "{", "$gt", BCON_INT32(30), "}");
	opts = BCON_NEW("batchSize", BCON_INT32(FIND_BATCH));
	s->find_docs = drain(mongoc_collection_find_with_opts(coll, filter, opts, NULL));
	assert_int_equal(s->find_docs, 6 + SINGLE_DOCS);
	s->finds = 1 + get_mores(s->find_docs, FIND_BATCH);
	bson_destroy(filter);
	bson_destroy(opts);

	filter = BCON_NEW("status", BCON_UTF8("B"));
	upd = BCON_NEW("$set", "{", "flag", BCON_INT32(1), "}");
	assert_true(mongoc_collection_update_many(coll, filter, upd, NULL, &reply, &err));
	bson_destroy(&reply);
	bson_destroy(filter);
	bson_destroy(upd);
	s->updates++;
	s->update_rows += BULK_DOCS / 3; /* _id 0, 3, 6, 9 */
	for (i = 1; i <= UPDATE_ONES; i++) {
		filter = BCON_NEW("_id", BCON_INT32((int32_t)i));
		upd = BCON_NEW("$inc", "{", "age", BCON_INT32(1), "}");
		assert_true(mongoc_collection_update_one(coll, filter, upd, NULL, &reply, &err));
		bson_destroy(&reply);
		bson_destroy(filter);
		bson_destroy(upd);
		s->updates++;
		s->update_rows++;
	}

	pipeline = BCON_NEW("pipeline", "[", "{", "$match", "{", "status", BCON_UTF8("A"), "}", "}",
			    "]");
	opts = BCON_NEW("batchSize", BCON_INT32(AGG_BATCH));
	s->agg_docs =
		drain(mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, opts, NULL));
	assert_int_equal(s->agg_docs, BULK_DOCS - BULK_DOCS / 3 + SINGLE_DOCS);
	s->aggregates = 1 + get_mores(s->agg_docs, AGG_BATCH);
	bson_destroy(pipeline);
	bson_destroy(opts);

	filter = BCON_NEW("_id", BCON_INT32(0));
	assert_true(mongoc_collection_delete_one(coll, filter, NULL, NULL, &err));
	bson_destroy(filter);
	s->deletes++;

	/* an error reply: mongod answers ok: 0, code 59 */
	filter = BCON_NEW("nosuchcommand", BCON_INT32(1));
	assert_false(mongoc_client_command_simple(c, DB, filter, NULL, NULL, &err));
	assert_int_equal(err.code, 59);
	bson_destroy(filter);
	s->errors++;

	mongoc_collection_destroy(coll);
	mongoc_client_destroy(c);
}

/* ---- fixture ---- */

/* Stand-in and agent, the agent on capture path @capture. */
static int setup_capture(void **state, const char *capture)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char pid[16];
	const char *args[] = {"--capture", capture, "--pid", pid, NULL};

	if (!f || mongostub_start(&f->stub))
		return -1;
	snprintf(pid, sizeof(pid), "%d", (int)f->stub.pid);
	if (agent_start(&f->agent, LONG_INTERVAL_S, args))
		return -1;
	*state = f;
	return 0;
}

static int setup_socket(void **state)
{
	return setup_capture(state, "socket");
}

static int setup_syscall(void **state)
{
	return setup_capture(state, "syscall");
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	if (f->agent.pid)
		agent_stop(&f->agent);
	mongostub_stop(&f->stub);
	cJSON_Delete(f->lines);
	free(f);
	return 0;
}

/* ---- the test ---- */

static void test_commands_counted_exactly(void **state)
{
	struct fixture *f = *state;
	mongoc_client_t *c;
	struct sent s;
	cJSON *lines;
	uint64_t handshakes;
	unsigned int i, stub_total;
	char *log;

	workload(f, &s);
	/* a second client that negotiates zlib: after the handshake everything is compressed */
	c = client_new(f, "&compressors=zlib");
	for (i = 0; i < ZLIB_PINGS; i++) {
		bson_t *ping = BCON_NEW("ping", BCON_INT32(1));

		command_ok(c, "admin", ping);
		bson_destroy(ping);
	}
	mongoc_client_destroy(c);
	testutil_sleep_ms(SETTLE_MS);
	assert_int_equal(agent_stop(&f->agent), 0);
	f->lines = lines = agent_read_lines(&f->agent);
	assert_non_null(lines);

	/* what the stand-in handled is what the client sent */
	assert_int_equal(stub_count(f, "insert", "msg"), s.inserts);
	assert_int_equal(stub_count(f, "find", "msg"), 1);
	assert_int_equal(stub_count(f, "getMore:find", "msg"), s.finds - 1);
	assert_int_equal(stub_count(f, "aggregate", "msg"), 1);
	assert_int_equal(stub_count(f, "getMore:aggregate", "msg"), s.aggregates - 1);
	assert_int_equal(stub_count(f, "update", "msg"), s.updates);
	assert_int_equal(stub_count(f, "delete", "msg"), s.deletes);
	assert_int_equal(stub_count(f, "nosuchcommand", "msg"), s.errors);
	assert_int_equal(stub_count(f, "ping", "msg"), s.pings);
	assert_int_equal(stub_count(f, "ping", "compressed-msg"), ZLIB_PINGS);

	printf("  counted by dbtap vs sent by the client (= handled by the stand-in):\n");
	expect_u64(series_count(lines, "count", "insert"), s.inserts, "insert count");
	expect_u64(series_count(lines, "rows", "insert"), s.insert_rows, "insert rows (n)");
	expect_u64(series_count(lines, "count", "find"), s.finds, "find + its getMores");
	expect_u64(series_count(lines, "count", "aggregate"), s.aggregates,
		   "aggregate + its getMores");
	expect_u64(series_count(lines, "count", "getMore"), 0, "getMore series of their own");
	expect_u64(series_count(lines, "count", "update"), s.updates, "update count");
	expect_u64(series_count(lines, "rows", "update"), s.update_rows, "update rows (nModified)");
	expect_u64(series_count(lines, "count", "delete"), s.deletes, "delete count");
	expect_u64(series_count(lines, "rows", "delete"), s.deletes, "delete rows (n)");
	expect_u64(series_count(lines, "count", "nosuchcommand"), s.errors, "error reply count");
	expect_u64(series_count(lines, "errors", "nosuchcommand"), s.errors, "error reply errors");
	expect_u64(agent_sum_series(lines, "error_codes." CODE_NOT_FOUND,
				    MATCH("db.system.name", "mongodb")),
		   s.errors, "error_codes.59");
	expect_u64(agent_sum_series(lines, "errors", MATCH("db.system.name", "mongodb")), s.errors,
		   "errors, all series");
	expect_u64(series_count(lines, "count", "ping"), s.pings, "ping (uncompressed)");
	expect_u64(agent_sum_series(lines, "count",
				    MATCH("db.system.name", "mongodb", "db.query.summary",
					  "compressed zlib")),
		   ZLIB_PINGS, "OP_COMPRESSED zlib (ping)");
	handshakes = (uint64_t)stub_count(f, "isMaster", NULL) + stub_count(f, "hello", NULL) +
		     stub_count(f, "ismaster", NULL);
	assert_true(handshakes >= 2);
	expect_u64(series_count(lines, "count", "isMaster") +
			   series_count(lines, "count", "hello") +
			   series_count(lines, "count", "ismaster"),
		   handshakes, "handshakes (OP_QUERY isMaster / hello)");
	log = testutil_read_file(f->stub.log_path, NULL);
	assert_non_null(log);
	for (stub_total = 0, i = 0; log[i]; i++)
		stub_total += log[i] == '\n';
	free(log);
	expect_u64(agent_sum_series(lines, "count", MATCH("db.system.name", "mongodb")), stub_total,
		   "all operations (stand-in's log lines)");

	/* names and text: $db as db.namespace, the filter's shape without values */
	expect_u64(agent_sum_series(
			   lines, "count",
			   MATCH("db.system.name", "mongodb", "db.namespace", DB, "db.query.text",
				 "find users {\"status\": ?, \"age\": {\"$gt\": ?}}",
				 "db.query.summary", "find users", "db.collection.name", COLL)),
		   s.finds, "find series by text, namespace, collection");
	expect_u64(agent_sum_series(lines, "count",
				    MATCH("db.system.name", "mongodb", "db.namespace", DB,
					  "db.query.text",
					  "aggregate users [{\"$match\": {\"status\": ?}}]")),
		   s.aggregates, "aggregate series by text");
	expect_u64(agent_sum_series(lines, "count",
				    MATCH("db.system.name", "mongodb", "db.namespace", DB,
					  "db.query.text",
					  "update users [{\"q\": {\"_id\": ?}, \"u\": {\"$inc\": "
					  "{\"age\": ?}}}]")),
		   UPDATE_ONES, "update_one series by text");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		{"commands_counted_exactly/socket", test_commands_counted_exactly, setup_socket,
		 teardown, NULL},
		{"commands_counted_exactly/syscall", test_commands_counted_exactly, setup_syscall,
		 teardown, NULL},
	};
	int rc;

	mongoc_init();
	rc = cmocka_run_group_tests_name("mongo_capture", tests, NULL, NULL);
	mongoc_cleanup();
	return rc;
}
