/**
 * This package as users call it, at the best ISA, in a child process that holds nothing else
 * (bench/peers/ours-peer.ts, which says why): `native-dest`, the public functions with every
 * destination given, `native-nodest`, the same without destinations (they allocate their
 * outputs), and `native-layer` / `native-layer-reuse`, a
 * `BatchNorm` layer's training step without and with `reuseOutputs`.
 */
import { join } from 'path';

import { packageRoot } from '../../lib/loader';
import { PeerProcess } from '../peers/peer-process';
import { OURS, selected } from './names';
import { peerBackend, type PeerFiles, type StartedPeers } from './peer';
import type { BenchBackend, Cell } from './types';

const trainStepOnly = (cell: Cell) => (cell.op === 'trainStep' ? undefined : 'a training step only (forward + backward)');

/** `nodeFlags`: flags of node for that process (--node-flags), such as a user's deployment sets. */
export async function oursBackends(wanted: string[], files: PeerFiles, nodeFlags: string[]): Promise<StartedPeers> {
  const peer = await PeerProcess.start(process.execPath, [...nodeFlags, join(packageRoot(), 'dist-bench', 'bench', 'peers', 'ours-peer.js')]);
  const paths = [
    { name: OURS.dest, path: 'dest', unsupported: () => undefined },
    { name: OURS.nodest, path: 'alloc', unsupported: () => undefined },
    { name: OURS.layer, path: 'layer', unsupported: trainStepOnly },
    { name: OURS.layerReuse, path: 'layer-reuse', unsupported: trainStepOnly },
  ] as const;
  const backends: BenchBackend[] = paths.filter((p) => selected(wanted, p.name)).map((p) => peerBackend({ ...p, peer, files }));
  return { backends, processes: [peer], version: peer.version };
}
