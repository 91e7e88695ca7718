// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fuzz_sql_normalize.c - libFuzzer target for sql_normalize(): arbitrary bytes in both dialects,
 * sanitized and raw; checks bounds, NUL termination and that normalizing is idempotent.
 */
// fuzz-sources: probes/sql/sql_normalize.c
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/dbtap.h"
#include "probes/sql/sql_fingerprint.h"
#include "probes/sql/sql_normalize.h"

/* Crash with a message libFuzzer saves along with the input. */
#define FUZZ_CHECK(cond)                                                                         \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

static void check_bounded(const struct sql_normalized *n, size_t in_len)
{
	FUZZ_CHECK(n->text != NULL);
	/* one space at most before each token, each token at least one byte */
	FUZZ_CHECK(strlen(n->text) <= 2 * in_len);
	FUZZ_CHECK(strnlen(n->operation, sizeof(n->operation)) < sizeof(n->operation));
	FUZZ_CHECK(strnlen(n->collection, sizeof(n->collection)) < sizeof(n->collection));
	FUZZ_CHECK(strnlen(n->summary, sizeof(n->summary)) < sizeof(n->summary));
	FUZZ_CHECK(!n->truncated);
	/* the summary starts with a word (a quoted table name may hold spaces, so only the start) */
	FUZZ_CHECK(n->summary[0] != ' ');
	/* spaces go between tokens only (a quoted token may hold any, but not start with one) */
	FUZZ_CHECK(n->text[0] != ' ');
}

static void run(const uint8_t *data, size_t size, enum sql_dialect dialect, bool raw)
{
	struct sql_normalized first, second;
	int err;

	err = sql_normalize((const char *)data, size, dialect, raw, &first);
	if (err == -ENOMEM)
		return;
	FUZZ_CHECK(err == 0);
	check_bounded(&first, size);

	/* sanitized text is a fixed point: normalizing it again changes nothing */
	if (!raw) {
		size_t len = strlen(first.text);

		err = sql_normalize(first.text, len, dialect, raw, &second);
		FUZZ_CHECK(err == 0);
		check_bounded(&second, len);
		if (strcmp(first.text, second.text) != 0) {
			fprintf(stderr, "not idempotent (dialect %d):\n  1: %s\n  2: %s\n", dialect,
				first.text, second.text);
			abort();
		}
		FUZZ_CHECK(strcmp(first.operation, second.operation) == 0);
		FUZZ_CHECK(strcmp(first.collection, second.collection) == 0);
		FUZZ_CHECK(strcmp(first.summary, second.summary) == 0);
		sql_normalized_free(&second);
	}
	sql_normalized_free(&first);
}

/* The kernel's hot path (sql_fp_step_fast) gives the full state machine's fingerprint. */
static void fingerprint_paths_agree(const uint8_t *data, size_t size, enum sql_fp_dialect d)
{
	struct sql_fp slow, fast;
	size_t i;

	sql_fp_init(&slow, d);
	sql_fp_init(&fast, d);
	for (i = 0; i < size; i++) {
		sql_fp_step(&slow, data[i]);
		sql_fp_step_fast(&fast, data[i]);
	}
	FUZZ_CHECK(sql_fp_finish(&slow) == sql_fp_finish(&fast));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fingerprint_paths_agree(data, size, SQL_FP_POSTGRESQL);
	fingerprint_paths_agree(data, size, SQL_FP_MYSQL);
	run(data, size, SQL_DIALECT_POSTGRESQL, false);
	run(data, size, SQL_DIALECT_POSTGRESQL, true);
	run(data, size, SQL_DIALECT_MYSQL, false);
	run(data, size, SQL_DIALECT_MYSQL, true);
	return 0;
}
