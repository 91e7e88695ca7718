// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_sql_normalize.c - table-driven tests of the SQL normalizer: every tokenizing rule of
 * docs/normalization.md in both dialects, operation / collection / summary, pgbench's
 * statements, literal-only differences, the summary limit and idempotence.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "probes/sql/sql_normalize.h"

#define PG SQL_DIALECT_POSTGRESQL
#define MY SQL_DIALECT_MYSQL

struct norm_case {
	enum sql_dialect dialect;
	bool raw;
	const char *in;
	size_t len; /* bytes of in; 0: strlen(in) */
	const char *text;
	const char *op;
	const char *coll;
	const char *summary;
};

/* sanitized; raw; input holding NUL bytes (length from the literal) */
#define N(d, in, text, op, coll, sum)	{d, false, in, 0, text, op, coll, sum}
#define RAW(d, in, text, op, coll, sum) {d, true, in, 0, text, op, coll, sum}
#define BIN(d, in, text, op, coll, sum) {d, false, in, sizeof(in) - 1, text, op, coll, sum}

static const struct norm_case cases[] = {
	/* ---- rule 1: whitespace and spacing ---- */
	N(PG, "SELECT  a,b\n\tFROM\r\nt", "SELECT a, b FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "select a . b from s . t", "SELECT a.b FROM s.t", "SELECT", "s.t", "SELECT s.t"),
	N(PG, "SELECT x :: int", "SELECT x::int", "SELECT", "", "SELECT"),
	N(PG, "SELECT f ( 1 , 2 )", "SELECT f(?, ?)", "SELECT", "", "SELECT"),
	N(PG, "SELECT ( a + b ) * c FROM t ;", "SELECT (a + b) * c FROM t;", "SELECT", "t",
	  "SELECT t"),
	N(PG, "SELECT\fa\vFROM\tt", "SELECT a FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT a ,b", "SELECT a, b", "SELECT", "", "SELECT"),
	N(PG, "SELECT a: :: int", "SELECT a : ::int", "SELECT", "", "SELECT"),

	/* ---- rule 2: comments ---- */
	N(PG, "SELECT 1 -- trailing\n", "SELECT ?", "SELECT", "", "SELECT"),
	N(PG, "-- leading\nSELECT a FROM t", "SELECT a FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT /* c */ a FROM t", "SELECT a FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT /* outer /* inner */ still */ a FROM t", "SELECT a FROM t", "SELECT", "t",
	  "SELECT t"),
	N(PG, "SELECT /* a /* b */ c */ 1", "SELECT ?", "SELECT", "", "SELECT"),
	N(MY, "SELECT /* a /* b */ c */ 1", "SELECT c * / ?", "SELECT", "", "SELECT"),
	N(MY, "SELECT a FROM t # comment\nWHERE b = 1", "SELECT a FROM t WHERE b = ?", "SELECT",
	  "t", "SELECT t"),
	N(PG, "SELECT a #> '{x}' FROM t", "SELECT a #> ? FROM t", "SELECT", "t", "SELECT t"),
	N(MY, "/*!40101 SET NAMES utf8 */ SELECT 1", "SELECT ?", "SELECT", "", "SELECT"),
	N(MY, "SELECT /*+ MAX_EXECUTION_TIME(100) */ a FROM t", "SELECT a FROM t", "SELECT", "t",
	  "SELECT t"),
	N(PG, "SELECT 1 /* unterminated", "SELECT ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT a-- comment\nFROM t", "SELECT a FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT a/**/FROM t", "SELECT a FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "-- only a comment", "", "", "", ""),

	/* ---- rule 3: strings ---- */
	N(PG, "SELECT 'abc', 'it''s'", "SELECT ?, ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT E'a\\'b', e'\\\\'", "SELECT ?, ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT 'a\\' , 'z'", "SELECT ?, ?", "SELECT", "", "SELECT"),
	N(MY, "SELECT 'a\\' , 'z'", "SELECT ? z ?", "SELECT", "", "SELECT"),
	N(MY, "SELECT 'a\\' , 'b'", "SELECT ? ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT X'1F', x'ff', B'101', N'nat', U&'d\\0061t'", "SELECT ?, ?, ?, ?, ?", "SELECT",
	  "", "SELECT"),
	N(PG, "SELECT $$it's$$, $fn$ body $$ inner $fn$", "SELECT ?, ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT $a$ unterminated", "SELECT ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT $ a", "SELECT $ a", "SELECT", "", "SELECT"),
	N(PG, "SELECT \"Col\" FROM \"My Table\"", "SELECT \"Col\" FROM \"My Table\"", "SELECT",
	  "My Table", "SELECT My Table"),
	N(MY, "SELECT \"str\", `col` FROM `db`.`tbl`", "SELECT ?, `col` FROM `db`.`tbl`", "SELECT",
	  "db.tbl", "SELECT db.tbl"),
	N(MY, "SELECT 'a\\'b', \"c\\\"d\", 'e''f'", "SELECT ?, ?, ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT DATE '2024-01-01', TIMESTAMP '2024-01-01 10:00'",
	  "SELECT DATE ?, TIMESTAMP ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT now() - interval '1 day'", "SELECT now() - INTERVAL ?", "SELECT", "",
	  "SELECT"),
	N(PG, "SELECT 'unterminated", "SELECT ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT \"a\"\"b\" FROM t", "SELECT \"a\"\"b\" FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT 'a'\n'b'", "SELECT ? ?", "SELECT", "", "SELECT"),
	N(MY, "SELECT _utf8mb4'abc'", "SELECT _utf8mb4 ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT name'x'", "SELECT name ?", "SELECT", "", "SELECT"),

	/* ---- rule 4: numbers ---- */
	N(PG, "SELECT 1, 1.5, .5, 1e10, 1.5E-3, 2e+4", "SELECT ?, ?, ?, ?, ?, ?", "SELECT", "",
	  "SELECT"),
	N(PG, "SELECT 0x1F, 0XABC", "SELECT ?, ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT t1.a1b FROM t1", "SELECT t1.a1b FROM t1", "SELECT", "t1", "SELECT t1"),
	N(PG, "SELECT -5, - 5, a-5, a - -5", "SELECT -?, -?, a - ?, a - ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT (-1), 3 * -2, abs(-7)", "SELECT (?), ? * ?, abs(?)", "SELECT", "", "SELECT"),
	N(PG, "SELECT x FROM t WHERE a = -1 AND b > -2.5", "SELECT x FROM t WHERE a = ? AND b > ?",
	  "SELECT", "t", "SELECT t"),
	N(PG, "SELECT 1e", "SELECT ? e", "SELECT", "", "SELECT"),
	N(PG, "SELECT 12abc", "SELECT ? abc", "SELECT", "", "SELECT"),
	N(PG, "SELECT CURRENT_DATE - 1, x - -1", "SELECT CURRENT_DATE - ?, x - ?", "SELECT", "",
	  "SELECT"),
	N(PG, "SELECT a FROM t WHERE b = 10.", "SELECT a FROM t WHERE b = ?", "SELECT", "t",
	  "SELECT t"),

	/* ---- rule 5: booleans ---- */
	N(PG, "SELECT * FROM t WHERE a = TRUE AND b = false AND c IS NULL",
	  "SELECT * FROM t WHERE a = ? AND b = ? AND c IS NULL", "SELECT", "t", "SELECT t"),
	N(MY, "UPDATE t SET flag = True, other = null", "UPDATE t SET flag = ?, other = NULL",
	  "UPDATE", "t", "UPDATE t"),
	N(PG, "SELECT trueish, falsey", "SELECT trueish, falsey", "SELECT", "", "SELECT"),

	/* ---- rule 6: parameters and placeholders ---- */
	N(PG, "SELECT * FROM t WHERE a = $1 AND b = $23",
	  "SELECT * FROM t WHERE a = $1 AND b = $23", "SELECT", "t", "SELECT t"),
	N(MY, "SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = ? AND b = ?",
	  "SELECT", "t", "SELECT t"),
	N(PG, "SELECT $1::int, $2", "SELECT $1::int, $2", "SELECT", "", "SELECT"),
	N(PG, "SELECT ?, ?::text", "SELECT ?, ?::text", "SELECT", "", "SELECT"),

	/* ---- rule 7: identifiers and keywords ---- */
	N(PG, "select Id, NaMe from Users where Active", "SELECT Id, NaMe FROM Users WHERE Active",
	  "SELECT", "Users", "SELECT Users"),
	N(PG, "SELECT café, naïve FROM données", "SELECT café, naïve FROM données", "SELECT",
	  "données", "SELECT données"),
	N(PG, "SELECT '日本語' FROM 表 WHERE 列 = 'ü'", "SELECT ? FROM 表 WHERE 列 = ?", "SELECT",
	  "表", "SELECT 表"),
	N(PG, "SELECT a$b, _x FROM t", "SELECT a$b, _x FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT \xff\xfe FROM \xc3 WHERE \x80 = 'x\xff'",
	  "SELECT \xff\xfe FROM \xc3 WHERE \x80 = ?", "SELECT", "\xc3", "SELECT \xc3"),
	N(PG, "sElEcT DiStInCt a FrOm t", "SELECT DISTINCT a FROM t", "SELECT", "t", "SELECT t"),

	/* ---- rule 8: IN lists ---- */
	N(PG, "SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)", "SELECT",
	  "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN ('a','b')", "SELECT * FROM t WHERE id IN (?)", "SELECT",
	  "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN ($1, $2)", "SELECT * FROM t WHERE id IN ($1, $2)",
	  "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN (1, 2, a)", "SELECT * FROM t WHERE id IN (?, a)",
	  "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN (a, 1, 2)", "SELECT * FROM t WHERE id IN (a, ?)",
	  "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN (SELECT x FROM u WHERE y = 1)",
	  "SELECT * FROM t WHERE id IN (SELECT x FROM u WHERE y = ?)", "SELECT", "t", "SELECT t u"),
	N(PG, "SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))",
	  "SELECT * FROM t WHERE (a, b) IN ((?, ?), (?, ?))", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id NOT IN (1,2)", "SELECT * FROM t WHERE id NOT IN (?)",
	  "SELECT", "t", "SELECT t"),
	N(PG, "INSERT INTO t VALUES (1, 2)", "INSERT INTO t VALUES (?, ?)", "INSERT", "t",
	  "INSERT t"),
	N(MY, "SELECT * FROM t WHERE id IN (?, ?, ?)", "SELECT * FROM t WHERE id IN (?)", "SELECT",
	  "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN (-1, -2)", "SELECT * FROM t WHERE id IN (?)", "SELECT",
	  "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN (1, 2 - 3)", "SELECT * FROM t WHERE id IN (? - ?)",
	  "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN (f(1, 2), 3)",
	  "SELECT * FROM t WHERE id IN (f(?, ?), ?)", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN (ARRAY[1, 2], 3)",
	  "SELECT * FROM t WHERE id IN (ARRAY[?, ?], ?)", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE id IN(1,2) AND b IN (3, 4, 'x', TRUE)",
	  "SELECT * FROM t WHERE id IN (?) AND b IN (?)", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE a IN (1, 2) AND b = ANY ('{1,2}')",
	  "SELECT * FROM t WHERE a IN (?) AND b = ANY(?)", "SELECT", "t", "SELECT t"),

	/* ---- rule 9: operators ---- */
	N(PG, "SELECT a FROM t WHERE a <= 1 AND b >= 2 AND c <> 3 AND d != 4",
	  "SELECT a FROM t WHERE a <= ? AND b >= ? AND c <> ? AND d != ?", "SELECT", "t",
	  "SELECT t"),
	N(PG, "SELECT a || b, j -> 'k', j ->> 'k', j #> '{a}', j @> '{}', j <@ '{}'",
	  "SELECT a || b, j -> ?, j ->> ?, j #> ?, j @> ?, j <@ ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT data->>'key', d#>>'{a,b}' FROM docs", "SELECT data ->> ?, d #>> ? FROM docs",
	  "SELECT", "docs", "SELECT docs"),
	N(PG, "SELECT a<->b, c<=>d, e<#>f FROM items",
	  "SELECT a <-> b, c <=> d, e <#> f FROM items", "SELECT", "items", "SELECT items"),
	N(MY, "SELECT @@version, @@session.sql_mode, @x := 1",
	  "SELECT @@version, @@SESSION.sql_mode, @x := ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT ARRAY[1,2], a[1], x::int[]", "SELECT ARRAY[?, ?], a[?], x::int[]", "SELECT",
	  "", "SELECT"),
	N(PG, "SELECT 1::text || 'x'", "SELECT ?::text || ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT a ~* 'x', b !~ 'y', c !~* 'z'", "SELECT a ~* ?, b !~ ?, c !~* ?", "SELECT",
	  "", "SELECT"),
	N(PG, "SELECT a%b, a^2, a&1, ~a", "SELECT a % b, a ^ ?, a & ?, ~ a", "SELECT", "",
	  "SELECT"),
	N(MY, "SELECT a <=> b, c && d, e DIV 2", "SELECT a <=> b, c && d, e DIV ?", "SELECT", "",
	  "SELECT"),

	/* ---- rule 10: raw ---- */
	RAW(PG, "SELECT  'abc' , 1.5 -- c\n FROM t WHERE x IN (1, 2)",
	    "SELECT 'abc', 1.5 FROM t WHERE x IN (1, 2)", "SELECT", "t", "SELECT t"),
	RAW(PG, "select -5, TRUE, E'x', $$y$$, $1", "SELECT -5, TRUE, E'x', $$y$$, $1", "SELECT",
	    "", "SELECT"),
	RAW(MY, "SELECT \"s\" FROM `t` # c", "SELECT \"s\" FROM `t`", "SELECT", "t", "SELECT t"),
	RAW(PG, "UPDATE pgbench_accounts SET abalance = abalance + -3391 WHERE aid = 1;",
	    "UPDATE pgbench_accounts SET abalance = abalance + -3391 WHERE aid = 1;", "UPDATE",
	    "pgbench_accounts", "UPDATE pgbench_accounts"),

	/* ---- rule 11: NUL bytes, invalid input, truncation ---- */
	BIN(PG, "SELECT '\0'", "SELECT ?", "SELECT", "", "SELECT"),
	BIN(PG, "SELECT\0a\0FROM\0t", "SELECT a FROM t", "SELECT", "t", "SELECT t"),
	BIN(PG, "SELECT \"a\0b\" FROM \"x\0y\"", "SELECT \"a b\" FROM \"x y\"", "SELECT", "x y",
	    "SELECT x y"),
	BIN(MY, "SELECT `a\0` FROM t\0", "SELECT `a ` FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "", "", "", "", ""),
	N(MY, "   \n\t", "", "", "", ""),
	N(PG, "SELECT * FROM t WHERE a = 'cut", "SELECT * FROM t WHERE a = ?", "SELECT", "t",
	  "SELECT t"),
	N(PG,
	  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 2, 3, "
	  "CURRENT_TI",
	  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?, "
	  "CURRENT_TI",
	  "INSERT", "pgbench_history", "INSERT pgbench_history"),
	N(PG, "SELECT \"unterminated", "SELECT \"unterminated", "SELECT", "", "SELECT"),
	N(PG, "SELECT $$", "SELECT ?", "SELECT", "", "SELECT"),
	N(PG, "SELECT a FROM", "SELECT a FROM", "SELECT", "", "SELECT"),
	N(PG, "SELECT * FROM t WHERE (a = 1", "SELECT * FROM t WHERE (a = ?", "SELECT", "t",
	  "SELECT t"),
	N(PG, "SELECT a) FROM t", "SELECT a) FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT E'\\", "SELECT ?", "SELECT", "", "SELECT"),
	N(PG, "FROM \"\"", "FROM \"\"", "FROM", "", "FROM"),

	/* ---- rule 12: several statements ---- */
	N(PG, "SELECT 1; SELECT 2", "SELECT ?; SELECT ?", "SELECT", "", "SELECT"),
	N(PG, "BEGIN; UPDATE t SET a = 1; COMMIT;", "BEGIN; UPDATE t SET a = ?; COMMIT;", "BEGIN",
	  "", "BEGIN"),
	N(PG, "; ; SELECT a FROM t", ";; SELECT a FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT a FROM t1; SELECT b FROM t2", "SELECT a FROM t1; SELECT b FROM t2", "SELECT",
	  "t1", "SELECT t1"),

	/* ---- pgbench ---- */
	N(PG, "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
	  "SELECT abalance FROM pgbench_accounts WHERE aid = ?;", "SELECT", "pgbench_accounts",
	  "SELECT pgbench_accounts"),
	N(PG, "UPDATE pgbench_accounts SET abalance = abalance + -3391 WHERE aid = 1;",
	  "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?;", "UPDATE",
	  "pgbench_accounts", "UPDATE pgbench_accounts"),
	N(PG, "UPDATE pgbench_tellers SET tbalance = tbalance + 4567 WHERE tid = 7;",
	  "UPDATE pgbench_tellers SET tbalance = tbalance + ? WHERE tid = ?;", "UPDATE",
	  "pgbench_tellers", "UPDATE pgbench_tellers"),
	N(PG, "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
	  "SELECT abalance FROM pgbench_accounts WHERE aid = $1", "SELECT", "pgbench_accounts",
	  "SELECT pgbench_accounts"),
	N(PG,
	  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 2, 3, "
	  "CURRENT_TIMESTAMP);",
	  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?, "
	  "CURRENT_TIMESTAMP);",
	  "INSERT", "pgbench_history", "INSERT pgbench_history"),
	N(PG, "BEGIN;", "BEGIN;", "BEGIN", "", "BEGIN"),
	N(PG, "END;", "END;", "END", "", "END"),
	N(PG, "SELECT pg_sleep(0.05)", "SELECT pg_sleep(?)", "SELECT", "", "SELECT"),

	/* ---- operation names ---- */
	N(PG, "CREATE TABLE t (id int PRIMARY KEY, name text)",
	  "CREATE TABLE t (id int PRIMARY KEY, name text)", "CREATE TABLE", "t", "CREATE TABLE t"),
	N(PG, "create unique index concurrently idx_a on public.t (a)",
	  "CREATE UNIQUE INDEX CONCURRENTLY idx_a ON public.t(a)", "CREATE INDEX", "public.t",
	  "CREATE INDEX public.t"),
	N(PG, "DROP INDEX IF EXISTS idx_a", "DROP INDEX IF EXISTS idx_a", "DROP INDEX", "",
	  "DROP INDEX"),
	N(PG, "DROP TABLE IF EXISTS a, b CASCADE", "DROP TABLE IF EXISTS a, b CASCADE",
	  "DROP TABLE", "a", "DROP TABLE a b"),
	N(PG, "ALTER TABLE ONLY public.t ADD COLUMN c int, ADD COLUMN d int",
	  "ALTER TABLE ONLY public.t ADD COLUMN c int, ADD COLUMN d int", "ALTER TABLE", "public.t",
	  "ALTER TABLE public.t"),
	N(PG, "TRUNCATE TABLE t1, t2", "TRUNCATE TABLE t1, t2", "TRUNCATE TABLE", "t1",
	  "TRUNCATE TABLE t1 t2"),
	N(PG, "truncate t", "TRUNCATE t", "TRUNCATE", "t", "TRUNCATE t"),
	N(PG, "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql",
	  "CREATE OR REPLACE FUNCTION f() RETURNS int AS ? LANGUAGE sql", "CREATE FUNCTION", "",
	  "CREATE FUNCTION"),
	N(PG, "CREATE MATERIALIZED VIEW mv AS SELECT a FROM t",
	  "CREATE MATERIALIZED VIEW mv AS SELECT a FROM t", "CREATE MATERIALIZED VIEW", "mv",
	  "CREATE MATERIALIZED VIEW mv t"),
	N(PG, "CREATE TEMP TABLE tmp AS SELECT * FROM src",
	  "CREATE TEMP TABLE tmp AS SELECT * FROM src", "CREATE TABLE", "tmp",
	  "CREATE TABLE tmp src"),
	N(PG, "CREATE TABLE IF NOT EXISTS t(a int REFERENCES u(id))",
	  "CREATE TABLE IF NOT EXISTS t (a int REFERENCES u(id))", "CREATE TABLE", "t",
	  "CREATE TABLE t"),
	N(PG, "CREATE VIEW v AS SELECT * FROM t", "CREATE VIEW v AS SELECT * FROM t", "CREATE VIEW",
	  "v", "CREATE VIEW v t"),
	N(PG, "CREATE SCHEMA s", "CREATE SCHEMA s", "CREATE SCHEMA", "", "CREATE SCHEMA"),
	N(PG, "start transaction isolation level repeatable read",
	  "START TRANSACTION ISOLATION LEVEL REPEATABLE READ", "START TRANSACTION", "",
	  "START TRANSACTION"),
	N(MY, "START TRANSACTION", "START TRANSACTION", "START TRANSACTION", "",
	  "START TRANSACTION"),
	N(PG, "begin isolation level serializable", "BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN",
	  "", "BEGIN"),
	N(PG, "commit", "COMMIT", "COMMIT", "", "COMMIT"),
	N(PG, "ROLLBACK TO SAVEPOINT s1", "ROLLBACK TO SAVEPOINT s1", "ROLLBACK", "", "ROLLBACK"),
	N(PG, "WITH x AS (SELECT a FROM t) SELECT * FROM x",
	  "WITH x AS (SELECT a FROM t) SELECT * FROM x", "SELECT", "t", "SELECT t"),
	N(PG, "WITH ins AS (INSERT INTO log VALUES (1) RETURNING id) UPDATE t SET a = 1 FROM ins",
	  "WITH ins AS (INSERT INTO log VALUES (?) RETURNING id) UPDATE t SET a = ? FROM ins",
	  "UPDATE", "t", "UPDATE log t"),
	N(PG,
	  "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n "
	  "FROM r",
	  "WITH RECURSIVE r(n) AS (SELECT ? UNION ALL SELECT n + ? FROM r WHERE n < ?) SELECT n "
	  "FROM r",
	  "SELECT", "", "SELECT"),
	N(PG, "WITH d AS MATERIALIZED (DELETE FROM q RETURNING *) INSERT INTO arch SELECT * FROM d",
	  "WITH d AS MATERIALIZED (DELETE FROM q RETURNING *) INSERT INTO arch SELECT * FROM d",
	  "INSERT", "arch", "INSERT q arch"),
	N(PG, "WITH a AS (SELECT 1), b AS (SELECT * FROM a JOIN real_t ON true) SELECT * FROM b",
	  "WITH a AS (SELECT ?), b AS (SELECT * FROM a JOIN real_t ON ?) SELECT * FROM b", "SELECT",
	  "real_t", "SELECT real_t"),
	N(PG, "EXPLAIN ANALYZE SELECT * FROM t WHERE a = 1",
	  "EXPLAIN ANALYZE SELECT * FROM t WHERE a = ?", "EXPLAIN", "t", "EXPLAIN t"),
	N(PG, "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM a JOIN b ON a.id = b.id",
	  "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM a JOIN b ON a.id = b.id", "EXPLAIN", "",
	  "EXPLAIN a b"),
	N(PG, "COPY t FROM STDIN", "COPY t FROM STDIN", "COPY", "t", "COPY t"),
	N(PG, "COPY public.t (a, b) FROM '/tmp/x.csv' WITH (FORMAT csv)",
	  "COPY public.t (a, b) FROM ? WITH (FORMAT csv)", "COPY", "public.t", "COPY public.t"),
	N(PG, "COPY (SELECT * FROM t) TO STDOUT", "COPY (SELECT * FROM t) TO STDOUT", "COPY", "t",
	  "COPY t"),
	N(PG, "SET search_path TO public", "SET search_path TO public", "SET", "", "SET"),
	N(MY, "SET NAMES utf8mb4", "SET NAMES utf8mb4", "SET", "", "SET"),
	N(PG, "VACUUM ANALYZE t", "VACUUM ANALYZE t", "VACUUM", "", "VACUUM"),
	N(PG, "(SELECT a FROM t1) UNION ALL (SELECT a FROM t2)",
	  "(SELECT a FROM t1) UNION ALL (SELECT a FROM t2)", "SELECT", "", "SELECT t1 t2"),
	N(PG, "foo bar(1)", "foo bar(?)", "", "", "FOO"),
	N(PG, "123", "?", "", "", ""),
	N(PG, "VALUES (1, 'a'), (2, 'b')", "VALUES (?, ?), (?, ?)", "VALUES", "", "VALUES"),
	N(PG, "TABLE t", "TABLE t", "TABLE", "t", "TABLE t"),
	N(PG, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
	  "LOCK", "t", "LOCK t"),
	N(PG, "CALL proc(1, 'x')", "CALL proc(?, ?)", "CALL", "", "CALL"),
	N(PG, "DO $$BEGIN PERFORM 1; END$$", "DO ?", "DO", "", "DO"),
	N(PG, "PREPARE q AS SELECT * FROM t WHERE a = $1",
	  "PREPARE q AS SELECT * FROM t WHERE a = $1", "PREPARE", "t", "PREPARE t"),
	N(PG, "NOTIFY chan, 'payload'", "NOTIFY chan, ?", "NOTIFY", "", "NOTIFY"),

	/* ---- collection and summary ---- */
	N(PG, "SELECT * FROM orders o JOIN customers c ON o.cid = c.id",
	  "SELECT * FROM orders o JOIN customers c ON o.cid = c.id", "SELECT", "",
	  "SELECT orders customers"),
	N(PG, "SELECT * FROM a LEFT OUTER JOIN b USING (id) JOIN a AS a2 ON true",
	  "SELECT * FROM a LEFT OUTER JOIN b USING (id) JOIN a AS a2 ON ?", "SELECT", "",
	  "SELECT a b"),
	N(PG, "SELECT * FROM a, b AS bb, c WHERE a.x = b.x",
	  "SELECT * FROM a, b AS bb, c WHERE a.x = b.x", "SELECT", "", "SELECT a b c"),
	N(PG, "SELECT * FROM a WHERE id IN (SELECT id FROM b) AND EXISTS (SELECT 1 FROM c)",
	  "SELECT * FROM a WHERE id IN (SELECT id FROM b) AND EXISTS (SELECT ? FROM c)", "SELECT",
	  "a", "SELECT a b c"),
	N(PG, "SELECT * FROM (SELECT * FROM inner_t) s", "SELECT * FROM (SELECT * FROM inner_t) s",
	  "SELECT", "inner_t", "SELECT inner_t"),
	N(PG, "SELECT extract(year FROM created) FROM t",
	  "SELECT EXTRACT(year FROM created) FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT substring(s FROM 2 FOR 3), trim(both 'x' FROM y) FROM t",
	  "SELECT SUBSTRING(s FROM ? FOR ?), TRIM(BOTH ? FROM y) FROM t", "SELECT", "t",
	  "SELECT t"),
	N(PG, "SELECT * FROM t WHERE a IS NOT DISTINCT FROM b",
	  "SELECT * FROM t WHERE a IS NOT DISTINCT FROM b", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM generate_series(1, 3) g JOIN t ON t.id = g",
	  "SELECT * FROM generate_series(?, ?) g JOIN t ON t.id = g", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT coalesce((SELECT max(x) FROM m), 0) FROM t",
	  "SELECT COALESCE((SELECT max(x) FROM m), ?) FROM t", "SELECT", "t", "SELECT m t"),
	N(PG, "UPDATE t SET a = u.a FROM u WHERE t.id = u.id",
	  "UPDATE t SET a = u.a FROM u WHERE t.id = u.id", "UPDATE", "t", "UPDATE t u"),
	N(PG, "DELETE FROM t USING u WHERE t.a = u.a", "DELETE FROM t USING u WHERE t.a = u.a",
	  "DELETE", "t", "DELETE t u"),
	N(PG, "DELETE FROM ONLY public.t WHERE id = 1", "DELETE FROM ONLY public.t WHERE id = ?",
	  "DELETE", "public.t", "DELETE public.t"),
	N(PG, "INSERT INTO t (a) SELECT a FROM s", "INSERT INTO t (a) SELECT a FROM s", "INSERT",
	  "t", "INSERT t s"),
	N(PG, "INSERT INTO t(a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a",
	  "INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a", "INSERT",
	  "t", "INSERT t"),
	N(PG, "SELECT * FROM t FOR UPDATE SKIP LOCKED", "SELECT * FROM t FOR UPDATE SKIP LOCKED",
	  "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM \"Sch\".\"My Tab\"", "SELECT * FROM \"Sch\".\"My Tab\"", "SELECT",
	  "Sch.My Tab", "SELECT Sch.My Tab"),
	N(PG, "SELECT * FROM \"a\"\"b\"", "SELECT * FROM \"a\"\"b\"", "SELECT", "a\"b",
	  "SELECT a\"b"),
	N(PG, "SELECT * FROM t1 AS x JOIN t1 AS y ON x.p = y.id",
	  "SELECT * FROM t1 AS x JOIN t1 AS y ON x.p = y.id", "SELECT", "t1", "SELECT t1"),
	N(PG, "SELECT COUNT(*) FROM t GROUP BY a ORDER BY 1 LIMIT 10 OFFSET 20",
	  "SELECT COUNT(*) FROM t GROUP BY a ORDER BY ? LIMIT ? OFFSET ?", "SELECT", "t",
	  "SELECT t"),
	N(PG, "SELECT CAST(a AS integer), coalesce(b, 0), x::numeric(10,2) FROM t",
	  "SELECT CAST(a AS INTEGER), COALESCE(b, ?), x::NUMERIC(?, ?) FROM t", "SELECT", "t",
	  "SELECT t"),
	N(PG, "SELECT * FROM t WHERE a = ANY($1)", "SELECT * FROM t WHERE a = ANY($1)", "SELECT",
	  "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE x = ANY (SELECT y FROM u)",
	  "SELECT * FROM t WHERE x = ANY(SELECT y FROM u)", "SELECT", "t", "SELECT t u"),
	N(PG, "SELECT CASE WHEN a > 0 THEN 'p' ELSE 'n' END FROM t",
	  "SELECT CASE WHEN a > ? THEN ? ELSE ? END FROM t", "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE a BETWEEN 1 AND 10", "SELECT * FROM t WHERE a BETWEEN ? AND ?",
	  "SELECT", "t", "SELECT t"),
	N(PG, "SELECT * FROM t WHERE s LIKE 'a%' ESCAPE '!'",
	  "SELECT * FROM t WHERE s LIKE ? ESCAPE ?", "SELECT", "t", "SELECT t"),
	N(MY, "INSERT IGNORE INTO `t` (`a`) VALUES (1)", "INSERT IGNORE INTO `t` (`a`) VALUES (?)",
	  "INSERT", "t", "INSERT t"),
	N(MY, "REPLACE INTO t VALUES (1)", "REPLACE INTO t VALUES (?)", "REPLACE", "t",
	  "REPLACE t"),
	N(MY, "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)",
	  "INSERT INTO t (a) VALUES (?) ON DUPLICATE KEY UPDATE a = VALUES (a)", "INSERT", "t",
	  "INSERT t"),
	N(PG, "SELECT * FROM time JOIN Zone ON true", "SELECT * FROM TIME JOIN ZONE ON ?", "SELECT",
	  "", "SELECT TIME ZONE"),
	N(MY, "SELECT 1 FROM DUAL", "SELECT ? FROM DUAL", "SELECT", "", "SELECT"),
	N(MY, "SHOW COLUMNS FROM t", "SHOW COLUMNS FROM t", "SHOW", "t", "SHOW t"),
	N(MY, "UPDATE LOW_PRIORITY t SET a = 1 LIMIT 10", "UPDATE LOW_PRIORITY t SET a = ? LIMIT ?",
	  "UPDATE", "t", "UPDATE t"),
	N(MY, "LOCK TABLES a READ, b WRITE", "LOCK TABLES a READ, b WRITE", "LOCK", "a",
	  "LOCK a b"),
	N(MY, "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id WHERE t2.x = 'y'",
	  "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id WHERE t2.x = ?", "DELETE", "t1",
	  "DELETE t1 t2"),
	N(MY, "SELECT SQL_CALC_FOUND_ROWS * FROM db.t LIMIT 5, 10",
	  "SELECT SQL_CALC_FOUND_ROWS * FROM db.t LIMIT ?, ?", "SELECT", "db.t", "SELECT db.t"),
};

/* Normalize one case, failing with the case's input named. */
static void normalize_case(const struct norm_case *c, const char *in, size_t len,
			   struct sql_normalized *ret)
{
	int err = sql_normalize(in, len, c->dialect, c->raw, ret);

	if (err) {
		print_error("sql_normalize(\"%s\") = %d\n", c->in, err);
		fail();
	}
}

/* Report a mismatch; returns 1 when there is one, so a table run can list them all. */
static int check_field(const struct norm_case *c, const char *what, const char *got,
		       const char *want)
{
	if (strcmp(got, want) == 0)
		return 0;
	print_error("input \"%s\" (%s%s): %s\n   got \"%s\"\n  want \"%s\"\n", c->in,
		    c->dialect == MY ? "mysql" : "postgresql", c->raw ? ", raw" : "", what, got,
		    want);
	return 1;
}

static size_t case_len(const struct norm_case *c)
{
	return c->len ? c->len : strlen(c->in);
}

static void test_table(void **state)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);

	int bad = 0;

	assert_true(n >= 120);
	for (size_t i = 0; i < n; i++) {
		const struct norm_case *c = &cases[i];
		struct sql_normalized r;

		normalize_case(c, c->in, case_len(c), &r);
		bad += check_field(c, "text", r.text, c->text);
		bad += check_field(c, "operation", r.operation, c->op);
		bad += check_field(c, "collection", r.collection, c->coll);
		bad += check_field(c, "summary", r.summary, c->summary);
		assert_false(r.truncated);
		sql_normalized_free(&r);
	}
	assert_int_equal(bad, 0);
}

/* normalize(normalize(q)) == normalize(q), text and every field, over the whole table */
static void test_idempotent(void **state)
{
	int bad = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct norm_case *c = &cases[i];
		struct sql_normalized once, twice;

		normalize_case(c, c->in, case_len(c), &once);
		normalize_case(c, once.text, strlen(once.text), &twice);
		bad += check_field(c, "text again", twice.text, once.text);
		bad += check_field(c, "operation again", twice.operation, once.operation);
		bad += check_field(c, "collection again", twice.collection, once.collection);
		bad += check_field(c, "summary again", twice.summary, once.summary);
		sql_normalized_free(&once);
		sql_normalized_free(&twice);
	}
	assert_int_equal(bad, 0);
}

