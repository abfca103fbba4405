/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU counters: no atomics needed, readers sum over CPUs. */
#ifndef BPFPROXY_LIB_COUNTERS_H
#define BPFPROXY_LIB_COUNTERS_H

#include "lib/ctx.h"
#include "lib/maps.h"

static __always_inline void count_drop(const ctx_t *ctx, enum drop_reason reason)
{
	__u32 key = reason;
	struct drop_stats *s = bpf_map_lookup_elem(&DROPS_MAP, &key);

	if (s) {
		s->packets++;
		s->bytes += ctx_len(ctx);
	}
}

static __always_inline void count_svc(const ctx_t *ctx, __u32 svc_id, bool new_flow)
{
	struct svc_stats *s = bpf_map_lookup_elem(&SVCSTAT_MAP, &svc_id);

	if (s) {
		s->packets++;
		s->bytes += ctx_len(ctx);
		s->new_flows += new_flow;
	}
}

/* What became of an IPv4 fragment (lib/frag.h). */
static __always_inline void count_frag(const ctx_t *ctx, enum frag_stat stat)
{
	__u32 key = stat;
	struct frag_stats *s = bpf_map_lookup_elem(&FRAGSTAT_MAP, &key);

	if (s) {
		s->packets++;
		s->bytes += ctx_len(ctx);
	}
}

#endif
