// Model checkpoints on disk: weights as safetensors under OLMo's state-dict names, and the model
// config as OLMo's config.yaml (`model:` section) beside them. Loading also accepts hf_olmo's
// "model." prefix, FSDP-wrapped names and a different block_group_size, as OLMo does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../tensor/tensor';
import { Device } from '../tensor/dtype';
import { dispose } from '../tensor/scope';
import { ArgumentError } from '../native/errors';
import { ConfigError } from '../config/errors';
import { ModelConfig, modelConfigToJSON, parseModelConfig } from '../config/model';
import { readSafetensors, saveSafetensors } from '../io/safetensors';
import { OLMo } from './olmo';

/** File names inside a checkpoint directory. */
export const WEIGHTS_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.yaml';

/**
 * Renames a state dict from any OLMo layout to the names of a model with `blockGroupSize`: drops
 * "_fsdp_wrapped_module." and hf_olmo's leading "model.", and regroups transformer.blocks.N <->
 * transformer.block_groups.G.I (a grouped file's group size is the number of blocks in its group 0),
 * as OLMo's _make_state_dict_compatible does.
 */
export function normalizeStateDict(src: Map<string, Tensor>, blockGroupSize: number): Map<string, Tensor> {
  const names = [...src.keys()].map((k) => k.split('_fsdp_wrapped_module.').join('').replace(/^model\.transformer\./, 'transformer.'));
  const inGroup0 = new Set(names.map((k) => /^transformer\.block_groups\.0\.(\d+)\./.exec(k)?.[1]).filter((x) => x !== undefined));
  const fileGroup = Math.max(1, inGroup0.size);
  const out = new Map<string, Tensor>();
  [...src.values()].forEach((t, i) => {
    let k = names[i]!;
    const g = /^transformer\.block_groups\.(\d+)\.(\d+)\.(.*)$/.exec(k);
    if (g) k = `transformer.blocks.${Number(g[1]) * fileGroup + Number(g[2])}.${g[3]}`;
    const f = /^transformer\.blocks\.(\d+)\.(.*)$/.exec(k);
    if (f && blockGroupSize > 1) {
      const layer = Number(f[1]);
      k = `transformer.block_groups.${Math.floor(layer / blockGroupSize)}.${layer % blockGroupSize}.${f[2]}`;
    }
    if (out.has(k)) throw new ArgumentError(`state dict has two tensors for ${k}`);
    out.set(k, t);
  });
  return out;
}

/** Writes the weights (and the config in the file's metadata) to one .safetensors file. */
export function saveModelWeights(model: OLMo, file: string): void {
  saveSafetensors(file, model.stateDict(), { format: 'olmo-ts', config: JSON.stringify(modelConfigToJSON(model.config)) });
}

/** Copies weights from a .safetensors file into the model (names normalised; strict by default). */
export function loadModelWeights(model: OLMo, file: string, strict = true): void {
  const { tensors } = readSafetensors(file);
  try {
    model.loadStateDict(normalizeStateDict(tensors, model.config.block_group_size), strict);
  } finally {
    dispose([...tensors.values()]);
  }
}

/** Writes `dir/model.safetensors` and `dir/config.yaml` (with a `model:` section, as OLMo's checkpoints have). */
export function saveCheckpoint(model: OLMo, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  saveModelWeights(model, path.join(dir, WEIGHTS_FILE));
  const YAML = require('yaml') as typeof import('yaml');
  fs.writeFileSync(path.join(dir, CONFIG_FILE), YAML.stringify({ model: modelConfigToJSON(model.config) }));
}

