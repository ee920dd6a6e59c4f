// The training device: model.init_device decides as OLMo does (cpu; cuda -> cuda:LOCAL_RANK; meta
// or null -> a GPU when there is one). On a machine without CUDA every choice but cuda trains on the
// CPU, and cuda is refused with the key, the reason and what to set instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrainConfig } from '../../../src/config';
import { ConfigError } from '../../../src/config/errors';
import { cuda } from '../../../src/tensor/runtime';
import { deviceIndex, trainingDevice } from '../../../src/train/device';

const cfg = (init_device: unknown) => parseTrainConfig({ model: { init_device } });
const gpus = cuda.isAvailable() ? cuda.deviceCount() : 0;

test('init_device cpu trains on the CPU; meta and null take a GPU when there is one', () => {
  assert.equal(trainingDevice(cfg('cpu'), 0), 'cpu');
  for (const d of ['meta', null]) assert.equal(trainingDevice(cfg(d), 0), gpus ? 'cuda:0' : 'cpu');
  assert.equal(deviceIndex('cpu'), 0);
  assert.equal(deviceIndex('cuda:3'), 3);
});

test('init_device cuda without a CUDA device is refused naming the key and the way out', { skip: gpus ? 'this machine has a CUDA device' : false }, () => {
  for (const d of ['cuda', 'cuda:1']) {
    assert.throws(() => trainingDevice(cfg(d), 0), (e: unknown) => e instanceof ConfigError && e.key === 'model.init_device' && /set model\.init_device: cpu/.test(e.message) && /CPU-only libtorch|no CUDA device/.test(e.message));
  }
});

test('an unknown init_device is refused', () => {
  assert.throws(() => trainingDevice(cfg('tpu'), 0), (e: unknown) => e instanceof ConfigError && /expected cpu, cuda, cuda:N, meta or null/.test(e.message));
});

// (one rank per GPU, and a local rank beyond the node's GPUs: test/cuda/trainer.test.ts, on a GPU machine)
