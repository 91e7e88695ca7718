// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * redis_user.c - Redis (RESP2/RESP3): the userspace half. A text record from the kernel
 * decoder (probes/redis/redis.bpf.h) is "COMMAND [SUBCOMMAND] [key as seen]"; it becomes
 *   db.operation.name  "GET", or "CLIENT SETNAME" for commands with subcommands
 *   db.query.summary   "GET user:?:cart" (the key pattern: hex-with-digit segments and digit
 *                      runs folded to '?'; the kernel folds digit runs only, and the store
 *                      merges what normalizes alike)
 *   text               the summary; with raw text opted in, the captured bytes
 *   db.collection.name "" (Redis keys are not collections; the pattern is in the summary)
 * Arguments other than the key are never captured, so never leave the host.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/redis/redis_user.h"

/* Commands whose second word is a subcommand (REDIS_CLS_SUBCMD in redis.bpf.h). */
static const char *const subcommand_commands[] = {
	"ACL",	  "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG",   "FUNCTION", "LATENCY",
	"MEMORY", "MODULE", "OBJECT",  "PUBSUB",  "SCRIPT", "SLOWLOG", "XGROUP",   "XINFO",
};

static bool has_subcommand(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(subcommand_commands) / sizeof(subcommand_commands[0]); i++)
		if (strlen(subcommand_commands[i]) == len &&
		    !memcmp(subcommand_commands[i], name, len))
			return true;
	return false;
}

/* Length of the word at @p (up to a space or @end). */
static size_t word_len(const char *p, const char *end)
{
	const char *q = memchr(p, ' ', (size_t)(end - p));

	return q ? (size_t)(q - p) : (size_t)(end - p);
}

static char printable(char c)
{
	return c >= 0x20 && c < 0x7f ? c : '?';
}

static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * The key's pattern, appended to @out at @len (NUL terminated, never past @size): segments
 * (runs of letters and digits between other characters) that are identifiers — hex with a
 * digit, as session ids and hashes are — become one '?'; elsewhere digit runs do
 * ("user:1234:cart" -> "user:?:cart", "session:3fa9c1" -> "session:?",
 * "order12" -> "order?"). Returns the new length.
 */
static size_t key_pattern(const char *key, const char *end, char *out, size_t len, size_t size)
{
	while (key < end && len + 1 < size) {
		const char *seg = key;
		bool hex = true, digit = false, in_digits = false;

		if (!is_alnum(*key)) {
			out[len++] = printable(*key++);
			continue;
		}
		for (; key < end && is_alnum(*key); key++) {
			hex = hex && is_hex(*key);
			digit = digit || (*key >= '0' && *key <= '9');
		}
		if (hex && digit) {
			out[len++] = '?';
			continue;
		}
		for (; seg < key && len + 1 < size; seg++) {
			if (*seg >= '0' && *seg <= '9') {
				if (!in_digits)
					out[len++] = '?';
				in_digits = true;
				continue;
			}
			in_digits = false;
			out[len++] = *seg;
		}
	}
	out[len] = 0;
	return len;
}

int dbtap_redis_normalize(const char *text, size_t len, uint16_t flags, bool raw,
			  struct sql_normalized *ret)
{
	const char *p = text, *end = text + len, *key = NULL;
	size_t n, out_len = 0, i;
	char *summary;

	(void)flags;
	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!text && len)
		return -EINVAL;
	n = word_len(p, end);
	if (n && has_subcommand(p, n) && n < len)
		n += 1 + word_len(p + n + 1, end); /* "CLIENT SETNAME" */
	snprintf(ret->operation, sizeof(ret->operation), "%.*s", (int)n, p);
	for (i = 0; ret->operation[i]; i++)
		ret->operation[i] = printable(ret->operation[i]);
	if (n < len)
		key = p + n + 1;

	/* summary: operation, then the key pattern */
	summary = ret->summary;
	out_len = strlen(ret->operation);
	memcpy(summary, ret->operation, out_len + 1);
	if (key && key < end && out_len + 2 < sizeof(ret->summary)) {
		summary[out_len++] = ' ';
		out_len = key_pattern(key, end, summary, out_len, sizeof(ret->summary));
		summary[out_len] = 0;
	}
	if (raw) {
		ret->text = malloc(len + 1);
		if (!ret->text)
			goto nomem;
		for (i = 0; i < len; i++)
			ret->text[i] = printable(text[i]);
		ret->text[len] = 0;
	} else {
		ret->text = strdup(summary);
		if (!ret->text)
			goto nomem;
	}
	return 0;
nomem:
	memset(ret, 0, sizeof(*ret));
	return -ENOMEM;
}

int dbtap_redis_startup(const uint8_t *msg, size_t len, struct dbtap_conn_names *ret)
{
	(void)msg;
	(void)len;
	memset(ret, 0, sizeof(*ret));
	return -ENOTSUP; /* RESP has no startup message: connections start in database "0" */
}
