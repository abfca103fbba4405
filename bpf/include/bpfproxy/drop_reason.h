/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Why the datapath did not deliver a packet as it was sent. The values index drops_v1 and are
 * shown by operators' tools: they are never renumbered, and a retired reason keeps its number.
 * ts/abi/drop-reason.ts mirrors this enum; test/abi/drift.test.ts fails when the two differ. */
#ifndef BPFPROXY_DROP_REASON_H
#define BPFPROXY_DROP_REASON_H

enum drop_reason {
	DROP_UNKNOWN = 0,              /* never used on purpose */
	DROP_MALFORMED = 1,            /* truncated or inconsistent IPv4/L4 headers */
	DROP_NO_ENDPOINTS = 2,         /* service without endpoints: rejected (TCP RST / ICMP port unreachable) */
	DROP_NO_LOCAL_ENDPOINTS = 3,   /* externalTrafficPolicy/internalTrafficPolicy Local, none on this node */
	DROP_SOURCE_RANGE = 4,         /* source outside loadBalancerSourceRanges */
	DROP_CT_INVALID = 5,           /* TCP segment that opens nothing and belongs to no tracked flow */
	DROP_SNAT_EXHAUSTED = 6,       /* no free SNAT port after the bounded retries */
	DROP_CT_CREATE = 7,            /* conntrack insert failed: another CPU held the key (a full table is DROP_CT_FULL) */
	DROP_BACKEND_MISSING = 8,      /* a service slot names a backend that does not exist */
	DROP_FRAGMENT = 9,             /* later IPv4 fragment of a service flow whose first fragment made no flow (dropped or rejected) */
	DROP_REJECT_FAILED = 10,       /* a reject reply could not be built; the packet is dropped instead */
	DROP_NO_ELIGIBLE_BACKEND = 11, /* every probed backend is terminating */
	DROP_TTL_EXCEEDED = 12,        /* a translated packet with no TTL left to forward: answered with ICMP time exceeded */
	DROP_MTU_EXCEEDED = 13,        /* a translated packet too big for the next hop: answered with ICMP fragmentation needed (DF), else dropped */
	DROP_CT_FULL = 14,             /* a new flow while conntrack (ct4_v4) is full: refused, established flows kept */
	DROP_REASON_MAX                /* not a reason: the size of drops_v1 */
};

#endif
