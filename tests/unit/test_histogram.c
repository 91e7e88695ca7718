// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_histogram.c - bucket bounds, interpolated percentiles and exported names
 * (userspace/histogram.c) against dbtap_hist_bucket() and exact distributions.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "userspace/series.h"

#define NS_PER_US     1000ULL
#define NS_PER_MS     1000000ULL
#define NS_PER_S      1000000000ULL
#define LAST_BUCKET   (DBTAP_HIST_BUCKETS - 1)
#define PCT_TOLERANCE 0.05 /* the task's bound on percentile error */

/* cmocka 1.1.5 has no assert_double_equal */
#define assert_near(got, want, eps)                                            \
	do {                                                                   \
		double got_ = (got), want_ = (want);                           \
		if (!(fabs(got_ - want_) <= (eps)))                            \
			fail_msg("%s = %.17g, want %.17g", #got, got_, want_); \
	} while (0)

/* ---- deterministic random numbers (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1): never 0, so log() is safe. */
static double rng_unit(void)
{
	return ((double)(rng_next() >> 11) + 0.5) / (double)(1ULL << 53);
}

/* ---- bucket bounds ---- */

static void test_bounds_known_values(void **state)
{
	assert_int_equal(dbtap_hist_bucket_lower_ns(0), 0);
	assert_int_equal(dbtap_hist_bucket_upper_ns(0), 64);
	assert_int_equal(dbtap_hist_bucket_lower_ns(1), 64);
	assert_int_equal(dbtap_hist_bucket_lower_ns(15), 960);
	assert_int_equal(dbtap_hist_bucket_upper_ns(15), 1024);
	assert_int_equal(dbtap_hist_bucket_lower_ns(16), 1024);
	assert_int_equal(dbtap_hist_bucket_upper_ns(16), 1088);
	assert_int_equal(dbtap_hist_bucket_lower_ns(32), 2048);
	assert_int_equal(dbtap_hist_bucket_upper_ns(32), 2176);
	assert_int_equal(dbtap_hist_bucket_lower_ns(431), (1ULL << 35) + 15 * (1ULL << 31));
	assert_int_equal(dbtap_hist_bucket_upper_ns(431), 1ULL << 36);
	/* the open-ended last bucket: [2^36, cap 2^37) */
	assert_int_equal(dbtap_hist_bucket_lower_ns(LAST_BUCKET), 1ULL << 36);
	assert_int_equal(dbtap_hist_bucket_upper_ns(LAST_BUCKET), 1ULL << 37);
	/* past the end: treated as the last bucket */
	assert_int_equal(dbtap_hist_bucket_lower_ns(LAST_BUCKET + 1), 1ULL << 36);
	assert_int_equal(dbtap_hist_bucket_upper_ns(UINT32_MAX), 1ULL << 37);
}

static void test_bounds_monotonic_and_contiguous(void **state)
{
	uint32_t i;

	for (i = 0; i < DBTAP_HIST_BUCKETS; i++) {
		uint64_t lo = dbtap_hist_bucket_lower_ns(i), hi = dbtap_hist_bucket_upper_ns(i);

		assert_true(lo < hi);
		if (i + 1 < DBTAP_HIST_BUCKETS)
			assert_int_equal(hi, dbtap_hist_bucket_lower_ns(i + 1));
		/* both ends map back to this bucket */
		assert_int_equal(dbtap_hist_bucket(lo), i);
		if (i != LAST_BUCKET)
			assert_int_equal(dbtap_hist_bucket(hi - 1), i);
		/* log-linear buckets are at most 1/16 of their lower bound wide */
		if (i == LAST_BUCKET)
			assert_int_equal(hi, 2 * lo);
		else if (i >= DBTAP_HIST_LINEAR)
			assert_true((hi - lo) * DBTAP_HIST_SUB <= lo);
		else
			assert_int_equal(hi - lo, 64);
	}
}

static void assert_value_in_its_bucket(uint64_t ns)
{
	uint32_t b = dbtap_hist_bucket(ns);

	assert_true(b < DBTAP_HIST_BUCKETS);
	if (dbtap_hist_bucket_lower_ns(b) > ns)
		fail_msg("ns %llu in bucket %u below lower %llu", (unsigned long long)ns, b,
			 (unsigned long long)dbtap_hist_bucket_lower_ns(b));
	if (b != LAST_BUCKET && dbtap_hist_bucket_upper_ns(b) <= ns)
		fail_msg("ns %llu in bucket %u at/above upper %llu", (unsigned long long)ns, b,
			 (unsigned long long)dbtap_hist_bucket_upper_ns(b));
}

static void test_bounds_contain_their_values(void **state)
{
	uint64_t ns;
	int e, i;

	/* every value up to 2^22 ns (4.2 ms): the linear range and 12 exponential ranges */
	for (ns = 0; ns < (1ULL << 22); ns++)
		assert_value_in_its_bucket(ns);
	/* around every power of two and every sub-bucket edge above that, up to 2^40 */
	for (e = 22; e <= 40; e++) {
		for (i = 0; i < DBTAP_HIST_SUB; i++) {
			uint64_t edge = (1ULL << e) + ((uint64_t)i << (e - DBTAP_HIST_SUB_BITS));

			for (ns = edge - 300; ns <= edge + 300; ns++)
				assert_value_in_its_bucket(ns);
		}
	}
	/* a million values spread log-uniformly over 1 ns .. 2^38 ns */
	rng_state = 7;
	for (i = 0; i < 1000000; i++)
		assert_value_in_its_bucket((uint64_t)exp2(rng_unit() * 38.0));
	/* everything beyond the cap still lands in the last bucket */
	assert_int_equal(dbtap_hist_bucket(1ULL << 37), LAST_BUCKET);
	assert_int_equal(dbtap_hist_bucket(UINT64_MAX), LAST_BUCKET);
}

/* ---- percentiles: exact small cases ---- */

static void test_percentile_empty_is_zero(void **state)
{
	static uint32_t hist[DBTAP_HIST_BUCKETS];

	assert_true(dbtap_hist_percentile(hist, 0.0) == 0.0);
	assert_true(dbtap_hist_percentile(hist, 0.5) == 0.0);
	assert_true(dbtap_hist_percentile(hist, 0.99) == 0.0);
	assert_true(dbtap_hist_percentile(hist, 1.0) == 0.0);
}

static void test_percentile_interpolation_exact(void **state)
{
	uint32_t hist[DBTAP_HIST_BUCKETS] = {0};

	/* one value in [1024, 1088): its slice's middle, 1056 ns, for any q */
	hist[16] = 1;
	assert_near(dbtap_hist_percentile(hist, 0.5), 1056e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, 0.0), 1056e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, 1.0), 1056e-9, 1e-15);

	/* two values: rank 1 in bucket 16, rank 2 in bucket 32 = [2048, 2176) */
	hist[32] = 1;
	assert_near(dbtap_hist_percentile(hist, 0.5), 1056e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, 0.51), 2112e-9, 1e-15);

	/* four values in one bucket [0, 64): ranks at 8, 24, 40, 56 ns */
	memset(hist, 0, sizeof(hist));
	hist[0] = 4;
	assert_near(dbtap_hist_percentile(hist, 0.25), 8e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, 0.5), 24e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, 0.75), 40e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, 0.76), 56e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, 1.0), 56e-9, 1e-15);
	/* q clamped to [0, 1]; NaN counts as 0 */
	assert_near(dbtap_hist_percentile(hist, -3.0), 8e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, 7.0), 56e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, NAN), 8e-9, 1e-15);
}

