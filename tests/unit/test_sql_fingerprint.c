// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_sql_fingerprint.c - the kernel's literal-insensitive fingerprint (the same header the
 * BPF program compiles), run byte by byte as the kernel does: which queries share a series,
 * which do not, and agreement with the userspace normalizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "probes/sql/sql_fingerprint.h"
#include "probes/sql/sql_normalize.h"

/* The fingerprint of @q by the full state machine; the hot path (sql_fp_step_fast, what the
 * kernel runs) must agree on every input, so every test checks both. */
static uint64_t fp_of(const char *q, enum sql_fp_dialect d)
{
	struct sql_fp fp, fast;
	uint64_t h;
	size_t i;

	sql_fp_init(&fp, d);
	sql_fp_init(&fast, d);
	for (i = 0; q[i]; i++) {
		sql_fp_step(&fp, (uint8_t)q[i]);
		sql_fp_step_fast(&fast, (uint8_t)q[i]);
	}
	h = sql_fp_finish(&fp);
	assert_int_equal(sql_fp_finish(&fast), h);
	return h;
}

static uint64_t fnv64(const char *s)
{
	uint64_t h = DBTAP_FNV64_OFFSET;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * DBTAP_FNV64_PRIME;
	return h;
}

static void test_keyword_constants(void **state)
{
	assert_int_equal(fnv64("in"), SQL_FP_HASH_IN);
	assert_int_equal(fnv64("true"), SQL_FP_HASH_TRUE);
	assert_int_equal(fnv64("false"), SQL_FP_HASH_FALSE);
}

/* Pairs that must share one fingerprint. */
static const char *const same[][2] = {
	{"SELECT 1", "SELECT 42"},
	{"SELECT 1", "select   17"},
	{"SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = 'it''s'"},
	{"SELECT * FROM t WHERE a = 1.5e3", "SELECT * FROM t WHERE a = 7"},
	{"SELECT * FROM t WHERE a = 0x1F", "SELECT * FROM t WHERE a = 3"},
	{"SELECT * FROM t WHERE a = .5", "SELECT * FROM t WHERE a = 5."},
	{"SELECT * FROM t WHERE a IN (1, 2, 3)", "SELECT * FROM t WHERE a IN (4)"},
	{"SELECT * FROM t WHERE a IN ('a','b')", "SELECT * FROM t WHERE a in (?)"},
	{"SELECT * FROM t WHERE b = true", "SELECT * FROM t WHERE b = FALSE"},
	{"SELECT * FROM t WHERE b = TRUE", "SELECT * FROM t WHERE b = ?"},
	{"SELECT /* c */ 1 -- x\n", "SELECT 2"},
	{"SELECT /* a /* nested */ b */ 1", "SELECT 1"},
	{"SELECT $$x$$", "SELECT 'y'"},
	{"SELECT $tag$ a $ b $tag$", "SELECT 1"},
	{"SELECT E'a\\'b'", "SELECT 'c'"},
	{"SELECT X'1F'", "SELECT 1"},
	{"SELECT U&'d\\0061t'", "SELECT 1"},
	{"UPDATE a SET b = b + -3391 WHERE c = 1", "UPDATE a SET b = b + 12 WHERE c = 99"},
	{"SELECT f(-5)", "SELECT f(5)"},
	{"SELECT * FROM t WHERE a IN (1, -2)", "SELECT * FROM t WHERE a IN (3)"},
	{"SELECT a FROM t", "select A from T"},
	{"SELECT a<=b", "SELECT a <= b"},
	{"SELECT 1;", "SELECT 2 ;"},
	{"SELECT 'unterminated", "SELECT 'x'"},
};

