// The JSON Schema of the `model:` section, derived from src/config/model.ts (owned by the model
// code): its defaults give the keys and value types, its exported enum lists the allowed names.
import * as model from './model';
import type { JsonSchema } from './spec';

const ENUMS: Record<string, readonly string[]> = {
  activation_type: model.ACTIVATION_TYPES,
  block_type: model.BLOCK_TYPES,
  layer_norm_type: model.LAYER_NORM_TYPES,
  init_fn: model.INIT_FN_TYPES,
};

// Optional keys whose default is not null (model.ts does not export its nullability table).
const NULLABLE_WITH_DEFAULT = new Set(['embedding_size']);

/**
 * The `model:` section's JSON Schema. If model.ts exports its own `modelConfigJsonSchema()`, that
 * is used; otherwise each key's type comes from its default (null defaults allow any value that
 * parseModelConfig accepts; integer-looking float defaults are typed "number" so 8.5 stays legal).
 */
export function modelJsonSchema(): JsonSchema {
  const own = (model as Record<string, unknown>).modelConfigJsonSchema;
  if (typeof own === 'function') return own() as JsonSchema;
  const properties: Record<string, JsonSchema> = {};
  for (const [k, d] of Object.entries(model.MODEL_CONFIG_DEFAULTS)) {
    let s: JsonSchema;
    if (ENUMS[k]) s = { type: 'string', enum: [...ENUMS[k]!] };
    else if (typeof d === 'boolean') s = { type: 'boolean' };
    else if (typeof d === 'number') s = { type: 'number' };
    else if (typeof d === 'string') s = { type: 'string' };
    else s = {}; // a null default says nothing about the type; parseModelConfig checks it
    if (NULLABLE_WITH_DEFAULT.has(k)) s = { anyOf: [s, { type: 'null' }] };
    properties[k] = { ...s, default: d };
  }
  return { type: 'object', title: 'ModelConfig', properties, additionalProperties: false };
}
