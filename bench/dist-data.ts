// A synthetic uint16 token file for benchmarks (timing does not depend on the text).
import * as fs from 'node:fs';

export function writeTokensFile(file: string, n: number, vocab: number): void {
  const a = new Uint16Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = (s >>> 16) % vocab;
  }
  fs.writeFileSync(file, Buffer.from(a.buffer));
}
