// OLMo's `save_data_indices`: each rank appends one line per step to
// save_folder/data-indices/rank{r}.tsv — "step<TAB>index<TAB>index..." — the dataset indices it
// trained on. `inspect-data --run` reads them, so any step of any epoch, world size or batch size
// can be looked up exactly. (OLMo writes rank{r}.tsv.gz; plain text survives a kill mid-write:
// a torn last line is skipped by the reader, and a step re-run after a resume is logged again.)
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Appends a rank's per-step dataset indices to its data-indices file. */
export class DataIndicesLog {
  private fd: number | null;

  constructor(runDir: string, rank: number) {
    const dir = path.join(runDir, 'data-indices');
    fs.mkdirSync(dir, { recursive: true });
    this.fd = fs.openSync(path.join(dir, `rank${rank}.tsv`), 'a');
  }

  /** Records the instances `step` trains on (one write; the OS keeps it if the process dies). */
  record(step: number, indices: ArrayLike<number>): void {
    if (this.fd === null) return;
    fs.writeSync(this.fd, `${step}\t${Array.from(indices).join('\t')}\n`);
  }

  /** Idempotent. */
  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
