/**
 * The typed face of build/…/bpfproxy.node. One class per kernel handle, as the addon defines them;
 * the wrappers of ts/addon/index.ts add nothing but types and the error class.
 */

export type MapTypeName =
  | 'hash' | 'array' | 'percpu_hash' | 'percpu_array' | 'lru_hash' | 'lru_percpu_hash'
  | 'lpm_trie' | 'prog_array' | 'hash_of_maps' | 'array_of_maps' | 'ringbuf' | (string & {});

export interface MapSpec {
  name: string;
  type: MapTypeName;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Maps the compiler made for global data: .rodata, .bss, .data. */
  internal: boolean;
  pinPath: string | null;
}

export interface MapInfo {
  /** The kernel's name, cut to 15 characters. */
  name: string;
  type: MapTypeName;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface ProgramSpec {
  name: string;
  section: string;
  type: string;
}

export interface ProgramInfo {
  name: string;
  type: string;
  id: number;
  tag: string;
}

export interface TypeLayout {
  name: string;
  size: number;
  members: { name: string; offset: number; size: number; bitOffset: number; bitSize: number }[];
}

export type RodataValue = number | bigint | boolean | Buffer;

export interface ObjectOptions {
  /** Values of `const volatile` globals, set before load. */
  rodata?: Record<string, RodataValue>;
  /** Per map: its size, and where it is pinned (an existing compatible pin is reused). */
  maps?: Record<string, { maxEntries?: number; pinPath?: string }>;
}

export interface TestRunOptions {
  data: Buffer;
  /** Runs the program this many times; `duration` is the average. */
  repeat?: number;
  /** struct xdp_md or struct __sk_buff to pass in. */
  ctx?: Buffer;
  /** Room for the packet out; the default leaves 256 bytes to grow. */
  dataSizeOut?: number;
}

export interface TestRunResult {
  retval: number;
  /** Nanoseconds per run, averaged by the kernel. */
  duration: number;
  data: Buffer;
  ctx?: Buffer;
}

export interface BpfMapNative {
  readonly info: MapInfo;
  readonly fd: number;
  lookup(key: Buffer): Buffer | null;
  update(key: Buffer, value: Buffer, flags?: number): void;
  delete(key: Buffer): boolean;
  updateBatch(keys: Buffer, values: Buffer, count: number, flags?: number): number;
  deleteBatch(keys: Buffer, count: number): number;
  keys(): { keys: Buffer; count: number };
  dump(): { keys: Buffer; values: Buffer; count: number };
  pin(path: string): void;
  close(): void;
}

export interface BpfProgramNative {
  readonly info: ProgramInfo;
  readonly fd: number;
  /** The ids of the maps the program uses, fixed at load. */
  mapIds(): number[];
  testRun(options: TestRunOptions): TestRunResult;
  /** Runs a syscall program (SEC("syscall")) once on ctx; returns ctx as the program left it. */
  runSyscall(ctx: Buffer): { retval: number; ctx: Buffer };
  pin(path: string): void;
  close(): void;
}

export interface LinkInfo {
  id: number;
  type: string;
  progId: number;
  ifindex?: number;
  attachType?: 'xdp' | 'ingress' | 'egress';
}

export interface BpfLinkNative {
  readonly info: LinkInfo;
  update(program: BpfProgramNative): void;
  pin(path: string): void;
  detach(): void;
  close(): void;
}

export interface BpfObjectNative {
  readonly name: string;
  readonly loaded: boolean;
  maps(): MapSpec[];
  programs(): ProgramSpec[];
  rodataVariables(): { name: string; offset: number; size: number }[];
  typeLayout(name: string): TypeLayout | null;
  load(): Promise<void>;
  map(name: string): BpfMapNative;
  program(name: string): BpfProgramNative;
  close(): void;
}

export type XdpMode = 'native' | 'generic' | 'auto';
export type TcDirection = 'ingress' | 'egress';

export interface NativeAddon {
  BpfObject: new (elf: Buffer, name: string, options?: ObjectOptions) => BpfObjectNative;
  BpfMap: {
    fromPin(path: string): BpfMapNative;
    fromId(id: number): BpfMapNative;
    /** A map of no object's: the inner maps of a map-in-map (innerMap is their template). */
    create(spec: {
      type: MapTypeName; name?: string; keySize: number; valueSize: number; maxEntries: number;
      flags?: number; innerMap?: BpfMapNative;
    }): BpfMapNative;
  };
  BpfProgram: { fromPin(path: string): BpfProgramNative; fromId(id: number): BpfProgramNative };
  BpfLink: {
    attachXdp(program: BpfProgramNative, ifindex: number, mode?: XdpMode): BpfLinkNative;
    attachTcx(program: BpfProgramNative, ifindex: number, direction: TcDirection): BpfLinkNative;
    fromPin(path: string): BpfLinkNative;
  };
  setErrorClass(cls: new (message: string, props: { errno: number; code: string; call: string }) => Error): void;
  embeddedObjects(): Record<string, { elf: Buffer; sha256: string }>;
  libbpfVersion(): string;
  numPossibleCpus(): number;
  netnsRun<T>(path: string, fn: () => T): T;
  ifNameToIndex(name: string): number;
  /** flock(LOCK_EX | LOCK_NB) on `path` (file or directory); the fd holds it. EWOULDBLOCK: taken. */
  flockExclusive(path: string): number;
  flockRelease(fd: number): void;
  tcAttach(program: BpfProgramNative, ifindex: number, direction: TcDirection, priority: number, handle: number): number;
  tcDetach(ifindex: number, direction: TcDirection, priority: number, handle: number): void;
  tcQuery(ifindex: number, direction: TcDirection, priority: number, handle: number): number;
  xdpQuery(ifindex: number): { progId: number; mode: 'native' | 'generic' | 'offload' | 'multi' | 'none' };
}
