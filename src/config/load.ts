// Loading a TrainConfig from YAML the way OLMo's TrainConfig.load does: read the file (YAML 1.1,
// as PyYAML/OmegaConf read it, so 739_328 is an integer), merge `--a.b=c` overrides, resolve
// interpolations (seeing defaults for keys the file leaves out), then validate once.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from './errors';
import { resolveInterpolations } from './interpolate';
import { applyOverrides } from './overrides';
import { defaultResolvers, ResolverOptions } from './resolvers';
import { defaultAt, isPlainObject } from './spec';
import { TrainConfig, defaultSaveFolder, trainSpec, updateLegacySettings, validateTrainConfig } from './train';

/** Options for loading a config. */
export interface LoadOptions extends ResolverOptions {
  /** Names the run folder when the config sets neither save_folder nor run_name: runs/<configName> (loadTrainConfig: the file's name). */
  configName?: string;
}

/** Reads a YAML file into a plain tree (throws ConfigError with file:line:col on syntax errors). */
export function readYamlFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('', `cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseYamlText(text, file);
}

/** Parses YAML text (1.1 rules, duplicate keys rejected) into a plain top-level mapping. */
export function parseYamlText(text: string, file = '<string>'): Record<string, unknown> {
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new ConfigError('', `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const v: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (v === null || v === undefined) return {};
  if (!isPlainObject(v)) throw new ConfigError('', `${file}: expected a mapping of config keys at the top level, got a ${Array.isArray(v) ? 'list' : typeof v}`);
  return v;
}

/**
 * The merged and interpolated (but not yet validated) tree: raw YAML + overrides, with every
 * `${...}` resolved. `config show` prints the validated form; this is for tools that want the raw.
 */
export function resolveRawConfig(raw: Record<string, unknown>, overrides: readonly string[] = [], opts: LoadOptions = {}): Record<string, unknown> {
  const merged = applyOverrides(updateLegacySettings(raw), overrides);
  // No save_folder: runs/<run_name>, else runs/<config name> (never the current folder, as OLMo's "./").
  if (merged.save_folder === undefined) {
    merged.save_folder = merged.run_name !== undefined && merged.run_name !== null ? 'runs/${run_name}' : defaultSaveFolder(null, opts.configName);
  }
  return resolveInterpolations(merged, {
    resolvers: defaultResolvers(opts),
    fallback: (path) => defaultAt(trainSpec, path),
  }) as Record<string, unknown>;
}

/** Parses and validates a config from an in-memory raw tree plus overrides (as loadTrainConfig, minus the file). */
export function buildTrainConfig(raw: Record<string, unknown>, overrides: readonly string[] = [], opts: LoadOptions = {}): TrainConfig {
  return validateTrainConfig(resolveRawConfig(raw, overrides, opts));
}

/**
 * Parses a raw config object (e.g. YAML parsed elsewhere, or built in code): resolves `${...}`
 * interpolations, fills in defaults, validates. Throws ConfigError naming key, value and expectation.
 */
export function parseTrainConfig(raw: unknown, opts: LoadOptions = {}): TrainConfig {
  if (!isPlainObject(raw)) return validateTrainConfig(raw); // reports the non-mapping
  return buildTrainConfig(raw, [], opts);
}

/**
 * Loads a training config: YAML file, then `--a.b.c=value` overrides, then interpolation, then
 * validation. Throws ConfigError naming the key, the bad value and what was expected.
 */
export function loadTrainConfig(file: string, overrides: readonly string[] = [], opts: LoadOptions = {}): TrainConfig {
  return buildTrainConfig(readYamlFile(file), overrides, { configName: path.basename(file).replace(/\.ya?ml$/i, ''), ...opts });
}
