/**
 * Names of the backends that the report's tables and the targets single out. The others are
 * `native-<isa>` (this package's kernels with every destination given, one per ISA) and `js`.
 */

/** This package as users call it, at the best ISA. */
export const OURS = {
  /**
   * The public functions with every destination given, validated per call, in the process of
   * the paths below: the yardstick of what allocating or the layer costs (not the kernel's
   * `native-<isa>`, which validates once outside the timed call and runs in the bench's process).
   */
  dest: 'native-dest',
  /** The public functions without destinations: they allocate their outputs. */
  nodest: 'native-nodest',
  /** A `BatchNorm` layer's training step (forward + backward), outputs allocated per step. */
  layer: 'native-layer',
  /** The same with `reuseOutputs: true`. */
  layerReuse: 'native-layer-reuse',
} as const;

/**
 * Whether `name` is this package's kernels at an ISA (`native-<isa>`, in the bench's process), the
 * reference of a cell, and not one of the user paths above, whose names start alike.
 */
export function isKernel(name: string): boolean {
  return name.startsWith('native-') && !(Object.values(OURS) as string[]).includes(name);
}

/** PyTorch and oneDNN, each path in its own column. */
export const PEERS = {
  /** torch.nn.functional.batch_norm and autograd: outputs allocated per call. */
  torch: 'torch',
  /** Outputs on reused pages: `.out` where PyTorch 1.13 has one, else malloc that keeps its pages. */
  torchNommap: 'torch-nommap',
  /** nn.BatchNorm1d/2d forward + backward. */
  torchLayer: 'torch-layer',
  /** oneDNN's batch_normalization primitives, every buffer preallocated. */
  onednn: 'onednn',
} as const;

/** PyTorch's and oneDNN's functional paths: what our kernels are measured against (issue 12). */
export const KERNEL_PEERS: string[] = [PEERS.torch, PEERS.torchNommap, PEERS.onednn];

/** The peers a Node.js user would otherwise pick (the first benchmark issue). */
export const NODE_PEERS = ['onnxruntime', 'tfjs-wasm', 'tfjs-cpu'];

/** Whether `--backends` selects `name`: by its own name or by its family (`native`, `torch`, `tfjs`, ...). */
export function selected(wanted: string[], name: string): boolean {
  return wanted.includes(name) || wanted.includes(name.split('-')[0]);
}
