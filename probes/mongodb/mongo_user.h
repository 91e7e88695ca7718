/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mongo_user.h - MongoDB: the userspace half (registry entry in userspace/probes.c).
 */
#ifndef DBTAP_MONGO_USER_H
#define DBTAP_MONGO_USER_H

#include "userspace/probes.h"

/* A request message's first bytes (a text record) -> `find users {"status": ?}`, operation
 * "find", collection "users", summary "find users". 0, -EINVAL (not a request the decoder
 * fingerprints), -ENOMEM. */
int dbtap_mongo_normalize(const char *text, size_t len, uint16_t flags, bool raw,
			  struct sql_normalized *ret);
/* The $db (OP_MSG) or fullCollectionName database (OP_QUERY) of a text record into
 * @ret->database: the name the kernel hashed into db_id. 0, -EINVAL, -ENOENT (none). */
int dbtap_mongo_text_names(const char *text, size_t len, uint16_t flags,
			   struct dbtap_conn_names *ret);
/* MongoDB connections carry no startup record: -ENOTSUP. */
int dbtap_mongo_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret);

#endif
