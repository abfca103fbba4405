/**
 * `bpfproxy explain`: the path one packet takes through bpfproxy on this node, step by step, from
 * the live maps (ts/explain/explain.ts does the walk; this file only gathers settings and prints).
 *
 * The maps do not hold the programs' load-time settings (node and hairpin addresses, SNAT ports);
 * they come from the agent's config file (--config) and the uplink's address, as the agent derives
 * them, or from --node-ip. The masquerade rules are in the maps (frontend flags, the cluster CIDRs).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';

import type { DatapathConfig } from '../abi/config.js';
import { readConfigFile, resolveAgentConfig } from '../agent/config.js';
import { datapathConfigFor } from '../agent/datapath-config.js';
import { defaultRouteInterface, interfaceAddresses } from '../agent/host-network.js';
import { LOOPBACK, linkPinName } from '../dataplane/attach.js';
import { explainPacket, ExplainInputError, type Explanation, type Ingress } from '../explain/explain.js';
import { mapReader, type NodeSettings } from '../explain/map-reader.js';
import { bpffsDirFrom, withPinnedMaps } from './services.js';

function endpoint(portRequired: boolean) {
  return (value: string): { ip: string; port?: number } => {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(value);
    const port = m?.[2] === undefined ? undefined : Number(m[2]);
    if (!m || !isIPv4(m[1]!) || (port !== undefined && (port < 1 || port > 65535))) throw new InvalidArgumentError('expected IPv4[:PORT]');
    if (portRequired && port === undefined) throw new InvalidArgumentError('expected IPv4:PORT');
    return { ip: m[1]!, ...(port !== undefined ? { port } : {}) };
  };
}

interface Flags {
  from: { ip: string; port?: number };
  to: { ip: string; port: number };
  proto: 'tcp' | 'udp';
  ingress?: Ingress;
  bpffsDir?: string;
  config?: string;
  nodeIp?: string;
  clusterCidr?: string;
  json?: boolean;
}

/** The settings the agent would load: from its config file and its uplink, or flags. */
async function nodeSettings(flags: Flags): Promise<{ settings: NodeSettings; clusterCidrs: readonly string[]; notes: string[] }> {
  const notes: string[] = [];
  const file = flags.config ? readConfigFile(flags.config) : {};
  const config = resolveAgentConfig(file, { ...(flags.clusterCidr ? { clusterCIDR: flags.clusterCidr } : {}) }, 'explain');
  let nodeIp = flags.nodeIp;
  const uplink = config.uplinkInterfaces[0] || (await defaultRouteInterface().catch(() => undefined));
  if (!nodeIp) {
    try {
      nodeIp = uplink ? (await interfaceAddresses(uplink))[0] : undefined;
      if (!nodeIp) notes.push('node address unknown (no uplink address here; give --node-ip): masquerade targets are shown as "(node address)"');
    } catch (e) {
      notes.push(`node address unknown (${(e as Error).message}); give --node-ip`);
    }
  }
  const dp = datapathConfigFor(config, nodeIp).config;
  return {
    clusterCidrs: dp.clusterCidrs ?? [],
    settings: { ...explainSettings(dp), hooks: attachedHooks(bpffsDirFrom(flags), uplink, config.serviceInterface) },
    notes,
  };
}

/** The part of the programs' load-time configuration that explain's walk reads. */
export function explainSettings(dp: DatapathConfig): NodeSettings {
  return {
    ...(dp.nodeIp ? { nodeIp: dp.nodeIp } : {}),
    ...(dp.hairpinIp ? { hairpinIp: dp.hairpinIp } : {}),
    ...(dp.snatPortMin !== undefined ? { snatPortMin: dp.snatPortMin } : {}),
    ...(dp.snatPortMax !== undefined ? { snatPortMax: dp.snatPortMax } : {}),
  };
}

/** Which optional hooks the node has, from its link pins (ts/dataplane/attach.ts names them). */
function attachedHooks(pinDir: string, uplink: string | undefined, serviceInterface: string): NonNullable<NodeSettings['hooks']> {
  const links = join(pinDir, 'links');
  return {
    ...(uplink ? { xdp: existsSync(join(links, linkPinName(uplink, 'xdp'))) } : {}),
    hostEgress: serviceInterface !== '' && existsSync(join(links, linkPinName(serviceInterface, 'egress'))),
    loEgress: existsSync(join(links, linkPinName(LOOPBACK, 'egress'))),
  };
}

