export { computeDesiredState, backendKey, servicePortName, type ModelInput } from './desired-state.js';
export {
  DEFAULT_PROXY_CONFIG,
  NODE_PORT_ADDRESSES_PRIMARY,
  checkProxyConfig,
  resolveProxyConfig,
  selectNodePortAddresses,
  splitClusterCIDR,
  type AgentPort,
  type ConntrackConfig,
  type NodeInfo,
  type PortRange,
  type ProxyConfig,
  type ProxyConfigInput,
} from './config.js';
export { IdAllocator, type IdAllocatorSnapshot, type IdSyncResult } from './ids.js';
export { maglevTableFor } from './maglev-tables.js';
export { problemReason, type Problem, type ProblemReason } from './problems.js';
export { categorizeEndpoints, topologyModeFromHints, type Categorized, type CategorizeInput } from './categorize.js';
export { collectEndpoints, type EndpointInfo } from './endpoints.js';
export { isProxied, parseService, type ServiceInfo, type ServicePortInfo } from './service.js';
export * from '../util/ip.js';
export * from './types.js';
export { IncrementalModel, type ItemChange, type ModelChanges, type ModelDelta, type ModelSummary, type ObjectChange } from './incremental.js';
export { FrontendRefusals } from './refusals.js';
