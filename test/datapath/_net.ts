/** The address plan of the packet tests (shared/reference/lab.md): RFC 2544 space only. */
import type { DatapathConfig } from '../../ts/abi/index.js';
import { resolveAgentConfig } from '../../ts/agent/config.js';
import { datapathConfigFor } from '../../ts/agent/datapath-config.js';

/** Node 1's view of the lab. */
export const NET = {
  node1: '198.18.0.11',
  node2: '198.18.0.12',
  client: '198.18.0.100',
  client2: '198.18.0.101',
  podCidr: '198.18.128.0/17',
  pod1a: '198.18.129.10', // pods on node 1
  pod1b: '198.18.129.11',
  pod2a: '198.18.130.10', // pods on node 2
  pod2b: '198.18.130.11',
  clusterIp: '198.19.0.10',
  clusterIp2: '198.19.0.20',
  lbIp: '198.19.255.10',
  externalIp: '198.19.255.20',
} as const;

/**
 * Node 1's datapath as its agent configures it (the lab's config file: clusterCIDR set), through
 * the agent's own code; a test that needs another value says so in its setup.
 */
export const defaultConfig: DatapathConfig = datapathConfigFor(resolveAgentConfig({ clusterCIDR: NET.podCidr }, {}, 'node-1'), NET.node1).config;

/** Where hairpin traffic comes from: what the agent sets (the node address). */
export const HAIRPIN = defaultConfig.hairpinIp!;

