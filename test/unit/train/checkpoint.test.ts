// Checkpoint files: round trip, `latest`, keep-N pruning after the new one is complete, ephemeral
// checkpoints, overwrite protection, a disk-full failure that leaves the previous checkpoint
// intact, and a table of damaged checkpoints that each get a specific CheckpointError.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Tensor, getRngState, keep, randn, tensor, tidy } from '../../../src';
import { CheckpointError, Checkpointer, CheckpointPayload, WriteFs, disposeCheckpoint, findResumePoint, latestCheckpoint, listCheckpoints, loadCheckpoint } from '../../../src/train/checkpoint';

function payload(step: number): CheckpointPayload {
  const w = keep(tidy(() => randn([3, 4]).add(step)));
  const m = keep(tidy(() => randn([3, 4])));
  return {
    model: new Map<string, Tensor>([['transformer.wte.weight', w]]),
    optimizer: { tensors: { exp_avg: { 'transformer.wte.weight': m } }, values: { step: { 'transformer.wte.weight': step }, grad_norm_exp_avg: {}, groups: [{ lr: 1e-3, initial_lr: 1e-3, weight_decay: 0 }] } },
    trainer: { global_step: step, global_train_examples_seen_this_epoch: step * 4, global_train_tokens_seen: step * 64, epoch: 0, rng: { cpu: Buffer.from(getRngState()).toString('base64') } },
    configYaml: 'run_name: test\n',
  };
}
function free(p: CheckpointPayload): void {
  for (const t of p.model.values()) t.dispose();
  for (const byName of Object.values(p.optimizer.tensors)) for (const t of Object.values(byName)) t.dispose();
}
const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-ckpt-'));

test('save then load returns the same tensors and state; latest points at the newest', async () => {
  const dir = tmpdir();
  const ck = new Checkpointer(dir);
  const p = payload(10);
  const out = await ck.save(10, p);
  assert.equal(out, path.join(dir, 'step10'));
  assert.equal(fs.readlinkSync(path.join(dir, 'latest')), 'step10');
  const loaded = await loadCheckpoint(dir);
  assert.deepEqual(loaded.model.get('transformer.wte.weight')!.toList(), p.model.get('transformer.wte.weight')!.toList());
  assert.deepEqual(loaded.optimizer.tensors.exp_avg!['transformer.wte.weight']!.toList(), p.optimizer.tensors.exp_avg!['transformer.wte.weight']!.toList());
  assert.equal(loaded.trainer.global_step, 10);
  assert.deepEqual(loaded.optimizer.values.step, { 'transformer.wte.weight': 10 });
  assert.equal(loaded.configYaml, 'run_name: test\n');
  disposeCheckpoint(loaded);
  free(p);
});

test('keeps the newest N, deleting old ones only after the new one is complete; ephemeral ones go', async () => {
  const dir = tmpdir();
  const ck = new Checkpointer(dir, { keep: 2 });
  for (const s of [1, 2, 3]) { const p = payload(s); await ck.save(s, p); free(p); }
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [2, 3]);
  const e = payload(4);
  await ck.save(4, e, { ephemeral: true });
  free(e);
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [2, 3, 4]);
  const p5 = payload(5);
  ck.save(5, p5); // not awaited: flush() waits
  await ck.flush();
  free(p5);
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [3, 5], 'ephemeral step4 removed, keep=2 regular');
  assert.equal(latestCheckpoint(dir), path.join(dir, 'step5'));
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('tmp')), [], 'no temporary folders left');
});

test('refuses to overwrite an existing step unless save_overwrite', async () => {
  const dir = tmpdir();
  const p = payload(7);
  await new Checkpointer(dir).save(7, p);
  await assert.rejects(new Checkpointer(dir).save(7, p), /already exists \(set save_overwrite/);
  await new Checkpointer(dir, { overwrite: true }).save(7, p);
  free(p);
});

test('disk full while saving: a specific error, the previous checkpoint intact, no half folder', async () => {
  const dir = tmpdir();
  const p1 = payload(1);
  await new Checkpointer(dir).save(1, p1);
  let written = 0;
  const fullDisk: WriteFs = {
    writeFile(file, chunks) {
      fs.writeFileSync(file, '');
      for (const c of chunks) {
        written += c.byteLength;
        if (written > 100) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        fs.appendFileSync(file, c);
      }
    },
  };
  const p2 = payload(2);
  await assert.rejects(new Checkpointer(dir, { fs: fullDisk }).save(2, p2), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match((e as Error).message, /step 2 .* failed: the disk is full; the previous checkpoint is intact/);
    return true;
  });
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [1]);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['latest', 'step1']);
  const ok = await loadCheckpoint(dir);
  assert.equal(ok.trainer.global_step, 1);
  disposeCheckpoint(ok);
  free(p1); free(p2);
});

