// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * discovery.c - finding database server instances on the host by reading /proc.
 *
 * One pass over <proc_root>/ keeps the processes whose task name (comm) belongs to a known
 * server; a table says, per comm, which system it serves and how its main process is told
 * apart from its helpers. Each main process then becomes an instance: executable, namespaces
 * and container, listening sockets (from its own network namespace's /proc/PID/net files),
 * and the system-specific parts (PostgreSQL: data directory, version, client backends).
 *
 * Processes may exit at any moment: a file that is gone means "skip this process", never an
 * error. Reads are bounded (fixed buffers, capped counts), nothing is printed.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "userspace/discovery.h"
#include "userspace/probes.h"

/* ---- limits ---- */

#define DISCOVERY_MAX_CANDIDATES (1 << 18) /* server processes kept from one scan (6 MiB) */
#define DISCOVERY_MAX_SOCKETS	 256	   /* socket inodes collected from a main process */
#define DISCOVERY_MAX_FDS	 4096	   /* fd entries looked at per main process */
#define DISCOVERY_CMDLINE_MAX	 4096	   /* bytes of /proc/PID/cmdline read */
#define DISCOVERY_LINE_MAX	 1024	   /* longest /proc text line parsed whole */
#define DISCOVERY_COMM_MAX	 64	   /* TASK_COMM_LEN is 16; room for odd files */

/* ---- what /proc files hold ---- */

#define PROC_STATUS_PPID       "PPid:"
#define PROC_STATUS_NSPID      "NSpid:"
#define PROC_STATUS_MAX_PID_NS 33 /* MAX_PID_NS_LEVEL (32) nested namespaces + the root one */
#define PROC_FD_SOCKET_PREFIX  "socket:["

/* /proc/net/tcp{,6} "st" column: TCP_LISTEN from include/net/tcp_states.h */
#define PROC_TCP_STATE_LISTEN 0x0A
/* /proc/net/tcp{,6} columns: sl local_address rem_address st ... uid timeout inode */
#define PROC_TCP_COL_LOCAL    1
#define PROC_TCP_COL_STATE    3
#define PROC_TCP_COL_INODE    9
#define PROC_TCP_ADDR4_HEX    8	 /* one 32-bit word */
#define PROC_TCP_ADDR6_HEX    32 /* four 32-bit words */
#define PROC_TCP_PORT_HEX     4
#define HEX_PER_WORD	      8

/* /proc/net/unix "Flags" column: __SO_ACCEPTCON, set on a listening socket */
#define PROC_UNIX_FLAG_ACCEPTCON 0x10000
/* /proc/net/unix columns: Num RefCount Protocol Flags Type St Inode Path */
#define PROC_UNIX_COL_FLAGS	 3
#define PROC_UNIX_COL_INODE	 6
#define PROC_UNIX_COL_PATH	 7

/* A container id in a cgroup path: docker, containerd, CRI-O and podman use 64 hex digits. */
#define CONTAINER_ID_HEX 64

/* ---- the table of known servers ---- */

/* How the main process of a server is told apart from the other processes with its comm. */
enum discovery_main_rule {
	/* Forking servers (postmaster): the one whose parent serves another or no system. */
	DISCOVERY_MAIN_PARENT_OTHER_SYSTEM,
};

struct discovery_scan;

struct discovery_rule {
	const char *comm;	  /* task name of the server's processes */
	enum dbtap_system system; /* what it serves */
	enum discovery_main_rule main_rule;
	/* System-specific fields of @inst (version, data directory, backends); 0 or -errno. */
	int (*describe)(const char *proc_root, const struct discovery_scan *scan,
			struct dbtap_instance *inst);
};

static int pg_describe(const char *proc_root, const struct discovery_scan *scan,
		       struct dbtap_instance *inst);

/*
 * Adding a server: one line here (e.g. {"mysqld", DBTAP_SYS_MYSQL, ...} with a main rule for
 * single-process servers), plus a describe function when it has fields beyond the generic ones.
 * "postmaster" is the name of the old (PostgreSQL < 16) symlink to the same binary.
 */
static const struct discovery_rule discovery_rules[] = {
	{"postgres", DBTAP_SYS_POSTGRESQL, DISCOVERY_MAIN_PARENT_OTHER_SYSTEM, pg_describe},
	{"postmaster", DBTAP_SYS_POSTGRESQL, DISCOVERY_MAIN_PARENT_OTHER_SYSTEM, pg_describe},
	{"redis-server", DBTAP_SYS_REDIS, DISCOVERY_MAIN_PARENT_OTHER_SYSTEM, NULL},
	{"valkey-server", DBTAP_SYS_REDIS, DISCOVERY_MAIN_PARENT_OTHER_SYSTEM, NULL},
	{"keydb-server", DBTAP_SYS_REDIS, DISCOVERY_MAIN_PARENT_OTHER_SYSTEM, NULL},
	/* MySQL or MariaDB: the kernel decoder tells them apart by the server's greeting */
	{"mysqld", DBTAP_SYS_MYSQL, DISCOVERY_MAIN_PARENT_OTHER_SYSTEM, NULL},
	{"mariadbd", DBTAP_SYS_MARIADB, DISCOVERY_MAIN_PARENT_OTHER_SYSTEM, NULL},
	{"mongod", DBTAP_SYS_MONGODB, DISCOVERY_MAIN_PARENT_OTHER_SYSTEM, NULL},
	{"mongos", DBTAP_SYS_MONGODB, DISCOVERY_MAIN_PARENT_OTHER_SYSTEM, NULL},
};

#define DISCOVERY_N_RULES (sizeof(discovery_rules) / sizeof(discovery_rules[0]))

static const struct discovery_rule *rule_for_comm(const char *comm)
{
	size_t i;

	if (!comm)
		return NULL;
	for (i = 0; i < DISCOVERY_N_RULES; i++)
		if (strcmp(discovery_rules[i].comm, comm) == 0)
			return &discovery_rules[i];
	return NULL;
}

const char *dbtap_discovery_comm_at(size_t i, enum dbtap_system *ret_system)
{
	if (i >= DISCOVERY_N_RULES)
		return NULL;
	*ret_system = discovery_rules[i].system;
	return discovery_rules[i].comm;
}

enum dbtap_system dbtap_system_from_comm(const char *comm)
{
	const struct discovery_rule *rule = rule_for_comm(comm);

	return rule ? rule->system : DBTAP_SYS_UNKNOWN;
}

/* ---- small file helpers ---- */

/* "<proc_root>/<pid>/<rel>" into @buf; -ENAMETOOLONG when it does not fit. */
static int proc_path(char *buf, size_t size, const char *proc_root, pid_t pid, const char *rel)
{
	int n = snprintf(buf, size, "%s/%d/%s", proc_root, (int)pid, rel);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * Read at most @size - 1 bytes of @path into @buf and NUL-terminate it. Returns the number of
 * bytes read (>= 0) or -errno.
 */
static ssize_t read_small_file(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd, err = 0;

	buf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len + 1 < size) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return err ? err : (ssize_t)len;
}

/* readlink() into @buf, NUL-terminated; -ENAMETOOLONG when the target does not fit. */
static int read_link(const char *path, char *buf, size_t size)
{
	ssize_t n = readlink(path, buf, size);

	if (n < 0) {
		buf[0] = '\0';
		return -errno;
	}
	if ((size_t)n >= size) {
		buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	buf[n] = '\0';
	return 0;
}

/* Task name of @pid without its newline. */
static int read_comm(const char *proc_root, pid_t pid, char *buf, size_t size)
{
	char path[PATH_MAX];
	ssize_t n;
	int err;

	err = proc_path(path, sizeof(path), proc_root, pid, "comm");
	if (err)
		return err;
	n = read_small_file(path, buf, size);
	if (n < 0)
		return (int)n;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Decimal pid from a /proc directory name or a status field; 0 when it is not one. */
static pid_t parse_pid(const char *s, size_t len)
{
	long v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	return v > 0 && v <= INT_MAX ? (pid_t)v : 0;
}

/* Value of a whole field of 1..16 hex digits. */
static bool parse_hex(const char *s, size_t len, unsigned long long *ret)
{
	unsigned long long v = 0;
	size_t i;
	int d;

	if (len == 0 || len > 16)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else if (s[i] >= 'A' && s[i] <= 'F')
			d = s[i] - 'A' + 10;
		else
			return false;
		v = v << 4 | (unsigned long long)d;
	}
	*ret = v;
	return true;
}

/* Value of a whole field of 1..19 decimal digits. */
static bool parse_dec(const char *s, size_t len, unsigned long long *ret)
{
	unsigned long long v = 0;
	size_t i;

	if (len == 0 || len > 19)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long long)(s[i] - '0');
	}
	*ret = v;
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

struct field {
	const char *s;
	size_t len;
};

/* Split @line at blanks into at most @max fields; returns how many were found. */
static int split_fields(const char *line, struct field *fields, int max)
{
	const char *p = line;
	int n = 0;

	while (n < max) {
		while (is_blank(*p))
			p++;
		if (!*p)
			break;
		fields[n].s = p;
		while (*p && !is_blank(*p))
			p++;
		fields[n].len = (size_t)(p - fields[n].s);
		n++;
	}
	return n;
}

/*
 * Next whole line of @f into @buf (without its newline). Lines longer than the buffer are
 * skipped entirely, so a fragment is never mistaken for the start of a line. Returns false at
 * the end of the file.
 */
static bool read_line(FILE *f, char *buf, size_t size)
{
	size_t len;

	while (fgets(buf, (int)size, f)) {
		len = strlen(buf);
		if (len > 0 && buf[len - 1] == '\n') {
			buf[len - 1] = '\0';
			return true;
		}
		if (feof(f))
			return true; /* last line without a newline */
		/* too long: drop the rest of it */
		while (fgets(buf, (int)size, f)) {
			len = strlen(buf);
			if (len > 0 && buf[len - 1] == '\n')
				break;
		}
	}
	return false;
}

/* ---- one scan of /proc ---- */

struct discovery_candidate {
	pid_t pid;
	pid_t ppid;
	pid_t ns_pid; /* last NSpid field, @pid when the kernel has none */
	const struct discovery_rule *rule;
};

struct discovery_scan {
	struct discovery_candidate *items; /* sorted by pid */
	int n;
	int cap;
};

/* PPid and the innermost NSpid from /proc/PID/status. */
static int read_status(const char *proc_root, pid_t pid, pid_t *ret_ppid, pid_t *ret_ns_pid)
{
	struct field fields[PROC_STATUS_MAX_PID_NS];
	char path[PATH_MAX], line[DISCOVERY_LINE_MAX];
	bool have_ppid = false;
	pid_t ns_pid = 0;
	FILE *f;
	int err, n;

	err = proc_path(path, sizeof(path), proc_root, pid, "status");
	if (err)
		return err;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	*ret_ppid = 0;
	while (read_line(f, line, sizeof(line))) {
		if (strncmp(line, PROC_STATUS_PPID, strlen(PROC_STATUS_PPID)) == 0) {
			if (split_fields(line + strlen(PROC_STATUS_PPID), fields, 1) == 1) {
				/* PPid 0: the kernel started it (init, kthreads) */
				*ret_ppid = parse_pid(fields[0].s, fields[0].len);
				have_ppid = true;
			}
		} else if (strncmp(line, PROC_STATUS_NSPID, strlen(PROC_STATUS_NSPID)) == 0) {
			/* "NSpid:\t300\t1": outermost first, the process's own namespace last */
			n = split_fields(line + strlen(PROC_STATUS_NSPID), fields,
					 PROC_STATUS_MAX_PID_NS);
			if (n > 0)
				ns_pid = parse_pid(fields[n - 1].s, fields[n - 1].len);
		}
	}
	fclose(f);
	if (!have_ppid)
		return -ENOENT; /* a truncated or foreign file: treat the process as gone */
	*ret_ns_pid = ns_pid ? ns_pid : pid;
	return 0;
}

static int candidate_cmp(const void *a, const void *b)
{
	const struct discovery_candidate *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

static const struct discovery_candidate *scan_find(const struct discovery_scan *scan, pid_t pid)
{
	struct discovery_candidate key = {.pid = pid};

	if (!scan->n)
		return NULL;
	return bsearch(&key, scan->items, (size_t)scan->n, sizeof(key), candidate_cmp);
}

static void scan_free(struct discovery_scan *scan)
{
	free(scan->items);
	scan->items = NULL;
	scan->n = scan->cap = 0;
}

/*
 * Every process under @proc_root whose comm is in the table, sorted by pid. Processes that
 * vanish while being read are left out. Returns 0, or -errno when @proc_root cannot be listed
 * or memory runs out.
 */
static int scan_proc(const char *proc_root, struct discovery_scan *scan)
{
	struct discovery_candidate c, *grown;
	char comm[DISCOVERY_COMM_MAX];
	struct dirent *de;
	DIR *dir;
	int err = 0, cap;

	memset(scan, 0, sizeof(*scan));
	dir = opendir(proc_root);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		memset(&c, 0, sizeof(c));
		c.pid = parse_pid(de->d_name, strlen(de->d_name));
		if (!c.pid)
			continue;
		if (read_comm(proc_root, c.pid, comm, sizeof(comm)))
			continue;
		c.rule = rule_for_comm(comm);
		if (!c.rule)
			continue;
		if (read_status(proc_root, c.pid, &c.ppid, &c.ns_pid))
			continue;
		if (scan->n == DISCOVERY_MAX_CANDIDATES)
			break;
		if (scan->n == scan->cap) {
			cap = scan->cap ? scan->cap * 2 : 64;
			grown = realloc(scan->items, (size_t)cap * sizeof(*grown));
			if (!grown) {
				err = -ENOMEM;
				break;
			}
			scan->items = grown;
			scan->cap = cap;
		}
		scan->items[scan->n++] = c;
	}
	closedir(dir);
	if (err) {
		scan_free(scan);
		return err;
	}
	if (scan->n)
		qsort(scan->items, (size_t)scan->n, sizeof(*scan->items), candidate_cmp);
	return 0;
}

/* Whether @c is its server's main process, by its rule. */
static bool is_main_process(const struct discovery_scan *scan, const struct discovery_candidate *c)
{
	const struct discovery_candidate *parent;

	switch (c->rule->main_rule) {
	case DISCOVERY_MAIN_PARENT_OTHER_SYSTEM:
		parent = scan_find(scan, c->ppid);
		return !parent || parent->rule->system != c->rule->system;
	}
	return false;
}

/* ---- generic instance fields: namespaces, container, executable ---- */

/* True when @pid's pid or mount namespace differs from the reader's (<proc_root>/self). */
static bool in_other_namespace(const char *proc_root, pid_t pid)
{
	static const char *const kinds[] = {"ns/pid", "ns/mnt"};
	char path[PATH_MAX], self_path[PATH_MAX], mine[64], theirs[64];
	size_t i;
	int n;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = snprintf(self_path, sizeof(self_path), "%s/self/%s", proc_root, kinds[i]);
		if (n < 0 || (size_t)n >= sizeof(self_path))
			continue;
		if (proc_path(path, sizeof(path), proc_root, pid, kinds[i]))
			continue;
		/* "pid:[4026531836]": equal text means the same namespace */
		if (read_link(self_path, mine, sizeof(mine)) ||
		    read_link(path, theirs, sizeof(theirs)))
			continue;
		if (strcmp(mine, theirs) != 0)
			return true;
	}
	return false;
}

