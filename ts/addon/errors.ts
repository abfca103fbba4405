/** A failed kernel or libbpf call, as the addon reports it. */
export class BpfError extends Error {
  /** Positive errno of the failure (EPERM = 1, ENOENT = 2, …). */
  readonly errno: number;
  /** The errno's symbolic name: 'EPERM', 'ENOENT', 'EEXIST', … */
  readonly code: string;
  /** The libbpf or kernel call that failed, such as 'bpf_object__load'. */
  readonly call: string;

  constructor(message: string, props: { errno: number; code: string; call: string }) {
    super(message);
    this.name = 'BpfError';
    this.errno = props.errno;
    this.code = props.code;
    this.call = props.call;
  }
}
