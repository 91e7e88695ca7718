/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * decoders.bpf.h - every system's kernel decoder, and the one dispatch by system. Included by
 * bpf/capture.bpf.c after capture_core.bpf.h, and by the decoder harness (tests/lib) so that
 * unit tests and fuzzers run the same code. Adding a system: its probes/<db>/<db>.bpf.h here
 * and a case below. DBTAP_SKIP_<DB> leaves a decoder out (a private build while another is
 * being written: make OUT=/tmp/x BPF_EXTRA_CFLAGS=-DDBTAP_SKIP_MYSQL).
 */
#ifndef DBTAP_DECODERS_BPF_H
#define DBTAP_DECODERS_BPF_H

#include "probes/sql/sql_fingerprint.bpf.h"
#include "probes/postgresql/pg.bpf.h"
#ifndef DBTAP_SKIP_REDIS
#include "probes/redis/redis.bpf.h"
#endif
#ifndef DBTAP_SKIP_MYSQL
#include "probes/mysql/mysql.bpf.h"
#endif
#ifndef DBTAP_SKIP_MONGO
#include "probes/mongodb/mongo.bpf.h"
#endif

/* Hand the chunk in the scratch to the decoder of @c's system. */
static __always_inline void decode_chunk(struct scratch *s, struct conn_state *c)
{
	switch (c->system) {
	case DBTAP_SYS_POSTGRESQL:
		dbtap_pg_chunk(s, c);
		break;
#ifndef DBTAP_SKIP_REDIS
	case DBTAP_SYS_REDIS:
		dbtap_redis_chunk(s, c);
		break;
#endif
#ifndef DBTAP_SKIP_MYSQL
	case DBTAP_SYS_MYSQL:
	case DBTAP_SYS_MARIADB:
		dbtap_mysql_chunk(s, c);
		break;
#endif
#ifndef DBTAP_SKIP_MONGO
	case DBTAP_SYS_MONGODB:
		dbtap_mongo_chunk(s, c);
		break;
#endif
	}
}

#endif /* DBTAP_DECODERS_BPF_H */
