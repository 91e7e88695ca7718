// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * table.c - the live terminal view: redraws, every interval, the queries that took the most
 * time in that interval (docs/output.md shows the layout).
 *
 * A frame is built in memory and written with one fwrite, so the terminal never shows half a
 * frame. Everything that came off the wire (database names, query text) is sanitized before
 * it reaches the terminal: control characters, C1 controls and invalid UTF-8 cannot inject
 * escape sequences.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "exporters/table.h"
#include "userspace/utf8.h"

#define ANSI_CLEAR	 "\033[H\033[2J" /* cursor home, then erase the whole screen */
#define ELLIPSIS	 "\xE2\x80\xA6"	 /* U+2026 "…", one column */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"	 /* U+FFFD, shown for bytes that are not UTF-8 */
#define ASCII_DEL	 0x7F
#define C1_LEAD		 0xC2 /* UTF-8 lead byte of U+0080..U+00BF */
#define C1_END_CONT	 0xA0 /* continuation bytes below this after C1_LEAD are C1 controls */
#define DROP_PREFIX	 "drop."
#define NS_PER_S	 1000000000LL

#define FALLBACK_ROWS  20  /* query rows shown when @rows is 0 and fp is not a terminal */
#define FALLBACK_COLS  120 /* width when fp is not a terminal */
/* Lines that are not query rows: header, column titles, "+N more", the cursor's line. */
#define CHROME_LINES   4
#define MIN_QUERY_COLS 10 /* the QUERY column never shrinks below this */

/* Column widths; QUERY takes what is left of the terminal width. */
#define W_CALLS	    8
#define W_ERRORS    6
#define W_TIME	    8 /* P50, P99, TOTAL: "999.9ms", "0.042ms", "12.34s" */
#define W_DB	    12
#define QUERY_START (W_CALLS + 1 + W_ERRORS + 1 + 3 * (W_TIME + 1) + W_DB + 1)

struct dbtap_table {
	FILE *fp;
	int rows;			   /* most query rows shown, 0 = fit the terminal */
	const struct dbtap_series **order; /* scratch: active series, sorted */
	size_t order_cap;
};

/* ---- sanitized text ---- */

/*
 * Walks a string as the glyphs the terminal will show: runs of whitespace and control
 * characters (C0, DEL, C1) become one space, leading and trailing ones disappear, bytes that
 * are not UTF-8 become U+FFFD. A glyph counts as one column. Our own lines (header, titles)
 * keep their spaces as laid out.
 */
struct glyphs {
	const unsigned char *p;
	bool keep_spaces;   /* ' ' is a glyph, not a blank to collapse */
	bool space_pending; /* blanks seen after a glyph: one space before the next glyph */
	bool any;	    /* a glyph was produced already */
};

static void glyphs_init(struct glyphs *g, const char *s, bool keep_spaces)
{
	g->p = (const unsigned char *)(s ? s : "");
	g->keep_spaces = keep_spaces;
	g->space_pending = false;
	g->any = false;
}

/* Next glyph's bytes into @out; their number, 0 at the end. */
static int glyphs_next(struct glyphs *g, char out[4])
{
	while (*g->p) {
		int n = dbtap_utf8_seq_len(g->p);
		bool blank = (n == 1 && (*g->p < ' ' || *g->p == ASCII_DEL)) ||
			     (n == 1 && *g->p == ' ' && !g->keep_spaces) ||
			     (n == 2 && g->p[0] == C1_LEAD && g->p[1] < C1_END_CONT);

		if (blank) {
			g->p += n;
			g->space_pending = g->any;
			continue;
		}
		if (g->space_pending) {
			g->space_pending = false;
			out[0] = ' ';
			return 1;
		}
		g->any = true;
		if (n == 0) {
			g->p++;
			memcpy(out, UTF8_REPLACEMENT, strlen(UTF8_REPLACEMENT));
			return (int)strlen(UTF8_REPLACEMENT);
		}
		memcpy(out, g->p, (size_t)n);
		g->p += n;
		return n;
	}
	return 0;
}

/* Columns @s takes once sanitized. */
static int display_cols(const char *s, bool keep_spaces)
{
	struct glyphs g;
	char tmp[4];
	int cols = 0;

	glyphs_init(&g, s, keep_spaces);
	while (glyphs_next(&g, tmp))
		cols++;
	return cols;
}

