/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sql_normalize.h - turn a SQL text as a client sent it into sanitized, normalized text plus
 * the OpenTelemetry db.operation.name, db.collection.name and db.query.summary.
 *
 * The tokenizing rules are the ones the kernel fingerprint follows (docs/normalization.md), so
 * texts that share a fingerprint normalize to the same text. Runs once per new fingerprint, in
 * time linear in the input. Thread safe: no global state.
 */
#ifndef DBTAP_SQL_NORMALIZE_H
#define DBTAP_SQL_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>

/* Which lexical rules apply: quotes, comments and escapes differ between the two. */
enum sql_dialect {
	SQL_DIALECT_POSTGRESQL = 0, /* "x" is an identifier, nested block comments, '' escapes */
	SQL_DIALECT_MYSQL = 1,	    /* "x" is a string, `x` an identifier, # comments, \ escapes */
};

#define SQL_OPERATION_MAX  64  /* bytes of sql_normalized.operation, NUL included */
#define SQL_COLLECTION_MAX 128 /* bytes of sql_normalized.collection, NUL included */
#define SQL_SUMMARY_MAX	   256 /* bytes of sql_normalized.summary, NUL included */

struct sql_normalized {
	char *text;			     /* normalized, sanitized text (malloc'd), never NULL
					       * after success; "" for an empty input */
	char operation[SQL_OPERATION_MAX];   /* "SELECT", "CREATE TABLE", "" when none */
	char collection[SQL_COLLECTION_MAX]; /* main table, unquoted, "schema.table" kept; "" */
	char summary[SQL_SUMMARY_MAX];	     /* "SELECT orders customers"; never cut in a token */
	bool truncated;			     /* input was cut: left false here, set by the caller
					       * from its own flag (DBTAP_TEXT_F_TRUNCATED) */
};

/*
 * sql_normalize - normalize @len bytes of @text (not NUL-terminated; NUL bytes inside count as
 * whitespace) into @ret, which is overwritten (call sql_normalized_free() on it afterwards).
 *
 * Literals become '?', comments go, whitespace folds to single spaces, keywords are upper-cased,
 * IN lists of literals collapse to one '?'. With @raw, literals are kept verbatim (and IN lists
 * are not collapsed) but whitespace and comments are still normalized.
 *
 * Only the first statement gives the operation, collection and summary.
 *
 * Returns 0, -EINVAL (@ret NULL, @text NULL with @len > 0, unknown @dialect) or -ENOMEM; on
 * error @ret->text is NULL and the other fields are empty.
 */
int sql_normalize(const char *text, size_t len, enum sql_dialect dialect, bool raw,
		  struct sql_normalized *ret);

/* Free what sql_normalize() allocated in @n and clear it. Accepts NULL. */
void sql_normalized_free(struct sql_normalized *n);

#endif /* DBTAP_SQL_NORMALIZE_H */
