/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * probes.h - the registry of database systems: what userspace does differently per system
 * (turning a query text record into normalized text, reading names from a connection's first
 * bytes). The kernel half of a system is its decoder in probes/<db>/<db>.bpf.h, dispatched in
 * bpf/decoders.bpf.h; the task names that identify its servers are in discovery.c's table.
 */
#ifndef DBTAP_PROBES_H
#define DBTAP_PROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/dbtap.h"
#include "probes/sql/sql_normalize.h"
#include "userspace/discovery.h"

#define DBTAP_NAME_MAX 64

/* What a connection's startup/handshake bytes say; "" when not said. */
struct dbtap_conn_names {
	char user[DBTAP_NAME_MAX];
	char database[DBTAP_NAME_MAX];
	char application_name[DBTAP_NAME_MAX];
};

struct dbtap_probe {
	enum dbtap_system system;
	/*
	 * A query text record (@len bytes of @text, DBTAP_TEXT_F_* @flags) into @ret: sanitized
	 * text unless @raw, operation, collection and summary, as sql_normalize() fills them.
	 * @ret->text is malloc'd. 0 or -errno.
	 */
	int (*normalize)(const char *text, size_t len, uint16_t flags, bool raw,
			 struct sql_normalized *ret);
	/* Names from the bytes of a connection event's startup[] (DBTAP_CONN_F_STARTUP). NULL
	 * when the system's connections carry none. 0 or -errno. */
	int (*startup)(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret);
	/* Names the kernel may hash into db_id without a startup (Redis "0".."15"): NULL
	 * terminated, or NULL. */
	const char *const *fixed_names;
	/* Names a query text record mentions that the kernel hashed into db_id (MongoDB's
	 * $db): into @ret->database. NULL when texts carry none. 0 or -errno. */
	int (*text_names)(const char *text, size_t len, uint16_t flags,
			  struct dbtap_conn_names *ret);
	/* Fields of a discovered instance beyond the generic ones (version, data directory),
	 * after its listeners are found; best effort. NULL when none. 0 or -errno. */
	int (*describe)(const char *proc_root, struct dbtap_instance *inst);
};

/* The entry of @system, NULL when it has none. */
const struct dbtap_probe *dbtap_probe_for(enum dbtap_system system);

#endif /* DBTAP_PROBES_H */
