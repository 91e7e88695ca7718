// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_table.c - the live terminal table (exporters/table.c): exact frames for constructed
 * snapshots (order, time formats, truncation, sanitizing, row limits, the empty frame), the
 * terminal size read from a real pseudo-terminal, and write errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "exporters/table.h"

#define CLEAR	       "\033[H\033[2J"
#define ELLIPSIS       "\xE2\x80\xA6"
#define T_2026_NS      (1795374005LL * 1000000000LL + 123456789LL) /* 2026-11-22T19:00:05.123Z */
#define MAX_SERIES     32
#define MAX_LINES      64
/* where TOTAL and QUERY start in a row, and the fallback width (not a terminal) */
#define COL_TOTAL      34
#define COL_QUERY      56
#define FALLBACK_WIDTH 120

/* ---- helpers ---- */

struct frame {
	char *text;
	size_t len;
	char *lines[MAX_LINES]; /* '\n' cut off; lines[0] starts after the clear sequence */
	int n_lines;
};

static void split_lines(struct frame *f)
{
	char *p;

	assert_true(f->len >= strlen(CLEAR));
	assert_memory_equal(f->text, CLEAR, strlen(CLEAR));
	assert_int_equal(f->text[f->len - 1], '\n');
	/* the clear sequence is the only escape the frame may contain */
	assert_null(strchr(f->text + strlen(CLEAR), '\033'));
	f->n_lines = 0;
	for (p = f->text + strlen(CLEAR); *p;) {
		char *nl = strchr(p, '\n');

		assert_non_null(nl);
		assert_true(f->n_lines < MAX_LINES);
		*nl = '\0';
		f->lines[f->n_lines++] = p;
		p = nl + 1;
	}
}

/* Draw @snap with a table of @rows rows on a memory stream (not a terminal). */
static void draw(const struct dbtap_snapshot *snap, int rows, struct frame *f)
{
	struct dbtap_table *t;
	FILE *fp;

	memset(f, 0, sizeof(*f));
	fp = open_memstream(&f->text, &f->len);
	assert_non_null(fp);
	t = dbtap_table_new(fp, rows);
	assert_non_null(t);
	assert_int_equal(dbtap_table_write(t, snap), 0);
	dbtap_table_free(t);
	assert_int_equal(fclose(fp), 0);
	split_lines(f);
}

