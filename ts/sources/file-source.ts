/**
 * A directory of YAML files (any number of documents each) holding Services, EndpointSlices and
 * Nodes: the lab's source, and a way to run bpfproxy as a standalone L4 load balancer. The
 * directory is rescanned on change notifications and periodically (fs.watch misses events on some
 * filesystems); each scan is diffed against the last one and reported as object changes.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

import { objectKey, type ClusterEvents, type ClusterSource } from './source.js';

type Kind = 'Service' | 'EndpointSlice' | 'Node';
type Obj = V1Service | V1EndpointSlice | V1Node;

export interface FileSourceOptions {
  /** How often to rescan even without notifications. */
  rescanMs?: number;
  /** Reports files that cannot be read or parsed; the rest of the directory still counts. */
  onProblem?: (file: string, reason: string) => void;
}

export class FileSource implements ClusterSource {
  private known = new Map<string, Obj>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanWanted = false;

  constructor(
    readonly dir: string,
    private readonly opts: FileSourceOptions = {},
  ) {}

  get description(): string {
    return `file:${this.dir}`;
  }

  async start(events: ClusterEvents): Promise<void> {
    await this.scan(events);
    events.synced();
    this.watcher = watch(this.dir, () => void this.requestScan(events));
    this.timer = setInterval(() => void this.requestScan(events), this.opts.rescanMs ?? 2000);
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    await this.scanning;
  }

  /** Coalesces notifications: one scan at a time, and one more if anything came in meanwhile. */
  private async requestScan(events: ClusterEvents): Promise<void> {
    if (this.scanning) {
      this.rescanWanted = true;
      return;
    }
    this.scanning = this.scan(events);
    try {
      await this.scanning;
    } finally {
      this.scanning = undefined;
    }
    if (this.rescanWanted) {
      this.rescanWanted = false;
      await this.requestScan(events);
    }
  }

  private async scan(events: ClusterEvents): Promise<void> {
    const seen = new Map<string, Obj>();
    const files = (await readdir(this.dir)).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(join(this.dir, file), 'utf8');
      } catch (e) {
        this.opts.onProblem?.(file, (e as Error).message);
        continue;
      }
      for (const doc of parseAllDocuments(text)) {
        if (doc.errors.length > 0) {
          this.opts.onProblem?.(file, doc.errors.map((e) => e.message).join('; '));
          continue;
        }
        const obj = doc.toJS() as (Obj & { kind?: string }) | null;
        if (!obj || typeof obj !== 'object') continue;
        const items = obj.kind === 'List' ? ((obj as { items?: Obj[] }).items ?? []) : [obj];
        for (const item of items) {
          const kind = (item as { kind?: string }).kind;
          if (kind !== 'Service' && kind !== 'EndpointSlice' && kind !== 'Node') continue;
          if (!item.metadata?.name) {
            this.opts.onProblem?.(file, `a ${kind} without metadata.name`);
            continue;
          }
          if (kind !== 'Node') item.metadata.namespace ??= 'default';
          seen.set(`${kind}:${objectKey(item)}`, item);
        }
      }
    }
    for (const [key, obj] of seen) {
      const before = this.known.get(key);
      if (!before || JSON.stringify(before) !== JSON.stringify(obj)) emit(events, kindOf(key), before, obj);
    }
    for (const [key, before] of this.known) {
      if (!seen.has(key)) emit(events, kindOf(key), before, undefined);
    }
    this.known = seen;
  }
}

function kindOf(key: string): Kind {
  return key.slice(0, key.indexOf(':')) as Kind;
}

function emit(events: ClusterEvents, kind: Kind, before: Obj | undefined, after: Obj | undefined): void {
  if (kind === 'Service') events.service(before as V1Service | undefined, after as V1Service | undefined);
  else if (kind === 'EndpointSlice') events.endpointSlice(before as V1EndpointSlice | undefined, after as V1EndpointSlice | undefined);
  else events.node(before as V1Node | undefined, after as V1Node | undefined);
}
