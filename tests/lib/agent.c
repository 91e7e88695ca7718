/* Runs the agent under test for integration tests: start with JSON-lines output into a temp dir,
 * wait for its "dbtap: ready" line, stop by PID, parse and sum the output lines. */
#include "lib/agent.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/testutil.h"

#define AGENT_DEFAULT_BIN      "build/dbtap"
#define AGENT_READY_LINE       "dbtap: ready"
#define AGENT_READY_TIMEOUT_MS 30000
#define AGENT_STOP_TIMEOUT_MS  15000
#define AGENT_POLL_MS	       20
#define AGENT_MAX_ARGS	       64
#define MAX_AGENTS	       16

static pid_t running_agents[MAX_AGENTS];

static void remember_agent(pid_t pid)
{
	int i;

	for (i = 0; i < MAX_AGENTS; i++) {
		if (running_agents[i] <= 0) {
			running_agents[i] = pid;
			return;
		}
	}
}

static void forget_agent(pid_t pid)
{
	int i;

	for (i = 0; i < MAX_AGENTS; i++)
		if (running_agents[i] == pid)
			running_agents[i] = 0;
}

static void print_stderr(const struct agent *a, const char *why)
{
	char *text = testutil_read_file(a->err_path, NULL);

	fprintf(stderr, "agent: %s; its stderr (%s):\n%s\n---- end of agent stderr ----\n", why,
		a->err_path, text ? text : "(unreadable)");
	free(text);
}

/* The ready line: exactly "dbtap: ready", or followed by a space and details
 * ("dbtap: ready (1 instance, capture path socket)"). */
static bool has_ready_line(const char *text)
{
	const size_t n = strlen(AGENT_READY_LINE);
	const char *p = text;

	while (text && (p = strstr(p, AGENT_READY_LINE))) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0' || p[n] == ' '))
			return true;
		p++;
	}
	return false;
}

char *agent_read_stderr(const struct agent *a)
{
	return testutil_read_file(a->err_path, NULL);
}

static bool next_ignores_sigint;

void agent_next_start_ignores_sigint(void)
{
	next_ignores_sigint = true;
}

static int ignore_sigint(void)
{
	return signal(SIGINT, SIG_IGN) == SIG_ERR;
}

int agent_start(struct agent *a, double interval_s, const char *const *extra_args)
{
	struct testutil_spawn_opts opts = {.parent_death_signal = SIGTERM};
	const char *bin = getenv("DBTAP_BIN") ? getenv("DBTAP_BIN") : AGENT_DEFAULT_BIN;
	const char *argv[AGENT_MAX_ARGS + 10];
	char dir[256], interval[32];
	uint64_t deadline;
	int argc = 0, err, status;
	FILE *f;

	memset(a, 0, sizeof(*a));
	err = testutil_make_temp_dir("dbtap-agent-", dir, sizeof(dir));
	if (err)
		return err;
	snprintf(a->out_path, sizeof(a->out_path), "%.200s/out.jsonl", dir);
	snprintf(a->err_path, sizeof(a->err_path), "%.200s/stderr.log", dir);
	/* The output file exists even if the agent never writes a line. */
	f = fopen(a->out_path, "w");
	if (!f || fclose(f))
		return -errno;
	snprintf(interval, sizeof(interval), "%g", interval_s);

	argv[argc++] = bin;
	argv[argc++] = "--output";
	argv[argc++] = "json";
	argv[argc++] = "--output-file";
	argv[argc++] = a->out_path;
	argv[argc++] = "--interval";
	argv[argc++] = interval;
	while (extra_args && *extra_args) {
		if (argc >= AGENT_MAX_ARGS)
			return -E2BIG;
		argv[argc++] = *extra_args++;
	}
	argv[argc] = NULL;

	opts.output_path = a->err_path;
	if (next_ignores_sigint)
		opts.before_exec = ignore_sigint;
	next_ignores_sigint = false;
	err = testutil_spawn(argv, &opts, &a->pid);
	if (err)
		return err;
	testutil_track_process(a->pid, a->pid, SIGKILL);
	remember_agent(a->pid);

	deadline = testutil_now_ms() + AGENT_READY_TIMEOUT_MS;
	for (;;) {
		char *text = testutil_read_file(a->err_path, NULL);
		bool ready = has_ready_line(text);

		free(text);
		if (ready)
			return 0;
		err = testutil_wait(a->pid, 0, &status);
		if (err == 0 || err == -ECHILD) {
			char why[128];

			snprintf(why, sizeof(why), "%s exited (code %d) before \"%s\"", bin,
				 err ? -1 : testutil_exit_code(status), AGENT_READY_LINE);
			print_stderr(a, why);
			testutil_untrack_process(a->pid);
			forget_agent(a->pid);
			a->pid = 0;
			return -ECHILD;
		}
		if (testutil_now_ms() >= deadline) {
			print_stderr(a, "no \"" AGENT_READY_LINE "\" within 30 s; killed");
			testutil_stop_process(a->pid, a->pid, SIGKILL, AGENT_STOP_TIMEOUT_MS, NULL);
			forget_agent(a->pid);
			a->pid = 0;
			return -ETIMEDOUT;
		}
		testutil_sleep_ms(AGENT_POLL_MS);
	}
}

