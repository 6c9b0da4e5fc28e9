/**
 * tfjs-backend-wasm (4.22) has no Conv2DBackpropFilter kernel, so no model with a Conv2D layer
 * can be trained on the wasm backend, with or without batchnorm/tfjs: the backward fails with
 * "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'". It has the 3-D one, and a
 * 2-D convolution is a 3-D one of depth 1: this registers Conv2DBackpropFilter for wasm as wasm's
 * own Conv3DBackpropFilterV2 on the same memory, with the shapes given a depth of 1 (no copy).
 * The example, the benchmark and the tests use it, for stock tfjs and ours alike.
 *
 * Only what tfjs-layers' Conv2D asks for: NHWC, dilation 1, padding 'valid' or 'same'.
 */
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';

const KERNEL = 'Conv2DBackpropFilter';

interface Attrs {
  strides: number | [number, number];
  pad: unknown;
  dataFormat?: string;
  dimRoundingMode?: string;
  filterShape: [number, number, number, number];
}

/** Registers the kernel when wasm lacks it (a later tfjs may have its own); safe to call again. */
export function registerWasmConv2DFilterGradient(): void {
  const conv3d = tf.getKernel('Conv3DBackpropFilterV2', 'wasm');
  if (!conv3d || tf.getKernel(KERNEL, 'wasm')) return;
  tf.registerKernel({
    kernelName: KERNEL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Attrs;
      if ((dataFormat ?? 'NHWC') !== 'NHWC' || dimRoundingMode != null || (pad !== 'valid' && pad !== 'same')) {
        throw new Error(`${KERNEL} on wasm (examples/wasm-conv2d-filter-gradient.ts): only NHWC with 'valid' or 'same' padding`);
      }
      const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
      const depth1 = (t: TensorInfo): TensorInfo => ({ ...t, shape: [t.shape[0], 1, ...t.shape.slice(1)] });
      const dw = conv3d.kernelFunc({
        inputs: { x: depth1(x), dy: depth1(dy) },
        backend,
        attrs: { strides: [1, sh, sw], pad, filterShape: [1, ...filterShape] },
      }) as TensorInfo;
      return { ...dw, shape: filterShape };
    },
  });
}
