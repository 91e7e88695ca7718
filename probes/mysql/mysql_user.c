// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mysql_user.c - MySQL and MariaDB: the userspace half. Query texts through the SQL normalizer
 * with MySQL's quoting, statement ids of statements prepared before capture as "EXECUTE", and
 * names from the HandshakeResponse41 the kernel decoder hands over as a connection's startup
 * bytes (its payload, without the 4-byte packet header).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/mysql/mysql_user.h"

/* Capability flags the HandshakeResponse41 layout depends on. */
#define MYSQL_CLIENT_CONNECT_WITH_DB	(1u << 3)
#define MYSQL_CLIENT_PROTOCOL_41	(1u << 9)
#define MYSQL_CLIENT_SECURE_CONNECTION	(1u << 15)
#define MYSQL_CLIENT_PLUGIN_AUTH	(1u << 19)
#define MYSQL_CLIENT_CONNECT_ATTRS	(1u << 20)
#define MYSQL_CLIENT_PLUGIN_AUTH_LENENC (1u << 21)
#define MYSQL_HS_USER_AT		32 /* caps 4, max packet 4, charset 1, filler 23 */
#define MYSQL_LENENC_2			0xfc
#define MYSQL_LENENC_3			0xfd
#define MYSQL_LENENC_8			0xfe
#define MYSQL_LENENC_NULL		0xfb
#define MYSQL_ATTR_PROGRAM_NAME		"program_name"
#define MYSQL_TEXT_PING			"PING" /* probes/mysql/mysql.bpf.h */

int dbtap_mysql_normalize(const char *text, size_t len, uint16_t flags, bool raw,
			  struct sql_normalized *ret)
{
	int n;

	if (!(flags & DBTAP_TEXT_F_STMT_NAME)) {
		n = sql_normalize(text, len, SQL_DIALECT_MYSQL, raw, ret);
		/* COM_PING's text from the kernel decoder: not SQL, but the operation */
		if (!n && len == strlen(MYSQL_TEXT_PING) && !memcmp(text, MYSQL_TEXT_PING, len))
			snprintf(ret->operation, sizeof(ret->operation), MYSQL_TEXT_PING);
		return n;
	}
	/* the statement id of a statement prepared before capture */
	memset(ret, 0, sizeof(*ret));
	if (len > 10)
		len = 10;
	n = asprintf(&ret->text, "EXECUTE stmt %.*s", (int)len, text);
	if (n < 0) {
		ret->text = NULL;
		return -ENOMEM;
	}
	snprintf(ret->operation, sizeof(ret->operation), "EXECUTE");
	snprintf(ret->summary, sizeof(ret->summary), "EXECUTE %.*s", (int)len, text);
	return 0;
}

/* A length-encoded integer at *@p (before @end) into *@ret; moves *@p past it. */
static int lenenc(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	const uint8_t *q = *p;
	size_t n, i;

	if (q >= end || *q == MYSQL_LENENC_NULL || *q == 0xff)
		return -EINVAL;
	if (*q < MYSQL_LENENC_NULL) {
		*ret = *q;
		*p = q + 1;
		return 0;
	}
	n = *q == MYSQL_LENENC_2 ? 2 : *q == MYSQL_LENENC_3 ? 3 : 8;
	if ((size_t)(end - q) < 1 + n)
		return -EINVAL;
	*ret = 0;
	for (i = 0; i < n; i++)
		*ret |= (uint64_t)q[1 + i] << (8 * i);
	*p = q + 1 + n;
	return 0;
}

/* A NUL-terminated string at *@p (before @end) into @dst; moves *@p past its NUL. */
static int cstr(const uint8_t **p, const uint8_t *end, char *dst, size_t dst_len)
{
	const uint8_t *nul = *p < end ? memchr(*p, 0, end - *p) : NULL;

	if (!nul)
		return -EINVAL;
	snprintf(dst, dst_len, "%.*s", (int)(nul - *p), (const char *)*p);
	*p = nul + 1;
	return 0;
}

/* program_name from the connection attributes at @p (what is left of the packet). */
static void connect_attrs(const uint8_t *p, const uint8_t *end, struct dbtap_conn_names *ret)
{
	uint64_t total, klen, vlen;
	const uint8_t *k;

	if (lenenc(&p, end, &total))
		return;
	if (total < (uint64_t)(end - p))
		end = p + total;
	while (p < end) {
		if (lenenc(&p, end, &klen) || klen > (uint64_t)(end - p))
			return;
		k = p;
		p += klen;
		if (lenenc(&p, end, &vlen) || vlen > (uint64_t)(end - p))
			return;
		if (klen == strlen(MYSQL_ATTR_PROGRAM_NAME) &&
		    !memcmp(k, MYSQL_ATTR_PROGRAM_NAME, klen))
			snprintf(ret->application_name, sizeof(ret->application_name), "%.*s",
				 (int)vlen, (const char *)p);
		p += vlen;
	}
}

int dbtap_mysql_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret)
{
	const uint8_t *p, *end = msg + len;
	uint64_t auth_len;
	uint32_t caps;
	char skip[DBTAP_NAME_MAX];

	memset(ret, 0, sizeof(*ret));
	if (!msg || len < MYSQL_HS_USER_AT + 1)
		return -EINVAL;
	caps = (uint32_t)msg[0] | (uint32_t)msg[1] << 8 | (uint32_t)msg[2] << 16 |
	       (uint32_t)msg[3] << 24;
	if (!(caps & MYSQL_CLIENT_PROTOCOL_41))
		return -ENOTSUP; /* HandshakeResponse320: pre-4.1 clients */
	p = msg + MYSQL_HS_USER_AT;
	if (cstr(&p, end, ret->user, sizeof(ret->user)))
		return -EINVAL;
	if (caps & MYSQL_CLIENT_PLUGIN_AUTH_LENENC) {
		if (lenenc(&p, end, &auth_len))
			return 0;
	} else if (caps & MYSQL_CLIENT_SECURE_CONNECTION) {
		if (p >= end)
			return 0;
		auth_len = *p++;
	} else {
		if (cstr(&p, end, skip, sizeof(skip)))
			return 0;
		auth_len = 0;
	}
	if (auth_len > (uint64_t)(end - p))
		return 0;
	p += auth_len;
	if ((caps & MYSQL_CLIENT_CONNECT_WITH_DB) &&
	    cstr(&p, end, ret->database, sizeof(ret->database)))
		return 0;
	if ((caps & MYSQL_CLIENT_PLUGIN_AUTH) && cstr(&p, end, skip, sizeof(skip)))
		return 0;
	if (caps & MYSQL_CLIENT_CONNECT_ATTRS)
		connect_attrs(p, end, ret);
	return 0;
}
