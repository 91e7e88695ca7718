/* Test harness plumbing: spawn children, stop them by PID (also from atexit and fatal-signal
 * handlers, so a failing or interrupted test never leaves a server or agent behind), temp dirs,
 * whole-file reads, clocks and JSON path lookups. */
#include "lib/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED_PROCS 64
#define MAX_TRACKED_DIRS  64
#define TRACKED_DIR_LEN	  256
#define CLEANUP_GRACE_MS  5000 /* per-process grace before SIGKILL when the test process dies */
#define POLL_MS		  10
#define NFTW_FDS	  16
#define EXEC_FAILED_EXIT  127

/* ---- registry of what must not outlive the test process ---- */

struct tracked_proc {
	pid_t signal_pid; /* gets stop_signal (postmaster, agent, ...) */
	pid_t wait_pid;	  /* our child, reaped with waitpid */
	int stop_signal;
};

static struct tracked_proc tracked_procs[MAX_TRACKED_PROCS];
static char tracked_dirs[MAX_TRACKED_DIRS][TRACKED_DIR_LEN];
static pid_t cleanup_owner; /* the test process; forked children must not clean up */
static bool keep_dirs;	    /* $DBTAP_TEST_KEEP: leave temp dirs for inspection */
static volatile sig_atomic_t cleaning;
static const int fatal_signals[] = {SIGINT, SIGTERM, SIGABRT, SIGSEGV, SIGBUS};

