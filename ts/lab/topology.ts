/**
 * The lab: a cluster made of network namespaces (docs/lab.md). `Lab.up` builds the fabric, nodes and
 * outside clients; pods come and go with `addPod`/`removePod` (what `lab apply` builds on); `down`
 * removes everything. The state on disk is the single source of truth, so any process can open a
 * lab by name and act on it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { run } from '../util/exec.js';
import {
  CLUSTER_CIDR,
  EXTERNAL_CIDR,
  FIRST_POD_HOST,
  LAST_POD_HOST,
  MAX_CLIENTS,
  MAX_NODES,
  NODE_NETWORK,
  POD_GATEWAY,
  SECOND_NODE_NETWORK,
  SERVICE_CIDR,
  clientAddress,
  nodeAddress,
  podAddress,
  podCidr,
  secondClientAddress,
  secondNodeAddress,
} from './net/address-plan.js';
import { UndoStack } from '../util/undo-stack.js';
import { isServerAlive, startHostnameServer, stopProcess } from './hostname-process.js';
import {
  DEFAULT_LAB_NAME,
  DEFAULT_STATE_DIR,
  LAB_STATE_VERSION,
  type ClientState,
  type LabState,
  type LbRoute,
  type NodeState,
  type PodNetwork,
  type PodPort,
  type PodState,
  readLabState,
  runDirOf,
  stateFile,
  withStateLock,
  writeLabState,
} from './lab-state.js';
import { FABRIC, checkLabName, checkPodName, clientShortName, nodeShortName, podHostInterface, realNetnsName } from './net/naming.js';
import { Netns, runId } from './net/netns.js';
import {
  CLIENT_INTERFACE,
  FABRIC_BRIDGE,
  SECOND_FABRIC_BRIDGE,
  SECOND_UPLINK,
  SERVICE_DEVICE,
  UPLINK,
  VXLAN_MTU,
  attachToFabric,
  vethBetween,
  vtepOf,
  wireClient,
  wireFabric,
  wireNode,
  wireSecondUplink,
  wireVxlan,
} from './net/node-network.js';
import { wirePod } from './net/pod-network.js';
import { labNetns, teardownLab } from './teardown.js';
import {
  StreamConnection,
  request,
  transfer,
  type Answer,
  type RequestOptions,
  type StreamOptions,
  type TransferOptions,
  type TransferResult,
} from './net/traffic.js';

export interface LabOptions {
  /** The lab's name: its state file and the `--name` of the CLI (default "default"). */
  name?: string;
  nodes?: number;
  clients?: number;
  /** How outside clients route the LoadBalancer/external range (default: ECMP over all nodes). */
  lbRoute?: LbRoute;
  /**
   * How pods of different nodes reach each other: `routed` (default), a route per node's pod CIDR
   * via its address (GKE-like); `vxlan`, an overlay like flannel's (docs/lab.md).
   */
  podNetwork?: PodNetwork;
  /**
   * A second node network (198.18.2.0/24, its own bridge): `nodes` get a second uplink (eth1) on it,
   * and `clients` outside clients (default 1; named after the first network's) live on it, routing
   * the LoadBalancer range through those nodes as `lbRoute` says (node-K: the first of them).
   */
  secondNetwork?: { nodes: number[]; clients?: number };
  /** Where state files live (default /run/bpfproxy/labs). */
  stateDir?: string;
  /** Aborting makes `up` stop, remove what it built, and reject. */
  signal?: AbortSignal;
}

export interface PodSpec {
  name: string;
  /** `node-2` or 2. */
  node: string | number;
  /** The server answers on each port over TCP and UDP alike; the protocol is what a Service would name. */
  ports: PodPort[];
  labels?: Record<string, string>;
  /** The Kubernetes namespace Services select it in (default "default"). */
  namespace?: string;
  /** Who made it (`Deployment/<namespace>/<name>` for `lab apply`). */
  owner?: string;
  /**
   * hostNetwork: true: no namespace nor veth of its own; the server runs in the node's namespace
   * and the pod's address is the node's (an API server or an ingress controller on hostNetwork).
   */
  hostNetwork?: boolean;
}

export class Lab {
  private constructor(private state: LabState) {}

