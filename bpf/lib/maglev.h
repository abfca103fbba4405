/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maglev lookup: the table is built in user space (ts/maglev), one inner array per service. */
#ifndef BPFPROXY_LIB_MAGLEV_H
#define BPFPROXY_LIB_MAGLEV_H

#include "lib/config.h"
#include "lib/hash.h"
#include "lib/maps.h"

/* The table of svc_id, or NULL while the control plane has not written one. */
static __always_inline void *maglev_table(__u32 svc_id)
{
	return bpf_map_lookup_elem(&MAGLEV_MAP, &svc_id);
}

/* The backend id at position idx (taken modulo M), 0 for none. */
static __always_inline __u32 maglev_entry(void *table, __u32 idx)
{
	__u32 *id;

	idx %= cfg_maglev_m;
	id = bpf_map_lookup_elem(table, &idx);
	return id ? *id : 0;
}

#endif
