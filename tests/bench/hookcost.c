/*
 * hookcost.c - `make bench-hooks`: what a BPF program on the socket tracepoints
 * (sock_recv_length, sock_send_length) costs per syscall, in parts. A loop of send()+recv() of
 * 64 bytes on a connected loopback pair runs with nothing attached, with an empty program, with
 * dbtap's PID filter (process untracked) and with the tracked path up to decoding
 * (tests/bench/hookcost.bpf.c), each with the kernel's BPF statistics off and on. Rounds of
 * interleaved slices in rotating order cancel the machine's drift; a fast figure per slice
 * (a low quantile of short chunks) sets aside the moments another guest or process slowed the
 * CPU. Prints a table and writes a JSON file (tests/bench/README.md). Needs root.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cjson/cJSON.h>

#include "hookcost.skel.h"

#define DEFAULT_ITERATIONS 200000
#define DEFAULT_ROUNDS	   7
#define DEFAULT_SLICES	   10
#define MAX_ROUNDS	   1000
#define MAX_SLICES	   1000
#define WARMUP_DIVISOR	   20  /* warm-up pairs before each timed slice: its pairs / this */
#define CHUNK_PAIRS	   50  /* pairs per timed chunk inside a slice, for the fast figure */
#define FAST_QUANTILE	   0.1 /* the fast figure of a slice: this quantile of its chunks */
#define MSG_BYTES	   64  /* bytes per send() and recv() */
#define NS_PER_S	   1000000000LL
#define STATS_SYSCTL	   "/proc/sys/kernel/bpf_stats_enabled"
#define RESULTS_DIR	   "tests/bench/results"
#define TP_RECV		   "sock_recv_length"
#define TP_SEND		   "sock_send_length"
#define LINE_MAX_LEN	   512
#define NAME_MAX_LEN	   64

/* ---- configurations ---- */

enum variant {
	VARIANT_NONE = 0,    /* nothing attached */
	VARIANT_EMPTY = 1,   /* (e) return 0 */
	VARIANT_FILTER = 2,  /* (f) PID bitmap test, process not in it */
	VARIANT_TRACKED = 3, /* (t) PID bitmap test passed, then the steps before decoding */
	VARIANT_MAX,
};

static const char *const variant_names[VARIANT_MAX] = {"none", "empty", "filter", "tracked"};

enum hook_dir { HOOK_RECV = 0, HOOK_SEND = 1, HOOK_DIRS };

static const char *const dir_names[HOOK_DIRS] = {"recv", "send"};

/* Configuration c is variant c / 2, statistics on when c is odd: none, none+stats, empty, ... */
#define N_CONFIGS (VARIANT_MAX * 2)

static enum variant config_variant(int c)
{
	return (enum variant)(c / 2);
}

static bool config_stats(int c)
{
	return c % 2;
}

static void config_name(int c, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", variant_names[config_variant(c)],
		 config_stats(c) ? "+stats" : "");
}

enum socket_kind { SOCKET_TCP, SOCKET_UNIX };

struct options {
	long iterations; /* send+recv pairs per configuration per round */
	int rounds;
	int slices; /* a round cycles through the configurations this many times */
	int cpu;    /* -1: the last CPU this process may run on */
	enum socket_kind socket;
	const char *out;
};

/* What one configuration gave in one round, summed over the round's slices. */
struct sample {
	int64_t wall_ns;	 /* wall time of the timed loops */
	int64_t cpu_ns;		 /* this thread's CPU time during them */
	__u64 runs[HOOK_DIRS];	 /* kernel run_cnt deltas (statistics on only) */
	__u64 run_ns[HOOK_DIRS]; /* kernel run_time_ns deltas (statistics on only) */
	bool stats_leak;	 /* statistics found on during a statistics-off slice */
	int foreign_hooks;	 /* most programs of others seen on the two tracepoints */
};

struct bench {
	struct options opt;
	struct hookcost_bpf *skel;
	struct bpf_program *progs[VARIANT_MAX][HOOK_DIRS]; /* NULL for VARIANT_NONE */
	__u32 prog_ids[VARIANT_MAX][HOOK_DIRS];
	int fd_send, fd_recv, fd_listen;
	__u32 tgid;
	long short_recvs; /* recv() calls that returned fewer than MSG_BYTES */
	int stats_at_start;
	struct sample *samples; /* [round * N_CONFIGS + config] */
	double *slice_fast;	/* [(round * slices + slice) * N_CONFIGS + config]: fast ns/pair */
	double *chunk_ns;	/* [chunk] ns per pair of the chunks of the slice being timed */
};

/* ---- small helpers ---- */

