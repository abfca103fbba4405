/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ethernet addresses for packets the datapath sends itself. */
#ifndef BPFPROXY_LIB_L2_H
#define BPFPROXY_LIB_L2_H

#include "lib/ctx.h"
#include "lib/parse.h"

static __always_inline int eth_set_addrs(ctx_t *ctx, const __u8 *dst, const __u8 *src)
{
	if (ctx_store_bytes(ctx, offsetof(struct ethhdr, h_dest), dst, ETH_ALEN))
		return -1;
	return ctx_store_bytes(ctx, offsetof(struct ethhdr, h_source), src, ETH_ALEN);
}

/* Sends the packet back where it came from, as if the peer's neighbour had answered. */
static __always_inline int l2_bounce(ctx_t *ctx)
{
	struct ethhdr eth;

	if (ctx_load_bytes(ctx, 0, &eth, sizeof(eth)) || eth_set_addrs(ctx, eth.h_source, eth.h_dest))
		return CTX_DROP;
	return ctx_bounce(ctx);
}

#if !CTX_IS_XDP
/* Sends a packet leaving a device back in through it, to this node's stack (a rejection of the
 * node's own packet). The MACs are swapped, so the frame is addressed to the device itself. */
static __always_inline int l2_bounce_in(ctx_t *ctx)
{
	struct ethhdr eth;

	if (ctx_load_bytes(ctx, 0, &eth, sizeof(eth)) || eth_set_addrs(ctx, eth.h_source, eth.h_dest))
		return CTX_DROP;
	return bpf_redirect(ctx->ifindex, BPF_F_INGRESS);
}
#endif

#endif
