// Loading configs from YAML: OLMo's official files as they are, the shipped CPU configs, typed
// interpolation of OLMo's keys, and a YAML round trip of the resolved config.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadTrainConfig, parseTrainConfig, trainConfigToYaml } from '../../../src/config';

const ROOT = path.join(__dirname, '../../..');
const cfgPath = (p: string) => path.join(ROOT, 'configs', p);
const quiet = { onWarning: () => {}, env: {} };

test('the official configs are the OLMo files byte for byte', () => {
  for (const f of ['OLMo-1B.yaml', 'OLMo-7B.yaml']) {
    const shared = path.join(ROOT, '../shared/data/olmo-configs', f);
    if (!fs.existsSync(shared)) continue;
    assert.ok(fs.readFileSync(cfgPath(`official/${f}`)).equals(fs.readFileSync(shared)), f);
  }
});

test('OLMo-1B loads as-is with OLMo\'s values', () => {
  const warnings: string[] = [];
  const c = loadTrainConfig(cfgPath('official/OLMo-1B.yaml'), [], { env: {}, onWarning: (m) => warnings.push(m) });
  assert.equal(c.run_name, 'OLMo-1B');
  assert.equal(c.model.d_model, 2048);
  assert.equal(c.model.init_fn, 'mitchell');
  assert.equal(c.max_duration, 739_328); // YAML 1.1: underscores in integers
  assert.equal(c.optimizer.learning_rate, 4.0e-4);
  assert.deepEqual(c.optimizer.betas, [0.9, 0.95]);
  assert.equal(c.scheduler.name, 'cosine_with_warmup');
  assert.equal(c.scheduler.t_warmup, 2000);
  assert.equal(c.compile, null);
  assert.equal(c.wandb?.name, 'OLMo-1B');
  assert.equal(c.wandb?.entity, 'ai2-llm'); // default filled in
  assert.equal(c.eval_interval, 1000); // ${save_interval}, still an integer
  assert.equal(c.device_eval_batch_size, 8); // ${device_train_microbatch_size}
  assert.equal(c.evaluators.length, 13);
  assert.equal(c.evaluators[0]!.data.datasets?.['v3-small-c4_en-validation']?.[0]?.startsWith('r2://'), true);
  assert.equal(c.evaluators[2]!.type, 'downstream');
  assert.ok((c.data.paths?.length ?? 0) > 100);
  assert.equal(c.time_limit, 171000); // OLMo's default 47.5 h
  // save_folder: ${path.choose:${oc.env:SCRATCH_DIR,no_exist}/checkpoints,/results}/${oc.env:SLURM_JOB_ID,${run_name}}
  if (!fs.existsSync('/results') && !fs.existsSync('no_exist/checkpoints')) {
    assert.equal(c.save_folder, '/results/OLMo-1B');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^save_folder: none of "no_exist\/checkpoints", "\/results" exists/);
  }
});

test('OLMo-1B save_folder follows SCRATCH_DIR and SLURM_JOB_ID when they are set', () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-scratch-'));
  fs.mkdirSync(path.join(scratch, 'checkpoints'));
  const env = { SCRATCH_DIR: scratch, SLURM_JOB_ID: '4242' };
  const c = loadTrainConfig(cfgPath('official/OLMo-1B.yaml'), [], { env, onWarning: () => assert.fail('no warning expected') });
  assert.equal(c.save_folder, `${scratch}/checkpoints/4242`);
});

test('OLMo-7B loads as-is with OLMo\'s values', () => {
  const c = loadTrainConfig(cfgPath('official/OLMo-7B.yaml'), [], quiet);
  assert.equal(c.model.mlp_hidden_size, 22016);
  assert.equal(c.model.weight_tying, false);
  assert.deepEqual(c.compile, { mode: null, fullgraph: false, backend: 'inductor' });
  assert.equal(c.max_duration, '2e12T');
  assert.equal(c.scheduler.name, 'linear_with_warmup');
  assert.equal(c.scheduler.grad_clip_warmup_steps, 1000);
  assert.equal(c.scheduler.grad_clip_warmup_factor, 10);
  assert.equal(c.save_folder, 'runs/OLMo-7B');
  assert.equal(c.fsdp.wrapping_strategy, 'by_block');
  assert.equal(c.fsdp.sharding_strategy, 'FULL_SHARD');
  assert.equal(c.wandb?.group, 'OLMo-7B');
  assert.equal(c.device_eval_batch_size, 2);
  assert.equal(c.time_limit, null);
});

test('the shipped CPU configs load and are small', () => {
  for (const f of fs.readdirSync(path.join(ROOT, 'configs')).filter((n) => n.endsWith('.yaml'))) {
    const c = loadTrainConfig(cfgPath(f), [], quiet);
    assert.equal(c.run_name, f.replace('.yaml', ''), f);
    assert.ok(c.model.d_model <= 512 && c.model.n_layers <= 8, `${f} is a CPU-sized model`);
    assert.equal(c.precision, 'amp_bf16', f);
    assert.equal(c.save_folder, `runs/${c.run_name}`, f);
    assert.deepEqual(c.data.paths, ['data/brown-gpt2'], f); // the folder `prepare-data --brown -o data/brown-gpt2` writes
    assert.equal(c.model.layer_norm_with_affine, false, `${f}: exportable to HF OlmoForCausalLM`);
  }
});

test('a resolved config printed as YAML reads back to the same config', () => {
  for (const f of ['official/OLMo-1B.yaml', 'official/OLMo-7B.yaml', 'tiny-cpu.yaml']) {
    const c = loadTrainConfig(cfgPath(f), [], quiet);
    const again = parseTrainConfig(parse(trainConfigToYaml(c), { version: '1.1' }));
    assert.deepEqual(again, c, f);
  }
});

test('an empty config is all of OLMo\'s defaults', () => {
  const c = parseTrainConfig({});
  assert.equal(c.seed, 6198);
  assert.equal(c.max_duration, 10000);
  assert.equal(c.optimizer.name, 'lionw');
  assert.equal(c.optimizer.weight_decay, 0.01);
  assert.equal(c.scheduler.t_warmup, 100);
  assert.equal(c.global_train_batch_size, 512);
  assert.equal(c.device_train_microbatch_size, 16);
  assert.equal(c.save_folder, 'runs/run'); // OLMo's is "./": olmo-ts never writes a run into the current folder
  assert.equal(parseTrainConfig({ run_name: 'abc' }).save_folder, 'runs/abc');
  assert.equal(c.wandb, null);
  assert.equal(c.precision, null);
  assert.equal(c.sharded_checkpointer, 'torch_legacy');
  assert.equal(c.fsdp.precision, 'pure');
  assert.equal(c.speed_monitor.window_size, 100);
  assert.equal(c.tokenizer.identifier, 'gpt2');
  assert.equal(c.model.d_model, 768);
  assert.deepEqual(c.evaluators, []);
});

test('parseTrainConfig resolves interpolations in an in-memory object', () => {
  const c = parseTrainConfig({ run_name: 'r', wandb: { name: '${run_name}' }, save_folder: 'runs/${run_name}', eval_interval: '${save_interval}' });
  assert.equal(c.wandb?.name, 'r');
  assert.equal(c.save_folder, 'runs/r');
  assert.equal(c.eval_interval, 1000);
});
