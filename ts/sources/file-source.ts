/**
 * A directory of YAML files (any number of documents each) holding Services, EndpointSlices and
 * Nodes: the lab's source, and a way to run bpfproxy as a standalone L4 load balancer. The
 * directory is rescanned on change notifications and periodically (fs.watch misses events on some
 * filesystems); each scan is diffed against the last one and reported as object changes.
 *
 * Half-written files are never applied:
 *   - only `*.yaml`, `*.yml` and `*.json` files whose names do not start with a dot are read, so a
 *     writer that writes `.web.yaml.tmp` (or `web.yaml.tmp`) and renames it to `web.yaml` — an
 *     atomic replacement — is always seen whole (this is the way to write into the directory);
 *   - a file changed less than `settleMs` ago is not read yet (a writer still appending), and is
 *     looked at again once it has settled;
 *   - a file that cannot be read keeps the objects of its last good version (reported as a
 *     problem), so a broken edit never deletes live Services; a document that cannot be parsed
 *     (yaml-documents.ts bounds each) is reported by its number and costs only itself: the file's
 *     other documents count, and objects of the last good version that no readable document
 *     defines are kept, since the broken document may be where they are.
 * A directory that cannot be listed (removed, unmounted) keeps every object as it was and reports
 * the source unhealthy until it can be listed again.
 *
 * Only slim copies of the objects are kept (slim.ts), made as each document is parsed; neither the
 * text of a file nor its parsed documents outlive its reading.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { slim } from './slim.js';
import { objectKey, type ClusterEvents, type ClusterSource, type ServiceCIDR } from './source.js';
import { readYamlDocuments } from './yaml-documents.js';

type Kind = 'Service' | 'EndpointSlice' | 'Node' | 'ServiceCIDR';
type Obj = V1Service | V1EndpointSlice | V1Node;

export interface FileSourceOptions {
  /** How often to rescan even without notifications (default 2 s). */
  rescanMs?: number;
  /** A file modified more recently than this is left for a later scan (default 100 ms). */
  settleMs?: number;
  /** Reports files that cannot be read or parsed; the rest of the directory still counts. */
  onProblem?: (file: string, reason: string) => void;
}

/** What a file held when it was last read successfully. */
interface FileVersion {
  /** inode, size, mtime and ctime in ns: a rename or rewrite changes at least one. */
  stamp: string;
  objects: Map<string, Obj>;
}

/** Names the source reads: YAML or JSON, not hidden (a writer's temporary file). */
export function isSourceFileName(name: string): boolean {
  return !name.startsWith('.') && /\.(ya?ml|json)$/.test(name);
}

export class FileSource implements ClusterSource {
  private known = new Map<string, Obj>();
  private files = new Map<string, FileVersion>();
  /** Stamps of file versions that failed to parse: reported once, not at every scan. */
  private failed = new Map<string, string>();
  private duplicates = new Set<string>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanWanted = false;
  private stopped = false;
  private healthy = true;
  private events: ClusterEvents | undefined;

  constructor(
    readonly dir: string,
    private readonly opts: FileSourceOptions = {},
  ) {}

  get description(): string {
    return `file:${this.dir}`;
  }

