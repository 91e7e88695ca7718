/* Test harness plumbing shared by the helpers in tests/lib: spawning children, stopping them by
 * PID (also at exit and on fatal signals of the test process), temp dirs, files, clocks, JSON
 * paths. Test code normally uses pgserver.h and agent.h, which are built on this. */
#ifndef DBTAP_TESTS_TESTUTIL_H
#define DBTAP_TESTS_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

/* How a spawned child is set up between fork and exec. */
struct testutil_spawn_opts {
	const char *output_path; /* stdout+stderr appended here; NULL: /dev/null */
	uid_t uid;		 /* drop to this user and group when run_as_user */
	gid_t gid;
	bool run_as_user;
	int parent_death_signal; /* sent to the child when the test process dies; 0: none */
	/* Runs in the child after the redirections, before dropping privileges; a non-zero
	 * return makes the child exit with status 127. */
	int (*before_exec)(void);
};

/* Fork and exec @argv (argv[0] without a slash is searched in $PATH) in its own session;
 * ret_pid is the child's PID. 0 or -errno. The child is not tracked: see
 * testutil_track_process(). */
int testutil_spawn(const char *const *argv, const struct testutil_spawn_opts *opts, pid_t *ret_pid);

/* Wait for child @pid up to @timeout_ms (< 0: forever). 0 and the wait status in @ret_status,
 * -ETIMEDOUT when it is still running, or -errno (-ECHILD: not our child or already reaped). */
int testutil_wait(pid_t pid, int timeout_ms, int *ret_status);

/* Exit code of a wait status: WEXITSTATUS, or 128 + signal number when killed by a signal. */
int testutil_exit_code(int status);

/* Stop a process by PID: @stop_signal to @signal_pid, wait up to @timeout_ms for our child
 * @wait_pid (the same PID unless something sits in between, as for a PID namespace), then
 * SIGKILL both and reap. 0 and the wait status in @ret_status, -ETIMEDOUT when SIGKILL was
 * needed (status still stored), -ECHILD when @wait_pid was already reaped. Untracks it. */
int testutil_stop_process(pid_t signal_pid, pid_t wait_pid, int stop_signal, int timeout_ms,
			  int *ret_status);

/* Remember a running child so that exit() and SIGINT/SIGTERM/SIGABRT/SIGSEGV/SIGBUS of the test
 * process stop it (stop_signal, short grace period, SIGKILL). 0 or -ENOSPC. */
int testutil_track_process(pid_t signal_pid, pid_t wait_pid, int stop_signal);
void testutil_untrack_process(pid_t wait_pid);

/* Create a fresh directory /tmp/<prefix>XXXXXX (mode 0755), removed at exit of the test process
 * unless $DBTAP_TEST_KEEP is set. 0 or -errno. @ret_path holds at least 256 bytes. */
int testutil_make_temp_dir(const char *prefix, char *ret_path, size_t size);
/* Remove @path recursively now (unless $DBTAP_TEST_KEEP is set) and forget it. */
void testutil_remove_dir(const char *path);

/* Whole file as a NUL-terminated malloc'd string (length in @ret_len if not NULL), or NULL
 * with errno set. */
char *testutil_read_file(const char *path, size_t *ret_len);
/* True when @text contains @line as a complete line. */
bool testutil_has_line(const char *text, const char *line);

/* Run @argv to completion (up to @timeout_ms, then SIGKILL) with stdout+stderr captured; the
 * captured text in @ret_output (malloc'd; may be NULL). Returns the exit code (0..255, 128+sig)
 * or -errno. */
int testutil_run(const char *const *argv, int timeout_ms, char **ret_output);

uint64_t testutil_now_ms(void);
void testutil_sleep_ms(long ms);

/* JSON member at @path: the flat key @path itself if present (dbtap's dotted keys like
 * "db.query.text" are flat), else nested objects split at dots ("counters.undecodable"). */
cJSON *testutil_json_get(const cJSON *obj, const char *path);
/* The string at @path, or NULL when absent or not a string. */
const char *testutil_json_string(const cJSON *obj, const char *path);
/* True when @path is a number with an integral value; the value in @ret. */
bool testutil_json_int(const cJSON *obj, const char *path, int64_t *ret);

#endif /* DBTAP_TESTS_TESTUTIL_H */