  /** Builds a lab. On any failure (or abort) everything built so far is removed before rejecting. */
  static async up(opts: LabOptions = {}): Promise<Lab> {
    const name = opts.name ?? DEFAULT_LAB_NAME;
    checkLabName(name);
    const nodeCount = opts.nodes ?? 2;
    const clientCount = opts.clients ?? 1;
    if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > MAX_NODES) throw new RangeError(`nodes must be 1…${MAX_NODES}`);
    if (!Number.isInteger(clientCount) || clientCount < 0 || clientCount > MAX_CLIENTS) throw new RangeError(`clients must be 0…${MAX_CLIENTS}`);
    const lbRoute = opts.lbRoute ?? { mode: 'ecmp' };
    if (lbRoute.mode === 'node' && (lbRoute.node < 1 || lbRoute.node > nodeCount)) throw new RangeError(`lbRoute node ${lbRoute.node} is not a node of this lab`);
    const podNetwork = opts.podNetwork ?? 'routed';
    if (podNetwork !== 'routed' && podNetwork !== 'vxlan') throw new RangeError(`podNetwork must be routed or vxlan, not ${String(podNetwork)}`);
    const second = opts.secondNetwork;
    const secondNodes = [...new Set(second?.nodes ?? [])].sort((a, b) => a - b);
    const secondClients = second ? (second.clients ?? 1) : 0;
    if (second && secondNodes.length === 0) throw new RangeError('secondNetwork needs at least one node');
    for (const k of secondNodes) if (!Number.isInteger(k) || k < 1 || k > nodeCount) throw new RangeError(`secondNetwork node ${k} is not a node of this lab`);
    if (!Number.isInteger(secondClients) || secondClients < 0 || clientCount + secondClients > MAX_CLIENTS) throw new RangeError(`clients on both networks must be 0…${MAX_CLIENTS} in all`);
    const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    const file = stateFile(name, stateDir);
    await refuseIfRunning(file);

