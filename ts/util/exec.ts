/** Running host commands (ip, tc, mount…) with errors that say what ran and what it printed. */
import { execFile, execFileSync } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly command: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`\`${command.join(' ')}\` failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${stderr.trim() || 'no output'}`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  /** Text written to the command's standard input. */
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Runs a command and resolves with its standard output. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          reject(new CommandError([cmd, ...args], code, stderr || err.message));
        } else {
          resolve(stdout);
        }
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** The synchronous twin, for cleanup paths that must finish before the process exits. */
export function runSync(cmd: string, args: string[], opts: RunOptions = {}): string {
  try {
    return execFileSync(cmd, args, {
      timeout: opts.timeoutMs ?? 30_000,
      input: opts.input,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    }).toString();
  } catch (e) {
    const err = e as { status?: number | null; stderr?: Buffer; message: string };
    throw new CommandError([cmd, ...args], err.status ?? null, err.stderr?.toString() || err.message);
  }
}
