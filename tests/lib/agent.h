/* Running the agent under test (build/dbtap, or $DBTAP_BIN) from integration tests: start it
 * with JSON-lines output to a temp file, wait for "dbtap: ready", stop it by PID, and read and
 * sum its output. Agents still running when the test process exits or dies are killed by PID. */
#ifndef DBTAP_TESTS_AGENT_H
#define DBTAP_TESTS_AGENT_H

#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct agent {
	pid_t pid;	    /* 0 when not running */
	char out_path[256]; /* --output-file: the JSON lines */
	char err_path[256]; /* stderr and stdout of the agent */
};

/* The next agent_start() runs the agent with SIGINT ignored, as a shell starts a background
 * job (`dbtap ... &` in a script): SIGINT must stop it all the same. */
void agent_next_start_ignores_sigint(void);

/* Start $DBTAP_BIN (default build/dbtap, relative to the repo root, the tests' CWD) with
 * --output json --output-file <tmp> --interval <interval_s> and @extra_args (NULL-terminated,
 * may be NULL), and wait (30 s) until its stderr has the line "dbtap: ready" (details may follow
 * after a space). On timeout or early exit prints its stderr and returns -ETIMEDOUT (after
 * killing it) or -ECHILD. */
int agent_start(struct agent *a, double interval_s, const char *const *extra_args);

/* SIGINT, wait up to 15 s; returns the agent's exit code (128 + signal when killed by one), or
 * -ETIMEDOUT after it had to be SIGKILLed, -ECHILD when it was not running. Prints its stderr
 * when the exit code is not 0. */
int agent_stop(struct agent *a);

/* Every JSON line of the output file, parsed, as a cJSON array (caller deletes). NULL when the
 * file cannot be read or a line is not a JSON object (the line is printed to stderr). */
cJSON *agent_read_lines(const struct agent *a);

/* Sum of integer @field over lines with kind "dbtap.series" whose attributes match every
 * (key, value) pair in @match (NULL-terminated: key1, val1, key2, val2, ..., NULL; may be NULL).
 * A string attribute matches when equal; a number attribute when equal to the value parsed as
 * an integer; an absent attribute never matches. @field may be a flat dotted key ("count") or a
 * path into an object ("error_codes.42P01"); absent fields count 0. */
uint64_t agent_sum_series(cJSON *lines, const char *field, const char *const *match);

/* Number of "dbtap.series" lines matching @match (as for agent_sum_series). */
unsigned int agent_count_series(cJSON *lines, const char *const *match);

/* Sum of a "dbtap.self" integer field, by dotted path ("ops", "counters.undecodable"). */
uint64_t agent_sum_self(cJSON *lines, const char *path);

/* Whole stderr of the agent (malloc'd), or NULL. */
char *agent_read_stderr(const struct agent *a);

/* Stop every agent this process started that is still running (SIGKILL after 15 s); for test
 * teardowns after a failed assertion. */
void agent_stop_all(void);

#endif /* DBTAP_TESTS_AGENT_H */