/* Queries that differ only in literals share one normalized text. */
static void test_literals_only_differ(void **state)
{
	static const struct {
		enum sql_dialect dialect;
		const char *a, *b, *want;
	} pairs[] = {
		{PG, "SELECT * FROM t WHERE a = 1 AND b = 'x'",
		 "select * from t where a = 42 and b = 'it''s'",
		 "SELECT * FROM t WHERE a = ? AND b = ?"},
		{PG, "SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (7)",
		 "SELECT * FROM t WHERE id IN (?)"},
		{PG, "UPDATE pgbench_accounts SET abalance = abalance + -3391 WHERE aid = 1;",
		 "UPDATE pgbench_accounts SET abalance = abalance + -17 WHERE aid = 99999;",
		 "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?;"},
		{PG, "SELECT $$a$$, E'\\n', 1.5e3", "SELECT 'b', X'FF', .5", "SELECT ?, ?, ?"},
		{PG, "SELECT DATE '2024-01-01'", "SELECT DATE '1999-12-31'", "SELECT DATE ?"},
		{PG, "SELECT * FROM t WHERE x = TRUE", "SELECT * FROM t WHERE x = false",
		 "SELECT * FROM t WHERE x = ?"},
		{PG, "SELECT 0x1F", "SELECT 12.5e3", "SELECT ?"},
		{MY, "SELECT * FROM t WHERE a = \"a\\\"b\"", "SELECT * FROM t WHERE a = 'c'",
		 "SELECT * FROM t WHERE a = ?"},
		{MY, "SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t WHERE a IN (?, ?, ?)",
		 "SELECT * FROM t WHERE a IN (?)"},
	};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct sql_normalized a, b;

		assert_int_equal(
			sql_normalize(pairs[i].a, strlen(pairs[i].a), pairs[i].dialect, false, &a),
			0);
		assert_int_equal(
			sql_normalize(pairs[i].b, strlen(pairs[i].b), pairs[i].dialect, false, &b),
			0);
		assert_string_equal(a.text, pairs[i].want);
		assert_string_equal(b.text, pairs[i].want);
		assert_string_equal(a.operation, b.operation);
		assert_string_equal(a.collection, b.collection);
		assert_string_equal(a.summary, b.summary);
		sql_normalized_free(&a);
		sql_normalized_free(&b);
	}
}