static void test_percentile_rank_rounding(void **state)
{
	uint32_t hist[DBTAP_HIST_BUCKETS] = {0};

	/* 0.55 * 100 is 55.00000000000001 in doubles: the nearest rank must still be 55 */
	hist[0] = 55;
	hist[1] = 45;
	assert_near(dbtap_hist_percentile(hist, 0.55), 64 * 54.5 / 55 * 1e-9, 1e-15);
	/* 0.56 * 100: rank 56, the first value of bucket 1 = [64, 128) */
	assert_near(dbtap_hist_percentile(hist, 0.56), (64 + 64 * 0.5 / 45) * 1e-9, 1e-15);
	/* 0.07 * 100 is 7.000000000000001 */
	memset(hist, 0, sizeof(hist));
	hist[0] = 7;
	hist[1] = 93;
	assert_near(dbtap_hist_percentile(hist, 0.07), 64 * 6.5 / 7 * 1e-9, 1e-15);
	/* exact products: 0.9 * 10 = rank 9 */
	memset(hist, 0, sizeof(hist));
	hist[0] = 9;
	hist[1] = 1;
	assert_near(dbtap_hist_percentile(hist, 0.9), 64 * 8.5 / 9 * 1e-9, 1e-15);
	assert_near(dbtap_hist_percentile(hist, 0.91), (64 + 32) * 1e-9, 1e-15);
}

