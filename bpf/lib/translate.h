/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The two packet paths through a service, shared by every hook:
 *   svc_forward(): a packet addressed to a frontend: conntrack, backend choice, DNAT (+ SNAT);
 *   svc_reply():   a packet of a tracked flow coming back: the translation undone.
 * Both leave the packet translated and tell the entry program what to do with it next; drops are
 * counted here, with their reason. */
#ifndef BPFPROXY_LIB_TRANSLATE_H
#define BPFPROXY_LIB_TRANSLATE_H

#include "lib/config.h"
#include "lib/conntrack.h"
#include "lib/counters.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/reject.h"

enum origin {
	FROM_POD,    /* tc on a pod interface of this node: cluster-internal traffic */
	FROM_UPLINK, /* XDP or tc on the node's uplink: traffic from outside the node */
	FROM_HOST,   /* tc egress of the service device: the node's own traffic */
};

enum svc_verdict {
	SVC_NONE,    /* not a service packet (or not a tracked reply): untouched */
	SVC_FORWARD, /* translated: on to its new destination */
	SVC_BOUNCE,  /* translated or turned into a rejection: back out of the interface it came in on */
	SVC_DROP,    /* dropped, counted */
};

/* Is addr in the cluster CIDRs (clustercidr4_v1)? Asked only under SVC_F_DETECT_LOCAL. */
static __always_inline bool from_cluster(__be32 addr)
{
	struct cidr4_key key = { .prefixlen = 32, .addr = addr };
	bool found = bpf_map_lookup_elem(&CLCIDR4_MAP, &key) != NULL;

	barrier_var(found); /* as in node_owns_addr: no arithmetic on the pointer */
	return found;
}

/* External traffic: entered through the uplink, to a NodePort, LoadBalancer IP or externalIP, from
 * outside the cluster. Only external traffic is narrowed by externalTrafficPolicy: Local and
 * picked by Maglev. A pod of another node reaching this node's NodePort is cluster traffic when the
 * control plane can tell (kube-proxy sends it to every endpoint). */
static __always_inline bool svc_external(const struct pkt4 *pkt, const struct svc4_value *svc, enum origin origin)
{
	if (origin != FROM_UPLINK || !svc_is_external_kind(svc))
		return false;
	return !((svc->flags & SVC_F_DETECT_LOCAL) && from_cluster(pkt->saddr));
}

static __always_inline int svc_drop(const ctx_t *ctx, enum drop_reason reason)
{
	count_drop(ctx, reason);
	return SVC_DROP;
}

static __always_inline int svc_reject(ctx_t *ctx, struct pkt4 *pkt, enum drop_reason reason)
{
	if (reject(ctx, pkt))
		return svc_drop(ctx, DROP_REJECT_FAILED);
	count_drop(ctx, reason);
	return SVC_BOUNCE;
}

/* Which endpoint set a new flow draws from: Local policies narrow it to this node's endpoints,
 * externalTrafficPolicy only for traffic from outside, internalTrafficPolicy for ClusterIPs. */
static __always_inline __u8 svc_scope(const struct svc4_value *svc, bool external)
{
	if (external && (svc->flags & SVC_F_ETP_LOCAL))
		return SVC_SCOPE_LOCAL;
	if (svc->kind == SVC_KIND_CLUSTER_IP && (svc->flags & SVC_F_ITP_LOCAL))
		return SVC_SCOPE_LOCAL;
	return SVC_SCOPE_ALL;
}

/* The source a new flow leaves with, 0 to keep the client's. Two rules keep replies coming back
 * through the node that holds the flow, whatever the Service says; the others are the frontend's
 * (its flags, from the control plane, which computes kube-proxy's rules once). */
