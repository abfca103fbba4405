/**
 * An undo stack: steps recorded as resources are made, run in reverse order. Every step runs even
 * when an earlier one fails; failures are collected and reported together. (Not node cleanup: that is
 * `bpfproxy cleanup`.)
 */
export class UndoStack {
  private readonly steps: { what: string; undo: () => void | Promise<void> }[] = [];
  private closed = false;

  add(what: string, undo: () => void | Promise<void>): void {
    if (this.closed) throw new Error(`cleanup already ran; cannot add '${what}'`);
    this.steps.push({ what, undo });
  }

  async run(): Promise<void> {
    this.closed = true;
    const errors: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.undo();
      } catch (e) {
        errors.push(`${step.what}: ${(e as Error).message}`);
      }
    }
    if (errors.length > 0) throw new Error(`cleanup failed:\n  ${errors.join('\n  ')}`);
  }
}
