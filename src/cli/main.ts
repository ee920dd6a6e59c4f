#!/usr/bin/env node
// The olmo-ts command line. Each command lives in its own file under src/cli/ and exports
// `register(program)`; heavy modules (the native addon, tokenizers) load inside the actions so
// `--help` and data commands start fast.
import { Command } from 'commander';
import { watchLauncher } from '../dist/launch';
import { register as registerConfig } from './config';
import { register as registerConvert } from './convert';
import { register as registerDemo } from './demo';
import { register as registerEval } from './eval';
import { register as registerPrepareData } from './prepare-data';
import { register as registerInspectData } from './inspect-data';
import { register as registerLaunch } from './launch';
import { register as registerGenerate } from './generate';
import { register as registerPlan } from './plan';
import { register as registerReport } from './report';
import { register as registerTrain } from './train';
import { register as registerUnshard } from './unshard';
import { guardClosedOutput } from './stdio';
import { describeFsError, isErrnoError } from '../util/fs-errors';

export function buildProgram(): Command {
  const program = new Command('olmo-ts')
    .description('Train and inspect OLMo language models, prepare their data, generate text and convert checkpoints, from Node.js (TypeScript over libtorch).')
    .version(require('../../package.json').version as string)
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions();
  registerConfig(program);
  registerConvert(program);
  registerDemo(program);
  registerEval(program);
  registerPrepareData(program);
  registerInspectData(program);
  registerLaunch(program);
  registerGenerate(program);
  registerPlan(program);
  registerReport(program);
  registerTrain(program);
  registerUnshard(program);
  return program;
}

/** The one-line message a failed command prints: file-system errors in words, the rest as they are. */
export function errorLine(e: unknown): string {
  if (isErrnoError(e)) return describeFsError(e);
  const err = e as Error;
  return err?.message ?? String(e);
}

if (require.main === module) {
  guardClosedOutput();
  // A rank started by `olmo-ts launch` stops (as on SIGTERM) if its launcher disappears.
  watchLauncher(() => process.kill(process.pid, 'SIGTERM'));
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      console.error(`olmo-ts: ${errorLine(e)}`);
      if (process.env.OLMO_TS_DEBUG) console.error((e as Error).stack);
      process.exit(1);
    });
}