static __always_inline __be32 svc_snat_source(const struct pkt4 *pkt, const struct svc4_value *svc,
					      const struct backend4 *be, enum origin origin)
{
	/* Hairpin: a pod reaching itself would see its own address as source and answer itself.
	 * Not the node reaching its own hostNetwork endpoint: that answer leaves through lo, whose
	 * egress reverses it (lib/hooks_node.h). */
	if (be->addr == pkt->saddr && origin != FROM_HOST)
		return cfg_hairpin_ip;
	/* From outside the node to another node's backend (ETP Cluster, or cluster traffic to an ETP
	 * Local NodePort): the backend would answer the client directly. External traffic under ETP
	 * Local never gets here: it only picks this node's backends, and keeps the client's address. */
	if (origin == FROM_UPLINK && !(be->flags & BACKEND_F_LOCAL))
		return cfg_node_ip;
	/* The node's own flows leave with the address their replies are recognised by; from that
	 * address already, they keep their port too: the node's socket owns it (ephemeral ports stay
	 * below the SNAT range), and the SNAT range would run out (a resolver's queries are a flow
	 * each, alive for udpStreamTimeout). */
	if (origin == FROM_HOST)
		return pkt->saddr == cfg_node_ip ? 0 : cfg_node_ip;
	if (svc->flags & SVC_F_MASQUERADE)
		return cfg_node_ip;
	if (svc->kind == SVC_KIND_CLUSTER_IP && (svc->flags & SVC_F_DETECT_LOCAL) && !from_cluster(pkt->saddr))
		return cfg_node_ip;
	return 0;
}

/* The backend generation (begen_v1, see bpfproxy/service.h). An ARRAY lookup with a constant key:
 * the verifier inlines it into a bounds check and a load. */
static __always_inline __u32 backend_generation(void)
{
	__u32 zero = 0;
	struct begen_value *g = bpf_map_lookup_elem(&BEGEN_MAP, &zero);

	return g ? *(volatile __u32 *)&g->generation : 0;
}

/* A new flow: choose the backend, take conntrack entries (and a SNAT port, snat_hint first if
 * not 0), translate. */
