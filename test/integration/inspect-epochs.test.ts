// inspect-data over a multi-epoch run: every step of every epoch shows the instances the trainer
// actually trained on (recorded from the training loop itself), --epoch counts steps from that
// epoch, and the CLI prints the epoch of each step.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { collectOverrideArgs } from '../../src/config/overrides';
import { loadTrainConfig } from '../../src/config';
import { inspectBatches } from '../../src/data/inspect';
import type { LoaderBatch } from '../../src/data/loader';
import { Trainer } from '../../src/train/trainer';
import { CLI, ROOT, assertDistFresh, removeSandboxes, sandbox } from '../helpers/train-process';

before(() => assertDistFresh());
after(() => removeSandboxes());

test('inspect-data shows what each step of each epoch trained on', async () => {
  const sb = sandbox('epochs', 3); // 3 batches of 4 per epoch
  const cfg = loadTrainConfig(sb.config, collectOverrideArgs(['--max_duration=3ep', '--save_interval=1000']));
  const trainer = new Trainer(cfg, { numThreads: 1, console: false });
  trainer.on('banner', (b: Trainer['banner']) => b.set('memory', 'added by a listener'));
  const trained: number[][] = [];
  const t = trainer as unknown as { trainStep: (b: LoaderBatch) => unknown };
  const step = t.trainStep.bind(trainer);
  t.trainStep = (b: LoaderBatch) => { trained.push(Array.from(b.index)); return step(b); };
  try {
    const r = await trainer.fit();
    assert.equal(r.globalStep, 9);
    assert.equal(trainer.banner.get('memory'), 'added by a listener', 'listeners of \'banner\' add lines before it is shown');
    assert.equal(trainer.banner.get('start'), 'fresh (no checkpoint to resume)');
  } finally {
    trainer.close();
  }
  assert.equal(trained.length, 9);
  assert.notDeepEqual(trained[0], trained[3], 'epochs are shuffled differently');
  const rows = await inspectBatches({ runDir: sb.run, steps: [1, 2, 3, 4, 5, 6, 7, 8, 9] });
  for (let s = 1; s <= 9; s++) {
    const mine = rows.filter((x) => x.step === s);
    assert.deepEqual(mine.map((x) => x.index), trained[s - 1], `step ${s}`);
    assert.deepEqual([...new Set(mine.map((x) => x.epoch))], [Math.floor((s - 1) / 3)], `step ${s} epoch`);
  }
  const ofEpoch1 = await inspectBatches({ runDir: sb.run, steps: [2], epoch: 1 });
  assert.deepEqual(ofEpoch1.map((x) => x.index), trained[4], '--epoch 1 step 2 is the run\'s step 5');
  const cli = spawnSync(process.execPath, [CLI, 'inspect-data', '7', '--run', sb.run, '--max-chars', '10'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /^\[step=7, epoch=2, rank=0, example=0\] index=\d+ file=\S+tok\.npy tokens=\d+:\d+\n"/);
});
