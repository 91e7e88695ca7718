// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * redis_user.c - Redis (RESP2/RESP3): the userspace half. Not written yet: texts are refused (the store
 * then labels the series by fingerprint only), no names.
 */
#include <errno.h>
#include <string.h>

#include "probes/redis/redis_user.h"

int dbtap_redis_normalize(const char *text, size_t len, uint16_t flags, bool raw,
			  struct sql_normalized *ret)
{
	(void)text;
	(void)len;
	(void)flags;
	(void)raw;
	memset(ret, 0, sizeof(*ret));
	return -ENOTSUP;
}

int dbtap_redis_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret)
{
	(void)msg;
	(void)len;
	memset(ret, 0, sizeof(*ret));
	return -ENOTSUP;
}