/** The model config of a checkpoint: config.yaml's `model:` section, else the weights' metadata. */
export function readCheckpointConfig(dirOrFile: string): ModelConfig {
  const isFile = fs.existsSync(dirOrFile) && fs.statSync(dirOrFile).isFile();
  const dir = isFile ? path.dirname(dirOrFile) : dirOrFile;
  const yamlPath = path.join(dir, CONFIG_FILE);
  if (fs.existsSync(yamlPath)) {
    const YAML = require('yaml') as typeof import('yaml');
    let raw: { model?: unknown } | null;
    try {
      raw = YAML.parse(fs.readFileSync(yamlPath, 'utf8')) as { model?: unknown } | null;
    } catch (e) {
      throw new ConfigError('', `${yamlPath} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (!raw || typeof raw !== 'object' || !('model' in raw)) throw new ConfigError('model', `${yamlPath} has no model: section`);
    return parseModelConfig(raw.model, 'model');
  }
  const weights = isFile ? dirOrFile : path.join(dir, WEIGHTS_FILE);
  if (!fs.existsSync(weights)) throw new ArgumentError(`no checkpoint at ${dirOrFile}: expected ${CONFIG_FILE} and ${WEIGHTS_FILE}`);
  const fd = fs.openSync(weights, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE());
    if (n > 100 * 1024 * 1024) throw new ArgumentError(`${weights}: not a safetensors file (header length ${n})`);
    const head = Buffer.alloc(n);
    fs.readSync(fd, head, 0, n, 8);
    let meta: Record<string, string> | undefined;
    try {
      meta = (JSON.parse(head.toString('utf8')) as { __metadata__?: Record<string, string> }).__metadata__;
    } catch {
      throw new ArgumentError(`${weights}: not a safetensors file (unreadable header)`);
    }
    if (!meta?.config) throw new ArgumentError(`${weights} carries no config (no ${CONFIG_FILE} beside it, no "config" metadata)`);
    return parseModelConfig(JSON.parse(meta.config), 'model');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The tokenizer a checkpoint names: `tokenizer.identifier` of its config.yaml (a training
 * checkpoint's or run folder's full config), else undefined.
 */
export function checkpointTokenizer(dirOrFile: string): string | undefined {
  const dir = fs.existsSync(dirOrFile) && fs.statSync(dirOrFile).isFile() ? path.dirname(dirOrFile) : dirOrFile;
  const yamlPath = path.join(dir, CONFIG_FILE);
  if (!fs.existsSync(yamlPath)) return undefined;
  try {
    const YAML = require('yaml') as typeof import('yaml');
    const raw = YAML.parse(fs.readFileSync(yamlPath, 'utf8')) as { tokenizer?: { identifier?: unknown } } | null;
    const id = raw?.tokenizer?.identifier;
    return typeof id === 'string' && id ? id : undefined;
  } catch {
    return undefined;
  }
}

/** True when `dir` holds a Hugging Face OlmoForCausalLM (config.json with model_type "olmo"). */
export function isHfOlmoDir(dir: string): boolean {
  const p = path.join(dir, 'config.json');
  if (!fs.existsSync(p)) return false;
  try {
    return (JSON.parse(fs.readFileSync(p, 'utf8')) as { model_type?: string }).model_type === 'olmo';
  } catch {
    return false;
  }
}

/**
 * The model checkpoint a path names: a .safetensors file or a folder holding model.safetensors
 * (an OLMo checkpoint, an HF folder) as it is; a run folder (save_folder) gives the checkpoint its
 * `latest` link names. Anything else is an ArgumentError saying what the folder lacks.
 */
export function resolveModelCheckpoint(dirOrFile: string): string {
  if (!fs.existsSync(dirOrFile)) throw new ArgumentError(`no checkpoint at ${dirOrFile}`);
  if (!fs.statSync(dirOrFile).isDirectory() || fs.existsSync(path.join(dirOrFile, WEIGHTS_FILE))) return dirOrFile;
  const latest = path.join(dirOrFile, 'latest');
  if (fs.existsSync(path.join(latest, WEIGHTS_FILE))) return fs.realpathSync(latest);
  const steps = fs.readdirSync(dirOrFile).filter((n) => /^step\d+$/.test(n));
  if (steps.length) throw new ArgumentError(`${dirOrFile} is a run folder without a \`latest\` checkpoint link: give one of its checkpoints, e.g. ${path.join(dirOrFile, steps.sort((a, b) => Number(b.slice(4)) - Number(a.slice(4)))[0]!)}`);
  throw new ArgumentError(`${dirOrFile} holds no model: expected ${WEIGHTS_FILE} (an OLMo or Hugging Face checkpoint folder) or a run folder with a \`latest\` checkpoint`);
}

/**
 * Loads a model from an olmo-ts/OLMo checkpoint (a directory with config.yaml + model.safetensors,
 * or a .safetensors file with its config in the metadata), a Hugging Face OlmoForCausalLM folder,
 * or a run folder (its `latest` checkpoint).
 */
export function loadCheckpoint(pathIn: string, opts: { device?: Device } = {}): OLMo {
  const dirOrFile = resolveModelCheckpoint(pathIn);
  const isDir = fs.statSync(dirOrFile).isDirectory();
  if (isDir && isHfOlmoDir(dirOrFile) && !fs.existsSync(path.join(dirOrFile, CONFIG_FILE))) {
    const { loadHfOlmo } = require('./hf') as typeof import('./hf');
    return loadHfOlmo(dirOrFile, opts);
  }
  const config = readCheckpointConfig(dirOrFile);
  const model = new OLMo(config, { device: opts.device, initParams: false });
  try {
    loadModelWeights(model, isDir ? path.join(dirOrFile, WEIGHTS_FILE) : dirOrFile);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
