// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mysql_user.c - MySQL and MariaDB: the userspace half. Not written yet: texts are refused (the store
 * then labels the series by fingerprint only), no names.
 */
#include <errno.h>
#include <string.h>

#include "probes/mysql/mysql_user.h"

int dbtap_mysql_normalize(const char *text, size_t len, uint16_t flags, bool raw,
			  struct sql_normalized *ret)
{
	(void)text;
	(void)len;
	(void)flags;
	(void)raw;
	memset(ret, 0, sizeof(*ret));
	return -ENOTSUP;
}

int dbtap_mysql_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret)
{
	(void)msg;
	(void)len;
	memset(ret, 0, sizeof(*ret));
	return -ENOTSUP;
}
