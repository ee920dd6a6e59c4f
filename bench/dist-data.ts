// Helpers of the multi-process benchmarks: a synthetic uint16 token file (timing does not depend on
// the text) and a free loopback port for the rendezvous store.
import * as fs from 'node:fs';
import * as net from 'node:net';

export function writeTokensFile(file: string, n: number, vocab: number): void {
  const a = new Uint16Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = (s >>> 16) % vocab;
  }
  fs.writeFileSync(file, Buffer.from(a.buffer));
}

/** A TCP port the OS reports free on loopback (for a rendezvous store). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}