static void sleep_ms_raw(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Remove a directory tree with only async-signal-safe calls (fork, execve, waitpid). */
static void remove_dir_signal_safe(const char *path)
{
	static char *const envp[] = {NULL};
	pid_t pid = fork();

	if (pid == 0) {
		char *const argv[] = {"rm", "-rf", "--", (char *)path, NULL};

		execve("/bin/rm", argv, envp);
		_exit(EXEC_FAILED_EXIT);
	}
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}

/* Stop every tracked process (stop signal, shared grace period, SIGKILL), remove tracked dirs.
 * Async-signal-safe: runs from the fatal-signal handler as well as from atexit. */
static void cleanup_all(void)
{
	bool pending[MAX_TRACKED_PROCS] = {false};
	int i, waited, left = 0;

	if (cleaning || getpid() != cleanup_owner)
		return;
	cleaning = 1;

	for (i = 0; i < MAX_TRACKED_PROCS; i++) {
		if (tracked_procs[i].wait_pid <= 0)
			continue;
		kill(tracked_procs[i].signal_pid, tracked_procs[i].stop_signal);
		pending[i] = true;
		left++;
	}
	for (waited = 0; left > 0 && waited < CLEANUP_GRACE_MS; waited += POLL_MS) {
		for (i = 0; i < MAX_TRACKED_PROCS; i++) {
			pid_t r;

			if (!pending[i])
				continue;
			r = waitpid(tracked_procs[i].wait_pid, NULL, WNOHANG);
			if (r != 0) { /* reaped, or not ours any more */
				pending[i] = false;
				left--;
			}
		}
		if (left > 0)
			sleep_ms_raw(POLL_MS);
	}
	for (i = 0; i < MAX_TRACKED_PROCS; i++) {
		if (!pending[i])
			continue;
		kill(tracked_procs[i].signal_pid, SIGKILL);
		kill(tracked_procs[i].wait_pid, SIGKILL);
		while (waitpid(tracked_procs[i].wait_pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	for (i = 0; i < MAX_TRACKED_PROCS; i++)
		tracked_procs[i].wait_pid = 0;

	for (i = 0; i < MAX_TRACKED_DIRS; i++) {
		if (!tracked_dirs[i][0])
			continue;
		if (!keep_dirs)
			remove_dir_signal_safe(tracked_dirs[i]);
		tracked_dirs[i][0] = '\0';
	}
	cleaning = 0;
}

static void fatal_signal_handler(int sig)
{
	cleanup_all();
	/* SA_RESETHAND restored the default action: die of the same signal. */
	raise(sig);
}

static void install_cleanup(void)
{
	struct sigaction sa;
	size_t i;

	if (cleanup_owner == getpid())
		return;
	cleanup_owner = getpid();
	keep_dirs = getenv("DBTAP_TEST_KEEP") != NULL;
	atexit(cleanup_all);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fatal_signal_handler;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		sigaction(fatal_signals[i], &sa, NULL);
}

int testutil_track_process(pid_t signal_pid, pid_t wait_pid, int stop_signal)
{
	int i;

	install_cleanup();
	for (i = 0; i < MAX_TRACKED_PROCS; i++) {
		if (tracked_procs[i].wait_pid > 0)
			continue;
		tracked_procs[i].signal_pid = signal_pid;
		tracked_procs[i].stop_signal = stop_signal;
		tracked_procs[i].wait_pid = wait_pid; /* last: marks the slot used */
		return 0;
	}
	return -ENOSPC;
}

void testutil_untrack_process(pid_t wait_pid)
{
	int i;

	for (i = 0; i < MAX_TRACKED_PROCS; i++)
		if (tracked_procs[i].wait_pid == wait_pid)
			tracked_procs[i].wait_pid = 0;
}

/* ---- children ---- */

int testutil_spawn(const char *const *argv, const struct testutil_spawn_opts *opts, pid_t *ret_pid)
{
	struct testutil_spawn_opts none = {0};
	pid_t parent = getpid();
	pid_t pid;

	if (!opts)
		opts = &none;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = opts->output_path ? open(opts->output_path,
						   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)
					    : open("/dev/null", O_WRONLY);

		setsid(); /* terminal signals go to the test process, which stops us by PID */
		if (in < 0 || out < 0 || dup2(in, STDIN_FILENO) < 0 ||
		    dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
			_exit(EXEC_FAILED_EXIT);
		close_range(STDERR_FILENO + 1, ~0U, 0); /* no libpq sockets etc. in the child */
		if (opts->before_exec && opts->before_exec())
			_exit(EXEC_FAILED_EXIT);
		if (opts->run_as_user) {
			if (setgroups(1, &opts->gid) || setgid(opts->gid) || setuid(opts->uid)) {
				dprintf(STDERR_FILENO, "spawn %s: cannot switch to uid %u: %s\n",
					argv[0], (unsigned)opts->uid, strerror(errno));
				_exit(EXEC_FAILED_EXIT);
			}
		}
		/* After the credential change, which clears the parent-death signal. */
		if (opts->parent_death_signal) {
			pid_t ppid;

			prctl(PR_SET_PDEATHSIG, opts->parent_death_signal);
			/* Parent already gone? (0: the parent is outside our new PID namespace) */
			ppid = getppid();
			if (ppid != parent && ppid != 0)
				_exit(EXEC_FAILED_EXIT);
		}
		execvp(argv[0], (char *const *)argv);
		dprintf(STDERR_FILENO, "spawn: cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(EXEC_FAILED_EXIT);
	}
	*ret_pid = pid;
	return 0;
}

int testutil_wait(pid_t pid, int timeout_ms, int *ret_status)
{
	uint64_t deadline = testutil_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int status = 0;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, timeout_ms < 0 ? 0 : WNOHANG);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == pid)
			break;
		if (testutil_now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms_raw(POLL_MS);
	}
	if (ret_status)
		*ret_status = status;
	return 0;
}

int testutil_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

int testutil_stop_process(pid_t signal_pid, pid_t wait_pid, int stop_signal, int timeout_ms,
			  int *ret_status)
{
	int status = 0;
	int err;

	if (kill(signal_pid, stop_signal) && errno != ESRCH) {
		err = -errno;
		testutil_untrack_process(wait_pid);
		return err;
	}
	err = testutil_wait(wait_pid, timeout_ms, &status);
	if (err == -ETIMEDOUT) {
		kill(signal_pid, SIGKILL);
		kill(wait_pid, SIGKILL);
		if (testutil_wait(wait_pid, -1, &status) == 0 && ret_status)
			*ret_status = status;
	} else if (err == 0 && ret_status) {
		*ret_status = status;
	}
	testutil_untrack_process(wait_pid);
	return err;
}

/* ---- temp dirs and files ---- */

int testutil_make_temp_dir(const char *prefix, char *ret_path, size_t size)
{
	int i;

	install_cleanup();
	if ((size_t)snprintf(ret_path, size, "/tmp/%sXXXXXX", prefix) >= size ||
	    strlen(ret_path) >= TRACKED_DIR_LEN)
		return -ENAMETOOLONG;
	if (!mkdtemp(ret_path))
		return -errno;
	if (chmod(ret_path, 0755))
		return -errno;
	for (i = 0; i < MAX_TRACKED_DIRS; i++) {
		if (tracked_dirs[i][0])
			continue;
		snprintf(tracked_dirs[i], TRACKED_DIR_LEN, "%s", ret_path);
		return 0;
	}
	rmdir(ret_path);
	return -ENOSPC;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void testutil_remove_dir(const char *path)
{
	int i;

	if (!path || !path[0])
		return;
	if (!keep_dirs && !getenv("DBTAP_TEST_KEEP"))
		nftw(path, remove_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS);
	for (i = 0; i < MAX_TRACKED_DIRS; i++)
		if (!strcmp(tracked_dirs[i], path))
			tracked_dirs[i][0] = '\0';
}

char *testutil_read_file(const char *path, size_t *ret_len)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	ssize_t n;
	int fd;

	if (!buf)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			char *bigger = realloc(buf, cap * 2 + 1);

			if (!bigger)
				goto fail;
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	return buf;
fail:
	n = errno;
	close(fd);
	free(buf);
	errno = n;
	return NULL;
}

bool testutil_has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while (text && (p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
		p++;
	}
	return false;
}

int testutil_run(const char *const *argv, int timeout_ms, char **ret_output)
{
	struct testutil_spawn_opts opts = {.parent_death_signal = SIGKILL};
	char path[] = "/tmp/dbtap-run-XXXXXX";
	int status = 0, err, fd;
	pid_t pid;

	if (ret_output)
		*ret_output = NULL;
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	close(fd);
	opts.output_path = path;
	err = testutil_spawn(argv, &opts, &pid);
	if (err)
		goto out;
	testutil_track_process(pid, pid, SIGKILL);
	err = testutil_wait(pid, timeout_ms, &status);
	if (err == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		testutil_wait(pid, -1, &status);
	}
	testutil_untrack_process(pid);
	if (err)
		goto out;
	if (ret_output)
		*ret_output = testutil_read_file(path, NULL);
	err = testutil_exit_code(status);
out:
	unlink(path);
	return err;
}

/* ---- clocks ---- */

uint64_t testutil_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void testutil_sleep_ms(long ms)
{
	sleep_ms_raw(ms);
}

/* ---- JSON ---- */

cJSON *testutil_json_get(const cJSON *obj, const char *path)
{
	const char *dot;
	cJSON *item;

	if (!obj || !path)
		return NULL;
	item = cJSON_GetObjectItemCaseSensitive(obj, path);
	if (item)
		return item;
	/* Try every split point: "a.b.c" as "a" + "b.c", then "a.b" + "c". */
	for (dot = strchr(path, '.'); dot; dot = strchr(dot + 1, '.')) {
		char head[256];
		cJSON *child;

		if ((size_t)(dot - path) >= sizeof(head))
			break;
		memcpy(head, path, dot - path);
		head[dot - path] = '\0';
		child = cJSON_GetObjectItemCaseSensitive(obj, head);
		if (cJSON_IsObject(child) && (item = testutil_json_get(child, dot + 1)))
			return item;
	}
	return NULL;
}

const char *testutil_json_string(const cJSON *obj, const char *path)
{
	cJSON *item = testutil_json_get(obj, path);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

bool testutil_json_int(const cJSON *obj, const char *path, int64_t *ret)
{
	cJSON *item = testutil_json_get(obj, path);
	double v;

	if (!cJSON_IsNumber(item))
		return false;
	v = item->valuedouble;
	if (v != (double)(int64_t)v)
		return false;
	*ret = (int64_t)v;
	return true;
}
