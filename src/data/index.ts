// The data pipeline's public API: tokenizers, prepare-data, OLMo's memmap dataset, numpy-exact
// global order, the prefetching loader and collator, inspection and the Brown demo corpus.
export { DataError } from './errors';
export { loadTokenizer, appendEos, pythonStrip, BUILTIN_TOKENIZERS } from './tokenizer';
export type { TextTokenizer, TokenizerSpec } from './tokenizer';
export { expandInputs, readLineChunks, parseChunk } from './input';
export { prepareData, formatSummary, MANIFEST } from './prepare';
export type { PrepareOptions, PrepareProgress, PrepareSummary, SkippedLine } from './prepare';
export type { TokenDType, WrittenFile } from './token-writer';
export { MemMapDataset, MEMMAP_DTYPES } from './memmap-dataset';
export type { MemMapDatasetOptions, Instance, InstanceSource, MemmapDType } from './memmap-dataset';
export { buildMemmapDataset, resolveTokenPaths } from './config';
export type { DataConfig, DatasetModelOptions } from './config';
export { SeedSequence, PCG64, shuffleInPlace, randomInterval } from './numpy-random';
export { buildGlobalIndices, saveGlobalIndices, loadGlobalIndices, rankIndices, globalBatch, totalSize } from './global-indices';
export type { GlobalOrderOptions, RankSliceOptions, IndicesFormat } from './global-indices';
export { collate, toTensors } from './collator';
export type { Batch, CollatorOptions, TensorBatch } from './collator';
export { DataLoader } from './loader';
export type { LoaderOptions, LoaderBatch } from './loader';
export { createTrainLoader } from './train-loader';
export type { TrainLoaderOptions, TrainData } from './train-loader';
export { DocumentIndex, metadataPathFor } from './doc-index';
export type { DocumentSpan } from './doc-index';
export { inspectBatches, formatInspected } from './inspect';
export type { InspectOptions, InspectedInstance } from './inspect';
export { brownDocuments, brownJsonl, prepareBrown, cacheDir, untagDocument } from './brown';
export type { BrownOptions, PreparedBrown } from './brown';
export { readUint32File, writeNpy, parseNpyHeader } from './npy';
