/** Float64 reference layers for the folding and slimming tests, PyTorch layouts. */

/** Linear: y[n, o] = sum_i x[n, i] * W[o, i] + b[o], x of shape [N, in]. */
export function linear(x: ArrayLike<number>, N: number, weight: ArrayLike<number>, shape: readonly number[], bias?: ArrayLike<number> | null): Float64Array {
  const [out, inp] = shape;
  const y = new Float64Array(N * out);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < out; o++) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < inp; i++) s += x[n * inp + i] * weight[o * inp + i];
      y[n * out + o] = s;
    }
  return y;
}

/** 2-D convolution, NCHW, stride 1, no padding: x [N, in, H, W], weight [out, in, kh, kw]. */
export function conv2d(x: ArrayLike<number>, xShape: readonly number[], weight: ArrayLike<number>, shape: readonly number[], bias?: ArrayLike<number> | null) {
  const [N, inp, H, W] = xShape;
  const [out, , kh, kw] = shape;
  const oh = H - kh + 1;
  const ow = W - kw + 1;
  const y = new Float64Array(N * out * oh * ow);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < out; o++)
      for (let r = 0; r < oh; r++)
        for (let c = 0; c < ow; c++) {
          let s = bias ? bias[o] : 0;
          for (let i = 0; i < inp; i++)
            for (let a = 0; a < kh; a++)
              for (let b = 0; b < kw; b++) s += x[((n * inp + i) * H + r + a) * W + c + b] * weight[((o * inp + i) * kh + a) * kw + b];
          y[((n * out + o) * oh + r) * ow + c] = s;
        }
  return { y, shape: [N, out, oh, ow] };
}

/** max(0, v) elementwise. */
export const relu = (v: ArrayLike<number>) => Float64Array.from(v, (a) => Math.max(0, a));
