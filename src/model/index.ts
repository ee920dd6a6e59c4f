// The OLMo model: building, forward/loss, generation, checkpoints and Hugging Face conversion.
export { OLMo, documentAttentionBias } from './olmo';
export type { OLMoOptions, ForwardOptions, OLMoOutput } from './olmo';
export { OLMoBlock, OLMoSequentialBlock, OLMoParallelBlock, OLMoLlamaBlock } from './block';
export type { LayerPast, BlockOutput } from './block';
export { generate, sampleNext } from './generate';
export type { GenerateOptions } from './generate';
export { initWeight, initDistribution, truncNormal_ } from './init';
export { saveCheckpoint, loadCheckpoint, saveModelWeights, loadModelWeights, readCheckpointConfig, normalizeStateDict } from './checkpoint';
export { toHfConfig, fromHfConfig, toHfStateDict, fromHfStateDict, saveHfOlmo, loadHfOlmo, checkHfCompatible } from './hf';
export type { HfOlmoConfig } from './hf';
