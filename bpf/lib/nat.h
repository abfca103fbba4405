/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Rewriting addresses and ports with incremental checksum updates. Each writer keeps the parsed
 * copy (struct pkt4) in step with the packet. */
#ifndef BPFPROXY_LIB_NAT_H
#define BPFPROXY_LIB_NAT_H

#include "lib/ctx.h"
#include "lib/parse.h"

/* Offset of the L4 checksum field, 0 when the packet has none we maintain. */
static __always_inline __u32 l4_csum_off(const struct pkt4 *pkt)
{
	if (pkt->proto == IPPROTO_TCP)
		return pkt->l4_off + offsetof(struct tcphdr, check);
	if (pkt->proto == IPPROTO_UDP)
		return pkt->l4_off + offsetof(struct udphdr, check);
	return 0;
}

static __always_inline __u64 l4_csum_flags(const struct pkt4 *pkt)
{
	/* A UDP checksum of 0 means "none" and must stay so; a computed 0 is sent as 0xffff. */
	return pkt->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/* csum_off: the L4 checksum to update for the pseudo header, 0 for none. */
static __always_inline int nat_set_addr_csum(ctx_t *ctx, struct pkt4 *pkt, bool source, __be32 to, __u32 csum_off)
{
	__be32 from = source ? pkt->saddr : pkt->daddr;

	if (from == to)
		return 0;
	if (csum_off && ctx_l4_csum_replace(ctx, csum_off, from, to, l4_csum_flags(pkt) | BPF_F_PSEUDO_HDR | sizeof(to)))
		return -1;
	if (ctx_l3_csum_replace(ctx, IP_CSUM_OFF, from, to, sizeof(to)))
		return -1;
	if (ctx_store_bytes(ctx, source ? IP_SADDR_OFF : IP_DADDR_OFF, &to, sizeof(to)))
		return -1;
	if (source)
		pkt->saddr = to;
	else
		pkt->daddr = to;
	return 0;
}

static __always_inline int nat_set_addr(ctx_t *ctx, struct pkt4 *pkt, bool source, __be32 to)
{
	return nat_set_addr_csum(ctx, pkt, source, to, l4_csum_off(pkt));
}

/* TCP and UDP keep source and destination ports at the same offsets. */
static __always_inline int nat_set_port(ctx_t *ctx, struct pkt4 *pkt, bool source, __be16 to)
{
	__be16 from = source ? pkt->sport : pkt->dport;
	__u32 csum_off = l4_csum_off(pkt);

	if (from == to || !csum_off)
		return 0;
	if (ctx_l4_csum_replace(ctx, csum_off, from, to, l4_csum_flags(pkt) | sizeof(to)))
		return -1;
	if (ctx_store_bytes(ctx, pkt->l4_off + (source ? 0 : 2), &to, sizeof(to)))
		return -1;
	if (source)
		pkt->sport = to;
	else
		pkt->dport = to;
	return 0;
}

/* Rewrites the packet's tuple to (saddr:sport -> daddr:dport); unchanged fields are not touched. */
static __always_inline int nat_apply(ctx_t *ctx, struct pkt4 *pkt, __be32 saddr, __be16 sport, __be32 daddr,
				     __be16 dport)
{
	if (nat_set_addr(ctx, pkt, true, saddr) || nat_set_addr(ctx, pkt, false, daddr) ||
	    nat_set_port(ctx, pkt, true, sport) || nat_set_port(ctx, pkt, false, dport))
		return -1;
	return 0;
}

/* nat_apply for a later fragment (lib/frag.h), which has no L4 header: the addresses and the IP
 * checksum only (the first fragment carried the L4 checksum update for the whole datagram). The
 * parsed ports follow, so that what comes next (the FIB lookup) sees the datagram's new tuple. */
static __always_inline int nat_apply_l3(ctx_t *ctx, struct pkt4 *pkt, __be32 saddr, __be16 sport, __be32 daddr,
					__be16 dport)
{
	if (nat_set_addr_csum(ctx, pkt, true, saddr, 0) || nat_set_addr_csum(ctx, pkt, false, daddr, 0))
		return -1;
	pkt->sport = sport;
	pkt->dport = dport;
	return 0;
}

#endif
