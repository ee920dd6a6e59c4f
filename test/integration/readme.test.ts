// The README as a user runs it: every ```sh block line by line and every ```ts block, as written,
// in a fresh copy of the clone's layout (a temp folder of links to the repository, `olmo-ts` on the
// PATH as `npm link` puts it); the command synopsis is checked against each command's --help. Two
// commands are not run as written, each for a stated reason (LONG below), so the docs cannot rot.
// ```bash blocks hold commands for other machines (a cluster's login node, sbatch) and are not run;
// the Slurm scripts are exercised by test/slurm/ instead.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, assertDistFresh } from '../helpers/train-process';

/** README commands run differently here, and why. Every entry must still appear in the README. */
const LONG: Record<string, { run: string | null; why: string }> = {
  'npm run demo': {
    // package.json: predemo = `bash scripts/setup.sh` (also npm test's pretest, already run for this
    // suite), demo = `node dist/cli/main.js demo`; its 300 steps take about 2 minutes.
    run: 'olmo-ts demo --steps 2 --batch-size 2',
    why: 'the demo part of `npm run demo` with 2 steps (its set-up script is npm test\'s pretest)',
  },
  'npm test': { run: null, why: 'it is the command running this test' },
  'olmo-ts launch --nproc-per-node 2 -- train configs/tiny-cpu.yaml': {
    run: 'olmo-ts launch --nproc-per-node 2 -- train configs/tiny-cpu.yaml --max_duration=2 --save_folder=runs/launch',
    why: 'two ranks for 2 steps into their own run folder (the config\'s 300 steps take minutes)',
  },
};

interface Block { lang: string; text: string; line: number }

function blocks(md: string): Block[] {
  const out: Block[] = [];
  const re = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(md); m; m = re.exec(md)) out.push({ lang: m[1]!, text: m[2]!, line: md.slice(0, m.index).split('\n').length });
  return out;
}

let clone = '';
const env = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `${path.join(clone, '.bin')}:${process.env.PATH}`, OLMo_NONINTERACTIVE: '1' });

before(() => {
  assertDistFresh();
  clone = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-readme-'));
  // The clone's layout: tracked top-level entries plus what the install built; data/ and runs/ are
  // the test's own (never the developer's).
  const tracked = spawnSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map((f) => f.split('/')[0]!);
  for (const name of new Set([...tracked, 'node_modules', 'dist', 'build'])) {
    if (fs.existsSync(path.join(ROOT, name))) fs.symlinkSync(path.join(ROOT, name), path.join(clone, name));
  }
  fs.mkdirSync(path.join(clone, '.bin'));
  fs.writeFileSync(path.join(clone, '.bin', 'olmo-ts'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(clone, 'dist', 'cli', 'main.js')}" "$@"\n`, { mode: 0o755 });
  fs.symlinkSync(process.execPath, path.join(clone, '.bin', 'node'));
});
after(() => { if (!process.env.OLMO_TS_KEEP_TMP) fs.rmSync(clone, { recursive: true, force: true }); });

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const used = new Set<string>();

/** A README sh line as it is run here: as written, or its LONG replacement (null: not run). */
function asRun(line: string): string | null {
  const cmd = line.replace(/\s+#.*$/, '').trim();
  if (cmd in LONG) { used.add(cmd); return LONG[cmd]!.run; }
  return line;
}

test('README: every sh block runs as written in a fresh clone layout (long commands as stated)', (t) => {
  const sh = blocks(README).filter((b) => b.lang === 'sh');
  assert.ok(sh.length >= 2, 'the README has its command blocks');
  for (const b of sh) {
    for (const [i, line] of b.text.split('\n').entries()) {
      if (!line.trim() || line.trim().startsWith('#')) continue;
      const cmd = asRun(line);
      if (cmd === null) { t.diagnostic(`README.md:${b.line + 1 + i}: not run: ${line.trim()} (${LONG[line.replace(/\s+#.*$/, '').trim()]!.why})`); continue; }
      const r = spawnSync('bash', ['-euo', 'pipefail', '-c', cmd], { cwd: clone, env: env(), encoding: 'utf8', timeout: 180_000 });
      assert.equal(r.status, 0, `README.md:${b.line + 1 + i}: \`${cmd}\` exited ${r.status ?? r.signal}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    }
  }
  for (const k of Object.keys(LONG)) assert.ok(used.has(k), `LONG entry "${k}" no longer appears in the README: remove it`);
  // What the walkthrough promises exists (two ranks shard the model: FSDP's sharded checkpoint).
  for (const f of ['data/brown-gpt2/manifest.json', 'runs/tiny-cpu/step4/model.safetensors', 'hf-tiny/config.json', 'runs/tiny-cpu/report.html', 'runs/demo/report.html', 'runs/launch/step2/rank1/model.safetensors']) {
    assert.ok(fs.existsSync(path.join(clone, f)), `${f} was written`);
  }
});

test('README: every ts block runs as a script in the clone (importing the package by name)', () => {
  const ts = blocks(README).filter((b) => b.lang === 'ts');
  assert.ok(ts.length >= 2);
  for (const b of ts) {
    const file = path.join(clone, `readme-${b.line}.ts`);
    fs.writeFileSync(file, b.text);
    // The training example needs the walkthrough's data: prepared here too when this test runs alone.
    if (!fs.existsSync(path.join(clone, 'data/brown-gpt2/manifest.json'))) {
      const p = spawnSync('olmo-ts', ['prepare-data', '--brown', '-o', 'data/brown-gpt2'], { cwd: clone, env: env(), encoding: 'utf8' });
      assert.equal(p.status, 0, p.stderr);
    }
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: clone, env: env(), encoding: 'utf8', timeout: 180_000 });
    assert.equal(r.status, 0, `README.md:${b.line} (ts block) exited ${r.status ?? r.signal}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  }
});

test('README: the command synopsis names real commands and options (checked against --help)', () => {
  const synopsis = blocks(README).find((b) => b.lang === '' && /^olmo-ts train /m.test(b.text));
  assert.ok(synopsis, 'the synopsis block');
  for (const line of synopsis.text.split('\n').filter((l) => l.startsWith('olmo-ts '))) {
    const words = line.replace(/\s{2,}.*$/, '').split(/\s+/); // the command part, before the description
    const cmd = words.slice(1).filter((w) => /^[a-z][a-z-]*$/.test(w)).slice(0, words[1] === 'config' ? 2 : 1);
    const help = spawnSync(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), ...cmd, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, `${line}: ${help.stderr}`);
    for (const flag of line.match(/--[a-z][a-z-]*/g) ?? []) {
      if (flag === '--a') continue; // the --a.b=c override placeholder
      assert.ok(help.stdout.includes(flag), `${line}: \`olmo-ts ${cmd.join(' ')} --help\` has no ${flag}`);
    }
  }
});
