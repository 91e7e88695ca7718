/* Throwaway PostgreSQL clusters for integration tests: initdb + postmaster as the OS user
 * 'postgres' in a temp dir on a free port (optionally inside new PID and mount namespaces),
 * stopped by PID; libpq and pgbench helpers that fail the running cmocka test on error. */
#include "lib/pgserver.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "lib/testutil.h"

#define PG_OS_USER	  "postgres" /* created by Debian's postgresql-common */
#define PG_SUPERUSER	  "postgres" /* initdb -U */
#define PG_DBNAME	  "postgres"
#define PG_LISTEN_ADDR	  "127.0.0.1"
#define PG_BIN_GLOB	  "/usr/lib/postgresql/*/bin/postgres"
#define INITDB_TIMEOUT_MS 120000
#define START_TIMEOUT_MS  60000
#define STOP_TIMEOUT_MS	  10000
#define PGBENCH_MAX_ARGS  64
#define START_ATTEMPTS	  8 /* new port after "Address already in use" */
#define READY_POLL_MS	  50
#define MAX_SERVERS	  32

/* postmaster PID -> the child we reap (differs for a postmaster inside a PID namespace). */
static struct {
	pid_t pid;
	pid_t wait_pid;
} servers[MAX_SERVERS];

static unsigned int pgbench_seq;

/* ---- binaries, users, ports ---- */

const char *pgserver_bindir(void)
{
	static char bindir[PATH_MAX];
	long best = -1;
	glob_t g;
	size_t i;

	if (bindir[0])
		return bindir;
	if (getenv("DBTAP_PG_BINDIR")) {
		snprintf(bindir, sizeof(bindir), "%s", getenv("DBTAP_PG_BINDIR"));
		return bindir;
	}
	if (glob(PG_BIN_GLOB, 0, NULL, &g))
		return NULL;
	for (i = 0; i < g.gl_pathc; i++) {
		const char *ver = g.gl_pathv[i] + strlen("/usr/lib/postgresql/");
		long v = strtol(ver, NULL, 10);

		if (v > best) {
			best = v;
			snprintf(bindir, sizeof(bindir), "%.*s",
				 (int)(strrchr(g.gl_pathv[i], '/') - g.gl_pathv[i]), g.gl_pathv[i]);
		}
	}
	globfree(&g);
	return bindir[0] ? bindir : NULL;
}

/* Credentials the server processes run with: 'postgres' when we are root, else ourselves. */
static int server_credentials(struct testutil_spawn_opts *opts)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	pw = getpwnam(PG_OS_USER);
	if (!pw)
		return -ENOENT;
	opts->run_as_user = true;
	opts->uid = pw->pw_uid;
	opts->gid = pw->pw_gid;
	return 0;
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

static void print_file(const char *what, const char *path)
{
	char *text = testutil_read_file(path, NULL);

	fprintf(stderr, "---- %s (%s) ----\n%s\n---- end of %s ----\n", what, path,
		text ? text : "(unreadable)", what);
	free(text);
}

/* ---- cluster setup ---- */

static int write_conf(const struct pgserver *s, const char *extra_conf)
{
	char path[PATH_MAX];
	FILE *f;
	int err = 0;

	snprintf(path, sizeof(path), "%s/data/postgresql.conf", s->dir);
	f = fopen(path, "a");
	if (!f)
		return -errno;
	fprintf(f,
		"\n# ---- dbtap test harness ----\n"
		"listen_addresses = '%s'\n"
		"unix_socket_directories = '%s'\n"
		"shared_preload_libraries = 'pg_stat_statements'\n"
		"pg_stat_statements.track = all\n"
		"pg_stat_statements.track_utility = on\n"
		"fsync = off\n"
		"synchronous_commit = off\n"
		"full_page_writes = off\n"
		"max_connections = 50\n",
		PG_LISTEN_ADDR, s->socket_dir);
	if (extra_conf)
		fprintf(f, "%s\n", extra_conf);
	if (fclose(f))
		err = -errno;
	return err;
}

