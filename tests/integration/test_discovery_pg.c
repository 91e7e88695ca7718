// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_discovery_pg.c - server discovery (userspace/discovery.c) against real PostgreSQL
 * clusters read through the real /proc: one started normally, one as PID 1 of its own PID and
 * mount namespaces like in a container; each with one TCP and one unix-socket client.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/pgserver.h"
#include "lib/testutil.h"
#include "userspace/discovery.h"

#define PROC_ROOT		"/proc"
#define PG_USER			"postgres" /* the user and database the harness connects as */
#define PG_DATABASE		"postgres"
#define CONTAINER_ID_HEX	64
#define BACKEND_EXIT_TIMEOUT_MS 10000
#define POLL_MS			20

/* ---- expected values, from sources other than discovery.c ---- */

/* Major version as the cluster's data directory records it ("15"). */
static void data_dir_version(const struct pgserver *s, char *ret, size_t size)
{
	char path[PATH_MAX];
	char *text;

	snprintf(path, sizeof(path), "%s/data/PG_VERSION", s->dir);
	text = testutil_read_file(path, NULL);
	assert_non_null(text);
	text[strcspn(text, "\n")] = '\0';
	snprintf(ret, size, "%s", text);
	free(text);
}

/* The 64-hex container id in this test's own cgroup path, "" on a plain host: the servers
 * run in the test's cgroup, so discovery must report the same. */
static void own_container_id(char *ret, size_t size)
{
	char *text = testutil_read_file(PROC_ROOT "/self/cgroup", NULL), *p;
	size_t run;

	ret[0] = '\0';
	if (!text)
		return;
	for (p = strchr(text, '/'); p && *p; p += run ? run : 1) {
		run = strspn(p, "0123456789abcdefABCDEF");
		if (run == CONTAINER_ID_HEX && size > CONTAINER_ID_HEX) {
			snprintf(ret, size, "%.*s", CONTAINER_ID_HEX, p);
			break;
		}
	}
	free(text);
}

/* Innermost PID of @pid ("NSpid:\t4711\t52" -> 52), read from its status file. */
static pid_t ns_pid_of(pid_t pid)
{
	char path[64], *text, *line, *last;
	pid_t ret;

	snprintf(path, sizeof(path), PROC_ROOT "/%d/status", (int)pid);
	text = testutil_read_file(path, NULL);
	assert_non_null(text);
	line = strstr(text, "\nNSpid:");
	assert_non_null(line);
	line[strcspn(line + 1, "\n") + 1] = '\0';
	last = strrchr(line, '\t');
	assert_non_null(last);
	ret = (pid_t)atoi(last + 1);
	free(text);
	return ret;
}

