// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP on the node's uplink: the north-south fast path, the same sequence as tc_uplink before any
 * skb exists. Translated packets leave by XDP_TX or XDP_REDIRECT after a FIB lookup; what cannot
 * be finished here goes to tc and the stack with XDP_PASS (already translated, when it was). */
#define BPFPROXY_CTX_XDP
#include "lib/hooks.h"

SEC("xdp")
int xdp_uplink(struct xdp_md *ctx)
{
	return hook_from_uplink(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
