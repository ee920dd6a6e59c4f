// OLMo's DataConfig (keys spelled as in OLMo's YAML) and `build_memmap_dataset`: turning `paths` or
// labelled `datasets` into a MemMapDataset with {path} or {label} metadata per file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors';
import { MEMMAP_DTYPES, MemMapDataset, MemmapDType } from './memmap-dataset';

/** The `data:` section of an OLMo training config (the keys the data pipeline uses). */
export interface DataConfig {
  /** Token files (or, as an olmo-ts extension, prepare-data output folders and globs). */
  paths?: string[] | null;
  /** Labelled groups of token files; mutually exclusive with `paths`. */
  datasets?: Record<string, string[]> | null;
  /** np.bool_ label-mask files, one per path. */
  label_mask_paths?: string[] | null;
  /** Token file dtype (default uint16). */
  memmap_dtype?: MemmapDType;
  /** Where the collator pads shorter instances (default right). */
  pad_direction?: 'right' | 'left';
  /** Add an attention mask that is 0 at pad tokens. */
  generate_attention_mask?: boolean;
  /** Drop the ragged end instead of padding the order (default false). */
  drop_last?: boolean;
  /** Loader worker threads (0: asynchronous reads from the training thread). */
  num_workers?: number;
  /** Batches prepared ahead per worker (default 2). */
  prefetch_factor?: number | null;
  /** Seed of the data order (OLMo takes it from the top-level `seed`). */
  seed?: number;
}

/** Model-side settings a dataset needs. */
export interface DatasetModelOptions {
  /** `model.max_sequence_length`: tokens per instance. */
  maxSequenceLength: number;
  /** `model.pad_token_id`. */
  padTokenId?: number;
  /** Attach {path} / {label} metadata to instances (default true). */
  includeInstanceMetadata?: boolean;
}

function readManifestFiles(dir: string): string[] | undefined {
  const m = path.join(dir, 'manifest.json');
  if (!fs.existsSync(m)) return undefined;
  try {
    const j = JSON.parse(fs.readFileSync(m, 'utf8')) as { files?: Array<{ path: string }> };
    return (j.files ?? []).map((f) => path.join(dir, f.path));
  } catch (e) {
    throw new DataError(`unreadable manifest: ${(e as Error).message}`, { file: m, cause: e });
  }
}

/**
 * Resolves token paths: a file stays as it is; a prepare-data folder gives its parts in manifest
 * order (other folders their *.npy, sorted); a glob its sorted matches. `key` names the config entry.
 */
export function resolveTokenPaths(paths: string[], key: string): string[] {
  const out: string[] = [];
  paths.forEach((p, i) => {
    if (typeof p !== 'string') throw new DataError(`expected a path string, got ${JSON.stringify(p)}`, { key: `${key}[${i}]` });
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
      const files = readManifestFiles(p) ?? fs.readdirSync(p).filter((n) => n.endsWith('.npy') && n !== 'global_indices.npy').sort().map((n) => path.join(p, n));
      if (files.length === 0) throw new DataError(`folder ${p} holds no token files (*.npy)`, { key: `${key}[${i}]` });
      out.push(...files);
    } else if (/[*?[]/.test(p) && !fs.existsSync(p)) {
      const dir = path.dirname(p);
      const re = new RegExp('^' + path.basename(p).replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.') + '$');
      const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => re.test(n)).sort().map((n) => path.join(dir, n)) : [];
      if (files.length === 0) throw new DataError(`no token files match ${JSON.stringify(p)}`, { key: `${key}[${i}]` });
      out.push(...files);
    } else {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
        throw new DataError(`${JSON.stringify(p)} is a remote URL; olmo-ts reads local token files only: download the files and point ${key} at the local copies`, { key: `${key}[${i}]` });
      }
      if (!fs.existsSync(p)) throw new DataError(`token file ${JSON.stringify(p)} not found`, { key: `${key}[${i}]` });
      out.push(p);
    }
  });
  return out;
}

/**
 * OLMo's `build_memmap_dataset`: `paths` give each file {path} metadata; `datasets` (labels
 * sorted) give {label}. Exactly one of them is required.
 */
export function buildMemmapDataset(data: DataConfig, model: DatasetModelOptions): MemMapDataset {
  const metadata: Record<string, unknown>[] = [];
  let paths: string[];
  if (data.memmap_dtype !== undefined && !MEMMAP_DTYPES.includes(data.memmap_dtype)) {
    throw new DataError(`expected one of ${MEMMAP_DTYPES.join(', ')}, got ${JSON.stringify(data.memmap_dtype)}`, { key: 'data.memmap_dtype' });
  }
  if (data.pad_direction !== undefined && data.pad_direction !== 'right' && data.pad_direction !== 'left') {
    throw new DataError(`expected right or left, got ${JSON.stringify(data.pad_direction)}`, { key: 'data.pad_direction' });
  }
  if (data.paths && data.paths.length) {
    if (data.datasets && Object.keys(data.datasets).length) throw new DataError('paths is mutually exclusive with datasets', { key: 'data.paths' });
    paths = resolveTokenPaths(data.paths, 'data.paths');
    for (const p of paths) metadata.push({ path: p });
  } else if (data.datasets && Object.keys(data.datasets).length) {
    paths = [];
    for (const label of Object.keys(data.datasets).sort()) {
      const files = resolveTokenPaths(data.datasets[label]!, `data.datasets.${label}`);
      paths.push(...files);
      for (let i = 0; i < files.length; i++) metadata.push({ label });
    }
  } else {
    throw new DataError('one of data.paths or data.datasets is required', { key: 'data' });
  }
  let labelMasks: string[] | undefined;
  if (data.label_mask_paths && data.label_mask_paths.length) labelMasks = resolveTokenPaths(data.label_mask_paths, 'data.label_mask_paths');
  return new MemMapDataset({
    paths,
    chunkSize: model.maxSequenceLength,
    memmapDtype: data.memmap_dtype ?? 'uint16',
    metadata,
    includeInstanceMetadata: model.includeInstanceMetadata ?? true,
    generateAttentionMask: data.generate_attention_mask ?? false,
    padTokenId: model.padTokenId,
    labelMaskPaths: labelMasks,
  });
}