/* Columns of a UTF-8 line: one per code point. */
static size_t columns(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static const char *after_query_start(const char *line)
{
	assert_true(strlen(line) >= COL_QUERY);
	return line + COL_QUERY;
}

/* A series whose every call took @lat_s: min = max = p50 = p99 = @lat_s. */
static void mk(struct dbtap_series *s, uint64_t hash, uint64_t count, uint64_t errors, double sum_s,
	       double lat_s, const char *db, const char *summary, const char *text)
{
	memset(s, 0, sizeof(*s));
	s->system = "postgresql";
	s->instance_pid = 100;
	s->server_address = "127.0.0.1";
	s->server_port = 5432;
	s->server_socket = "";
	s->db_namespace = db;
	s->db_user = "u";
	s->operation = "SELECT";
	s->collection = "";
	s->summary = summary;
	s->query_text = text ? text : "";
	s->text_known = text != NULL;
	s->query_hash = hash;
	s->count = count;
	s->errors = errors;
	s->sum_s = sum_s;
	s->min_s = lat_s;
	s->max_s = lat_s;
	if (count)
		s->hist[dbtap_hist_bucket((uint64_t)(lat_s * 1e9))] = (uint32_t)count;
}

static void mk_snapshot(struct dbtap_snapshot *snap, const struct dbtap_series *series, size_t n)
{
	memset(snap, 0, sizeof(*snap));
	snap->time_ns = T_2026_NS;
	snap->interval_s = 5.0;
	snap->series = series;
	snap->n_series = n;
	snap->self.counters[DBTAP_CNT_EVENTS] = 999999; /* not a drop */
	snap->self.counters[DBTAP_CNT_OPS] = 1000;
	snap->self.counters[DBTAP_CNT_DROP_SAMPLE_RB] = 3;
	snap->self.counters[DBTAP_CNT_DROP_AGG_FULL] = 4;
	snap->self.cpu_s = 0.1;
	snap->self.capture_path = "socket";
}

/* ---- tests ---- */

static void test_empty_snapshot_waits(void **state)
{
	static struct dbtap_series idle[2];
	struct dbtap_snapshot snap;
	struct frame f;

	mk_snapshot(&snap, NULL, 0);
	draw(&snap, 0, &f);
	assert_int_equal(f.n_lines, 2);
	assert_string_equal(f.lines[0], "dbtap 2026-11-22T19:00:05Z  interval 5.0s  series 0  "
					"ops/s 200.0  drops 7  cpu 2.0%");
	assert_string_equal(f.lines[1], "waiting for queries" ELLIPSIS);
	free(f.text);

	/* series without operations this interval count as none */
	mk(&idle[0], 1, 0, 0, 0, 0, "bench", "SELECT a", NULL);
	mk(&idle[1], 2, 0, 0, 0, 0, "bench", "SELECT b", NULL);
	mk_snapshot(&snap, idle, 2);
	draw(&snap, 0, &f);
	assert_int_equal(f.n_lines, 2);
	assert_string_equal(f.lines[1], "waiting for queries" ELLIPSIS);
	free(f.text);
}

static void test_order_and_rows(void **state)
{
	static struct dbtap_series s[5];
	struct dbtap_snapshot snap;
	struct frame f;

	mk(&s[0], 0xa, 100, 0, 0.5, 0.005, "bench", "SELECT a", NULL);
	mk(&s[1], 0xb, 10, 1, 2.0, 0.2, "bench", "SELECT b", "SELECT * FROM b");
	mk(&s[2], 0xc, 5, 5, 1.0, 0.2, "inventory_long_name", "DELETE c", NULL);
	mk(&s[3], 0xd, 50, 0, 1.0, 0.02, "", "UPDATE d", NULL); /* ties c on time, more calls */
	mk(&s[4], 0xe, 0, 0, 0, 0, "bench", "idle", NULL);	/* no calls: not shown */
	mk_snapshot(&snap, s, 5);
	draw(&snap, 0, &f);

	assert_int_equal(f.n_lines, 6);
	assert_string_equal(f.lines[0], "dbtap 2026-11-22T19:00:05Z  interval 5.0s  series 4  "
					"ops/s 200.0  drops 7  cpu 2.0%");
	assert_string_equal(f.lines[1],
			    "   CALLS ERRORS      P50      P99    TOTAL DB           QUERY");
	assert_string_equal(
		f.lines[2],
		"      10      1  200.0ms  200.0ms    2.00s bench        SELECT * FROM b");
	assert_string_equal(f.lines[3],
			    "      50      0   20.0ms   20.0ms    1.00s -            UPDATE d");
	assert_string_equal(f.lines[4],
			    "       5      5  200.0ms  200.0ms    1.00s inventory_l" ELLIPSIS
			    " DELETE c");
	assert_string_equal(f.lines[5],
			    "     100      0  5.000ms  5.000ms  500.0ms bench        SELECT a");
	free(f.text);

	/* at most 2 rows: the two busiest, then how many more */
	draw(&snap, 2, &f);
	assert_int_equal(f.n_lines, 5);
	assert_string_equal(after_query_start(f.lines[2]), "SELECT * FROM b");
	assert_string_equal(after_query_start(f.lines[3]), "UPDATE d");
	assert_string_equal(f.lines[4], "(+2 more)");
	free(f.text);
}

static void test_fallback_rows(void **state)
{
	static struct dbtap_series s[25];
	static char summaries[25][24];
	struct dbtap_snapshot snap;
	struct frame f;
	int i;

	/* not a terminal and rows = 0: 20 rows; same time and calls: ordered by hash */
	for (i = 0; i < 25; i++) {
		snprintf(summaries[i], sizeof(summaries[i]), "SELECT t%02d", i);
		mk(&s[i], 1000 - (uint64_t)i, 3, 0, 0.003, 0.001, "db", summaries[i], NULL);
	}
	mk_snapshot(&snap, s, 25);
	draw(&snap, 0, &f);
	assert_int_equal(f.n_lines, 2 + 20 + 1);
	assert_string_equal(after_query_start(f.lines[2]), "SELECT t24");
	assert_string_equal(after_query_start(f.lines[21]), "SELECT t05");
	assert_string_equal(f.lines[22], "(+5 more)");
	free(f.text);
}

static void test_time_formats(void **state)
{
	static const struct {
		double sum_s;
		const char *total; /* the TOTAL cell, right-aligned in 8 columns */
	} cases[] = {
		{0, " 0.000ms"},      {0.000042, " 0.042ms"}, {0.0099994, " 9.999ms"},
		{0.0123, "  12.3ms"}, {0.99994, " 999.9ms"},  {1.5, "   1.50s"},
		{99.994, "  99.99s"}, {250.4, "    250s"},    {86400, "  86400s"},
	};
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct frame f;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mk(&s, 1, 1, 0, cases[i].sum_s, 0.001, "db", "SELECT x", NULL);
		mk_snapshot(&snap, &s, 1);
		draw(&snap, 0, &f);
		assert_int_equal(f.n_lines, 3);
		if (strncmp(f.lines[2] + COL_TOTAL, cases[i].total, 8) != 0)
			fail_msg("sum %g: row \"%s\", want TOTAL \"%s\"", cases[i].sum_s,
				 f.lines[2], cases[i].total);
		free(f.text);
	}
}