static int pid_cmp(const void *a, const void *b)
{
	const pid_t *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

/* ---- the checks ---- */

struct clients {
	PGconn *tcp;
	PGconn *unix_socket;
	pid_t pids[2]; /* their backends, ascending */
};

static void connect_clients(const struct pgserver *s, struct clients *c)
{
	c->tcp = pgserver_connect(s, false);
	c->unix_socket = pgserver_connect(s, true);
	c->pids[0] = PQbackendPID(c->tcp);
	c->pids[1] = PQbackendPID(c->unix_socket);
	qsort(c->pids, 2, sizeof(c->pids[0]), pid_cmp);
}

static void disconnect_clients(struct clients *c)
{
	PQfinish(c->tcp);
	PQfinish(c->unix_socket);
}

/*
 * Every field of @in for cluster @s. The backend PIDs in @c are the server's own (from
 * PQbackendPID), so in another PID namespace they are compared with each backend's NSpid.
 */
static void assert_instance(const struct dbtap_instance *in, const struct pgserver *s, pid_t ns_pid,
			    bool in_container, const struct clients *c)
{
	char path[PATH_MAX], want[PATH_MAX], version[16], container_id[80];
	pid_t got[2];
	int i;

	assert_int_equal(in->system, DBTAP_SYS_POSTGRESQL);
	assert_int_equal(in->pid, s->pid);
	assert_int_equal(in->ns_pid, ns_pid);

	snprintf(path, sizeof(path), "%s/postgres", pgserver_bindir());
	assert_non_null(realpath(path, want));
	assert_string_equal(in->exe, want);

	data_dir_version(s, version, sizeof(version));
	assert_string_equal(in->version, version);
	/* and the harness's binaries, /usr/lib/postgresql/15/bin here: "15" */
	snprintf(path, sizeof(path), "%s", pgserver_bindir());
	if (strstr(path, "/postgresql/")) {
		snprintf(want, sizeof(want), "%s",
			 strstr(path, "/postgresql/") + strlen("/postgresql/"));
		want[strcspn(want, "/")] = '\0';
		assert_string_equal(in->version, want);
	}

	snprintf(path, sizeof(path), "%s/data", s->dir);
	assert_non_null(realpath(path, want));
	assert_string_equal(in->data_dir, want);

	assert_int_equal(in->in_container, in_container);
	own_container_id(container_id, sizeof(container_id));
	assert_string_equal(in->container_id, container_id);

	/* listen_addresses = '127.0.0.1' and one socket directory: exactly two listeners */
	assert_int_equal(in->n_listen, 2);
	assert_false(in->listen[0].unix_socket);
	assert_int_equal(in->listen[0].family, AF_INET);
	assert_string_equal(in->listen[0].address, "127.0.0.1");
	assert_int_equal(in->listen[0].port, s->port);
	assert_true(in->listen[1].unix_socket);
	snprintf(want, sizeof(want), "%s/.s.PGSQL.%d", s->socket_dir, s->port);
	assert_string_equal(in->listen[1].path, want);
	assert_int_equal(in->listen[1].port, 0);

	/* the two clients and nothing else: no auxiliary process counts */
	assert_int_equal(in->n_backends, 2);
	for (i = 0; i < 2; i++) {
		got[i] = in_container ? ns_pid_of(in->backends[i].pid) : in->backends[i].pid;
		assert_string_equal(in->backends[i].user, PG_USER);
		assert_string_equal(in->backends[i].database, PG_DATABASE);
	}
	assert_true(in->backends[0].pid < in->backends[1].pid);
	qsort(got, 2, sizeof(got[0]), pid_cmp);
	assert_int_equal(got[0], c->pids[0]);
	assert_int_equal(got[1], c->pids[1]);
}

/* The one instance with main PID @pid in a full discovery of /proc, or fail. */
static const struct dbtap_instance *find_instance(const struct dbtap_instance_list *l, pid_t pid)
{
	int i, found = -1;

	for (i = 0; i < l->n; i++) {
		if (l->items[i].pid != pid)
			continue;
		assert_int_equal(found, -1);
		found = i;
	}
	if (found < 0)
		fail_msg("postmaster %d not discovered among %d instances", (int)pid, l->n);
	return &l->items[found];
}

static void skip_unless_runnable(void)
{
	if (geteuid() != 0 || !pgserver_bindir())
		skip(); /* the harness needs root and an installed PostgreSQL */
}

/* ---- tests ---- */

static void test_discover_host_cluster(void **state)
{
	struct dbtap_instance_list l;
	struct dbtap_instance one;
	struct pgserver s;
	struct clients c;
	uint32_t only[1];
	uint64_t deadline;
	int i;

	skip_unless_runnable();
	assert_int_equal(pgserver_start(&s, NULL), 0);
	connect_clients(&s, &c);

	/* a full scan finds it among whatever else runs here */
	assert_int_equal(dbtap_discover(PROC_ROOT, NULL, 0, &l), 0);
	assert_instance(find_instance(&l, s.pid), &s, s.pid, false, &c);
	for (i = 0; i < l.n; i++) /* no backend is taken for a postmaster */
		assert_true(l.items[i].pid != c.pids[0] && l.items[i].pid != c.pids[1]);
	dbtap_instance_list_free(&l);

	/* filtered to its PID */
	only[0] = (uint32_t)s.pid;
	assert_int_equal(dbtap_discover(PROC_ROOT, only, 1, &l), 0);
	assert_int_equal(l.n, 1);
	assert_instance(&l.items[0], &s, s.pid, false, &c);
	dbtap_instance_list_free(&l);

	/* one PID */
	assert_int_equal(dbtap_discover_pid(PROC_ROOT, s.pid, &one), 0);
	assert_instance(&one, &s, s.pid, false, &c);
	dbtap_instance_free(&one);
	assert_int_equal(dbtap_discover_pid(PROC_ROOT, c.pids[0], &one), -ENOENT);

	/* a client that leaves is no backend any more, once its backend has exited */
	PQfinish(c.unix_socket);
	c.unix_socket = NULL;
	deadline = testutil_now_ms() + BACKEND_EXIT_TIMEOUT_MS;
	for (;;) {
		assert_int_equal(dbtap_discover_pid(PROC_ROOT, s.pid, &one), 0);
		if (one.n_backends == 1 || testutil_now_ms() >= deadline)
			break;
		dbtap_instance_free(&one);
		testutil_sleep_ms(POLL_MS);
	}
	assert_int_equal(one.n_backends, 1);
	assert_int_equal(one.backends[0].pid, PQbackendPID(c.tcp));
	dbtap_instance_free(&one);

	disconnect_clients(&c);
	pgserver_stop(&s);
	/* and a stopped server is gone */
	assert_int_equal(dbtap_discover(PROC_ROOT, only, 1, &l), 0);
	assert_int_equal(l.n, 0);
}

static void test_discover_namespaced_cluster(void **state)
{
	struct dbtap_instance_list l;
	struct pgserver s;
	struct clients c;

	skip_unless_runnable();
	assert_int_equal(pgserver_start_unshared(&s, NULL), 0);
	connect_clients(&s, &c);

	assert_int_equal(dbtap_discover(PROC_ROOT, NULL, 0, &l), 0);
	/* PID 1 of its namespace; the backend PIDs the server reports are namespace ones */
	assert_instance(find_instance(&l, s.pid), &s, 1, true, &c);
	dbtap_instance_list_free(&l);

	disconnect_clients(&c);
	pgserver_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discover_host_cluster),
		cmocka_unit_test(test_discover_namespaced_cluster),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
