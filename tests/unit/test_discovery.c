// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_discovery.c - server discovery (userspace/discovery.c) against synthetic /proc trees:
 * postmasters on the host and "in a container", client backends and auxiliary processes,
 * TCP/IPv6/unix listeners, vanished processes and malformed files, every field exact.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "userspace/discovery.h"

/* ---- building a fake /proc ---- */

#define SELF -1 /* pid argument meaning <root>/self */

/* Namespace links as the kernel shows them: the host's, and a container's. */
#define HOST_NS_PID "pid:[4026531836]"
#define HOST_NS_MNT "mnt:[4026531841]"
#define CONT_NS_PID "pid:[4026532601]"
#define CONT_NS_MNT "mnt:[4026532600]"

#define DOCKER_ID "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"

static char root[64]; /* mkdtemp() path of the fake /proc */

static void mkdirs(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			fail_msg("mkdir %s: %s", buf, strerror(errno));
		*p = '/';
	}
}

static void fake_path(char *buf, size_t size, int pid, const char *rel)
{
	if (pid == SELF)
		snprintf(buf, size, "%s/self/%s", root, rel);
	else
		snprintf(buf, size, "%s/%d/%s", root, pid, rel);
	mkdirs(buf);
}

static void put_file(int pid, const char *rel, const void *data, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	fake_path(path, sizeof(path), pid, rel);
	f = fopen(path, "w");
	if (!f)
		fail_msg("create %s: %s", path, strerror(errno));
	if (len && fwrite(data, 1, len, f) != len)
		fail_msg("write %s", path);
	fclose(f);
}

static void put_text(int pid, const char *rel, const char *text)
{
	put_file(pid, rel, text, strlen(text));
}

static void put_link(int pid, const char *rel, const char *target)
{
	char path[PATH_MAX];

	fake_path(path, sizeof(path), pid, rel);
	if (symlink(target, path))
		fail_msg("symlink %s: %s", path, strerror(errno));
}

/* An empty directory <root>/<pid>/<rel>. */
static void put_dir(int pid, const char *rel)
{
	char path[PATH_MAX];

	fake_path(path, sizeof(path), pid, rel);
	if (mkdir(path, 0755) && errno != EEXIST)
		fail_msg("mkdir %s: %s", path, strerror(errno));
}

/* A directory <root>/<name> that is no process. */
static void put_root_dir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (mkdir(path, 0755))
		fail_msg("mkdir %s: %s", path, strerror(errno));
}

/* comm and a status file shaped like the kernel's; @nspid NULL means "NSpid:\t<pid>". */
static void add_proc(int pid, int ppid, const char *comm, const char *nspid)
{
	char buf[1024], own[16];

	snprintf(buf, sizeof(buf), "%s\n", comm);
	put_text(pid, "comm", buf);
	snprintf(own, sizeof(own), "%d", pid);
	snprintf(buf, sizeof(buf),
		 "Name:\t%s\nUmask:\t0077\nState:\tS (sleeping)\nTgid:\t%d\nNgid:\t0\n"
		 "Pid:\t%d\nPPid:\t%d\nTracerPid:\t0\nUid:\t105\t105\t105\t105\n"
		 "Gid:\t112\t112\t112\t112\nFDSize:\t64\nGroups:\t112 \nNStgid:\t%s\n"
		 "NSpid:\t%s\nNSpgid:\t%s\nNSsid:\t%s\nVmPeak:\t  222620 kB\nThreads:\t1\n",
		 comm, pid, pid, ppid, nspid ? nspid : own, nspid ? nspid : own,
		 nspid ? nspid : own, nspid ? nspid : own);
	put_text(pid, "status", buf);
}

/* A process title: the text, then @pad_len bytes of @pad (NUL on Linux, blanks elsewhere). */
static void put_title(int pid, const char *title, char pad, size_t pad_len)
{
	char buf[512];
	size_t len = strlen(title);

	assert_true(len + pad_len <= sizeof(buf));
	memcpy(buf, title, len);
	memset(buf + len, pad, pad_len);
	put_file(pid, "cmdline", buf, len + pad_len);
}

static void add_backend(int pid, int ppid, const char *title)
{
	add_proc(pid, ppid, "postgres", NULL);
	put_title(pid, title, '\0', 24);
}

static void put_ns(int pid, const char *ns_pid, const char *ns_mnt)
{
	put_link(pid, "ns/pid", ns_pid);
	put_link(pid, "ns/mnt", ns_mnt);
}

/* fd/<n> -> socket:[inode] */
static void put_socket_fd(int pid, int fd, unsigned inode)
{
	char rel[32], target[64];

	snprintf(rel, sizeof(rel), "fd/%d", fd);
	snprintf(target, sizeof(target), "socket:[%u]", inode);
	put_link(pid, rel, target);
}

