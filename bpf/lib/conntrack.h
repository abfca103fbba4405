/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Conntrack of service flows (layouts in bpfproxy/conntrack.h). Entries expire by a deadline the
 * datapath refreshes; an expired entry is treated as absent, and user-space GC deletes it.
 *
 * A flow is one state in two entries. Its lifetime follows netfilter's TCP state table, reduced to
 * the states whose timeouts differ: SYN_SENT until the backend answers (also a flow a lone
 * mid-stream ACK made, picked by Maglev: nothing proves it established), ESTABLISHED, CLOSE_WAIT
 * after a FIN one way, TIME_WAIT after FINs both ways, CLOSE after an RST; UDP unreplied or stream.
 * Both entries carry the flow's state and deadline, and every change is made to both (the packet's
 * own entry, then the other): the reply entry is the SNAT port's reservation, so it must not outlive
 * the flow (a port held for nothing) nor die before it (a port given to a second flow while the
 * first still uses it). Changes come from two directions on any CPUs at once; the rules that keep
 * both entries right without a lock:
 *   - state bits are only added, with an atomic OR on each entry: both end with the union, whatever
 *     the order (a FIN each way on two CPUs makes TIME_WAIT, never one lost FIN);
 *   - a deadline is written (atomic exchange, a full barrier) from the state read before it, and
 *     the state is read again after: if it moved, the deadline is written again. The last bit set
 *     is followed by its CPU's write; any CPU whose write lands after that reads the state after it
 *     and so writes the final state's deadline too. The last deadline is always the final state's;
 *   - an entry is deleted or replaced only by the CPU that claimed it (compare-and-swap of
 *     CT_S_CLAIMED into its state), and only when its flow is over (expired, TIME_WAIT, CLOSE) or
 *     being replaced on purpose (a reopening SYN, a backend gone): two CPUs never both take a port.
 * Creation inserts both entries with BPF_NOEXIST; a CPU that loses adopts the winner's flow.
 *
 * A full table refuses new flows and keeps the ones it has, as netfilter's does ("table full,
 * dropping packet"): ct4_v4 is a plain hash, whose insert fails with -E2BIG when no element is
 * free (an LRU hash would evict a live flow's entry instead, silently breaking the flow, or one of
 * its two entries). The new flow's packet is dropped as DROP_CT_FULL; room comes back as user-space
 * GC deletes expired flows, and closed ones when the table is under pressure. */
#ifndef BPFPROXY_LIB_CONNTRACK_H
#define BPFPROXY_LIB_CONNTRACK_H

#include "lib/config.h"
#include "lib/maps.h"
#include "lib/parse.h"

#define CT_E2BIG 7 /* E2BIG: a full hash map's answer to an insert (no <errno.h> for BPF) */

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

#define CT_S_FINS (CT_S_FIN_FWD | CT_S_FIN_REPLY)
#define CT_S_ENDING (CT_S_FINS | CT_S_RST)

/* The state's lifetime (lib/config.h). */
static __always_inline __u64 ct_lifetime_ns(__u8 proto, __u64 state)
{
	__u32 s;

	if (proto == IPPROTO_TCP) {
		if (state & CT_S_RST)
			s = cfg_ct_tcp_reset_s;
		else if ((state & CT_S_FINS) == CT_S_FINS)
			s = cfg_ct_tcp_time_wait_s;
		else if (state & CT_S_FINS)
			s = cfg_ct_tcp_close_wait_s;
		else if (state & CT_S_REPLIED)
			s = cfg_ct_tcp_established_s;
		else
			s = cfg_ct_tcp_syn_s;
	} else if (proto == IPPROTO_UDP) {
		s = (state & CT_S_REPLIED) ? cfg_ct_udp_stream_s : cfg_ct_udp_s;
	} else {
		s = cfg_ct_other_s;
	}
	return (__u64)s * NSEC_PER_SEC;
}

/* What a packet adds to its flow's state; reply: it came in on the reply entry. */
static __always_inline __u64 ct_bits_of(const struct pkt4 *pkt, bool reply)
{
	__u64 bits = reply ? CT_S_REPLIED : 0;

	if (pkt->proto == IPPROTO_TCP) {
		if (pkt->tcp_flags & TCP_FLAG_RST)
			bits |= CT_S_RST;
		if (pkt->tcp_flags & TCP_FLAG_FIN)
			bits |= reply ? CT_S_FIN_REPLY : CT_S_FIN_FWD;
	}
	return bits;
}

static __always_inline __u64 ct_state_of(const struct ct4_value *v)
{
	return *(const volatile __u64 *)&v->state;
}

/* Is the flow over, so that a new flow may take this entry's key (its SNAT port, its client
 * tuple)? Expired, or closed: TIME_WAIT or CLOSE, whose remaining seconds only absorb stray
 * segments (netfilter lets a new connection take a closing flow's tuple too). Never while another
 * CPU holds its claim. */
