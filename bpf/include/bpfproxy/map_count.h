/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The element count of each hash map of the datapath, as the kernel keeps it: the context of
 * map_count.bpf.c's syscall program, which fills it in (one field per map, named as ts/abi/maps.ts
 * names the map). Exact and O(CPUs) per map, however full. LPM tries keep no such count (the agent
 * writes every one of their entries itself) and arrays are full by construction: neither is here. */
#ifndef BPFPROXY_MAP_COUNT_H
#define BPFPROXY_MAP_COUNT_H

#include <linux/types.h>

struct map_counts {
	__s64 svc4;
	__s64 backends;
	__s64 ct4;
	__s64 aff4;
	__s64 nodeaddr4;
	__s64 maglev;
	__s64 frag4;
};

#endif