static int run_initdb(const struct pgserver *s, const struct testutil_spawn_opts *creds)
{
	struct testutil_spawn_opts opts = *creds;
	char initdb[PATH_MAX], data[PATH_MAX], log[PATH_MAX];
	const char *argv[] = {
		initdb, "-D",	data,	       "-U",	    PG_SUPERUSER,	 "-A", "trust",
		"-E",	"UTF8", "--no-locale", "--no-sync", "--no-instructions", NULL};
	int status, err;
	pid_t pid;

	snprintf(initdb, sizeof(initdb), "%s/initdb", pgserver_bindir());
	snprintf(data, sizeof(data), "%s/data", s->dir);
	snprintf(log, sizeof(log), "%s/initdb.log", s->dir);
	opts.output_path = log;
	opts.parent_death_signal = SIGKILL;
	err = testutil_spawn(argv, &opts, &pid);
	if (err)
		return err;
	testutil_track_process(pid, pid, SIGKILL);
	err = testutil_wait(pid, INITDB_TIMEOUT_MS, &status);
	if (err == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		testutil_wait(pid, -1, &status);
	}
	testutil_untrack_process(pid);
	if (!err && testutil_exit_code(status) != 0)
		err = -EIO;
	if (err) {
		fprintf(stderr, "pgserver: initdb failed (%s)\n", strerror(-err));
		print_file("initdb log", log);
	}
	return err;
}

/* ---- postmaster in new PID + mount namespaces ---- */

/* In the namespace's PID 1 before exec: private mount propagation and a /proc of its own, so
 * the server sees what it would see in a container. */
static int mount_private_proc(void)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		dprintf(STDERR_FILENO, "pgserver: make / private: %s\n", strerror(errno));
		return -errno;
	}
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
		dprintf(STDERR_FILENO, "pgserver: mount /proc: %s\n", strerror(errno));
		return -errno;
	}
	return 0;
}

/* Fork a middle process that unshares PID + mount namespaces and forks the postmaster as PID 1
 * of the new PID namespace; the middle reports the postmaster's root-namespace PID through a
 * pipe and exits with the postmaster's exit code. */
static int spawn_unshared(const char *const *argv, const struct testutil_spawn_opts *opts,
			  pid_t *ret_middle, pid_t *ret_postmaster)
{
	pid_t middle, postmaster = 0;
	int pipefd[2], status = 0;
	ssize_t n;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	middle = fork();
	if (middle < 0) {
		int err = -errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return err;
	}
	if (middle == 0) {
		struct testutil_spawn_opts inner = *opts;
		pid_t child;

		setsid();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pipefd[0]);
		if (unshare(CLONE_NEWPID | CLONE_NEWNS)) {
			child = -errno;
			if (write(pipefd[1], &child, sizeof(child)) < 0)
				_exit(1);
			_exit(1);
		}
		inner.before_exec = mount_private_proc;
		inner.parent_death_signal = SIGQUIT; /* immediate shutdown if we die */
		if (testutil_spawn(argv, &inner, &child))
			child = -EIO;
		if (write(pipefd[1], &child, sizeof(child)) != sizeof(child) || child < 0)
			_exit(1);
		close(pipefd[1]);
		if (testutil_wait(child, -1, &status))
			_exit(1);
		_exit(testutil_exit_code(status) & 0xff);
	}
	close(pipefd[1]);
	do {
		n = read(pipefd[0], &postmaster, sizeof(postmaster));
	} while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n != sizeof(postmaster) || postmaster <= 0) {
		testutil_wait(middle, -1, &status);
		return n == sizeof(postmaster) && postmaster < 0 ? postmaster : -EIO;
	}
	*ret_middle = middle;
	*ret_postmaster = postmaster;
	return 0;
}

/* ---- start and stop ---- */

static void remember_server(pid_t pid, pid_t wait_pid)
{
	int i;

	for (i = 0; i < MAX_SERVERS; i++) {
		if (servers[i].pid > 0)
			continue;
		servers[i].pid = pid;
		servers[i].wait_pid = wait_pid;
		return;
	}
}

static pid_t forget_server(pid_t pid)
{
	int i;

	for (i = 0; i < MAX_SERVERS; i++) {
		if (servers[i].pid != pid)
			continue;
		servers[i].pid = 0;
		return servers[i].wait_pid;
	}
	return pid;
}

/* Start the postmaster on @port and wait until it accepts connections. 0, -EADDRINUSE (try
 * another port), or -errno. */
