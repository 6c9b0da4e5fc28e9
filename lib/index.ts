/**
 * batchnorm: Batch Normalization for Node.js (SPEC section 3). The package root: the functional
 * API (lib/api.ts), synchronized statistics (lib/synchronized.ts) and the collectives that carry
 * them (lib/collective/), its types and errors, and the BatchNorm layer built on it (lib/layer/).
 */
export * from './api';
export * from './synchronized';
export * from './collective';
export * from './types';
export { BatchNormRangeError, BatchNormTypeError, type BatchNormErrorCode } from './errors';
export { BatchNormCollectiveError, BatchNormStateError } from './errors';
export * from './layer';
