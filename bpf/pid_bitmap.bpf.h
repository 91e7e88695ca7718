/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pid_bitmap.bpf.h - the set of tracked processes: one bit per PID in the mmapable "tracked"
 * array, and the test every socket hook makes first. Included by bpf/capture.bpf.c, and by
 * tests/bench/hookcost.bpf.c so that `make bench-hooks` times this very filter.
 */
#ifndef DBTAP_PID_BITMAP_BPF_H
#define DBTAP_PID_BITMAP_BPF_H

#define PID_BITMAP_WORDS (4194304 / 64) /* pid_max limit on 64-bit kernels */

/* One bit per PID. Mmapped by userspace, which sets bits with the same atomic OR as the
 * fork hook: a read-modify-write through the syscall could undo a bit set meanwhile. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PID_BITMAP_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} tracked SEC(".maps");

static __always_inline bool pid_is_tracked(__u32 tgid)
{
	__u32 word = tgid >> 6;
	__u64 *bits = bpf_map_lookup_elem(&tracked, &word);

	return bits && (*bits & (1ULL << (tgid & 63)));
}

static __always_inline void pid_set_tracked(__u32 tgid, bool on)
{
	__u32 word = tgid >> 6;
	__u64 *bits = bpf_map_lookup_elem(&tracked, &word);

	if (!bits)
		return;
	if (on)
		__sync_fetch_and_or(bits, 1ULL << (tgid & 63));
	else
		__sync_fetch_and_and(bits, ~(1ULL << (tgid & 63)));
}

#endif /* DBTAP_PID_BITMAP_BPF_H */