static int start_postmaster(struct pgserver *s, int port, const struct testutil_spawn_opts *creds,
			    const char *log)
{
	struct testutil_spawn_opts opts = *creds;
	char postgres[PATH_MAX], data[PATH_MAX], port_str[16], ping[600];
	const char *argv[] = {postgres, "-D", data, "-p", port_str, NULL};
	uint64_t deadline = testutil_now_ms() + START_TIMEOUT_MS;
	pid_t wait_pid = 0, pid = 0;
	int err, status;

	snprintf(postgres, sizeof(postgres), "%s/postgres", pgserver_bindir());
	snprintf(data, sizeof(data), "%s/data", s->dir);
	snprintf(port_str, sizeof(port_str), "%d", port);
	unlink(log);
	opts.output_path = log;
	opts.parent_death_signal = SIGQUIT; /* immediate shutdown if the test process dies */

	if (s->unshared) {
		err = spawn_unshared(argv, &opts, &wait_pid, &pid);
	} else {
		err = testutil_spawn(argv, &opts, &pid);
		wait_pid = pid;
	}
	if (err)
		return err;
	testutil_track_process(pid, wait_pid, SIGINT);

	snprintf(ping, sizeof(ping), "host=%s port=%d dbname=%s user=%s connect_timeout=2",
		 PG_LISTEN_ADDR, port, PG_DBNAME, PG_SUPERUSER);
	for (;;) {
		if (PQping(ping) == PQPING_OK)
			break;
		err = testutil_wait(wait_pid, 0, &status);
		if (err == 0 || err == -ECHILD) { /* the postmaster is gone */
			char *text = testutil_read_file(log, NULL);

			testutil_untrack_process(wait_pid);
			err = text && strstr(text, "Address already in use") ? -EADDRINUSE : -EIO;
			free(text);
			return err;
		}
		if (testutil_now_ms() >= deadline) {
			testutil_stop_process(pid, wait_pid, SIGQUIT, STOP_TIMEOUT_MS, NULL);
			return -ETIMEDOUT;
		}
		testutil_sleep_ms(READY_POLL_MS);
	}
	s->pid = pid;
	s->port = port;
	remember_server(pid, wait_pid);
	return 0;
}

static int start(struct pgserver *s, const char *extra_conf, bool unshared)
{
	struct testutil_spawn_opts creds = {0};
	char log[PATH_MAX];
	int err, attempt, port;

	memset(s, 0, sizeof(*s));
	s->unshared = unshared;
	if (!pgserver_bindir()) {
		fprintf(stderr, "pgserver: no PostgreSQL under /usr/lib/postgresql\n");
		return -ENOENT;
	}
	err = server_credentials(&creds);
	if (err) {
		fprintf(stderr, "pgserver: no OS user '%s'\n", PG_OS_USER);
		return err;
	}
	err = testutil_make_temp_dir("dbtap-pg-", s->dir, sizeof(s->dir));
	if (err)
		return err;
	if ((size_t)snprintf(s->socket_dir, sizeof(s->socket_dir), "%s/sock", s->dir) >=
	    sizeof(s->socket_dir)) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	if (mkdir(s->socket_dir, 0755)) {
		err = -errno;
		goto fail;
	}
	if (creds.run_as_user &&
	    (chown(s->dir, creds.uid, creds.gid) || chown(s->socket_dir, creds.uid, creds.gid))) {
		err = -errno;
		goto fail;
	}
	err = run_initdb(s, &creds);
	if (err)
		goto fail;
	err = write_conf(s, extra_conf);
	if (err)
		goto fail;

	snprintf(log, sizeof(log), "%s/postgres.log", s->dir);
	err = -EADDRINUSE;
	for (attempt = 0; attempt < START_ATTEMPTS && err == -EADDRINUSE; attempt++) {
		port = pick_free_port();
		if (port < 0) {
			err = port;
			break;
		}
		err = start_postmaster(s, port, &creds, log);
	}
	if (err) {
		fprintf(stderr, "pgserver: postmaster did not start (%s)\n", strerror(-err));
		print_file("server log", log);
		goto fail;
	}
	snprintf(s->conninfo_tcp, sizeof(s->conninfo_tcp), "host=%s port=%d dbname=%s user=%s",
		 PG_LISTEN_ADDR, s->port, PG_DBNAME, PG_SUPERUSER);
	snprintf(s->conninfo_unix, sizeof(s->conninfo_unix), "host=%s port=%d dbname=%s user=%s",
		 s->socket_dir, s->port, PG_DBNAME, PG_SUPERUSER);
	return 0;
fail:
	testutil_remove_dir(s->dir);
	s->dir[0] = '\0';
	return err;
}

