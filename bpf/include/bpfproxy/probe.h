/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The traffic probe's map layout: packets and bytes seen per interface, hook and L4 protocol.
 * The probe is the smallest program the addon loads; bring-up and tests use it to prove that
 * packets really cross attached XDP and tc programs. */
#ifndef BPFPROXY_PROBE_H
#define BPFPROXY_PROBE_H

#include <linux/types.h>

enum probe_hook {
	PROBE_HOOK_XDP = 1,
	PROBE_HOOK_TC_INGRESS = 2,
	PROBE_HOOK_TC_EGRESS = 3,
};

struct probe_key {
	__u32 ifindex;
	__u8 hook;  /* enum probe_hook */
	__u8 proto; /* IPPROTO_*, 0 for non-IP */
	__u16 pad;
};

struct probe_value {
	__u64 packets;
	__u64 bytes;
};

#define PROBE_COUNTERS_MAP probe_counters_v1

#endif
