/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Conntrack of service flows (layouts in bpfproxy/conntrack.h). Entries expire by a deadline the
 * datapath refreshes; an expired entry is treated as absent, and user-space GC deletes it. TCP
 * lifetimes follow the flags seen: SYN, established, closing (FIN), reset (RST). */
#ifndef BPFPROXY_LIB_CONNTRACK_H
#define BPFPROXY_LIB_CONNTRACK_H

#include "lib/config.h"
#include "lib/maps.h"
#include "lib/parse.h"

/* The clock of every deadline (conntrack, affinity): CLOCK_MONOTONIC, as user space reads it, at
 * the resolution of a tick, which deadlines of seconds can afford. The coarse clock is the time of
 * the last tick; it changes only when jiffies does, and jiffies is one load (the verifier inlines
 * bpf_jiffies64) where bpf_ktime_get_coarse_ns is a call (three, inside): the clock is read once
 * per tick and remembered. The pair is shared by the CPUs running this object, written once a tick
 * and without a lock: a racing reader (or a read between the jiffies update and the timekeeper's)
 * may get a time a tick old, which no deadline of seconds notices. */
__u64 clock_tick;
__u64 clock_tick_ns;

static __always_inline __u64 ct_now(void)
{
	__u64 tick = bpf_jiffies64();

	if (tick != clock_tick) {
		clock_tick_ns = bpf_ktime_get_coarse_ns();
		barrier();
		clock_tick = tick;
	}
	return clock_tick_ns;
}

/* Expired: the deadline has come. Inclusive, so that a lifetime of 0 (perf.ts's way of making
 * every SYN a new flow) ends within the tick that made it. */
static __always_inline bool ct_expired(const struct ct4_value *v, __u64 now)
{
	return v->expires_ns <= now;
}

/* Refreshing a deadline dirties a cache line shared by every CPU carrying the flow: skip
 * refreshes that would move it by less than this. */
#define CT_REFRESH_SLACK_NS NSEC_PER_SEC

static __always_inline void ct_key_of(struct ct4_key *key, const struct pkt4 *pkt, __u8 dir)
{
	key->saddr = pkt->saddr;
	key->daddr = pkt->daddr;
	key->sport = pkt->sport;
	key->dport = pkt->dport;
	key->proto = pkt->proto;
	key->dir = dir;
	key->pad = 0;
}

static __always_inline bool tcp_opens(const struct pkt4 *pkt)
{
	return (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) == TCP_FLAG_SYN;
}

static __always_inline __u64 ct_lifetime_ns(const struct pkt4 *pkt, __u16 ct_flags)
{
	__u32 s;

	if (pkt->proto == IPPROTO_TCP) {
		if (pkt->tcp_flags & TCP_FLAG_RST)
			s = cfg_ct_tcp_reset_s;
		else if ((pkt->tcp_flags & TCP_FLAG_FIN) || (ct_flags & CT_F_CLOSING))
			s = cfg_ct_tcp_closing_s;
		else if (pkt->tcp_flags & TCP_FLAG_SYN)
			s = cfg_ct_tcp_syn_s;
		else
			s = cfg_ct_tcp_established_s;
	} else if (pkt->proto == IPPROTO_UDP) {
		s = cfg_ct_udp_s;
	} else {
		s = cfg_ct_other_s;
	}
	return (__u64)s * NSEC_PER_SEC;
}

/* The live entry for key, or NULL (absent or expired). */
static __always_inline struct ct4_value *ct_lookup(const struct ct4_key *key, __u64 now)
{
	struct ct4_value *v = bpf_map_lookup_elem(&CT4_MAP, key);

	if (!v || ct_expired(v, now))
		return NULL;
	return v;
}

/* Is this packet one we translated already (XDP did, then passed it to tc)? Its reversed tuple is
 * then a live entry: the reply entry of a translated forward packet, the forward entry of a
 * translated reply. *sent becomes the packet as its sender wrote it: the entry's translation,
 * reversed (a reply entry holds frontend → client, a forward entry snat-or-client → backend). */
static __always_inline bool ct_translated(const struct pkt4 *pkt, __u64 now, struct pkt4 *sent)
{
	struct ct4_key key = {
		.saddr = pkt->daddr,
		.daddr = pkt->saddr,
		.sport = pkt->dport,
		.dport = pkt->sport,
		.proto = pkt->proto,
		.dir = CT_DIR_REPLY,
	};
	struct ct4_value *v = ct_lookup(&key, now);

	if (!v) {
		key.dir = CT_DIR_FWD;
		v = ct_lookup(&key, now);
		if (!v)
			return false;
	}
	*sent = *pkt;
	sent->saddr = v->nat_daddr;
	sent->sport = v->nat_dport;
	sent->daddr = v->nat_saddr;
	sent->dport = v->nat_sport;
	return true;
}

