/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * loader.h - opening, feature-probing, loading and attaching the capture programs, and
 * registering the processes they watch.
 */
#ifndef DBTAP_LOADER_H
#define DBTAP_LOADER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "userspace/config.h"
#include "userspace/discovery.h"

struct capture_bpf;

struct dbtap_loader {
	struct capture_bpf *skel;
	enum dbtap_capture_path path; /* resolved: SOCKET or SYSCALL */
	uint64_t *tracked;	      /* the kernel's PID bitmap, mmapped */
	size_t tracked_len;
	int stats_fd;  /* BPF_ENABLE_STATS handle: -1 without bpf-stats or when it failed */
	int stats_err; /* 0, or -errno of BPF_ENABLE_STATS when bpf-stats was asked for */
};

/* Whether this kernel has the sock:sock_{send,recv}_length tracepoints (BTF probe). */
bool dbtap_kernel_has_sock_tracepoints(void);

/* Resolve AUTO to the path this kernel supports. -ENOTSUP when SOCKET is forced but missing. */
int dbtap_capture_resolve(enum dbtap_capture_path want, enum dbtap_capture_path *ret);

/* "socket" / "syscall". */
const char *dbtap_capture_name(enum dbtap_capture_path p);

/*
 * Open, configure, load and attach. 0 or -errno; @err gets a one-line reason on failure. With
 * cfg->bpf_stats, also turns on the kernel's BPF run-time statistics until
 * dbtap_loader_stop(); when that fails the start still succeeds and l->stats_err says why.
 */
int dbtap_loader_start(struct dbtap_loader *l, const struct dbtap_config *cfg, char *err,
		       size_t errlen);

/* Register a process in the kernel's tracked set. @main marks the instance's main process.
 * @database/@user: names known from the process title (may be NULL). 0 or -errno. */
int dbtap_loader_track(struct dbtap_loader *l, pid_t pid, pid_t instance, enum dbtap_system sys,
		       bool main, const char *database, const char *user);

/* Detach and free everything. Accepts a loader that never started. */
void dbtap_loader_stop(struct dbtap_loader *l);

/* FNV-1a 32 of a name as the kernel computes it (0 maps to 1; NULL or "" gives 0). */
uint32_t dbtap_name_hash(const char *name);

#endif /* DBTAP_LOADER_H */
