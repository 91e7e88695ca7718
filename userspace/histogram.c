// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * histogram.c - latency histogram maths and exported names for the snapshot data model.
 *
 * Inverts dbtap_hist_bucket() (bpf/dbtap.h) into bucket bounds, computes interpolated
 * percentiles from a bucket array, and maps enum dbtap_counter / enum dbtap_system values to
 * the names every exporter uses. Declared at the bottom of userspace/series.h.
 */
#include <float.h>
#include <math.h>

#include "userspace/series.h"

/* ---- bucket bounds ---- */

#define NS_PER_S 1e9

/* Width of one linear bucket below 2^DBTAP_HIST_MIN_EXP ns (64 ns). */
#define HIST_LINEAR_WIDTH_NS (1ULL << (DBTAP_HIST_MIN_EXP - DBTAP_HIST_SUB_BITS))
/* Index of the open-ended last bucket, which holds every value >= 2^DBTAP_HIST_MAX_EXP ns. */
#define HIST_LAST	     (DBTAP_HIST_BUCKETS - 1)

/*
 * Lower bound (inclusive) of bucket @i in nanoseconds. Indexes past the last bucket are
 * treated as the last bucket.
 */
uint64_t dbtap_hist_bucket_lower_ns(uint32_t i)
{
	uint32_t k, e, sub;

	if (i >= HIST_LAST)
		return 1ULL << DBTAP_HIST_MAX_EXP;
	if (i < DBTAP_HIST_LINEAR)
		return (uint64_t)i * HIST_LINEAR_WIDTH_NS;
	k = i - DBTAP_HIST_LINEAR;
	e = DBTAP_HIST_MIN_EXP + k / DBTAP_HIST_SUB;
	sub = k % DBTAP_HIST_SUB;
	return (1ULL << e) + ((uint64_t)sub << (e - DBTAP_HIST_SUB_BITS));
}

/*
 * Upper bound (exclusive) of bucket @i in nanoseconds: the next bucket's lower bound. The last
 * bucket is open-ended (it takes everything >= 2^36 ns = 68.7 s); its upper bound is capped at
 * twice its lower bound, 2^37 ns = 137.4 s, which is what interpolation inside it assumes.
 */
uint64_t dbtap_hist_bucket_upper_ns(uint32_t i)
{
	if (i >= HIST_LAST)
		return 1ULL << (DBTAP_HIST_MAX_EXP + 1);
	return dbtap_hist_bucket_lower_ns(i + 1);
}

/* ---- percentiles ---- */

/*
 * Value in seconds at quantile @q (clamped to [0,1]) of @hist. The rank is nearest-rank on the
 * total count, ceil(q * total) and at least 1; inside the bucket holding that rank the value is
 * interpolated linearly, each of the bucket's n values taken at the middle of its 1/n slice
 * (the k-th of n sits at lower + width * (k - 0.5) / n), which is where a value uniformly
 * spread over the bucket is expected. Returns 0 for an empty histogram.
 */
double dbtap_hist_percentile(const uint32_t hist[DBTAP_HIST_BUCKETS], double q)
{
	uint64_t total = 0, rank, below = 0;
	double r, lower, width;
	uint32_t i;

	for (i = 0; i < DBTAP_HIST_BUCKETS; i++)
		total += hist[i];
	if (total == 0)
		return 0;
	if (!(q > 0)) /* also NaN */
		q = 0;
	if (q > 1)
		q = 1;

	/* ceil() of q * total, forgiving the rounding error of q (0.9 * 100 = 90.000...01) */
	r = q * (double)total * (1 - 4 * DBL_EPSILON);
	rank = (uint64_t)ceil(r);
	if (rank < 1)
		rank = 1;
	if (rank > total)
		rank = total;

	for (i = 0; i < DBTAP_HIST_BUCKETS; i++) {
		if (hist[i] == 0 || below + hist[i] < rank) {
			below += hist[i];
			continue;
		}
		lower = (double)dbtap_hist_bucket_lower_ns(i);
		width = (double)(dbtap_hist_bucket_upper_ns(i) - dbtap_hist_bucket_lower_ns(i));
		return (lower + width * ((double)(rank - below) - 0.5) / hist[i]) / NS_PER_S;
	}
	return 0; /* not reached: rank <= total */
}

