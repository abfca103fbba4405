// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The traffic probe: counts packets per interface, hook and L4 protocol, and passes them on.
 * Loaded by the foundation tests and by `bpfproxy probe`; the service datapath lives in
 * the other programs of this folder. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bpfproxy/probe.h"

/* Load-time configuration (rodata): an L4 protocol the probe drops instead of counting,
 * 0 for none. Lets a test prove that configuration reaches the program. */
const volatile __u8 cfg_drop_proto = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct probe_key);
	__type(value, struct probe_value);
} PROBE_COUNTERS_MAP SEC(".maps");

static __always_inline __u8 l4_proto(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return 0;
		return ip->protocol;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		return ip6->nexthdr;
	}
	return 0;
}

/* Returns 1 when the packet is to be dropped. */
static __always_inline int count(__u32 ifindex, __u8 hook, void *data, void *data_end)
{
	struct probe_key key = { .ifindex = ifindex, .hook = hook, .proto = l4_proto(data, data_end) };
	struct probe_value *v;

	if (cfg_drop_proto && key.proto == cfg_drop_proto)
		return 1;
	v = bpf_map_lookup_elem(&PROBE_COUNTERS_MAP, &key);
	if (!v) {
		struct probe_value zero = {};

		bpf_map_update_elem(&PROBE_COUNTERS_MAP, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&PROBE_COUNTERS_MAP, &key);
		if (!v)
			return 0;
	}
	v->packets++;
	v->bytes += data_end - data;
	return 0;
}

SEC("xdp")
int probe_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;

	return count(ctx->ingress_ifindex, PROBE_HOOK_XDP, data, data_end) ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int probe_tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;

	return count(skb->ifindex, PROBE_HOOK_TC_INGRESS, data, data_end) ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int probe_tc_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;

	return count(skb->ifindex, PROBE_HOOK_TC_EGRESS, data, data_end) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
