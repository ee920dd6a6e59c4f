// Closed output streams: `olmo-ts train ... | head -1` closes stdout after one line, and the next
// write fails with EPIPE. Node reports that as an uncaught 'error' event (a stack trace, the run
// lost). The policy: output to a closed stream is dropped and the command carries on (a training
// run keeps training and checkpointing; its metrics still go to metrics.jsonl), with one note on
// stderr when stderr is still open.

let installed = false;

function guard(stream: NodeJS.WriteStream, name: 'stdout' | 'stderr', onClosed: () => void): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    // Drop everything written from now on; a no-op write keeps callers (console.log) working.
    stream.write = ((_chunk: unknown, enc?: unknown, cb?: unknown) => {
      const done = typeof enc === 'function' ? enc : cb;
      if (typeof done === 'function') process.nextTick(done as () => void);
      return true;
    }) as typeof stream.write;
    if (name === 'stdout') onClosed();
  });
}

/** Makes EPIPE on stdout/stderr harmless for the rest of the process (idempotent). */
export function guardClosedOutput(): void {
  if (installed) return;
  installed = true;
  let noted = false;
  guard(process.stdout, 'stdout', () => {
    if (noted) return;
    noted = true;
    process.stderr.write('olmo-ts: stdout was closed; carrying on without console output (a training run still writes metrics.jsonl and checkpoints)\n');
  });
  guard(process.stderr, 'stderr', () => undefined);
}
