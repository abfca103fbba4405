/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The node's own sockets as clients and as endpoints, on the two paths hooks.h does not see:
 *
 *   lo egress:     the node reaching its own address: a NodePort on a node address (the route is
 *                  lo's, not the service device's), and a hostNetwork endpoint of this node
 *                  answering the node's own service connection (the request came in through lo,
 *                  lib/local.h, so the answer goes back out through lo);
 *   uplink egress: a hostNetwork endpoint of this node answering an outside client the uplink
 *                  translated to it (NodePort, LoadBalancer or external IP).
 *
 * Why tc and not socket hooks (cgroup connect4/recvmsg4, Cilium's choice): the node's traffic to
 * ClusterIPs is already translated per packet on the service device, with the same conntrack as
 * every other path, so the node's NodePort and hostNetwork flows stay per-packet too: one model,
 * one set of counters, and `explain` and conntrack dumps tell the whole story. The price is a
 * hash lookup for lo packets between node addresses and for uplink packets with a node source. */
#ifndef BPFPROXY_LIB_HOOKS_NODE_H
#define BPFPROXY_LIB_HOOKS_NODE_H

#include "lib/hooks.h"

#if !CTX_IS_XDP
static __always_inline int hook_from_lo(ctx_t *ctx)
{
	struct pkt4 pkt, sent;
	int verdict, v;

	if (hook_parse(ctx, &pkt, &verdict) != HOOK_L4)
		return verdict;
	/* Only traffic to this node's own addresses: 127.0.0.0/8 is not a NodePort address here
	 * (kube-proxy's localhost NodePorts are not supported, docs/datapath.md). */
	if (!node_owns_addr(pkt.daddr))
		return CTX_PASS;
	sent = pkt;
	v = svc_forward(ctx, &pkt, FROM_HOST);
	if (v == SVC_NONE)
		v = svc_reply(ctx, &pkt);
	switch (v) {
	case SVC_FORWARD:
		/* Still for this node (a hostNetwork endpoint here, or a reversed reply): the route
		 * the packet carries is the right one, lo delivers it. Else the backend is elsewhere
		 * and that route is wrong: we forward it. */
		if (node_owns_addr(pkt.daddr))
			return CTX_PASS;
		/* Refusals (too big for the backend's path, no TTL) are answered back in through lo. */
		return forward_ours(ctx, &pkt, &sent, true);
	case SVC_BOUNCE:
		/* A rejection: for the node, in through lo. */
		return l2_bounce_in(ctx);
	case SVC_DROP:
		return CTX_DROP;
	default:
		return CTX_PASS;
	}
}

static __always_inline int hook_to_uplink(ctx_t *ctx)
{
	struct pkt4 pkt;
	int verdict;

	if (hook_parse(ctx, &pkt, &verdict) != HOOK_L4)
		return verdict;
	/* Forwarded packets (pods', or translated ones) do not come from a node address, or are
	 * no reply of a flow ending here: one cheap test before any conntrack lookup. */
	if (!node_owns_addr(pkt.saddr))
		return CTX_PASS;
	/* On out of the same device: the reversed packet keeps its destination, hence its route. */
	return svc_reply(ctx, &pkt) == SVC_DROP ? CTX_DROP : CTX_PASS;
}
#endif

#endif
