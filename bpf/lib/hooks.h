/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What each hook does with a packet, in order. The entry programs are one call each; XDP and tc
 * on the uplink run the same sequence, through lib/ctx.h.
 *
 * Where translation happens (each flow's state lives on the node that first translated it):
 *   from a pod:      frontend? forward translation : reply of a flow to a local backend?
 *   to a pod:        reply of a flow whose backend is elsewhere (or whose client is this pod)
 *   from the uplink: frontend? forward translation : reply to a masqueraded flow (to cfg_node_ip)
 * Everything else passes untouched: non-IPv4, ICMP, SCTP, and traffic of no service. */
#ifndef BPFPROXY_LIB_HOOKS_H
#define BPFPROXY_LIB_HOOKS_H

#include "lib/fib.h"
#include "lib/l2.h"
#include "lib/translate.h"

/* Parses; returns true when the packet is one the service paths handle (TCP/UDP, unfragmented);
 * *verdict is set for the others. */
static __always_inline bool hook_parse(ctx_t *ctx, struct pkt4 *pkt, int *verdict)
{
	int ret = parse_ipv4(ctx, pkt);

	*verdict = CTX_PASS;
	if (ret == PARSE_OK)
		return true;
	if (ret == PARSE_FRAGMENT && svc_fragment(ctx, pkt) == SVC_DROP)
		*verdict = CTX_DROP;
	/* Malformed IPv4 is the stack's to reject; it is nobody's service traffic. */
	return false;
}

static __always_inline int hook_from_pod(ctx_t *ctx)
{
	struct pkt4 pkt;
	int verdict, v;

	if (!hook_parse(ctx, &pkt, &verdict))
		return verdict;
	v = svc_forward(ctx, &pkt, FROM_POD);
	if (v == SVC_NONE)
		v = svc_reply(ctx, &pkt);
	switch (v) {
	case SVC_BOUNCE:
		return l2_bounce(ctx);
	case SVC_DROP:
		return CTX_DROP;
	default:
		/* The stack routes translated packets like any other from the pod. */
		return CTX_PASS;
	}
}

static __always_inline int hook_to_pod(ctx_t *ctx)
{
	struct pkt4 pkt;
	int verdict;

	if (!hook_parse(ctx, &pkt, &verdict))
		return verdict;
	return svc_reply(ctx, &pkt) == SVC_DROP ? CTX_DROP : CTX_PASS;
}

static __always_inline int hook_from_uplink(ctx_t *ctx)
{
	struct pkt4 pkt;
	int verdict, v;

	if (!hook_parse(ctx, &pkt, &verdict)) {
		/* XDP leaves fragments to tc, which sees them next and decides. */
		return CTX_IS_XDP ? CTX_PASS : verdict;
	}
	v = svc_forward(ctx, &pkt, FROM_UPLINK);
	if (v == SVC_NONE && pkt.daddr == cfg_node_ip)
		v = svc_reply(ctx, &pkt);
	switch (v) {
	case SVC_FORWARD:
		return fib_forward(ctx, &pkt);
	case SVC_BOUNCE:
		return l2_bounce(ctx);
	case SVC_DROP:
		return CTX_DROP;
	default:
		return CTX_PASS;
	}
}

#endif
