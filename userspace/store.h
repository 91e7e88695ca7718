/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * store.h - the series store: what userspace knows beside the kernel's counts (query texts,
 * database and user names, instances), the samples received during the interval, and the
 * per-interval snapshot built from the maps.
 */
#ifndef DBTAP_STORE_H
#define DBTAP_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "userspace/config.h"
#include "userspace/discovery.h"
#include "userspace/series.h"

struct dbtap_store;

struct dbtap_store *dbtap_store_new(const struct dbtap_config *cfg);
void dbtap_store_free(struct dbtap_store *st); /* accepts NULL */

/* An instance's identity for its series (address, port, socket). Replaces an older one. */
void dbtap_store_add_instance(struct dbtap_store *st, const struct dbtap_instance *inst);

/* A database or user name behind a kernel name id (dbtap_name_hash). */
void dbtap_store_add_name(struct dbtap_store *st, const char *name);

/* A query text record from the kernel: normalized (sanitized unless raw) and kept. */
void dbtap_store_add_text(struct dbtap_store *st, const struct dbtap_ev_text *ev);

/* A connection event: names from its startup bytes (user, database) through the system's
 * registry entry, and the W3C traceparent of its application_name while it is open. */
void dbtap_store_add_conn(struct dbtap_store *st, const struct dbtap_ev_conn *ev);

/* Parse a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>") found anywhere in @s (NUL
 * terminated): 0 and the ids, or -EINVAL (none, or all-zero ids). */
int dbtap_traceparent_parse(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
			    uint8_t *flags);

/* Samples kept per interval; the ones received beyond are counted in samples_dropped. */
#define DBTAP_STORE_MAX_SAMPLES 1000

/*
 * A sample record from the kernel: kept until the next dbtap_store_collect() labels it, up to
 * DBTAP_STORE_MAX_SAMPLES per interval; beyond, it is only counted as dropped.
 */
void dbtap_store_add_sample(struct dbtap_store *st, const struct dbtap_ev_sample *ev);

/*
 * Read the "aggs" and "errs" maps (fds), subtract what the last call saw, and fill @snap with
 * the series active since then and the samples received since then, each labelled as its
 * series (a series that only a sample refers to is in the snapshot with count 0).
 * @closed_epoch: the epoch that just ended (its min/max slot is read). @realtime_offset_ns:
 * CLOCK_REALTIME minus CLOCK_MONOTONIC, read once for this interval, turns the samples' kernel
 * times into wall clock times. The snapshot stays valid until the next call. 0 or -errno.
 */
int dbtap_store_collect(struct dbtap_store *st, int aggs_fd, int errs_fd, uint32_t closed_epoch,
			int64_t realtime_offset_ns, struct dbtap_snapshot *snap);

#endif /* DBTAP_STORE_H */