static __always_inline bool ct_reusable(const struct ct4_value *v, __u64 state, __u64 now)
{
	if (state & CT_S_CLAIMED)
		return false;
	return ct_expired(v, now) || (state & CT_S_RST) || (state & CT_S_FINS) == CT_S_FINS;
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

/* Makes a fresh flow's state (the same in both its entries) for the packet that creates it. */
static __always_inline void ct_init(struct ct4_value *v, const struct pkt4 *pkt, __u64 now)
{
	v->tcp_seen = pkt->tcp_flags;
	v->state = ct_bits_of(pkt, false);
	v->expires_ns = now + ct_lifetime_ns(pkt->proto, v->state);
}

/* Writes the deadline of the entry's state; see the top of this file for why the state is read
 * again after the write. Each pass follows a state change, of which there are at most five. */
static __always_inline void ct_set_deadline(struct ct4_value *v, __u8 proto, __u64 now)
{
	__u64 state = ct_state_of(v);
	int i;

	for (i = 0; i < 6; i++) {
		__u64 again;

		__sync_lock_test_and_set(&v->expires_ns, now + ct_lifetime_ns(proto, state));
		again = ct_state_of(v);
		if (again == state)
			break;
		state = again;
	}
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

/* Accounts a packet to its flow: state and deadline, in both entries. A packet that changes
 * neither (the deadline moves by less than the slack) writes nothing: the common case, one lookup.
 * v is the entry the packet was found under, its key the packet's tuple (before translation). */
static __always_inline void ct_refresh(struct ct4_value *v, const struct pkt4 *pkt, __u64 now)
{
	bool reply = v->flags & CT_F_REPLY;
	__u64 bits = ct_bits_of(pkt, reply);
	__u64 state = ct_state_of(v);
	struct ct4_key key, other;
	struct ct4_value *o;

	if ((v->tcp_seen | pkt->tcp_flags) != v->tcp_seen)
		v->tcp_seen |= pkt->tcp_flags;
	if (!(bits & ~state) && now + ct_lifetime_ns(pkt->proto, state) <= v->expires_ns + CT_REFRESH_SLACK_NS)
		return;
	ct_key_of(&key, pkt, reply ? CT_DIR_REPLY : CT_DIR_FWD);
	o = ct_other(&other, &key, v);
	if (bits & ~state) {
		__sync_fetch_and_or(&v->state, bits);
		if (o)
			__sync_fetch_and_or(&o->state, bits);
	}
	ct_set_deadline(v, pkt->proto, now);
	if (o)
		ct_set_deadline(o, pkt->proto, now);
}

/* Has the flow of entry v seen a FIN or RST, either way? Called on SYNs only. */
static __always_inline bool ct_flow_closing(const struct ct4_key *key, const struct ct4_value *v)
{
	return ct_state_of(v) & CT_S_ENDING;
}

/* Claims the entry v found under key, seen in `state`, for this CPU alone: the compare-and-swap
 * fails when another CPU claimed it first, or when the state moved since it was read (then the
 * caller's decision is stale). The element may have been replaced and its memory reused between
 * the lookup and the swap: the claim counts only if key still leads to v (otherwise an unrelated
 * entry carries CT_S_CLAIMED: it cannot be taken over, and simply expires). */
static __always_inline bool ct_claim(const struct ct4_key *key, struct ct4_value *v, __u64 state)
{
	if (__sync_val_compare_and_swap(&v->state, state, state | CT_S_CLAIMED) != state)
		return false;
	return bpf_map_lookup_elem(&CT4_MAP, key) == v;
}

/* Deletes entry v (found under key) if this CPU claims it. */
static __always_inline void ct_retire_entry(const struct ct4_key *key, struct ct4_value *v)
{
	__u64 state = ct_state_of(v);

	if (!(state & CT_S_CLAIMED) && ct_claim(key, v, state))
		bpf_map_delete_elem(&CT4_MAP, key);
}

/* Retires the other entry of the flow of v (found under key), when it is still the flow's. */
static __always_inline void ct_retire_other(const struct ct4_key *key, const struct ct4_value *v)
{
	struct ct4_key other;
	struct ct4_value *o = ct_other(&other, key, v);

	if (o)
		ct_retire_entry(&other, o);
}

/* Retires the flow of v (found under key): both its entries, for a new flow to take its place. */
static __always_inline void ct_retire(const struct ct4_key *key, struct ct4_value *v)
{
	ct_retire_other(key, v);
	ct_retire_entry(key, v);
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
	ct_retire(&key, rv);
}

enum ct_insert_result {
	CT_INSERTED, /* the key is the new flow's */
	CT_HELD,     /* a live flow holds the key (returned in *held) */
	CT_BUSY,     /* another CPU is retiring or taking over the key's entry, or the map refused */
	CT_FULL,     /* the key is free but the table is full */
};

/* An insert of an absent key (BPF_NOEXIST). A full map says -E2BIG; a taken key says -EEXIST
 * before the kernel looks for room, so E2BIG always means "no room", never "taken". */
static __always_inline enum ct_insert_result ct_insert_new(const struct ct4_key *key, const struct ct4_value *v)
{
	long err = bpf_map_update_elem(&CT4_MAP, key, v, BPF_NOEXIST);

	if (!err)
		return CT_INSERTED;
	return err == -CT_E2BIG ? CT_FULL : CT_HELD;
}

/* Inserts a new flow's entry: BPF_NOEXIST, so that of two CPUs creating entries under one key one
 * wins and the other learns it. A key held by a flow that is over (ct_reusable) is taken over at
 * once: claimed, then replaced (BPF_EXIST; if GC deleted it meanwhile, inserted). */
static __always_inline enum ct_insert_result ct_insert(const struct ct4_key *key, const struct ct4_value *v, __u64 now,
						       struct ct4_value **held)
{
	enum ct_insert_result r = ct_insert_new(key, v);
	struct ct4_value *old;
	__u64 state;

	if (r != CT_HELD)
		return r;
	old = bpf_map_lookup_elem(&CT4_MAP, key);
	if (!old) {
		r = ct_insert_new(key, v);
		return r == CT_HELD ? CT_BUSY : r;
	}
	state = ct_state_of(old);
	if (state & CT_S_CLAIMED)
		return CT_BUSY;
	if (!ct_reusable(old, state, now)) {
		*held = old;
		return CT_HELD;
	}
	if (!ct_claim(key, old, state))
		return CT_BUSY;
	/* The flow that is over goes as a whole: its other entry would still translate its stray
	 * segments into the new flow's tuple. Replacing an element needs no free one. */
	ct_retire_other(key, old);
	if (!bpf_map_update_elem(&CT4_MAP, key, v, BPF_EXIST))
		return CT_INSERTED;
	r = ct_insert_new(key, v);
	return r == CT_HELD ? CT_BUSY : r;
}

/* Takes a SNAT source port for a flow whose reply will be `reply` (its dport is chosen here) and
 * inserts the reply entry. The reply tuple must be unique. First the hint (a reopened flow's old
 * port, translate.h) if it is free; else, of SNAT_TRIES random ports, the first free one; if none
 * is, of those whose flow is over (ct_reusable), the one with the earliest deadline, taken over
 * (ct_insert): an expired one, else the one that closed longest ago. Ports of live flows never.
 * Returns the port, 0 when none was found; then *full tells whether a free port was found with no
 * room in the table for it (DROP_CT_FULL: the table is what is short, not the port range).
 * Why the oldest: the backend may still hold a closed flow's tuple in TIME_WAIT (60 s on Linux, on
 * the side that closed first) and accepts a new SYN on it only if the SYN's timestamp (or sequence
 * number) is newer than the old connection's, a coin toss (Linux randomises timestamp offsets per
 * 4-tuple). On a lost toss the backend answers with a bare ACK, the client resets (which ends
 * that TIME_WAIT) and retransmits at once, and the reopened flow gets the same port back (the
 * hint); the older the closed flow, the likelier the backend has let go already. New connections
 * to one backend faster than the SNAT range over 60 s (4536 / 60 = 75 a second by default;
 * netfilter's 64k ports: 1,000 a second) meet such TIME_WAITs. */
#define SNAT_TRIES 16

static __always_inline __be16 snat_reserve(struct ct4_key *reply, const struct ct4_value *rv, __u64 now, __be16 hint,
					   bool *full)
{
	__u32 range = cfg_snat_port_max - cfg_snat_port_min + 1;
	__u64 best_expires = ~0ULL;
	enum ct_insert_result r;
	struct ct4_value *held;
	__be16 best = 0;
	int i;

	*full = false;
	if (hint) {
		reply->dport = hint;
		r = ct_insert_new(reply, rv);
		if (r == CT_INSERTED)
			return hint;
		*full = r == CT_FULL;
	}
	for (i = 0; i < SNAT_TRIES; i++) {
		struct ct4_value *old;

		reply->dport = bpf_htons(cfg_snat_port_min + bpf_get_prandom_u32() % range);
		r = ct_insert_new(reply, rv);
		if (r == CT_INSERTED)
			return reply->dport;
		if (r == CT_FULL) {
			/* A free port, and no room for it; a closed flow's port needs none. */
			*full = true;
			continue;
		}
		old = bpf_map_lookup_elem(&CT4_MAP, reply);
		if (!old || !ct_reusable(old, ct_state_of(old), now))
			continue;
		if (old->expires_ns < best_expires) {
			best_expires = old->expires_ns;
			best = reply->dport;
		}
	}
	if (!best)
		return 0;
	reply->dport = best;
	r = ct_insert(reply, rv, now, &held);
	if (r == CT_INSERTED) {
		*full = false;
		return best;
	}
	*full = *full || r == CT_FULL;
	return 0;
}

#endif
