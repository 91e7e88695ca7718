/* Throwaway MariaDB servers for integration tests: mariadb-install-db + mariadbd as the OS user
 * 'mysql' in a temp dir on a free port, stopped by PID; libmariadb and sysbench helpers that
 * fail the running cmocka test on error. */
#include "lib/mariadbserver.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "lib/testutil.h"

#define MARIADB_OS_USER	    "mysql" /* created by Debian's mariadb-server */
#define MARIADB_LISTEN_ADDR "127.0.0.1"
#define INSTALL_TIMEOUT_MS  120000
#define START_TIMEOUT_MS    60000
#define STOP_TIMEOUT_MS	    30000
#define SYSBENCH_TIMEOUT_MS 600000
#define READY_POLL_MS	    100
#define MAX_SERVER_ARGS	    32
#define SYSBENCH_MAX_ARGS   64
#define START_ATTEMPTS	    8 /* new port after "Address already in use" */

static int os_user(struct testutil_spawn_opts *opts)
{
	struct passwd *pw = getpwnam(MARIADB_OS_USER);

	if (!pw)
		return -ENOENT;
	opts->run_as_user = geteuid() == 0;
	opts->uid = pw->pw_uid;
	opts->gid = pw->pw_gid;
	return 0;
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
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

static void print_file(const char *what, const char *path)
{
	char *text = testutil_read_file(path, NULL);

	fprintf(stderr, "---- %s (%s) ----\n%s\n---- end of %s ----\n", what, path,
		text ? text : "(unreadable)", what);
	free(text);
}

static int install_db(const struct mariadbserver *s, const struct testutil_spawn_opts *creds)
{
	char datadir[300], log[300];
	const char *argv[] = {"mariadb-install-db",
			      "--no-defaults",
			      datadir,
			      "--auth-root-authentication-method=normal",
			      "--skip-test-db",
			      "--skip-name-resolve",
			      NULL};
	struct testutil_spawn_opts opts = *creds;
	int status, err;
	pid_t pid;

	snprintf(datadir, sizeof(datadir), "--datadir=%s/data", s->dir);
	snprintf(log, sizeof(log), "%s/install.log", s->dir);
	opts.output_path = log;
	opts.parent_death_signal = SIGKILL;
	err = testutil_spawn(argv, &opts, &pid);
	if (err)
		return err;
	testutil_track_process(pid, pid, SIGKILL);
	err = testutil_wait(pid, INSTALL_TIMEOUT_MS, &status);
	if (err == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		testutil_wait(pid, -1, &status);
	}
	testutil_untrack_process(pid);
	if (!err && testutil_exit_code(status) != 0)
		err = -EIO;
	if (err)
		print_file("mariadb-install-db output", log);
	return err;
}

/* mariadbd on @port; waits until root can connect over the socket. 0, -EADDRINUSE, -errno. */
static int start_server(struct mariadbserver *s, int port, const struct testutil_spawn_opts *creds,
			const char *const *extra_args)
{
	char datadir[300], socket_opt[320], port_opt[32], log_opt[320], pid_opt[320];
	const char *argv[MAX_SERVER_ARGS] = {
		"/usr/sbin/mariadbd",
		"--no-defaults",
		datadir,
		socket_opt,
		port_opt,
		"--bind-address=" MARIADB_LISTEN_ADDR,
		log_opt,
		pid_opt,
		"--skip-log-bin",
		"--skip-name-resolve",
		"--performance-schema=ON",
		"--performance-schema-consumer-statements-digest=ON",
		"--performance-schema-digests-size=10000",
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=48M",
		"--innodb-flush-log-at-trx-commit=0",
		"--max-connections=50",
		"--max-prepared-stmt-count=100000",
	};
	struct testutil_spawn_opts opts = *creds;
	uint64_t deadline = testutil_now_ms() + START_TIMEOUT_MS;
	int n = 18, status, err;
	MYSQL *c;
	pid_t pid;

	while (extra_args && *extra_args && n < MAX_SERVER_ARGS - 1)
		argv[n++] = *extra_args++;
	argv[n] = NULL;
	snprintf(datadir, sizeof(datadir), "--datadir=%s/data", s->dir);
	snprintf(socket_opt, sizeof(socket_opt), "--socket=%s", s->socket);
	snprintf(port_opt, sizeof(port_opt), "--port=%d", port);
	snprintf(log_opt, sizeof(log_opt), "--log-error=%s", s->log);
	snprintf(pid_opt, sizeof(pid_opt), "--pid-file=%s/mariadbd.pid", s->dir);
	opts.output_path = NULL;
	opts.parent_death_signal = SIGKILL; /* no server outlives a dead test process */
	err = testutil_spawn(argv, &opts, &pid);
	if (err)
		return err;
	testutil_track_process(pid, pid, SIGTERM);
	for (;;) {
		err = testutil_wait(pid, 0, &status);
		if (err != -ETIMEDOUT) {
			char *text = testutil_read_file(s->log, NULL);
			bool in_use = text && strstr(text, "Address already in use");

			testutil_untrack_process(pid);
			if (!in_use)
				print_file("mariadbd log", s->log);
			free(text);
			return in_use ? -EADDRINUSE : -ECHILD;
		}
		c = mysql_init(NULL);
		if (c && mysql_real_connect(c, NULL, "root", NULL, NULL, 0, s->socket, 0)) {
			mysql_close(c);
			break;
		}
		if (c)
			mysql_close(c);
		if (testutil_now_ms() >= deadline) {
			testutil_stop_process(pid, pid, SIGKILL, STOP_TIMEOUT_MS, NULL);
			print_file("mariadbd log", s->log);
			return -ETIMEDOUT;
		}
		testutil_sleep_ms(READY_POLL_MS);
	}
	s->pid = pid;
	s->port = port;
	return 0;
}

int mariadbserver_start(struct mariadbserver *s, const char *const *extra_args)
{
	struct testutil_spawn_opts creds = {0};
	int err, port, attempt;
	MYSQL *c;

	memset(s, 0, sizeof(*s));
	err = os_user(&creds);
	if (err)
		return err;
	err = testutil_make_temp_dir("dbtap-mariadb-", s->dir, sizeof(s->dir));
	if (err)
		return err;
	if (creds.run_as_user && chown(s->dir, creds.uid, creds.gid)) {
		err = -errno;
		goto fail;
	}
	snprintf(s->socket, sizeof(s->socket), "%s/mysqld.sock", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/mariadbd.err", s->dir);
	err = install_db(s, &creds);
	if (err)
		goto fail;
	for (attempt = 0; attempt < START_ATTEMPTS; attempt++) {
		port = pick_free_port();
		if (port < 0) {
			err = port;
			goto fail;
		}
		err = start_server(s, port, &creds, extra_args);
		if (err != -EADDRINUSE)
			break;
	}
	if (err)
		goto fail;
	c = mysql_init(NULL);
	if (!c || !mysql_real_connect(c, NULL, "root", NULL, NULL, 0, s->socket, 0) ||
	    mysql_query(c, "CREATE USER '" MARIADBSERVER_USER
			   "'@'%' IDENTIFIED BY '" MARIADBSERVER_PASSWORD "'") ||
	    mysql_query(c, "GRANT ALL ON *.* TO '" MARIADBSERVER_USER "'@'%'") ||
	    mysql_query(c, "CREATE DATABASE " MARIADBSERVER_DB)) {
		fprintf(stderr, "mariadbserver: setup: %s\n", c ? mysql_error(c) : "out of memory");
		if (c)
			mysql_close(c);
		err = -EIO;
		goto fail;
	}
	mysql_close(c);
	return 0;
fail:
	mariadbserver_stop(s);
	return err;
}

void mariadbserver_stop(struct mariadbserver *s)
{
	if (s->pid > 0)
		testutil_stop_process(s->pid, s->pid, SIGTERM, STOP_TIMEOUT_MS, NULL);
	s->pid = 0;
	if (s->dir[0])
		testutil_remove_dir(s->dir);
	s->dir[0] = 0;
}

static MYSQL *connect_as(const struct mariadbserver *s, const char *user, const char *password,
			 const char *db, bool unix_socket)
{
	MYSQL *c = mysql_init(NULL);

	assert_non_null(c);
	if (!mysql_real_connect(c, unix_socket ? NULL : MARIADB_LISTEN_ADDR, user, password,
				db && *db ? db : NULL, unix_socket ? 0 : (unsigned int)s->port,
				unix_socket ? s->socket : NULL, CLIENT_MULTI_STATEMENTS)) {
		fprintf(stderr, "connect as %s: %s\n", user, mysql_error(c));
		mysql_close(c);
		fail_msg("cannot connect to mariadbd on port %d", s->port);
	}
	return c;
}

MYSQL *mariadbserver_connect(const struct mariadbserver *s, const char *db, bool unix_socket)
{
	return connect_as(s, MARIADBSERVER_USER, MARIADBSERVER_PASSWORD, db ? db : MARIADBSERVER_DB,
			  unix_socket);
}

MYSQL *mariadbserver_connect_root(const struct mariadbserver *s)
{
	return connect_as(s, "root", NULL, "", true);
}

void mariadbserver_exec(MYSQL *c, const char *sql)
{
	MYSQL_RES *res;
	int status;

	if (mysql_query(c, sql))
		fail_msg("%s: %s", sql, mysql_error(c));
	do {
		res = mysql_store_result(c);
		if (res)
			mysql_free_result(res);
		else if (mysql_field_count(c))
			fail_msg("%s: %s", sql, mysql_error(c));
		status = mysql_next_result(c);
		if (status > 0)
			fail_msg("%s: %s", sql, mysql_error(c));
	} while (status == 0);
}

uint64_t mariadbserver_query_u64(MYSQL *c, const char *sql)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	uint64_t v = 0;

	if (mysql_query(c, sql))
		fail_msg("%s: %s", sql, mysql_error(c));
	res = mysql_store_result(c);
	if (!res)
		fail_msg("%s: no result: %s", sql, mysql_error(c));
	row = mysql_fetch_row(res);
	if (row && row[0])
		v = strtoull(row[0], NULL, 10);
	mysql_free_result(res);
	return v;
}

int mariadbserver_sysbench(const struct mariadbserver *s, const char *args, char **ret_output)
{
	const char *argv[SYSBENCH_MAX_ARGS];
	char *copy = strdup(args), *tok, *save = NULL;
	char socket_opt[320];
	int n = 0, err;

	if (!copy)
		return -ENOMEM;
	snprintf(socket_opt, sizeof(socket_opt), "--mysql-socket=%s", s->socket);
	argv[n++] = "sysbench";
	for (tok = strtok_r(copy, " \t", &save); tok && n < SYSBENCH_MAX_ARGS - 8;
	     tok = strtok_r(NULL, " \t", &save))
		argv[n++] = tok;
	/* sysbench wants the command ("prepare", "run") last */
	if (n > 1 && (!strcmp(argv[n - 1], "prepare") || !strcmp(argv[n - 1], "run") ||
		      !strcmp(argv[n - 1], "cleanup"))) {
		const char *cmd = argv[--n];

		argv[n++] = "--db-driver=mysql";
		argv[n++] = socket_opt;
		argv[n++] = "--mysql-user=" MARIADBSERVER_USER;
		argv[n++] = "--mysql-password=" MARIADBSERVER_PASSWORD;
		argv[n++] = "--mysql-db=" MARIADBSERVER_DB;
		argv[n++] = cmd;
	}
	argv[n] = NULL;
	err = testutil_run(argv, SYSBENCH_TIMEOUT_MS, ret_output);
	free(copy);
	return err;
}
