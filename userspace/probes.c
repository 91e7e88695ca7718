// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * probes.c - the registry of database systems: one line per system (see probes.h).
 */
#include <stddef.h>

#include "userspace/probes.h"
#include "probes/postgresql/pg_user.h"
#include "probes/redis/redis_user.h"
#include "probes/mysql/mysql_user.h"
#include "probes/mongodb/mongo_user.h"

static const char *const redis_db_names[] = {"0", "1",	"2",  "3",  "4",  "5",	"6",  "7", "8",
					     "9", "10", "11", "12", "13", "14", "15", NULL};

static const struct dbtap_probe probes[] = {
	/* system, normalize, startup, fixed_names, text_names, describe */
	{DBTAP_SYS_POSTGRESQL, dbtap_pg_normalize, dbtap_pg_startup, NULL, NULL, NULL},
	{DBTAP_SYS_MYSQL, dbtap_mysql_normalize, dbtap_mysql_startup, NULL, NULL, NULL},
	{DBTAP_SYS_MARIADB, dbtap_mysql_normalize, dbtap_mysql_startup, NULL, NULL, NULL},
	{DBTAP_SYS_REDIS, dbtap_redis_normalize, NULL, redis_db_names, NULL, NULL},
	{DBTAP_SYS_MONGODB, dbtap_mongo_normalize, dbtap_mongo_startup, NULL,
	 dbtap_mongo_text_names, NULL},
};

const struct dbtap_probe *dbtap_probe_for(enum dbtap_system system)
{
	size_t i;

	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		if (probes[i].system == system)
			return &probes[i];
	return NULL;
}
