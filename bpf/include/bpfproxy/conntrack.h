/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking of service flows. A flow has two entries in ct4_v4 (a hash: lib/conntrack.h):
 *   CT_DIR_FWD   keyed by the tuple as the client sent it (client -> frontend); holds the backend;
 *   CT_DIR_REPLY keyed by the tuple as the reply arrives (backend -> client or SNAT address); holds
 *                what the reply must become. The reply entries double as the SNAT port table: a
 *                SNAT port is taken by inserting its reply entry with BPF_NOEXIST.
 * The flow's state (enum ct_state) and deadline are the flow's, not an entry's: both entries carry
 * them and every change is written to both, so that they live and die together (lib/conntrack.h). */
#ifndef BPFPROXY_CONNTRACK_H
#define BPFPROXY_CONNTRACK_H

#include <linux/types.h>

enum ct_dir {
	CT_DIR_FWD = 0,
	CT_DIR_REPLY = 1,
};

struct ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir; /* enum ct_dir */
	__u16 pad;
};

enum ct_flags {
	CT_F_SNAT = 1 << 0,     /* source rewritten too (masquerade, ETP Cluster, hairpin) */
	CT_F_HAIRPIN = 1 << 1,  /* the client is its own backend: replies go back out its interface */
	CT_F_EXTERNAL = 1 << 2, /* entered through the uplink */
	CT_F_CLOSING_V2 = 1 << 3, /* ct4_v2 only ("FIN or RST seen"): ct4_v3 on keep it in state */
	CT_F_REPLY = 1 << 4,    /* the flow's reply entry (its key's dir is CT_DIR_REPLY) */
};

/* What the flow has seen, either way: it decides the lifetime (netfilter's TCP state table, reduced
 * to what the deadline needs; lib/conntrack.h ct_lifetime_ns). Bits are only ever added (atomic OR),
 * and a state is read from them: no reply yet = SYN_SENT (UDP: unreplied), REPLIED = ESTABLISHED
 * (UDP: stream), one FIN = CLOSE_WAIT, both FINs = TIME_WAIT, RST = CLOSE. */
enum ct_state {
	CT_S_REPLIED = 1 << 0,   /* the backend has answered (a packet on the reply entry) */
	CT_S_FIN_FWD = 1 << 1,   /* FIN from the client */
	CT_S_FIN_REPLY = 1 << 2, /* FIN from the backend */
	CT_S_RST = 1 << 3,       /* RST, either way */
	CT_S_REOPENED = 1 << 4,  /* made by a SYN on a closed flow, its SNAT port offered again (translate.h) */
	/* Set (compare-and-swap) by the one CPU that retires or takes over this entry: an entry is
	 * replaced or deleted only by the CPU that claimed it (lib/conntrack.h ct_claim). */
	CT_S_CLAIMED = 1 << 7,
};

struct ct4_value {
	/* The packet's addresses and ports after translation:
	 *   FWD:   saddr/sport = client or SNAT source, daddr/dport = backend;
	 *   REPLY: saddr/sport = frontend, daddr/dport = client. */
	__be32 nat_saddr;
	__be32 nat_daddr;
	__be16 nat_sport;
	__be16 nat_dport;
	__u32 backend_id;
	__u32 svc_id;
	__u16 flags;    /* enum ct_flags */
	__u8 tcp_seen;  /* TCP flags seen in this direction */
	__u8 pad;
	__u64 expires_ns; /* CLOCK_MONOTONIC deadline (lib/conntrack.h ct_now); user-space GC removes expired ones */
	/* ct4_v2. The backend generation (begen_v1) at which backend_id was last known to exist with
	 * address nat_daddr (FWD); the REPLY entry gets the same value at creation and is not kept up to
	 * date (the reply path does not check the backend). */
	__u32 be_gen;
	__u32 pad2;
	/* ct4_v3. enum ct_state bits, the same in both entries of a flow; a u64 for the BPF atomics
	 * (64-bit ones need no -mcpu=v3). */
	__u64 state;
};

#endif
