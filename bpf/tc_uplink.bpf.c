// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tc ingress on the node's uplink: north-south NodePort, LoadBalancer and externalIP traffic, and
 * the replies of masqueraded flows; also what XDP passed on (fragments, unresolved neighbours). */
#define BPFPROXY_CTX_SKB
#include "lib/hooks.h"

SEC("tc")
int tc_uplink_ingress(struct __sk_buff *skb)
{
	return hook_from_uplink(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
