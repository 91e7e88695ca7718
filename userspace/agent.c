// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * agent.c - the capture run. One thread: ring_buffer__poll() with a timeout that ends at the
 * next interval boundary; at each boundary the epoch is bumped, the maps are read into a
 * snapshot with the samples received meanwhile, and every output writes it. SIGINT and SIGTERM
 * are blocked in every thread and read from a signalfd polled next to the ring buffer, so a
 * signal that arrives just before the wait still ends it (a flag set by a handler would be seen
 * only at the next interval boundary).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture.skel.h"
#include "exporters/jsonl.h"
#include "exporters/otlp.h"
#include "exporters/table.h"
#include "userspace/agent.h"
#include "userspace/discovery.h"
#include "userspace/loader.h"
#include "userspace/store.h"

#define PROC_ROOT	 "/proc"
#define MAX_PROGS	 32
#define STOP_DRAIN_MS	 100 /* on stop, time left to hooks still running before the last read */
#define NS_PER_S	 1000000000LL
/* The sysctl's own value: 1 after `sysctl kernel.bpf_stats_enabled=1`. It does not count the
 * BPF_ENABLE_STATS fds that also turn the statistics on (ours or another tool's). */
#define BPF_STATS_SYSCTL "/proc/sys/kernel/bpf_stats_enabled"

struct agent {
	const struct dbtap_config *cfg;
	struct dbtap_loader loader;
	struct dbtap_store *store;
	struct ring_buffer *rb;
	struct dbtap_jsonl *jsonl;
	struct dbtap_table *table;
	struct dbtap_otlp *otlp;
	FILE *out;
	uint64_t counters_prev[DBTAP_CNT_MAX];
	uint64_t rb_events;
	struct dbtap_prog_stat progs[MAX_PROGS];
	uint64_t prog_prev_cnt[MAX_PROGS], prog_prev_ns[MAX_PROGS];
	size_t n_progs;
	double cpu_prev;
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool pid_wanted(const struct dbtap_config *cfg, pid_t pid)
{
	int i;

	if (!cfg->n_pids)
		return true;
	for (i = 0; i < cfg->n_pids; i++)
		if ((pid_t)cfg->pids[i] == pid)
			return true;
	return false;
}

/* Track an instance: main process first, so that backends forked from now on are covered by
 * the fork hook, then the backends found by a fresh scan. */
static void track_instance(struct agent *a, const struct dbtap_instance *inst)
{
	struct dbtap_instance fresh;
	int i, ret;

	dbtap_store_add_instance(a->store, inst);
	ret = dbtap_loader_track(&a->loader, inst->pid, inst->pid, inst->system, true, NULL, NULL);
	if (ret) {
		fprintf(stderr, "dbtap: cannot track %s PID %d: %s\n",
			dbtap_system_name(inst->system), inst->pid, strerror(-ret));
		return;
	}
	if (dbtap_discover_pid(PROC_ROOT, inst->pid, &fresh) != 0)
		return;
	for (i = 0; i < fresh.n_backends; i++) {
		const struct dbtap_backend *be = &fresh.backends[i];

		dbtap_store_add_name(a->store, be->database);
		dbtap_store_add_name(a->store, be->user);
		dbtap_loader_track(&a->loader, be->pid, inst->pid, inst->system, false,
				   be->database, be->user);
	}
	dbtap_instance_free(&fresh);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct dbtap_ev_hdr *h = data;

	a->rb_events++;
	if (size < sizeof(*h))
		return 0;
	switch (h->type) {
	case DBTAP_EV_QUERY_TEXT:
		if (size >= sizeof(struct dbtap_ev_text))
			dbtap_store_add_text(a->store, data);
		break;
	case DBTAP_EV_SAMPLE:
		if (size >= sizeof(struct dbtap_ev_sample))
			dbtap_store_add_sample(a->store, data);
		break;
	case DBTAP_EV_CONN_OPEN:
	case DBTAP_EV_CONN_CLOSE:
		if (size >= sizeof(struct dbtap_ev_conn))
			dbtap_store_add_conn(a->store, data);
		break;
	case DBTAP_EV_PROC_EXEC: {
		struct dbtap_instance inst;

		/* a server binary started: it becomes an instance once it is the main process */
		if (pid_wanted(a->cfg, h->tgid) &&
		    dbtap_discover_pid(PROC_ROOT, h->tgid, &inst) == 0) {
			track_instance(a, &inst);
			dbtap_instance_free(&inst);
		}
		break;
	}
	default:
		break;
	}
	return 0;
}

/* Agent CPU seconds (user+system) and RSS bytes from /proc/self. */
static void self_usage(double *ret_cpu, uint64_t *ret_rss)
{
	unsigned long utime = 0, stime = 0;
	long rss_pages = 0;
	char buf[1024], *p;
	FILE *f;

	*ret_cpu = 0;
	*ret_rss = 0;
	f = fopen("/proc/self/stat", "r");
	if (f) {
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
			       &stime);
		fclose(f);
	}
	*ret_cpu = (double)(utime + stime) / sysconf(_SC_CLK_TCK);
	f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%*d %ld", &rss_pages) != 1)
			rss_pages = 0;
		fclose(f);
	}
	*ret_rss = (uint64_t)rss_pages * sysconf(_SC_PAGESIZE);
}