static void test_percentile_large_counts(void **state)
{
	uint32_t hist[DBTAP_HIST_BUCKETS] = {0};
	double p;

	/* counts summing past 2^32 must not wrap */
	hist[16] = UINT32_MAX;
	hist[LAST_BUCKET] = UINT32_MAX;
	p = dbtap_hist_percentile(hist, 0.5);
	assert_true(p >= 1024e-9 && p < 1088e-9);
	p = dbtap_hist_percentile(hist, 1.0);
	assert_true(p >= (double)(1ULL << 36) / 1e9 && p < (double)(1ULL << 37) / 1e9);
}

/* ---- percentiles against exact distributions ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of @n sorted values: the ceil(permille * n / 1000)-th smallest. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, unsigned int permille)
{
	size_t rank = (permille * n + 999) / 1000;

	return sorted[rank ? rank - 1 : 0];
}

/* Bucket @vals, then check p50/p90/p99 against the sorted values within PCT_TOLERANCE. */
static void check_distribution(const char *name, uint64_t *vals, size_t n)
{
	static const unsigned int permilles[] = {500, 900, 990};
	uint32_t *hist = calloc(DBTAP_HIST_BUCKETS, sizeof(*hist));
	size_t i;

	assert_non_null(hist);
	for (i = 0; i < n; i++)
		hist[dbtap_hist_bucket(vals[i])]++;
	qsort(vals, n, sizeof(*vals), cmp_u64);
	for (i = 0; i < sizeof(permilles) / sizeof(permilles[0]); i++) {
		double exact = (double)exact_percentile(vals, n, permilles[i]) / 1e9;
		double got = dbtap_hist_percentile(hist, permilles[i] / 1000.0);
		double err = fabs(got - exact) / exact;

		if (err > PCT_TOLERANCE)
			fail_msg("%s p%u: got %.9g s, exact %.9g s, error %.2f%%", name,
				 permilles[i] / 10, got, exact, err * 100);
	}
	free(hist);
}

static void test_dist_uniform(void **state)
{
	enum { N = 10000 };
	static uint64_t vals[N];
	size_t i;

	/* 1, 2, ..., 10000 µs */
	for (i = 0; i < N; i++)
		vals[i] = (i + 1) * NS_PER_US;
	check_distribution("uniform 1..10000us", vals, N);
}

static void test_dist_constant(void **state)
{
	enum { N = 1000 };
	static uint64_t vals[N];
	size_t i;

	for (i = 0; i < N; i++)
		vals[i] = 50 * NS_PER_MS;
	check_distribution("constant 50ms", vals, N);
}

static void test_dist_bimodal(void **state)
{
	enum { N = 20000 };
	static uint64_t vals[N];
	size_t i;

	/* 70% fast (150..250 µs), 30% slow (60..100 ms), interleaved */
	rng_state = 42;
	for (i = 0; i < N; i++) {
		if (i % 10 < 7)
			vals[i] = 150 * NS_PER_US + rng_next() % (100 * NS_PER_US);
		else
			vals[i] = 60 * NS_PER_MS + rng_next() % (40 * NS_PER_MS);
	}
	check_distribution("bimodal 200us/80ms", vals, N);
}

static void test_dist_lognormal(void **state)
{
	enum { N = 100000 };
	static uint64_t vals[N];
	const double median_ns = 2e6, sigma = 1.0;
	size_t i;

	/* Box-Muller normal, exponentiated: median 2 ms, sigma 1 */
	rng_state = 12345;
	for (i = 0; i < N; i++) {
		double z = sqrt(-2.0 * log(rng_unit())) * cos(2.0 * M_PI * rng_unit());

		vals[i] = (uint64_t)(median_ns * exp(sigma * z));
	}
	check_distribution("log-normal 2ms", vals, N);
}

