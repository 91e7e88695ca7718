/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * redis_user.h - Redis (RESP2/RESP3): the userspace half (registry entry in userspace/probes.c).
 */
#ifndef DBTAP_REDIS_USER_H
#define DBTAP_REDIS_USER_H

#include "userspace/probes.h"

int dbtap_redis_normalize(const char *text, size_t len, uint16_t flags, bool raw,
			  struct sql_normalized *ret);
int dbtap_redis_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret);

#endif