/** Replaces a checkpoint file and its manifest entry, so the checksums pass and only the content is wrong. */
function rewrite(dir: string, file: string, text: string): void {
  const data = Buffer.from(text);
  fs.writeFileSync(path.join(dir, file), data);
  const mf = path.join(dir, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
  m.files[file] = { bytes: data.byteLength, sha256: createHash('sha256').update(data).digest('hex') };
  fs.writeFileSync(mf, JSON.stringify(m));
}
const editJson = (dir: string, file: string, edit: (j: Record<string, any>) => unknown): void => {
  const j = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  const out = edit(j);
  rewrite(dir, file, JSON.stringify(out === undefined ? j : out));
};

const DAMAGE: [string, (d: string) => void, RegExp][] = [
  // Valid checksums, invalid content: each names the file and the field.
  ['train.json is {}', (d) => rewrite(d, 'train.json', '{}'), /train\.json: field "global_step" is undefined, expected an integer >= 0/],
  ['train.json is null', (d) => rewrite(d, 'train.json', 'null'), /train\.json: is null, expected an object/],
  ['a non-numeric global_step', (d) => editJson(d, 'train.json', (j) => { j.global_step = 'five'; }), /train\.json: field "global_step" is "five", expected an integer >= 0/],
  ['a short RNG state', (d) => editJson(d, 'train.json', (j) => { j.rng.cpu = 'AAAA'; }), /train\.json: field "rng\.cpu" is "3 bytes", expected a CPU generator state of \d+ bytes/],
  ['an RNG state that is not base64', (d) => editJson(d, 'train.json', (j) => { j.rng.cpu = '%%%%'; }), /train\.json: field "rng\.cpu" is "%%%%", expected a base64 random-generator state/],
  ['a manifest with "files": null', (d) => { const f = path.join(d, 'manifest.json'); const m = JSON.parse(fs.readFileSync(f, 'utf8')); m.files = null; fs.writeFileSync(f, JSON.stringify(m)); }, /manifest\.json: field "files" is null, expected an object/],
  ['optim.json without step counts', (d) => editJson(d, 'optim.json', (j) => { j.step = null; }), /optim\.json: field "step" is null, expected an object/],
  ['train.json of another step', (d) => editJson(d, 'train.json', (j) => { j.global_step = 9; }), /step3 is not the checkpoint of step 3: its manifest says step 3 and its train\.json global_step 9/],
  ['a truncated model file', (d) => fs.truncateSync(path.join(d, 'model.safetensors'), 100), /model.safetensors is truncated or padded: 100 bytes/],
  ['a flipped byte', (d) => { const f = path.join(d, 'optim.safetensors'); const b = fs.readFileSync(f); b[b.length - 3] ^= 0xff; fs.writeFileSync(f, b); }, /optim.safetensors is corrupted: its SHA-256 does not match/],
  ['a deleted file', (d) => fs.rmSync(path.join(d, 'train.json')), /train.json is missing from the checkpoint/],
  ['no manifest (an interrupted write)', (d) => fs.rmSync(path.join(d, 'manifest.json')), /neither a complete checkpoint \(no manifest.json\)/],
  ['a garbled manifest', (d) => fs.writeFileSync(path.join(d, 'manifest.json'), '{"format": 1, "files": '), /manifest.json is unreadable/],
  ['a future format', (d) => { const f = path.join(d, 'manifest.json'); const m = JSON.parse(fs.readFileSync(f, 'utf8')); m.format = 99; fs.writeFileSync(f, JSON.stringify(m)); }, /checkpoint format 99; this olmo-ts reads format 1/],
];
for (const [what, damage, msg] of DAMAGE) {
  test(`damaged checkpoint: ${what} -> CheckpointError`, async () => {
    const dir = tmpdir();
    const p = payload(3);
    const ck = await new Checkpointer(dir).save(3, p);
    free(p);
    damage(ck);
    await assert.rejects(loadCheckpoint(ck), (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `got ${(e as Error).name}: ${(e as Error).message}`);
      assert.match((e as Error).message, msg);
      return true;
    });
  });
}

test('a copied checkpoint folder is not the step its name says; `latest` decides what a run folder resumes', async () => {
  const dir = tmpdir();
  const ck = new Checkpointer(dir);
  for (const s of [5, 10]) { const p = payload(s); await ck.save(s, p); free(p); }
  fs.cpSync(path.join(dir, 'step5'), path.join(dir, 'step999'), { recursive: true });
  await assert.rejects(loadCheckpoint(path.join(dir, 'step999')), /step999 is not the checkpoint of step 999: its manifest says step 5 and its train\.json global_step 5/);
  assert.equal(latestCheckpoint(dir), path.join(dir, 'step10'), 'latest, not the highest number');
  const p = findResumePoint(dir);
  assert.match(p.notes.join('\n'), /ignoring .*step999: .*is not the checkpoint of step 999/);
  fs.rmSync(path.join(dir, 'latest'));
  fs.symlinkSync('step5', path.join(dir, 'latest'));
  assert.equal(latestCheckpoint(dir), path.join(dir, 'step5'), 'step10 has no run_id in this payload: `latest` is taken as it is');
  fs.rmSync(path.join(dir, 'latest'));
  assert.equal(latestCheckpoint(dir), path.join(dir, 'step10'), 'no `latest`: the newest consistent checkpoint');
  fs.mkdirSync(path.join(dir, 'latest'));
  assert.throws(() => latestCheckpoint(dir), /latest is a folder, not a link to a checkpoint/);
  // Pruning never counts folders beyond the one just written (another run's, or a copy).
  fs.rmSync(path.join(dir, 'latest'), { recursive: true });
  const keep1 = new Checkpointer(dir, { keep: 1, overwrite: true });
  const p11 = payload(11);
  await keep1.save(11, p11);
  free(p11);
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [11, 999]);
});

test('save_interval_unsharded checkpoints are kept by their own count', async () => {
  const dir = tmpdir();
  const ck = new Checkpointer(dir, { keep: 1, unshardedInterval: 4, keepUnsharded: 2 });
  for (const s of [2, 4, 6, 8, 10, 12, 14]) { const p = payload(s); await ck.save(s, p); free(p); }
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [8, 12, 14]);
});

test('a missing path is a clear error', async () => {
  await assert.rejects(loadCheckpoint('/nonexistent/run'), /checkpoint path \/nonexistent\/run does not exist/);
  void tensor;
});
