// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * otlp.c - the OTLP exporter as the agent sees it: resolves the settings (config keys, then
 * the standard OTEL_* variables, then defaults), and per interval encodes the snapshot
 * (otlp_encode.c), splits requests over the size limit and queues them for the transport
 * thread (otlp_transport.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exporters/otlp.h"
#include "exporters/otlp_internal.h"

#define DEFAULT_ENDPOINT	    "http://localhost:4318"
#define DEFAULT_TIMEOUT_S	    10.0
#define DEFAULT_QUEUE_BYTES	    (16ULL * 1024 * 1024)
#define DEFAULT_MAX_REQUEST_BYTES   (4UL * 1024 * 1024)
#define DEFAULT_MAX_SERIES	    10000
#define DEFAULT_SHUTDOWN_TIMEOUT_S  5.0
#define DEFAULT_RETRY_MAX_ELAPSED_S 60.0
#define MS_PER_S		    1000.0
#define URL_MAX			    2048

static const char *const signal_paths[DBTAP_OTLP_SIGNALS] = {"v1/metrics", "v1/traces", "v1/logs"};

struct dbtap_otlp {
	struct dbtap_otlp_options o;
	struct dbtap_otlp_enc *enc;
	struct dbtap_otlp_tp *tp;
	uint64_t split_requests;
};

static const char *env_get(char **envp, const char *name)
{
	size_t n = strlen(name);

	if (!envp)
		return getenv(name);
	for (; *envp; envp++)
		if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

int dbtap_otlp_options_resolve(struct dbtap_otlp_options *o, char **envp)
{
	const char *v;

	if (!o->endpoint)
		o->endpoint = nonempty(env_get(envp, "OTEL_EXPORTER_OTLP_ENDPOINT"));
	if (!o->endpoint)
		o->endpoint = DEFAULT_ENDPOINT;
	if (!o->metrics_endpoint)
		o->metrics_endpoint =
			nonempty(env_get(envp, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"));
	if (!o->traces_endpoint)
		o->traces_endpoint = nonempty(env_get(envp, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
	if (!o->logs_endpoint)
		o->logs_endpoint = nonempty(env_get(envp, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"));
	if (!o->headers)
		o->headers = nonempty(env_get(envp, "OTEL_EXPORTER_OTLP_HEADERS"));
	if (!(o->timeout_s > 0) && (v = nonempty(env_get(envp, "OTEL_EXPORTER_OTLP_TIMEOUT")))) {
		char *end;
		double ms = strtod(v, &end);

		if (*end || !(ms > 0))
			return -EINVAL;
		o->timeout_s = ms / MS_PER_S;
	}
	if (!(o->timeout_s > 0))
		o->timeout_s = DEFAULT_TIMEOUT_S;
	if (o->gzip < 0 && (v = nonempty(env_get(envp, "OTEL_EXPORTER_OTLP_COMPRESSION")))) {
		if (!strcasecmp(v, "gzip"))
			o->gzip = 1;
		else if (!strcasecmp(v, "none"))
			o->gzip = 0;
		else
			return -EINVAL;
	}
	if (o->gzip < 0)
		o->gzip = 1;
	if (!o->service_name)
		o->service_name = nonempty(env_get(envp, "OTEL_SERVICE_NAME"));
	if (!o->resource_attributes)
		o->resource_attributes = nonempty(env_get(envp, "OTEL_RESOURCE_ATTRIBUTES"));
	if (!o->queue_bytes)
		o->queue_bytes = DEFAULT_QUEUE_BYTES;
	if (!o->max_request_bytes)
		o->max_request_bytes = DEFAULT_MAX_REQUEST_BYTES;
	if (!o->max_series)
		o->max_series = DEFAULT_MAX_SERIES;
	if (!(o->shutdown_timeout_s > 0))
		o->shutdown_timeout_s = DEFAULT_SHUTDOWN_TIMEOUT_S;
	if (!(o->retry_max_elapsed_s > 0))
		o->retry_max_elapsed_s = DEFAULT_RETRY_MAX_ELAPSED_S;
	return 0;
}

/* @base + "/" + @path without doubling the slash. */
static void signal_url(const char *base, const char *path, char *buf, size_t size)
{
	size_t n = strlen(base);

	snprintf(buf, size, "%.*s/%s", (int)(n && base[n - 1] == '/' ? n - 1 : n), base, path);
}

struct dbtap_otlp *dbtap_otlp_new(const struct dbtap_otlp_options *opts)
{
	struct dbtap_otlp *x = calloc(1, sizeof(*x));
	char urls[DBTAP_OTLP_SIGNALS][URL_MAX];
	const char *given[DBTAP_OTLP_SIGNALS];
	struct dbtap_otlp_tp_options tpo = {0};
	struct dbtap_otlp_enc_options eo = {0};
	int i;

	if (!x) {
		errno = ENOMEM;
		return NULL;
	}
	x->o = *opts;
	if (dbtap_otlp_options_resolve(&x->o, NULL)) {
		free(x);
		errno = EINVAL;
		return NULL;
	}
	given[DBTAP_OTLP_METRICS] = x->o.metrics_endpoint;
	given[DBTAP_OTLP_TRACES] = x->o.traces_endpoint;
	given[DBTAP_OTLP_LOGS] = x->o.logs_endpoint;
	for (i = 0; i < DBTAP_OTLP_SIGNALS; i++) {
		if (given[i])
			snprintf(urls[i], URL_MAX, "%s", given[i]);
		else
			signal_url(x->o.endpoint, signal_paths[i], urls[i], URL_MAX);
		tpo.urls[i] = urls[i];
	}
	tpo.headers = x->o.headers;
	tpo.timeout_s = x->o.timeout_s;
	tpo.gzip = x->o.gzip == 1;
	tpo.ca_file = x->o.ca_file;
	tpo.client_cert = x->o.client_cert;
	tpo.client_key = x->o.client_key;
	tpo.queue_bytes = x->o.queue_bytes;
	tpo.shutdown_timeout_s = x->o.shutdown_timeout_s;
	tpo.retry_max_elapsed_s = x->o.retry_max_elapsed_s;
	eo.delta = x->o.delta;
	eo.service_name = x->o.service_name;
	eo.resource_attributes = x->o.resource_attributes;
	eo.max_series = x->o.max_series;
	x->enc = dbtap_otlp_enc_new(&eo);
	x->tp = x->enc ? dbtap_otlp_tp_new(&tpo) : NULL;
	if (!x->tp) {
		dbtap_otlp_free(x);
		errno = ENOMEM;
		return NULL;
	}
	return x;
}

/* Split @doc into bodies within the size limit and queue them; @doc is freed. */
static int queue_doc(struct dbtap_otlp *x, enum dbtap_otlp_signal sig, cJSON *doc)
{
	char **bodies = NULL;
	size_t n = 0, i;
	int ret;

	if (!doc)
		return 0;
	ret = dbtap_otlp_split(doc, x->o.max_request_bytes, &bodies, &n);
	cJSON_Delete(doc);
	if (ret)
		return ret;
	if (n > 1)
		x->split_requests += n - 1;
	for (i = 0; i < n; i++) {
		int r = dbtap_otlp_tp_enqueue(x->tp, sig, bodies[i], strlen(bodies[i]));

		if (r && !ret)
			ret = r;
	}
	free(bodies);
	return ret;
}

int dbtap_otlp_write(struct dbtap_otlp *x, const struct dbtap_snapshot *snap)
{
	struct dbtap_otlp_stats st;
	cJSON *metrics, *traces = NULL, *logs = NULL;
	int ret, r;

	if (!x || !snap)
		return -EINVAL;
	dbtap_otlp_get_stats(x, &st);
	/* spans first: the samples of this interval, then the metrics that count them */
	ret = dbtap_otlp_enc_samples(x->enc, snap, &traces, &logs);
	if (!ret)
		ret = queue_doc(x, DBTAP_OTLP_TRACES, traces);
	else
		cJSON_Delete(traces);
	r = queue_doc(x, DBTAP_OTLP_LOGS, logs);
	if (r && !ret)
		ret = r;
	metrics = dbtap_otlp_enc_metrics(x->enc, snap, &st);
	if (!metrics)
		return -ENOMEM;
	r = queue_doc(x, DBTAP_OTLP_METRICS, metrics);
	return ret ? ret : r;
}

void dbtap_otlp_get_stats(struct dbtap_otlp *x, struct dbtap_otlp_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!x)
		return;
	dbtap_otlp_tp_stats(x->tp, ret);
	ret->series_folded = dbtap_otlp_enc_folded(x->enc);
	ret->split_requests = x->split_requests;
}

void dbtap_otlp_free(struct dbtap_otlp *x)
{
	if (!x)
		return;
	dbtap_otlp_tp_free(x->tp);
	dbtap_otlp_enc_free(x->enc);
	free(x);
}
