/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding a translated packet ourselves: bpf_fib_lookup for the next hop and its neighbour,
 * then redirect. With no neighbour entry yet, tc hands the packet to bpf_redirect_neigh (the
 * kernel's neighbour code resolves it and sends, never the input path that would take a source of
 * ours for a martian); XDP cannot, and passes it on to tc, which finishes it (hooks.h). Whatever
 * the lookup cannot forward at all (local delivery, no route, TTL running out) goes to the stack. */
#ifndef BPFPROXY_LIB_FIB_H
#define BPFPROXY_LIB_FIB_H

#include "lib/config.h"
#include "lib/csum.h"
#include "lib/ctx.h"
#include "lib/l2.h"
#include "lib/local.h"
#include "lib/parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* Decrements the TTL as a router does: the word holding ttl and protocol changes. */
static __always_inline int ip_dec_ttl(ctx_t *ctx, struct pkt4 *pkt)
{
	__u32 off = L3_OFF + offsetof(struct iphdr, ttl);
	__u16 old_word, new_word;
	__u8 ttl = pkt->ttl - 1;

	if (ctx_load_bytes(ctx, off, &old_word, sizeof(old_word)))
		return -1;
	new_word = old_word;
	((__u8 *)&new_word)[0] = ttl;
	if (ctx_l3_csum_replace(ctx, IP_CSUM_OFF, old_word, new_word, sizeof(new_word)) ||
	    ctx_store_bytes(ctx, off, &ttl, sizeof(ttl)))
		return -1;
	pkt->ttl = ttl;
	return 0;
}

/* What fib_forward answers, instead of a verdict, for a packet a router would answer with an ICMP
 * error; the caller (lib/hooks.h) answers or drops. TTL: only for `must` (else the stack routes the
 * packet and answers itself). Too big: on tc for any packet, since the stack would answer about the
 * translated packet, which its sender cannot match. */
enum fib_refusal {
	FIB_TTL_EXCEEDED = -2, /* no TTL left */
	FIB_TOO_BIG = -3,      /* larger than the next hop's MTU (*mtu), not a GSO aggregate, and DF set or not ours */
};

static __always_inline bool ip_dont_fragment(ctx_t *ctx)
{
	__be16 frag_off = 0;

	if (ctx_load_bytes(ctx, L3_OFF + offsetof(struct iphdr, frag_off), &frag_off, sizeof(frag_off)))
		return true;
	return frag_off & bpf_htons(IP_DF);
}

/* `must`: the packet carries a source of this node's (lib/node.h) and the stack would drop it, so tc
 * forwards it even when cfg_fib_redirect is off. */
static __always_inline int fib_forward(ctx_t *ctx, struct pkt4 *pkt, bool must, __u32 *mtu)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	if (!(cfg_fib_redirect || (must && !CTX_IS_XDP)))
		return CTX_PASS;
	if (pkt->ttl <= 1)
		return must ? FIB_TTL_EXCEEDED : CTX_PASS;
	fib.family = AF_INET;
	fib.l4_protocol = pkt->proto;
	fib.sport = pkt->sport;
	fib.dport = pkt->dport;
#if CTX_IS_XDP
	/* XDP's frame is what leaves: too big (a GRO aggregate under generic XDP) is FRAG_NEEDED,
	 * and the packet goes on to tc, which forwards aggregates whole (below). */
	fib.tot_len = pkt->tot_len;
#else
	/* 0: the kernel checks the skb itself against the egress MTU, and GSO-aware
	 * (is_skb_forwardable): a TSO/GRO aggregate whose segments fit is forwarded whole, as the
	 * stack would. Its IP tot_len is the aggregate's and would always fail the check. */
	fib.tot_len = 0;
#endif
	fib.ipv4_src = pkt->saddr;
	fib.ipv4_dst = pkt->daddr;
	fib.ifindex = ctx_ifindex(ctx);
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
#if !CTX_IS_XDP
	/* For this node, from a source of this node's: in through lo (lib/local.h). */
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED && must)
		return local_deliver(ctx);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		if (!must || ip_dont_fragment(ctx)) {
			*mtu = fib.mtu_result;
			return FIB_TOO_BIG;
		}
		/* No DF and a source of ours: a router would fragment it, which we cannot, and the stack
		 * must not see it. It goes whole: the size check came after a complete lookup
		 * (bpf_skb_fib_lookup), so the next hop is known. A tunnel (a VXLAN overlay, flannel's)
		 * fragments its outer packet, as for any packet it carries; a device that cannot carry it
		 * drops it (counted there). */
		rc = BPF_FIB_LKUP_RET_SUCCESS;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* The lookup left the egress device and the next hop (gateway or destination). */
		struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = fib.ipv4_dst };

		if (ip_dec_ttl(ctx, pkt))
			return CTX_DROP;
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
#endif
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return CTX_PASS;
	if (ip_dec_ttl(ctx, pkt) || eth_set_addrs(ctx, fib.dmac, fib.smac))
		return CTX_DROP;
	return ctx_redirect(ctx, fib.ifindex);
}

#endif
