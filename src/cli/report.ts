// `olmo-ts report RUN_DIR`: turns a run folder's metrics.jsonl (and config.yaml) into one
// self-contained HTML page of loss, perplexity, learning-rate, grad-norm and throughput curves.
import { Command } from 'commander';
import { intAtLeast } from './args';

/** Options of the `report` command. */
interface ReportOptions {
  output?: string;
  maxPoints: number;
}

/** Adds the `report` command to the olmo-ts program. */
export function register(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report (loss, perplexity, evaluation, LR, grad-norm, throughput curves) for a training run')
    .argument('<run_dir>', 'run folder (save_folder) holding metrics.jsonl and, optionally, config.yaml')
    .option('-o, --output <file>', 'where to write the page (default: RUN_DIR/report.html)')
    .option('--max-points <n>', 'most points per curve; longer curves are downsampled keeping spikes', intAtLeast(3), 2000)
    .addHelpText('after', `
The page needs no network: Chart.js is inlined. NaN/inf losses show as gaps; a run resumed from an
earlier checkpoint shows its final history (repeated steps keep the later values).

Examples:
  $ olmo-ts report runs/demo                 # writes runs/demo/report.html
  $ olmo-ts report runs/demo -o /tmp/demo.html`)
    .action(async (runDir: string, opts: ReportOptions) => {
      const path = await import('node:path');
      const fs = await import('node:fs');
      const { loadReportData } = await import('../train/logging/report-data');
      const { renderReportHtml } = await import('../train/logging/report-html');
      if (!fs.existsSync(runDir) || !fs.statSync(runDir).isDirectory()) {
        throw new Error(`run folder not found: ${runDir}`);
      }
      const data = loadReportData(runDir, { maxPoints: opts.maxPoints });
      const out = opts.output ?? path.join(runDir, 'report.html');
      const { writeAtomic } = await import('../data/npy');
      fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
      writeAtomic(out, [Buffer.from(renderReportHtml(data))]); // never a half-written page

      const s = data.summary;
      const loss = s.finalLoss === undefined ? '' : `, final loss ${s.finalLoss.toFixed(4)}`;
      console.log(`wrote ${out} (${s.loggedSteps} logged steps${loss}${s.truncatedLastLine ? '; skipped a truncated last line' : ''})`);
    });
}

