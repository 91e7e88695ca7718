/* Throwaway PostgreSQL clusters for integration tests: initdb in a temp dir, a postmaster on a
 * free 127.0.0.1 port and a private unix socket dir (optionally in its own PID and mount
 * namespaces), libpq helpers and pgbench. Every started server is stopped by PID at exit or on a
 * fatal signal of the test process. Needs root (servers run as the OS user 'postgres'). */
#ifndef DBTAP_TESTS_PGSERVER_H
#define DBTAP_TESTS_PGSERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include <postgresql/libpq-fe.h>

struct pgserver {
	pid_t pid;		 /* postmaster, root PID namespace */
	int port;		 /* TCP port on 127.0.0.1 */
	char dir[256];		 /* temp dir holding data/ and the socket dir; removed on stop */
	char socket_dir[256];	 /* unix socket directory (the socket is .s.PGSQL.<port>) */
	char conninfo_tcp[512];	 /* "host=127.0.0.1 port=N dbname=postgres user=postgres" */
	char conninfo_unix[512]; /* "host=<socket_dir> port=N dbname=postgres user=postgres" */
	bool unshared;		 /* started in its own PID + mount namespaces */
};

/* Start a cluster: initdb (trust auth, superuser 'postgres', run as the OS user 'postgres') in
 * a fresh temp dir, then the postmaster listening on 127.0.0.1 at a free port and on a unix
 * socket in socket_dir, with shared_preload_libraries=pg_stat_statements,
 * pg_stat_statements.track=all, fsync=off, synchronous_commit=off, full_page_writes=off,
 * max_connections=50, plus @extra_conf (postgresql.conf lines, may be NULL). Waits until it
 * accepts connections. 0 or -errno (and prints the server log to stderr on failure). */
int pgserver_start(struct pgserver *s, const char *extra_conf);

/* The same, but the postmaster runs as PID 1 of new PID and mount namespaces (with its own
 * /proc), like in a container; s->pid is its PID in the root namespace. */
int pgserver_start_unshared(struct pgserver *s, const char *extra_conf);

/* Fast shutdown by PID (SIGINT, up to 10 s, then SIGKILL) and removal of s->dir. Idempotent;
 * accepts a zeroed struct. Runs for every started server at exit and on SIGINT, SIGTERM,
 * SIGABRT, SIGSEGV of the test process as well. */
void pgserver_stop(struct pgserver *s);

/* Connect over TCP or the unix socket; fails the running cmocka test on error. */
PGconn *pgserver_connect(const struct pgserver *s, bool unix_socket);

/* Run one statement; the first column of the first row as a malloc'd string, or NULL when
 * there are no rows (or the value is SQL NULL). Fails the running cmocka test on error. */
char *pgserver_query_value(PGconn *c, const char *sql);

/* Run one statement that must succeed, discarding its result. Fails the test on error. */
void pgserver_exec(PGconn *c, const char *sql);

/* A pgbench run in the background. */
struct pgbench_run {
	pid_t pid;	       /* 0 when not running */
	char output_path[300]; /* stdout+stderr of pgbench */
};

/* Run pgbench with @args (split at whitespace, no quoting: "-i -s 1", "-M prepared -c 2 -t 500
 * -n") against the server over TCP as user postgres, database postgres. Returns its exit code
 * (128 + signal if killed, -errno if it could not run); its stdout+stderr text in @ret_output
 * (malloc'd; may be NULL). */
int pgserver_pgbench(const struct pgserver *s, const char *args, char **ret_output);

/* Start pgbench in the background (same arguments); 0 or -errno. */
int pgserver_pgbench_start(const struct pgserver *s, const char *args, struct pgbench_run *ret);
/* Wait for a background pgbench (up to @timeout_ms, < 0 forever; killed after that) and return
 * its exit code as pgserver_pgbench() does. Safe to call again after it returned. */
int pgserver_pgbench_wait(struct pgbench_run *run, int timeout_ms, char **ret_output);

/* Directory of the newest installed PostgreSQL binaries (/usr/lib/postgresql/<N>/bin, or
 * $DBTAP_PG_BINDIR), or NULL when none is installed. */
const char *pgserver_bindir(void);

#endif /* DBTAP_TESTS_PGSERVER_H */