/* Whether kernel.bpf_stats_enabled reads 1. */
static bool bpf_stats_sysctl_on(void)
{
	char buf[4] = "";
	FILE *f = fopen(BPF_STATS_SYSCTL, "r");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return buf[0] == '1';
}

static void read_self(struct agent *a, struct dbtap_self_stats *self)
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(a->loader.skel->maps.counters);
	struct bpf_program *prog;
	uint64_t *vals = calloc(ncpu > 0 ? ncpu : 1, sizeof(*vals));
	bool counted = false;
	uint32_t k;
	size_t n = 0;
	double cpu;

	for (k = 0; vals && k < DBTAP_CNT_MAX; k++) {
		uint64_t sum = 0;
		int c;

		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (c = 0; c < ncpu; c++)
			sum += vals[c];
		self->counters[k] = sum - a->counters_prev[k];
		a->counters_prev[k] = sum;
	}
	free(vals);
	bpf_object__for_each_program (prog, a->loader.skel->obj) {
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info);
		int pfd = bpf_program__fd(prog);

		if (pfd < 0 || n >= MAX_PROGS || bpf_obj_get_info_by_fd(pfd, &info, &len))
			continue;
		a->progs[n].name = bpf_program__name(prog);
		a->progs[n].run_cnt = info.run_cnt - a->prog_prev_cnt[n];
		a->progs[n].run_time_ns = info.run_time_ns - a->prog_prev_ns[n];
		a->prog_prev_cnt[n] = info.run_cnt;
		a->prog_prev_ns[n] = info.run_time_ns;
		counted |= a->progs[n].run_cnt > 0;
		n++;
	}
	self->progs = a->progs;
	self->n_progs = n;
	/* The kernel counts runs only while the statistics are on, so a run counted proves they
	 * were on for some of the interval, also when another tool holds them on by fd, which
	 * the sysctl does not show. */
	self->bpf_stats = a->loader.stats_fd >= 0 || counted || bpf_stats_sysctl_on();
	self_usage(&cpu, &self->rss_bytes);
	self->cpu_s = cpu - a->cpu_prev;
	self->cpu_total_s = cpu;
	a->cpu_prev = cpu;
	self->ringbuf_events = a->rb_events;
	a->rb_events = 0;
	self->capture_path = dbtap_capture_name(a->loader.path);
}

static int64_t timespec_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
}

