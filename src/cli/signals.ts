// SIGINT/SIGTERM/SIGHUP for commands that write files (prepare-data): the first signal aborts the
// work through an AbortSignal so it can clean up what it half-wrote, then the command exits with
// 128+signal; a second signal exits at once.
import * as os from 'node:os';

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Handle on installed handlers: pass `signal` to the work, wrap the work in `run`. */
export interface SignalStop {
  readonly signal: AbortSignal;
  /** Runs `fn`; when a signal stopped it, prints so and exits 128+signal; removes the handlers when done. */
  run<T>(fn: () => Promise<T>): Promise<T>;
}

const exitCode = (sig: NodeJS.Signals): number => 128 + (os.constants.signals[sig] ?? 15);

/** Installs the handlers; `what` names the command in messages. */
export function stopOnSignals(what: string): SignalStop {
  const ac = new AbortController();
  let got: NodeJS.Signals | null = null;
  const handler = (sig: NodeJS.Signals): void => {
    if (got) {
      process.stderr.write(`\nolmo-ts: second ${sig}, exiting now\n`);
      process.exit(exitCode(sig));
    }
    got = sig;
    process.stderr.write(`\nolmo-ts: ${sig} received: stopping ${what} and removing what it wrote (send it again to exit at once)\n`);
    ac.abort(sig);
  };
  for (const s of SIGNALS) process.on(s, handler);
  const detach = () => { for (const s of SIGNALS) process.off(s, handler); };
  return {
    signal: ac.signal,
    async run<T>(fn: () => Promise<T>): Promise<T> {
      try {
        return await fn();
      } catch (e) {
        if (got) {
          process.stderr.write(`olmo-ts: ${what} stopped by ${got}; the output folder is as it was before it started\n`);
          process.exit(exitCode(got));
        }
        throw e;
      } finally {
        detach();
      }
    },
  };
}
