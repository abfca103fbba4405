/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map of the datapath. Each entry program includes this, and the loader pins every map under
 * the node's bpffs directory by name, so the programs of one node (tc_pod, tc_uplink, xdp_uplink:
 * separate objects because lib/ctx.h is chosen at compile time) share one set. */
#ifndef BPFPROXY_LIB_MAPS_H
#define BPFPROXY_LIB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpfproxy/conntrack.h"
#include "bpfproxy/counters.h"
#include "bpfproxy/frag.h"
#include "bpfproxy/maps.h"
#include "bpfproxy/service.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SVC4_MAP_SIZE);
	__type(key, struct svc4_key);
	__type(value, struct svc4_value);
} SVC4_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BACKEND_MAP_SIZE);
	__type(key, __u32);
	__type(value, struct backend4);
} BACKEND_MAP SEC(".maps");

/* Not an LRU hash: a full table must refuse new flows, not evict live ones (lib/conntrack.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT4_MAP_SIZE);
	__type(key, struct ct4_key);
	__type(value, struct ct4_value);
} CT4_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AFF4_MAP_SIZE);
	__type(key, struct aff4_key);
	__type(value, struct aff4_value);
} AFF4_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SRCR4_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct srcr4_key);
	__type(value, __u8);
} SRCR4_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NODEADDR4_MAP_SIZE);
	__type(key, __be32);
	__type(value, struct nodeaddr4_value);
} NODEADDR4_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CLCIDR4_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cidr4_key);
	__type(value, __u8);
} CLCIDR4_MAP SEC(".maps");

/* The inner template only gives the shape: BPF_F_INNER_MAP lets user space create tables of any
 * size (cfg_maglev_m), as long as they carry the same flag. */
struct maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAGLEV_M_DEFAULT);
	__uint(map_flags, BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, MAGLEV_MAP_SIZE);
	__type(key, __u32);
	__array(values, struct maglev_inner);
} MAGLEV_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROPS_MAP_SIZE);
	__type(key, __u32);
	__type(value, struct drop_stats);
} DROPS_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SVCSTAT_MAP_SIZE);
	__type(key, __u32);
	__type(value, struct svc_stats);
} SVCSTAT_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FRAG4_MAP_SIZE);
	__type(key, struct frag4_key);
	__type(value, struct frag4_value);
} FRAG4_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FRAGSTAT_MAP_SIZE);
	__type(key, __u32);
	__type(value, struct frag_stats);
} FRAGSTAT_MAP SEC(".maps");

/* One element: lookups of an ARRAY map are inlined by the verifier (no call, no hash). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BEGEN_MAP_SIZE);
	__type(key, __u32);
	__type(value, struct begen_value);
} BEGEN_MAP SEC(".maps");

#endif