/* End an interval: bump the epoch, read everything, write every output. */
static int flush_interval(struct agent *a, double length_s)
{
	struct dbtap_snapshot snap = {0};
	struct timespec real, mono;
	uint32_t closed = a->loader.skel->bss->epoch;
	int ret;

	/* let the ring buffer's texts arrive before the counts that need them */
	ring_buffer__consume(a->rb);
	__atomic_store_n(&a->loader.skel->bss->epoch, closed + 1, __ATOMIC_SEQ_CST);
	/* read back to back: the samples' kernel (monotonic) times become wall clock times */
	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	snap.time_ns = timespec_ns(&real);
	snap.interval_s = length_s;
	ret = dbtap_store_collect(a->store, bpf_map__fd(a->loader.skel->maps.aggs),
				  bpf_map__fd(a->loader.skel->maps.errs), closed,
				  timespec_ns(&real) - timespec_ns(&mono), &snap);
	if (ret)
		fprintf(stderr, "dbtap: reading the maps: %s\n", strerror(-ret));
	read_self(a, &snap.self);
	if (a->otlp) {
		struct dbtap_otlp_stats os;

		dbtap_otlp_get_stats(a->otlp, &os);
		snap.self.otlp = true;
		snap.self.otlp_requests_dropped = os.requests_dropped;
		snap.self.otlp_bytes_dropped = os.bytes_dropped;
		snap.self.otlp_requests_rejected = os.requests_rejected;
		snap.self.otlp_requests_expired = os.requests_expired;
	}
	if (a->jsonl && (ret = dbtap_jsonl_write(a->jsonl, &snap)))
		fprintf(stderr, "dbtap: writing JSON lines: %s\n", strerror(-ret));
	if (a->table)
		dbtap_table_write(a->table, &snap);
	/* encodes and queues only: the sending happens on the exporter's own thread */
	if (a->otlp && (ret = dbtap_otlp_write(a->otlp, &snap)))
		fprintf(stderr, "dbtap: OTLP export: %s\n", strerror(-ret));
	return 0;
}

/* The OTLP exporter with the config's settings (the OTEL_* variables fill the rest). */
static int open_otlp(struct agent *a)
{
	const struct dbtap_config *c = a->cfg;
	struct dbtap_otlp_options o = {
		.endpoint = c->otlp_endpoint,
		.metrics_endpoint = c->otlp_metrics_endpoint,
		.traces_endpoint = c->otlp_traces_endpoint,
		.logs_endpoint = c->otlp_logs_endpoint,
		.headers = c->otlp_headers,
		.timeout_s = c->otlp_timeout_s,
		.gzip = c->otlp_compression == DBTAP_OTLP_COMPRESSION_GZIP   ? 1
			: c->otlp_compression == DBTAP_OTLP_COMPRESSION_NONE ? 0
									     : -1,
		.delta = c->otlp_temporality == DBTAP_OTLP_DELTA,
		.service_name = c->otlp_service_name,
		.resource_attributes = c->otlp_resource_attributes,
		.ca_file = c->otlp_ca_file,
		.client_cert = c->otlp_client_cert,
		.client_key = c->otlp_client_key,
		.queue_bytes = c->otlp_queue_size,
		.max_request_bytes = c->otlp_max_request_size,
		.max_series = c->max_series,
		.shutdown_timeout_s = c->otlp_flush_timeout_s,
	};

	a->otlp = dbtap_otlp_new(&o);
	if (!a->otlp) {
		fprintf(stderr, "dbtap: OTLP exporter: %s%s\n", strerror(errno),
			errno == EINVAL ? " (check OTEL_EXPORTER_OTLP_TIMEOUT/_COMPRESSION)" : "");
		return -errno;
	}
	return 0;
}

