// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pg_user.c - PostgreSQL's userspace half: query texts through the SQL normalizer, and names
 * from a StartupMessage.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "probes/postgresql/pg_user.h"

int dbtap_pg_normalize(const char *text, size_t len, uint16_t flags, bool raw,
		       struct sql_normalized *ret)
{
	(void)flags;
	return sql_normalize(text, len, SQL_DIALECT_POSTGRESQL, raw, ret);
}

int dbtap_pg_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret)
{
	const char *p, *end;

	memset(ret, 0, sizeof(*ret));
	if (!msg || len < 8)
		return -EINVAL;
	p = (const char *)msg + 8;
	end = (const char *)msg + len;
	/* int32 length, int32 protocol, then key\0value\0 pairs, then \0 */
	while (p < end && *p) {
		const char *k = p, *v = memchr(p, 0, end - p);

		if (!v || ++v >= end)
			break;
		p = memchr(v, 0, end - v);
		if (!p)
			break;
		p++;
		if (!strcmp(k, "user"))
			snprintf(ret->user, sizeof(ret->user), "%s", v);
		else if (!strcmp(k, "database"))
			snprintf(ret->database, sizeof(ret->database), "%s", v);
		else if (!strcmp(k, "application_name"))
			snprintf(ret->application_name, sizeof(ret->application_name), "%s", v);
	}
	if (ret->user[0] && !ret->database[0]) /* the server's default: the user's name */
		snprintf(ret->database, sizeof(ret->database), "%s", ret->user);
	return 0;
}
