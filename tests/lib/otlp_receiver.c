// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * otlp_receiver.c - starts and drives tests/otlp-receiver/receiver.js for the OTLP tests (see
 * otlp_receiver.h). Control requests go over loopback with libcurl; down/up are signals.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "lib/otlp_receiver.h"
#include "lib/testutil.h"

#define RECEIVER_DIR	   "tests/otlp-receiver"
#define RECEIVER_SCRIPT	   RECEIVER_DIR "/receiver.js"
#define RECEIVER_DEP	   RECEIVER_DIR "/node_modules/@opentelemetry/otlp-transformer/package.json"
#define NPM_TIMEOUT_MS	   300000
#define START_TIMEOUT_MS   30000
#define STOP_TIMEOUT_MS	   5000
#define POLL_MS		   50
#define CONTROL_TIMEOUT_MS 5000L
#define CONTROL_BODY_MAX   256

/* npm ci (from package-lock.json) when the dependencies are not installed yet. */
static int install_deps(void)
{
	const char *const argv[] = {"npm",	  "ci",	       "--prefix", RECEIVER_DIR,
				    "--no-audit", "--no-fund", NULL};
	char *out = NULL;
	struct stat st;
	int rc;

	if (stat(RECEIVER_DEP, &st) == 0)
		return 0;
	rc = testutil_run(argv, NPM_TIMEOUT_MS, &out);
	if (rc != 0)
		fprintf(stderr, "otlp receiver: npm ci exited %d:\n%s\n", rc, out ? out : "");
	free(out);
	return rc == 0 ? 0 : -EIO;
}

static bool port_accepts(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	if (fd < 0)
		return false;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void print_log(const struct otlp_receiver *r)
{
	char *log = testutil_read_file(r->log_path, NULL);

	fprintf(stderr, "otlp receiver log:\n%s\n", log ? log : "(none)");
	free(log);
}

int otlp_receiver_start(struct otlp_receiver *r)
{
	struct testutil_spawn_opts opts = {.parent_death_signal = SIGTERM};
	const char *argv[] = {"node", RECEIVER_SCRIPT, "--out", NULL, "--port-file", NULL, NULL};
	uint64_t until;
	int err;

	memset(r, 0, sizeof(*r));
	err = install_deps();
	if (err)
		return err;
	err = testutil_make_temp_dir("dbtap-otlp-", r->dir, sizeof(r->dir));
	if (err)
		return err;
	snprintf(r->out_path, sizeof(r->out_path), "%s/requests.jsonl", r->dir);
	snprintf(r->log_path, sizeof(r->log_path), "%s/receiver.log", r->dir);
	snprintf(r->port_path, sizeof(r->port_path), "%s/port", r->dir);
	argv[3] = r->out_path;
	argv[5] = r->port_path;
	opts.output_path = r->log_path;
	err = testutil_spawn(argv, &opts, &r->pid);
	if (err)
		return err;
	testutil_track_process(r->pid, r->pid, SIGTERM);
	until = testutil_now_ms() + START_TIMEOUT_MS;
	while (testutil_now_ms() < until) {
		char *text = testutil_read_file(r->port_path, NULL);
		int status;

		if (text) {
			r->port = atoi(text);
			free(text);
		}
		if (r->port > 0 && port_accepts(r->port)) {
			snprintf(r->endpoint, sizeof(r->endpoint), "http://127.0.0.1:%d", r->port);
			return 0;
		}
		if (testutil_wait(r->pid, 0, &status) == 0) {
			testutil_untrack_process(r->pid);
			r->pid = 0;
			print_log(r);
			return -ECHILD;
		}
		testutil_sleep_ms(POLL_MS);
	}
	print_log(r);
	otlp_receiver_stop(r);
	return -ETIMEDOUT;
}

void otlp_receiver_stop(struct otlp_receiver *r)
{
	int status;

	if (!r->pid)
		return;
	testutil_stop_process(r->pid, r->pid, SIGTERM, STOP_TIMEOUT_MS, &status);
	r->pid = 0;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *ctx)
{
	return size * nmemb;
}

int otlp_receiver_mode(struct otlp_receiver *r, const char *mode, int retry_after, int count)
{
	char url[128], body[CONTROL_BODY_MAX];
	long status = 0;
	CURLcode rc;
	CURL *c;

	snprintf(url, sizeof(url), "%s/control", r->endpoint);
	snprintf(body, sizeof(body), "{\"mode\":\"%s\",\"retryAfter\":%d,\"count\":%d}", mode,
		 retry_after, count);
	c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, CONTROL_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return rc == CURLE_OK && status == 200 ? 0 : -EIO;
}

int otlp_receiver_down(struct otlp_receiver *r)
{
	uint64_t until = testutil_now_ms() + START_TIMEOUT_MS;

	if (!r->pid || kill(r->pid, SIGHUP))
		return -ESRCH;
	while (port_accepts(r->port)) {
		if (testutil_now_ms() > until)
			return -ETIMEDOUT;
		testutil_sleep_ms(POLL_MS);
	}
	return 0;
}

int otlp_receiver_up(struct otlp_receiver *r)
{
	uint64_t until = testutil_now_ms() + START_TIMEOUT_MS;

	if (!r->pid || kill(r->pid, SIGUSR2))
		return -ESRCH;
	while (!port_accepts(r->port)) {
		if (testutil_now_ms() > until)
			return -ETIMEDOUT;
		testutil_sleep_ms(POLL_MS);
	}
	return 0;
}

cJSON *otlp_receiver_requests(const struct otlp_receiver *r)
{
	char *text = testutil_read_file(r->out_path, NULL), *line, *save = NULL;
	cJSON *arr;

	if (!text)
		return errno == ENOENT ? cJSON_CreateArray() : NULL;
	arr = cJSON_CreateArray();
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *obj = cJSON_Parse(line);

		if (!obj) {
			fprintf(stderr, "otlp receiver: bad record line: %.200s\n", line);
			cJSON_Delete(arr);
			free(text);
			return NULL;
		}
		cJSON_AddItemToArray(arr, obj);
	}
	free(text);
	return arr;
}
