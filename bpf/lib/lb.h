/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Service lookup and backend choice for new flows. The control plane writes backends, then slots,
 * then the master entry (and shrinks master first, extra slots after), so a packet that sees a
 * master entry finds every slot it names. */
#ifndef BPFPROXY_LIB_LB_H
#define BPFPROXY_LIB_LB_H

#include "lib/config.h"
#include "lib/maglev.h"
#include "lib/maps.h"
#include "lib/parse.h"

/* How many slots (or Maglev entries) a pick looks at when it meets a terminating or vanished
 * backend: the first is uniform, the next ones are its neighbours. Only a control plane in the
 * middle of an update leaves such entries behind, so a few are plenty. */
#define LB_PROBES 4

/* The master entry of the service the packet is addressed to; *frontend is left holding its key.
 * NodePorts are wildcard entries (0.0.0.0:port) that answer on this node's addresses only. */
static __always_inline struct svc4_value *svc_lookup(const struct pkt4 *pkt, struct svc4_key *frontend)
{
	struct svc4_value *svc;

	frontend->addr = pkt->daddr;
	frontend->port = pkt->dport;
	frontend->proto = pkt->proto;
	frontend->scope = SVC_SCOPE_ALL;
	frontend->backend_slot = 0;
	frontend->pad = 0;
	svc = bpf_map_lookup_elem(&SVC4_MAP, frontend);
	if (svc)
		return svc;
	if (!bpf_map_lookup_elem(&NODEADDR4_MAP, &pkt->daddr))
		return NULL;
	frontend->addr = 0;
	return bpf_map_lookup_elem(&SVC4_MAP, frontend);
}

static __always_inline bool svc_is_external_kind(const struct svc4_value *svc)
{
	return svc->kind != SVC_KIND_CLUSTER_IP;
}

/* loadBalancerSourceRanges: is the client listed for this service? */
static __always_inline bool lb_source_allowed(const struct pkt4 *pkt, const struct svc4_value *svc)
{
	struct srcr4_key key = {
		.prefixlen = 64,
		.svc_id = svc->svc_id,
		.addr = pkt->saddr,
	};

	return bpf_map_lookup_elem(&SRCR4_MAP, &key) != NULL;
}

/* May a new flow of this service, in this scope, go to the backend? Terminating backends only
 * when the control plane says the slots hold serving-terminating ones on purpose (kube-proxy's
 * fallback when no endpoint is ready). */
static __always_inline bool backend_eligible(const struct backend4 *be, const struct svc4_value *svc, __u8 scope)
{
	if ((be->flags & BACKEND_F_TERMINATING) && !(svc->flags & SVC_F_TERM_FALLBACK))
		return false;
	if (scope == SVC_SCOPE_LOCAL && !(be->flags & BACKEND_F_LOCAL))
		return false;
	return true;
}

static __always_inline __u32 svc_slot_backend(const struct svc4_key *frontend, __u8 scope, __u16 slot)
{
	struct svc4_key key = *frontend;
	struct svc4_value *v;

	key.scope = scope;
	key.backend_slot = slot;
	v = bpf_map_lookup_elem(&SVC4_MAP, &key);
	return v ? v->backend_id : 0;
}

/* ClientIP affinity: the client's backend if it is recent, still exists and may take new flows. */
static __always_inline __u32 affinity_lookup(const struct pkt4 *pkt, const struct svc4_value *svc, __u8 scope,
					     __u64 now, struct backend4 *backend)
{
	struct aff4_key key = { .client = pkt->saddr, .svc_id = svc->svc_id };
	struct aff4_value *a = bpf_map_lookup_elem(&AFF4_MAP, &key);
	struct backend4 *be;

	if (!a || now > a->last_seen_ns + (__u64)svc->affinity_timeout * NSEC_PER_SEC)
		return 0;
	be = bpf_map_lookup_elem(&BACKEND_MAP, &a->backend_id);
	if (!be || !backend_eligible(be, svc, scope))
		return 0;
	*backend = *be;
	return a->backend_id;
}

static __always_inline void affinity_update(const struct pkt4 *pkt, const struct svc4_value *svc, __u32 backend_id,
					    __u64 now)
{
	struct aff4_key key = { .client = pkt->saddr, .svc_id = svc->svc_id };
	struct aff4_value a = { .backend_id = backend_id, .last_seen_ns = now };

	bpf_map_update_elem(&AFF4_MAP, &key, &a, BPF_ANY);
}

/* Picks a backend for a new flow: Maglev over the flow hash when asked (external traffic of a
 * Maglev service whose table exists), else a uniform random slot. Returns the backend id, or 0
 * with *reason set. `count` is the number of slots in `scope` and is not 0. */
static __always_inline __u32 lb_pick(const struct pkt4 *pkt, const struct svc4_key *frontend,
				     const struct svc4_value *svc, __u8 scope, __u16 count, bool maglev,
				     struct backend4 *backend, enum drop_reason *reason)
{
	void *table = maglev ? maglev_table(svc->svc_id) : NULL;
	__u32 start = table ? flow_hash4(pkt) : bpf_get_prandom_u32();
	bool missing = false;
	int i;

	for (i = 0; i < LB_PROBES; i++) {
		struct backend4 *be;
		__u32 id;

		if (table)
			id = maglev_entry(table, start + i);
		else
			id = svc_slot_backend(frontend, scope, (start + i) % count + 1);
		be = id ? bpf_map_lookup_elem(&BACKEND_MAP, &id) : NULL;
		if (!be) {
			missing = true;
			continue;
		}
		if (!backend_eligible(be, svc, scope))
			continue;
		*backend = *be;
		return id;
	}
	*reason = missing ? DROP_BACKEND_MISSING : DROP_NO_ELIGIBLE_BACKEND;
	return 0;
}

#endif
