/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * jsonl.h - the JSON-lines exporter: one JSON object per series, one per sample and one
 * "dbtap.self" object per interval, written to a stdio stream. The line format is a public
 * contract, documented in docs/output.md.
 */
#ifndef DBTAP_EXPORTERS_JSONL_H
#define DBTAP_EXPORTERS_JSONL_H

#include <stdio.h>

#include "userspace/series.h"

struct dbtap_jsonl; /* opaque */

/*
 * New exporter writing to @fp (stdout or a file), which it never closes. Returns NULL with
 * errno set (EINVAL for a NULL @fp, ENOMEM).
 */
struct dbtap_jsonl *dbtap_jsonl_new(FILE *fp);

/*
 * Write one snapshot: a "dbtap.series" line for every series with count > 0, a "dbtap.sample"
 * line for every sample, then the "dbtap.self" line, then fflush. Returns 0, -EINVAL for NULL
 * arguments (a sample without its series included), -ENOMEM, or the -errno of the failed
 * write or flush (-EIO when stdio did not say).
 */
int dbtap_jsonl_write(struct dbtap_jsonl *j, const struct dbtap_snapshot *snap);

/* Free the exporter (not its stream); accepts NULL. */
void dbtap_jsonl_free(struct dbtap_jsonl *j);

#endif /* DBTAP_EXPORTERS_JSONL_H */