/*
 * @s sanitized into a cell of @width columns: cut to width - 1 columns plus "…" when longer,
 * padded with spaces to @width when @pad.
 */
static void put_cell_glyphs(FILE *m, const char *s, int width, bool pad, bool keep_spaces)
{
	int cols = 0, total = display_cols(s, keep_spaces), n;
	struct glyphs g;
	char glyph[4];

	if (width <= 0)
		return;
	glyphs_init(&g, s, keep_spaces);
	while ((total <= width || cols < width - 1) && (n = glyphs_next(&g, glyph))) {
		fwrite(glyph, 1, (size_t)n, m);
		cols++;
	}
	if (total > width) {
		fputs(ELLIPSIS, m);
		cols++;
	}
	while (pad && cols++ < width)
		fputc(' ', m);
}

/* A cell of text from the wire: blanks collapsed. */
static void put_cell(FILE *m, const char *s, int width, bool pad)
{
	put_cell_glyphs(m, s, width, pad, false);
}

/* One of our own lines, spaces kept, cut to the terminal width. */
static void put_line(FILE *m, const char *s, int width)
{
	put_cell_glyphs(m, s, width, false, true);
	fputc('\n', m);
}

/* ---- cells ---- */

/* A duration in the units a person reads fastest: ms below a second, s above. */
static void format_duration(char *buf, size_t size, double s)
{
	if (!isfinite(s) || s < 0)
		s = 0;
	if (s < 0.01)
		snprintf(buf, size, "%.3fms", s * 1e3);
	else if (s < 1)
		snprintf(buf, size, "%.1fms", s * 1e3);
	else if (s < 100)
		snprintf(buf, size, "%.2fs", s);
	else
		snprintf(buf, size, "%.0fs", s);
}

static bool has_text(const char *s)
{
	return display_cols(s, false) > 0;
}

/* The QUERY cell: the text when it fits, else the summary, else the text cut short. */
static const char *query_shown(const struct dbtap_series *s, int cols)
{
	bool text = s->text_known && has_text(s->query_text);

	if (text && display_cols(s->query_text, false) <= cols)
		return s->query_text;
	if (has_text(s->summary))
		return s->summary;
	if (text)
		return s->query_text;
	return "-";
}

static void put_row(FILE *m, const struct dbtap_series *s, int query_cols)
{
	char p50[32], p99[32], total[32];

	format_duration(p50, sizeof(p50), dbtap_series_percentile(s, 0.50));
	format_duration(p99, sizeof(p99), dbtap_series_percentile(s, 0.99));
	format_duration(total, sizeof(total), s->sum_s);
	fprintf(m, "%*" PRIu64 " %*" PRIu64 " %*s %*s %*s ", W_CALLS, s->count, W_ERRORS, s->errors,
		W_TIME, p50, W_TIME, p99, W_TIME, total);
	put_cell(m, has_text(s->db_namespace) ? s->db_namespace : "-", W_DB, true);
	fputc(' ', m);
	put_cell(m, query_shown(s, query_cols), query_cols, false);
	fputc('\n', m);
}

/* ---- frame ---- */

static double finite_or_zero(double v)
{
	return isfinite(v) ? v : 0;
}

/* Busiest first: total time this interval, then calls; then stable, for a calm display. */
static int cmp_series(const void *a, const void *b)
{
	const struct dbtap_series *x = *(const struct dbtap_series *const *)a;
	const struct dbtap_series *y = *(const struct dbtap_series *const *)b;
	double xs = finite_or_zero(x->sum_s), ys = finite_or_zero(y->sum_s);

	if (xs != ys)
		return xs > ys ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->query_hash != y->query_hash)
		return x->query_hash < y->query_hash ? -1 : 1;
	return (x > y) - (x < y); /* snapshot order */
}

/* Terminal size of @fp; false when it is not a terminal. */
static bool terminal_size(FILE *fp, int *ret_rows, int *ret_cols)
{
	struct winsize ws;
	int fd = fileno(fp);

	if (fd < 0 || ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0)
		return false;
	*ret_rows = ws.ws_row;
	*ret_cols = ws.ws_col;
	return true;
}

