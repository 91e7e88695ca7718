/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * otlp.h - the OTLP exporter: each interval's snapshot becomes OTLP/HTTP JSON requests
 * (metrics, traces, logs) queued for a transport thread that sends them with retries, so the
 * caller never waits on the network. The mapping is a public contract, documented in
 * docs/otlp.md.
 */
#ifndef DBTAP_EXPORTERS_OTLP_H
#define DBTAP_EXPORTERS_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "userspace/series.h"

/* Settings. NULL strings and zero numbers take the defaults (and the OTEL_* environment,
 * see dbtap_otlp_options_resolve()). */
struct dbtap_otlp_options {
	const char *endpoint;	      /* base URL; "/v1/<signal>" is appended */
	const char *metrics_endpoint; /* full URLs, used as given */
	const char *traces_endpoint;
	const char *logs_endpoint;
	const char *headers;		 /* "k=v,k2=v2", values percent-decoded */
	double timeout_s;		 /* one request, default 10 s */
	int gzip;			 /* 1 gzip (default), 0 none, -1 unset */
	bool delta;			 /* delta temporality instead of cumulative */
	const char *service_name;	 /* overrides the per-instance default */
	const char *resource_attributes; /* "k=v,k2=v2" merged into every resource */
	const char *ca_file;
	const char *client_cert;
	const char *client_key;
	uint64_t queue_bytes;	    /* bound of the send queue, default 16 MiB */
	size_t max_request_bytes;   /* split larger requests, default 4 MiB (uncompressed) */
	uint32_t max_series;	    /* metric streams kept, default 10000; the rest folded */
	double shutdown_timeout_s;  /* flush deadline at shutdown, default 5 s */
	double retry_max_elapsed_s; /* give up a request retried this long, default 60 s */
};

/* The exporter's own counters since it started (also exported as dbtap.otlp.* metrics). */
struct dbtap_otlp_stats {
	uint64_t requests_ok;	     /* 2xx answers */
	uint64_t requests_retried;   /* attempts answered 429/502/503/504 or failed to connect */
	uint64_t requests_rejected;  /* final non-retryable answers: the batch is lost */
	uint64_t requests_expired;   /* retried for retry_max_elapsed_s or past shutdown: lost */
	uint64_t requests_dropped;   /* oldest batches dropped from a full queue */
	uint64_t bytes_dropped;	     /* their bytes */
	uint64_t partial_success;    /* 2xx answers carrying a partialSuccess rejection */
	uint64_t bytes_uncompressed; /* JSON bytes encoded */
	uint64_t bytes_sent;	     /* body bytes handed to the network (after gzip) */
	uint64_t queue_bytes;	     /* now queued, not counting the request in flight */
	uint64_t series_folded;	     /* metric streams folded into the overflow stream */
	uint64_t split_requests;     /* requests split because over max_request_bytes */
};

struct dbtap_otlp; /* opaque */

/*
 * Fill the unset fields of @o from the OTEL_* variables of @envp (NULL: the process
 * environment) and the defaults: OTEL_EXPORTER_OTLP_ENDPOINT, _METRICS/_TRACES/_LOGS_ENDPOINT,
 * _HEADERS, _TIMEOUT (milliseconds), _COMPRESSION (gzip|none), OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES. Strings point into @envp or static text. 0 or -EINVAL.
 */
int dbtap_otlp_options_resolve(struct dbtap_otlp_options *o, char **envp);

/* New exporter and its transport thread. NULL with errno set (ENOMEM, EINVAL). */
struct dbtap_otlp *dbtap_otlp_new(const struct dbtap_otlp_options *o);

/* Encode @snap and queue the requests; never blocks on the network. 0 or -ENOMEM. */
int dbtap_otlp_write(struct dbtap_otlp *x, const struct dbtap_snapshot *snap);

/* Current counters. */
void dbtap_otlp_get_stats(struct dbtap_otlp *x, struct dbtap_otlp_stats *ret);

/* Send what is queued until shutdown_timeout_s has passed, stop the thread, free. NULL ok. */
void dbtap_otlp_free(struct dbtap_otlp *x);

#endif /* DBTAP_EXPORTERS_OTLP_H */
