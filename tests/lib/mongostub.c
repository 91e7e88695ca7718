/* The MongoDB stand-in for integration tests: see mongostub.h. */
#include "lib/mongostub.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/testutil.h"

#define STUB_DIR	 "tests/mongo-stub" /* relative to the repo root, the tests' CWD */
#define NPM_TIMEOUT_MS	 180000
#define START_TIMEOUT_MS 15000
#define STOP_TIMEOUT_MS	 5000
#define POLL_MS		 50

/* npm ci (or install when there is no lock file) into tests/mongo-stub. */
static int install_deps(void)
{
	const char *const argv[] = {"npm",	  "ci",	       "--prefix", STUB_DIR,
				    "--no-audit", "--no-fund", NULL};
	char *out = NULL;
	struct stat st;
	int rc;

	if (stat(STUB_DIR "/node_modules/bson", &st) == 0)
		return 0;
	rc = testutil_run(argv, NPM_TIMEOUT_MS, &out);
	if (rc != 0) {
		fprintf(stderr, "mongostub: npm ci in %s failed (%d):\n%s\n", STUB_DIR, rc,
			out ? out : "");
		free(out);
		return rc < 0 ? rc : -EIO;
	}
	free(out);
	return 0;
}

/* Where node is: the first "node" in $PATH. */
static int find_node(char *ret, size_t size)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	int err = -ENOENT;

	copy = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (!copy)
		return -ENOMEM;
	for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(ret, size, "%s/node", dir);
		if (access(ret, X_OK) == 0) {
			err = 0;
			break;
		}
	}
	free(copy);
	return err;
}

int mongostub_start(struct mongostub *s)
{
	char node[PATH_MAX], link[300], script[PATH_MAX + 64], cwd[PATH_MAX];
	const char *argv[5];
	struct testutil_spawn_opts opts = {.parent_death_signal = SIGKILL};
	uint64_t deadline;
	char *out;
	int err;

	memset(s, 0, sizeof(*s));
	err = install_deps();
	if (err)
		return err;
	err = find_node(node, sizeof(node));
	if (err) {
		fprintf(stderr, "mongostub: node not found in $PATH\n");
		return err;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	snprintf(script, sizeof(script), "%s/%s/stub.js", cwd, STUB_DIR);
	err = testutil_make_temp_dir("dbtap-mongostub-", s->dir, sizeof(s->dir));
	if (err)
		return err;
	/* the task name comes from the executable's file name */
	snprintf(link, sizeof(link), "%s/mongod", s->dir);
	if (symlink(node, link))
		return -errno;
	snprintf(s->log_path, sizeof(s->log_path), "%s/commands.log", s->dir);
	snprintf(s->out_path, sizeof(s->out_path), "%s/stub.out", s->dir);
	argv[0] = link;
	argv[1] = script;
	argv[2] = "0";
	argv[3] = s->log_path;
	argv[4] = NULL;
	opts.output_path = s->out_path;
	err = testutil_spawn(argv, &opts, &s->pid);
	if (err)
		return err;
	testutil_track_process(s->pid, s->pid, SIGTERM);
	deadline = testutil_now_ms() + START_TIMEOUT_MS;
	while (testutil_now_ms() < deadline) {
		out = testutil_read_file(s->out_path, NULL);
		if (out) {
			char *p = strstr(out, "listening ");

			if (p && strchr(p, '\n')) {
				s->port = atoi(p + strlen("listening "));
				free(out);
				snprintf(s->uri, sizeof(s->uri), "mongodb://127.0.0.1:%d", s->port);
				return s->port > 0 ? 0 : -EPROTO;
			}
			free(out);
		}
		if (testutil_wait(s->pid, 0, &err) == 0) {
			s->pid = 0;
			break;
		}
		testutil_sleep_ms(POLL_MS);
	}
	out = testutil_read_file(s->out_path, NULL);
	fprintf(stderr, "mongostub: the stub did not start listening:\n%s\n", out ? out : "");
	free(out);
	mongostub_stop(s);
	return -ETIMEDOUT;
}

void mongostub_stop(struct mongostub *s)
{
	int status;

	if (s->pid > 0)
		testutil_stop_process(s->pid, s->pid, SIGTERM, STOP_TIMEOUT_MS, &status);
	s->pid = 0;
	if (s->dir[0])
		testutil_remove_dir(s->dir);
	s->dir[0] = 0;
}

int mongostub_count(const struct mongostub *s, const char *command, const char *wire)
{
	char *text = testutil_read_file(s->log_path, NULL), *line, *save = NULL, *sp;
	size_t n = strlen(command);
	int count = 0;

	if (!text)
		return errno == ENOENT ? 0 : -errno;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		sp = strchr(line, ' ');
		if (!sp || (size_t)(sp - line) != n || strncmp(line, command, n))
			continue;
		if (!wire || !strcmp(sp + 1, wire))
			count++;
	}
	free(text);
	return count;
}