static int64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int read_stats_sysctl(void)
{
	FILE *f = fopen(STATS_SYSCTL, "r");
	int v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * Quantile @q (0..1, linear between neighbours) of the @n values of @v that are not NAN; NAN
 * when there are none. @v is not changed.
 */
static double quantile(const double *v, long n, double q)
{
	double *tmp = malloc((n ? n : 1) * sizeof(*tmp)), pos, m = NAN;
	long k = 0, i, lo;

	if (!tmp)
		return NAN;
	for (i = 0; i < n; i++)
		if (!isnan(v[i]))
			tmp[k++] = v[i];
	if (k) {
		qsort(tmp, k, sizeof(*tmp), cmp_double);
		pos = q * (k - 1);
		lo = (long)pos;
		m = lo + 1 < k ? tmp[lo] + (pos - lo) * (tmp[lo + 1] - tmp[lo]) : tmp[lo];
	}
	free(tmp);
	return m;
}

static double median(const double *v, long n)
{
	return quantile(v, n, 0.5);
}

static void min_max(const double *v, long n, double *ret_min, double *ret_max)
{
	long i;

	*ret_min = INFINITY;
	*ret_max = -INFINITY;
	for (i = 0; i < n; i++) {
		if (v[i] < *ret_min)
			*ret_min = v[i];
		if (v[i] > *ret_max)
			*ret_max = v[i];
	}
}

/* ---- sockets ---- */

static int set_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ? -errno : 0;
}

/* A connected loopback TCP pair (TCP_NODELAY on both ends), or a unix stream socketpair. */
static int open_pair(struct bench *b)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	int sv[2];

	if (b->opt.socket == SOCKET_UNIX) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			return -errno;
		b->fd_send = sv[0];
		b->fd_recv = sv[1];
		return 0;
	}
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	b->fd_listen = socket(AF_INET, SOCK_STREAM, 0);
	if (b->fd_listen < 0 || bind(b->fd_listen, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(b->fd_listen, 1) || getsockname(b->fd_listen, (struct sockaddr *)&addr, &len))
		return -errno;
	b->fd_send = socket(AF_INET, SOCK_STREAM, 0);
	if (b->fd_send < 0 || connect(b->fd_send, (struct sockaddr *)&addr, sizeof(addr)))
		return -errno;
	b->fd_recv = accept(b->fd_listen, NULL, NULL);
	if (b->fd_recv < 0)
		return -errno;
	if (set_nodelay(b->fd_send) || set_nodelay(b->fd_recv))
		return -errno;
	return 0;
}

/* @n times send() of MSG_BYTES on one end and recv() of them on the other. */
static int ping_loop(struct bench *b, long n)
{
	char buf[MSG_BYTES];
	long i;

	memset(buf, 'q', sizeof(buf));
	for (i = 0; i < n; i++) {
		ssize_t got = 0, r;

		if (send(b->fd_send, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
			return -EIO;
		while (got < (ssize_t)sizeof(buf)) {
			r = recv(b->fd_recv, buf + got, sizeof(buf) - got, 0);
			if (r <= 0)
				return r ? -errno : -EPIPE;
			if (got == 0 && r < (ssize_t)sizeof(buf))
				b->short_recvs++;
			got += r;
		}
	}
	return 0;
}

/* ---- BPF ---- */

static int prog_stats(struct bpf_program *p, __u64 *ret_cnt, __u64 *ret_ns)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len))
		return -errno;
	*ret_cnt = info.run_cnt;
	*ret_ns = info.run_time_ns;
	return 0;
}

static bool prog_is_ours(const struct bench *b, __u32 id)
{
	int v, d;

	for (v = 0; v < VARIANT_MAX; v++)
		for (d = 0; d < HOOK_DIRS; d++)
			if (b->prog_ids[v][d] == id)
				return true;
	return false;
}

/* Programs of others attached to sock_recv_length or sock_send_length right now. */
static int count_foreign_hooks(const struct bench *b)
{
	__u32 id = 0;
	int n = 0;

	while (!bpf_link_get_next_id(id, &id)) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		char tp[NAME_MAX_LEN] = "";
		int fd = bpf_link_get_fd_by_id(id);

		if (fd < 0)
			continue;
		info.raw_tracepoint.tp_name = (__u64)(unsigned long)tp;
		info.raw_tracepoint.tp_name_len = sizeof(tp);
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    info.type == BPF_LINK_TYPE_RAW_TRACEPOINT &&
		    (!strcmp(tp, TP_RECV) || !strcmp(tp, TP_SEND)) &&
		    !prog_is_ours(b, info.prog_id))
			n++;
		close(fd);
	}
	return n;
}

/* Put this process in the PID bitmap (@on) or take it out. */
static int set_tracked(struct bench *b, bool on)
{
	__u32 word = b->tgid >> 6;
	__u64 bits = on ? 1ULL << (b->tgid & 63) : 0;

	return bpf_map__update_elem(b->skel->maps.tracked, &word, sizeof(word), &bits, sizeof(bits),
				    BPF_ANY);
}