/* The summary stops before the table that would make it longer than 255 bytes. */
static void test_summary_limit(void **state)
{
	char query[8192] = "SELECT * FROM ";
	char want[SQL_SUMMARY_MAX * 2] = "SELECT";
	struct sql_normalized r;
	size_t want_len = strlen(want);
	bool full = false;

	/* tables of 25 bytes: table_00_xxxxxxxxxxxxxxxxx */
	for (int i = 0; i < 40; i++) {
		char name[32];

		snprintf(name, sizeof(name), "table_%02d_xxxxxxxxxxxxxxxx", i);
		assert_int_equal(strlen(name), 25);
		if (i)
			strcat(query, " JOIN ");
		strcat(query, name);
		if (!full && want_len + 1 + strlen(name) <= SQL_SUMMARY_MAX - 1) {
			want[want_len++] = ' ';
			strcpy(want + want_len, name);
			want_len += strlen(name);
		} else {
			full = true;
		}
	}
	assert_int_equal(sql_normalize(query, strlen(query), PG, false, &r), 0);
	/* "SELECT" + 9 x " table_NN_..." = 6 + 9 * 26 = 240; a tenth would make 266 */
	assert_int_equal(strlen(r.summary), 240);
	assert_string_equal(r.summary, want);
	assert_string_equal(r.collection, "");
	sql_normalized_free(&r);

	/* one name that alone does not fit: the summary is the operation only */
	{
		char big[600] = "SELECT * FROM ";
		size_t used = strlen(big);

		memset(big + used, 'n', 300);
		big[used + 300] = '\0';
		assert_int_equal(sql_normalize(big, strlen(big), PG, false, &r), 0);
		assert_string_equal(r.summary, "SELECT");
		assert_string_equal(r.collection, "");
		sql_normalized_free(&r);
	}

	/* exactly 255 bytes fits: "SELECT " + 248-byte name */
	{
		char q[600] = "SELECT * FROM ";
		size_t used = strlen(q);

		memset(q + used, 'm', 248);
		q[used + 248] = '\0';
		assert_int_equal(sql_normalize(q, strlen(q), PG, false, &r), 0);
		assert_int_equal(strlen(r.summary), 255);
		assert_memory_equal(r.summary, "SELECT mmm", 10);
		sql_normalized_free(&r);
		q[used + 248] = 'm';
		q[used + 249] = '\0';
		assert_int_equal(sql_normalize(q, strlen(q), PG, false, &r), 0);
		assert_string_equal(r.summary, "SELECT");
		sql_normalized_free(&r);
	}
}

