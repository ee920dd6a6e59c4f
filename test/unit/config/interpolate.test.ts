// OmegaConf-style interpolation and OLMo's path resolvers: typed references, relative keys,
// nested resolver calls, escapes, oc.env, path.glob / path.choose / path.last_checkpoint, errors.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildTrainConfig, ConfigError, defaultResolvers, resolveInterpolations, resolveRawConfig } from '../../../src/config';

const resolve = (tree: unknown, env: Record<string, string> = {}, validatePaths = true, warnings: string[] = []) =>
  resolveInterpolations(tree, { resolvers: defaultResolvers({ env, validatePaths, onWarning: (m) => warnings.push(m) }) }) as Record<string, any>;

function throwsConfig(fn: () => unknown, key: string, msg: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    assert.equal(e.key, key);
    assert.match(e.message, msg);
    return true;
  });
}

test('whole-value references keep their type; references inside text become text', () => {
  const r = resolve({ a: 5, b: '${a}', c: 'n=${a}', d: { e: [1, '${a}'] }, f: '${d}', g: '${d.e.1}', h: '${d.e[0]}', t: true, u: 'x${t}' });
  assert.equal(r.b, 5);
  assert.equal(r.c, 'n=5');
  assert.deepEqual(r.d.e, [1, 5]);
  assert.deepEqual(r.f, { e: [1, 5] });
  assert.equal(r.g, 5);
  assert.equal(r.h, 1);
  assert.equal(r.u, 'xTrue'); // as Python's str(True)
});

test('relative references: one dot is a sibling, each further dot climbs a level', () => {
  const r = resolve({ top: 1, s: { a: 2, b: '${.a}', c: '${..top}', n: { d: '${..a}' } } });
  assert.equal(r.s.b, 2);
  assert.equal(r.s.c, 1);
  assert.equal(r.s.n.d, 2);
});

test('chains resolve in any order, escapes stay literal', () => {
  const r = resolve({ a: '${b}', b: '${c}', c: 'x', lit: 'cost \\${a}', mixed: '\\${a}-${a}' });
  assert.equal(r.a, 'x');
  assert.equal(r.lit, 'cost ${a}');
  assert.equal(r.mixed, '${a}-x');
});

test('oc.env: the variable, else the default (string or null), else an error', () => {
  const r = resolve({ a: '${oc.env:HOME_X}', b: '${oc.env:NOPE,fallback}', c: '${oc.env:NOPE,null}', d: "${oc.env:NOPE,'8'}", e: '${oc.env:NOPE,${a}}/x' }, { HOME_X: '/h' });
  assert.deepEqual([r.a, r.b, r.c, r.d, r.e], ['/h', 'fallback', null, '8', '/h/x']);
  throwsConfig(() => resolve({ k: { v: '${oc.env:NOPE}' } }), 'k.v', /environment variable NOPE is not set/);
  throwsConfig(() => resolve({ v: '${oc.env:NOPE,8}' }), 'v', /default is 8, expected a string or null \(quote it: '8'\)/);
});

test('interpolation errors name the key: missing reference (with suggestion), cycle, unknown resolver, syntax', () => {
  throwsConfig(() => resolve({ run_name: 'x', w: { name: '${run_nme}' } }), 'w.name', /\$\{run_nme\} refers to "run_nme", which is not in the config \(did you mean "run_name"\?\)/);
  throwsConfig(() => resolve({ a: '${b}', b: '${c}', c: '${a}' }), 'a', /interpolation cycle: a -> b -> c -> a/);
  throwsConfig(() => resolve({ a: '${oc.envv:X}' }), 'a', /unknown resolver "oc.envv".*did you mean "oc.env"/);
  throwsConfig(() => resolve({ a: 'x ${b' }), 'a', /expected a closing "}"/);
  throwsConfig(() => resolve({ a: '${b c}' }), 'a', /expected a key path/);
});

