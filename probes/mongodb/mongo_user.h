/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mongo_user.h - MongoDB: the userspace half (registry entry in userspace/probes.c).
 */
#ifndef DBTAP_MONGO_USER_H
#define DBTAP_MONGO_USER_H

#include "userspace/probes.h"

int dbtap_mongo_normalize(const char *text, size_t len, uint16_t flags, bool raw,
			  struct sql_normalized *ret);
int dbtap_mongo_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret);

#endif
