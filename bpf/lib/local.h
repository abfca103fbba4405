/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Local delivery of a packet whose source is one of this node's addresses: the node's own
 * connection to its own NodePort (the reply comes from node address to node address), or the
 * node's connection to a service whose endpoint is a hostNetwork process of this node.
 *
 * The stack's input path drops such a packet as a martian on any device but one: it comes in
 * through lo, the only device where a node source is expected. A redirected packet has lost the
 * route it had (bpf_redirect scrubs it), so even on lo it is routed again, and fib_validate_source
 * then accepts a local source only with accept_local on lo, which the agent sets (docs/datapath.md;
 * it matters for nothing else: lo's own packets keep their route and are never validated). */
#ifndef BPFPROXY_LIB_LOCAL_H
#define BPFPROXY_LIB_LOCAL_H

#include "lib/ctx.h"
#include "lib/l2.h"

/* The loopback device is ifindex 1 in every network namespace. */
#define LOOPBACK_IFINDEX 1

#if !CTX_IS_XDP
/* In through lo, for this node's stack. lo's address is all zeros: eth_type_trans takes a frame
 * to any other unicast MAC for another host's, and IP drops those. */
static __always_inline int local_deliver(ctx_t *ctx)
{
	__u8 lo_mac[ETH_ALEN] = {};

	if (eth_set_addrs(ctx, lo_mac, lo_mac))
		return CTX_DROP;
	return bpf_redirect(LOOPBACK_IFINDEX, BPF_F_INGRESS);
}
#endif

#endif
