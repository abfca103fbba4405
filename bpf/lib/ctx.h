/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* One face for struct xdp_md and struct __sk_buff, so that lib/ serves XDP and tc alike. An entry
 * program defines BPFPROXY_CTX_XDP or BPFPROXY_CTX_SKB, then includes lib/ headers. Offsets are
 * from the start of the Ethernet header in both (tc sees the MAC header too). */
#ifndef BPFPROXY_LIB_CTX_H
#define BPFPROXY_LIB_CTX_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/csum.h"

#if defined(BPFPROXY_CTX_XDP)
typedef struct xdp_md ctx_t;
#define CTX_PASS XDP_PASS
#define CTX_DROP XDP_DROP
#define CTX_REDIRECT XDP_REDIRECT
#define CTX_IS_XDP 1
#elif defined(BPFPROXY_CTX_SKB)
typedef struct __sk_buff ctx_t;
#define CTX_PASS TC_ACT_OK
#define CTX_DROP TC_ACT_SHOT
#define CTX_REDIRECT TC_ACT_REDIRECT
#define CTX_IS_XDP 0
#else
#error "define BPFPROXY_CTX_XDP or BPFPROXY_CTX_SKB before including lib/ctx.h"
#endif

static __always_inline void *ctx_data(const ctx_t *ctx)
{
	return (void *)(long)ctx->data;
}

static __always_inline void *ctx_data_end(const ctx_t *ctx)
{
	return (void *)(long)ctx->data_end;
}

/* Bytes of the whole packet (an skb may hold more than its linear part). */
static __always_inline __u32 ctx_len(const ctx_t *ctx)
{
#if CTX_IS_XDP
	return ctx->data_end - ctx->data;
#else
	return ctx->len;
#endif
}

/* The interface the packet arrived on (tc: the one the program is attached to). */
static __always_inline __u32 ctx_ifindex(const ctx_t *ctx)
{
#if CTX_IS_XDP
	return ctx->ingress_ifindex;
#else
	return ctx->ifindex;
#endif
}

/* Makes the first len bytes directly accessible (a no-op for XDP, whose frame is linear). */
static __always_inline void ctx_pull(ctx_t *ctx, __u32 len)
{
#if !CTX_IS_XDP
	if (ctx_data(ctx) + len > ctx_data_end(ctx) && len <= ctx->len)
		bpf_skb_pull_data(ctx, len);
#endif
}

static __always_inline int ctx_load_bytes(const ctx_t *ctx, __u32 off, void *to, __u32 len)
{
#if CTX_IS_XDP
	return bpf_xdp_load_bytes((struct xdp_md *)ctx, off, to, len);
#else
	return bpf_skb_load_bytes(ctx, off, to, len);
#endif
}

static __always_inline int ctx_store_bytes(ctx_t *ctx, __u32 off, const void *from, __u32 len)
{
#if CTX_IS_XDP
	return bpf_xdp_store_bytes(ctx, off, (void *)from, len);
#else
	return bpf_skb_store_bytes(ctx, off, from, len, 0);
#endif
}

/* IPv4 header checksum: tc lets the kernel keep skb->csum right; XDP updates the field by hand. */
static __always_inline int ctx_l3_csum_replace(ctx_t *ctx, __u32 off, __u32 from, __u32 to, __u32 size)
{
#if CTX_IS_XDP
	__sum16 sum;

	if (ctx_load_bytes(ctx, off, &sum, sizeof(sum)))
		return -1;
	sum = size == 2 ? csum_replace2(sum, from, to) : csum_replace4(sum, from, to);
	return ctx_store_bytes(ctx, off, &sum, sizeof(sum));
#else
	return bpf_l3_csum_replace(ctx, off, from, to, size);
#endif
}

/* L4 checksum. flags: BPF_F_PSEUDO_HDR when `from` is part of the pseudo header (an address),
 * BPF_F_MARK_MANGLED_0 for UDP, whose zero checksum means "none". For tc, bpf_l4_csum_replace
 * also handles CHECKSUM_PARTIAL skbs (local senders), whose field holds only the pseudo sum. */
static __always_inline int ctx_l4_csum_replace(ctx_t *ctx, __u32 off, __u32 from, __u32 to, __u64 flags)
{
#if CTX_IS_XDP
	__sum16 sum;

	if (ctx_load_bytes(ctx, off, &sum, sizeof(sum)))
		return -1;
	if ((flags & BPF_F_MARK_MANGLED_0) && sum == 0)
		return 0;
	sum = (flags & BPF_F_HDR_FIELD_MASK) == 2 ? csum_replace2(sum, from, to) : csum_replace4(sum, from, to);
	if ((flags & BPF_F_MARK_MANGLED_0) && sum == 0)
		sum = CSUM_MANGLED_0;
	return ctx_store_bytes(ctx, off, &sum, sizeof(sum));
#else
	return bpf_l4_csum_replace(ctx, off, from, to, flags);
#endif
}

/* Sets the packet's length to len bytes (grows or trims at the tail). */
static __always_inline int ctx_set_len(ctx_t *ctx, __u32 len)
{
#if CTX_IS_XDP
	return bpf_xdp_adjust_tail(ctx, (int)len - (int)ctx_len(ctx));
#else
	return bpf_skb_change_tail(ctx, len, 0);
#endif
}

/* Sends the packet back out of the interface it came in on. */
static __always_inline int ctx_bounce(ctx_t *ctx)
{
#if CTX_IS_XDP
	return XDP_TX;
#else
	return bpf_redirect(ctx->ifindex, 0);
#endif
}

/* Sends the packet out of ifindex (XDP_TX when that is where it came from). */
static __always_inline int ctx_redirect(ctx_t *ctx, __u32 ifindex)
{
	if (ifindex == ctx_ifindex(ctx))
		return ctx_bounce(ctx);
	return bpf_redirect(ifindex, 0);
}

#endif