int pgserver_start(struct pgserver *s, const char *extra_conf)
{
	return start(s, extra_conf, false);
}

int pgserver_start_unshared(struct pgserver *s, const char *extra_conf)
{
	return start(s, extra_conf, true);
}

void pgserver_stop(struct pgserver *s)
{
	if (!s)
		return;
	if (s->pid > 0) {
		pid_t wait_pid = forget_server(s->pid);

		testutil_stop_process(s->pid, wait_pid, SIGINT, STOP_TIMEOUT_MS, NULL);
		s->pid = 0;
	}
	if (s->dir[0]) {
		testutil_remove_dir(s->dir);
		s->dir[0] = '\0';
	}
}

/* ---- clients ---- */

PGconn *pgserver_connect(const struct pgserver *s, bool unix_socket)
{
	const char *conninfo = unix_socket ? s->conninfo_unix : s->conninfo_tcp;
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQfinish(c);
		fail_msg("connect '%s': %s", conninfo, msg);
	}
	return c;
}

char *pgserver_query_value(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(res);
	char *value = NULL;

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQclear(res);
		fail_msg("query '%s': %s", sql, msg);
	}
	if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0)) {
		value = strdup(PQgetvalue(res, 0, 0));
		assert_non_null(value);
	}
	PQclear(res);
	return value;
}

void pgserver_exec(PGconn *c, const char *sql)
{
	free(pgserver_query_value(c, sql));
}

/* ---- pgbench ---- */

int pgserver_pgbench_start(const struct pgserver *s, const char *args, struct pgbench_run *ret)
{
	struct testutil_spawn_opts opts = {.parent_death_signal = SIGKILL};
	char pgbench[PATH_MAX], port_str[16], copy[1024];
	const char *argv[PGBENCH_MAX_ARGS + 8];
	char *save = NULL, *tok;
	int argc = 0, fd, err;
	pid_t pid;

	memset(ret, 0, sizeof(*ret));
	if (!pgserver_bindir())
		return -ENOENT;
	snprintf(pgbench, sizeof(pgbench), "%s/pgbench", pgserver_bindir());
	snprintf(port_str, sizeof(port_str), "%d", s->port);
	if ((size_t)snprintf(copy, sizeof(copy), "%s", args ? args : "") >= sizeof(copy))
		return -E2BIG;
	argv[argc++] = pgbench;
	argv[argc++] = "-h";
	argv[argc++] = PG_LISTEN_ADDR;
	argv[argc++] = "-p";
	argv[argc++] = port_str;
	argv[argc++] = "-U";
	argv[argc++] = PG_SUPERUSER;
	for (tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		if (argc >= PGBENCH_MAX_ARGS)
			return -E2BIG;
		argv[argc++] = tok;
	}
	argv[argc++] = PG_DBNAME;
	argv[argc] = NULL;

	snprintf(ret->output_path, sizeof(ret->output_path), "%s/pgbench-%u.log", s->dir,
		 pgbench_seq++);
	fd = open(ret->output_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	opts.output_path = ret->output_path;
	err = testutil_spawn(argv, &opts, &pid);
	if (err)
		return err;
	testutil_track_process(pid, pid, SIGINT);
	ret->pid = pid;
	return 0;
}

int pgserver_pgbench_wait(struct pgbench_run *run, int timeout_ms, char **ret_output)
{
	int status = 0, err;

	if (ret_output)
		*ret_output = NULL;
	if (run->pid <= 0)
		return -ECHILD;
	err = testutil_wait(run->pid, timeout_ms, &status);
	if (err == -ETIMEDOUT) {
		kill(run->pid, SIGKILL);
		testutil_wait(run->pid, -1, &status);
	}
	testutil_untrack_process(run->pid);
	run->pid = 0;
	if (ret_output)
		*ret_output = testutil_read_file(run->output_path, NULL);
	return err ? err : testutil_exit_code(status);
}

int pgserver_pgbench(const struct pgserver *s, const char *args, char **ret_output)
{
	struct pgbench_run run;
	int err;

	if (ret_output)
		*ret_output = NULL;
	err = pgserver_pgbench_start(s, args, &run);
	if (err)
		return err;
	return pgserver_pgbench_wait(&run, -1, ret_output);
}
