/**
 * The bench's progress display on stderr. On a terminal one status line is redrawn in place
 * (scenario, step k/n, elapsed, and what runs now); otherwise — CI logs, a pipe — each step is a
 * line of its own, so the log reads as a record of the run. Results go to files, never here.
 */
export interface ProgressSink {
  isTTY: boolean;
  write(text: string): void;
}

export class Progress {
  private scenario = '';
  private done = 0;
  private total = 0;
  private readonly started = performance.now();
  private scenarioStarted = performance.now();
  private current = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly out: ProgressSink = process.stderr as ProgressSink) {
    if (this.out.isTTY) {
      // Redraw every second so that a long step (a 30k-rule load) still shows time passing.
      this.timer = setInterval(() => this.redraw(), 1000);
      this.timer.unref();
    }
  }

  /** A new scenario with `steps` steps (the k/n of the display). */
  begin(scenario: string, steps: number): void {
    this.scenario = scenario;
    this.done = 0;
    this.total = steps;
    this.scenarioStarted = performance.now();
    this.current = '';
    if (!this.out.isTTY) this.out.write(`[${clock(this.started)}] ${scenario}: ${steps} steps\n`);
    this.redraw();
  }

  /** What runs now (a step in progress). */
  step(what: string): void {
    this.current = what;
    if (!this.out.isTTY) this.out.write(`[${clock(this.started)}]   ${this.done + 1}/${this.total} ${what}\n`);
    this.redraw();
  }

  /** The step finished; `result` is a short figure worth seeing as it happens. */
  stepDone(result?: string): void {
    this.done++;
    if (result) this.note(`${this.current}: ${result}`);
    this.current = '';
    this.redraw();
  }

  /** A line that stays (a warning, a figure). */
  note(text: string): void {
    if (this.out.isTTY) this.out.write(`\r\x1b[K  ${text}\n`);
    else this.out.write(`[${clock(this.started)}]     ${text}\n`);
    this.redraw();
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.out.isTTY) this.out.write('\r\x1b[K');
    this.out.write(`[${clock(this.started)}] done\n`);
  }

  private redraw(): void {
    if (!this.out.isTTY || !this.scenario) return;
    const width = (process.stderr.columns ?? 100) - 1;
    const bar = progressBar(this.done, this.total, 16);
    const line = `${bar} ${this.scenario} ${this.done}/${this.total} · ${clock(this.scenarioStarted)} (total ${clock(this.started)})${this.current ? ` · ${this.current}` : ''}`;
    this.out.write(`\r\x1b[K${line.slice(0, width)}`);
  }
}

function clock(since: number): string {
  const s = Math.floor((performance.now() - since) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function progressBar(done: number, total: number, width: number): string {
  const filled = total > 0 ? Math.round((done / total) * width) : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}
