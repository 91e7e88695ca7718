/* The MongoDB stand-in for integration tests (tests/mongo-stub/stub.js: the wire protocol with
 * in-memory answers, see there): installs its npm dependencies when node_modules is missing,
 * starts it on a free 127.0.0.1 port as a process whose task name is "mongod" (node run
 * through a symlink of that name), and stops it by PID at the end, at exit or on a fatal signal
 * of the test process. Every command the stub handled is a line of its log: the server-side
 * count the tests compare dbtap's with. */
#ifndef DBTAP_TESTS_MONGOSTUB_H
#define DBTAP_TESTS_MONGOSTUB_H

#include <sys/types.h>

struct mongostub {
	pid_t pid;	    /* node, task name "mongod"; 0 when not running */
	int port;	    /* TCP port on 127.0.0.1 */
	char dir[256];	    /* temp dir: the mongod symlink, output and log; removed on stop */
	char log_path[300]; /* one line per command handled: "<command> <wire>" */
	char out_path[300]; /* the stub's stdout and stderr */
	char uri[128];	    /* "mongodb://127.0.0.1:<port>" */
};

/* Start the stub (npm ci in tests/mongo-stub first when its node_modules is missing) and wait
 * (15 s) until it listens. 0 or -errno (its output printed on failure). */
int mongostub_start(struct mongostub *s);

/* SIGTERM by PID (then SIGKILL after 5 s) and removal of s->dir. Idempotent; accepts a zeroed
 * struct. */
void mongostub_stop(struct mongostub *s);

/* Lines of the stub's log whose command is @command and, when @wire is not NULL, whose wire
 * is @wire ("msg", "query", "compressed-msg"). -errno when the log cannot be read. */
int mongostub_count(const struct mongostub *s, const char *command, const char *wire);

#endif /* DBTAP_TESTS_MONGOSTUB_H */