static int load(struct bench *b)
{
	struct hookcost_bpf *s;
	int v, d, err;

	s = hookcost_bpf__open_and_load();
	if (!s)
		return -errno;
	b->skel = s;
	b->progs[VARIANT_EMPTY][HOOK_RECV] = s->progs.hook_empty_recv;
	b->progs[VARIANT_EMPTY][HOOK_SEND] = s->progs.hook_empty_send;
	b->progs[VARIANT_FILTER][HOOK_RECV] = s->progs.hook_filter_recv;
	b->progs[VARIANT_FILTER][HOOK_SEND] = s->progs.hook_filter_send;
	b->progs[VARIANT_TRACKED][HOOK_RECV] = s->progs.hook_tracked_recv;
	b->progs[VARIANT_TRACKED][HOOK_SEND] = s->progs.hook_tracked_send;
	for (v = VARIANT_EMPTY; v < VARIANT_MAX; v++) {
		for (d = 0; d < HOOK_DIRS; d++) {
			struct bpf_prog_info info = {};
			__u32 len = sizeof(info);

			err = bpf_obj_get_info_by_fd(bpf_program__fd(b->progs[v][d]), &info, &len);
			if (err)
				return -errno;
			b->prog_ids[v][d] = info.id;
		}
	}
	return 0;
}

/* ---- measuring ---- */

/*
 * One slice of configuration @c: attach its pair of programs, enable the statistics if asked,
 * warm up, time @pairs send+recv pairs in chunks of CHUNK_PAIRS, and add what was seen to
 * @acc. Everything attached or enabled here is undone before returning. *@ret_fast: the
 * slice's fast figure, the FAST_QUANTILE of its chunks' ns per pair (the machine's speed
 * varies from one millisecond to the next; this keeps the time it ran at full speed).
 */
static int measure_slice(struct bench *b, int c, long pairs, struct sample *acc, double *ret_fast)
{
	enum variant v = config_variant(c);
	bool stats = config_stats(c);
	struct bpf_link *links[HOOK_DIRS] = {};
	__u64 cnt0[HOOK_DIRS] = {}, ns0[HOOK_DIRS] = {}, cnt1, ns1;
	int stats_fd = -1, err = 0, d, foreign;
	int64_t t0, t1, t, cpu0, cpu1;
	long done, chunks = 0;

	err = set_tracked(b, v == VARIANT_TRACKED);
	if (err)
		return err;
	for (d = 0; v != VARIANT_NONE && d < HOOK_DIRS; d++) {
		links[d] = bpf_program__attach(b->progs[v][d]);
		if (!links[d]) {
			err = -errno;
			fprintf(stderr, "hookcost: cannot attach %s: %s\n",
				bpf_program__name(b->progs[v][d]), strerror(-err));
			goto out;
		}
	}
	if (stats) {
		stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (stats_fd < 0) {
			err = stats_fd;
			fprintf(stderr, "hookcost: cannot enable BPF statistics: %s\n",
				strerror(-err));
			goto out;
		}
	}
	err = ping_loop(b, pairs / WARMUP_DIVISOR);
	if (err)
		goto out;
	foreign = count_foreign_hooks(b);
	if (!stats && read_stats_sysctl() > 0)
		acc->stats_leak = true;
	for (d = 0; stats && v != VARIANT_NONE && d < HOOK_DIRS; d++) {
		err = prog_stats(b->progs[v][d], &cnt0[d], &ns0[d]);
		if (err)
			goto out;
	}

	cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	t0 = clock_ns(CLOCK_MONOTONIC);
	t1 = t0;
	for (done = 0; done < pairs && !err; done += CHUNK_PAIRS) {
		long m = pairs - done < CHUNK_PAIRS ? pairs - done : CHUNK_PAIRS;

		err = ping_loop(b, m);
		t = clock_ns(CLOCK_MONOTONIC);
		b->chunk_ns[chunks++] = (double)(t - t1) / (double)m;
		t1 = t;
	}
	cpu1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	if (err)
		goto out;

	for (d = 0; stats && v != VARIANT_NONE && d < HOOK_DIRS; d++) {
		err = prog_stats(b->progs[v][d], &cnt1, &ns1);
		if (err)
			goto out;
		acc->runs[d] += cnt1 - cnt0[d];
		acc->run_ns[d] += ns1 - ns0[d];
	}
	if (!stats && read_stats_sysctl() > 0)
		acc->stats_leak = true;
	d = count_foreign_hooks(b); /* before or after the timed loop, the larger */
	if (d > foreign)
		foreign = d;
	if (foreign > acc->foreign_hooks)
		acc->foreign_hooks = foreign;
	acc->wall_ns += t1 - t0;
	acc->cpu_ns += cpu1 - cpu0;
	*ret_fast = quantile(b->chunk_ns, chunks, FAST_QUANTILE);
out:
	if (stats_fd >= 0)
		close(stats_fd);
	for (d = 0; d < HOOK_DIRS; d++)
		bpf_link__destroy(links[d]);
	return err;
}

