/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Turning a packet into its rejection, sent back in place of it: a TCP RST, or an ICMP port
 * unreachable for everything else, from the address the client tried to reach. Clients then fail
 * at once ("connection refused") as with kube-proxy's REJECT. The caller bounces the result. */
#ifndef BPFPROXY_LIB_REJECT_H
#define BPFPROXY_LIB_REJECT_H

#include "lib/csum.h"
#include "lib/ctx.h"
#include "lib/parse.h"

#define REJECT_TTL 64
#define ICMP_QUOTE_LEN (sizeof(struct iphdr) + 8) /* RFC 792: the IP header and 64 bits of data */

/* The header of an answer to pkt's sender, from `from`. */
static __always_inline void reject_ip_header(struct iphdr *ip, const struct pkt4 *pkt, __be32 from, __u8 proto, __u16 len)
{
	*ip = (struct iphdr){
		.version = 4,
		.ihl = 5,
		.tot_len = bpf_htons(len),
		.ttl = REJECT_TTL,
		.protocol = proto,
		.saddr = from,
		.daddr = pkt->saddr,
	};
	ip->check = csum_build(ip, sizeof(*ip), 0);
}

static __always_inline int reject_tcp(ctx_t *ctx, struct pkt4 *pkt)
{
	struct {
		__be32 saddr;
		__be32 daddr;
		__u8 zero;
		__u8 proto;
		__be16 len;
		struct tcphdr tcp;
	} pseudo = {};
	struct {
		struct iphdr ip;
		struct tcphdr tcp;
	} rst;
	__u32 seg_len;

	pseudo.saddr = pkt->daddr;
	pseudo.daddr = pkt->saddr;
	pseudo.proto = IPPROTO_TCP;
	pseudo.len = bpf_htons(sizeof(struct tcphdr));
	pseudo.tcp.source = pkt->dport;
	pseudo.tcp.dest = pkt->sport;
	pseudo.tcp.doff = sizeof(struct tcphdr) / 4;
	pseudo.tcp.rst = 1;
	/* RFC 793 reset generation: take the peer's ACK as our sequence, else acknowledge its segment. */
	if (pkt->tcp_flags & TCP_FLAG_ACK) {
		pseudo.tcp.seq = pkt->tcp_ack_seq;
	} else {
		seg_len = pkt->tcp_payload + !!(pkt->tcp_flags & TCP_FLAG_SYN) + !!(pkt->tcp_flags & TCP_FLAG_FIN);
		pseudo.tcp.ack_seq = bpf_htonl(bpf_ntohl(pkt->tcp_seq) + seg_len);
		pseudo.tcp.ack = 1;
	}
	pseudo.tcp.check = csum_build(&pseudo, sizeof(pseudo), 0);
	reject_ip_header(&rst.ip, pkt, pkt->daddr, IPPROTO_TCP, sizeof(rst));
	rst.tcp = pseudo.tcp;
	if (ctx_set_len(ctx, ETH_HLEN + sizeof(rst)) || ctx_store_bytes(ctx, L3_OFF, &rst, sizeof(rst)))
		return -1;
	return 0;
}

/* Rewrites the packet into an ICMP error about itself, from `from` to its sender, quoting its IP
 * header and the first 8 bytes after it (RFC 792). `rest` is the header's second word (the next-hop
 * MTU of "fragmentation needed", RFC 1191). */
static __always_inline int icmp_error(ctx_t *ctx, struct pkt4 *pkt, __u8 type, __u8 code, __be32 rest, __be32 from)
{
	struct {
		struct iphdr ip;
		struct icmp4hdr icmp;
		__u8 quote[ICMP_QUOTE_LEN];
	} err = {};

	/* The quote is the offending header as sent; with IP options it would not fit this layout. */
	if (pkt->l4_off != L3_OFF + sizeof(struct iphdr))
		return -1;
	if (ctx_load_bytes(ctx, L3_OFF, err.quote, sizeof(err.quote)))
		return -1;
	err.icmp.type = type;
	err.icmp.code = code;
	err.icmp.rest = rest;
	err.icmp.checksum = csum_build(&err.icmp, sizeof(err.icmp) + sizeof(err.quote), 0);
	reject_ip_header(&err.ip, pkt, from, IPPROTO_ICMP, sizeof(err));
	if (ctx_set_len(ctx, ETH_HLEN + sizeof(err)) || ctx_store_bytes(ctx, L3_OFF, &err, sizeof(err)))
		return -1;
	return 0;
}

static __always_inline int reject_icmp(ctx_t *ctx, struct pkt4 *pkt)
{
	return icmp_error(ctx, pkt, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, pkt->daddr);
}

/* Rewrites the packet into its rejection; 0 on success (the caller bounces it). */
static __always_inline int reject(ctx_t *ctx, struct pkt4 *pkt)
{
	if (pkt->proto == IPPROTO_TCP)
		return reject_tcp(ctx, pkt);
	return reject_icmp(ctx, pkt);
}

#endif