function inCidr(ip: string, cidr: string | undefined): boolean {
  if (!cidr) return false;
  const [base, len] = cidr.split('/');
  const n = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(ip) / size) === Math.floor(n(base!) / size);
}

export function formatExplanation(e: Explanation, notes: string[] = []): string {
  const p = e.packet;
  const from = { pod: 'entering from a pod', uplink: 'entering from the uplink', host: 'sent by the node itself' }[p.ingress];
  const lines = [`${p.proto.toUpperCase()} ${p.src}:${p.sport} → ${p.dst}:${p.dport}, ${from}`, ''];
  const width = Math.max(...e.steps.map((s) => s.id.length));
  e.steps.forEach((s, i) => {
    lines.push(`${String(i + 1).padStart(2)}  ${s.id.padEnd(width)}  ${s.summary}`);
    for (const d of s.details ?? []) lines.push(`${' '.repeat(width + 6)}${d}`);
  });
  lines.push('');
  const t = e.translated;
  const result =
    e.verdict === 'pass'
      ? 'PASS: not service traffic, left to the stack untouched'
      : e.verdict === 'drop'
        ? `DROP (${e.dropReason}), counted in drops_v1`
        : e.verdict === 'reject'
          ? `REJECT (${e.dropReason}): the client is told at once, counted in drops_v1`
          : t
            ? `${e.verdict === 'bounce' ? 'BOUNCE' : 'FORWARD'}: ${t.src}:${t.sport} → ${t.dst}:${t.dport}`
            : `FORWARD to one of: ${e.outcomes!.map((o) => `${o.translated.dst}:${o.translated.dport} (${(o.probability * 100).toFixed(1)}%${o.translated.src !== p.src ? `, source ${o.translated.src}` : ''})`).join(', ')}`;
  lines.push(`result: ${result}`);
  for (const n of notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

export function registerExplainCommand(program: Command): void {
  program
    .command('explain')
    .description('explain, step by step from the live maps, what bpfproxy on this node does with a packet')
    .requiredOption('--from <ip[:port]>', 'the packet\'s source (port: 40000 when not given)', endpoint(false))
    .requiredOption('--to <ip:port>', 'the packet\'s destination', endpoint(true))
    .addOption(new Option('--proto <proto>', 'transport protocol').choices(['tcp', 'udp']).default('tcp'))
    .addOption(
      new Option('--ingress <where>', 'where it enters: from a pod, from the uplink, or sent by the node itself (default: pod when the source is in the cluster CIDR, else uplink)').choices(['pod', 'uplink', 'host']),
    )
    .option('--bpffs-dir <dir>', 'the agent\'s bpffs directory (default: the config file\'s, else /sys/fs/bpf/bpfproxy)')
    .option('--config <file>', 'the agent\'s configuration file (cluster CIDR, uplink, bpffsDir)')
    .option('--node-ip <ip>', 'the node address masqueraded traffic leaves with (default: the uplink\'s)')
    .option('--cluster-cidr <cidr>', 'the cluster CIDR, to tell pod sources from outside ones (default: the config file\'s)')
    .option('--json', 'print JSON')
    .action((flags: Flags) =>
      withPinnedMaps('explain', flags, async (maps) => {
        try {
          const { settings, clusterCidrs, notes } = await nodeSettings(flags);
          const ingress = flags.ingress ?? (clusterCidrs.some((c) => inCidr(flags.from.ip, c)) ? 'pod' : 'uplink');
          if (!flags.ingress) notes.unshift(`entering from ${ingress === 'pod' ? 'a pod (the source is in the cluster CIDR)' : 'the uplink (the source is outside the cluster CIDR)'}; --ingress to choose`);
          if (flags.from.port === undefined) notes.unshift('no source port given: explained for 40000 (Maglev picks and conntrack depend on it)');
          const e = explainPacket(mapReader(maps), settings, {
            src: flags.from.ip,
            sport: flags.from.port ?? 40000,
            dst: flags.to.ip,
            dport: flags.to.port,
            proto: flags.proto,
            ingress,
          });
          console.log(flags.json ? JSON.stringify({ ...e, notes }, null, 2) : formatExplanation(e, notes));
        } catch (e) {
          if (!(e instanceof ExplainInputError)) throw e;
          console.error(`bpfproxy explain: ${e.message}`);
          process.exitCode = 2;
        }
      }),
    );
}
