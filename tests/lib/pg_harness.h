/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pg_harness.h - the kernel's PostgreSQL decoder (probes/postgresql/pg.bpf.h) and capture core
 * (bpf/capture_core.bpf.h) run in userspace over in-memory maps (tests/lib/bpf_shim.h): feed
 * it chunks as the socket tracepoints would see them, then read the maps and ring buffer.
 *
 * One global instance (the kernel's maps are global too). Not thread-safe. Functions return 0
 * or -errno. Pointers returned by accessors stay valid until the next pgh_chunk(),
 * pgh_events_consume() or pgh_reset().
 *
 * Note: bpf/capture.h defines AF_INET and friends with the kernel's values; include this
 * header before (or instead of) <sys/socket.h>.
 */
#ifndef DBTAP_PG_HARNESS_H
#define DBTAP_PG_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bpf/capture.h"

#define PGH_MAX_CONNS	       64    /* connections known to the harness at once */
#define PGH_LOCAL_PORT	       5432  /* the server's end of every connection */
#define PGH_PEER_PORT_BASE     40000 /* client port: base + index of the connection */
#define PGH_DEFAULT_STALE_BYTE 0xee  /* scratch bytes past the current chunk's copy */

/* Forget everything: maps, ring buffer, counters, connections, settings back to defaults
 * (sample rate 0, slow threshold 100 ms, epoch 1, unlimited ring buffer, kernel map sizes,
 * user_buf given). Call before each test or fuzz input. */
void pgh_reset(void);

/* Release all memory (pgh_reset() would reallocate lazily). */
void pgh_free(void);

/* ---- settings ---- */

void pgh_set_sampling(__u32 sample_rate, __u64 slow_ns); /* cfg_sample_rate, cfg_slow_ns */
void pgh_set_epoch(__u32 epoch);			 /* what userspace bumps per interval */
/* Lower a map's capacity (entries) to exercise "map full"; -ENOENT unknown map, -EINVAL when
 * above the kernel's max_entries or for arrays. */
int pgh_set_map_capacity(const char *map, __u32 entries);
void pgh_set_ringbuf_capacity(size_t bytes); /* SIZE_MAX = unlimited; 0 = every reserve fails */
/* false: chunks come without user_buf (as from readv/recvmsg with an iovec array), so headers
 * past the scratch cannot be read. */
void pgh_set_user_buf(bool given);
/* Value of scratch bytes past the current chunk's copy (the kernel leaves stale bytes there;
 * the harness makes them deterministic; a decoder result that changes with this byte read
 * past the chunk). */
void pgh_set_stale_byte(__u8 value);

/* ---- driving the decoder ---- */

/*
 * A server backend's connection @sk of @instance, db_id/user_id as known from the backend's
 * process title (0 = unknown): registers the process as tracked and creates the connection
 * state as conn_get() does on the first chunk (counting CONN_OPEN). When @sk still has state,
 * this is a new connection reusing the socket address (the old one ended unseen): conn_get()
 * finds a different peer identity, counts CONN_CLOSE and starts afresh. -ENOSPC past
 * PGH_MAX_CONNS, -E2BIG when the conns map is full (counted DROP_CONN_FULL; later chunks retry
 * like the kernel).
 */
int pgh_conn_open(__u64 sk, __u32 instance, __u32 db_id, __u32 user_id);

/* The same for a server of any system (enum dbtap_system): its chunks go to that system's
 * decoder (bpf/decoders.bpf.h). The harness's checks of map contents (pgh_check_invariants
 * and friends) know PostgreSQL's rules; other decoders' tests assert their own. */
int pgh_conn_open_system(__u64 sk, __u32 instance, __u16 system, __u32 db_id, __u32 user_id);

/*
 * One recv (@dir IO_RECV) or send (IO_SEND) of @len bytes at @bytes on @sk at time @now_ns,
 * as on_chunk() in bpf/capture.bpf.c handles it after finding the process: EVENTS counter,
 * connection lookup/creation, bytes_in/out, the IGNORE phase, the copy of at most
 * SCRATCH_SIZE bytes into the scratch, avail/total/user_buf, then dbtap_pg_chunk().
 * @len 0 is end of stream (closes the connection when @dir is IO_RECV).
 * -ENOENT when @sk was never opened with pgh_conn_open().
 */
int pgh_chunk(__u64 sk, enum io_dir dir, const void *bytes, __u32 len, __u64 now_ns);

static inline int pgh_eof(__u64 sk, __u64 now_ns)
{
	return pgh_chunk(sk, IO_RECV, NULL, 0, now_ns);
}

/* ---- reading the results ---- */

const struct conn_state *pgh_conn(__u64 sk); /* NULL when not tracked (closed, never opened) */
__u64 pgh_counter(enum dbtap_counter c);
unsigned int pgh_map_count(const char *map); /* entries of a hash map (0 when unknown) */

/* Aggregation ("aggs"), in insertion order. */
const struct dbtap_agg_val *pgh_agg_get(const struct dbtap_agg_key *key);
unsigned int pgh_agg_count(void);
int pgh_agg_at(unsigned int i, struct dbtap_agg_key *ret_key, const struct dbtap_agg_val **ret_val);

/* Error counts ("errs"): per series and SQLSTATE (@status: "42P01"). 0 when absent. */
__u64 pgh_err_get(const struct dbtap_agg_key *key, const char *status);
unsigned int pgh_err_count(void);
int pgh_err_at(unsigned int i, struct dbtap_err_key *ret_key, __u64 *ret_n);

/* Ring buffer records ("events") in submission order; discarded ones are skipped. */
unsigned int pgh_event_count(void);
const struct dbtap_ev_hdr *pgh_event_at(unsigned int i);
unsigned int pgh_event_count_type(__u16 type);
/* The i-th record of @type (enum dbtap_event_type), NULL past the last. */
const void *pgh_event_of_type(__u16 type, unsigned int i);
const struct dbtap_ev_text *pgh_text_find(__u64 query_hash);
void pgh_events_consume(void); /* userspace read them: the ring buffer is empty again */

/* bpf_probe_read_user() calls outside the chunk being decoded (the decoder read past it). */
__u64 pgh_user_faults(void);

/*
 * Consistency of everything the decoder keeps: per connection the op queue (head..tail at
 * most CONN_MAX_OPS), phase, frame states (hdr_have < PG_HDR_LEN, skip bounded, not both);
 * per series errors <= count, histogram total == count, min <= max in the current window,
 * a non-zero fingerprint; error counts that add up to the series' errors; the OPS counter
 * equal to the counts; well-formed ring records. 0, or -EPROTO with the first broken rule in
 * @why.
 */
int pgh_check_invariants(char *why, size_t why_len);

/* ---- snapshots: compare two runs ---- */

/* Flags for pgh_snapshot_diff(). */
#define PGH_DIFF_IGNORE_EVENTS_COUNTER (1 << 0) /* runs with different chunkings */

struct pgh_snapshot;

/* Everything the decoder produced: aggs and errs (sorted by key), counters, ring records
 * (bytes past text_len/startup_len and the close-only totals of open records ignored). NULL
 * when out of memory. */
struct pgh_snapshot *pgh_snapshot_take(void);
void pgh_snapshot_free(struct pgh_snapshot *snap);
/* 0 when equal, 1 when not (the first difference described in @why). */
int pgh_snapshot_diff(const struct pgh_snapshot *a, const struct pgh_snapshot *b, __u32 flags,
		      char *why, size_t why_len);

#endif /* DBTAP_PG_HARNESS_H */
