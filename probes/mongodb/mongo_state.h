/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mongo_state.h - the MongoDB decoder's per-connection state (a member of struct conn_state's
 * union). BPF and the decoder harness only.
 */
#ifndef DBTAP_MONGO_STATE_H
#define DBTAP_MONGO_STATE_H

struct mongo_conn {
	__u64 _reserved; /* not written yet */
};

#endif /* DBTAP_MONGO_STATE_H */
