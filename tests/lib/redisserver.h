/* Throwaway Redis servers for integration tests: redis-server (or $DBTAP_REDIS_SERVER) in a
 * temp dir on a free 127.0.0.1 port and a unix socket in that dir, no persistence; hiredis
 * helpers, INFO commandstats and redis-benchmark. Every started server is stopped by PID at exit
 * or on a fatal signal of the test process, and its temp dir removed. */
#ifndef DBTAP_TESTS_REDISSERVER_H
#define DBTAP_TESTS_REDISSERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

struct redisserver {
	pid_t pid;	       /* redis-server, 0 when not running */
	int port;	       /* TCP port on 127.0.0.1 */
	char dir[256];	       /* temp dir: working dir, log, socket; removed on stop */
	char socket_path[300]; /* unix socket */
	char log_path[300];    /* the server's log */
};

/* Start a server: redis-server --port <free> --bind 127.0.0.1 --unixsocket <dir>/redis.sock
 * --save "" --appendonly no and @extra_args (NULL-terminated, may be NULL), and wait until it
 * answers PING. 0 or -errno (the server log printed to stderr on failure). */
int redisserver_start(struct redisserver *s, const char *const *extra_args);

/* SIGTERM by PID (up to 10 s, then SIGKILL), and removal of s->dir. Idempotent; accepts a
 * zeroed struct. */
void redisserver_stop(struct redisserver *s);

/* Connect over TCP or the unix socket; fails the running cmocka test on error. */
redisContext *redisserver_connect(const struct redisserver *s, bool unix_socket);

/* Run a command (printf-style, as redisCommand) that must not fail at the connection level;
 * returns the reply (caller frees with freeReplyObject). Fails the test on a NULL reply. */
redisReply *redisserver_command(redisContext *c, const char *fmt, ...);

/* "calls" of command @name (lower case: "set", "client|setname") from INFO commandstats; 0
 * when the server has not run it. Fails the test when INFO fails. */
uint64_t redisserver_calls(redisContext *c, const char *name);

/* Run redis-benchmark -h 127.0.0.1 -p <port> with @args (split at whitespace, no quoting).
 * Returns its exit code (128 + signal if killed, -errno if it could not run); its
 * stdout+stderr in @ret_output (malloc'd; may be NULL). */
int redisserver_benchmark(const struct redisserver *s, const char *args, char **ret_output);

/* "Redis server v=7.0.15 ..." first line of redis-server --version (static), or NULL. */
const char *redisserver_version(void);

#endif /* DBTAP_TESTS_REDISSERVER_H */