static __always_inline int svc_new_flow(ctx_t *ctx, struct pkt4 *pkt, const struct svc4_key *frontend,
					const struct svc4_value *svc, enum origin origin, bool external, __u64 now, __be16 snat_hint)
{
	enum drop_reason reason = DROP_UNKNOWN;
	__u8 scope = svc_scope(svc, external);
	__u16 count = scope == SVC_SCOPE_LOCAL ? svc->local_count : svc->count;
	bool maglev = external && (svc->flags & SVC_F_MAGLEV);
	struct ct4_value fwd = {}, rev = {}, *held = NULL;
	bool own_rev = false, adopted = false;
	struct ct4_key fwd_key, rev_key;
	enum ct_insert_result r_fwd;
	struct backend4 be = {};
	__u32 backend_id = 0;
	__be32 snat_addr;
	bool hairpin;
	__u32 gen;

	if (pkt->proto == IPPROTO_TCP && !tcp_opens(pkt)) {
		/* A segment of no tracked connection (out of window, after expiry, a stray RST): NATing
		 * a guess, or letting it reach the stack untranslated, resets a live connection
		 * (kube-proxy's INVALID bug). Maglev services re-pick statelessly: every node picks
		 * the same backend, which is what lets a flow survive moving between nodes. */
		if (!maglev || (pkt->tcp_flags & TCP_FLAG_RST))
			return svc_drop(ctx, DROP_CT_INVALID);
	}
	if (count == 0) {
		/* The control plane sets SVC_F_REJECT when the service has no endpoint anywhere (a
		 * ClusterIP under ITP Local has no scope-ALL slots, yet endpoints elsewhere). */
		if (svc->flags & SVC_F_REJECT)
			return svc_reject(ctx, pkt, DROP_NO_ENDPOINTS);
		return svc_drop(ctx, scope == SVC_SCOPE_LOCAL ? DROP_NO_LOCAL_ENDPOINTS : DROP_NO_ENDPOINTS);
	}

	/* The generation is read BEFORE the pick, and the flow records it: the backend existed at that
	 * generation or later. Read after the pick, it could be a generation that already covers the
	 * backend's deletion: pick (backend found), control plane deletes it and bumps, read (the new
	 * generation) — the flow would then pass every later generation check with a backend that is
	 * gone, until the next bump. Read before, a deletion racing the pick leaves the flow with an
	 * older generation, so its next packet looks the backend up (and finds it gone). */
	gen = backend_generation();
	if (svc->flags & SVC_F_AFFINITY)
		backend_id = affinity_lookup(pkt, svc, scope, now, &be);
	if (!backend_id) {
		backend_id = lb_pick(pkt, frontend, svc, scope, count, maglev, &be, &reason);
		if (!backend_id)
			return svc_drop(ctx, reason);
	}
	if (svc->flags & SVC_F_AFFINITY)
		affinity_update(pkt, svc, backend_id, now);

	/* The reply entry first: with SNAT its insertion is what reserves the source port. Both
	 * entries go in with BPF_NOEXIST (lib/conntrack.h ct_insert): a CPU that finds the key taken
	 * by a live flow never overwrites it. */
	snat_addr = svc_snat_source(pkt, svc, &be, origin);
	hairpin = snat_addr && be.addr == pkt->saddr && origin != FROM_HOST;
	rev.nat_saddr = pkt->daddr;
	rev.nat_sport = pkt->dport;
	rev.nat_daddr = pkt->saddr;
	rev.nat_dport = pkt->sport;
	rev.backend_id = backend_id;
	rev.be_gen = gen;
	rev.svc_id = svc->svc_id;
	rev.flags = (snat_addr ? CT_F_SNAT : 0) | (external ? CT_F_EXTERNAL : 0) |
		    (hairpin ? CT_F_HAIRPIN : 0);
	ct_init(&rev, pkt, now);
	if (snat_hint)
		rev.state |= CT_S_REOPENED;
	rev.tcp_seen = 0;
	rev.flags |= CT_F_REPLY;
	rev_key.saddr = be.addr;
	rev_key.sport = be.port;
	rev_key.daddr = snat_addr ? snat_addr : pkt->saddr;
	rev_key.dport = pkt->sport;
	rev_key.proto = pkt->proto;
	rev_key.dir = CT_DIR_REPLY;
	rev_key.pad = 0;
	if (snat_addr) {
		bool full;

		if (!snat_reserve(&rev_key, &rev, now, snat_hint, &full))
			return svc_drop(ctx, full ? DROP_CT_FULL : DROP_SNAT_EXHAUSTED);
		own_rev = true;
	} else {
		switch (ct_insert(&rev_key, &rev, now, &held)) {
		case CT_INSERTED:
			own_rev = true;
			break;
		case CT_FULL:
			return svc_drop(ctx, DROP_CT_FULL);
		case CT_HELD:
			/* Another CPU is creating this very flow (its reply tuple, its frontend): the
			 * forward entry decides below which of us made it. Anything else holding the
			 * tuple is another live flow of this client port to this backend (through
			 * another frontend): not ours to break. */
			if (held->nat_saddr == rev.nat_saddr && held->nat_sport == rev.nat_sport &&
			    held->nat_daddr == rev.nat_daddr && held->nat_dport == rev.nat_dport)
				break;
			return svc_drop(ctx, DROP_CT_CREATE);
		default:
			return svc_drop(ctx, DROP_CT_CREATE);
		}
	}

	fwd.nat_saddr = rev_key.daddr;
	fwd.nat_sport = rev_key.dport;
	fwd.nat_daddr = be.addr;
	fwd.nat_dport = be.port;
	fwd.backend_id = backend_id;
	fwd.be_gen = gen;
	fwd.svc_id = svc->svc_id;
	fwd.flags = rev.flags & ~CT_F_REPLY;
	ct_init(&fwd, pkt, now);
	fwd.state = rev.state;
	ct_key_of(&fwd_key, pkt, CT_DIR_FWD);
	r_fwd = ct_insert(&fwd_key, &fwd, now, &held);
	switch (r_fwd) {
	case CT_INSERTED:
		break;
	case CT_HELD:
		/* Another CPU made this flow first (the packet twice, or two packets of a new UDP
		 * flow on two CPUs): its entries are the flow, the packet follows them. Our reply
		 * entry goes, unless it is the winner's too (same backend, same port: the winner's
		 * NOEXIST lost to ours and it went on with it). */
		if (own_rev && !(held->nat_daddr == rev_key.saddr && held->nat_dport == rev_key.sport &&
				 held->nat_saddr == rev_key.daddr && held->nat_sport == rev_key.dport))
			bpf_map_delete_elem(&CT4_MAP, &rev_key);
		ct_refresh(held, pkt, now);
		fwd = *held;
		adopted = true;
		break;
	default:
		if (own_rev)
			bpf_map_delete_elem(&CT4_MAP, &rev_key);
		return svc_drop(ctx, r_fwd == CT_FULL ? DROP_CT_FULL : DROP_CT_CREATE);
	}

	if (nat_apply(ctx, pkt, fwd.nat_saddr, fwd.nat_sport, fwd.nat_daddr, fwd.nat_dport))
		return svc_drop(ctx, DROP_MALFORMED);
	count_svc(ctx, fwd.svc_id, !adopted);
	return (fwd.flags & CT_F_HAIRPIN) ? SVC_BOUNCE : SVC_FORWARD;
}

