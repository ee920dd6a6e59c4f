// Checkpoint files: round trip, `latest`, keep-N pruning after the new one is complete, ephemeral
// checkpoints, overwrite protection, a disk-full failure that leaves the previous checkpoint
// intact, and a table of damaged checkpoints that each get a specific CheckpointError.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Tensor, getRngState, keep, randn, tensor, tidy } from '../../../src';
import { CheckpointError, Checkpointer, CheckpointPayload, WriteFs, disposeCheckpoint, latestCheckpoint, listCheckpoints, loadCheckpoint } from '../../../src/train/checkpoint';

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
    writeFile(file, data) {
      written += data.byteLength;
      if (written > 100) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      fs.writeFileSync(file, data);
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

const DAMAGE: [string, (d: string) => void, RegExp][] = [
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

test('a missing path is a clear error', async () => {
  await assert.rejects(loadCheckpoint('/nonexistent/run'), /checkpoint path \/nonexistent\/run does not exist/);
  void tensor;
});