/* Accounts a packet to its entry: TCP flags, closing state, deadline. */
static __always_inline void ct_refresh(struct ct4_value *v, const struct pkt4 *pkt, __u64 now)
{
	__u16 flags = v->flags;
	__u64 expires;

	if (pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		flags |= CT_F_CLOSING;
	if (flags != v->flags)
		v->flags = flags;
	if ((v->tcp_seen | pkt->tcp_flags) != v->tcp_seen)
		v->tcp_seen |= pkt->tcp_flags;
	expires = now + ct_lifetime_ns(pkt, flags);
	if (expires < v->expires_ns || expires > v->expires_ns + CT_REFRESH_SLACK_NS)
		v->expires_ns = expires;
}

/* Makes a fresh entry's state for the packet that creates it. */
static __always_inline void ct_init(struct ct4_value *v, const struct pkt4 *pkt, __u64 now)
{
	v->tcp_seen = pkt->tcp_flags;
	v->expires_ns = now + ct_lifetime_ns(pkt, 0);
}

/* The key of the other entry of the flow that v (found under key) belongs to: each entry's NAT
 * tuple is the other's key reversed. */
static __always_inline void ct_other_key_of(struct ct4_key *other, const struct ct4_key *key, const struct ct4_value *v)
{
	other->saddr = v->nat_daddr;
	other->daddr = v->nat_saddr;
	other->sport = v->nat_dport;
	other->dport = v->nat_sport;
	other->proto = key->proto;
	other->dir = key->dir ^ 1;
	other->pad = 0;
}

/* The other entry of the flow, if it still belongs to the flow: a slot may have been taken by a
 * newer flow since (a SNAT port reused after expiry), whose entry must not be touched. */
static __always_inline struct ct4_value *ct_other(struct ct4_key *other, const struct ct4_key *key,
						  const struct ct4_value *v)
{
	struct ct4_value *o;

	ct_other_key_of(other, key, v);
	o = bpf_map_lookup_elem(&CT4_MAP, other);
	if (o && o->nat_saddr == key->daddr && o->nat_daddr == key->saddr && o->nat_sport == key->dport &&
	    o->nat_dport == key->sport)
		return o;
	return NULL;
}

/* Has the flow of entry v seen a FIN or RST, either way? Each entry records its own direction's
 * flags, so a flow closed by the other side needs a look at the other entry. Called on SYNs only. */
static __always_inline bool ct_flow_closing(const struct ct4_key *key, const struct ct4_value *v)
{
	struct ct4_value *o;
	struct ct4_key other;

	if (v->flags & CT_F_CLOSING)
		return true;
	o = ct_other(&other, key, v);
	return o && (o->flags & CT_F_CLOSING);
}

/* Retires the other entry of the flow of v (found under key), when it is still the flow's. */
static __always_inline void ct_retire_other(const struct ct4_key *key, const struct ct4_value *v)
{
	struct ct4_key other;

	if (ct_other(&other, key, v))
		bpf_map_delete_elem(&CT4_MAP, &other);
}

/* A connection opening outside any service (a SYN that matched no frontend) whose reply tuple is
 * the reply entry of a closed service flow: the client reused the source port of a flow it has
 * closed (FIN or RST, either side), this time straight to the backend. Linux conntrack would move
 * the new flow to another port; plain traffic has no NAT here, so the closed flow gives way: both
 * its entries are retired, and the backend's answers pass untranslated instead of being turned
 * into replies of the dead flow. A live flow is left alone: a stray SYN must not end it. */
static __always_inline void ct_retire_closed_clash(const struct pkt4 *pkt, __u64 now)
{
	struct ct4_key key = {
		.saddr = pkt->daddr,
		.daddr = pkt->saddr,
		.sport = pkt->dport,
		.dport = pkt->sport,
		.proto = pkt->proto,
		.dir = CT_DIR_REPLY,
	};
	struct ct4_value *rv = ct_lookup(&key, now);

	if (!rv || !ct_flow_closing(&key, rv))
		return;
	ct_retire_other(&key, rv);
	bpf_map_delete_elem(&CT4_MAP, &key);
}

/* Takes a SNAT source port for a flow whose reply will be `reply` (its dport is chosen here) and
 * inserts the reply entry. The reply tuple must be unique: ports already taken (an entry exists
 * and is alive) are skipped, up to SNAT_TRIES random tries. Returns the port, 0 when exhausted. */
#define SNAT_TRIES 16

static __always_inline __be16 snat_reserve(struct ct4_key *reply, const struct ct4_value *rv, __u64 now)
{
	__u32 range = cfg_snat_port_max - cfg_snat_port_min + 1;
	int i;

	for (i = 0; i < SNAT_TRIES; i++) {
		struct ct4_value *old;

		reply->dport = bpf_htons(cfg_snat_port_min + bpf_get_prandom_u32() % range);
		if (!bpf_map_update_elem(&CT4_MAP, reply, rv, BPF_NOEXIST))
			return reply->dport;
		old = bpf_map_lookup_elem(&CT4_MAP, reply);
		if (old && ct_expired(old, now) && !bpf_map_update_elem(&CT4_MAP, reply, rv, BPF_EXIST))
			return reply->dport;
	}
	return 0;
}

#endif
