// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * redisserver.c - throwaway redis-server instances for integration tests (see redisserver.h):
 * a temp dir, a free loopback port, a unix socket, stopped by PID.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/redisserver.h"
#include "lib/testutil.h"

#define START_ATTEMPTS	 4     /* new port after the server failed to start */
#define READY_TIMEOUT_MS 10000 /* for the first PING answer */
#define STOP_TIMEOUT_MS	 10000 /* SIGTERM, then SIGKILL */
#define MAX_ARGS	 64
#define BENCH_TIMEOUT_MS 300000

static const char *server_binary(void)
{
	const char *b = getenv("DBTAP_REDIS_SERVER");

	return b && *b ? b : "redis-server";
}

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close). */
static int pick_free_port(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	int fd, port;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    getsockname(fd, (struct sockaddr *)&addr, &len)) {
		port = -errno;
		close(fd);
		return port;
	}
	port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

static bool answers_ping(const struct redisserver *s)
{
	struct timeval tv = {.tv_sec = 1};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
	redisReply *r;
	bool ok = false;

	if (!c)
		return false;
	if (!c->err) {
		r = redisCommand(c, "PING");
		ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
		if (r)
			freeReplyObject(r);
	}
	redisFree(c);
	return ok;
}

static int start_once(struct redisserver *s, const char *const *extra_args)
{
	const char *argv[MAX_ARGS];
	struct testutil_spawn_opts opts = {0};
	char port[16];
	uint64_t deadline;
	int n = 0, err, status;

	s->port = pick_free_port();
	if (s->port < 0)
		return s->port;
	snprintf(port, sizeof(port), "%d", s->port);
	argv[n++] = server_binary();
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--bind";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--unixsocket";
	argv[n++] = s->socket_path;
	argv[n++] = "--unixsocketperm";
	argv[n++] = "700";
	argv[n++] = "--dir";
	argv[n++] = s->dir;
	argv[n++] = "--save";
	argv[n++] = "";
	argv[n++] = "--appendonly";
	argv[n++] = "no";
	argv[n++] = "--daemonize";
	argv[n++] = "no";
	argv[n++] = "--protected-mode";
	argv[n++] = "no";
	for (; extra_args && *extra_args && n < MAX_ARGS - 1; extra_args++)
		argv[n++] = *extra_args;
	argv[n] = NULL;

	opts.output_path = s->log_path;
	opts.parent_death_signal = SIGKILL;
	err = testutil_spawn(argv, &opts, &s->pid);
	if (err)
		return err;
	testutil_track_process(s->pid, s->pid, SIGTERM);
	deadline = testutil_now_ms() + READY_TIMEOUT_MS;
	while (testutil_now_ms() < deadline) {
		if (answers_ping(s))
			return 0;
		if (testutil_wait(s->pid, 0, &status) == 0) {
			testutil_untrack_process(s->pid);
			s->pid = 0;
			return -ECHILD; /* exited: port taken, bad option... */
		}
		testutil_sleep_ms(20);
	}
	return -ETIMEDOUT;
}

int redisserver_start(struct redisserver *s, const char *const *extra_args)
{
	char *log;
	int err = -EINVAL, i;

	memset(s, 0, sizeof(*s));
	err = testutil_make_temp_dir("dbtap-redis-", s->dir, sizeof(s->dir));
	if (err)
		return err;
	snprintf(s->socket_path, sizeof(s->socket_path), "%s/redis.sock", s->dir);
	snprintf(s->log_path, sizeof(s->log_path), "%s/redis.log", s->dir);
	for (i = 0; i < START_ATTEMPTS; i++) {
		err = start_once(s, extra_args);
		if (err != -ECHILD)
			break;
	}
	if (err) {
		log = testutil_read_file(s->log_path, NULL);
		fprintf(stderr, "redisserver: %s failed to start (%d):\n%s\n", server_binary(), err,
			log ? log : "(no log)");
		free(log);
		redisserver_stop(s);
	}
	return err;
}

void redisserver_stop(struct redisserver *s)
{
	int status;

	if (!s)
		return;
	if (s->pid > 0)
		testutil_stop_process(s->pid, s->pid, SIGTERM, STOP_TIMEOUT_MS, &status);
	s->pid = 0;
	if (s->dir[0])
		testutil_remove_dir(s->dir);
	s->dir[0] = 0;
}

redisContext *redisserver_connect(const struct redisserver *s, bool unix_socket)
{
	redisContext *c =
		unix_socket ? redisConnectUnix(s->socket_path) : redisConnect("127.0.0.1", s->port);

	if (!c || c->err)
		fail_msg("redis connect (%s): %s", unix_socket ? s->socket_path : "tcp",
			 c ? c->errstr : "out of memory");
	return c;
}

redisReply *redisserver_command(redisContext *c, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r)
		fail_msg("redis command \"%s\": %s", fmt, c->errstr);
	return r;
}

uint64_t redisserver_calls(redisContext *c, const char *name)
{
	redisReply *r = redisserver_command(c, "INFO commandstats");
	char needle[128];
	const char *p;
	uint64_t calls = 0;

	if (r->type != REDIS_REPLY_STRING)
		fail_msg("INFO commandstats: reply type %d", r->type);
	/* lines: cmdstat_<name>:calls=N,usec=...  */
	snprintf(needle, sizeof(needle), "\ncmdstat_%s:calls=", name);
	p = strstr(r->str, needle);
	if (p)
		calls = strtoull(p + strlen(needle), NULL, 10);
	else if (!strncmp(r->str, needle + 1, strlen(needle + 1)))
		calls = strtoull(r->str + strlen(needle + 1), NULL, 10);
	freeReplyObject(r);
	return calls;
}

int redisserver_benchmark(const struct redisserver *s, const char *args, char **ret_output)
{
	const char *argv[MAX_ARGS];
	char port[16], *copy, *tok, *save = NULL;
	int n = 0, rc;

	copy = strdup(args);
	if (!copy)
		return -ENOMEM;
	snprintf(port, sizeof(port), "%d", s->port);
	argv[n++] = "redis-benchmark";
	argv[n++] = "-h";
	argv[n++] = "127.0.0.1";
	argv[n++] = "-p";
	argv[n++] = port;
	for (tok = strtok_r(copy, " \t", &save); tok && n < MAX_ARGS - 1;
	     tok = strtok_r(NULL, " \t", &save))
		argv[n++] = tok;
	argv[n] = NULL;
	rc = testutil_run(argv, BENCH_TIMEOUT_MS, ret_output);
	free(copy);
	return rc;
}

const char *redisserver_version(void)
{
	static char line[256];
	const char *argv[] = {server_binary(), "--version", NULL};
	char *out = NULL;

	if (line[0])
		return line;
	if (testutil_run(argv, 10000, &out) != 0) {
		free(out);
		return NULL;
	}
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(out, "\n"), out);
	free(out);
	return line;
}
