/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU counters: per service (svcstat_v1, indexed by svc_id) and per drop reason (drops_v1,
 * indexed by enum drop_reason). Readers sum over CPUs. */
#ifndef BPFPROXY_COUNTERS_H
#define BPFPROXY_COUNTERS_H

#include <linux/types.h>

struct svc_stats {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

struct drop_stats {
	__u64 packets;
	__u64 bytes;
};

#endif
