/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ethernet + IPv4 + TCP/UDP parsing into a flat description of the packet. Later steps rewrite the
 * packet by offset (ctx_store_bytes) and keep this copy in step, so no packet pointer outlives a
 * helper call that may move the data. */
#ifndef BPFPROXY_LIB_PARSE_H
#define BPFPROXY_LIB_PARSE_H

#include <stdbool.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "lib/ctx.h"

#ifndef offsetof
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif

/* <linux/icmp.h> pulls in libc headers; the datapath needs only this much of ICMP. */
struct icmp4hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest; /* unused for destination unreachable, but the next-hop MTU of "fragmentation needed" */
};

#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_EXC_TTL 0

#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_ACK 0x10

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IPV4, /* another ethertype: not ours */
	PARSE_OTHER_L4, /* IPv4 but neither TCP nor UDP (ICMP, SCTP, ...): passed untouched */
	PARSE_FRAGMENT, /* a fragment: pkt4.frag says which (lib/frag.h finds its ports) */
	PARSE_MALFORMED,
};

/* What struct pkt4 holds of a fragment. */
enum pkt_frag {
	PKT_WHOLE = 0,      /* not a fragment */
	PKT_FRAG_FIRST,     /* offset 0, MF: the L4 header is here (ports valid) */
	PKT_FRAG_LATER,     /* offset > 0: no L4 header; ports only through lib/frag.h */
	PKT_FRAG_TRUNCATED, /* offset 0, MF, but too short for its TCP/UDP header: left alone */
};

struct pkt4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 ttl;
	__u8 frag; /* enum pkt_frag */
	__u16 l4_off;
	__u16 tot_len; /* IPv4 total length */
	__u16 tcp_payload; /* bytes of TCP payload (for the acknowledgement of a RST) */
	__be16 ip_id; /* IP identification; set for fragments only */
	__be32 tcp_seq;
	__be32 tcp_ack_seq;
};

/* A fragment without its L4 header. Fragments are tc's only (lib/hooks.h): for XDP this is false at
 * compile time, and the fragment paths vanish from its program. */
static __always_inline bool pkt_later_fragment(const struct pkt4 *pkt)
{
	return !CTX_IS_XDP && pkt->frag == PKT_FRAG_LATER;
}

#define L3_OFF ETH_HLEN
#define IP_CSUM_OFF (L3_OFF + offsetof(struct iphdr, check))
#define IP_SADDR_OFF (L3_OFF + offsetof(struct iphdr, saddr))
#define IP_DADDR_OFF (L3_OFF + offsetof(struct iphdr, daddr))

static __always_inline int parse_l4(struct pkt4 *pkt, void *l4, void *data_end)
{
	if (pkt->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return PARSE_MALFORMED;
		if (th->doff < 5)
			return PARSE_MALFORMED;
		pkt->sport = th->source;
		pkt->dport = th->dest;
		pkt->tcp_flags = ((__u8 *)th)[13];
		pkt->tcp_seq = th->seq;
		pkt->tcp_ack_seq = th->ack_seq;
		if (pkt->tot_len < (__u32)(pkt->l4_off - ETH_HLEN) + th->doff * 4)
			return PARSE_MALFORMED;
		pkt->tcp_payload = pkt->tot_len - (pkt->l4_off - ETH_HLEN) - th->doff * 4;
		return PARSE_OK;
	}
	if (pkt->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return PARSE_MALFORMED;
		pkt->sport = uh->source;
		pkt->dport = uh->dest;
		return PARSE_OK;
	}
	return PARSE_OTHER_L4;
}

static __always_inline int parse_ipv4(ctx_t *ctx, struct pkt4 *pkt)
{
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 ihl;
	int ret;

	/* Ethernet + IPv4 + the largest fixed L4 header we read. */
	ctx_pull(ctx, ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr));
	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_IPV4;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < sizeof(*ip) || bpf_ntohs(ip->tot_len) < ihl)
		return PARSE_MALFORMED;
	pkt->saddr = ip->saddr;
	pkt->daddr = ip->daddr;
	pkt->proto = ip->protocol;
	pkt->ttl = ip->ttl;
	pkt->tot_len = bpf_ntohs(ip->tot_len);
	pkt->l4_off = ETH_HLEN + ihl;
	pkt->tcp_flags = 0;
	pkt->tcp_payload = 0;
	pkt->sport = 0;
	pkt->dport = 0;
	pkt->frag = PKT_WHOLE;

	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		/* Only the first fragment has the L4 header; lib/frag.h gives the others its ports. */
		pkt->ip_id = ip->id;
		if (ip->frag_off & bpf_htons(IP_OFFSET))
			pkt->frag = PKT_FRAG_LATER;
		else if (parse_l4(pkt, (void *)ip + ihl, data_end) == PARSE_MALFORMED)
			pkt->frag = PKT_FRAG_TRUNCATED;
		else
			pkt->frag = PKT_FRAG_FIRST;
		return PARSE_FRAGMENT;
	}
	if (ihl > 60)
		return PARSE_MALFORMED;
	ret = parse_l4(pkt, (void *)ip + ihl, data_end);
	return ret;
}

#endif
