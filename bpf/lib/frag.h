/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 fragments of TCP and UDP (layouts in bpfproxy/frag.h). Netfilter reassembles before NAT;
 * a per-packet datapath cannot, so it names each fragment's datagram by the first fragment's
 * ports: the first fragment records them under (saddr, daddr, IP id, proto), and each later one
 * looks them up and then takes the path a whole packet with those ports would take (conntrack
 * finds the first fragment's flow and translation; lib/nat.h rewrites the IP header only).
 *
 * Every first fragment the hook sees is recorded, service or not: whether a datagram is a service
 * flow or a tracked reply is decided on its ports, which a later fragment does not have, so
 * recording only service flows would leave a later fragment of other traffic indistinguishable
 * from one whose first fragment was lost, and the NO_FIRST counter meaningless. Fragments are
 * rare; the cost is one LRU update per first fragment and one lookup per later fragment, on a
 * branch that whole packets never take.
 *
 * A later fragment that arrives before its first, or whose first never came this way, cannot be
 * translated: it passes untouched (its datagram fails reassembly at the destination, as with a
 * lost fragment) and FRAG_STAT_NO_FIRST counts it. Entries are not deleted by the last fragment
 * (fragments may be duplicated or reordered); the LRU evicts them, and a first fragment reusing an
 * IP id overwrites the stale entry. */
#ifndef BPFPROXY_LIB_FRAG_H
#define BPFPROXY_LIB_FRAG_H

#include "lib/counters.h"
#include "lib/ctx.h"
#include "lib/maps.h"
#include "lib/parse.h"

/* A fragment (PARSE_FRAGMENT): true when pkt now carries its datagram's ports and may take the TCP
 * and UDP paths (a later fragment's L4 fields other than the ports stay zero: no TCP flags);
 * false to leave it untouched (not TCP/UDP, a truncated first fragment, no first fragment seen). */
static __always_inline bool frag_track(const ctx_t *ctx, struct pkt4 *pkt)
{
	struct frag4_key key = {
		.saddr = pkt->saddr,
		.daddr = pkt->daddr,
		.id = pkt->ip_id,
		.proto = pkt->proto,
	};
	struct frag4_value *v;

	if (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP)
		return false;
	if (pkt->frag == PKT_FRAG_FIRST) {
		struct frag4_value first = { .sport = pkt->sport, .dport = pkt->dport };

		/* A failed insert only costs the later fragments their translation (counted there). */
		bpf_map_update_elem(&FRAG4_MAP, &key, &first, BPF_ANY);
		count_frag(ctx, FRAG_STAT_FIRST);
		return true;
	}
	if (pkt->frag != PKT_FRAG_LATER)
		return false;
	v = bpf_map_lookup_elem(&FRAG4_MAP, &key);
	if (!v) {
		count_frag(ctx, FRAG_STAT_NO_FIRST);
		return false;
	}
	pkt->sport = v->sport;
	pkt->dport = v->dport;
	count_frag(ctx, FRAG_STAT_LATER);
	return true;
}

#endif