/* The input is @len bytes, not a C string: nothing past it is read. */
static void test_length_bounded(void **state)
{
	static const char buf[] = "SELECT a FROM t WHERE b = 'not this part'";
	struct sql_normalized r;

	assert_int_equal(sql_normalize(buf, strlen("SELECT a FROM t"), PG, false, &r), 0);
	assert_string_equal(r.text, "SELECT a FROM t");
	assert_string_equal(r.collection, "t");
	sql_normalized_free(&r);

	/* cut inside a string literal: still one literal */
	assert_int_equal(
		sql_normalize(buf, strlen("SELECT a FROM t WHERE b = 'not"), PG, false, &r), 0);
	assert_string_equal(r.text, "SELECT a FROM t WHERE b = ?");
	sql_normalized_free(&r);
}

static void test_errors(void **state)
{
	struct sql_normalized r;

	assert_int_equal(sql_normalize("SELECT 1", 8, PG, false, NULL), -EINVAL);
	assert_int_equal(sql_normalize(NULL, 3, PG, false, &r), -EINVAL);
	assert_null(r.text);
	assert_string_equal(r.operation, "");
	assert_int_equal(sql_normalize("SELECT 1", 8, (enum sql_dialect)7, false, &r), -EINVAL);
	assert_null(r.text);

	/* NULL with length 0 is an empty query */
	assert_int_equal(sql_normalize(NULL, 0, MY, false, &r), 0);
	assert_non_null(r.text);
	assert_string_equal(r.text, "");
	sql_normalized_free(&r);
	assert_null(r.text);

	sql_normalized_free(NULL);
}

