/**
 * What the end-to-end specs need from a cluster, so that they are written once and run against the
 * lab (`lab up --api kube`, lab-driver.ts) and against a real cluster such as kind
 * (kubeconfig-driver.ts, `BPFPROXY_E2E_KUBECONFIG=… npx ava test/e2e`). A driver knows how to run
 * kubectl, where the nodes and the outside clients are, and how to send requests from a client or a
 * pod; everything else the specs do with kubectl, as a user would.
 */
export type Protocol = 'TCP' | 'UDP';

export interface Place {
  name: string;
  /** IPv4 address: a node's InternalIP, or a client's address on the node network. */
  address: string;
}

/** Where requests start: an outside client, or a pod (by name, in the specs' namespace). */
export type From = { client: string } | { pod: string };

export interface RequestSpec {
  address: string;
  port: number;
  protocol?: Protocol;
  /** How many requests, each a new connection (UDP: a new socket), i.e. a new flow. Default 1. */
  count?: number;
  /** Per request, default 2000. */
  timeoutMs?: number;
  /**
   * TCP: the HTTP path asked for, without its slash (default "hostname": the pod name; "clientip":
   * the source the pod saw, ip:port; a health-check node port answers any path). UDP: the datagram
   * sent (default "hostname"; "clientip" likewise). The answer is the response body.
   */
  ask?: string;
}

/** One request's outcome: the answer (a pod name, or ip:port), or why there was none. */
export type Answer = { ok: true; answer: string } | { ok: false; error: string; detail?: string };

export interface ClusterDriver {
  readonly kind: 'lab' | 'kubeconfig';
  /** Namespace the specs work in (created and removed by them). */
  readonly namespace: string;
  readonly nodes: readonly Place[];
  /** At least two outside clients (allowed vs denied source ranges). */
  readonly clients: readonly Place[];
  /** An externalIP that clients can be routed to (routeToNodes). */
  readonly externalIP: string;
  /**
   * The hostname server container: answers HTTP /hostname and /clientip on TCP and "hostname" /
   * "clientip" on UDP, on `port` (agnhost netexec on real clusters; the lab runs its own server for
   * any image).
   */
  hostnameContainer(port: number): { image: string; command: string[] };
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  request(from: From, spec: RequestSpec): Promise<Answer[]>;
  /**
   * The LoadBalancer ingress IP of a Service, once it has one. The lab's cloud controller assigns
   * them; on a cluster without a load balancer implementation the driver may assign one itself.
   */
  loadBalancerIP(service: string): Promise<string>;
  /** Makes `ip` reach the nodes from the clients, as a router or cloud load balancer would. */
  routeToNodes(ip: string): Promise<void>;
  close(): Promise<void>;
}
