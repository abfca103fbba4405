// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The floor of BPF_PROG_TEST_RUN: programs that return at once. The benchmark compares the
 * datapath's per-packet cost with these (docs/benchmarks.md, scenario 3). No headers, so that
 * it builds with nothing but clang. */
#define SEC(name) __attribute__((section(name), used))

SEC("tc") int empty_tc(void *ctx)
{
	(void)ctx;
	return 0; /* TC_ACT_OK */
}

SEC("xdp") int empty_xdp(void *ctx)
{
	(void)ctx;
	return 2; /* XDP_PASS */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
