/**
 * `bpfproxy agent`: runs the agent on this node (in this network namespace). Flags carry
 * kube-proxy's names and override the config file (kind BpfProxyConfiguration). Logs are JSON
 * lines on standard error (`--log-format text` for people); supervisors wait for the line whose
 * msg is "agent ready". SIGTERM/SIGINT stop it and keep the datapath running.
 */
import { hostname } from 'node:os';

import { Command, InvalidArgumentError, Option } from 'commander';

import type { Agent } from '../agent/agent.js';
import { ConfigError, readConfigFile, resolveAgentConfig } from '../agent/config.js';
import { createLogger, type LogFormat } from '../agent/logger.js';

interface AgentFlags {
  config?: string;
  clusterCidr?: string;
  hostnameOverride?: string;
  healthzBindAddress?: string;
  metricsBindAddress?: string;
  kubeconfig?: string;
  master?: string;
  sourceDir?: string;
  bpffsDir?: string;
  uplinkInterface?: string;
  serviceInterface?: string;
  podInterfacePattern?: string;
  xdpMode?: 'native' | 'generic' | 'off';
  masqueradeAll?: boolean;
  nodeportAddresses?: string;
  syncPeriod?: string;
  minSyncPeriod?: string;
  v: number;
  logFormat: LogFormat;
}

function verbosity(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 10) throw new InvalidArgumentError('expected a level 0…10');
  return n;
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the bpfproxy agent on this node: Services and EndpointSlices into the BPF maps (kube-proxy\'s job)')
    .option('--config <file>', 'configuration file (kind: BpfProxyConfiguration); flags override it')
    .option('--cluster-cidr <cidr>', 'the cluster\'s pod CIDR: ClusterIP traffic from outside it is masqueraded')
    .option('--hostname-override <name>', 'this node\'s name (its Node object, which endpoints are local); default: the host name')
    .option('--healthz-bind-address <host:port>', '/healthz and /livez (default 0.0.0.0:10256; empty: off)')
    .option('--metrics-bind-address <host:port>', '/metrics and /proxyMode (default 127.0.0.1:10249; empty: off)')
    .option('--kubeconfig <file>', 'kubeconfig for the Kubernetes API source')
    .option('--master <url>', 'the API server\'s address (overrides the kubeconfig\'s)')
    .option('--source-dir <dir>', 'read Services, EndpointSlices and Nodes from a directory of YAML instead of the API')
    .option('--bpffs-dir <dir>', 'bpffs directory of this node\'s pins (default /sys/fs/bpf/bpfproxy)')
    .option('--uplink-interface <ifname>', 'the node\'s uplink (default: the default route\'s device)')
    .option('--service-interface <ifname>', 'the sink device the agent creates and routes service addresses to, whose egress translates the node\'s own traffic (default: bpfproxy0; "" for none)')
    .option('--pod-interface-pattern <regexp>', 'host-side pod interfaces, by name (default ^(lxc|veth|cali|pod-))')
    .addOption(new Option('--xdp-mode <mode>', 'XDP on the uplink (default native)').choices(['native', 'generic', 'off']))
    .option('--masquerade-all', 'masquerade all Service traffic')
    .option('--nodeport-addresses <cidrs>', 'comma-separated CIDRs (or "primary") of node addresses NodePorts answer on')
    .option('--sync-period <duration>', 'full resync period (default 30s)')
    .option('--min-sync-period <duration>', 'minimum time between syncs (default 1s)')
    .option('--v <level>', 'log verbosity: 0–1 info, 2–3 debug, 4+ trace', verbosity, 0)
    .addOption(new Option('--log-format <format>', 'log lines as JSON or as text').choices(['json', 'text']).default('json'))
    .action(async (flags: AgentFlags) => {
      const log = createLogger({ format: flags.logFormat, verbosity: flags.v });
      let config;
      try {
        const file = flags.config ? readConfigFile(flags.config) : {};
        config = resolveAgentConfig(
          file,
          {
            clusterCIDR: flags.clusterCidr,
            hostnameOverride: flags.hostnameOverride,
            healthzBindAddress: flags.healthzBindAddress,
            metricsBindAddress: flags.metricsBindAddress,
            ...(flags.kubeconfig !== undefined && { clientConnection: { ...file.clientConnection, kubeconfig: flags.kubeconfig } }),
            apiServer: flags.master,
            sourceDir: flags.sourceDir,
            bpffsDir: flags.bpffsDir,
            uplinkInterface: flags.uplinkInterface,
            serviceInterface: flags.serviceInterface,
            podInterfacePattern: flags.podInterfacePattern,
            xdpMode: flags.xdpMode,
            masqueradeAll: flags.masqueradeAll,
            nodePortAddresses: flags.nodeportAddresses?.split(',').map((s) => s.trim()).filter(Boolean),
            syncPeriod: flags.syncPeriod,
            minSyncPeriod: flags.minSyncPeriod,
          } as Parameters<typeof resolveAgentConfig>[1],
          hostname(),
        );
      } catch (e) {
        log.fatal({ err: e }, e instanceof ConfigError ? `bad configuration: ${e.message}` : (e as Error).message);
        process.exitCode = 2;
        return;
      }

      let agent: Agent | undefined;
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        if (++signals > 1) {
          log.warn({ signal: sig }, 'second signal: exiting at once');
          process.exit(1);
        }
        log.info({ signal: sig }, 'stopping');
        void (agent?.stop() ?? Promise.resolve()).then(() => process.exit(0));
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      process.on('uncaughtException', (err) => {
        // The datapath keeps running from its pins; a supervisor restarts us and we adopt it.
        log.fatal({ err }, 'uncaught exception: exiting');
        process.exit(1);
      });
      process.on('unhandledRejection', (err) => {
        log.fatal({ err }, 'unhandled rejection: exiting');
        process.exit(1);
      });

      try {
        // Loaded here: the agent's modules are not needed by the other commands.
        const { Agent } = await import('../agent/agent.js');
        agent = await Agent.start(config, { logger: log });
      } catch {
        process.exit(1); // Agent.start logged why
      }
    });
}
