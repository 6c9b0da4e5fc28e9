/**
 * The ratios the issues' targets are stated in, from one cell's medians: shared by the report's
 * tables and bench/targets.ts. `speedups[name]` is name's median over ours with destinations.
 */
import { KERNEL_PEERS, OURS, PEERS } from './backends/names';
import type { CellResult } from './report';

/** a's median over b's, when both ran. */
function over(c: CellResult, a: string, b: string): number | undefined {
  const [x, y] = [c.speedups[a], c.speedups[b]];
  return x !== undefined && y !== undefined ? x / y : undefined;
}

/** The fastest of PyTorch's and oneDNN's functional paths over ours with destinations (above 1: we are faster). */
export function bestKernelPeer(c: CellResult): { name: string; ratio: number } | undefined {
  const ran = KERNEL_PEERS.filter((n) => c.speedups[n] !== undefined).map((name) => ({ name, ratio: c.speedups[name] }));
  return ran.length ? ran.reduce((a, b) => (b.ratio < a.ratio ? b : a)) : undefined;
}

/** Ours without destinations over the same calls with them: what allocating the outputs costs (1 = nothing). */
export const nodestOverDest = (c: CellResult) => over(c, OURS.nodest, OURS.dest);

/** PyTorch's allocating API over ours without destinations (above 1: we are faster). */
export const torchOverNodest = (c: CellResult) => over(c, PEERS.torch, OURS.nodest);

/** The layer step with reuse over forwardTrain + backward with destinations. */
export const reuseOverDest = (c: CellResult) => over(c, OURS.layerReuse, OURS.dest);

/** PyTorch's nn.BatchNorm step over our layer's step without reuse (above 1: we are faster). */
export const torchLayerOverLayer = (c: CellResult) => over(c, PEERS.torchLayer, OURS.layer);
