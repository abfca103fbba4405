// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tc on the node's own devices. Ingress on the uplink: north-south NodePort, LoadBalancer and
 * externalIP traffic, and the replies of masqueraded flows; also what XDP passed on (fragments,
 * unresolved neighbours, ICMP). Egress on the service device: the node's own traffic to service
 * addresses. Egress on lo and on the uplink: the node's own sockets as NodePort clients and as
 * hostNetwork endpoints (lib/hooks_node.h). */
#define BPFPROXY_CTX_SKB
#include "lib/hooks_node.h"

SEC("tc")
int tc_uplink_ingress(struct __sk_buff *skb)
{
	return hook_from_uplink(skb);
}

SEC("tc")
int tc_host_egress(struct __sk_buff *skb)
{
	return hook_from_host(skb);
}

SEC("tc")
int tc_lo_egress(struct __sk_buff *skb)
{
	return hook_from_lo(skb);
}

SEC("tc")
int tc_uplink_egress(struct __sk_buff *skb)
{
	return hook_to_uplink(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
