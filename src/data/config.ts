// OLMo's DataConfig (keys spelled as in OLMo's YAML) and `build_memmap_dataset`: turning `paths` or
// labelled `datasets` into a MemMapDataset with {path} or {label} metadata per file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors';
import { ManifestEntry, isUnfinishedPrepare, manifestEntryFor, readPreparedManifest, redoAdvice } from './manifest';
import { MEMMAP_DTYPES, MemMapDataset, MemmapDType } from './memmap-dataset';

/** The `data:` section of an OLMo training config (the keys the data pipeline uses). */
export interface DataConfig {
  /** Token files (or, as an olmo-ts extension, prepare-data output folders and globs). */
  paths?: string[] | null;
  /** Labelled groups of token files; mutually exclusive with `paths`. */
  datasets?: Record<string, string[]> | null;
  /** np.bool_ label-mask files, one per path. */
  label_mask_paths?: string[] | null;
  /**
   * Token file dtype. Unset (or null): what the files' prepare-data manifests say, else uint16
   * (OLMo's default for raw files). When set it must agree with every manifest.
   */
  memmap_dtype?: MemmapDType | null;
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

function folderFiles(dir: string, key: string, kind: 'tokens' | 'masks'): string[] {
  if (kind === 'masks') return fs.readdirSync(dir).filter((n) => n.endsWith('.npy')).sort().map((n) => path.join(dir, n));
  const manifest = readPreparedManifest(dir);
  if (manifest) return manifest.files.map((f) => path.join(dir, f.path));
  if (isUnfinishedPrepare(dir)) throw new DataError(`folder ${dir} has no manifest.json: ${redoAdvice(dir)}`, { key });
  throw new DataError(
    `folder ${dir} has no manifest.json, so it is not prepare-data output; name its token files instead (a list, or a glob such as ${JSON.stringify(path.join(dir, '*.npy'))})`,
    { key },
  );
}

/**
 * Resolves token paths: a file stays as it is; a prepare-data folder gives its parts in manifest
 * order (a folder without a manifest is refused); a glob its sorted matches. `key` names the config
 * entry. Label-mask paths (`kind` 'masks') may also be plain folders of *.npy files.
 */
export function resolveTokenPaths(paths: string[], key: string, kind: 'tokens' | 'masks' = 'tokens'): string[] {
  const out: string[] = [];
  paths.forEach((p, i) => {
    if (typeof p !== 'string') throw new DataError(`expected a path string, got ${JSON.stringify(p)}`, { key: `${key}[${i}]` });
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
      const files = folderFiles(p, `${key}[${i}]`, kind);
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
 * The dtype to read token files with. Files from prepare-data carry theirs in the manifest; raw
 * files (OLMo's format) are read as `memmap_dtype`, default uint16 (OLMo's rule). A configured
 * `memmap_dtype` that contradicts a manifest, or files that would need two dtypes, are refused.
 */
export function tokenFileDtype(paths: readonly string[], entries: readonly (ManifestEntry | null)[], configured: MemmapDType | null | undefined): MemmapDType {
  const withManifest = entries.map((e, i) => ({ e, p: paths[i]! })).filter((x): x is { e: ManifestEntry; p: string } => x.e !== null);
  if (configured !== undefined && configured !== null) {
    const clash = withManifest.find((x) => x.e.manifest.dtype !== configured);
    if (clash) {
      throw new DataError(`is ${configured}, but ${clash.p} holds ${clash.e.manifest.dtype} tokens (${clash.e.manifestPath}); remove data.memmap_dtype to use the manifest's, or set it to ${clash.e.manifest.dtype}`, { key: 'data.memmap_dtype' });
    }
    return configured;
  }
  const kinds = [...new Set(withManifest.map((x) => x.e.manifest.dtype))];
  if (kinds.length > 1) {
    const a = withManifest.find((x) => x.e.manifest.dtype === kinds[0])!, b = withManifest.find((x) => x.e.manifest.dtype === kinds[1])!;
    throw new DataError(`the token files need different dtypes (${a.p} is ${kinds[0]}, ${b.p} is ${kinds[1]}); one run reads one dtype: prepare them with the same --dtype`, { key: 'data.paths' });
  }
  const fromManifest = kinds[0];
  const raw = paths.filter((_, i) => entries[i] === null);
  if (fromManifest && fromManifest !== 'uint16' && raw.length) {
    throw new DataError(`${raw[0]} has no prepare-data manifest, so it would be read as uint16 (OLMo's default), but ${withManifest[0]!.p} holds ${fromManifest} tokens; set data.memmap_dtype to say how to read them all`, { key: 'data.memmap_dtype' });
  }
  return fromManifest ?? 'uint16';
}

/**
 * OLMo's `build_memmap_dataset`: `paths` give each file {path} metadata; `datasets` (labels
 * sorted) give {label}. Exactly one of them is required.
 */
export function buildMemmapDataset(data: DataConfig, model: DatasetModelOptions): MemMapDataset {
  const metadata: Record<string, unknown>[] = [];
  let paths: string[];
  if (data.memmap_dtype !== undefined && data.memmap_dtype !== null && !MEMMAP_DTYPES.includes(data.memmap_dtype)) {
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
  if (data.label_mask_paths && data.label_mask_paths.length) labelMasks = resolveTokenPaths(data.label_mask_paths, 'data.label_mask_paths', 'masks');
  const entries = paths.map((p) => manifestEntryFor(p, 'data.paths'));
  return new MemMapDataset({
    paths,
    chunkSize: model.maxSequenceLength,
    memmapDtype: tokenFileDtype(paths, entries, data.memmap_dtype),
    manifests: entries,
    metadata,
    includeInstanceMetadata: model.includeInstanceMetadata ?? true,
    generateAttentionMask: data.generate_attention_mask ?? false,
    padTokenId: model.padTokenId,
    labelMaskPaths: labelMasks,
  });
}