/* Where a hung agent is: each thread's state and kernel stack, then (with gdb) its user stacks. */
static void dump_hung(pid_t pid)
{
	char cmd[512];

	fprintf(stderr, "agent %d: still running %d s after SIGINT; where its threads are:\n",
		(int)pid, AGENT_STOP_TIMEOUT_MS / 1000);
	fflush(stderr);
	snprintf(cmd, sizeof(cmd),
		 "for t in /proc/%d/task/*; do echo \"== $t $(cat $t/comm) $(grep State $t/status)"
		 " wchan=$(cat $t/wchan)\"; cat $t/stack; done 1>&2; command -v gdb >/dev/null &&"
		 " timeout 30 gdb -p %d -batch -ex 'thread apply all bt' 2>/dev/null |"
		 " grep -E '^(Thread|#)' 1>&2",
		 (int)pid, (int)pid);
	if (system(cmd) == -1)
		fprintf(stderr, "agent %d: could not run the dump\n", (int)pid);
}

int agent_stop(struct agent *a)
{
	int status = 0, err, code;

	if (a->pid <= 0)
		return -ECHILD;
	err = kill(a->pid, SIGINT) ? -errno : testutil_wait(a->pid, AGENT_STOP_TIMEOUT_MS, &status);
	if (err == -ETIMEDOUT) {
		dump_hung(a->pid);
		kill(a->pid, SIGKILL);
		testutil_wait(a->pid, -1, NULL);
	}
	testutil_untrack_process(a->pid);
	forget_agent(a->pid);
	a->pid = 0;
	if (err) {
		print_stderr(a, err == -ETIMEDOUT ? "did not exit within 15 s of SIGINT; killed"
						  : "could not be stopped");
		return err;
	}
	code = testutil_exit_code(status);
	if (code != 0) {
		char why[64];

		snprintf(why, sizeof(why), "exit code %d after SIGINT", code);
		print_stderr(a, why);
	}
	return code;
}

void agent_stop_all(void)
{
	int i;

	for (i = 0; i < MAX_AGENTS; i++) {
		if (running_agents[i] <= 0)
			continue;
		testutil_stop_process(running_agents[i], running_agents[i], SIGINT,
				      AGENT_STOP_TIMEOUT_MS, NULL);
		running_agents[i] = 0;
	}
}

cJSON *agent_read_lines(const struct agent *a)
{
	char *text = testutil_read_file(a->out_path, NULL);
	char *line, *save = NULL;
	cJSON *lines;

	if (!text) {
		fprintf(stderr, "agent: cannot read %s: %s\n", a->out_path, strerror(errno));
		return NULL;
	}
	lines = cJSON_CreateArray();
	for (line = strtok_r(text, "\n", &save); lines && line;
	     line = strtok_r(NULL, "\n", &save)) {
		cJSON *obj = cJSON_Parse(line);

		if (!cJSON_IsObject(obj)) {
			fprintf(stderr, "agent: %s: not a JSON object: %s\n", a->out_path, line);
			cJSON_Delete(obj);
			cJSON_Delete(lines);
			lines = NULL;
			break;
		}
		cJSON_AddItemToArray(lines, obj);
	}
	free(text);
	return lines;
}

static bool has_kind(const cJSON *line, const char *kind)
{
	const char *k = testutil_json_string(line, "kind");

	return k && !strcmp(k, kind);
}

static bool attribute_matches(const cJSON *line, const char *key, const char *value)
{
	cJSON *item = testutil_json_get(line, key);
	int64_t n;
	char *end;

	if (cJSON_IsString(item))
		return !strcmp(item->valuestring, value);
	if (testutil_json_int(line, key, &n))
		return n == strtoll(value, &end, 10) && *value && !*end;
	if (cJSON_IsBool(item))
		return !strcmp(value, cJSON_IsTrue(item) ? "true" : "false");
	return false;
}

static bool series_matches(const cJSON *line, const char *const *match)
{
	if (!has_kind(line, "dbtap.series"))
		return false;
	for (; match && match[0] && match[1]; match += 2)
		if (!attribute_matches(line, match[0], match[1]))
			return false;
	return true;
}

static uint64_t int_or_zero(const cJSON *line, const char *path)
{
	int64_t v;

	return testutil_json_int(line, path, &v) && v > 0 ? (uint64_t)v : 0;
}

uint64_t agent_sum_series(cJSON *lines, const char *field, const char *const *match)
{
	uint64_t sum = 0;
	cJSON *line;

	cJSON_ArrayForEach (line, lines) {
		if (series_matches(line, match))
			sum += int_or_zero(line, field);
	}
	return sum;
}

unsigned int agent_count_series(cJSON *lines, const char *const *match)
{
	unsigned int n = 0;
	cJSON *line;

	cJSON_ArrayForEach (line, lines) {
		if (series_matches(line, match))
			n++;
	}
	return n;
}

uint64_t agent_sum_self(cJSON *lines, const char *path)
{
	uint64_t sum = 0;
	cJSON *line;

	cJSON_ArrayForEach (line, lines) {
		if (has_kind(line, "dbtap.self"))
			sum += int_or_zero(line, path);
	}
	return sum;
}