/* A later fragment to a frontend (lib/frag.h gave it the first fragment's ports): the flow the
 * first fragment found or made, its translation applied to the IP header. Never a new flow (the
 * first fragment decided; if it made none, it was dropped or rejected and so is this), no backend
 * check (the first fragment's decision stands, as a whole packet's would), no refresh (no TCP
 * flags here; the first fragment refreshed the entry). */
static __always_inline int svc_forward_later(ctx_t *ctx, struct pkt4 *pkt, const struct ct4_value *ct)
{
	if (!ct)
		return svc_drop(ctx, DROP_FRAGMENT);
	if (nat_apply_l3(ctx, pkt, ct->nat_saddr, ct->nat_sport, ct->nat_daddr, ct->nat_dport))
		return svc_drop(ctx, DROP_MALFORMED);
	count_svc(ctx, ct->svc_id, false);
	return (ct->flags & CT_F_HAIRPIN) ? SVC_BOUNCE : SVC_FORWARD;
}

/* Does the backend of a forward entry still exist? While no backend was deleted or overwritten
 * since the entry last knew its backend (the generation has not moved), yes, without a hash
 * lookup: the common case. Otherwise be_v1 decides: the id must exist and still name the address
 * the flow was translated to (a FWD entry's nat_daddr is its backend's address: an id reused for
 * another endpoint no longer passes); if it does, the entry learns the current generation.
 * The window: a backend deleted without a bump (the control plane bumps right after its deletes)
 * is still used by established flows until the bump. */
static __always_inline bool ct_backend_valid(struct ct4_value *ct)
{
	__u32 gen = backend_generation();
	struct backend4 *be;

	if (ct->be_gen == gen)
		return true;
	be = bpf_map_lookup_elem(&BACKEND_MAP, &ct->backend_id);
	if (!be || be->addr != ct->nat_daddr)
		return false;
	ct->be_gen = gen;
	return true;
}

