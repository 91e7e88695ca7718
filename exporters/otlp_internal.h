/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * otlp_internal.h - the pieces of the OTLP exporter, shared between exporters/otlp*.c and
 * their unit tests: the encoder (snapshot -> OTLP JSON documents, with the running sums of
 * cumulative temporality), the request splitter, and the transport (queue + sender thread).
 */
#ifndef DBTAP_EXPORTERS_OTLP_INTERNAL_H
#define DBTAP_EXPORTERS_OTLP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "exporters/otlp.h"

/* ---- histogram bounds ---- */

/* Explicit bounds of db.server.operation.duration: the semantic-convention advisory bounds
 * plus finer ones below 1 ms, each moved to the nearest dbtap bucket edge. */
#define DBTAP_OTLP_N_BOUNDS 15

/* Nominal bound @i in seconds (0.00001 ... 10) and the bucket edge used for it, in ns. */
double dbtap_otlp_bound_nominal_s(unsigned int i);
uint64_t dbtap_otlp_bound_ns(unsigned int i);

/* Sum dbtap's buckets into the OTLP buckets: @ret has DBTAP_OTLP_N_BOUNDS + 1 counts. */
void dbtap_otlp_hist_fold(const uint32_t hist[DBTAP_HIST_BUCKETS],
			  uint64_t ret[DBTAP_OTLP_N_BOUNDS + 1]);

/* ---- key=value lists (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS) ---- */

struct dbtap_otlp_kv {
	char *key;
	char *value;
};

/* Parse "k=v,k2=v2" (whitespace around items trimmed, values percent-decoded; items without
 * '=' or with an empty key are skipped). 0 and a malloc'd array, or -ENOMEM. */
int dbtap_otlp_parse_kv(const char *text, struct dbtap_otlp_kv **ret, size_t *ret_n);
void dbtap_otlp_kv_free(struct dbtap_otlp_kv *kv, size_t n);

/* ---- encoder ---- */

struct dbtap_otlp_enc_options {
	bool delta;
	const char *service_name;	 /* NULL: "<system>@<address>:<port>" per instance */
	const char *resource_attributes; /* OTEL_RESOURCE_ATTRIBUTES syntax, may be NULL */
	uint32_t max_series;		 /* streams of db.server.operation.* kept */
	const char *host_name;		 /* NULL: gethostname() */
	const char *host_id;		 /* NULL: /etc/machine-id */
	int64_t start_ns;		 /* start of cumulative self metrics; 0: now */
};

struct dbtap_otlp_enc;

struct dbtap_otlp_enc *dbtap_otlp_enc_new(const struct dbtap_otlp_enc_options *o);
void dbtap_otlp_enc_free(struct dbtap_otlp_enc *e);

/*
 * The ExportMetricsServiceRequest of @snap: one resource per instance with
 * db.server.operation.duration and db.server.operation.errors, and one for the agent with
 * its self metrics (@stats: the exporter's counters, may be NULL). Updates the running sums.
 * NULL when out of memory.
 */
cJSON *dbtap_otlp_enc_metrics(struct dbtap_otlp_enc *e, const struct dbtap_snapshot *snap,
			      const struct dbtap_otlp_stats *stats);

/* The ExportTraceServiceRequest (one span per sample) and the ExportLogsServiceRequest (one
 * record per slow sample, linked to its span) of @snap. *ret_* is NULL when there is nothing
 * to send. 0 or -ENOMEM. */
int dbtap_otlp_enc_samples(struct dbtap_otlp_enc *e, const struct dbtap_snapshot *snap,
			   cJSON **ret_traces, cJSON **ret_logs);

/* Streams folded into the overflow stream so far (cardinality cap). */
uint64_t dbtap_otlp_enc_folded(const struct dbtap_otlp_enc *e);

/*
 * Print @doc unformatted into one or more bodies of at most @max_bytes each, splitting its
 * data points / spans / log records in halves as long as a body is too big and holds more
 * than one of them. 0 with a malloc'd array of malloc'd strings, or -ENOMEM.
 */
int dbtap_otlp_split(const cJSON *doc, size_t max_bytes, char ***ret_bodies, size_t *ret_n);

/* Number of data points, spans or log records in an export request. */
size_t dbtap_otlp_leaves(const cJSON *doc);

/* ---- transport ---- */

enum dbtap_otlp_signal {
	DBTAP_OTLP_METRICS = 0,
	DBTAP_OTLP_TRACES = 1,
	DBTAP_OTLP_LOGS = 2,
	DBTAP_OTLP_SIGNALS,
};

struct dbtap_otlp_tp_options {
	const char *urls[DBTAP_OTLP_SIGNALS];
	const char *headers;
	double timeout_s;
	bool gzip;
	const char *ca_file, *client_cert, *client_key;
	uint64_t queue_bytes;
	double shutdown_timeout_s;
	double retry_max_elapsed_s;
};

struct dbtap_otlp_tp;

struct dbtap_otlp_tp *dbtap_otlp_tp_new(const struct dbtap_otlp_tp_options *o);
/* Queue @body (malloc'd JSON, ownership taken, freed on every path) for @signal: compressed
 * here when gzip is on, then the oldest entries are dropped while the queue is over its
 * bound. 0 or -ENOMEM. */
int dbtap_otlp_tp_enqueue(struct dbtap_otlp_tp *t, enum dbtap_otlp_signal signal, char *body,
			  size_t len);
void dbtap_otlp_tp_stats(struct dbtap_otlp_tp *t, struct dbtap_otlp_stats *ret);
/* Flush until the shutdown deadline, stop the thread, free. NULL ok. */
void dbtap_otlp_tp_free(struct dbtap_otlp_tp *t);

/* gzip (RFC 1952) of @len bytes at @data into a malloc'd buffer. 0 or -ENOMEM/-EIO. */
int dbtap_otlp_gzip(const void *data, size_t len, unsigned char **ret, size_t *ret_len);
/* HTTP statuses worth retrying: 429, 502, 503, 504. */
bool dbtap_otlp_status_retryable(long status);
/* Delay before retry number @attempt (1, 2, ...): min(base * 2^(attempt-1), cap), times a
 * jitter factor in [0.5, 1] taken from @unit in [0, 1]. A Retry-After answer (> 0) wins. */
double dbtap_otlp_backoff_s(unsigned int attempt, double unit, double retry_after_s);

#endif /* DBTAP_EXPORTERS_OTLP_INTERNAL_H */