static bool is_hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * The first run of exactly 64 hex digits in a cgroup path component of @line
 * ("0::/system.slice/docker-<id>.scope", "/docker/<id>", ".../cri-containerd-<id>.scope",
 * "crio-<id>", "libpod-<id>", "/kubepods/.../<id>") into @ret. Returns true when found.
 */
static bool container_id_from_cgroup_line(const char *line, char *ret, size_t size)
{
	const char *p = strchr(line, '/'), *run;
	size_t len;

	if (!p)
		return false;
	while (*p) {
		if (!is_hex_digit(*p)) {
			p++;
			continue;
		}
		run = p;
		while (is_hex_digit(*p))
			p++;
		len = (size_t)(p - run);
		if (len == CONTAINER_ID_HEX && len < size) {
			memcpy(ret, run, len);
			ret[len] = '\0';
			return true;
		}
	}
	return false;
}

static void read_container_id(const char *proc_root, pid_t pid, char *ret, size_t size)
{
	char path[PATH_MAX], line[DISCOVERY_LINE_MAX];
	FILE *f;

	ret[0] = '\0';
	if (proc_path(path, sizeof(path), proc_root, pid, "cgroup"))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	while (read_line(f, line, sizeof(line)))
		if (container_id_from_cgroup_line(line, ret, size))
			break;
	fclose(f);
}