/* Pairs that must not. */
static const char *const differ[][2] = {
	{"SELECT a FROM t", "SELECT b FROM t"},
	{"SELECT $1", "SELECT $2"},
	{"SELECT $1", "SELECT 1"},
	{"SELECT \"A\" FROM t", "SELECT \"a\" FROM t"},
	{"SELECT * FROM t WHERE a IN ($1, $2)", "SELECT * FROM t WHERE a IN ($1)"},
	{"SELECT * FROM t WHERE a IN (1, b)", "SELECT * FROM t WHERE a IN (1)"},
	{"VALUES (1, 2)", "VALUES (1)"},
	{"SELECT a - 1", "SELECT a + 1"},
	{"SELECT ab", "SELECT a b"},
	{"SELECT a.b", "SELECT a, b"},
	{"SELECT NULL", "SELECT 1"},
	{"SELECT 1; SELECT 2", "SELECT 1"},
	{"SELECT * FROM t1", "SELECT * FROM t2"},
	{"SELECT x FROM t WHERE y = -1", "SELECT x FROM t WHERE y - 1"},
};

static void test_same(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		if (fp_of(same[i][0], SQL_FP_POSTGRESQL) != fp_of(same[i][1], SQL_FP_POSTGRESQL))
			fail_msg("expected one fingerprint: [%s] [%s]", same[i][0], same[i][1]);
	}
}

static void test_differ(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		if (fp_of(differ[i][0], SQL_FP_POSTGRESQL) ==
		    fp_of(differ[i][1], SQL_FP_POSTGRESQL))
			fail_msg("expected two fingerprints: [%s] [%s]", differ[i][0],
				 differ[i][1]);
	}
}

static void test_mysql_dialect(void **state)
{
	/* "..." is a string in MySQL, an identifier in PostgreSQL; # starts a comment */
	assert_int_equal(fp_of("SELECT \"a\"", SQL_FP_MYSQL), fp_of("SELECT 'b'", SQL_FP_MYSQL));
	assert_int_not_equal(fp_of("SELECT \"a\"", SQL_FP_POSTGRESQL),
			     fp_of("SELECT 'b'", SQL_FP_POSTGRESQL));
	assert_int_equal(fp_of("SELECT 1 # c", SQL_FP_MYSQL), fp_of("SELECT 2", SQL_FP_MYSQL));
	assert_int_equal(fp_of("SELECT 'a\\'b'", SQL_FP_MYSQL), fp_of("SELECT 1", SQL_FP_MYSQL));
	assert_int_equal(fp_of("SELECT `x` FROM t", SQL_FP_MYSQL),
			 fp_of("SELECT  `x`  FROM t", SQL_FP_MYSQL));
}

/*
 * The kernel groups by fingerprint, userspace by normalized text. Whatever the normalizer
 * prints must fingerprint like its input, or a series would be split or mislabelled.
 */
static const char *const consistency[] = {
	"SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
	"UPDATE pgbench_accounts SET abalance = abalance + -3391 WHERE aid = 1;",
	"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 2, 3, "
	"CURRENT_TIMESTAMP);",
	"BEGIN;",
	"END;",
	"SELECT pg_sleep(0.05)",
	"SELECT * FROM no_such_table",
	"select a, b from t where x in (1, 2, 3) and y = 'z' -- c",
	"SELECT /* hint */ count(*) FROM orders o JOIN customers c ON c.id = o.cid",
	"SELECT $1::int + $2",
	"SELECT x FROM t WHERE ts > now() - interval '1 day'",
	"SELECT * FROM t WHERE b = true AND c IS NULL",
	"SELECT E'\\n', X'1f', 1.5e-3",
	"WITH q AS (SELECT 1) SELECT * FROM q",
	"SELECT f(-5), g(1, -2)",
	"SELECT a <= b, c <> d, e::text",
};

static void test_normalizer_agrees(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(consistency) / sizeof(consistency[0]); i++) {
		struct sql_normalized n = {0};
		const char *q = consistency[i];

		assert_int_equal(sql_normalize(q, strlen(q), SQL_DIALECT_POSTGRESQL, false, &n), 0);
		if (fp_of(q, SQL_FP_POSTGRESQL) != fp_of(n.text, SQL_FP_POSTGRESQL))
			fail_msg("normalized text fingerprints differently:\n  in:  %s\n  out: %s",
				 q, n.text);
		sql_normalized_free(&n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyword_constants),
		cmocka_unit_test(test_same),
		cmocka_unit_test(test_differ),
		cmocka_unit_test(test_mysql_dialect),
		cmocka_unit_test(test_normalizer_agrees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
