// The JSON Schema of training config files, generated from the same field specs the parser uses,
// so editors (e.g. VS Code's YAML extension) complete keys, show docs and flag bad values.
import { stringify } from 'yaml';
import type { JsonSchema } from './spec';
import { TrainConfig, trainSpec } from './train';

/** The `$id` the emitted schema carries. */
export const SCHEMA_ID = 'https://github.com/olmo-ts/olmo-ts/configs/train-config.schema.json';

/**
 * The JSON Schema (draft-07) of a TrainConfig YAML file: every key with its type, default and doc;
 * unknown keys rejected; any value may instead be an OmegaConf `${...}` interpolation.
 */
export function trainConfigJsonSchema(): JsonSchema {
  return { $schema: 'http://json-schema.org/draft-07/schema#', $id: SCHEMA_ID, ...trainSpec.jsonSchema() };
}

/** The schema as the text `olmo-ts config schema` writes (2-space JSON, trailing newline). */
export function trainConfigJsonSchemaText(): string {
  return JSON.stringify(trainConfigJsonSchema(), null, 2) + '\n';
}

/** A resolved config as YAML (1.1 quoting, so it reads back identically); for `config show` and config.yaml. */
export function trainConfigToYaml(cfg: TrainConfig): string {
  return stringify(cfg, { version: '1.1', lineWidth: 0 });
}
