/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mysql_user.h - MySQL and MariaDB: the userspace half (registry entry in userspace/probes.c).
 */
#ifndef DBTAP_MYSQL_USER_H
#define DBTAP_MYSQL_USER_H

#include "userspace/probes.h"

int dbtap_mysql_normalize(const char *text, size_t len, uint16_t flags, bool raw,
			  struct sql_normalized *ret);
int dbtap_mysql_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret);

#endif