/* Pairs in slice @s of a round: the iterations split evenly, the last slice takes the rest. */
static long slice_pairs(const struct options *o, int s)
{
	long each = o->iterations / o->slices;

	return s < o->slices - 1 ? each : o->iterations - each * (o->slices - 1);
}

/*
 * Round @r: @slices cycles, each measuring every configuration once; cycle k (= r * slices + s)
 * starts at configuration k mod N_CONFIGS, so every configuration takes every position.
 */
static int run_round(struct bench *b, int r)
{
	int s, i, err;

	for (s = 0; s < b->opt.slices; s++) {
		int k = r * b->opt.slices + s;

		for (i = 0; i < N_CONFIGS; i++) {
			int c = (i + k) % N_CONFIGS;
			char name[NAME_MAX_LEN];

			err = measure_slice(b, c, slice_pairs(&b->opt, s),
					    &b->samples[r * N_CONFIGS + c],
					    &b->slice_fast[(size_t)k * N_CONFIGS + c]);
			if (err) {
				config_name(c, name, sizeof(name));
				fprintf(stderr, "hookcost: measuring %s failed: %s\n", name,
					strerror(-err));
				return err;
			}
		}
	}
	return 0;
}

/* ---- summary of a configuration over the rounds ---- */

struct summary {
	double *pair, *cpu, *added; /* [round] */
	double *fast, *fast_added;  /* [round * slices + slice] */
	double *run_ns[HOOK_DIRS];  /* [round] */
	double pair_med, pair_min, pair_max, cpu_med, added_med, fast_med, fast_added_med;
	double run_ns_med[HOOK_DIRS], runs_per_pair[HOOK_DIRS];
	int stats_leaks, foreign_rounds;
};

static void summary_free(struct summary *s)
{
	int d;

	free(s->pair);
	free(s->cpu);
	free(s->added);
	free(s->fast);
	free(s->fast_added);
	for (d = 0; d < HOOK_DIRS; d++)
		free(s->run_ns[d]);
}

/*
 * Configuration @c over the rounds: ns per pair (wall time of its loops / iterations) and its
 * difference to the same round's "none"; the fast figure of its slices and their difference to
 * the "none" slice of the same cycle (medians over all slices); the kernel's run time per
 * program run.
 */
static int summarize(const struct bench *b, int c, struct summary *s)
{
	int r, d, k, R = b->opt.rounds, K = R * b->opt.slices;
	double n = b->opt.iterations;
	__u64 runs[HOOK_DIRS] = {};

	memset(s, 0, sizeof(*s));
	s->pair = calloc(R, sizeof(double));
	s->cpu = calloc(R, sizeof(double));
	s->added = calloc(R, sizeof(double));
	s->fast = calloc(K, sizeof(double));
	s->fast_added = calloc(K, sizeof(double));
	for (d = 0; d < HOOK_DIRS; d++)
		s->run_ns[d] = calloc(R, sizeof(double));
	if (!s->pair || !s->cpu || !s->added || !s->fast || !s->fast_added ||
	    !s->run_ns[HOOK_RECV] || !s->run_ns[HOOK_SEND]) {
		summary_free(s);
		return -ENOMEM;
	}
	for (r = 0; r < R; r++) {
		const struct sample *x = &b->samples[r * N_CONFIGS + c];
		const struct sample *none = &b->samples[r * N_CONFIGS + VARIANT_NONE * 2];

		s->pair[r] = x->wall_ns / n;
		s->cpu[r] = x->cpu_ns / n;
		s->added[r] = (x->wall_ns - none->wall_ns) / n;
		for (d = 0; d < HOOK_DIRS; d++) {
			s->run_ns[d][r] = x->runs[d] ? (double)x->run_ns[d] / x->runs[d] : NAN;
			runs[d] += x->runs[d];
		}
		s->stats_leaks += x->stats_leak;
		s->foreign_rounds += x->foreign_hooks > 0;
	}
	for (k = 0; k < K; k++) {
		s->fast[k] = b->slice_fast[(size_t)k * N_CONFIGS + c];
		s->fast_added[k] =
			s->fast[k] - b->slice_fast[(size_t)k * N_CONFIGS + VARIANT_NONE * 2];
	}
	s->pair_med = median(s->pair, R);
	min_max(s->pair, R, &s->pair_min, &s->pair_max);
	s->cpu_med = median(s->cpu, R);
	s->added_med = median(s->added, R);
	s->fast_med = median(s->fast, K);
	s->fast_added_med = median(s->fast_added, K);
	for (d = 0; d < HOOK_DIRS; d++) {
		s->run_ns_med[d] = median(s->run_ns[d], R);
		s->runs_per_pair[d] = config_stats(c) && config_variant(c) != VARIANT_NONE
					      ? (double)runs[d] / (n * R)
					      : NAN;
	}
	return 0;
}

