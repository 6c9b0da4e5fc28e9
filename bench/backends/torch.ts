/**
 * PyTorch (bench/peers/torch_peer.py under the given python3), in two processes:
 *
 * - `torch` and `torch-layer`: a plain process, as users run PyTorch. Its functional API and its
 *   layer allocate their outputs per call; glibc serves blocks over 32 MB with fresh mmap pages.
 * - `torch-nommap`: PyTorch with its outputs on reused pages, the nearest it has to our "with
 *   destinations": the backward writes into preallocated tensors (native_batch_norm_backward.out);
 *   the forward has no CPU .out in 1.13, so it allocates, in a process whose malloc never maps
 *   fresh pages nor gives pages back (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_).
 */
import { join } from 'path';

import { packageRoot } from '../../lib/loader';
import { PeerProcess } from '../peers/peer-process';
import { PEERS, selected } from './names';
import { peerBackend, type PeerFiles, type StartedPeers } from './peer';
import type { BenchBackend, Cell } from './types';

const NEVER_RETURN_PAGES = { MALLOC_MMAP_THRESHOLD_: String(2 ** 40), MALLOC_TRIM_THRESHOLD_: String(2 ** 40) };

const trainStepOnly = (cell: Cell) => (cell.op === 'trainStep' ? undefined : 'a training step only (forward + backward)');

export async function torchBackends(python: string, wanted: string[], files: PeerFiles): Promise<StartedPeers> {
  const script = join(packageRoot(), 'bench', 'peers', 'torch_peer.py');
  const plainWanted = selected(wanted, PEERS.torch) || selected(wanted, PEERS.torchLayer);
  const nommapWanted = selected(wanted, PEERS.torchNommap);
  const started = await Promise.allSettled([
    plainWanted ? PeerProcess.start(python, [script]) : undefined,
    nommapWanted ? PeerProcess.start(python, [script], { ...process.env, ...NEVER_RETURN_PAGES }) : undefined,
  ]);
  const [plain, nommap] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    plain?.close();
    nommap?.close();
    throw failed.reason;
  }
  const everyCell = () => undefined;
  const backends = [
    plain && selected(wanted, PEERS.torch) && peerBackend({ name: PEERS.torch, peer: plain, path: 'alloc', files, unsupported: everyCell }),
    nommap && peerBackend({ name: PEERS.torchNommap, peer: nommap, path: 'prealloc', files, unsupported: everyCell }),
    plain && selected(wanted, PEERS.torchLayer) && peerBackend({ name: PEERS.torchLayer, peer: plain, path: 'layer', files, unsupported: trainStepOnly }),
  ].filter((b): b is BenchBackend => !!b);
  const processes = [plain, nommap].filter((p): p is PeerProcess => !!p);
  return { backends, processes, version: processes[0]?.version ?? 'not selected' };
}