test('references to keys the file leaves out see OLMo\'s defaults (as OmegaConf sees the schema)', () => {
  const c = buildTrainConfig({ eval_interval: '${save_interval}', run_name: '${wandb.entity}-${model.d_model}', wandb: { project: 'p' } }, [], { env: {} });
  assert.equal(c.eval_interval, 1000);
  assert.equal(c.run_name, 'ai2-llm-768');
  const raw = resolveRawConfig({ a: 1 }, [], { env: {} });
  // Defaults are not injected into the raw tree, except the run folder's (never the current folder).
  assert.deepEqual(raw, { a: 1, save_folder: 'runs/run' });
  assert.equal(resolveRawConfig({ run_name: 'x', a: '${save_folder}' }, [], { env: {} }).a, 'runs/x');
  assert.equal(resolveRawConfig({ a: 1 }, [], { env: {}, configName: 'my-config' }).save_folder, 'runs/my-config');
});

function tmpTree(files: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-cfg-'));
  for (const f of files) {
    const p = path.join(dir, f);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (f.endsWith('/')) fs.mkdirSync(p, { recursive: true });
    else fs.writeFileSync(p, '');
  }
  return dir;
}

test('path.glob expands Python-style globs, sorted, over several patterns; URLs pass through', () => {
  const d = tmpTree(['data/b-1.npy', 'data/a-2.npy', 'data/a-1.npy', 'data/.hidden.npy', 'data/x.txt', 'data/sub/c-1.npy', 'other/z.npy']);
  const r = resolve({ p: `\${path.glob:${d}/data/*.npy,${d}/other/?.npy,s3://bucket/f.npy}`, q: `\${path.glob:${d}/data/[ab]-1.npy}`, s: `\${path.glob:${d}/data/*/*.npy}` });
  assert.deepEqual(r.p, [`${d}/data/a-1.npy`, `${d}/data/a-2.npy`, `${d}/data/b-1.npy`, `${d}/other/z.npy`, 's3://bucket/f.npy']);
  assert.deepEqual(r.q, [`${d}/data/a-1.npy`, `${d}/data/b-1.npy`]);
  assert.deepEqual(r.s, [`${d}/data/sub/c-1.npy`]);
  throwsConfig(() => resolve({ data: { paths: `\${path.glob:${d}/none/*.npy}` } }), 'data.paths', /does not match any files or dirs/);
  assert.deepEqual(resolve({ p: `\${path.glob:${d}/none/*.npy}` }, {}, false).p, []);
  throwsConfig(() => resolve({ p: '${path.glob:s3://b/*.npy}' }), 'p', /remote paths cannot be listed/);
});

test('path.choose picks the first existing path or URL, else falls back to the last with a warning', () => {
  const d = tmpTree(['here/']);
  assert.equal(resolve({ p: `\${path.choose:${d}/missing,${d}/here,/also}` }).p, `${d}/here`);
  assert.equal(resolve({ p: `\${path.choose:${d}/missing,gs://bucket/ckpt}` }).p, 'gs://bucket/ckpt');
  const warnings: string[] = [];
  assert.equal(resolve({ p: `\${path.choose:${d}/m1,${d}/m2}` }, {}, true, warnings).p, `${d}/m2`);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^p: none of .* exists/);
});

test('path.last_checkpoint finds the highest stepN folder, preferring sharded on a tie', () => {
  const d = tmpTree(['step100/', 'step2000-unsharded/', 'step2000/', 'step300/', 'step9999.tmp/', 'stepfoo/', 'step5000', 'latest/']);
  assert.equal(resolve({ p: `\${path.last_checkpoint:${d}}` }).p, path.join(d, 'step2000'));
  assert.equal(resolve({ p: `\${path.last_checkpoint:file://${d}}` }).p, path.join(d, 'step2000'));
  const u = tmpTree(['step10-unsharded/', 'step5/']);
  assert.equal(resolve({ p: `\${path.last_checkpoint:${u}}` }).p, path.join(u, 'step10-unsharded'));
  const empty = tmpTree(['nothing/']);
  throwsConfig(() => resolve({ load_path: `\${path.last_checkpoint:${empty}}` }), 'load_path', /could not find a latest checkpoint/);
  assert.equal(resolve({ p: `\${path.last_checkpoint:${empty}}` }, {}, false).p, '');
  throwsConfig(() => resolve({ p: '${path.last_checkpoint:s3://b/run}' }), 'p', /remote folders is not supported/);
});
