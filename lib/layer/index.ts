/** The layer API: the BatchNorm layer, its state, folding and network slimming. */
export { BatchNorm, type LayerBackwardOptions, type LayerForwardOptions, type Parameter } from './batchnorm';
export type { BatchNormExtensions, BatchNormOptions, GammaInit, KerasBatchNormOptions, RenormClipping } from './options';
export type { StateDict } from './state-dict';
export { decodeStateDict, encodeStateDict, stateDictFromJSON, stateDictToJSON } from './state-codec';
export { foldIntoFollowing, foldIntoPreceding } from './folding';
export { channelMask, prune, pruneInputs, pruneOutputs, type MaskCriterion } from './slimming';
export type { LayerParameters, WeightedLayer } from './weighted-layer';
