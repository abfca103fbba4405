// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Map occupancy: how many elements each hash map of the datapath holds, exactly. The kernel
 * counts a hash map's elements per CPU as it inserts and deletes them, and the kfunc
 * bpf_map_sum_elem_count (Linux 6.6) sums them: no walk of the table, and nothing estimated (the
 * agent's own writes miss what the datapath inserts: conntrack, affinity, fragments). The agent
 * runs this once per check (BPF_PROG_TEST_RUN on a syscall program) with the maps shared through
 * their pins. A kfunc is resolved against the kernel's BTF: the one part of the datapath that
 * needs it, kept in its own object so that a kernel without BTF loses only this count. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpfproxy/map_count.h"
#include "lib/maps.h"

/* Only its name matters to the kfunc's BTF check: a pointer to the kernel's struct bpf_map. */
struct bpf_map {
	__u32 id;
} __attribute__((preserve_access_index));

extern __s64 bpf_map_sum_elem_count(const struct bpf_map *map) __ksym;

#define COUNT(map) bpf_map_sum_elem_count((const struct bpf_map *)&(map))

SEC("syscall")
int map_count(struct map_counts *out)
{
	out->svc4 = COUNT(SVC4_MAP);
	out->backends = COUNT(BACKEND_MAP);
	out->ct4 = COUNT(CT4_MAP);
	out->aff4 = COUNT(AFF4_MAP);
	out->nodeaddr4 = COUNT(NODEADDR4_MAP);
	out->maglev = COUNT(MAGLEV_MAP);
	out->frag4 = COUNT(FRAG4_MAP);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
