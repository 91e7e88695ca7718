/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mysql_state.h - the MySQL/MariaDB decoder's per-connection state (a member of struct conn_state's
 * union). BPF and the decoder harness only.
 */
#ifndef DBTAP_MYSQL_STATE_H
#define DBTAP_MYSQL_STATE_H

struct mysql_conn {
	__u64 _reserved; /* not written yet */
};

#endif /* DBTAP_MYSQL_STATE_H */
