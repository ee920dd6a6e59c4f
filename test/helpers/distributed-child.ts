// One rank of runDistributed (test/helpers/distributed.ts): joins the process group from the
// environment, calls the named function of the given module with (pg, args), and writes
// {result} or {error, errorName} as JSON to the given file.
import * as fs from 'node:fs';
import { ProcessGroup } from '../../src/dist/process-group';

async function main(): Promise<void> {
  const [mod, fn, out, args] = process.argv.slice(2) as [string, string, string, string];
  let pg: ProcessGroup | null = null;
  try {
    pg = await ProcessGroup.init();
    const m = (await import(mod)) as Record<string, (pg: ProcessGroup, args: unknown) => unknown>;
    const f = m[fn] ?? (m as { default?: Record<string, (pg: ProcessGroup, args: unknown) => unknown> }).default?.[fn];
    if (typeof f !== 'function') throw new Error(`${mod} has no export ${fn}`);
    const result = await f(pg, JSON.parse(args));
    fs.writeFileSync(out, JSON.stringify({ result }));
    pg.close();
    process.exit(0);
  } catch (e) {
    const err = e as Error;
    fs.writeFileSync(out, JSON.stringify({ error: err.message, errorName: err.name }));
    process.exit(1);
  }
}
void main();