    const id = runId();
    const state: LabState = {
      version: LAB_STATE_VERSION,
      name,
      id,
      createdAt: new Date().toISOString(),
      stateFile: file,
      runDir: runDirOf(name, stateDir),
      lbRoute,
      podNetwork,
      addressPlan: {
        nodeNetwork: NODE_NETWORK,
        clusterCidr: CLUSTER_CIDR,
        serviceCidr: SERVICE_CIDR,
        externalCidr: EXTERNAL_CIDR,
        podGateway: POD_GATEWAY,
        ...(second && { secondNodeNetwork: SECOND_NODE_NETWORK }),
      },
      fabric: { netns: realNetnsName(id, FABRIC), bridge: FABRIC_BRIDGE, ...(second && { secondBridge: SECOND_FABRIC_BRIDGE }) },
      nodes: [],
      clients: [],
      pods: [],
      ipam: {},
    };
    // Written before anything exists, so that a killed `lab up` still leaves a state `lab down` can use
    // (teardown also sweeps every namespace carrying the run id).
    mkdirSync(state.runDir, { recursive: true });
    writeLabState(state);
    const lab = new Lab(state);
    const building = new UndoStack();
    const checkAbort = () => opts.signal?.throwIfAborted();
    try {
      checkAbort();
      const fabric = await Netns.create(state.fabric.netns, building);
      await wireFabric(fabric);
      if (second) await wireFabric(fabric, SECOND_FABRIC_BRIDGE);
      const ports: string[] = [];
      const secondPorts: string[] = [];
      for (let k = 1; k <= nodeCount; k++) {
        checkAbort();
        const node: NodeState = {
          name: nodeShortName(k),
          index: k,
          netns: realNetnsName(id, nodeShortName(k)),
          uplink: UPLINK,
          fabricPort: nodeShortName(k),
          address: nodeAddress(k),
          podCidr: podCidr(k),
          serviceDevice: SERVICE_DEVICE,
          ...(secondNodes.includes(k) && { secondUplink: { interface: SECOND_UPLINK, fabricPort: `${nodeShortName(k)}-${SECOND_UPLINK}`, address: secondNodeAddress(k) } }),
          ...(podNetwork === 'vxlan' && { vtep: vtepOf(k) }),
        };
        const ns = await Netns.create(node.netns, building);
        state.nodes.push(node);
        await vethBetween(ns, UPLINK, fabric, node.fabricPort);
        await wireNode(ns, k, nodeCount, podNetwork);
        if (podNetwork === 'vxlan') await wireVxlan(ns, k, nodeCount);
        if (node.secondUplink) {
          await vethBetween(ns, SECOND_UPLINK, fabric, node.secondUplink.fabricPort);
          await wireSecondUplink(ns, node.secondUplink.address);
          secondPorts.push(node.secondUplink.fabricPort);
        }
        ports.push(node.fabricPort);
        state.ipam[node.name] = FIRST_POD_HOST - 1;
      }
      // Clients of the second network come after the first's: client-(C+1)…, 198.18.2.100…
      for (let i = 1; i <= clientCount + secondClients; i++) {
        checkAbort();
        const onSecond = i > clientCount;
        const client: ClientState = {
          name: clientShortName(i),
          index: i,
          netns: realNetnsName(id, clientShortName(i)),
          interface: CLIENT_INTERFACE,
          fabricPort: clientShortName(i),
          address: onSecond ? secondClientAddress(i - clientCount) : clientAddress(i),
          ...(onSecond && { network: 'second' as const }),
        };
        const gateways = onSecond
          ? secondNodes.map(secondNodeAddress)
          : lbRoute.mode === 'node' ? [nodeAddress(lbRoute.node)] : Array.from({ length: nodeCount }, (_, j) => nodeAddress(j + 1));
        const ns = await Netns.create(client.netns, building);
        state.clients.push(client);
        await vethBetween(ns, CLIENT_INTERFACE, fabric, client.fabricPort);
        await wireClient(ns, client.address, gateways, lbRoute);
        (onSecond ? secondPorts : ports).push(client.fabricPort);
      }
      await attachToFabric(fabric, ports);
      if (second) await attachToFabric(fabric, secondPorts, SECOND_FABRIC_BRIDGE);
      checkAbort();
      writeLabState(state);
      return lab;
    } catch (e) {
      await building.run().catch(() => {});
      await teardownLab(state).catch(() => {});
      throw e;
    }
  }

  /** A lab that is up, by name (as another process made it). */
  static open(name = DEFAULT_LAB_NAME, stateDir = DEFAULT_STATE_DIR): Lab {
    const state = readLabState(stateFile(name, stateDir));
    if (!state) throw new Error(`no lab '${name}' is up (no ${stateFile(name, stateDir)})`);
    return new Lab(state);
  }

  get name(): string {
    return this.state.name;
  }

  get id(): string {
    return this.state.id;
  }

  /** Everything `lab status --json` prints; a copy. */
  status(): LabState {
    return structuredClone(this.state);
  }

  get nodes(): readonly NodeState[] {
    return this.state.nodes;
  }

  get clients(): readonly ClientState[] {
    return this.state.clients;
  }

  get pods(): readonly PodState[] {
    return this.state.pods;
  }

  node(nameOrIndex: string | number): NodeState {
    const name = typeof nameOrIndex === 'number' ? nodeShortName(nameOrIndex) : nameOrIndex;
    const node = this.state.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`lab ${this.name} has no node '${name}' (nodes: ${this.state.nodes.map((n) => n.name).join(', ')})`);
    return node;
  }

  pod(name: string): PodState {
    const pod = this.state.pods.find((p) => p.name === name);
    if (!pod) throw new Error(`lab ${this.name} has no pod '${name}'`);
    return pod;
  }

  /** The real namespace name behind a short name: fabric, node-N, client-N or a pod name. */
  netnsName(shortName: string): string {
    if (shortName === FABRIC) return this.state.fabric.netns;
    const found = [...this.state.nodes, ...this.state.clients, ...this.state.pods].find((x) => x.name === shortName);
    if (!found) {
      const known = [FABRIC, ...this.state.nodes.map((n) => n.name), ...this.state.clients.map((c) => c.name), ...this.state.pods.map((p) => p.name)];
      throw new Error(`lab ${this.name} has no namespace '${shortName}' (known: ${known.join(', ')})`);
    }
    return found.netns;
  }

  netns(shortName: string): Netns {
    return Netns.existing(this.netnsName(shortName));
  }

  /** Runs a host command inside a lab namespace and resolves with its output. */
  exec(shortName: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    return this.netns(shortName).exec(cmd, args, opts);
  }

  /**
   * A pod on a node: its namespace and veth, a /32 from the node's pod CIDR, and a hostname server
   * that listens on every port (TCP and UDP) before this resolves.
   */
  async addPod(spec: PodSpec): Promise<PodState> {
    checkPodName(spec.name);
    if (this.state.pods.some((p) => p.name === spec.name)) throw new Error(`lab ${this.name} already has a pod '${spec.name}'`);
    if (spec.ports.length === 0) throw new Error(`pod ${spec.name} declares no ports`);
    const node = this.node(spec.node);
    if (spec.hostNetwork) return this.addHostNetworkPod(spec, node);
    const host = this.allocatePodHost(node);
    const netnsName = realNetnsName(this.id, spec.name);
    const hostInterface = podHostInterface(spec.name);
    const address = podAddress(node.index, host);
    const building = new UndoStack();
    try {
      const nodeNs = Netns.existing(node.netns);
      const podNs = await Netns.create(netnsName, building);
      const hostMac = await wirePod(nodeNs, podNs, hostInterface, address, node.vtep ? VXLAN_MTU : undefined);
      mkdirSync(this.state.runDir, { recursive: true });
      const server = await startHostnameServer({
        netns: netnsName,
        podName: spec.name,
        ports: spec.ports.map((p) => p.port),
        log: join(this.state.runDir, `${spec.name}.log`),
      });
      building.add(`server of ${spec.name}`, () => stopProcess(server));
      const pod: PodState = {
        name: spec.name,
        node: node.name,
        netns: netnsName,
        address,
        hostInterface,
        hostMac,
        ports: spec.ports.map((p) => ({ ...p })),
        labels: { ...(spec.labels ?? {}) },
        server,
        ...(spec.namespace !== undefined && { namespace: spec.namespace }),
        ...(spec.owner !== undefined && { owner: spec.owner }),
      };
      this.mutate((s) => {
        s.pods.push(pod);
        s.ipam[node.name] = host;
      });
      return structuredClone(pod);
    } catch (e) {
      await building.run().catch(() => {});
      throw e;
    }
  }

  /** Stops the pod's server and deletes its namespace (which takes its veth and the node's /32 route). */
  async removePod(name: string): Promise<void> {
    const pod = this.pod(name);
    await stopProcess(pod.server);
    if (pod.hostNetwork) {
      // The namespace is the node's: only the server was the pod's.
      this.mutate((s) => {
        s.pods = s.pods.filter((p) => p.name !== name);
      });
      return;
    }
    // Deleting a namespace name only drops a reference; the kernel destroys the namespace (and with it
    // the veth and the node's route) later, asynchronously. Deleting the node side now makes the pod's
    // interface and route vanish before we return, so its name can be reused at once.
    await Netns.existing(this.node(pod.node).netns).ip('link', 'delete', pod.hostInterface).catch(() => {});
    await run('ip', ['netns', 'delete', pod.netns]);
    this.mutate((s) => {
      s.pods = s.pods.filter((p) => p.name !== name);
    });
  }

  /** Changes a pod's labels (what Service selectors see); nothing else about it changes. */
  setPodLabels(name: string, labels: Record<string, string>): void {
    this.pod(name);
    this.mutate((s) => {
      const pod = s.pods.find((p) => p.name === name);
      if (pod) pod.labels = { ...labels };
    });
  }

  /** Marks a pod as being deleted: it keeps serving, and its endpoints turn terminating. */
  setPodTerminating(name: string): void {
    this.pod(name);
    this.mutate((s) => {
      const pod = s.pods.find((p) => p.name === name);
      if (pod) pod.terminating = true;
    });
  }

  /** Changes the state and saves it (agents, the cluster source, the bpffs mount). */
  update(change: (state: LabState) => void): void {
    this.mutate(change);
  }

  /** Is the pod's hostname server still the process we started? */
  isPodServing(name: string): boolean {
    return isServerAlive(this.pod(name).server);
  }

  /** Short requests from a namespace (by short name); one answer or error per request. */
  request(from: string, opts: RequestOptions): Promise<Answer[]> {
    return request(this.netnsName(from), opts);
  }

  /** One bulk TCP transfer from a namespace (download or upload), checksummed end to end. */
  transfer(from: string, opts: TransferOptions): Promise<TransferResult> {
    return transfer(this.netnsName(from), opts);
  }

  /** A long-lived TCP connection from a namespace to a hostname server in stream mode. */
  stream(from: string, opts: StreamOptions): StreamConnection {
    return StreamConnection.open(this.netnsName(from), opts);
  }

  /** Removes every namespace and process of the lab and its state; safe to call twice. */
  async down(): Promise<void> {
    await teardownLab(this.state);
    this.state = { ...this.state, nodes: [], clients: [], pods: [] };
  }

  /** Namespaces that exist now with this lab's run id (for checks that nothing is left behind). */
  existingNetns(): Promise<string[]> {
    return labNetns(this.id);
  }

  /** A hostNetwork pod: its server in the node's namespace, on ports no other such pod of the node holds. */
  private async addHostNetworkPod(spec: PodSpec, node: NodeState): Promise<PodState> {
    const ports = spec.ports.map((p) => p.port);
    const clash = this.state.pods.find((p) => p.hostNetwork && p.node === node.name && p.ports.some((q) => ports.includes(q.port)));
    if (clash) throw new Error(`pod ${spec.name}: hostNetwork port(s) ${ports.join(', ')} on ${node.name} clash with pod ${clash.name}`);
    mkdirSync(this.state.runDir, { recursive: true });
    const server = await startHostnameServer({ netns: node.netns, podName: spec.name, ports, log: join(this.state.runDir, `${spec.name}.log`) });
    const pod: PodState = {
      name: spec.name,
      node: node.name,
      netns: node.netns,
      address: node.address,
      hostInterface: '',
      hostMac: '',
      hostNetwork: true,
      ports: spec.ports.map((p) => ({ ...p })),
      labels: { ...(spec.labels ?? {}) },
      server,
      ...(spec.namespace !== undefined && { namespace: spec.namespace }),
      ...(spec.owner !== undefined && { owner: spec.owner }),
    };
    this.mutate((s) => {
      s.pods.push(pod);
    });
    return structuredClone(pod);
  }

  /** Round-robin over .2–.254 skipping addresses in use, as host-local IPAM does: a freed address is not reused at once. */
  private allocatePodHost(node: NodeState): number {
    const used = new Set(this.state.pods.filter((p) => p.node === node.name).map((p) => Number(p.address.split('.')[3])));
    const span = LAST_POD_HOST - FIRST_POD_HOST + 1;
    const last = this.state.ipam[node.name] ?? FIRST_POD_HOST - 1;
    for (let step = 1; step <= span; step++) {
      const host = FIRST_POD_HOST + ((last - FIRST_POD_HOST + step + span) % span);
      if (!used.has(host)) return host;
    }
    throw new Error(`node ${node.name} has no free pod address in ${node.podCidr}`);
  }

  /**
   * Several processes share a lab (`lab apply`, `lab status`, the demo, tests): a change is made to
   * the state as it is on disk, not to this handle's copy, under an exclusive lock, so that nobody's
   * change is written over by a stale copy (a pod another process just added, say).
   */
  private mutate(change: (state: LabState) => void): void {
    withStateLock(this.state.stateFile, () => {
      const current = readLabState(this.state.stateFile);
      if (current) this.state = current;
      change(this.state);
      writeLabState(this.state);
    });
  }
}

/** One lab per name: refuse to build over a lab whose namespaces still exist; forget a stale state. */
async function refuseIfRunning(file: string): Promise<void> {
  const existing = readLabState(file);
  if (!existing) return;
  if ((await labNetns(existing.id)).length > 0) {
    throw new Error(`lab '${existing.name}' is already up (${file}); run \`bpfproxy lab down${existing.name === DEFAULT_LAB_NAME ? '' : ` --name ${existing.name}`}\` or choose another --name`);
  }
  await teardownLab(existing);
}