static int open_outputs(struct agent *a)
{
	enum dbtap_output o = a->cfg->output;
	int ret;

	if (a->cfg->output_otlp) {
		ret = open_otlp(a);
		if (ret)
			return ret;
		/* otlp alone: no table or JSON lines besides */
		if (o == DBTAP_OUT_AUTO)
			return 0;
	}

	a->out = stdout;
	if (a->cfg->output_file) {
		a->out = fopen(a->cfg->output_file, "a");
		if (!a->out) {
			fprintf(stderr, "dbtap: output-file %s: %s\n", a->cfg->output_file,
				strerror(errno));
			return -errno;
		}
	}
	if (o == DBTAP_OUT_AUTO)
		o = (!a->cfg->output_file && isatty(STDOUT_FILENO)) ? DBTAP_OUT_TABLE
								    : DBTAP_OUT_JSON;
	if (o == DBTAP_OUT_TABLE)
		a->table = dbtap_table_new(a->out, 0);
	else
		a->jsonl = dbtap_jsonl_new(a->out);
	return (a->table || a->jsonl) ? 0 : -ENOMEM;
}

/* The run's wait: ring buffer data or a stop signal, whichever comes first. */
struct waiter {
	int epfd, sigfd;
};

static int waiter_open(struct waiter *w, struct ring_buffer *rb, const sigset_t *stop_set)
{
	struct epoll_event ev = {.events = EPOLLIN};

	w->sigfd = signalfd(-1, stop_set, SFD_NONBLOCK | SFD_CLOEXEC);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->sigfd < 0 || w->epfd < 0)
		return -errno;
	ev.data.fd = w->sigfd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->sigfd, &ev))
		return -errno;
	ev.data.fd = ring_buffer__epoll_fd(rb);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
		return -errno;
	return 0;
}

static void waiter_close(struct waiter *w)
{
	if (w->sigfd >= 0)
		close(w->sigfd);
	if (w->epfd >= 0)
		close(w->epfd);
}

/* Wait up to @timeout_ms, consuming ring buffer data; 1 when a stop signal came, 0 on timeout or
 * data, a negative errno on failure. */
static int waiter_wait(struct waiter *w, struct ring_buffer *rb, int timeout_ms)
{
	struct epoll_event evs[2];
	struct signalfd_siginfo si;
	int n, i, stop = 0, ret;

	n = epoll_wait(w->epfd, evs, 2, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n; i++) {
		if (evs[i].data.fd == w->sigfd) {
			stop = read(w->sigfd, &si, sizeof(si)) == sizeof(si);
			continue;
		}
		ret = ring_buffer__consume(rb);
		if (ret < 0)
			return ret;
	}
	return stop;
}