static void put_header(FILE *m, const struct dbtap_snapshot *snap, size_t active, int cols)
{
	const struct dbtap_self_stats *st = &snap->self;
	double interval = finite_or_zero(snap->interval_s);
	double ops_s = 0, cpu_pct = 0;
	uint64_t drops = 0;
	char when[32] = "?", line[256];
	time_t t = (time_t)(snap->time_ns / NS_PER_S);
	struct tm tm;
	int c;

	for (c = 0; c < DBTAP_CNT_MAX; c++)
		if (strncmp(dbtap_counter_name(c), DROP_PREFIX, strlen(DROP_PREFIX)) == 0)
			drops += st->counters[c];
	if (interval > 0) {
		ops_s = (double)st->counters[DBTAP_CNT_OPS] / interval;
		cpu_pct = finite_or_zero(st->cpu_s) / interval * 100;
	}
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(line, sizeof(line),
		 "dbtap %s  interval %.1fs  series %zu  ops/s %.1f  drops %" PRIu64 "  cpu %.1f%%",
		 when, interval, active, ops_s, drops, cpu_pct);
	put_line(m, line, cols);
}

static void put_titles(FILE *m, int cols)
{
	char line[128];

	snprintf(line, sizeof(line), "%*s %*s %*s %*s %*s %-*s QUERY", W_CALLS, "CALLS", W_ERRORS,
		 "ERRORS", W_TIME, "P50", W_TIME, "P99", W_TIME, "TOTAL", W_DB, "DB");
	put_line(m, line, cols);
}

/* Build the frame for @snap in @m. 0 or -ENOMEM. */
static int put_frame(struct dbtap_table *t, FILE *m, const struct dbtap_snapshot *snap)
{
	int term_rows = 0, cols = FALLBACK_COLS, shown, query_cols;
	size_t active = 0, i;
	bool tty = terminal_size(t->fp, &term_rows, &cols);

	if (snap->n_series > t->order_cap) {
		const struct dbtap_series **p = realloc(t->order, snap->n_series * sizeof(*p));

		if (!p)
			return -ENOMEM;
		t->order = p;
		t->order_cap = snap->n_series;
	}
	for (i = 0; i < snap->n_series; i++)
		if (snap->series[i].count > 0)
			t->order[active++] = &snap->series[i];
	if (active)
		qsort(t->order, active, sizeof(*t->order), cmp_series);

	if (t->rows > 0)
		shown = t->rows;
	else if (tty)
		shown = term_rows > CHROME_LINES ? term_rows - CHROME_LINES : 1;
	else
		shown = FALLBACK_ROWS;
	query_cols = cols - QUERY_START;
	if (query_cols < MIN_QUERY_COLS)
		query_cols = MIN_QUERY_COLS;

	fputs(ANSI_CLEAR, m);
	put_header(m, snap, active, cols);
	if (active == 0) {
		put_line(m, "waiting for queries" ELLIPSIS, cols);
		return 0;
	}
	put_titles(m, cols);
	for (i = 0; i < active && i < (size_t)shown; i++)
		put_row(m, t->order[i], query_cols);
	if (active > (size_t)shown)
		fprintf(m, "(+%zu more)\n", active - (size_t)shown);
	return 0;
}

/* ---- public ---- */

struct dbtap_table *dbtap_table_new(FILE *fp, int rows)
{
	struct dbtap_table *t;

	if (!fp || rows < 0) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->fp = fp;
	t->rows = rows;
	return t;
}

int dbtap_table_write(struct dbtap_table *t, const struct dbtap_snapshot *snap)
{
	char *frame = NULL;
	size_t len = 0;
	FILE *m;
	int err;

	if (!t || !snap || (snap->n_series && !snap->series))
		return -EINVAL;
	m = open_memstream(&frame, &len);
	if (!m)
		return -errno;
	err = put_frame(t, m, snap);
	if (ferror(m) && !err)
		err = -ENOMEM;
	if (fclose(m) != 0 && !err)
		err = -ENOMEM;
	if (!err) {
		errno = 0;
		if (fwrite(frame, 1, len, t->fp) != len || fflush(t->fp) != 0)
			err = errno ? -errno : -EIO;
	}
	free(frame);
	return err;
}

void dbtap_table_free(struct dbtap_table *t)
{
	if (!t)
		return;
	free(t->order);
	free(t);
}