/* Every keyword comes out upper case; words that are not keywords keep their case. */
static void test_keyword_case(void **state)
{
	static const char in[] =
		"select from where and or not in is null as join on left inner outer cross "
		"group by order having limit offset union intersect except insert into values "
		"update set delete returning with recursive case when then else end exists "
		"between like ilike distinct all any some cast coalesce interval date timestamp "
		"count sum users Mixed";
	static const char want[] =
		"SELECT FROM WHERE AND OR NOT IN IS NULL AS JOIN ON LEFT INNER OUTER CROSS "
		"GROUP BY ORDER HAVING LIMIT OFFSET UNION INTERSECT EXCEPT INSERT INTO VALUES "
		"UPDATE SET DELETE RETURNING WITH RECURSIVE CASE WHEN THEN ELSE END EXISTS "
		"BETWEEN LIKE ILIKE DISTINCT ALL ANY SOME CAST COALESCE INTERVAL DATE TIMESTAMP "
		"count sum users Mixed";
	struct sql_normalized r;

	assert_int_equal(sql_normalize(in, strlen(in), PG, false, &r), 0);
	assert_string_equal(r.text, want);
	sql_normalized_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_literals_only_differ),
		cmocka_unit_test(test_summary_limit),
		cmocka_unit_test(test_length_bounded),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_keyword_case),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