/* ---- listening sockets ---- */

struct socket_set {
	unsigned long long inodes[DISCOVERY_MAX_SOCKETS]; /* sorted */
	int n;
};

static int inode_cmp(const void *a, const void *b)
{
	const unsigned long long *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

static bool socket_set_has(const struct socket_set *set, unsigned long long inode)
{
	return set->n &&
	       bsearch(&inode, set->inodes, (size_t)set->n, sizeof(inode), inode_cmp) != NULL;
}

/* Socket inodes of @pid's open files ("socket:[INODE]" links under /proc/PID/fd). */
static void collect_sockets(const char *proc_root, pid_t pid, struct socket_set *set)
{
	const size_t prefix_len = strlen(PROC_FD_SOCKET_PREFIX);
	unsigned long long inode;
	char path[PATH_MAX], target[64];
	struct dirent *de;
	size_t len;
	int seen = 0;
	ssize_t n;
	DIR *dir;

	set->n = 0;
	if (proc_path(path, sizeof(path), proc_root, pid, "fd"))
		return;
	dir = opendir(path);
	if (!dir)
		return;
	while ((de = readdir(dir)) && seen++ < DISCOVERY_MAX_FDS &&
	       set->n < DISCOVERY_MAX_SOCKETS) {
		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dirfd(dir), de->d_name, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		len = (size_t)n;
		if (len < prefix_len + 2 ||
		    strncmp(target, PROC_FD_SOCKET_PREFIX, prefix_len) != 0 ||
		    target[len - 1] != ']')
			continue;
		if (!parse_dec(target + prefix_len, len - prefix_len - 1, &inode))
			continue;
		set->inodes[set->n++] = inode;
	}
	closedir(dir);
	if (set->n)
		qsort(set->inodes, (size_t)set->n, sizeof(set->inodes[0]), inode_cmp);
}

/*
 * "0100007F:1538" (IPv4) or 32 hex digits + ":PORT" (IPv6) from /proc/net/tcp{,6} into @ret.
 * The kernel prints each 32-bit word of the address as a host-order integer ("%08X" of the
 * in-memory u32), so each word's value is stored back in host order, which restores the
 * network byte order in memory (on little-endian hosts the bytes of each word are reversed in
 * the text). The port is printed as a plain number.
 */
static bool parse_tcp_local(const struct field *fld, struct dbtap_listen *ret)
{
	unsigned char addr[16];
	unsigned long long v, port;
	const char *colon = memchr(fld->s, ':', fld->len);
	size_t addr_len, i;
	uint32_t word;

	if (!colon)
		return false;
	addr_len = (size_t)(colon - fld->s);
	if (addr_len != PROC_TCP_ADDR4_HEX && addr_len != PROC_TCP_ADDR6_HEX)
		return false;
	if (fld->len - addr_len - 1 != PROC_TCP_PORT_HEX ||
	    !parse_hex(colon + 1, PROC_TCP_PORT_HEX, &port))
		return false;
	for (i = 0; i < addr_len / HEX_PER_WORD; i++) {
		if (!parse_hex(fld->s + i * HEX_PER_WORD, HEX_PER_WORD, &v))
			return false;
		word = (uint32_t)v;
		memcpy(addr + i * sizeof(word), &word, sizeof(word));
	}
	ret->family = addr_len == PROC_TCP_ADDR4_HEX ? AF_INET : AF_INET6;
	if (!inet_ntop(ret->family, addr, ret->address, sizeof(ret->address)))
		return false;
	ret->port = (uint16_t)port;
	return true;
}

static bool listen_full(const struct dbtap_instance *inst)
{
	return inst->n_listen >= DBTAP_MAX_LISTEN;
}

/* Rows of /proc/PID/net/tcp or tcp6 in LISTEN state whose inode @set holds. */
static void add_tcp_listeners(const char *proc_root, pid_t pid, const char *rel,
			      const struct socket_set *set, struct dbtap_instance *inst)
{
	struct field fields[PROC_TCP_COL_INODE + 1];
	char path[PATH_MAX], line[DISCOVERY_LINE_MAX];
	unsigned long long state, inode;
	struct dbtap_listen l;
	FILE *f;

	if (proc_path(path, sizeof(path), proc_root, pid, rel))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	while (!listen_full(inst) && read_line(f, line, sizeof(line))) {
		/* the header row fails the numeric checks below */
		if (split_fields(line, fields, PROC_TCP_COL_INODE + 1) != PROC_TCP_COL_INODE + 1)
			continue;
		if (!parse_hex(fields[PROC_TCP_COL_STATE].s, fields[PROC_TCP_COL_STATE].len,
			       &state) ||
		    state != PROC_TCP_STATE_LISTEN)
			continue;
		if (!parse_dec(fields[PROC_TCP_COL_INODE].s, fields[PROC_TCP_COL_INODE].len,
			       &inode) ||
		    !socket_set_has(set, inode))
			continue;
		memset(&l, 0, sizeof(l));
		if (!parse_tcp_local(&fields[PROC_TCP_COL_LOCAL], &l))
			continue;
		inst->listen[inst->n_listen++] = l;
	}
	fclose(f);
}

/* Listening rows of /proc/PID/net/unix whose inode @set holds; the path is the rest of the row. */
static void add_unix_listeners(const char *proc_root, pid_t pid, const struct socket_set *set,
			       struct dbtap_instance *inst)
{
	struct field fields[PROC_UNIX_COL_PATH + 1];
	char path[PATH_MAX], line[DISCOVERY_LINE_MAX];
	unsigned long long flags, inode;
	struct dbtap_listen l;
	const char *sock_path;
	size_t len;
	FILE *f;

	if (proc_path(path, sizeof(path), proc_root, pid, "net/unix"))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	while (!listen_full(inst) && read_line(f, line, sizeof(line))) {
		if (split_fields(line, fields, PROC_UNIX_COL_PATH + 1) < PROC_UNIX_COL_INODE + 1)
			continue;
		if (!parse_hex(fields[PROC_UNIX_COL_FLAGS].s, fields[PROC_UNIX_COL_FLAGS].len,
			       &flags) ||
		    !(flags & PROC_UNIX_FLAG_ACCEPTCON))
			continue;
		if (!parse_dec(fields[PROC_UNIX_COL_INODE].s, fields[PROC_UNIX_COL_INODE].len,
			       &inode) ||
		    !socket_set_has(set, inode))
			continue;
		memset(&l, 0, sizeof(l));
		l.unix_socket = true;
		l.family = AF_UNIX;
		/* the path may hold blanks: take everything after the inode column */
		sock_path = fields[PROC_UNIX_COL_INODE].s + fields[PROC_UNIX_COL_INODE].len;
		while (*sock_path == ' ')
			sock_path++;
		len = strlen(sock_path);
		if (len >= sizeof(l.path))
			len = sizeof(l.path) - 1;
		memcpy(l.path, sock_path, len);
		l.path[len] = '\0';
		inst->listen[inst->n_listen++] = l;
	}
	fclose(f);
}

/* TCP (IPv4, then IPv6) and unix listeners of @inst's main process, in /proc file order. */
static void find_listeners(const char *proc_root, struct dbtap_instance *inst)
{
	struct socket_set *set = malloc(sizeof(*set));

	inst->n_listen = 0;
	if (!set)
		return;
	collect_sockets(proc_root, inst->pid, set);
	if (set->n) {
		add_tcp_listeners(proc_root, inst->pid, "net/tcp", set, inst);
		add_tcp_listeners(proc_root, inst->pid, "net/tcp6", set, inst);
		add_unix_listeners(proc_root, inst->pid, set, inst);
	}
	free(set);
}

/* ---- PostgreSQL ---- */

#define PG_VERSION_FILE	    "PG_VERSION"
#define PG_EXE_VERSION_DIR  "/postgresql/" /* Debian/Ubuntu and PGDG: /usr/lib/postgresql/15/bin */
#define PG_DATA_DIR_OPT	    "-D"
/* Every process title set by the server starts so (src/backend/utils/misc/ps_status.c). */
#define PG_TITLE_PREFIX	    "postgres: "
#define PG_TITLE_LOCAL_HOST "[local]" /* remote host of a unix-socket client */
#define PG_TITLE_WALSENDER  "walsender"
#define PG_TITLE_MAX_TOKENS 16 /* "[cluster:] [walsender] user database host" fit easily */

/*
 * A backend's client host in its title: "[local]" or "HOST(PORT)" with a decimal port
 * ("127.0.0.1(51234)", "::1(40000)", "db.example.com(5000)" with log_hostname).
 */
static bool pg_title_is_host(const char *s, size_t len)
{
	const char *open;
	size_t i;

	if (len == strlen(PG_TITLE_LOCAL_HOST) && memcmp(s, PG_TITLE_LOCAL_HOST, len) == 0)
		return true;
	if (len < 4 || s[len - 1] != ')')
		return false;
	open = memrchr(s, '(', len);
	if (!open || open == s || (size_t)(s + len - 1 - open) < 2)
		return false;
	for (i = (size_t)(open - s) + 1; i < len - 1; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static void copy_field(char *dst, size_t size, const char *s, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/*
 * Whether a process title describes a client connection, and its user and database.
 *
 * The server writes "postgres: [CLUSTER_NAME: ]USER DATABASE HOST[(PORT)] ACTIVITY" for a
 * client backend; auxiliary processes ("checkpointer", "background writer", "walwriter",
 * "autovacuum launcher", "autovacuum worker DB", "logical replication launcher", "archiver",
 * "stats collector", "parallel worker for PID N", other background workers) name no client
 * host, and WAL senders ("walsender USER [DATABASE] HOST ...") are replication connections.
 * Names holding blanks are ambiguous in the title: the first word is taken as the user and
 * the rest up to the host as the database.
 */
static bool pg_parse_title(const char *title, struct dbtap_backend *ret)
{
	struct field tok[PG_TITLE_MAX_TOKENS];
	int n, host = -1, first = 0, i;

	if (strncmp(title, PG_TITLE_PREFIX, strlen(PG_TITLE_PREFIX)) != 0)
		return false;
	n = split_fields(title + strlen(PG_TITLE_PREFIX), tok, PG_TITLE_MAX_TOKENS);
	for (i = 0; i < n; i++) {
		if (pg_title_is_host(tok[i].s, tok[i].len)) {
			host = i;
			break;
		}
	}
	if (host < 0)
		return false;
	/* "15/main:" ends the cluster_name part when there is one */
	for (i = 0; i < host; i++) {
		if (tok[i].s[tok[i].len - 1] == ':') {
			first = i + 1;
			break;
		}
	}
	if (host - first < 2)
		return false;
	if (tok[first].len == strlen(PG_TITLE_WALSENDER) &&
	    memcmp(tok[first].s, PG_TITLE_WALSENDER, tok[first].len) == 0)
		return false;
	copy_field(ret->user, sizeof(ret->user), tok[first].s, tok[first].len);
	copy_field(ret->database, sizeof(ret->database), tok[first + 1].s,
		   (size_t)(tok[host - 1].s + tok[host - 1].len - tok[first + 1].s));
	return true;
}

/*
 * /proc/PID/cmdline of @pid into @buf, NUL separators kept, @ret_len bytes. The server
 * overwrites its argument area with the title and pads it with NULs (or blanks elsewhere).
 */
static int read_cmdline(const char *proc_root, pid_t pid, char *buf, size_t size, size_t *ret_len)
{
	char path[PATH_MAX];
	ssize_t n;
	int err;

	*ret_len = 0;
	err = proc_path(path, sizeof(path), proc_root, pid, "cmdline");
	if (err)
		return err;
	n = read_small_file(path, buf, size);
	if (n < 0)
		return (int)n;
	*ret_len = (size_t)n;
	return 0;
}

/* The title as one string: NULs become blanks, trailing blanks are cut. */
static void cmdline_to_title(char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	while (len > 0 && is_blank(buf[len - 1]))
		len--;
	buf[len] = '\0';
}

/* Value of "-D DIR" or "-DDIR" in a NUL-separated argument list, "" when absent. */
static void data_dir_from_cmdline(const char *args, size_t len, char *ret, size_t size)
{
	const size_t opt_len = strlen(PG_DATA_DIR_OPT);
	const char *arg = args, *end = args + len, *next, *val;

	ret[0] = '\0';
	while (arg < end) {
		next = memchr(arg, '\0', (size_t)(end - arg));
		next = next ? next + 1 : end;
		if (strncmp(arg, PG_DATA_DIR_OPT, opt_len) == 0) {
			val = arg[opt_len] ? arg + opt_len : next;
			if (val < end && *val) {
				/* a value cut by the read limit is no path at all */
				if (!memchr(val, '\0', (size_t)(end - val)) || strlen(val) >= size)
					return;
				strcpy(ret, val);
				return;
			}
			return;
		}
		arg = next;
	}
}

/*
 * Major version from the executable path: "/usr/lib/postgresql/15/bin/postgres" -> "15",
 * ".../postgresql/9.6/bin/..." -> "9.6". Returns true when the path names one.
 */
static bool pg_version_from_exe(const char *exe, char *ret, size_t size)
{
	const char *p = exe, *v, *q;

	while ((p = strstr(p, PG_EXE_VERSION_DIR))) {
		v = p + strlen(PG_EXE_VERSION_DIR);
		q = v;
		while ((*q >= '0' && *q <= '9') || (*q == '.' && q > v))
			q++;
		if (q > v && *q == '/' && q[-1] != '.' && (size_t)(q - v) < size) {
			copy_field(ret, size, v, (size_t)(q - v));
			return true;
		}
		p = v;
	}
	return false;
}

/* Contents of <data_dir>/PG_VERSION through the server's root ("15\n" -> "15"). */
static void pg_version_from_data_dir(const char *proc_root, pid_t pid, const char *data_dir,
				     char *ret, size_t size)
{
	char path[PATH_MAX], buf[32];
	size_t len;
	int n;

	ret[0] = '\0';
	if (data_dir[0] != '/')
		return; /* relative to a directory we do not know */
	n = snprintf(path, sizeof(path), "%s/%d/root%s/%s", proc_root, (int)pid, data_dir,
		     PG_VERSION_FILE);
	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return;
	len = strcspn(buf, " \t\r\n");
	for (n = 0; (size_t)n < len; n++)
		if (!((buf[n] >= '0' && buf[n] <= '9') || buf[n] == '.'))
			return;
	if (len > 0 && len < size)
		copy_field(ret, size, buf, len);
}

/* Client backends of the postmaster: its children whose title names a client connection. */
static int pg_find_backends(const char *proc_root, const struct discovery_scan *scan,
			    struct dbtap_instance *inst)
{
	struct dbtap_backend b, *backends = NULL;
	char *cmdline;
	size_t len;
	int i, n_children = 0, n = 0;

	for (i = 0; i < scan->n; i++)
		if (scan->items[i].ppid == inst->pid)
			n_children++;
	if (!n_children)
		return 0;
	backends = calloc((size_t)n_children, sizeof(*backends));
	cmdline = malloc(DISCOVERY_CMDLINE_MAX);
	if (!backends || !cmdline) {
		free(backends);
		free(cmdline);
		return -ENOMEM;
	}
	for (i = 0; i < scan->n; i++) {
		if (scan->items[i].ppid != inst->pid)
			continue;
		if (read_cmdline(proc_root, scan->items[i].pid, cmdline, DISCOVERY_CMDLINE_MAX,
				 &len))
			continue;
		cmdline_to_title(cmdline, len);
		memset(&b, 0, sizeof(b));
		if (!pg_parse_title(cmdline, &b))
			continue;
		b.pid = scan->items[i].pid;
		backends[n++] = b;
	}
	free(cmdline);
	if (!n) {
		free(backends);
		backends = NULL;
	}
	inst->backends = backends;
	inst->n_backends = n;
	return 0;
}

/*
 * Data directory (the postmaster's cwd, as it chdirs there; else its -D argument), major
 * version (the executable path's /postgresql/NN/ when it has one, since that is the binary
 * running; else <data_dir>/PG_VERSION) and client backends.
 */
static int pg_describe(const char *proc_root, const struct discovery_scan *scan,
		       struct dbtap_instance *inst)
{
	char path[PATH_MAX], *cmdline;
	size_t len = 0;

	if (proc_path(path, sizeof(path), proc_root, inst->pid, "cwd") == 0)
		read_link(path, inst->data_dir, sizeof(inst->data_dir));
	if (!inst->data_dir[0]) {
		cmdline = malloc(DISCOVERY_CMDLINE_MAX);
		if (!cmdline)
			return -ENOMEM;
		if (read_cmdline(proc_root, inst->pid, cmdline, DISCOVERY_CMDLINE_MAX, &len) == 0)
			data_dir_from_cmdline(cmdline, len, inst->data_dir, sizeof(inst->data_dir));
		free(cmdline);
	}
	if (!pg_version_from_exe(inst->exe, inst->version, sizeof(inst->version)) &&
	    inst->data_dir[0])
		pg_version_from_data_dir(proc_root, inst->pid, inst->data_dir, inst->version,
					 sizeof(inst->version));
	return pg_find_backends(proc_root, scan, inst);
}

/* ---- instances ---- */

void dbtap_instance_free(struct dbtap_instance *inst)
{
	if (!inst)
		return;
	free(inst->backends);
	inst->backends = NULL;
	inst->n_backends = 0;
}

void dbtap_instance_list_free(struct dbtap_instance_list *l)
{
	int i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		dbtap_instance_free(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/*
 * Every field of the instance whose main process is @c. Returns 0, -ENOENT when the process
 * exited meanwhile, or -ENOMEM.
 */
static int describe_instance(const char *proc_root, const struct discovery_scan *scan,
			     const struct discovery_candidate *c, struct dbtap_instance *ret)
{
	char path[PATH_MAX], comm[DISCOVERY_COMM_MAX];
	const struct dbtap_probe *probe;
	int err;

	memset(ret, 0, sizeof(*ret));
	ret->system = c->rule->system;
	ret->pid = c->pid;
	ret->ns_pid = c->ns_pid;
	if (proc_path(path, sizeof(path), proc_root, c->pid, "exe") == 0)
		read_link(path, ret->exe, sizeof(ret->exe));
	ret->in_container = in_other_namespace(proc_root, c->pid);
	read_container_id(proc_root, c->pid, ret->container_id, sizeof(ret->container_id));
	find_listeners(proc_root, ret);
	probe = dbtap_probe_for(ret->system);
	if (probe && probe->describe)
		probe->describe(proc_root, ret); /* best effort: version and the like */
	if (c->rule->describe) {
		err = c->rule->describe(proc_root, scan, ret);
		if (err) {
			dbtap_instance_free(ret);
			return err;
		}
	}
	/* gone (or replaced by another program) while we looked: drop what we read */
	if (read_comm(proc_root, c->pid, comm, sizeof(comm)) || rule_for_comm(comm) != c->rule) {
		dbtap_instance_free(ret);
		return -ENOENT;
	}
	return 0;
}

static bool pid_listed(pid_t pid, const uint32_t *only_pids, int n_only)
{
	int i;

	for (i = 0; i < n_only; i++)
		if (only_pids[i] == (uint32_t)pid)
			return true;
	return false;
}

int dbtap_discover(const char *proc_root, const uint32_t *only_pids, int n_only,
		   struct dbtap_instance_list *ret)
{
	struct dbtap_instance *items = NULL, *grown;
	struct discovery_scan scan;
	int i, n = 0, cap = 0, err;

	ret->items = NULL;
	ret->n = 0;
	err = scan_proc(proc_root, &scan);
	if (err)
		return err;
	for (i = 0; i < scan.n; i++) {
		const struct discovery_candidate *c = &scan.items[i];

		if (only_pids && !pid_listed(c->pid, only_pids, n_only))
			continue;
		if (!is_main_process(&scan, c))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			grown = realloc(items, (size_t)cap * sizeof(*items));
			if (!grown) {
				err = -ENOMEM;
				break;
			}
			items = grown;
		}
		err = describe_instance(proc_root, &scan, c, &items[n]);
		if (err == -ENOENT) {
			err = 0;
			continue;
		}
		if (err)
			break;
		n++;
	}
	scan_free(&scan);
	ret->items = items;
	ret->n = n;
	if (err) {
		dbtap_instance_list_free(ret);
		return err;
	}
	if (!n) {
		free(items);
		ret->items = NULL;
	}
	return 0;
}

int dbtap_discover_pid(const char *proc_root, pid_t pid, struct dbtap_instance *ret)
{
	const struct discovery_candidate *c;
	struct discovery_scan scan;
	int err;

	memset(ret, 0, sizeof(*ret));
	/* the whole scan: the main-process rule and the backends need the other processes */
	err = scan_proc(proc_root, &scan);
	if (err)
		return err;
	c = scan_find(&scan, pid);
	if (!c || !is_main_process(&scan, c))
		err = -ENOENT;
	else
		err = describe_instance(proc_root, &scan, c, ret);
	scan_free(&scan);
	return err;
}