static void test_dist_wide_span(void **state)
{
	enum { N = 100000 };
	static uint64_t vals[N];
	const double lo_ns = 100, hi_ns = 60e9;
	size_t i;

	/* log-uniform over 100 ns .. 60 s, with both ends present */
	rng_state = 99;
	for (i = 0; i < N; i++)
		vals[i] = (uint64_t)(lo_ns * pow(hi_ns / lo_ns, rng_unit()));
	vals[0] = 100;
	vals[1] = 60 * NS_PER_S;
	check_distribution("log-uniform 100ns..60s", vals, N);
}

/* ---- names ---- */

static void test_counter_names(void **state)
{
	int c, d;

	assert_string_equal(dbtap_counter_name(DBTAP_CNT_EVENTS), "events");
	assert_string_equal(dbtap_counter_name(DBTAP_CNT_OPS), "ops");
	assert_string_equal(dbtap_counter_name(DBTAP_CNT_UNDECODABLE), "undecodable");
	assert_string_equal(dbtap_counter_name(DBTAP_CNT_DROP_SAMPLE_RB), "drop.sample_ringbuf");
	assert_string_equal(dbtap_counter_name(DBTAP_CNT_DROP_PROC_FULL), "drop.proc_full");
	assert_string_equal(dbtap_counter_name(DBTAP_CNT_ABORTED), "aborted");
	assert_string_equal(dbtap_counter_name(DBTAP_CNT_DROP_REASM_FULL), "drop.reasm_full");
	assert_string_equal(dbtap_counter_name(DBTAP_CNT_MAX), "");
	assert_string_equal(dbtap_counter_name((enum dbtap_counter) - 1), "");
	/* every counter named, names unique, and "drop." exactly on the DROP_* counters (numbers
	 * only grow, so later drops are appended after the first range) */
	for (c = 0; c < DBTAP_CNT_MAX; c++) {
		const char *name = dbtap_counter_name(c);
		bool is_drop = (c >= DBTAP_CNT_DROP_SAMPLE_RB && c <= DBTAP_CNT_DROP_PROC_FULL) ||
			       c == DBTAP_CNT_DROP_REASM_FULL;

		assert_true(name[0] != '\0');
		assert_int_equal(strncmp(name, "drop.", 5) == 0, is_drop);
		for (d = 0; d < c; d++)
			assert_string_not_equal(name, dbtap_counter_name(d));
	}
}

static void test_system_names(void **state)
{
	assert_string_equal(dbtap_system_name(DBTAP_SYS_POSTGRESQL), "postgresql");
	assert_string_equal(dbtap_system_name(DBTAP_SYS_MYSQL), "mysql");
	assert_string_equal(dbtap_system_name(DBTAP_SYS_MARIADB), "mariadb");
	assert_string_equal(dbtap_system_name(DBTAP_SYS_REDIS), "redis");
	assert_string_equal(dbtap_system_name(DBTAP_SYS_MONGODB), "mongodb");
	assert_string_equal(dbtap_system_name(DBTAP_SYS_UNKNOWN), "");
	assert_string_equal(dbtap_system_name(DBTAP_SYS_MAX), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds_known_values),
		cmocka_unit_test(test_bounds_monotonic_and_contiguous),
		cmocka_unit_test(test_bounds_contain_their_values),
		cmocka_unit_test(test_percentile_empty_is_zero),
		cmocka_unit_test(test_percentile_interpolation_exact),
		cmocka_unit_test(test_percentile_rank_rounding),
		cmocka_unit_test(test_percentile_large_counts),
		cmocka_unit_test(test_dist_uniform),
		cmocka_unit_test(test_dist_constant),
		cmocka_unit_test(test_dist_bimodal),
		cmocka_unit_test(test_dist_lognormal),
		cmocka_unit_test(test_dist_wide_span),
		cmocka_unit_test(test_counter_names),
		cmocka_unit_test(test_system_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
