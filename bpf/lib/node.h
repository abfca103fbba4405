/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* This node's own addresses. A packet that enters the node carrying one of them as its source is
 * a martian to the stack (fib_validate_source drops it, rp_filter or not), so the packets we
 * translate to such a source (a NodePort reply, a masqueraded forward packet) must be forwarded
 * by the datapath itself and never handed to the stack's input path. */
#ifndef BPFPROXY_LIB_NODE_H
#define BPFPROXY_LIB_NODE_H

#include "lib/config.h"
#include "lib/maps.h"

/* The masquerade address, or an address where NodePorts answer (nodeaddr4_v1). */
static __always_inline bool node_owns_addr(__be32 addr)
{
	bool listed;

	if (addr == cfg_node_ip)
		return true;
	listed = bpf_map_lookup_elem(&NODEADDR4_MAP, &addr) != NULL;
	/* An opaque scalar from here: else clang may fold the test into arithmetic on the pointer
	 * (`ptr | other`), which the verifier refuses. */
	barrier_var(listed);
	return listed;
}

#endif
