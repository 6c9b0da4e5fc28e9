/** Evaluation of the examples' classifiers: logits in eval mode, predicted classes, accuracy and loss. */
import { softmaxCrossEntropy, type Mlp } from './mlp';
import type { Dataset } from './mnist';

/** Logits for every image of `data`, in eval mode, in chunks. */
export function predict(model: Mlp, data: Dataset, classes: number): Float32Array {
  model.train(false);
  const chunk = 500;
  const logits = new Float32Array(data.count * classes);
  for (let at = 0; at < data.count; at += chunk) {
    const n = Math.min(chunk, data.count - at);
    const images = data.images.subarray(at * data.features, (at + n) * data.features);
    logits.set(model.forward(images, n).logits, at * classes);
  }
  return logits;
}

/** The predicted class of each row of logits. */
export function argmax(logits: Float32Array, classes: number): Uint8Array {
  return Uint8Array.from({ length: logits.length / classes }, (_, n) => {
    const row = logits.subarray(n * classes, (n + 1) * classes);
    return row.indexOf(Math.max(...row));
  });
}

/** Accuracy (%) and mean loss on `data`, in eval mode. */
export function evaluate(model: Mlp, data: Dataset, classes: number) {
  const logits = predict(model, data, classes);
  const predicted = argmax(logits, classes);
  const correct = predicted.reduce((n, p, k) => n + (p === data.labels[k] ? 1 : 0), 0);
  const { loss } = softmaxCrossEntropy(logits, data.labels, data.count, classes);
  return { accuracy: (100 * correct) / data.count, loss };
}