static void test_percentile_columns(void **state)
{
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct frame f;

	/*
	 * 98 calls near 1 ms (bucket [983040, 1015808) ns) and 2 near 3 s (bucket [2952790016,
	 * 3087007744) ns): p50 = 983040 + 32768 * 49.5 / 98 ns = 0.99959 ms, p99 = rank 99, the
	 * first of 2 in the slow bucket = 2952790016 + 134217728 / 4 ns = 2.986 s.
	 */
	mk(&s, 1, 100, 2, 6.1, 0.001, "db", "SELECT x", NULL);
	memset(s.hist, 0, sizeof(s.hist));
	s.hist[dbtap_hist_bucket(1000000)] = 98;
	s.hist[dbtap_hist_bucket(3000000000ULL)] = 2;
	s.min_s = 0.00098;
	s.max_s = 3.0;
	mk_snapshot(&snap, &s, 1);
	draw(&snap, 0, &f);
	assert_string_equal(f.lines[2],
			    "     100      2  1.000ms    2.99s    6.10s db           SELECT x");
	free(f.text);
}

static void test_query_column(void **state)
{
	static char fits[FALLBACK_WIDTH - COL_QUERY + 1];     /* exactly the QUERY width */
	static char too_long[FALLBACK_WIDTH - COL_QUERY + 2]; /* one more */
	static char long_summary[200];
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct frame f;
	const char *q;

	memset(fits, 'f', sizeof(fits) - 1);
	memset(too_long, 'x', sizeof(too_long) - 1);
	memset(long_summary, 's', sizeof(long_summary) - 1);

	/* text that fits the width exactly is shown */
	mk(&s, 1, 1, 0, 1, 1, "db", "SELECT short", fits);
	mk_snapshot(&snap, &s, 1);
	draw(&snap, 0, &f);
	assert_string_equal(after_query_start(f.lines[2]), fits);
	assert_int_equal(columns(f.lines[2]), FALLBACK_WIDTH);
	free(f.text);

	/* one column longer: the summary instead */
	mk(&s, 1, 1, 0, 1, 1, "db", "SELECT short", too_long);
	draw(&snap, 0, &f);
	assert_string_equal(after_query_start(f.lines[2]), "SELECT short");
	free(f.text);

	/* a summary too long is cut to the width with an ellipsis */
	mk(&s, 1, 1, 0, 1, 1, "db", long_summary, NULL);
	draw(&snap, 0, &f);
	q = after_query_start(f.lines[2]);
	assert_int_equal(columns(f.lines[2]), FALLBACK_WIDTH);
	assert_int_equal(strlen(q), FALLBACK_WIDTH - COL_QUERY - 1 + strlen(ELLIPSIS));
	assert_memory_equal(q, long_summary, FALLBACK_WIDTH - COL_QUERY - 1);
	assert_string_equal(q + FALLBACK_WIDTH - COL_QUERY - 1, ELLIPSIS);
	free(f.text);

	/* no summary: the text, cut short */
	mk(&s, 1, 1, 0, 1, 1, "db", "", too_long);
	draw(&snap, 0, &f);
	q = after_query_start(f.lines[2]);
	assert_int_equal(columns(f.lines[2]), FALLBACK_WIDTH);
	assert_memory_equal(q, too_long, FALLBACK_WIDTH - COL_QUERY - 1);
	assert_string_equal(q + FALLBACK_WIDTH - COL_QUERY - 1, ELLIPSIS);
	free(f.text);

	/* text known to be unknown is never shown; nothing at all is "-" */
	s.text_known = false;
	draw(&snap, 0, &f);
	assert_string_equal(after_query_start(f.lines[2]), "-");
	free(f.text);
}