/* ---- output ---- */

static void format_opt(char *buf, size_t len, double v, const char *fmt)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, fmt, v);
}

static const char *const socket_names[] = {"tcp", "unix"};

static int print_table(const struct bench *b, const char *kernel)
{
	int c;

	printf("hookcost: %s, %ld send+recv pairs of %d bytes per configuration per round in %d "
	       "slices, %d rounds, CPU %d, kernel %s\n",
	       b->opt.socket == SOCKET_TCP ? "loopback TCP" : "unix stream socketpair",
	       b->opt.iterations, MSG_BYTES, b->opt.slices, b->opt.rounds, b->opt.cpu, kernel);
	printf("%-14s %-22s %-8s %-8s %-8s %-9s %-9s %-5s\n", "config", "ns/pair [min-max]",
	       "added", "fast", "added", "recv/run", "send/run", "runs");
	for (c = 0; c < N_CONFIGS; c++) {
		char name[NAME_MAX_LEN], range[NAME_MAX_LEN], rn[NAME_MAX_LEN], sn[NAME_MAX_LEN],
			runs[NAME_MAX_LEN], added[NAME_MAX_LEN], fast_added[NAME_MAX_LEN];
		struct summary s;
		int err = summarize(b, c, &s);

		if (err)
			return err;
		config_name(c, name, sizeof(name));
		snprintf(range, sizeof(range), "%.0f [%.0f-%.0f]", s.pair_med, s.pair_min,
			 s.pair_max);
		snprintf(added, sizeof(added), "%+.0f", s.added_med);
		snprintf(fast_added, sizeof(fast_added), "%+.0f", s.fast_added_med);
		format_opt(rn, sizeof(rn), s.run_ns_med[HOOK_RECV], "%.1f");
		format_opt(sn, sizeof(sn), s.run_ns_med[HOOK_SEND], "%.1f");
		format_opt(runs, sizeof(runs),
			   s.runs_per_pair[HOOK_RECV] + s.runs_per_pair[HOOK_SEND], "%.3f");
		printf("%-14s %-22s %-8s %-8.0f %-8s %-9s %-9s %-5s%s%s\n", name, range, added,
		       s.fast_med, fast_added, rn, sn, runs,
		       s.stats_leaks ? " (statistics were on)" : "",
		       s.foreign_rounds ? " (other programs on the tracepoints)" : "");
		summary_free(&s);
	}
	printf("ns/pair: wall time of the configuration's loops / pairs, median [min-max] over "
	       "rounds; added: median over rounds of\n"
	       "(ns/pair - that round's none). fast: per slice the %d%% quantile of its %d-pair "
	       "chunks' ns/pair, median over\n"
	       "slices; added: median over slices of (fast - fast of the none slice of the same "
	       "cycle). recv/run, send/run:\n"
	       "the kernel's run_time_ns / run_cnt per program run (statistics on), median over "
	       "rounds. runs: program runs\n"
	       "per pair (2 = only this process's; more = other processes' socket calls).\n",
	       (int)(FAST_QUANTILE * 100), CHUNK_PAIRS);
	if (b->stats_at_start > 0)
		printf("warning: %s was %d before the start: the statistics-off rows are not "
		       "clean\n",
		       STATS_SYSCTL, b->stats_at_start);
	if (b->short_recvs)
		printf("warning: %ld recv() calls returned fewer than %d bytes (extra syscalls)\n",
		       b->short_recvs, MSG_BYTES);
	if (b->skel->bss->filter_passed || b->skel->bss->tracked_failures)
		printf("warning: filter_passed=%llu tracked_failures=%llu (both must be 0)\n",
		       (unsigned long long)b->skel->bss->filter_passed,
		       (unsigned long long)b->skel->bss->tracked_failures);
	return 0;
}

static void cpu_model(char *buf, size_t len)
{
	char line[LINE_MAX_LEN];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", strlen("model name")) || !colon)
			continue;
		colon += strspn(colon + 1, " \t") + 1;
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(buf, len, "%s", colon);
		break;
	}
	fclose(f);
}

