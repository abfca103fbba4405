/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 fragments of TCP and UDP. Only the first fragment of a datagram carries the L4 header; the
 * datapath remembers its ports in frag4_v1 (LRU), keyed by what every fragment of the datagram
 * shares (RFC 791: source, destination, protocol, identification), so that the later fragments
 * take the first one's path: the same conntrack entry, the same translation, applied to the IP
 * header only. fragstat_v1 counts what happened to fragments (per-CPU, indexed by enum
 * frag_stat). */
#ifndef BPFPROXY_FRAG_H
#define BPFPROXY_FRAG_H

#include <linux/types.h>

struct frag4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id; /* IP identification, as on the wire */
	__u8 proto;
	__u8 pad;
};

struct frag4_value {
	__be16 sport;
	__be16 dport;
};

/* Indexes of fragstat_v1. Stable numbers, as with enum drop_reason: append only. */
enum frag_stat {
	FRAG_STAT_FIRST = 0,    /* first fragments (offset 0, MF) of TCP/UDP: ports recorded */
	FRAG_STAT_LATER = 1,    /* later fragments whose first fragment's ports were found */
	FRAG_STAT_NO_FIRST = 2, /* later fragments whose first fragment was not seen (lost, late, or evicted): passed untouched */
	FRAG_STAT_MAX           /* not a counter: the number in use */
};

struct frag_stats {
	__u64 packets;
	__u64 bytes;
};

#endif