static void test_sanitized_text(void **state)
{
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct frame f;

	/* newlines, tabs, ESC, C1 CSI (U+009B) and an invalid byte: nothing reaches the tty */
	mk(&s, 1, 1, 0, 1, 1, "a\033[2Jb", "SELECT x",
	   "  SELECT\n\t  1 \xc2\x9b"
	   "31m\xff\r\n");
	mk_snapshot(&snap, &s, 1);
	draw(&snap, 0, &f);
	assert_null(strstr(f.text, "\xc2\x9b"));
	assert_string_equal(f.lines[2], "       1      0    1.00s    1.00s    1.00s a [2Jb       "
					"SELECT 1 31m\xef\xbf\xbd");
	free(f.text);
}

static void test_fits_terminal(void **state)
{
	struct winsize ws = {.ws_row = 10, .ws_col = 80};
	static struct dbtap_series s[10];
	static char summaries[10][48];
	struct dbtap_snapshot snap;
	struct dbtap_table *t;
	struct termios tio;
	struct frame f;
	char buf[8192];
	int master, slave, i;
	FILE *fp;

	assert_int_equal(openpty(&master, &slave, NULL, NULL, &ws), 0);
	/* raw: no "\n" -> "\r\n", so the frame arrives byte for byte */
	assert_int_equal(tcgetattr(slave, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(slave, TCSANOW, &tio), 0);
	fp = fdopen(slave, "w");
	assert_non_null(fp);

	for (i = 0; i < 10; i++) {
		snprintf(summaries[i], sizeof(summaries[i]), "SELECT from_a_rather_long_table_%d",
			 i);
		mk(&s[i], (uint64_t)i, 1, 0, 10.0 - i, 1, "db", summaries[i], NULL);
	}
	mk_snapshot(&snap, s, 10);
	t = dbtap_table_new(fp, 0);
	assert_non_null(t);
	assert_int_equal(dbtap_table_write(t, &snap), 0);
	dbtap_table_free(t);

	memset(&f, 0, sizeof(f));
	while (f.len < sizeof(buf) - 1) {
		struct pollfd pfd = {.fd = master, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 200) <= 0)
			break;
		n = read(master, buf + f.len, sizeof(buf) - 1 - f.len);
		if (n <= 0)
			break;
		f.len += (size_t)n;
	}
	buf[f.len] = '\0';
	fclose(fp);
	close(master);
	f.text = buf;
	split_lines(&f);

	/* 10 terminal rows: 6 query rows, the rest is header, titles, "more" and the cursor */
	assert_int_equal(f.n_lines, 2 + 6 + 1);
	assert_string_equal(f.lines[0], "dbtap 2026-11-22T19:00:05Z  interval 5.0s  series 10  "
					"ops/s 200.0  drops 7  cpu" ELLIPSIS);
	for (i = 0; i < f.n_lines; i++)
		assert_true(columns(f.lines[i]) <= 80);
	/* 80 - 56 = 24 columns of query */
	assert_string_equal(after_query_start(f.lines[2]), "SELECT from_a_rather_lo" ELLIPSIS);
	assert_string_equal(f.lines[8], "(+4 more)");
}

static void test_errors(void **state)
{
	static struct dbtap_series s;
	struct dbtap_snapshot snap;
	struct dbtap_table *t;
	FILE *fp;

	errno = 0;
	assert_null(dbtap_table_new(NULL, 0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(dbtap_table_new(stdout, -1));
	assert_int_equal(errno, EINVAL);
	dbtap_table_free(NULL);

	mk(&s, 1, 1, 0, 1, 1, "db", "SELECT x", NULL);
	mk_snapshot(&snap, &s, 1);
	fp = fopen("/dev/full", "w");
	assert_non_null(fp);
	t = dbtap_table_new(fp, 0);
	assert_non_null(t);
	assert_int_equal(dbtap_table_write(t, &snap), -ENOSPC);
	assert_int_equal(dbtap_table_write(t, NULL), -EINVAL);
	assert_int_equal(dbtap_table_write(NULL, &snap), -EINVAL);
	dbtap_table_free(t);
	fclose(fp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_snapshot_waits),
		cmocka_unit_test(test_order_and_rows),
		cmocka_unit_test(test_fallback_rows),
		cmocka_unit_test(test_time_formats),
		cmocka_unit_test(test_percentile_columns),
		cmocka_unit_test(test_query_column),
		cmocka_unit_test(test_sanitized_text),
		cmocka_unit_test(test_fits_terminal),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
