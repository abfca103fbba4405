/**
 * The enums and flags of bpf/include/bpfproxy/*.h. Values are part of the ABI: drift-tested
 * against the header text (test/abi/drift.test.ts), by C enum name.
 */

/** enum svc_scope */
export const SvcScope = { ALL: 0, LOCAL: 1 } as const;

/** enum svc_kind */
export const SvcKind = { CLUSTER_IP: 1, NODE_PORT: 2, LOAD_BALANCER: 3, EXTERNAL_IP: 4 } as const;

/** enum svc_flags */
export const SvcFlags = {
  ETP_LOCAL: 1 << 0,
  ITP_LOCAL: 1 << 1,
  AFFINITY: 1 << 2,
  SOURCE_RANGES: 1 << 3,
  REJECT: 1 << 4,
  MAGLEV: 1 << 5,
  TERM_FALLBACK: 1 << 6,
  /** Masquerade every new flow (masqueradeAll, on ClusterIP frontends). */
  MASQUERADE: 1 << 7,
  /** The cluster CIDRs (clustercidr4_v1) tell cluster sources from others. */
  DETECT_LOCAL: 1 << 8,
} as const;

/** enum backend_flags */
export const BackendFlags = { LOCAL: 1 << 0, TERMINATING: 1 << 1 } as const;

/** enum ct_dir */
export const CtDir = { FWD: 0, REPLY: 1 } as const;

/** enum ct_flags */
export const CtFlags = { SNAT: 1 << 0, HAIRPIN: 1 << 1, EXTERNAL: 1 << 2, CLOSING_V2: 1 << 3, REPLY: 1 << 4 } as const;

/** enum ct_state: what a flow has seen, either way (ct4_value.state, the same in both entries). */
export const CtState = { REPLIED: 1 << 0, FIN_FWD: 1 << 1, FIN_REPLY: 1 << 2, RST: 1 << 3, REOPENED: 1 << 4, CLAIMED: 1 << 7 } as const;

/** The netfilter state name a flow's state bits stand for (lib/conntrack.h ct_lifetime_ns). */
export function ctStateName(proto: number, state: bigint | number): string {
  const s = Number(state);
  if (proto === 6) {
    if (s & CtState.RST) return 'CLOSE';
    const fins = s & (CtState.FIN_FWD | CtState.FIN_REPLY);
    if (fins === (CtState.FIN_FWD | CtState.FIN_REPLY)) return 'TIME_WAIT';
    if (fins) return 'CLOSE_WAIT';
    return s & CtState.REPLIED ? 'ESTABLISHED' : 'SYN_SENT';
  }
  return s & CtState.REPLIED ? 'REPLIED' : 'UNREPLIED';
}

/** Has the flow seen a FIN or RST (either way)? A SYN on such a flow opens a new one. */
export const ctClosing = (state: bigint | number): boolean => (Number(state) & (CtState.FIN_FWD | CtState.FIN_REPLY | CtState.RST)) !== 0;

/** Is the flow over: TIME_WAIT (FINs both ways) or CLOSE (an RST)? lib/conntrack.h ct_reusable lets a new flow take it. */
export function ctClosed(state: bigint | number): boolean {
  const s = Number(state);
  const fins = CtState.FIN_FWD | CtState.FIN_REPLY;
  return (s & CtState.RST) !== 0 || (s & fins) === fins;
}

/** enum frag_stat: the counters of fragstat_v1 (stable numbers, append only). */
export const FragStat = {
  /** First fragments (offset 0, MF) of TCP/UDP: ports recorded in frag4_v1. */
  FIRST: 0,
  /** Later fragments whose first fragment's ports were found. */
  LATER: 1,
  /** Later fragments whose first fragment was not seen: passed untouched. */
  NO_FIRST: 2,
} as const;

/** fragstat_v1's size (FRAGSTAT_MAP_SIZE): room for counters to come. */
export const FRAG_STAT_SLOTS = 8;

/** The C enums above, by C name and with the C prefix of their members, for the drift test. */
export const cEnums: Record<string, { prefix: string; values: Record<string, number> }> = {
  svc_scope: { prefix: 'SVC_SCOPE_', values: SvcScope },
  svc_kind: { prefix: 'SVC_KIND_', values: SvcKind },
  svc_flags: { prefix: 'SVC_F_', values: SvcFlags },
  backend_flags: { prefix: 'BACKEND_F_', values: BackendFlags },
  ct_dir: { prefix: 'CT_DIR_', values: CtDir },
  ct_flags: { prefix: 'CT_F_', values: CtFlags },
  ct_state: { prefix: 'CT_S_', values: CtState },
  frag_stat: { prefix: 'FRAG_STAT_', values: FragStat },
};

/** The size of every Maglev table unless configured (MAGLEV_M_DEFAULT). */
export const MAGLEV_M_DEFAULT = 16381;

/** BPF_F_INNER_MAP: the flag the inner arrays of maglev_v1 must carry. */
export const BPF_F_INNER_MAP = 1 << 12;

export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, SCTP: 132 } as const;
