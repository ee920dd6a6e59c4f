// Tokenization and prepare-data throughput: MB/s per tokenizer backend, prepare-data scaling with
// worker threads, and the global-order shuffle rate. Short by default; BENCH_MB=<n> for more text.
//   node --import tsx bench/tokenize.bench.ts
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { loadTokenizer, pythonStrip } from '../src/data/tokenizer';
import { resolveTokenizerFile } from '../src/data/tokenizer-files';
import { prepareData } from '../src/data/prepare';
import { brownDocuments } from '../src/data/brown';
import { buildGlobalIndices } from '../src/data/global-indices';

const OLMO_TOK = path.resolve(__dirname, '../tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json'); // shipped gzipped
const C4 = path.resolve(__dirname, '../test/fixtures/c4-sample');
const TARGET_MB = Number(process.env.BENCH_MB ?? 3);

function corpus(): string[] {
  const texts: string[] = [];
  const c4 = C4;
  if (fs.existsSync(c4)) {
    for (const f of fs.readdirSync(c4)) {
      for (const l of zlib.gunzipSync(fs.readFileSync(path.join(c4, f))).toString('utf8').split('\n')) if (l) texts.push(pythonStrip(JSON.parse(l).text));
    }
  }
  texts.push(...brownDocuments().map((d) => d.text));
  const out: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < TARGET_MB * 1e6; i++) {
    const t = texts[i % texts.length]!;
    out.push(t);
    bytes += Buffer.byteLength(t);
  }
  return out;
}

async function rate(name: string, texts: string[], fn: (batch: string[]) => Promise<unknown>, batch: number): Promise<number> {
  const bytes = texts.reduce((s, t) => s + Buffer.byteLength(t), 0);
  await fn(texts.slice(0, 4)); // warm up
  const t0 = performance.now();
  for (let i = 0; i < texts.length; i += batch) await fn(texts.slice(i, i + batch));
  const s = (performance.now() - t0) / 1000;
  const mbps = bytes / 1e6 / s;
  console.log(`  ${name.padEnd(44)} ${mbps.toFixed(2).padStart(6)} MB/s`);
  return mbps;
}

async function main(): Promise<void> {
  const texts = corpus();
  const mb = texts.reduce((s, t) => s + Buffer.byteLength(t), 0) / 1e6;
  // Scaling needs idle cores: on a shared machine compare "MB per CPU-s" (load-independent) too.
  console.log(`tokenizer throughput on ${mb.toFixed(1)} MB of C4 + Brown text (${os.availableParallelism()} CPUs, load ${os.loadavg()[0]!.toFixed(1)})`);
  const results: Record<string, number> = {};
  if (resolveTokenizerFile(OLMO_TOK)) {
    const hf = await loadTokenizer(OLMO_TOK);
    results.hf1 = await rate('HF tokenizers (Rust), OLMo tokenizer, 1 doc/call', texts, (b) => hf.encodeBatch(b), 1);
    results.hfb = await rate('HF tokenizers (Rust), OLMo tokenizer, batch 256', texts, (b) => hf.encodeBatch(b), 256);
  }
  const gpt2 = await loadTokenizer('gpt2');
  results.gpt2 = await rate('js-tiktoken gpt2', texts, (b) => gpt2.encodeBatch(b), 64);
  const cl = await loadTokenizer('cl100k');
  results.cl100k = await rate('js-tiktoken cl100k', texts, (b) => cl.encodeBatch(b), 64);
  if (results.hfb && results.hf1) console.log(`  ratio HF batched / HF single: ${(results.hfb / results.hf1).toFixed(2)}x; HF batched / js-tiktoken gpt2: ${(results.hfb / results.gpt2!).toFixed(2)}x`);

  // prepare-data end to end (read, parse, tokenize, write) by worker count
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-ts-bench-'));
  try {
    const input = path.join(dir, 'docs.jsonl.gz');
    fs.writeFileSync(input, zlib.gzipSync(texts.map((t) => JSON.stringify({ text: t })).join('\n') + '\n'));
    const ident = resolveTokenizerFile(OLMO_TOK) ? OLMO_TOK : 'gpt2';
    console.log(`prepare-data with ${path.basename(ident)} (MB/s of text; scaling vs 1 worker)`);
    let base = 0;
    for (const workers of [0, 1, 2, 4]) {
      const cpu0 = process.cpuUsage();
      const s = await prepareData({ inputs: [input], output: path.join(dir, `out${workers}`), tokenizer: { identifier: ident }, workers });
      const cpu = process.cpuUsage(cpu0);
      const cpuS = (cpu.user + cpu.system) / 1e6; // all threads of this process
      const r = s.bytes / 1e6 / s.seconds;
      if (workers === 1) base = r;
      const per = workers ? `${(r / workers).toFixed(2)} MB/s per worker` : 'main thread only ';
      console.log(`  workers=${workers}  ${r.toFixed(2).padStart(6)} MB/s  ${per}  ${(s.bytes / 1e6 / cpuS).toFixed(2)} MB per CPU-s` +
        `${base ? `  ${(r / base).toFixed(2)}x vs 1 worker` : ''}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const n = 10_000_000;
  const t0 = performance.now();
  buildGlobalIndices({ numInstances: n, seed: 6198, dropLast: false, worldSize: 1 });
  const s = (performance.now() - t0) / 1000;
  console.log(`global order: shuffled ${n.toLocaleString('en-US')} indices (numpy PCG64 port) in ${s.toFixed(2)} s = ${(n / s / 1e6).toFixed(1)} M/s`);
}

main().catch((e) => { console.error(e); process.exit(1); });