/* ---- names ---- */

/*
 * Exported names of enum dbtap_counter, indexed by value. Loss counters are "drop.<cause>";
 * exporters derive the cause name (the key of the "drops" object) by stripping "drop.".
 */
static const char *const counter_names[DBTAP_CNT_MAX] = {
	[DBTAP_CNT_EVENTS] = "events",
	[DBTAP_CNT_OPS] = "ops",
	[DBTAP_CNT_SAMPLES] = "samples",
	[DBTAP_CNT_TEXTS] = "texts",
	[DBTAP_CNT_CONN_OPEN] = "conn_open",
	[DBTAP_CNT_CONN_CLOSE] = "conn_close",
	[DBTAP_CNT_UNDECODABLE] = "undecodable",
	[DBTAP_CNT_ENCRYPTED] = "encrypted",
	[DBTAP_CNT_DROP_SAMPLE_RB] = "drop.sample_ringbuf",
	[DBTAP_CNT_DROP_TEXT_RB] = "drop.text_ringbuf",
	[DBTAP_CNT_DROP_CONN_RB] = "drop.conn_ringbuf",
	[DBTAP_CNT_DROP_PROC_RB] = "drop.proc_ringbuf",
	[DBTAP_CNT_DROP_AGG_FULL] = "drop.agg_full",
	[DBTAP_CNT_DROP_ERR_FULL] = "drop.err_full",
	[DBTAP_CNT_DROP_CONN_FULL] = "drop.conn_full",
	[DBTAP_CNT_DROP_STMT_FULL] = "drop.stmt_full",
	[DBTAP_CNT_DROP_PIPELINE] = "drop.pipeline",
	[DBTAP_CNT_DROP_READ] = "drop.read",
	[DBTAP_CNT_DROP_SYSCALL] = "drop.syscall",
	[DBTAP_CNT_DROP_PROC_FULL] = "drop.proc_full",
	[DBTAP_CNT_DESYNC] = "desync",
	[DBTAP_CNT_ABORTED] = "aborted",
	[DBTAP_CNT_DROP_REASM_FULL] = "drop.reasm_full",
	[DBTAP_CNT_COMPRESSED] = "compressed",
};

/* Name of counter @c as exported; "" for a value outside the enum or one not named yet. */
const char *dbtap_counter_name(enum dbtap_counter c)
{
	if ((unsigned int)c >= DBTAP_CNT_MAX || !counter_names[c])
		return "";
	return counter_names[c];
}

/* db.system.name values (OpenTelemetry semantic conventions), indexed by enum dbtap_system. */
static const char *const system_names[DBTAP_SYS_MAX] = {
	[DBTAP_SYS_POSTGRESQL] = "postgresql", [DBTAP_SYS_MYSQL] = "mysql",
	[DBTAP_SYS_MARIADB] = "mariadb",       [DBTAP_SYS_REDIS] = "redis",
	[DBTAP_SYS_MONGODB] = "mongodb",
};

/* db.system.name of @s; "" for DBTAP_SYS_UNKNOWN and values outside the enum. */
const char *dbtap_system_name(enum dbtap_system s)
{
	if ((unsigned int)s >= DBTAP_SYS_MAX || !system_names[s])
		return "";
	return system_names[s];
}

double dbtap_series_percentile(const struct dbtap_series *s, double q)
{
	double v = dbtap_hist_percentile(s->hist, q);

	if (s->max_s > 0 && s->min_s <= s->max_s) {
		if (v < s->min_s)
			v = s->min_s;
		if (v > s->max_s)
			v = s->max_s;
	}
	return v;
}
