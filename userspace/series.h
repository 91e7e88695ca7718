/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * series.h - the per-interval snapshot handed from the series store to every exporter: the
 * series, the samples of single operations, the agent's own health.
 *
 * A snapshot is read-only for exporters and lives until the exporter returns. Strings are
 * never NULL: an unknown value is "" (exporters omit empty attributes).
 */
#ifndef DBTAP_SERIES_H
#define DBTAP_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/dbtap.h"

struct dbtap_status_count {
	char code[DBTAP_STATUS_LEN]; /* SQLSTATE, errno, error prefix */
	uint64_t count;
};

/* One series: one instance x database x user x normalized query, for one interval. */
struct dbtap_series {
	/* identity */
	const char *system;	    /* db.system.name: "postgresql", ... */
	uint32_t instance_pid;	    /* process.pid of the instance's main process */
	const char *server_address; /* "127.0.0.1", "" when only a socket */
	int server_port;	    /* 0 when unknown or unix only */
	const char *server_socket;  /* unix socket path, "" when none */
	const char *db_namespace;   /* "" when not known yet */
	const char *db_user;	    /* "" when not known yet */
	const char *operation;	    /* db.operation.name: "SELECT" */
	const char *collection;	    /* db.collection.name: "pgbench_accounts", "" when none */
	const char *summary;	    /* db.query.summary */
	const char *query_text;	    /* sanitized (or raw when opted in), may be truncated */
	uint64_t query_hash;	    /* kernel fingerprint (first of the merged ones) */
	bool text_known;	    /* false: prepared before capture, or text not received yet */
	uint16_t flags;		    /* DBTAP_AGG_F_* of the kernel key (BLOCKING, BATCH...) */

	/* values for this interval (deltas) */
	uint64_t count;
	uint64_t errors;
	uint64_t rows;
	double sum_s;
	double min_s; /* 0 when count == 0 */
	double max_s;
	uint32_t hist[DBTAP_HIST_BUCKETS];
	const struct dbtap_status_count *status; /* error codes this interval */
	size_t n_status;
};

/*
 * One sampled operation (the kernel's struct dbtap_ev_sample), received during the interval.
 * Its labels are those of its series, which is in the same snapshot (with count 0 when the
 * operation was counted in an earlier interval: exporters skip such series).
 */
struct dbtap_sample {
	const struct dbtap_series *series; /* labels: system, instance, names, query */
	int64_t start_ns;		   /* wall clock (CLOCK_REALTIME): request read */
	int64_t end_ns;			   /* wall clock: response written */
	uint64_t duration_ns;		   /* end - start, from the kernel's monotonic clock */
	uint32_t reasons;		   /* DBTAP_SAMPLE_* */
	char status[DBTAP_STATUS_LEN + 1]; /* NUL terminated; "" on success or when unknown */
	uint64_t rows;			   /* rows returned or affected */
	uint32_t tid;			   /* server thread (a PostgreSQL backend's PID) */
	struct dbtap_addr peer;		   /* the client: AF_INET, AF_INET6, AF_UNIX, 0 unknown */
	uint64_t conn_id;		   /* the kernel's connection id (struct sock address) */
	/* W3C trace context the client gave for its connection (PostgreSQL application_name
	 * holding a traceparent): the operation's span is a child of parent_span_id */
	bool has_parent;
	uint8_t trace_id[16];
	uint8_t parent_span_id[8];
	uint8_t trace_flags;
};

/* A database server instance known this interval (for resource attributes). */
struct dbtap_instance_info {
	uint32_t pid;		    /* process.pid of the main process, root PID namespace */
	const char *system;	    /* db.system.name */
	const char *exe_name;	    /* process.executable.name: "postgres" */
	const char *exe_path;	    /* process.executable.path as seen inside its mount ns */
	const char *version;	    /* "15.18", "" unknown */
	const char *container_id;   /* container.id, "" when not in a container */
	const char *server_address; /* "127.0.0.1", "" when only a socket */
	int server_port;	    /* 0 when unknown */
	const char *server_socket;  /* "" when none */
};

struct dbtap_prog_stat {
	const char *name;
	uint64_t run_cnt;     /* delta this interval */
	uint64_t run_time_ns; /* delta this interval */
};

/* The agent's own health for one interval ("kind": "dbtap.self"). */
struct dbtap_self_stats {
	uint64_t counters[DBTAP_CNT_MAX]; /* deltas; DBTAP_CNT_DROP_* are drops by cause */
	uint64_t ringbuf_events;	  /* records read from the ring buffer */
	uint64_t series_dropped;	  /* series folded away by the cardinality cap */
	uint64_t samples_dropped;	  /* samples received but not exported (caps) */
	const struct dbtap_prog_stat *progs;
	size_t n_progs;
	/* the kernel counted BPF run time this interval (bpf-stats, kernel.bpf_stats_enabled, or
	 * runs counted): without it every progs[] run_cnt and run_time_ns is 0 */
	bool bpf_stats;
	double cpu_s;	    /* agent user+system CPU seconds this interval */
	double cpu_total_s; /* since start */
	uint64_t rss_bytes;
	const char *capture_path; /* "socket" or "syscall" */
	/* OTLP export losses since start (cumulative; 0 without the otlp output): batches dropped
	 * from the full queue, rejected by the backend, or given up after retries */
	bool otlp;
	uint64_t otlp_requests_dropped;
	uint64_t otlp_bytes_dropped;
	uint64_t otlp_requests_rejected;
	uint64_t otlp_requests_expired;
};

struct dbtap_snapshot {
	int64_t time_ns;   /* wall clock (CLOCK_REALTIME) at the end of the interval */
	double interval_s; /* measured length of the interval */
	const struct dbtap_series *series;
	size_t n_series;
	const struct dbtap_sample *samples; /* in the order received */
	size_t n_samples;
	const struct dbtap_instance_info *instances; /* every instance tracked so far */
	size_t n_instances;
	struct dbtap_self_stats self;
};

/* Names of enum dbtap_counter entries as exported ("events", "drop.sample_ringbuf"...). */
const char *dbtap_counter_name(enum dbtap_counter c);
/* db.system.name for an enum dbtap_system value ("postgresql"), "" for unknown. */
const char *dbtap_system_name(enum dbtap_system s);

/* Percentile @q in [0,1] of a histogram in seconds, interpolated within the bucket; 0 when
 * empty. Lower/upper bounds of bucket @i in nanoseconds. */
double dbtap_hist_percentile(const uint32_t hist[DBTAP_HIST_BUCKETS], double q);
uint64_t dbtap_hist_bucket_lower_ns(uint32_t i);
/* Percentile @q of a series in seconds, kept inside the interval's exact [min, max] when those
 * are known: they bound the value more tightly than a bucket does. */
double dbtap_series_percentile(const struct dbtap_series *s, double q);
uint64_t dbtap_hist_bucket_upper_ns(uint32_t i);

#endif /* DBTAP_SERIES_H */