/* A packet to a frontend, from a pod of this node or from outside. */
static __always_inline int svc_forward(ctx_t *ctx, struct pkt4 *pkt, enum origin origin)
{
	struct svc4_key frontend;
	struct svc4_value *svc;
	struct ct4_value *ct;
	struct ct4_key key;
	__be16 snat_hint = 0;
	bool external;
	__u64 now;

	svc = svc_lookup(pkt, &frontend);
	if (!svc) {
		if (pkt->proto == IPPROTO_TCP && tcp_opens(pkt))
			ct_retire_closed_clash(pkt, ct_now());
		return SVC_NONE;
	}
	external = svc_external(pkt, svc, origin);
	/* The load balancer IP itself as source (a node that holds it, reaching it) is always allowed,
	 * as kube-proxy's KUBE-FW chain allows it. */
	if ((svc->flags & SVC_F_SOURCE_RANGES) && svc->kind == SVC_KIND_LOAD_BALANCER && pkt->saddr != pkt->daddr &&
	    !lb_source_allowed(pkt, svc))
		return svc_drop(ctx, DROP_SOURCE_RANGE);

	now = ct_now();
	ct_key_of(&key, pkt, CT_DIR_FWD);
	ct = ct_lookup(&key, now);
	if (pkt_later_fragment(pkt))
		return svc_forward_later(ctx, pkt, ct);
	/* A SYN on a closed flow (FIN or RST seen, either way) is the client reusing its port: a new
	 * connection, and a fresh pick (conntrack reopens a closed entry the same way). */
	if (ct && !(tcp_opens(pkt) && ct_flow_closing(&key, ct))) {
		/* Established flows keep their backend, terminating or not, while it exists. */
		if (ct_backend_valid(ct)) {
			ct_refresh(ct, pkt, now);
			if (nat_apply(ctx, pkt, ct->nat_saddr, ct->nat_sport, ct->nat_daddr, ct->nat_dport))
				return svc_drop(ctx, DROP_MALFORMED);
			count_svc(ctx, ct->svc_id, false);
			return (ct->flags & CT_F_HAIRPIN) ? SVC_BOUNCE : SVC_FORWARD;
		}
		/* The backend is gone. A TCP connection cannot move: tell the client now rather than
		 * let it retransmit into the void. UDP flows just pick again (no stale UDP flows). */
		if (pkt->proto == IPPROTO_TCP && !tcp_opens(pkt)) {
			if (pkt->tcp_flags & TCP_FLAG_RST)
				return svc_drop(ctx, DROP_BACKEND_MISSING);
			return svc_reject(ctx, pkt, DROP_BACKEND_MISSING);
		}
	}
	/* A new flow replaces this one: both its entries go. Its SNAT port is the new flow's first
	 * choice, as netfilter reopens a closed entry with its NAT binding: a client whose SYN the
	 * backend refused from a TIME_WAIT of an older connection on that port has just reset it
	 * (ending it) and retransmits at once; on another port it would meet another TIME_WAIT.
	 * Not twice in a row: if the reset did not end it, the next attempt tries other ports. */
	if (ct) {
		if ((ct->flags & CT_F_SNAT) && !(ct_state_of(ct) & CT_S_REOPENED))
			snat_hint = ct->nat_sport;
		ct_retire(&key, ct);
	}
	return svc_new_flow(ctx, pkt, &frontend, svc, origin, external, now, snat_hint);
}

/* A reply of a tracked flow: restore the frontend as source (and the client as destination). */
static __always_inline int svc_reply(ctx_t *ctx, struct pkt4 *pkt)
{
	struct ct4_value *ct;
	struct ct4_key key;
	__u64 now = ct_now();

	ct_key_of(&key, pkt, CT_DIR_REPLY);
	ct = ct_lookup(&key, now);
	if (!ct)
		return SVC_NONE;
	if (pkt_later_fragment(pkt)) {
		/* No TCP flags to account (its first fragment refreshed the entry); no L4 header. */
		if (nat_apply_l3(ctx, pkt, ct->nat_saddr, ct->nat_sport, ct->nat_daddr, ct->nat_dport))
			return svc_drop(ctx, DROP_MALFORMED);
		return (ct->flags & CT_F_HAIRPIN) ? SVC_BOUNCE : SVC_FORWARD;
	}
	ct_refresh(ct, pkt, now);
	if (nat_apply(ctx, pkt, ct->nat_saddr, ct->nat_sport, ct->nat_daddr, ct->nat_dport))
		return svc_drop(ctx, DROP_MALFORMED);
	return (ct->flags & CT_F_HAIRPIN) ? SVC_BOUNCE : SVC_FORWARD;
}

#endif
