// kube-proxy's iptables and nftables layouts generated from the model, and loading them into a
// namespace: the baselines bpfproxy is measured against (docs/benchmarks.md "Baselines").
export { baselineView, type BaselineInput, type BaselineView, type Endpoint, type ServicePortView } from './service-ports.js';
export { IPTABLES_JUMPS, LARGE_CLUSTER_ENDPOINTS, MASQUERADE_MARK, iptablesRestoreInput, probability, type IptablesJump } from './iptables.js';
export { NFT_TABLE, nftablesScript, type NftablesOptions } from './nftables.js';
export { IPTABLES_VARIANTS, applyIptables, applyNftables, checkIptables, checkNftables, resetBaselines, systemTool, type ApplyOptions, type IptablesVariant } from './apply.js';
export { iptablesChains, nftEndpointBase, nftServiceBase } from './chain-names.js';
export {
  MAX_SYNTHETIC_SERVICES,
  SYNTHETIC_CLUSTER_CIDR,
  SYNTHETIC_NAMESPACE,
  SYNTHETIC_PORT,
  SYNTHETIC_TARGET_PORT,
  generateScale,
  syntheticClusterIP,
  syntheticEndpoint,
  syntheticService,
  syntheticServiceName,
  syntheticSlices,
  type SyntheticOptions,
} from './synthetic.js';
