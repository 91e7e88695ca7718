/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * discovery.h - finding database server instances on the host through /proc.
 *
 * An instance is one running server: its main process (postmaster, mysqld, ...) and every
 * process that serves its clients (PostgreSQL backends). Servers in containers are found the
 * same way: /proc shows every PID namespace's processes with root-namespace PIDs, and their
 * files are reached through /proc/PID/root.
 */
#ifndef DBTAP_DISCOVERY_H
#define DBTAP_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpf/dbtap.h"

#define DBTAP_MAX_LISTEN 16

struct dbtap_listen {
	bool unix_socket; /* true: path holds the socket path */
	int family;	  /* AF_INET / AF_INET6 for TCP */
	char address[64]; /* "127.0.0.1", "::", "0.0.0.0" */
	uint16_t port;
	char path[108]; /* unix socket path as the server sees it (its mount namespace) */
};

struct dbtap_backend {
	pid_t pid;	   /* root PID namespace */
	char user[64];	   /* from the process title, "" unknown */
	char database[64]; /* from the process title, "" unknown */
};

struct dbtap_instance {
	enum dbtap_system system;
	pid_t pid;	       /* the main process, root PID namespace */
	pid_t ns_pid;	       /* the same process as its own PID namespace numbers it */
	char exe[256];	       /* executable path as seen inside the process's mount ns */
	char version[64];      /* "15.18", "" when unknown */
	char data_dir[256];    /* "" when unknown */
	bool in_container;     /* other PID or mount namespace than dbtap's */
	char container_id[80]; /* from /proc/PID/cgroup when it names one, else "" */
	struct dbtap_listen listen[DBTAP_MAX_LISTEN];
	int n_listen;
	struct dbtap_backend *backends; /* children serving clients (PostgreSQL) */
	int n_backends;
};

struct dbtap_instance_list {
	struct dbtap_instance *items;
	int n;
};

/*
 * Scan @proc_root (normally "/proc") for database servers of every known system. With
 * @only_pids non-NULL, keep only instances whose main PID is listed. Returns 0 with the list
 * in @ret (possibly empty), or -errno when @proc_root cannot be read.
 */
int dbtap_discover(const char *proc_root, const uint32_t *only_pids, int n_only,
		   struct dbtap_instance_list *ret);

/* Re-examine one PID (e.g. after an exec event): 0 and @ret filled when it is a server's
 * main process, -ENOENT when it is not (or is gone). */
int dbtap_discover_pid(const char *proc_root, pid_t pid, struct dbtap_instance *ret);

/* Which system a process with this comm (task name) would serve, DBTAP_SYS_UNKNOWN if none. */
enum dbtap_system dbtap_system_from_comm(const char *comm);

/* The @i-th task name of the known servers and its system, NULL past the last. */
const char *dbtap_discovery_comm_at(size_t i, enum dbtap_system *ret_system);

void dbtap_instance_free(struct dbtap_instance *inst);	      /* accepts NULL */
void dbtap_instance_list_free(struct dbtap_instance_list *l); /* accepts NULL */

#endif /* DBTAP_DISCOVERY_H */
