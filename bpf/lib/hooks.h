/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What each hook does with a packet, in order. The entry programs are one call each; XDP and tc
 * on the uplink run the same sequence, through lib/ctx.h.
 *
 * Where translation happens (each flow's state lives on the node that first translated it):
 *   from a pod:      frontend? forward translation : reply of a flow to a local backend?
 *   to a pod:        reply of a flow whose backend is elsewhere (or whose client is this pod)
 *   from the uplink: frontend? forward translation : reply to a masqueraded flow (to cfg_node_ip)
 *   from the node:   (egress of the service device, where the node's own packets to service
 *                    addresses are routed) frontend? forward translation, forwarded by us
 * Everything else passes untouched: non-IPv4, ICMP, SCTP, and traffic of no service. Fragments of
 * TCP and UDP take the same paths on tc (lib/frag.h gives later fragments their datagram's ports).
 *
 * A translated packet whose source is now one of this node's addresses (masqueraded, or a
 * NodePort's reply) must never reach the stack's input path, which drops it as a martian: the
 * datapath forwards those itself (lib/fib.h), from tc_pod and from the uplink alike. */
#ifndef BPFPROXY_LIB_HOOKS_H
#define BPFPROXY_LIB_HOOKS_H

#include "lib/fib.h"
#include "lib/frag.h"
#include "lib/icmp.h"
#include "lib/l2.h"
#include "lib/node.h"
#include "lib/translate.h"

enum hook_pkt {
	HOOK_L4,    /* TCP or UDP, whole or a fragment whose datagram's ports are known: the service paths */
	HOOK_ICMP,  /* ICMP, unfragmented: maybe an error about a translated flow */
	HOOK_OTHER, /* anything else: *verdict says what becomes of it */
};

/* Parses; says which path the packet takes. *verdict is set for HOOK_OTHER. */
static __always_inline enum hook_pkt hook_parse(ctx_t *ctx, struct pkt4 *pkt, int *verdict)
{
	int ret = parse_ipv4(ctx, pkt);

	*verdict = CTX_PASS;
	if (ret == PARSE_OK)
		return HOOK_L4;
	if (ret == PARSE_OTHER_L4 && pkt->proto == IPPROTO_ICMP)
		return HOOK_ICMP;
	/* Fragments (lib/frag.h) are tc's: XDP passes them on, see hook_from_uplink. */
	if (ret == PARSE_FRAGMENT && !CTX_IS_XDP && frag_track(ctx, pkt))
		return HOOK_L4;
	/* Malformed IPv4 is the stack's to reject; it is nobody's service traffic. */
	return HOOK_OTHER;
}

/* A translated packet could not be forwarded, and a router would answer its sender: time exceeded,
 * or fragmentation needed when DF is set. The sender gets that answer about the packet as it sent it
 * (`sent`: the translation is undone, so that its stack recognises the quote; an ICMP error or a
 * later fragment has none to give), from this node. The stack cannot do this for us: it would quote
 * the translated packet (a PMTU black hole), and a source of ours is a martian to it. Too big
 * without DF: the stack fragments it when it may see it (`must` false); with a source of ours
 * fib_forward sends it on whole and never refuses it. Counted when answered or dropped. */
static __always_inline int answer_sender(ctx_t *ctx, struct pkt4 *pkt, const struct pkt4 *sent, int refusal, __u32 mtu,
					 bool must, bool to_host)
{
	enum drop_reason reason = refusal == FIB_TTL_EXCEEDED ? DROP_TTL_EXCEEDED : DROP_MTU_EXCEEDED;
	__be16 frag_off = 0;
	__be32 rest = 0;
	__u8 type = ICMP_TIME_EXCEEDED, code = ICMP_EXC_TTL;

	if (refusal == FIB_TOO_BIG &&
	    (ctx_load_bytes(ctx, L3_OFF + offsetof(struct iphdr, frag_off), &frag_off, sizeof(frag_off)) ||
	     !(frag_off & bpf_htons(IP_DF)))) {
		if (!must)
			return CTX_PASS;
		count_drop(ctx, reason);
		return CTX_DROP;
	}
	if (!sent || pkt_later_fragment(pkt)) {
		if (!must)
			return CTX_PASS;
		count_drop(ctx, reason);
		return CTX_DROP;
	}
	if (refusal == FIB_TOO_BIG) {
		type = ICMP_DEST_UNREACH;
		code = ICMP_FRAG_NEEDED;
		rest = bpf_htonl(mtu & 0xffff);
	}
	if (nat_apply(ctx, pkt, sent->saddr, sent->sport, sent->daddr, sent->dport) ||
	    icmp_error(ctx, pkt, type, code, rest, cfg_node_ip)) {
		count_drop(ctx, DROP_REJECT_FAILED);
		return CTX_DROP;
	}
	count_drop(ctx, reason);
#if !CTX_IS_XDP
	if (to_host)
		return l2_bounce_in(ctx);
#endif
	return l2_bounce(ctx);
}

/* fib_forward for a packet the stack must not see (`must`), answering its sender where a router
 * would (answer_sender). `sent` is the packet before translation, NULL when unknown. */
static __always_inline int forward_ours(ctx_t *ctx, struct pkt4 *pkt, const struct pkt4 *sent, bool to_host)
{
	__u32 mtu = 0;
	int v = fib_forward(ctx, pkt, true, &mtu);

	return v >= 0 ? v : answer_sender(ctx, pkt, sent, v, mtu, true, to_host);
}

/* fib_forward where `must` is the packet's own business: forward_ours for a source of ours. */
static __always_inline int forward(ctx_t *ctx, struct pkt4 *pkt, const struct pkt4 *sent)
{
	__u32 mtu = 0;
	int v;

	if (node_owns_addr(pkt->saddr))
		return forward_ours(ctx, pkt, sent, false);
	v = fib_forward(ctx, pkt, false, &mtu);
	return v >= 0 ? v : answer_sender(ctx, pkt, sent, v, mtu, false, false);
}

static __always_inline int hook_from_pod(ctx_t *ctx)
{
	struct pkt4 pkt, sent;
	int verdict, v;

	switch (hook_parse(ctx, &pkt, &verdict)) {
	case HOOK_OTHER:
		return verdict;
	case HOOK_ICMP:
		/* An error from a local backend about a flow it serves. */
		v = svc_icmp_error(ctx, &pkt);
		if (v == SVC_FORWARD && node_owns_addr(pkt.saddr))
			return forward_ours(ctx, &pkt, NULL, false);
		return v == SVC_DROP ? CTX_DROP : CTX_PASS;
	default:
		break;
	}
	sent = pkt;
	v = svc_forward(ctx, &pkt, FROM_POD);
	if (v == SVC_NONE)
		v = svc_reply(ctx, &pkt);
	/* Now from a node address: a masqueraded flow (masqueradeAll, a pod outside the cluster
	 * CIDRs), or a local backend answering a NodePort. The stack would take it for a martian. */
	if (v == SVC_FORWARD && node_owns_addr(pkt.saddr))
		return forward_ours(ctx, &pkt, &sent, false);
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

	switch (hook_parse(ctx, &pkt, &verdict)) {
	case HOOK_OTHER:
		return verdict;
	case HOOK_ICMP:
		return svc_icmp_error(ctx, &pkt) == SVC_DROP ? CTX_DROP : CTX_PASS;
	default:
		return svc_reply(ctx, &pkt) == SVC_DROP ? CTX_DROP : CTX_PASS;
	}
}

static __always_inline int hook_from_uplink(ctx_t *ctx)
{
	struct pkt4 pkt, sent;
	int verdict, v;

	switch (hook_parse(ctx, &pkt, &verdict)) {
	case HOOK_OTHER:
		/* XDP leaves fragments to tc, which sees them next. All fragments of a datagram then
		 * take one hook (the first fragment's record and its followers' lookups in one place;
		 * a datagram is never half XDP_TXed, half forwarded by tc, which could reorder it),
		 * and XDP's program stays as it was: fragments are rare, and the fragment path would
		 * add verifier states to the hook that must stay the fastest. */
		return verdict;
	case HOOK_ICMP:
		/* Errors are rare: XDP leaves them to tc, which can forward whatever they become. */
		if (CTX_IS_XDP)
			return CTX_PASS;
		v = svc_icmp_error(ctx, &pkt);
		if (v == SVC_FORWARD)
			return forward(ctx, &pkt, NULL);
		return v == SVC_DROP ? CTX_DROP : CTX_PASS;
	default:
		break;
	}
	sent = pkt;
	v = svc_forward(ctx, &pkt, FROM_UPLINK);
	if (v == SVC_NONE && pkt.daddr == cfg_node_ip)
		v = svc_reply(ctx, &pkt);
	/* XDP translated it but could not forward it (no neighbour entry yet): tc finishes. Only a
	 * source of ours needs this; any other translated packet the stack forwards as usual. */
	if (v == SVC_NONE && !CTX_IS_XDP && node_owns_addr(pkt.saddr) && ct_translated(&pkt, ct_now(), &sent))
		return forward_ours(ctx, &pkt, &sent, false);
	switch (v) {
	case SVC_FORWARD:
		return forward(ctx, &pkt, &sent);
	case SVC_BOUNCE:
		return l2_bounce(ctx);
	case SVC_DROP:
		return CTX_DROP;
	default:
		return CTX_PASS;
	}
}

#if !CTX_IS_XDP
/* What the node itself sends to a service address. The node routes the Service and external
 * ranges to a device of no address (the lab's svc0) whose egress runs this: the packet is
 * translated as traffic of this node (not external: ETP Local does not narrow it) and forwarded by
 * the datapath, the device being a dead end. Its source is a node address, so the reply comes
 * back to the node and is reversed by the uplink or the backend's veth, then delivered locally. */
static __always_inline int hook_from_host(ctx_t *ctx)
{
	struct pkt4 pkt, sent;
	int verdict, v;

	if (hook_parse(ctx, &pkt, &verdict) != HOOK_L4)
		return verdict;
	sent = pkt;
	v = svc_forward(ctx, &pkt, FROM_HOST);
	switch (v) {
	case SVC_FORWARD:
		return forward_ours(ctx, &pkt, &sent, true);
	case SVC_BOUNCE:
		/* A rejection (or a hairpin, which cannot happen from a node address): it is for this
		 * node, so it goes in through the device it would have left by. */
		return l2_bounce_in(ctx);
	case SVC_DROP:
		return CTX_DROP;
	default:
		return CTX_PASS;
	}
}
#endif

#endif