/* `git rev-parse HEAD` of the current directory; false when there is none. */
static bool git_commit(char *buf, size_t len)
{
	FILE *p = popen("git rev-parse HEAD 2>/dev/null", "r");
	bool ok = false;

	if (!p)
		return false;
	if (fgets(buf, len, p)) {
		buf[strcspn(buf, "\n")] = '\0';
		ok = buf[0] != '\0';
	}
	if (pclose(p) != 0)
		ok = false;
	return ok;
}

/* A number, or null when @v is NAN. */
static cJSON *json_num(double v)
{
	return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

static cJSON *json_series(const double *v, int n)
{
	cJSON *a = cJSON_CreateArray();
	int i;

	for (i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, json_num(v[i]));
	return a;
}

static cJSON *json_config(const struct bench *b, int c)
{
	enum variant v = config_variant(c);
	cJSON *o, *x, *progs;
	char name[NAME_MAX_LEN];
	struct summary s;
	int d;

	if (summarize(b, c, &s))
		return NULL;
	o = cJSON_CreateObject();
	config_name(c, name, sizeof(name));
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "variant", variant_names[v]);
	cJSON_AddBoolToObject(o, "stats", config_stats(c));
	x = cJSON_AddObjectToObject(o, "ns_per_pair");
	cJSON_AddNumberToObject(x, "median", s.pair_med);
	cJSON_AddNumberToObject(x, "min", s.pair_min);
	cJSON_AddNumberToObject(x, "max", s.pair_max);
	cJSON_AddItemToObject(x, "rounds", json_series(s.pair, b->opt.rounds));
	x = cJSON_AddObjectToObject(o, "added_ns_vs_none");
	cJSON_AddNumberToObject(x, "median", s.added_med);
	cJSON_AddItemToObject(x, "rounds", json_series(s.added, b->opt.rounds));
	x = cJSON_AddObjectToObject(o, "fast_ns_per_pair");
	cJSON_AddNumberToObject(x, "median", s.fast_med);
	cJSON_AddItemToObject(x, "slices", json_series(s.fast, b->opt.rounds * b->opt.slices));
	x = cJSON_AddObjectToObject(o, "fast_added_ns_vs_none");
	cJSON_AddNumberToObject(x, "median", s.fast_added_med);
	cJSON_AddItemToObject(x, "slices",
			      json_series(s.fast_added, b->opt.rounds * b->opt.slices));
	x = cJSON_AddObjectToObject(o, "cpu_ns_per_pair");
	cJSON_AddNumberToObject(x, "median", s.cpu_med);
	cJSON_AddItemToObject(x, "rounds", json_series(s.cpu, b->opt.rounds));
	progs = cJSON_AddObjectToObject(o, "programs");
	for (d = 0; v != VARIANT_NONE && d < HOOK_DIRS; d++) {
		cJSON *p = cJSON_AddObjectToObject(progs, dir_names[d]);

		cJSON_AddStringToObject(p, "name", bpf_program__name(b->progs[v][d]));
		cJSON_AddItemToObject(p, "run_ns_per_run_median", json_num(s.run_ns_med[d]));
		cJSON_AddItemToObject(p, "run_ns_per_run_rounds",
				      json_series(s.run_ns[d], b->opt.rounds));
		cJSON_AddItemToObject(p, "runs_per_pair", json_num(s.runs_per_pair[d]));
	}
	cJSON_AddNumberToObject(o, "rounds_with_stats_on_unasked", s.stats_leaks);
	cJSON_AddNumberToObject(o, "rounds_with_other_programs", s.foreign_rounds);
	summary_free(&s);
	return o;
}

