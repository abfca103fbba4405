/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ICMP errors about translated flows (port unreachable from a backend, fragmentation needed or
 * time exceeded from a router on the way): the error quotes the packet as the backend saw it, so
 * the client would not recognise it. Like the reply of the flow, it is reverse-translated: the
 * quoted header back to client -> frontend, the outer destination to the client, and the outer
 * source to the frontend when the backend itself wrote the error (a router keeps its address).
 * Checksums are updated by hand (RFC 1624): the quote's IPv4 and L4 checksums, then the ICMP
 * checksum over all of it; the sum of the whole packet is unchanged, so skb->csum stays right. */
#ifndef BPFPROXY_LIB_ICMP_H
#define BPFPROXY_LIB_ICMP_H

#include "lib/conntrack.h"
#include "lib/csum.h"
#include "lib/ctx.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/translate.h"


/* Where the quoted L4 header keeps its checksum, 0 for none we can reach. */
static __always_inline __u32 icmp_quote_csum_off(__u8 proto, __u32 l4)
{
	return l4 + (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : offsetof(struct udphdr, check));
}

/* Returns SVC_FORWARD when the packet was an error about a tracked flow and is now translated,
 * SVC_NONE when it is not one of ours (left untouched). */
static __always_inline int svc_icmp_error(ctx_t *ctx, struct pkt4 *pkt)
{
	__u32 icmp_off = pkt->l4_off, in_off = icmp_off + sizeof(struct icmp4hdr), in_l4, l4_csum_off;
	struct icmp4hdr icmp;
	struct iphdr inner;
	struct ct4_value *ct;
	struct ct4_key key = {};
	__be16 ports[2], new_ports[2];
	__be32 new_saddr, new_daddr, outer_saddr;
	__sum16 ic, inner_check, l4_check, new_l4_check;
	bool has_l4_check;

	if (pkt->proto != IPPROTO_ICMP || ctx_load_bytes(ctx, icmp_off, &icmp, sizeof(icmp)))
		return SVC_NONE;
	if (icmp.type != ICMP_DEST_UNREACH && icmp.type != ICMP_TIME_EXCEEDED)
		return SVC_NONE;
	if (ctx_load_bytes(ctx, in_off, &inner, sizeof(inner)))
		return SVC_NONE;
	if (inner.version != 4 || inner.ihl < 5 || (inner.protocol != IPPROTO_TCP && inner.protocol != IPPROTO_UDP) ||
	    (inner.frag_off & bpf_htons(IP_OFFSET)))
		return SVC_NONE;
	in_l4 = in_off + inner.ihl * 4;
	if (in_l4 > 0xffff || ctx_load_bytes(ctx, in_l4, ports, sizeof(ports)))
		return SVC_NONE;

	/* The quote is a forward packet after translation: its reverse is the flow's reply entry. */
	key.saddr = inner.daddr;
	key.daddr = inner.saddr;
	key.sport = ports[1];
	key.dport = ports[0];
	key.proto = inner.protocol;
	key.dir = CT_DIR_REPLY;
	ct = ct_lookup(&key, ct_now());
	if (!ct || pkt->daddr != inner.saddr)
		return SVC_NONE;

	new_saddr = ct->nat_daddr; /* the client */
	new_daddr = ct->nat_saddr; /* the frontend */
	new_ports[0] = ct->nat_dport;
	new_ports[1] = ct->nat_sport;
	outer_saddr = pkt->saddr == inner.daddr ? ct->nat_saddr : pkt->saddr;

	inner_check = csum_replace4(csum_replace4(inner.check, inner.saddr, new_saddr), inner.daddr, new_daddr);
	ic = csum_replace4(icmp.checksum, inner.saddr, new_saddr);
	ic = csum_replace4(ic, inner.daddr, new_daddr);
	ic = csum_replace2(ic, inner.check, inner_check);
	ic = csum_replace2(ic, ports[0], new_ports[0]);
	ic = csum_replace2(ic, ports[1], new_ports[1]);

	/* The quoted L4 checksum (when quoted): its pseudo header and ports changed. A UDP 0 is none. */
	l4_csum_off = icmp_quote_csum_off(inner.protocol, in_l4);
	has_l4_check = !ctx_load_bytes(ctx, l4_csum_off, &l4_check, sizeof(l4_check)) &&
		       !(inner.protocol == IPPROTO_UDP && l4_check == 0);
	if (has_l4_check) {
		new_l4_check = csum_replace4(l4_check, inner.saddr, new_saddr);
		new_l4_check = csum_replace4(new_l4_check, inner.daddr, new_daddr);
		new_l4_check = csum_replace2(new_l4_check, ports[0], new_ports[0]);
		new_l4_check = csum_replace2(new_l4_check, ports[1], new_ports[1]);
		if (inner.protocol == IPPROTO_UDP && new_l4_check == 0)
			new_l4_check = CSUM_MANGLED_0;
		ic = csum_replace2(ic, l4_check, new_l4_check);
	}

	inner.saddr = new_saddr;
	inner.daddr = new_daddr;
	inner.check = inner_check;
	if (ctx_store_bytes(ctx, in_off, &inner, sizeof(inner)) || ctx_store_bytes(ctx, in_l4, new_ports, sizeof(new_ports)) ||
	    (has_l4_check && ctx_store_bytes(ctx, l4_csum_off, &new_l4_check, sizeof(new_l4_check))) ||
	    ctx_store_bytes(ctx, icmp_off + offsetof(struct icmp4hdr, checksum), &ic, sizeof(ic)))
		return svc_drop(ctx, DROP_MALFORMED);
	/* ICMP has no pseudo header: the outer addresses touch only the IPv4 checksum. */
	if (nat_set_addr(ctx, pkt, true, outer_saddr) || nat_set_addr(ctx, pkt, false, new_saddr))
		return svc_drop(ctx, DROP_MALFORMED);
	return SVC_FORWARD;
}

#endif
