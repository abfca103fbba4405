/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Load-time configuration (.rodata): the loader sets these before load, the verifier sees them as
 * constants and prunes what a node does not use. The defaults here are the only defaults;
 * addresses are in network order (the loader passes them as 4-byte Buffers). */
#ifndef BPFPROXY_LIB_CONFIG_H
#define BPFPROXY_LIB_CONFIG_H

#include <linux/types.h>

/* Source of masqueraded traffic (lib/translate.h says which); replies to it are looked up in conntrack on the uplink. */
const volatile __be32 cfg_node_ip = 0;
/* Source of hairpin traffic (a pod reaching itself through its service): an address the pod does
 * not own and routes to its node, so the reply comes back through tc_pod. */
const volatile __be32 cfg_hairpin_ip = 0;

/* SNAT source ports. Above the kernel's default ip_local_port_range (32768-60999) and far from
 * NodePorts (30000-32767): the control plane keeps the kernel's range below cfg_snat_port_min. */
const volatile __u32 cfg_snat_port_min = 61000;
const volatile __u32 cfg_snat_port_max = 65535;

/* Conntrack lifetimes, seconds, by flow state (lib/conntrack.h): netfilter's, which is what a
 * kube-proxy flow lives on. The agent sets established and CLOSE_WAIT from kube-proxy's
 * tcpEstablishedTimeout and tcpCloseWaitTimeout, UDP from udpTimeout and udpStreamTimeout. */
const volatile __u32 cfg_ct_tcp_syn_s = 120;           /* SYN_SENT: no answer yet */
const volatile __u32 cfg_ct_tcp_established_s = 86400;
const volatile __u32 cfg_ct_tcp_close_wait_s = 3600;   /* a FIN one way: half-closed */
const volatile __u32 cfg_ct_tcp_time_wait_s = 120;     /* FINs both ways */
const volatile __u32 cfg_ct_tcp_reset_s = 10;          /* CLOSE: an RST either way */
const volatile __u32 cfg_ct_udp_s = 30;                /* unreplied */
const volatile __u32 cfg_ct_udp_stream_s = 120;        /* replied */
const volatile __u32 cfg_ct_other_s = 30;

/* Size of every Maglev table (a prime, 251..131071); the inner arrays of maglev_v1 have it. */
const volatile __u32 cfg_maglev_m = 16381;

/* Forward translated north-south packets with bpf_fib_lookup + redirect (else: to the stack). */
const volatile __u32 cfg_fib_redirect = 1;

#define NSEC_PER_SEC 1000000000ULL

#endif