/* clang-format off */
#define TCP_HEADER                                                                                 \
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout " \
	"inode                                                     \n"
#define TCP6_HEADER                                                                                \
	"  sl  local_address                         remote_address                        st "     \
	"tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
#define UNIX_HEADER "Num       RefCount Protocol Flags    Type St Inode Path\n"

/* One /proc/net/tcp{,6} row; the columns after the inode as the kernel prints them. */
#define TCP_ROW(sl, local, remote, st, inode)                                                      \
	"   " sl ": " local " " remote " " st " 00000000:00000000 00:00000000 00000000   105        " \
	"0 " inode " 1 0000000000000000 100 0 0 10 0\n"
#define UNIX_ROW(flags, st, inode, path) \
	"0000000000000000: 00000002 00000000 " flags " 0001 " st " " inode " " path "\n"
/* clang-format on */

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path);
}

static int make_root(void **state)
{
	snprintf(root, sizeof(root), "/tmp/dbtap-test-discovery-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	put_ns(SELF, HOST_NS_PID, HOST_NS_MNT);
	add_proc(1, 0, "systemd", NULL);
	put_text(1, "cmdline", "/sbin/init");
	return 0;
}

static int remove_root(void **state)
{
	return nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the main scene: one host cluster, one containerised cluster ---- */

static const char host_cmdline[] = "/usr/lib/postgresql/15/bin/postgres\0-D\0"
				   "/var/lib/postgresql/15/main\0-c\0"
				   "config_file=/etc/postgresql/15/main/postgresql.conf";

/* Auxiliary processes of the host cluster, pids 104.. */
static const char *const host_aux_titles[] = {
	"postgres: 15/main: checkpointer ",
	"postgres: 15/main: background writer ",
	"postgres: 15/main: walwriter ",
	"postgres: 15/main: autovacuum launcher ",
	"postgres: 15/main: logical replication launcher ",
	"postgres: 15/main: archiver last was 000000010000000000000002",
	"postgres: 15/main: stats collector ",
	"postgres: 15/main: walsender repl 10.0.0.9(50010) streaming 0/3000060",
	"postgres: 15/main: walsender logirepl shop 10.0.0.9(50011) START_REPLICATION",
	"postgres: 15/main: autovacuum worker shop",
	"postgres: 15/main: parallel worker for PID 101 ",
	"postgres: 15/main: logical replication apply worker for subscription 16398 ",
};

#define HOST_AUX_FIRST_PID 104

static void build_host_cluster(void)
{
	size_t i;

	add_proc(100, 1, "postgres", NULL);
	put_file(100, "cmdline", host_cmdline, sizeof(host_cmdline));
	put_link(100, "exe", "/usr/lib/postgresql/15/bin/postgres");
	put_link(100, "cwd", "/var/lib/postgresql/15/main");
	put_text(100, "root/var/lib/postgresql/15/main/PG_VERSION", "15\n");
	put_ns(100, HOST_NS_PID, HOST_NS_MNT);
	put_text(100, "cgroup",
		 "0::/system.slice/system-postgresql.slice/postgresql@15-main.service\n");
	put_link(100, "fd/0", "/dev/null");
	put_link(100, "fd/1", "pipe:[5001]");
	put_socket_fd(100, 3, 1001); /* 127.0.0.1:5432 */
	put_socket_fd(100, 4, 1002); /* [2001:db8::1]:5432 */
	put_socket_fd(100, 5, 1003); /* unix listener */
	put_socket_fd(100, 6, 1004); /* unix, not listening */
	put_socket_fd(100, 7, 1005); /* TCP, established */
	put_socket_fd(100, 8, 1006); /* unix listener, blank in its path */
	put_link(100, "fd/9", "anon_inode:[eventpoll]");
	/* clang-format off */
	put_text(100, "net/tcp",
		 TCP_HEADER
		 TCP_ROW("0", "0100007F:1538", "00000000:0000", "0A", "1001")
		 TCP_ROW("1", "00000000:0016", "00000000:0000", "0A", "9001")
		 TCP_ROW("2", "0100007F:1538", "0100007F:C850", "01", "1005"));
	/* clang-format on */
	/* clang-format off */
	put_text(100, "net/tcp6",
		 TCP6_HEADER
		 TCP_ROW("0", "B80D0120000000000000000001000000:1538",
			 "00000000000000000000000000000000:0000", "0A", "1002")
		 TCP_ROW("1", "00000000000000000000000000000000:0016",
			 "00000000000000000000000000000000:0000", "0A", "9003"));
	/* clang-format on */
	/* clang-format off */
	put_text(100, "net/unix",
		 UNIX_HEADER
		 UNIX_ROW("00010000", "01", "9002", "/run/systemd/private")
		 UNIX_ROW("00010000", "01", "1003", "/var/run/postgresql/.s.PGSQL.5432")
		 UNIX_ROW("00000000", "03", "1004", "/var/run/postgresql/.s.PGSQL.5432")
		 "0000000000000000: 00000003 00000000 00000000 0001 03 1007\n"
		 UNIX_ROW("00010000", "01", "1006", "/tmp/my dir/.s.PGSQL.5432"));
	/* clang-format on */

	/* client backends: cluster_name + TCP + NUL padding, [local] + blank padding, plain */
	add_backend(101, 100, "postgres: 15/main: alice shop 127.0.0.1(51234) idle");
	add_proc(102, 100, "postgres", NULL);
	put_title(102, "postgres: bob app [local] SELECT", ' ', 40);
	add_backend(103, 100, "postgres: postgres postgres 10.0.0.5(40000) idle in transaction");

	for (i = 0; i < sizeof(host_aux_titles) / sizeof(host_aux_titles[0]); i++)
		add_backend(HOST_AUX_FIRST_PID + (int)i, 100, host_aux_titles[i]);

	/* just forked: still the postmaster's command line */
	add_proc(130, 100, "postgres", NULL);
	put_file(130, "cmdline", host_cmdline, sizeof(host_cmdline));
	/* a child that exits while we read it: no cmdline any more */
	add_proc(131, 100, "postgres", NULL);
	/* archive_command's shell: a child, but not a server process */
	add_proc(132, 100, "sh", NULL);
	put_file(132, "cmdline", "sh\0-c\0postgres: eve db [local] idle", 36);
}

static void build_container_cluster(void)
{
	static const char cmdline[] = "postgres\0-D\0/var/lib/postgresql/data";

	add_proc(250, 1, "containerd-shim", NULL);
	add_proc(300, 250, "postgres", "300\t1");
	put_file(300, "cmdline", cmdline, sizeof(cmdline));
	put_link(300, "exe", "/usr/local/bin/postgres");
	/* no cwd link: the data directory comes from -D */
	put_text(300, "root/var/lib/postgresql/data/PG_VERSION", "16\n");
	put_ns(300, CONT_NS_PID, CONT_NS_MNT);
	put_text(300, "cgroup", "0::/system.slice/docker-" DOCKER_ID ".scope\n");
	put_socket_fd(300, 5, 2001);
	put_socket_fd(300, 6, 2002);
	put_socket_fd(300, 7, 2003);
	/* clang-format off */
	put_text(300, "net/tcp",
		 TCP_HEADER TCP_ROW("0", "00000000:1538", "00000000:0000", "0A", "2001"));
	/* clang-format on */
	/* clang-format off */
	put_text(300, "net/tcp6",
		 TCP6_HEADER TCP_ROW("0", "00000000000000000000000000000000:1538",
				     "00000000000000000000000000000000:0000", "0A", "2002"));
	/* clang-format on */
	/* clang-format off */
	put_text(300, "net/unix",
		 UNIX_HEADER UNIX_ROW("00010000", "01", "2003", "/var/run/postgresql/.s.PGSQL.5432"));
	/* clang-format on */

	add_proc(301, 300, "postgres", "301\t25");
	put_title(301, "postgres: carol inventory 172.17.0.1(45678) idle", '\0', 8);
	add_proc(302, 300, "postgres", "302\t26");
	put_title(302, "postgres: checkpointer ", '\0', 8);
}

static void build_scene(void)
{
	build_host_cluster();
	build_container_cluster();

	/* unrelated processes */
	add_proc(200, 1, "bash", NULL);
	put_text(200, "cmdline", "-bash");
	add_proc(201, 200, "psql", NULL);
	put_file(201, "cmdline", "psql\0-h\0localhost", 18);
	/* vanished between readdir and the reads: an empty directory, a half-gone postgres */
	put_dir(400, "");
	put_text(401, "comm", "postgres\n");
	/* names under /proc that are no process */
	put_text(SELF, "comm", "test_discovery\n");
	put_root_dir("sys");
	put_root_dir("net");
	put_root_dir("00");
}

static void assert_listen_tcp(const struct dbtap_listen *l, int family, const char *address,
			      uint16_t port)
{
	assert_false(l->unix_socket);
	assert_int_equal(l->family, family);
	assert_string_equal(l->address, address);
	assert_int_equal(l->port, port);
	assert_string_equal(l->path, "");
}

static void assert_listen_unix(const struct dbtap_listen *l, const char *path)
{
	assert_true(l->unix_socket);
	assert_int_equal(l->family, AF_UNIX);
	assert_string_equal(l->address, "");
	assert_int_equal(l->port, 0);
	assert_string_equal(l->path, path);
}

static void assert_backend(const struct dbtap_backend *b, pid_t pid, const char *user,
			   const char *database)
{
	assert_int_equal(b->pid, pid);
	assert_string_equal(b->user, user);
	assert_string_equal(b->database, database);
}

static void assert_host_instance(const struct dbtap_instance *in)
{
	assert_int_equal(in->system, DBTAP_SYS_POSTGRESQL);
	assert_int_equal(in->pid, 100);
	assert_int_equal(in->ns_pid, 100);
	assert_string_equal(in->exe, "/usr/lib/postgresql/15/bin/postgres");
	assert_string_equal(in->version, "15");
	assert_string_equal(in->data_dir, "/var/lib/postgresql/15/main");
	assert_false(in->in_container);
	assert_string_equal(in->container_id, "");
	assert_int_equal(in->n_listen, 4);
	assert_listen_tcp(&in->listen[0], AF_INET, "127.0.0.1", 5432);
	assert_listen_tcp(&in->listen[1], AF_INET6, "2001:db8::1", 5432);
	assert_listen_unix(&in->listen[2], "/var/run/postgresql/.s.PGSQL.5432");
	assert_listen_unix(&in->listen[3], "/tmp/my dir/.s.PGSQL.5432");
	assert_int_equal(in->n_backends, 3);
	assert_non_null(in->backends);
	assert_backend(&in->backends[0], 101, "alice", "shop");
	assert_backend(&in->backends[1], 102, "bob", "app");
	assert_backend(&in->backends[2], 103, "postgres", "postgres");
}

static void assert_container_instance(const struct dbtap_instance *in)
{
	assert_int_equal(in->system, DBTAP_SYS_POSTGRESQL);
	assert_int_equal(in->pid, 300);
	assert_int_equal(in->ns_pid, 1);
	assert_string_equal(in->exe, "/usr/local/bin/postgres");
	assert_string_equal(in->version, "16");
	assert_string_equal(in->data_dir, "/var/lib/postgresql/data");
	assert_true(in->in_container);
	assert_string_equal(in->container_id, DOCKER_ID);
	assert_int_equal(in->n_listen, 3);
	assert_listen_tcp(&in->listen[0], AF_INET, "0.0.0.0", 5432);
	assert_listen_tcp(&in->listen[1], AF_INET6, "::", 5432);
	assert_listen_unix(&in->listen[2], "/var/run/postgresql/.s.PGSQL.5432");
	assert_int_equal(in->n_backends, 1);
	assert_backend(&in->backends[0], 301, "carol", "inventory");
}

/* ---- tests ---- */

static void test_system_from_comm(void **state)
{
	assert_int_equal(dbtap_system_from_comm("postgres"), DBTAP_SYS_POSTGRESQL);
	assert_int_equal(dbtap_system_from_comm("postmaster"), DBTAP_SYS_POSTGRESQL);
	assert_int_equal(dbtap_system_from_comm("postgres2"), DBTAP_SYS_UNKNOWN);
	assert_int_equal(dbtap_system_from_comm("postgre"), DBTAP_SYS_UNKNOWN);
	assert_int_equal(dbtap_system_from_comm("Postgres"), DBTAP_SYS_UNKNOWN);
	assert_int_equal(dbtap_system_from_comm("psql"), DBTAP_SYS_UNKNOWN);
	assert_int_equal(dbtap_system_from_comm("bash"), DBTAP_SYS_UNKNOWN);
	assert_int_equal(dbtap_system_from_comm(""), DBTAP_SYS_UNKNOWN);
	assert_int_equal(dbtap_system_from_comm(NULL), DBTAP_SYS_UNKNOWN);
}

static void test_discover_scene(void **state)
{
	struct dbtap_instance_list l;

	build_scene();
	assert_int_equal(dbtap_discover(root, NULL, 0, &l), 0);
	assert_int_equal(l.n, 2);
	assert_host_instance(&l.items[0]);
	assert_container_instance(&l.items[1]);
	dbtap_instance_list_free(&l);
	assert_null(l.items);
	assert_int_equal(l.n, 0);
}

static void test_discover_only_pids(void **state)
{
	static const uint32_t container_only[] = {300};
	static const uint32_t both_and_more[] = {999, 300, 100};
	static const uint32_t backend_only[] = {101, 104};
	struct dbtap_instance_list l;

	build_scene();
	assert_int_equal(dbtap_discover(root, container_only, 1, &l), 0);
	assert_int_equal(l.n, 1);
	assert_container_instance(&l.items[0]);
	dbtap_instance_list_free(&l);

	assert_int_equal(dbtap_discover(root, both_and_more, 3, &l), 0);
	assert_int_equal(l.n, 2);
	assert_host_instance(&l.items[0]);
	assert_container_instance(&l.items[1]);
	dbtap_instance_list_free(&l);

	/* a backend is no instance of its own */
	assert_int_equal(dbtap_discover(root, backend_only, 2, &l), 0);
	assert_int_equal(l.n, 0);
	assert_null(l.items);

	/* an empty filter keeps nothing */
	assert_int_equal(dbtap_discover(root, container_only, 0, &l), 0);
	assert_int_equal(l.n, 0);
	assert_null(l.items);
}

static void test_discover_pid(void **state)
{
	struct dbtap_instance in;

	build_scene();
	assert_int_equal(dbtap_discover_pid(root, 100, &in), 0);
	assert_host_instance(&in);
	dbtap_instance_free(&in);
	assert_null(in.backends);
	assert_int_equal(in.n_backends, 0);

	assert_int_equal(dbtap_discover_pid(root, 300, &in), 0);
	assert_container_instance(&in);
	dbtap_instance_free(&in);

	assert_int_equal(dbtap_discover_pid(root, 101, &in), -ENOENT); /* backend */
	assert_int_equal(dbtap_discover_pid(root, 104, &in), -ENOENT); /* checkpointer */
	assert_int_equal(dbtap_discover_pid(root, 200, &in), -ENOENT); /* bash */
	assert_int_equal(dbtap_discover_pid(root, 400, &in), -ENOENT); /* vanished */
	assert_int_equal(dbtap_discover_pid(root, 401, &in), -ENOENT); /* half vanished */
	assert_int_equal(dbtap_discover_pid(root, 999, &in), -ENOENT); /* never there */
	assert_int_equal(dbtap_discover_pid(root, 0, &in), -ENOENT);
	assert_null(in.backends);

	dbtap_instance_free(NULL);
	dbtap_instance_list_free(NULL);
}

static void test_discover_bad_root(void **state)
{
	struct dbtap_instance_list l = {.items = (void *)&l, .n = 7};
	struct dbtap_instance in;
	char missing[PATH_MAX];

	snprintf(missing, sizeof(missing), "%s/no-such-dir", root);
	assert_int_equal(dbtap_discover(missing, NULL, 0, &l), -ENOENT);
	assert_null(l.items);
	assert_int_equal(l.n, 0);
	assert_int_equal(dbtap_discover_pid(missing, 100, &in), -ENOENT);
}

static void test_discover_empty_root(void **state)
{
	struct dbtap_instance_list l;

	/* only init and self: nothing to find */
	assert_int_equal(dbtap_discover(root, NULL, 0, &l), 0);
	assert_int_equal(l.n, 0);
	assert_null(l.items);
}

/* Process titles: which are client backends, and their user and database. */
struct title_case {
	const char *title;
	const char *user; /* NULL: not a backend */
	const char *database;
};

static const struct title_case title_cases[] = {
	{"postgres: 15/main: alice shop 127.0.0.1(51234) idle", "alice", "shop"},
	{"postgres: bob app [local] SELECT", "bob", "app"},
	{"postgres: postgres postgres 10.0.0.5(40000) idle in transaction", "postgres", "postgres"},
	{"postgres: u d ::1(40001) idle in transaction (aborted)", "u", "d"},
	{"postgres: u d fe80::1%eth0(40002) UPDATE", "u", "d"},
	{"postgres: u d db.example.com(5000) authentication", "u", "d"},
	{"postgres: my cluster: u d [local] idle", "u", "d"},
	{"postgres: u d [local]", "u", "d"}, /* update_process_title = off */
	{"postgres:   u   d   [local]   idle   ", "u", "d"},
	{"postgres: u my db [local] idle", "u", "my db"},
	{"postgres: a234567890123456789012345678901234567890123456789012345678901234 "
	 "b234567890123456789012345678901234567890123456789012345678901234 [local] idle",
	 "a23456789012345678901234567890123456789012345678901234567890123",
	 "b23456789012345678901234567890123456789012345678901234567890123"},
	/* not client backends */
	{"postgres: checkpointer ", NULL, NULL},
	{"postgres: 15/main: background writer ", NULL, NULL},
	{"postgres: walwriter ", NULL, NULL},
	{"postgres: autovacuum launcher ", NULL, NULL},
	{"postgres: autovacuum worker shop", NULL, NULL},
	{"postgres: logical replication launcher ", NULL, NULL},
	{"postgres: archiver last was 000000010000000000000002", NULL, NULL},
	{"postgres: stats collector ", NULL, NULL},
	{"postgres: walsender repl 10.0.0.9(50010) streaming 0/3000060", NULL, NULL},
	{"postgres: 15/main: walsender repl shop [local] idle", NULL, NULL},
	{"postgres: parallel worker for PID 4242 ", NULL, NULL},
	{"postgres: startup recovering 000000010000000000000003", NULL, NULL},
	{"postgres: walreceiver streaming 0/3000148", NULL, NULL},
	{"postgres: 15/main: [local] idle", NULL, NULL},   /* no user and database */
	{"postgres: onlyuser [local] idle", NULL, NULL},   /* one name only */
	{"postgres: u d 127.0.0.1() idle", NULL, NULL},	   /* no port */
	{"postgres: u d 127.0.0.1(54x) idle", NULL, NULL}, /* port not a number */
	{"postgres: u d (5432) idle", NULL, NULL},	   /* no host */
	{"postgres:u d [local] idle", NULL, NULL},	   /* not the server's prefix */
	{"/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main", NULL, NULL},
	{"postgres", NULL, NULL},
	{"", NULL, NULL},
};

#define TITLE_FIRST_PID 1000

static void test_backend_titles(void **state)
{
	const size_t n_cases = sizeof(title_cases) / sizeof(title_cases[0]);
	struct dbtap_instance_list l;
	const struct dbtap_backend *b;
	size_t i;
	int n = 0;

	add_proc(100, 1, "postgres", NULL);
	for (i = 0; i < n_cases; i++)
		add_backend(TITLE_FIRST_PID + (int)i, 100, title_cases[i].title);
	assert_int_equal(dbtap_discover(root, NULL, 0, &l), 0);
	assert_int_equal(l.n, 1);
	for (i = 0; i < n_cases; i++) {
		if (!title_cases[i].user)
			continue;
		if (n >= l.items[0].n_backends)
			fail_msg("title \"%s\" not taken as a backend", title_cases[i].title);
		b = &l.items[0].backends[n++];
		if (b->pid != TITLE_FIRST_PID + (int)i)
			fail_msg("title \"%s\" not taken as a backend (got pid %d)",
				 title_cases[i].title, b->pid);
		assert_string_equal(b->user, title_cases[i].user);
		assert_string_equal(b->database, title_cases[i].database);
	}
	if (n != l.items[0].n_backends)
		fail_msg("title \"%s\" taken as a backend",
			 title_cases[l.items[0].backends[n].pid - TITLE_FIRST_PID].title);
	assert_int_equal(n, 11);
	dbtap_instance_list_free(&l);
}

/* The container id in every cgroup layout the runtimes use; none for host services. */
struct cgroup_case {
	const char *cgroup;
	const char *id;
};

static const struct cgroup_case cgroup_cases[] = {
	{"0::/system.slice/docker-" DOCKER_ID ".scope\n", DOCKER_ID},
	{"12:memory:/docker/" DOCKER_ID "\n11:cpu,cpuacct:/docker/" DOCKER_ID "\n", DOCKER_ID},
	{"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_"
	 "9c0d_1e2f3a4b5c6d.slice/cri-containerd-" DOCKER_ID ".scope\n",
	 DOCKER_ID},
	{"0::/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/" DOCKER_ID "\n",
	 DOCKER_ID},
	{"0::/machine.slice/libpod-" DOCKER_ID ".scope/container\n", DOCKER_ID},
	{"0::/kubepods.slice/crio-" DOCKER_ID ".scope\n", DOCKER_ID},
	/* the first line without an id is skipped, the one with it wins */
	{"1:name=systemd:/user.slice\n0::/system.slice/docker-" DOCKER_ID ".scope\n", DOCKER_ID},
	{"0::/system.slice/postgresql@15-main.service\n", ""},
	{"0::/\n", ""},
	{"0::/user.slice/user-1000.slice/session-3.scope\n", ""},
	/* 63 and 65 hex digits are no container id */
	{"0::/docker/3f4e5d6c7b8a99887766554433221100ffeeddccbbaa0011223344556677889\n", ""},
	{"0::/docker/3f4e5d6c7b8a99887766554433221100ffeeddccbbaa001122334455667788990\n", ""},
	/* not in a path component */
	{DOCKER_ID "\n", ""},
	{"", ""},
};

#define CGROUP_FIRST_PID 500

static void test_container_ids(void **state)
{
	const size_t n_cases = sizeof(cgroup_cases) / sizeof(cgroup_cases[0]);
	struct dbtap_instance_list l;
	size_t i;

	for (i = 0; i < n_cases; i++) {
		add_proc(CGROUP_FIRST_PID + (int)i, 1, "postgres", NULL);
		put_text(CGROUP_FIRST_PID + (int)i, "cgroup", cgroup_cases[i].cgroup);
	}
	assert_int_equal(dbtap_discover(root, NULL, 0, &l), 0);
	assert_int_equal(l.n, (int)n_cases);
	for (i = 0; i < n_cases; i++) {
		assert_int_equal(l.items[i].pid, CGROUP_FIRST_PID + (int)i);
		if (strcmp(l.items[i].container_id, cgroup_cases[i].id) != 0)
			fail_msg("cgroup \"%s\": id \"%s\", want \"%s\"", cgroup_cases[i].cgroup,
				 l.items[i].container_id, cgroup_cases[i].id);
		/* no ns links: nothing to compare, so not in a container */
		assert_false(l.items[i].in_container);
	}
	dbtap_instance_list_free(&l);
}

/* Malformed and oversized files: skipped or cut, never a crash, the rest still found. */
static void test_odd_files(void **state)
{
	struct dbtap_instance_list l;
	char *big, rel[32];
	size_t big_len = 20000;
	int i;

	big = malloc(big_len);
	assert_non_null(big);

	/* 600: no exe, no cwd, "-DDIR", no PG_VERSION, a status with a huge first line */
	add_proc(600, 1, "postgres", NULL);
	memset(big, '1', big_len);
	memcpy(big, "Groups:\t", 8);
	/* a line fragment that looks like a PPid line must not be read as one */
	memcpy(big + 1022, "\nPPid:\t77\n", 10);
	big[1022] = '1';
	memcpy(big + big_len - 20, "\nPPid:\t1\nNSpid:\t600\n", 20);
	put_file(600, "status", big, big_len);
	put_file(600, "cmdline",
		 "postgres\0-D/srv/pg\0-p\0"
		 "5433",
		 27);
	put_text(600, "cgroup", "garbage without a slash\n\n\n");
	/* more listeners than fit, and broken rows */
	for (i = 0; i < DBTAP_MAX_LISTEN + 4; i++) {
		snprintf(rel, sizeof(rel), "fd/%d", 10 + i);
		put_link(600, rel, "socket:[3000]");
	}
	put_link(600, "fd/40", "socket:[");
	put_link(600, "fd/41", "socket:[12x]");
	put_link(600, "fd/42", "socket:[3001]");
	put_link(600, "fd/43", "socket:[3002]");
	/* clang-format off */
	put_text(600, "net/tcp",
		 TCP_HEADER
		 "   0: 0100007F:1538\n"
		 "   1: 0100007F:15 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 3001\n"
		 "   2: 0100007F1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 3001\n"
		 "   3: 0100007G:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 3001\n"
		 "   4: 0100007F:1538 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000 1 0 3001\n"
		 "   5: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 -3\n"
		 "   6: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 "
		 "99999999999999999999999\n"
		 "   7: 0100007F:1539 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 3001");
	/* clang-format on */
	/* a row cut by its length limit must not be taken for a whole row */
	memset(big, ' ', big_len);
	memcpy(big, "   0: 0200007F:1538 00000000:0000 0A 0 0 0 1 0 3002", 51);
	big[big_len - 1] = '\n';
	put_file(600, "net/tcp6", big, big_len);
	{
		/* 20 listening rows for one inode: only DBTAP_MAX_LISTEN fit */
		char unix_rows[4096];
		size_t off = 0;

		off += (size_t)snprintf(unix_rows + off, sizeof(unix_rows) - off, UNIX_HEADER);
		for (i = 0; i < DBTAP_MAX_LISTEN + 4; i++)
			off += (size_t)snprintf(unix_rows + off, sizeof(unix_rows) - off,
						UNIX_ROW("00010000", "01", "3000", "/s/%d"), i);
		put_text(600, "net/unix", unix_rows);
	}
	/* a backend whose title is longer than the read limit, and one with a huge name */
	add_proc(601, 600, "postgres", NULL);
	memset(big, 'x', big_len);
	memcpy(big, "postgres: u d [local] ", 22);
	put_file(601, "cmdline", big, big_len);
	add_proc(602, 600, "postgres", NULL);
	memset(big, 'n', big_len);
	memcpy(big, "postgres: ", 10);
	memcpy(big + 1000, " d [local] idle", 15);
	put_file(602, "cmdline", big, 1015);

	/* 610: no PPid line at all, so no process we can place */
	put_text(610, "comm", "postgres\n");
	put_text(610, "status", "Name:\tpostgres\nPid:\t610\n");
	/* 611: a comm longer than a task name can be */
	memset(big, 'p', 200);
	big[200] = '\n';
	put_file(611, "comm", big, 201);
	put_text(611, "status", "PPid:\t1\n");
	/* 612: an exe path that does not fit the field; a cwd that is no directory path */
	add_proc(612, 1, "postgres", NULL);
	memset(big, 'e', 300);
	big[0] = '/';
	big[300] = '\0';
	put_link(612, "exe", big);
	put_link(612, "cwd", "relative/dir");
	put_text(612, "root/relative/dir/PG_VERSION", "12\n");
	put_link(612, "ns/pid", HOST_NS_PID);
	/* 613: exe names a version, its data directory's PG_VERSION is garbage */
	add_proc(613, 1, "postgres", "613\t");
	put_link(613, "exe", "/opt/postgresql/9.6/bin/postgres");
	put_link(613, "cwd", "/data");
	put_text(613, "root/data/PG_VERSION", "garbage\n");
	/* 614: no version in the exe path; PG_VERSION unreadable garbage */
	add_proc(614, 1, "postgres", NULL);
	put_link(614, "exe", "/usr/lib/postgresql/bin/postgres");
	put_link(614, "cwd", "/data");
	put_text(614, "root/data/PG_VERSION", "1x\n");
	free(big);

	assert_int_equal(dbtap_discover(root, NULL, 0, &l), 0);
	assert_int_equal(l.n, 4);

	assert_int_equal(l.items[0].pid, 600);
	assert_int_equal(l.items[0].ns_pid, 600);
	assert_string_equal(l.items[0].exe, "");
	assert_string_equal(l.items[0].version, "");
	assert_string_equal(l.items[0].data_dir, "/srv/pg");
	assert_false(l.items[0].in_container);
	assert_string_equal(l.items[0].container_id, "");
	assert_int_equal(l.items[0].n_listen, DBTAP_MAX_LISTEN);
	assert_listen_tcp(&l.items[0].listen[0], AF_INET, "127.0.0.1", 5433);
	for (i = 1; i < DBTAP_MAX_LISTEN; i++) {
		snprintf(rel, sizeof(rel), "/s/%d", i - 1);
		assert_listen_unix(&l.items[0].listen[i], rel);
	}
	assert_int_equal(l.items[0].n_backends, 2);
	assert_backend(&l.items[0].backends[0], 601, "u", "d");
	/* the user name cut to fit its field */
	assert_int_equal(l.items[0].backends[1].pid, 602);
	assert_int_equal(strlen(l.items[0].backends[1].user),
			 sizeof(l.items[0].backends[1].user) - 1);
	assert_int_equal(strspn(l.items[0].backends[1].user, "n"),
			 sizeof(l.items[0].backends[1].user) - 1);
	assert_string_equal(l.items[0].backends[1].database, "d");

	assert_int_equal(l.items[1].pid, 612);
	assert_string_equal(l.items[1].exe, "");
	assert_string_equal(l.items[1].data_dir, "relative/dir");
	assert_string_equal(l.items[1].version, "");
	assert_false(l.items[1].in_container); /* ns/mnt missing, ns/pid equal */
	assert_int_equal(l.items[1].n_backends, 0);
	assert_null(l.items[1].backends);

	assert_int_equal(l.items[2].pid, 613);
	assert_int_equal(l.items[2].ns_pid, 613);
	assert_string_equal(l.items[2].exe, "/opt/postgresql/9.6/bin/postgres");
	assert_string_equal(l.items[2].version, "9.6");
	assert_string_equal(l.items[2].data_dir, "/data");

	assert_int_equal(l.items[3].pid, 614);
	assert_string_equal(l.items[3].version, "");
	dbtap_instance_list_free(&l);
}

/* A postgres process whose parent is a postgres process is never a main process, wherever. */
static void test_main_process_rule(void **state)
{
	struct dbtap_instance_list l;

	add_proc(700, 1, "postmaster", NULL); /* started through the old symlink */
	add_proc(701, 700, "postgres", NULL); /* comm differs, same system: a child */
	put_title(701, "postgres: u d [local] idle", '\0', 4);
	add_proc(710, 0, "postgres", NULL);    /* parent unknown to /proc */
	add_proc(720, 1234, "postgres", NULL); /* parent gone */
	add_proc(730, 200, "postgres", NULL);  /* parent "bash" */
	add_proc(200, 1, "bash", NULL);
	add_proc(740, 741, "postgres", NULL); /* parent: a postgres listed after it */
	add_proc(741, 1, "postgres", NULL);
	assert_int_equal(dbtap_discover(root, NULL, 0, &l), 0);
	assert_int_equal(l.n, 5);
	assert_int_equal(l.items[0].pid, 700);
	assert_int_equal(l.items[0].n_backends, 1);
	assert_backend(&l.items[0].backends[0], 701, "u", "d");
	assert_int_equal(l.items[1].pid, 710);
	assert_int_equal(l.items[2].pid, 720);
	assert_int_equal(l.items[3].pid, 730);
	assert_int_equal(l.items[4].pid, 741);
	dbtap_instance_list_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_from_comm),
		cmocka_unit_test_setup_teardown(test_discover_scene, make_root, remove_root),
		cmocka_unit_test_setup_teardown(test_discover_only_pids, make_root, remove_root),
		cmocka_unit_test_setup_teardown(test_discover_pid, make_root, remove_root),
		cmocka_unit_test_setup_teardown(test_discover_bad_root, make_root, remove_root),
		cmocka_unit_test_setup_teardown(test_discover_empty_root, make_root, remove_root),
		cmocka_unit_test_setup_teardown(test_backend_titles, make_root, remove_root),
		cmocka_unit_test_setup_teardown(test_container_ids, make_root, remove_root),
		cmocka_unit_test_setup_teardown(test_odd_files, make_root, remove_root),
		cmocka_unit_test_setup_teardown(test_main_process_rule, make_root, remove_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
