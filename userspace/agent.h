/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * agent.h - the capture run: discovery, attach, one-thread event loop over the ring buffer
 * and the interval timer, exporting each interval, clean detach on exit.
 */
#ifndef DBTAP_AGENT_H
#define DBTAP_AGENT_H

#include "userspace/config.h"

/* Run until SIGINT/SIGTERM or --duration. Returns the process exit code (0 ok, 1 failure). */
int dbtap_agent_run(const struct dbtap_config *cfg);

/* `dbtap list`: print the instances found and how each would be attached. Exit code. */
int dbtap_agent_list(const struct dbtap_config *cfg);

#endif /* DBTAP_AGENT_H */
