/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * redis_state.h - the Redis decoder's per-connection state (a member of struct conn_state's
 * union). BPF and the decoder harness only.
 */
#ifndef DBTAP_REDIS_STATE_H
#define DBTAP_REDIS_STATE_H

struct redis_conn {
	__u64 _reserved; /* not written yet */
};

#endif /* DBTAP_REDIS_STATE_H */
