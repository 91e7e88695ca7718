// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * otlp_transport.c - sends OTLP/HTTP requests from a bounded queue on its own thread, so the
 * event loop never waits on the network.
 *
 * The queue holds request bodies as they go on the wire (gzip'd when on) and is bounded in
 * bytes: a new body that does not fit pushes out the oldest ones, which are counted. The
 * thread sends one body at a time over one libcurl handle (keep-alive); 429/502/503/504 and
 * connection failures are retried with exponential backoff and jitter, honouring Retry-After;
 * every other answer is final. Memory held is at most the queue bound plus the one body in
 * flight.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/mman.h>

#include <curl/curl.h>
#include <zlib.h>

#include "exporters/otlp_internal.h"

#define HTTP_TOO_MANY_REQUESTS	 429
#define HTTP_BAD_GATEWAY	 502
#define HTTP_SERVICE_UNAVAILABLE 503
#define HTTP_GATEWAY_TIMEOUT	 504
#define HTTP_OK_MIN		 200
#define HTTP_OK_MAX		 299
#define BACKOFF_BASE_S		 1.0
#define BACKOFF_CAP_S		 5.0 /* as the OpenTelemetry SDKs: resume soon after an outage */
#define GZIP_WINDOW_BITS	 (15 + 16) /* zlib: 32 KiB window, gzip wrapper */
#define GZIP_MEM_LEVEL		 8
#define RESPONSE_MAX		 65536 /* answer bytes kept for partialSuccess */
#define MIN_REQUEST_TIMEOUT_MS	 100
#define LOG_PREFIX		 "dbtap: otlp: "

static const char *const signal_names[DBTAP_OTLP_SIGNALS] = {"metrics", "traces", "logs"};

struct item {
	enum dbtap_otlp_signal signal;
	unsigned char *body;
	size_t len;
	struct item *next;
};

struct dbtap_otlp_tp {
	struct dbtap_otlp_tp_options o;
	char *urls[DBTAP_OTLP_SIGNALS];
	struct curl_slist *headers;
	CURL *curl;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct item *head, *tail;
	bool stopping;
	double deadline; /* CLOCK_MONOTONIC seconds, set when stopping */
	struct dbtap_otlp_stats st;
	char response[RESPONSE_MAX];
	size_t response_len;
	unsigned int rand_state;
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- pure helpers ---- */

bool dbtap_otlp_status_retryable(long status)
{
	return status == HTTP_TOO_MANY_REQUESTS || status == HTTP_BAD_GATEWAY ||
	       status == HTTP_SERVICE_UNAVAILABLE || status == HTTP_GATEWAY_TIMEOUT;
}

double dbtap_otlp_backoff_s(unsigned int attempt, double unit, double retry_after_s)
{
	double d;

	if (retry_after_s > 0)
		return retry_after_s;
	if (attempt < 1)
		attempt = 1;
	d = attempt > 16 ? BACKOFF_CAP_S : BACKOFF_BASE_S * (double)(1u << (attempt - 1));
	if (d > BACKOFF_CAP_S)
		d = BACKOFF_CAP_S;
	if (unit < 0)
		unit = 0;
	if (unit > 1)
		unit = 1;
	return d * (0.5 + 0.5 * unit);
}

int dbtap_otlp_gzip(const void *data, size_t len, unsigned char **ret, size_t *ret_len)
{
	z_stream zs = {0};
	unsigned char *out;
	size_t cap;
	int zr;

	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WINDOW_BITS, GZIP_MEM_LEVEL,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&zs, len);
	out = malloc(cap);
	if (!out) {
		deflateEnd(&zs);
		return -ENOMEM;
	}
	zs.next_in = (unsigned char *)data;
	zs.avail_in = len;
	zs.next_out = out;
	zs.avail_out = cap;
	zr = deflate(&zs, Z_FINISH);
	deflateEnd(&zs);
	if (zr != Z_STREAM_END) {
		free(out);
		return -EIO;
	}
	*ret_len = cap - zs.avail_out;
	/* give back the unused part of the worst-case buffer: a queued body holds only its
	 * own bytes, so the queue bound is the memory it takes */
	*ret = realloc(out, *ret_len ? *ret_len : 1);
	if (!*ret)
		*ret = out;
	return 0;
}

/* ---- queue ---- */

/*
 * Queued bodies live in their own anonymous mappings, not on the malloc heap: a body queued
 * for minutes would otherwise pin the heap above the per-interval encoding buffers freed
 * around it, and the agent's RSS would creep up while the backend is down. A mapping goes back
 * to the kernel whole when the body is sent or dropped.
 */
static unsigned char *body_copy(const void *data, size_t len)
{
	void *p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	if (p == MAP_FAILED)
		return NULL;
	memcpy(p, data, len);
	return p;
}

static void item_free(struct item *it)
{
	if (!it)
		return;
	if (it->body)
		munmap(it->body, it->len ? it->len : 1);
	free(it);
}

int dbtap_otlp_tp_enqueue(struct dbtap_otlp_tp *t, enum dbtap_otlp_signal signal, char *body,
			  size_t len)
{
	struct item *it = calloc(1, sizeof(*it));
	int ret;

	if (!it) {
		free(body);
		return -ENOMEM;
	}
	it->signal = signal;
	if (t->o.gzip) {
		unsigned char *gz;

		ret = dbtap_otlp_gzip(body, len, &gz, &it->len);
		free(body);
		if (ret) {
			free(it);
			return ret;
		}
		it->body = body_copy(gz, it->len);
		free(gz);
	} else {
		it->len = len;
		it->body = body_copy(body, len);
		free(body);
	}
	if (!it->body) {
		free(it);
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->lock);
	t->st.bytes_uncompressed += len;
	/* make room: the oldest go first; a body bigger than the whole bound goes itself */
	while (t->head && t->st.queue_bytes + it->len > t->o.queue_bytes) {
		struct item *old = t->head;

		t->head = old->next;
		if (!t->head)
			t->tail = NULL;
		t->st.queue_bytes -= old->len;
		t->st.requests_dropped++;
		t->st.bytes_dropped += old->len;
		item_free(old);
	}
	if (it->len > t->o.queue_bytes) {
		t->st.requests_dropped++;
		t->st.bytes_dropped += it->len;
		item_free(it);
	} else {
		if (t->tail)
			t->tail->next = it;
		else
			t->head = it;
		t->tail = it;
		t->st.queue_bytes += it->len;
		pthread_cond_signal(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void dbtap_otlp_tp_stats(struct dbtap_otlp_tp *t, struct dbtap_otlp_stats *ret)
{
	pthread_mutex_lock(&t->lock);
	*ret = t->st;
	pthread_mutex_unlock(&t->lock);
}

/* ---- sending ---- */

static size_t on_response(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct dbtap_otlp_tp *t = ctx;
	size_t n = size * nmemb, room = sizeof(t->response) - 1 - t->response_len;

	memcpy(t->response + t->response_len, data, n < room ? n : room);
	t->response_len += n < room ? n : room;
	t->response[t->response_len] = '\0';
	return n;
}

/* Curl errors that mean the request may not have reached a server: retried. */
static bool curl_error_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return true;
	default:
		return false;
	}
}

/* Log a partialSuccess with rejections (the request is not retried). */
static void check_partial_success(struct dbtap_otlp_tp *t, enum dbtap_otlp_signal sig)
{
	static const char *const rejected_keys[DBTAP_OTLP_SIGNALS] = {
		"rejectedDataPoints", "rejectedSpans", "rejectedLogRecords"};
	cJSON *doc = cJSON_Parse(t->response), *ps, *rej, *msg;

	ps = cJSON_GetObjectItem(doc, "partialSuccess");
	rej = cJSON_GetObjectItem(ps, rejected_keys[sig]);
	msg = cJSON_GetObjectItem(ps, "errorMessage");
	if (ps && ((rej && !(cJSON_IsString(rej) && !strcmp(rej->valuestring, "0")) &&
		    !(cJSON_IsNumber(rej) && rej->valuedouble == 0)) ||
		   (cJSON_IsString(msg) && *msg->valuestring))) {
		char *r = rej ? cJSON_PrintUnformatted(rej) : NULL;

		pthread_mutex_lock(&t->lock);
		t->st.partial_success++;
		pthread_mutex_unlock(&t->lock);
		fprintf(stderr, LOG_PREFIX "%s partial success: %s %s rejected: %s\n",
			signal_names[sig], r ? r : "0", rejected_keys[sig],
			cJSON_IsString(msg) ? msg->valuestring : "");
		free(r);
	}
	cJSON_Delete(doc);
}

/*
 * One attempt. Returns 0 when delivered or final (counted), 1 when it should be retried,
 * with the server's Retry-After in @ret_retry_after (0 when none).
 */
static int send_once(struct dbtap_otlp_tp *t, const struct item *it, double *ret_retry_after)
{
	double left = t->o.timeout_s;
	curl_off_t retry_after = 0;
	long status = 0, timeout_ms;
	CURLcode rc;

	*ret_retry_after = 0;
	pthread_mutex_lock(&t->lock);
	if (t->stopping && t->deadline - now_mono() < left)
		left = t->deadline - now_mono();
	pthread_mutex_unlock(&t->lock);
	timeout_ms = (long)(left * 1000);
	if (timeout_ms < MIN_REQUEST_TIMEOUT_MS)
		timeout_ms = MIN_REQUEST_TIMEOUT_MS;
	t->response_len = 0;
	t->response[0] = '\0';
	curl_easy_setopt(t->curl, CURLOPT_URL, t->urls[it->signal]);
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, it->body);
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
	curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	rc = curl_easy_perform(t->curl);
	if (rc != CURLE_OK) {
		if (curl_error_retryable(rc))
			return 1;
		fprintf(stderr, LOG_PREFIX "%s to %s: %s (not retried)\n", signal_names[it->signal],
			t->urls[it->signal], curl_easy_strerror(rc));
		pthread_mutex_lock(&t->lock);
		t->st.requests_rejected++;
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
	pthread_mutex_lock(&t->lock);
	t->st.bytes_sent += it->len;
	pthread_mutex_unlock(&t->lock);
	if (status >= HTTP_OK_MIN && status <= HTTP_OK_MAX) {
		pthread_mutex_lock(&t->lock);
		t->st.requests_ok++;
		pthread_mutex_unlock(&t->lock);
		check_partial_success(t, it->signal);
		return 0;
	}
	if (dbtap_otlp_status_retryable(status)) {
		if (curl_easy_getinfo(t->curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
		    retry_after > 0)
			*ret_retry_after = (double)retry_after;
		return 1;
	}
	pthread_mutex_lock(&t->lock);
	t->st.requests_rejected++;
	pthread_mutex_unlock(&t->lock);
	fprintf(stderr, LOG_PREFIX "%s to %s: HTTP %ld (not retried): %.200s\n",
		signal_names[it->signal], t->urls[it->signal], status, t->response);
	return 0;
}

/* Sleep @s seconds unless stopping passes the deadline first. false: give up the item. */
static bool backoff_wait(struct dbtap_otlp_tp *t, double s)
{
	double until = now_mono() + s;
	bool ok = true;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		double now = now_mono(), end = until;
		struct timespec ts;

		if (t->stopping && t->deadline < end)
			end = t->deadline;
		if (now >= end) {
			ok = now >= until && !(t->stopping && now >= t->deadline);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		{
			double w = end - now, abs = ts.tv_sec + ts.tv_nsec / 1e9 + w;

			ts.tv_sec = (time_t)abs;
			ts.tv_nsec = (long)((abs - (double)ts.tv_sec) * 1e9);
		}
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return ok;
}

static void deliver(struct dbtap_otlp_tp *t, const struct item *it)
{
	double first = now_mono(), retry_after;
	unsigned int attempt = 0;

	while (send_once(t, it, &retry_after) == 1) {
		double wait = dbtap_otlp_backoff_s(
			++attempt, (double)rand_r(&t->rand_state) / RAND_MAX, retry_after);

		pthread_mutex_lock(&t->lock);
		t->st.requests_retried++;
		pthread_mutex_unlock(&t->lock);
		if (now_mono() + wait - first > t->o.retry_max_elapsed_s ||
		    !backoff_wait(t, wait)) {
			pthread_mutex_lock(&t->lock);
			t->st.requests_expired++;
			pthread_mutex_unlock(&t->lock);
			fprintf(stderr, LOG_PREFIX "%s to %s: gave up after %u attempts\n",
				signal_names[it->signal], t->urls[it->signal], attempt);
			return;
		}
	}
}

static void *sender_main(void *arg)
{
	struct dbtap_otlp_tp *t = arg;

	for (;;) {
		struct item *it;

		pthread_mutex_lock(&t->lock);
		while (!t->head && !t->stopping)
			pthread_cond_wait(&t->cond, &t->lock);
		if (!t->head || (t->stopping && now_mono() >= t->deadline)) {
			pthread_mutex_unlock(&t->lock);
			break;
		}
		it = t->head;
		t->head = it->next;
		if (!t->head)
			t->tail = NULL;
		t->st.queue_bytes -= it->len;
		pthread_mutex_unlock(&t->lock);
		deliver(t, it);
		item_free(it);
	}
	return NULL;
}

/* ---- life ---- */

static int add_header(struct dbtap_otlp_tp *t, const char *line)
{
	struct curl_slist *l = curl_slist_append(t->headers, line);

	if (!l)
		return -ENOMEM;
	t->headers = l;
	return 0;
}

static int setup_headers(struct dbtap_otlp_tp *t)
{
	struct dbtap_otlp_kv *kv;
	size_t n, i;
	int ret;

	if (add_header(t, "Content-Type: application/json") ||
	    (t->o.gzip && add_header(t, "Content-Encoding: gzip")) || add_header(t, "Expect:"))
		return -ENOMEM;
	ret = dbtap_otlp_parse_kv(t->o.headers, &kv, &n);
	if (ret)
		return ret;
	for (i = 0; i < n && !ret; i++) {
		char *line;

		if (asprintf(&line, "%s: %s", kv[i].key, kv[i].value) < 0) {
			ret = -ENOMEM;
			break;
		}
		ret = add_header(t, line);
		free(line);
	}
	dbtap_otlp_kv_free(kv, n);
	return ret;
}

struct dbtap_otlp_tp *dbtap_otlp_tp_new(const struct dbtap_otlp_tp_options *o)
{
	struct dbtap_otlp_tp *t = calloc(1, sizeof(*t));
	int i;

	if (!t)
		return NULL;
	t->o = *o;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->rand_state = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)t;
	for (i = 0; i < DBTAP_OTLP_SIGNALS; i++) {
		if (!o->urls[i] || !(t->urls[i] = strdup(o->urls[i])))
			goto fail;
	}
	if (setup_headers(t))
		goto fail;
	/* the caller's strings are not kept past this function */
	t->o.headers = t->o.ca_file = t->o.client_cert = t->o.client_key = NULL;
	memset(t->o.urls, 0, sizeof(t->o.urls));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	t->curl = curl_easy_init();
	if (!t->curl)
		goto fail;
	curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(t->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->timeout_s * 1000));
	curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_response);
	curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
	if (o->ca_file)
		curl_easy_setopt(t->curl, CURLOPT_CAINFO, o->ca_file);
	if (o->client_cert)
		curl_easy_setopt(t->curl, CURLOPT_SSLCERT, o->client_cert);
	if (o->client_key)
		curl_easy_setopt(t->curl, CURLOPT_SSLKEY, o->client_key);
	if (pthread_create(&t->thread, NULL, sender_main, t))
		goto fail;
	t->thread_started = true;
	return t;
fail:
	dbtap_otlp_tp_free(t);
	return NULL;
}

void dbtap_otlp_tp_free(struct dbtap_otlp_tp *t)
{
	struct item *it;
	int i;

	if (!t)
		return;
	if (t->thread_started) {
		pthread_mutex_lock(&t->lock);
		t->stopping = true;
		t->deadline = now_mono() + t->o.shutdown_timeout_s;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->thread, NULL);
	}
	while ((it = t->head)) {
		t->head = it->next;
		t->st.requests_dropped++;
		item_free(it);
	}
	if (t->curl)
		curl_easy_cleanup(t->curl);
	curl_slist_free_all(t->headers);
	for (i = 0; i < DBTAP_OTLP_SIGNALS; i++)
		free(t->urls[i]);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}
