/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The flow hash Maglev indexes with: Bob Jenkins' lookup3 over three words, no per-node seed, so
 * every node maps a flow to the same table entry. ts/abi/flow-hash.ts computes the same function
 * (tested against this one) for `explain` and the tests. */
#ifndef BPFPROXY_LIB_HASH_H
#define BPFPROXY_LIB_HASH_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>

#include "lib/parse.h"

#define JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	initval += JHASH_INITVAL + (3 << 2);
	a += initval;
	b += initval;
	c += initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* Words in host order of the header's numbers, so the value does not depend on endianness. */
static __always_inline __u32 flow_hash4(const struct pkt4 *pkt)
{
	return jhash_3words(bpf_ntohl(pkt->saddr), bpf_ntohl(pkt->daddr),
			    ((__u32)bpf_ntohs(pkt->sport) << 16) | bpf_ntohs(pkt->dport), pkt->proto);
}

#endif