  async start(events: ClusterEvents): Promise<void> {
    this.events = events;
    this.stopped = false;
    await this.scan(events, true);
    events.synced();
    this.timer = setInterval(() => void this.requestScan(), this.opts.rescanMs ?? 2000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    await this.scanning;
  }

  private ensureWatcher(): void {
    if (this.watcher || this.stopped) return;
    try {
      this.watcher = watch(this.dir, () => void this.requestScan());
      // The directory went away: forget the watcher, the periodic scan notices and makes a new one.
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined;
    }
  }

  /** Coalesces notifications: one scan at a time, and one more if anything came in meanwhile. */
  private async requestScan(): Promise<void> {
    if (this.stopped || !this.events) return;
    if (this.scanning) {
      this.rescanWanted = true;
      return;
    }
    this.scanning = this.scan(this.events, false);
    try {
      await this.scanning;
    } finally {
      this.scanning = undefined;
    }
    if (this.rescanWanted) {
      this.rescanWanted = false;
      await this.requestScan();
    }
  }

  private setHealth(events: ClusterEvents, healthy: boolean, reason?: string): void {
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    try {
      events.health?.(healthy, reason);
    } catch {
      // a handler's failure is the handler's
    }
  }

  private async scan(events: ClusterEvents, initial: boolean): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter(isSourceFileName).sort();
    } catch (e) {
      // An initial listing that fails is the caller's error; later, everything stays as it was.
      if (initial) throw new Error(`file source: cannot list ${this.dir}: ${(e as Error).message}`);
      this.setHealth(events, false, `cannot list ${this.dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      this.watcher?.close();
      this.watcher = undefined;
      return;
    }
    this.ensureWatcher();
    this.setHealth(events, true);

    const settleMs = this.opts.settleMs ?? 100;
    let unsettled = false;
    const files = new Map<string, FileVersion>();
    for (const name of names) {
      const path = join(this.dir, name);
      const previous = this.files.get(name);
      let stamp: string;
      try {
        const st = await stat(path, { bigint: true });
        if (!st.isFile()) continue;
        stamp = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
        if (previous?.stamp === stamp) {
          files.set(name, previous);
          continue;
        }
        const ageMs = Date.now() - Number(st.mtimeMs);
        if (!initial && ageMs < settleMs) {
          // Still being written, perhaps: keep the last good version and look again soon.
          unsettled = true;
          if (previous) files.set(name, previous);
          continue;
        }
      } catch {
        continue; // gone between readdir and stat: a deletion
      }
      if (this.failed.get(name) === stamp) {
        if (previous) files.set(name, previous);
        continue;
      }
      const parsed = await this.readFile(path, name);
      if (parsed === undefined) {
        this.failed.set(name, stamp);
        if (previous) files.set(name, previous);
        continue;
      }
      this.failed.delete(name);
      if (parsed.partial && previous) {
        for (const [key, obj] of previous.objects) if (!parsed.objects.has(key)) parsed.objects.set(key, obj);
      }
      files.set(name, { stamp, objects: parsed.objects });
    }
    for (const name of this.failed.keys()) if (!names.includes(name)) this.failed.delete(name);
    this.files = files;
    if (unsettled && !this.stopped) {
      if (this.settleTimer) clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => void this.requestScan(), settleMs);
    }

    const seen = new Map<string, Obj>();
    const origin = new Map<string, string>();
    const duplicates = new Set<string>();
    for (const [name, version] of files) {
      for (const [key, obj] of version.objects) {
        const first = origin.get(key);
        if (first !== undefined) {
          const problem = `${name}\0${key.replace(':', ' ')} is also defined in ${first}; the copy in ${first} is used`;
          duplicates.add(problem);
          if (!this.duplicates.has(problem)) this.opts.onProblem?.(name, problem.slice(problem.indexOf('\0') + 1));
          continue;
        }
        origin.set(key, name);
        seen.set(key, obj);
      }
    }
    for (const [key, obj] of seen) {
      const before = this.known.get(key);
      // The same object (an unchanged file keeps its version) needs no comparison.
      if (before !== obj && (!before || JSON.stringify(before) !== JSON.stringify(obj))) emit(events, kindOf(key), before, obj);
    }
    for (const [key, before] of this.known) {
      if (!seen.has(key)) emit(events, kindOf(key), before, undefined);
    }
    this.known = seen;
    this.duplicates = duplicates;
  }

  /**
   * The objects of one file, or undefined when it cannot be read (reported); `partial` when some
   * of its documents could not be read (reported, each by its number).
   */
  private async readFile(path: string, name: string): Promise<{ objects: Map<string, Obj>; partial: boolean } | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      this.opts.onProblem?.(name, (e as Error).message);
      return undefined;
    }
    const objects = new Map<string, Obj>();
    const unnamed: string[] = [];
    const errors = readYamlDocuments(text, (value, document) => {
      if (!value || typeof value !== 'object') return;
      const obj = value as Obj & { kind?: unknown; items?: unknown };
      let items: unknown[] = [obj];
      if (obj.kind === 'List') {
        if (obj.items !== undefined && obj.items !== null && !Array.isArray(obj.items)) throw new Error('items of a List is not a list');
        items = (obj.items as unknown[] | null | undefined) ?? [];
      }
      for (const item of items) {
        if (!item || typeof item !== 'object') continue;
        const kind = (item as { kind?: unknown }).kind;
        if (kind !== 'Service' && kind !== 'EndpointSlice' && kind !== 'Node' && kind !== 'ServiceCIDR') continue;
        const metadata = (item as { metadata?: unknown }).metadata as { name?: unknown; namespace?: unknown } | undefined;
        if (!metadata || typeof metadata !== 'object' || !metadata.name) {
          unnamed.push(`document ${document}: a ${kind} without metadata.name`);
          continue;
        }
        if (kind !== 'Node' && kind !== 'ServiceCIDR') metadata.namespace ??= 'default';
        objects.set(`${kind}:${objectKey(item as Obj)}`, slim(kind, item as Obj));
      }
    });
    if (errors.length > 0) this.opts.onProblem?.(name, errors.join('; '));
    for (const problem of unnamed) this.opts.onProblem?.(name, problem);
    return { objects, partial: errors.length > 0 };
  }
}

function kindOf(key: string): Kind {
  return key.slice(0, key.indexOf(':')) as Kind;
}

function emit(events: ClusterEvents, kind: Kind, before: Obj | undefined, after: Obj | undefined): void {
  if (kind === 'Service') events.service(before as V1Service | undefined, after as V1Service | undefined);
  else if (kind === 'EndpointSlice') events.endpointSlice(before as V1EndpointSlice | undefined, after as V1EndpointSlice | undefined);
  else if (kind === 'ServiceCIDR') events.serviceCIDR?.(before as ServiceCIDR | undefined, after as ServiceCIDR | undefined);
  else events.node(before as V1Node | undefined, after as V1Node | undefined);
}
