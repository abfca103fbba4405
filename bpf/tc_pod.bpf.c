// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tc on the host side of a pod's veth. Ingress is what the pod sends: service translation, and
 * the replies of local backends undone. Egress is what the pod receives: replies undone. */
#define BPFPROXY_CTX_SKB
#include "lib/hooks.h"

SEC("tc")
int tc_pod_ingress(struct __sk_buff *skb)
{
	return hook_from_pod(skb);
}

SEC("tc")
int tc_pod_egress(struct __sk_buff *skb)
{
	return hook_to_pod(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
