/**
 * oneDNN (bench/peers/onednn_peer.cpp), compiled on first use into bench/peers/build/ (ignored
 * by git) with the system's oneDNN: g++ -O2 -fopenmp ... -ldnnl. A machine without its header
 * or library gets a clear reason instead, and the bench runs without it.
 */
import { execFile } from 'child_process';
import { existsSync, mkdirSync, statSync } from 'fs';
import { join } from 'path';
import { promisify } from 'util';

import { packageRoot } from '../../lib/loader';
import { PeerProcess } from '../peers/peer-process';
import { PEERS } from './names';
import { peerBackend, type PeerFiles, type StartedPeers } from './peer';
import type { Cell } from './types';

/** The peer's binary, rebuilt when its source is newer; rejects with the compiler's first error. */
async function peerBinary(log: (message: string) => void): Promise<string> {
  const peers = join(packageRoot(), 'bench', 'peers');
  const source = join(peers, 'onednn_peer.cpp');
  const binary = join(peers, 'build', 'onednn_peer');
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  mkdirSync(join(peers, 'build'), { recursive: true });
  const compiler = process.env.CXX || 'g++';
  log(`oneDNN: compiling ${source} ...`);
  try {
    await promisify(execFile)(compiler, ['-std=c++17', '-O2', '-fopenmp', source, '-o', binary, '-ldnnl']);
  } catch (e) {
    const { stderr, message } = e as { stderr?: string; message: string };
    const firstError = stderr?.split('\n').find((l) => /error|cannot find/.test(l));
    throw new Error(`${compiler} could not build the oneDNN peer: ${(firstError ?? message).trim()}`);
  }
  return binary;
}

function unsupported(cell: Cell): string | undefined {
  const { layout, dims } = cell.c;
  return layout === 'nc' ? (dims.length === 2 ? undefined : 'N x C only in nc') : dims.length === 4 ? undefined : '4-D NCHW/NHWC only';
}

export async function onednnBackends(files: PeerFiles, log: (message: string) => void): Promise<StartedPeers> {
  const peer = await PeerProcess.start(await peerBinary(log), []);
  return { backends: [peerBackend({ name: PEERS.onednn, peer, path: 'prealloc', files, unsupported })], processes: [peer], version: peer.version };
}
