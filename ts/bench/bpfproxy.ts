/**
 * bpfproxy as a path under test: the real datapath loaded on a private bpffs, programmed the way
 * the agent programs it (model → entries → Reconciler batch writes into the real maps), attached
 * in the bench node's namespace when a traffic scenario needs it. Map sizes follow the input (a
 * power of two with room to spare), as an operator sizes them for a cluster of that scale.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import type { MapKey } from '../abi/maps.js';
import { attachDatapath, type AttachedDatapath, type UplinkXdpMode } from '../dataplane/attach.js';
import { computeEntries, type DesiredEntries } from '../dataplane/entries.js';
import { loadDatapath, type Datapath } from '../dataplane/loader.js';
import { Reconciler, type WriteFailure } from '../dataplane/reconciler.js';
import { UndoStack } from '../util/undo-stack.js';
import { mountPrivateBpffs } from '../dataplane/bpffs.js';
import { runId } from '../lab/net/netns.js';
import { whileRunning } from './interrupt.js';
import { EntryTracker } from '../dataplane/entry-changes.js';
import { IncrementalModel, type NodeInfo, type ObjectChange, type ProxyConfig } from '../model/index.js';

/** What a bpfproxy programming step is given: the same objects the baselines are generated from. */
export interface ProgramInput {
  services: V1Service[];
  endpointSlices: V1EndpointSlice[];
  node: NodeInfo;
  config: ProxyConfig;
}

export interface ProgramTiming {
  /** model + entries + writes. */
  ms: number;
  modelMs: number;
  entriesMs: number;
  writeMs: number;
  written: number;
  deleted: number;
  failures: WriteFailure[];
}

function pow2AtLeast(n: number): number {
  let p = 1024;
  while (p < n) p *= 2;
  return p;
}

/** Map sizes with 25% room over what `entries` needs. */
export function mapSizesFor(entries: DesiredEntries): Partial<Record<MapKey, number>> {
  let svc = 0;
  for (const fe of entries.frontends.values()) svc += 1 + fe.slots.length;
  const services = new Set([...entries.frontends.values()].map((f) => f.svcId)).size;
  const maxSvcId = Math.max(0, ...[...entries.frontends.values()].map((f) => f.svcId));
  return {
    svc4: pow2AtLeast(svc * 1.25),
    backends: pow2AtLeast(entries.backends.size * 1.25),
    svcstat: pow2AtLeast(Math.max(maxSvcId + 1, services * 1.25)),
    maglev: pow2AtLeast(entries.maglev.size * 1.25),
  };
}

export interface BpfproxyOptions {
  /** The first sync: the maps are sized for it, then it is written (timed as a full load). */
  input: ProgramInput;
  nodeIp: string;
  clusterCidr: string;
  hairpinIp: string;
}

export class BpfproxyPath {
  private attached: AttachedDatapath | undefined;

  private constructor(
    readonly dp: Datapath,
    private readonly reconciler: Reconciler,
    private readonly cleanup: UndoStack,
    readonly pinDir: string,
    readonly mapSizes: Partial<Record<MapKey, number>>,
    /** The first sync, into empty maps. */
    readonly initial: ProgramTiming,
    private readonly model: IncrementalModel,
    private readonly entryTracker: EntryTracker,
    private current: ProgramInput,
  ) {}

  /**
   * Loads the datapath on a private bpffs (unmounted by close()) with maps sized for `input`, and
   * writes `input` into them: the model and entries are computed once, before the load (they size
   * the maps), and timed with the writes as the first sync.
   */
  static async load(opts: BpfproxyOptions): Promise<BpfproxyPath> {
    const cleanup = new UndoStack();
    const forget = whileRunning('bpfproxy datapath and its bpffs', () => cleanup.run());
    cleanup.add('interrupt registration', forget);
    try {
      const pinDir = await mountPrivateBpffs(mkdtempSync(join(tmpdir(), `bpfproxy-bench-${runId()}-`)), cleanup);
      const t0 = performance.now();
      const model = IncrementalModel.build(opts.input);
      const state = model.state();
      const t1 = performance.now();
      const entries = computeEntries(state, opts.input.config.maglevTableSize);
      const t2 = performance.now();
      const mapSizes = mapSizesFor(entries);
      const dp = await loadDatapath({
        pinDir,
        mapSizes,
        config: { nodeIp: opts.nodeIp, clusterCidrs: [opts.clusterCidr], hairpinIp: opts.hairpinIp, maglevM: opts.input.config.maglevTableSize },
      });
      cleanup.add('datapath handles', () => dp.close());
      const reconciler = new Reconciler(dp);
      reconciler.adopt();
      const t3 = performance.now();
      const result = reconciler.apply(entries);
      const t4 = performance.now();
      const initial: ProgramTiming = {
        ms: t2 - t0 + (t4 - t3),
        modelMs: t1 - t0,
        entriesMs: t2 - t1,
        writeMs: t4 - t3,
        written: result.written,
        deleted: result.deleted,
        failures: result.failures,
      };
      const entryTracker = new EntryTracker(opts.input.config.maglevTableSize);
      entryTracker.reset(state);
      return new BpfproxyPath(dp, reconciler, cleanup, pinDir, mapSizes, initial, model, entryTracker, opts.input);
    } catch (e) {
      await cleanup.run().catch(() => {});
      throw e;
    }
  }

  /**
   * One partial sync as the agent's Syncer does it (model update, entries of what changed, writes
   * of those), for the objects that differ from the last input. Which objects differ is found here,
   * untimed: in the agent the change trackers are handed them by the informers.
   */
  program(input: ProgramInput): ProgramTiming {
    const changes = { services: changedObjects(this.current.services, input.services), endpointSlices: changedObjects(this.current.endpointSlices, input.endpointSlices) };
    this.current = input;
    const t0 = performance.now();
    const delta = this.model.update(changes);
    const t1 = performance.now();
    const entryChanges = this.entryTracker.changes(delta, this.model);
    const t2 = performance.now();
    const result = this.reconciler.applyChanges(entryChanges);
    const t3 = performance.now();
    return { ms: t3 - t0, modelMs: t1 - t0, entriesMs: t2 - t1, writeMs: t3 - t2, written: result.written, deleted: result.deleted, failures: result.failures };
  }

  /** Attaches inside the node's namespace: tc on the given pod veths and the uplink, XDP as asked. */
  attach(netnsPath: string, podInterfaces: string[], xdpMode: UplinkXdpMode): void {
    this.attached = attachDatapath(this.dp, { netnsPath, uplink: 'eth0', podInterfaces, xdpMode });
  }

  detach(): void {
    this.attached?.detachAll();
    this.attached = undefined;
  }

  async close(): Promise<void> {
    this.detach();
    await this.cleanup.run();
    rmSync(this.pinDir, { recursive: true, force: true });
  }
}

/** Objects added, replaced (a different object under the same namespace/name) or removed. */
function changedObjects<T extends { metadata?: { namespace?: string; name?: string } }>(before: readonly T[], after: readonly T[]): ObjectChange<T>[] {
  const key = (o: T): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
  const old = new Map(before.map((o) => [key(o), o]));
  const changes: ObjectChange<T>[] = [];
  for (const o of after) {
    const k = key(o);
    const previous = old.get(k);
    old.delete(k);
    if (previous !== o) changes.push({ previous, current: o });
  }
  for (const previous of old.values()) changes.push({ previous, current: undefined });
  return changes;
}
