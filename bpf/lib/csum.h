/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksum arithmetic (RFC 1071, incremental updates per RFC 1624). Values stay in the
 * byte order they have in the packet: one's complement sums do not care, as long as every term
 * is taken the same way. */
#ifndef BPFPROXY_LIB_CSUM_H
#define BPFPROXY_LIB_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define CSUM_MANGLED_0 ((__sum16)0xffff)

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* HC' = ~(~HC + ~m + m') over the 16-bit words of a 4-byte field. */
static __always_inline __sum16 csum_replace4(__sum16 check, __u32 from, __u32 to)
{
	__u64 sum = (__u16)~check;

	sum += (__u16)~(from & 0xffff) + (__u16)~(from >> 16);
	sum += (to & 0xffff) + (to >> 16);
	return (__sum16)~csum_fold(sum);
}

static __always_inline __sum16 csum_replace2(__sum16 check, __u16 from, __u16 to)
{
	__u64 sum = (__u16)~check;

	sum += (__u16)~from;
	sum += to;
	return (__sum16)~csum_fold(sum);
}

/* Checksum of a freshly built header on the stack: len a multiple of 4, at most 512 bytes.
 * `seed` carries a partial sum (a pseudo header) in. */
static __always_inline __sum16 csum_build(void *buf, __u32 len, __u32 seed)
{
	__s64 sum = bpf_csum_diff(0, 0, buf, len, seed);

	return (__sum16)~csum_fold((__u64)(__u32)sum);
}

#endif
