// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loader.c - open -> set rodata -> choose the capture path -> load -> attach, following
 * libbpf-bootstrap; the object carries both capture paths and the one this kernel cannot run
 * (or the user did not choose) is not loaded (bpf_program__set_autoload(false)).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "capture.skel.h"
#include "userspace/discovery.h"
#include "userspace/loader.h"

#define RINGBUF_BYTES (8u << 20)

uint32_t dbtap_name_hash(const char *name)
{
	uint32_t h = DBTAP_FNV32_OFFSET;

	if (!name || !*name)
		return 0;
	for (; *name; name++)
		h = dbtap_name_hash_step(h, (uint8_t)*name);
	return h ? h : 1;
}

bool dbtap_kernel_has_sock_tracepoints(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool ok;

	if (!vmlinux)
		return false;
	ok = btf__find_by_name_kind(vmlinux, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF) > 0 &&
	     btf__find_by_name_kind(vmlinux, "btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) > 0;
	btf__free(vmlinux);
	return ok;
}

int dbtap_capture_resolve(enum dbtap_capture_path want, enum dbtap_capture_path *ret)
{
	bool have = dbtap_kernel_has_sock_tracepoints();

	if (want == DBTAP_CAPTURE_SOCKET && !have)
		return -ENOTSUP;
	if (want == DBTAP_CAPTURE_AUTO)
		want = have ? DBTAP_CAPTURE_SOCKET : DBTAP_CAPTURE_SYSCALL;
	*ret = want;
	return 0;
}

const char *dbtap_capture_name(enum dbtap_capture_path p)
{
	return p == DBTAP_CAPTURE_SYSCALL ? "syscall" : "socket";
}

static int silent_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && getenv("DBTAP_LIBBPF_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

int dbtap_loader_start(struct dbtap_loader *l, const struct dbtap_config *cfg, char *err,
		       size_t errlen)
{
	struct capture_bpf *skel;
	struct bpf_program *prog;
	enum dbtap_system system;
	const char *comm;
	bool socket_path;
	size_t i;
	int ret;

	memset(l, 0, sizeof(*l));
	l->stats_fd = -1;
	libbpf_set_print(silent_print);
	ret = dbtap_capture_resolve(cfg->capture, &l->path);
	if (ret) {
		snprintf(err, errlen,
			 "capture socket: this kernel lacks sock:sock_send_length (needs >= 6.3)");
		return ret;
	}
	socket_path = l->path == DBTAP_CAPTURE_SOCKET;

	skel = capture_bpf__open();
	if (!skel) {
		ret = -errno;
		snprintf(err, errlen, "opening the BPF object: %s", strerror(errno));
		return ret;
	}
	l->skel = skel;
	skel->rodata->cfg_sample_rate = cfg->sample_rate;
	skel->rodata->cfg_slow_ns = (uint64_t)(cfg->slow_threshold_s * 1e9);
	bpf_map__set_max_entries(skel->maps.events, RINGBUF_BYTES);
	bpf_object__for_each_program (prog, skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		bool is_sock = strncmp(sec, "tp_btf/sock_", 12) == 0;
		bool is_sys = strncmp(sec, "tracepoint/syscalls/", 20) == 0;

		if ((is_sock && !socket_path) || (is_sys && socket_path))
			bpf_program__set_autoload(prog, false);
	}
	ret = capture_bpf__load(skel);
	if (ret) {
		snprintf(err, errlen,
			 "loading the BPF programs: %s (DBTAP_LIBBPF_DEBUG=1 shows the "
			 "verifier log)",
			 strerror(-ret));
		goto fail;
	}
	skel->bss->epoch = 1; /* 0 is the zero template's epoch: see dbtap_agg_val */
	/* server task names the exec hook reports, so a server started later is found at once */
	for (i = 0; (comm = dbtap_discovery_comm_at(i, &system)); i++) {
		char key[16] = {};
		uint32_t sys = system;

		strncpy(key, comm, sizeof(key) - 1);
		bpf_map__update_elem(skel->maps.server_comms, key, sizeof(key), &sys, sizeof(sys),
				     BPF_ANY);
	}
	ret = capture_bpf__attach(skel);
	if (ret) {
		snprintf(err, errlen, "attaching the BPF programs: %s", strerror(-ret));
		goto fail;
	}
	l->tracked_len = (size_t)bpf_map__max_entries(skel->maps.tracked) * sizeof(uint64_t);
	l->tracked = mmap(NULL, l->tracked_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			  bpf_map__fd(skel->maps.tracked), 0);
	if (l->tracked == MAP_FAILED) {
		ret = -errno;
		l->tracked = NULL;
		snprintf(err, errlen, "mapping the PID bitmap: %s", strerror(-ret));
		goto fail;
	}
	/*
	 * Opt-in: the statistics are a host-wide static key, so while the fd is held every BPF
	 * program on the host (not only ours) pays two sched_clock() reads and a per-CPU update
	 * per run.
	 */
	if (cfg->bpf_stats) {
		l->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (l->stats_fd < 0) {
			l->stats_err = l->stats_fd;
			l->stats_fd = -1;
		}
	}
	return 0;
fail:
	capture_bpf__destroy(skel);
	l->skel = NULL;
	return ret;
}

int dbtap_loader_track(struct dbtap_loader *l, pid_t pid, pid_t instance, enum dbtap_system sys,
		       bool main, const char *database, const char *user)
{
	struct dbtap_proc p = {
		.instance = (uint32_t)instance,
		.system = (uint16_t)sys,
		.flags = main ? DBTAP_PROC_F_SERVER_MAIN : 0,
		.db_id = dbtap_name_hash(database),
		.user_id = dbtap_name_hash(user),
	};
	uint32_t key = (uint32_t)pid;
	int ret;

	if ((size_t)(key >> 6) >= l->tracked_len / sizeof(uint64_t))
		return -ERANGE;
	ret = bpf_map__update_elem(l->skel->maps.procs, &key, sizeof(key), &p, sizeof(p), BPF_ANY);
	if (ret)
		return ret;
	__atomic_fetch_or(&l->tracked[key >> 6], 1ULL << (key & 63), __ATOMIC_SEQ_CST);
	return 0;
}

void dbtap_loader_stop(struct dbtap_loader *l)
{
	if (!l)
		return;
	if (l->stats_fd >= 0)
		close(l->stats_fd);
	l->stats_fd = -1;
	if (l->tracked)
		munmap(l->tracked, l->tracked_len);
	l->tracked = NULL;
	capture_bpf__destroy(l->skel);
	l->skel = NULL;
}
