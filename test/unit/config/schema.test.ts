// The emitted JSON Schema: valid draft-07 (checked by Ajv in strict mode), accepts every shipped
// config, rejects what the parser rejects, documents every key, and the committed copy is current.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import Ajv from 'ajv';
import { parse } from 'yaml';
import {
  compilerSpec, dataSpec, evaluatorSpec, fsdpSpec, optimizerSpec, schedulerSpec, speedMonitorSpec, tokenizerSpec,
  trainConfigJsonSchema, trainConfigJsonSchemaText, trainSpec, wandbSpec,
} from '../../../src/config';
import { MODEL_CONFIG_KEYS } from '../../../src/config/model';

const CONFIGS = path.join(__dirname, '../../../configs');
const schema = trainConfigJsonSchema();
const validate = new Ajv({ strict: true, allErrors: true }).compile(schema);
const yamlFiles = ['official/OLMo-1B.yaml', 'official/OLMo-7B.yaml', ...fs.readdirSync(CONFIGS).filter((f) => f.endsWith('.yaml'))];

test('every shipped config validates against the schema', () => {
  assert.ok(yamlFiles.length >= 4);
  for (const f of yamlFiles) {
    const doc = parse(fs.readFileSync(path.join(CONFIGS, f), 'utf8'), { version: '1.1' });
    assert.ok(validate(doc), `${f}: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
  }
});

test('the schema rejects unknown keys, wrong types and bad names, and accepts interpolations', () => {
  const bad: [unknown, string][] = [
    [{ max_durration: 10 }, 'additionalProperties'],
    [{ optimizer: { learnig_rate: 1 } }, 'additionalProperties'],
    [{ seed: 'abc' }, 'type'],
    [{ optimizer: { name: 'adam' } }, 'enum'],
    [{ optimizer: { betas: [0.9] } }, 'minItems'],
    [{ model: { d_modle: 3 } }, 'additionalProperties'],
    [{ max_duration: '10 steps' }, 'pattern'],
    [{ evaluators: [{ type: 'lm' }] }, 'required'],
  ];
  for (const [doc, keyword] of bad) {
    assert.equal(validate(doc), false, JSON.stringify(doc));
    assert.ok(validate.errors!.some((e) => e.keyword === keyword), `${JSON.stringify(doc)}: ${JSON.stringify(validate.errors)}`);
  }
  assert.ok(validate({ seed: '${oc.env:SEED}', eval_interval: '${save_interval}', wandb: null, compile: null, max_duration: '2e12T' }));
});

// The object schema inside a node (sections may be wrapped in anyOf for null / interpolation).
function objectOf(node: any): any {
  if (node.properties) return node;
  for (const alt of node.anyOf ?? []) {
    const o = objectOf(alt);
    if (o) return o;
  }
  return undefined;
}

test('every key of every section is in the schema with a description and its default', () => {
  let count = 0;
  const walk = (fields: Record<string, any>, node: any, at: string): void => {
    const obj = objectOf(node);
    assert.ok(obj, `${at} has no object schema`);
    for (const [k, f] of Object.entries(fields)) {
      const prop = obj.properties[k];
      assert.ok(prop, `${at}${k} missing from the schema`);
      assert.ok(typeof prop.description === 'string' && prop.description.length > 5, `${at}${k} has no description`);
      if (f.makeDefault && !f.fields) assert.deepEqual(prop.default, f.makeDefault(), `${at}${k} default`);
      count++;
      if (f.fields) walk(f.fields, prop, `${at}${k}.`);
    }
  };
  walk(trainSpec.fields!, schema, '');
  walk(evaluatorSpec.fields!, (schema.properties as any).evaluators.anyOf[0].items, 'evaluators.N.');
  // 104 keys in TrainConfig and its sections (fused_loss included) + 18 in an evaluator (6 + its
  // DataConfig's 12) + batch_size_warmup (an olmo-ts extension) and its 3 keys.
  assert.equal(count, 126);
  const modelObj = objectOf((schema.properties as any).model);
  assert.deepEqual(Object.keys(modelObj.properties).sort(), [...MODEL_CONFIG_KEYS].sort());
});

test('every OLMo v0.2.5 key of every config class is there, and nothing else but documented additions', () => {
  // Extracted from OLMo v0.2.5 olmo/config.py with Python's ast (dataclass fields per class).
  const olmo = JSON.parse(fs.readFileSync(path.join(__dirname, '../../fixtures/config/olmo-v0.2.5-keys.json'), 'utf8')) as Record<string, string[]>;
  const sections: Record<string, Record<string, unknown>> = {
    TrainConfig: trainSpec.fields!, OptimizerConfig: optimizerSpec.fields!, SchedulerConfig: schedulerSpec.fields!,
    DataConfig: dataSpec.fields!, EvaluatorConfig: evaluatorSpec.fields!, TokenizerConfig: tokenizerSpec.fields!,
    WandbConfig: wandbSpec.fields!, SpeedMonitorConfig: speedMonitorSpec.fields!, CompilerConfig: compilerSpec.fields!, FSDPConfig: fsdpSpec.fields!,
  };
  // Later OLMo keys olmo-ts accepts, whose defaults keep v0.2.5's behaviour (hybrid_sharding_num_model_replicas: null = one replica per node;
  // fused_loss: the same losses and gradients within rounding, from olmo-ts's fused LM head, see src/train/loss.ts),
  // olmo-ts's evaluator metric_type (default null: OLMo's metric for the task) and olmo-ts extensions
  // (documented as such in the schema, null by default).
  const additions: Record<string, string[]> = { SchedulerConfig: ['warmup_min_lr'], DataConfig: ['memmap_dtype'], EvaluatorConfig: ['metric_type'], FSDPConfig: ['hybrid_sharding_num_model_replicas'], TrainConfig: ['batch_size_warmup', 'fused_loss'] };
  for (const [cls, keys] of Object.entries(olmo)) {
    if (cls === 'ModelConfig') continue; // src/config/model.ts
    assert.deepEqual(Object.keys(sections[cls]!).sort(), [...keys, ...(additions[cls] ?? [])].sort(), cls);
  }
  assert.match(String((schema.properties as any).batch_size_warmup.description), /olmo-ts extension \(not in OLMo v0\.2\.5\)/);
});

test('configs/train-config.schema.json is the schema the code emits', () => {
  const committed = fs.readFileSync(path.join(CONFIGS, 'train-config.schema.json'), 'utf8');
  assert.equal(committed, trainConfigJsonSchemaText(), 'stale: run `olmo-ts config schema -o configs/train-config.schema.json`');
});