int dbtap_agent_run(const struct dbtap_config *cfg)
{
	struct agent a = {.cfg = cfg};
	struct dbtap_instance_list list = {0};
	struct waiter w = {.epfd = -1, .sigfd = -1};
	sigset_t stop_set;
	double start, next, last, drain_until;
	char err[256] = "";
	int i, ret, code = 1;

	if (geteuid() != 0) {
		fprintf(stderr, "dbtap: needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE)\n");
		return 1;
	}
	/* before any thread exists (the OTLP sender), so that every thread inherits the mask. A
	 * shell starts `dbtap &` with SIGINT ignored: a blocked signal is queued all the same
	 * (the kernel never ignores a blocked signal), so the signalfd sees it. */
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGINT);
	sigaddset(&stop_set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
	signal(SIGPIPE, SIG_IGN);
	a.store = dbtap_store_new(cfg);
	if (!a.store || open_outputs(&a))
		goto out;
	ret = dbtap_loader_start(&a.loader, cfg, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "dbtap: %s\n", err);
		goto out;
	}
	if (a.loader.stats_err)
		fprintf(stderr,
			"dbtap: bpf-stats: enabling BPF run-time statistics: %s (going on "
			"without them)\n",
			strerror(-a.loader.stats_err));
	a.rb = ring_buffer__new(bpf_map__fd(a.loader.skel->maps.events), on_event, &a, NULL);
	if (!a.rb) {
		fprintf(stderr, "dbtap: ring buffer: %s\n", strerror(errno));
		goto out;
	}
	ret = waiter_open(&w, a.rb, &stop_set);
	if (ret) {
		fprintf(stderr, "dbtap: waiting for events and signals: %s\n", strerror(-ret));
		goto out;
	}
	ret = dbtap_discover(PROC_ROOT, cfg->n_pids ? cfg->pids : NULL, cfg->n_pids, &list);
	if (ret)
		fprintf(stderr, "dbtap: scanning %s: %s\n", PROC_ROOT, strerror(-ret));
	for (i = 0; i < list.n; i++)
		track_instance(&a, &list.items[i]);
	if (!list.n)
		fprintf(stderr, "dbtap: no database servers found yet; watching for new ones\n");
	fprintf(stderr, "dbtap: ready (%d instance%s, capture path %s)\n", list.n,
		list.n == 1 ? "" : "s", dbtap_capture_name(a.loader.path));
	dbtap_instance_list_free(&list);

	start = last = now_mono();
	next = start + cfg->interval_s;
	for (;;) {
		double now = now_mono(), until = next;

		if (cfg->duration_s > 0 && start + cfg->duration_s < until)
			until = start + cfg->duration_s;
		if (now >= until) {
			if (cfg->duration_s > 0 && now >= start + cfg->duration_s)
				break;
			flush_interval(&a, now - last);
			last = now;
			next += cfg->interval_s;
			if (next < now)
				next = now + cfg->interval_s;
			continue;
		}
		ret = waiter_wait(&w, a.rb, (int)((until - now) * 1000) + 1);
		if (ret < 0)
			fprintf(stderr, "dbtap: polling the ring buffer: %s\n", strerror(-ret));
		if (ret)
			break;
	}
	/*
	 * The final, partial interval. An operation whose response the client already has may
	 * still be in the server's send hook (on the syscall path the hook runs at syscall exit,
	 * after the data left): give such hooks STOP_DRAIN_MS to finish before the last read.
	 */
	drain_until = now_mono() + STOP_DRAIN_MS / 1000.0;
	while (now_mono() < drain_until)
		ring_buffer__poll(a.rb, STOP_DRAIN_MS);
	flush_interval(&a, now_mono() - last);
	code = 0;
out:
	waiter_close(&w);
	ring_buffer__free(a.rb);
	dbtap_loader_stop(&a.loader);
	dbtap_otlp_free(a.otlp); /* flushes the queue, up to otlp-flush-timeout */
	dbtap_jsonl_free(a.jsonl);
	dbtap_table_free(a.table);
	if (a.out && a.out != stdout)
		fclose(a.out);
	dbtap_store_free(a.store);
	return code;
}

int dbtap_agent_list(const struct dbtap_config *cfg)
{
	struct dbtap_instance_list list = {0};
	enum dbtap_capture_path path;
	int i, j, ret;

	ret = dbtap_discover(PROC_ROOT, cfg->n_pids ? cfg->pids : NULL, cfg->n_pids, &list);
	if (ret) {
		fprintf(stderr, "dbtap: scanning %s: %s\n", PROC_ROOT, strerror(-ret));
		return 1;
	}
	if (dbtap_capture_resolve(cfg->capture, &path))
		path = DBTAP_CAPTURE_SYSCALL;
	if (!list.n)
		printf("no database servers found\n");
	for (i = 0; i < list.n; i++) {
		const struct dbtap_instance *in = &list.items[i];

		printf("%s pid=%d version=%s data_dir=%s%s%s backends=%d capture=%s listen=",
		       dbtap_system_name(in->system), in->pid, in->version[0] ? in->version : "?",
		       in->data_dir[0] ? in->data_dir : "?", in->in_container ? " container=" : "",
		       in->in_container ? (in->container_id[0] ? in->container_id : "yes") : "",
		       in->n_backends, dbtap_capture_name(path));
		for (j = 0; j < in->n_listen; j++) {
			const struct dbtap_listen *l = &in->listen[j];

			if (l->unix_socket)
				printf("%sunix:%s", j ? "," : "", l->path);
			else
				printf("%s%s%s%s:%u", j ? "," : "", l->family == 10 ? "[" : "",
				       l->address, l->family == 10 ? "]" : "", l->port);
		}
		printf("\n");
	}
	dbtap_instance_list_free(&list);
	return 0;
}
