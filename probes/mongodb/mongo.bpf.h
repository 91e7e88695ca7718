/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mongo.bpf.h - MongoDB decoder running in the BPF capture programs. Not written yet: its
 * connections are only counted (bytes, open/close).
 */
#ifndef DBTAP_MONGO_BPF_H
#define DBTAP_MONGO_BPF_H

/* Decode one chunk of a MongoDB connection. Global: verified once. */
__noinline int dbtap_mongo_chunk(struct scratch *s)
{
	struct conn_state *c;

	if (!s)
		return 0;
	c = conn_of(s);
	if (!c)
		return 0;
	if (c->phase == CONN_PHASE_START && s->ch.dir == IO_RECV) {
		c->phase = CONN_PHASE_IGNORE;
		emit_conn(s, c, DBTAP_EV_CONN_OPEN, 0, 0);
	}
	return 0;
}

#endif /* DBTAP_MONGO_BPF_H */
