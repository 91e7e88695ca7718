/* Throwaway MariaDB servers for integration tests: mariadb-install-db into a temp dir, mariadbd
 * (as the OS user 'mysql') on a free 127.0.0.1 port and a unix socket in the temp dir, stopped by
 * PID (also at exit and on fatal signals of the test process); libmariadb and sysbench helpers
 * that fail the running cmocka test on error. Needs root. */
#ifndef DBTAP_TESTS_MARIADBSERVER_H
#define DBTAP_TESTS_MARIADBSERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <mariadb/mysql.h>

#define MARIADBSERVER_USER     "sbtest" /* created by mariadbserver_start(), all privileges */
#define MARIADBSERVER_PASSWORD "sbtest"
#define MARIADBSERVER_DB       "sbtest"

struct mariadbserver {
	pid_t pid;	  /* mariadbd */
	int port;	  /* TCP port on 127.0.0.1 */
	char dir[256];	  /* temp dir: data/, the socket, the log; removed on stop */
	char socket[300]; /* unix socket path */
	char log[300];	  /* the server's error log */
};

/*
 * Install a data directory and start mariadbd on it with --performance-schema=ON (statement
 * digests and history consumers on), no binary log, small InnoDB buffers, plus @extra_args
 * (NULL-terminated mariadbd options, may be NULL). Waits until it accepts connections, then
 * creates MARIADBSERVER_USER@'%' (password MARIADBSERVER_PASSWORD, all privileges) and the
 * database MARIADBSERVER_DB. 0 or -errno (the server log printed on failure).
 */
int mariadbserver_start(struct mariadbserver *s, const char *const *extra_args);

/* SIGTERM by PID (up to 30 s, then SIGKILL) and removal of s->dir. Idempotent; accepts a
 * zeroed struct. */
void mariadbserver_stop(struct mariadbserver *s);

/* Connect as MARIADBSERVER_USER to MARIADBSERVER_DB (@db NULL) or @db ("" for none), over TCP
 * or the unix socket, with multi-statements allowed. Fails the running test on error. */
MYSQL *mariadbserver_connect(const struct mariadbserver *s, const char *db, bool unix_socket);

/* Connect as root over the unix socket (for administration: status, performance_schema). */
MYSQL *mariadbserver_connect_root(const struct mariadbserver *s);

/* Run statements that must succeed, discarding every result. Fails the test on error. */
void mariadbserver_exec(MYSQL *c, const char *sql);

/* The first column of the first row as an unsigned integer (0 for no row or NULL). Fails the
 * test on error. */
uint64_t mariadbserver_query_u64(MYSQL *c, const char *sql);

/* Run sysbench @args (split at whitespace, no quoting: "oltp_read_write --events=100") with the
 * server's --mysql-* connection options (unix socket, MARIADBSERVER_USER/DB) appended.
 * Returns its exit code (-errno when it could not run); stdout+stderr in @ret_output
 * (malloc'd; may be NULL). */
int mariadbserver_sysbench(const struct mariadbserver *s, const char *args, char **ret_output);

#endif /* DBTAP_TESTS_MARIADBSERVER_H */