static int write_json(const struct bench *b, const char *path, const char *kernel,
		      const char *started)
{
	char cpu[LINE_MAX_LEN], commit[NAME_MAX_LEN], name[NAME_MAX_LEN];
	cJSON *root = cJSON_CreateObject(), *o, *a;
	char *text = NULL;
	FILE *f = NULL;
	int err = 0, c;

	if (!root)
		return -ENOMEM;
	cJSON_AddStringToObject(root, "tool", "hookcost");
	cJSON_AddStringToObject(root, "started_utc", started);
	o = cJSON_AddObjectToObject(root, "machine");
	cpu_model(cpu, sizeof(cpu));
	cJSON_AddStringToObject(o, "cpu_model", cpu);
	cJSON_AddNumberToObject(o, "nproc", sysconf(_SC_NPROCESSORS_ONLN));
	cJSON_AddStringToObject(root, "kernel", kernel);
	if (git_commit(commit, sizeof(commit)))
		cJSON_AddStringToObject(root, "git_commit", commit);
	else
		cJSON_AddNullToObject(root, "git_commit");
	o = cJSON_AddObjectToObject(root, "settings");
	cJSON_AddNumberToObject(o, "iterations", b->opt.iterations);
	cJSON_AddNumberToObject(o, "rounds", b->opt.rounds);
	cJSON_AddNumberToObject(o, "slices", b->opt.slices);
	cJSON_AddNumberToObject(o, "warmup_pairs_per_slice",
				b->opt.iterations / b->opt.slices / WARMUP_DIVISOR);
	cJSON_AddNumberToObject(o, "message_bytes", MSG_BYTES);
	cJSON_AddStringToObject(o, "socket", socket_names[b->opt.socket]);
	cJSON_AddNumberToObject(o, "cpu", b->opt.cpu);
	cJSON_AddNumberToObject(o, "bpf_stats_enabled_at_start", b->stats_at_start);
	a = cJSON_AddArrayToObject(o, "configurations");
	for (c = 0; c < N_CONFIGS; c++) {
		config_name(c, name, sizeof(name));
		cJSON_AddItemToArray(a, cJSON_CreateString(name));
	}
	cJSON_AddStringToObject(o, "order",
				"cycle k = round * slices + slice measures configurations[(k + i) "
				"mod 8] at position i");
	a = cJSON_AddArrayToObject(root, "results");
	for (c = 0; c < N_CONFIGS; c++) {
		cJSON *x = json_config(b, c);

		if (!x) {
			err = -ENOMEM;
			goto out;
		}
		cJSON_AddItemToArray(a, x);
	}
	o = cJSON_AddObjectToObject(root, "checks");
	cJSON_AddNumberToObject(o, "short_recvs", b->short_recvs);
	cJSON_AddNumberToObject(o, "filter_passed", b->skel->bss->filter_passed);
	cJSON_AddNumberToObject(o, "tracked_failures", b->skel->bss->tracked_failures);

	text = cJSON_Print(root);
	if (!text) {
		err = -ENOMEM;
		goto out;
	}
	f = fopen(path, "w");
	if (!f || fputs(text, f) == EOF || fputc('\n', f) == EOF) {
		err = -errno;
		goto out;
	}
out:
	if (f && fclose(f) && !err)
		err = -errno;
	free(text);
	cJSON_Delete(root);
	return err;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hookcost [--iterations N] [--rounds R] [--slices S] [--out PATH] [--cpu N] "
		"[--unix]\n"
		"Cost per syscall of BPF programs on the sock_recv_length/sock_send_length\n"
		"tracepoints: a send+recv loop with nothing attached, an empty program, dbtap's "
		"PID\n"
		"filter (untracked) and the tracked path up to decoding, statistics off and on.\n"
		"  --iterations N  send+recv pairs per configuration per round (default %d)\n"
		"  --rounds R      rounds of all %d configurations (default %d)\n"
		"  --slices S      a round cycles through the configurations S times, N/S pairs\n"
		"                  each, in rotating order (default %d; 1 = one loop each)\n"
		"  --out PATH      JSON results (default %s/hooks-<UTC timestamp>.json)\n"
		"  --cpu N         CPU to pin to (default: the last one allowed)\n"
		"  --unix          a unix stream socketpair instead of loopback TCP\n"
		"Needs root.\n",
		DEFAULT_ITERATIONS, N_CONFIGS, DEFAULT_ROUNDS, DEFAULT_SLICES, RESULTS_DIR);
}

