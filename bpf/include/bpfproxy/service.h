/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Services, backends, Maglev tables, source ranges, node addresses and session affinity: the maps
 * the control plane writes and the datapath reads. Byte order: addresses and ports are in network
 * order (__be*), everything else in host order. Layout changes need a new map name suffix. */
#ifndef BPFPROXY_SERVICE_H
#define BPFPROXY_SERVICE_H

#include <linux/types.h>

/* svc4_v1 key: one frontend (addr, port, proto) and one of its slots.
 * Slot 0 of scope ALL is the master entry; slots 1..count (scope ALL) and 1..local_count (scope
 * LOCAL) name backends. NodePort frontends use addr 0.0.0.0, matched on node addresses only. */
struct svc4_key {
	__be32 addr;
	__be16 port;
	__u8 proto;        /* IPPROTO_TCP, IPPROTO_UDP */
	__u8 scope;        /* enum svc_scope */
	__u16 backend_slot;
	__u16 pad;
};

enum svc_scope {
	SVC_SCOPE_ALL = 0,   /* every endpoint the service may use */
	SVC_SCOPE_LOCAL = 1, /* endpoints on this node (traffic policies Local) */
};

enum svc_kind {
	SVC_KIND_CLUSTER_IP = 1,
	SVC_KIND_NODE_PORT = 2,
	SVC_KIND_LOAD_BALANCER = 3,
	SVC_KIND_EXTERNAL_IP = 4,
};

enum svc_flags {
	SVC_F_ETP_LOCAL = 1 << 0,     /* external traffic: local endpoints only, client address kept */
	SVC_F_ITP_LOCAL = 1 << 1,     /* ClusterIP traffic: local endpoints only */
	SVC_F_AFFINITY = 1 << 2,      /* ClientIP session affinity, affinity_timeout seconds */
	SVC_F_SOURCE_RANGES = 1 << 3, /* external traffic filtered by srcr4_v1 */
	SVC_F_REJECT = 1 << 4,        /* no endpoints: reject (RST / ICMP) instead of dropping */
	SVC_F_MAGLEV = 1 << 5,        /* external traffic picks through maglev_v1[svc_id] */
	SVC_F_TERM_FALLBACK = 1 << 6, /* slots hold serving-terminating endpoints on purpose */
	/* The masquerade rules, decided by the control plane (kube-proxy's, lib/translate.h applies
	 * them): MASQUERADE, every new flow (masqueradeAll; ClusterIP frontends only); DETECT_LOCAL,
	 * the cluster CIDRs (clustercidr4_v1) tell cluster sources from others: a ClusterIP
	 * masquerades the others, an external frontend serves cluster sources as internal traffic
	 * (every endpoint, whatever its externalTrafficPolicy). */
	SVC_F_MASQUERADE = 1 << 7,
	SVC_F_DETECT_LOCAL = 1 << 8,
};

/* svc4_v1 value. Master (slot 0): counts, id, flags; the other slots: backend_id and svc_id. */
struct svc4_value {
	__u32 backend_id;       /* slots >= 1 */
	__u32 svc_id;           /* rev-NAT id and counter index; in every slot */
	__u32 affinity_timeout; /* master: seconds */
	__u16 count;            /* master: slots 1..count in scope ALL */
	__u16 local_count;      /* master: slots 1..local_count in scope LOCAL */
	__u16 flags;            /* master: enum svc_flags */
	__u8 kind;              /* master: enum svc_kind */
	__u8 pad;
};

/* be_v1: backend_id (u32) -> backend. */
struct backend4 {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 flags; /* enum backend_flags */
};

enum backend_flags {
	BACKEND_F_LOCAL = 1 << 0,       /* runs on this node */
	BACKEND_F_TERMINATING = 1 << 1, /* kept for established flows, never picked for new ones */
};

/* begen_v1 (ARRAY, one entry, key 0): the backend generation. The control plane increments it
 * after each batch of deletions or overwrites in be_v1 (never before: a packet must not see the new
 * generation while the old backend is still there). A conntrack entry remembers the generation at
 * which its backend was last known to exist (ct4_value.be_gen): while the generation has not moved,
 * an established packet skips the backend lookup. Only a change is meaningful, so wrapping is fine
 * (an entry idle across a multiple of 2^32 bumps would skip one check). */
struct begen_value {
	__u32 generation;
};

/* srcr4_v1 (LPM trie): svc_id then source prefix. prefixlen counts svc_id's 32 bits too. */
struct srcr4_key {
	__u32 prefixlen;
	__u32 svc_id;
	__be32 addr;
};

/* clustercidr4_v1 (LPM): the cluster (pod) CIDRs, kube-proxy's local-traffic detector. Written by
 * the loader from the agent's clusterCIDR; empty when there is none (no detector). */
struct cidr4_key {
	__u32 prefixlen;
	__be32 addr;
};

/* nodeaddr4_v1: this node's addresses where NodePorts answer (nodePortAddresses applied). */
struct nodeaddr4_value {
	__u32 flags; /* reserved, 0 */
};

/* aff4_v1 (LRU): ClientIP affinity. */
struct aff4_key {
	__be32 client;
	__u32 svc_id;
};

struct aff4_value {
	__u32 backend_id;
	__u32 pad;
	__u64 last_seen_ns; /* CLOCK_MONOTONIC (lib/conntrack.h ct_now) of the last new flow */
};

/* maglev_v1: svc_id (u32) -> inner ARRAY of maglev_m u32 backend ids, built in user space over the
 * service's external set (the local endpoints under externalTrafficPolicy Local, else all). */
#define MAGLEV_M_DEFAULT 16381

#endif
