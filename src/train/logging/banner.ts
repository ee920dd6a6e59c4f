// The start-up banner a run prints before its first step: run folder, model size, device and
// threads, tokens per step, fresh start or resume. Other parts add their own lines (memory
// estimates, world size and rank) with `set(label, value)` before it is printed; the Trainer
// emits 'banner' with it so callers can too.

/** Ordered `label  value` lines; set() replaces a label's value in place, or appends it. */
export class StartupBanner {
  private readonly rows: { label: string; value: string }[] = [];

  constructor(readonly title = 'olmo-ts train') {}

  /** Sets a line (appended; an existing label keeps its place). Returns this, for chaining. */
  set(label: string, value: string): this {
    const row = this.rows.find((r) => r.label === label);
    if (row) row.value = value;
    else this.rows.push({ label, value });
    return this;
  }

  /** Removes a line. */
  delete(label: string): this {
    const i = this.rows.findIndex((r) => r.label === label);
    if (i >= 0) this.rows.splice(i, 1);
    return this;
  }

  /** The value of a line, if set. */
  get(label: string): string | undefined {
    return this.rows.find((r) => r.label === label)?.value;
  }

  /** The lines as [label, value] pairs, in order. */
  entries(): [string, string][] {
    return this.rows.map((r) => [r.label, r.value]);
  }

  /** The banner text: the title, then one aligned `  label  value` line each (no trailing newline). */
  render(): string {
    const w = Math.max(0, ...this.rows.map((r) => r.label.length));
    return [this.title, ...this.rows.map((r) => `  ${r.label.padEnd(w)}  ${r.value}`)].join('\n');
  }
}