/* A whole decimal number in [@min, @max] from @arg, or -EINVAL (said on stderr). */
static int parse_long(const char *opt, const char *arg, long min, long max, long *ret)
{
	char *end;

	errno = 0;
	*ret = strtol(arg, &end, 10);
	if (errno || end == arg || *end || *ret < min || *ret > max) {
		fprintf(stderr, "hookcost: bad %s '%s' (%ld-%ld)\n", opt, arg, min, max);
		return -EINVAL;
	}
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"iterations", required_argument, NULL, 'n'},
		{"rounds", required_argument, NULL, 'r'},
		{"slices", required_argument, NULL, 's'},
		{"out", required_argument, NULL, 'o'},
		{"cpu", required_argument, NULL, 'c'},
		{"unix", no_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	int opt, err = 0;
	long v;

	*o = (struct options){
		DEFAULT_ITERATIONS, DEFAULT_ROUNDS, DEFAULT_SLICES, -1, SOCKET_TCP, NULL};
	while (!err && (opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			err = parse_long("--iterations", optarg, 1, LONG_MAX, &o->iterations);
			break;
		case 'r':
			err = parse_long("--rounds", optarg, 1, MAX_ROUNDS, &v);
			o->rounds = v;
			break;
		case 's':
			err = parse_long("--slices", optarg, 1, MAX_SLICES, &v);
			o->slices = v;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'c':
			err = parse_long("--cpu", optarg, 0, CPU_SETSIZE - 1, &v);
			o->cpu = v;
			break;
		case 'u':
			o->socket = SOCKET_UNIX;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (err)
		return err;
	if (optind < argc) {
		fprintf(stderr, "hookcost: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->slices > o->iterations) {
		fprintf(stderr, "hookcost: --slices %d is more than --iterations %ld\n", o->slices,
			o->iterations);
		return -EINVAL;
	}
	return 0;
}

/* Pin to opt.cpu, or to the last CPU of the current affinity mask when it is -1. */
static int pin_cpu(struct options *o)
{
	cpu_set_t set;
	int i;

	if (o->cpu < 0) {
		if (sched_getaffinity(0, sizeof(set), &set))
			return -errno;
		for (i = CPU_SETSIZE - 1; i >= 0 && !CPU_ISSET(i, &set); i--)
			;
		o->cpu = i;
	}
	CPU_ZERO(&set);
	CPU_SET(o->cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, args);
}

int main(int argc, char **argv)
{
	struct bench b = {.fd_send = -1, .fd_recv = -1, .fd_listen = -1};
	char started[NAME_MAX_LEN], stamp[NAME_MAX_LEN], out[LINE_MAX_LEN];
	struct utsname uts;
	time_t now = time(NULL);
	struct tm tm;
	int err, r;

	if (parse_options(argc, argv, &b.opt))
		return 2;
	if (geteuid() != 0) {
		fprintf(stderr, "hookcost: needs root (loads and attaches BPF programs)\n");
		return 1;
	}
	gmtime_r(&now, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if (b.opt.out) {
		snprintf(out, sizeof(out), "%s", b.opt.out);
	} else {
		if (mkdir(RESULTS_DIR, 0755) && errno != EEXIST) {
			fprintf(stderr,
				"hookcost: cannot create %s: %s (run from the repository root, or "
				"give --out)\n",
				RESULTS_DIR, strerror(errno));
			return 1;
		}
		snprintf(out, sizeof(out), "%s/hooks-%s.json", RESULTS_DIR, stamp);
	}
	uname(&uts);
	b.tgid = getpid();
	b.stats_at_start = read_stats_sysctl();
	if (b.stats_at_start < 0)
		fprintf(stderr,
			"hookcost: cannot read %s: the statistics-off rows may not be clean\n",
			STATS_SYSCTL);
	else if (b.stats_at_start > 0)
		fprintf(stderr,
			"hookcost: %s is %d before the start: BPF statistics were on already, the "
			"statistics-off rows are not clean\n",
			STATS_SYSCTL, b.stats_at_start);
	b.samples = calloc((size_t)b.opt.rounds * N_CONFIGS, sizeof(*b.samples));
	b.slice_fast =
		calloc((size_t)b.opt.rounds * b.opt.slices * N_CONFIGS, sizeof(*b.slice_fast));
	/* the last slice is the longest */
	b.chunk_ns = calloc(slice_pairs(&b.opt, b.opt.slices - 1) / CHUNK_PAIRS + 1,
			    sizeof(*b.chunk_ns));
	if (!b.samples || !b.slice_fast || !b.chunk_ns) {
		err = -ENOMEM;
		goto out;
	}
	err = pin_cpu(&b.opt);
	if (err) {
		fprintf(stderr, "hookcost: cannot pin to CPU %d: %s\n", b.opt.cpu, strerror(-err));
		goto out;
	}
	libbpf_set_print(libbpf_quiet);
	err = load(&b);
	if (err) {
		fprintf(stderr,
			"hookcost: cannot load the programs of tests/bench/hookcost.bpf.c: %s "
			"(needs "
			"root, kernel BTF and tp_btf on sock_recv_length/sock_send_length, kernel "
			">= 6.3)\n",
			strerror(-err));
		goto out;
	}
	err = open_pair(&b);
	if (err) {
		fprintf(stderr, "hookcost: cannot open the socket pair: %s\n", strerror(-err));
		goto out;
	}
	for (r = 0; r < b.opt.rounds && !err; r++) {
		fprintf(stderr, "hookcost: round %d/%d\n", r + 1, b.opt.rounds);
		err = run_round(&b, r);
	}
	if (err)
		goto out;
	err = print_table(&b, uts.release);
	if (err)
		goto out;
	err = write_json(&b, out, uts.release, started);
	if (err)
		fprintf(stderr, "hookcost: cannot write %s: %s\n", out, strerror(-err));
	else
		printf("results: %s\n", out);
out:
	hookcost_bpf__destroy(b.skel);
	if (b.fd_send >= 0)
		close(b.fd_send);
	if (b.fd_recv >= 0)
		close(b.fd_recv);
	if (b.fd_listen >= 0)
		close(b.fd_listen);
	free(b.samples);
	free(b.slice_fast);
	free(b.chunk_ns);
	return err ? 1 : 0;
}
