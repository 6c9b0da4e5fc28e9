/**
 * The backends in other processes and the peers that are installed, ready to run: this package
 * as users call it (a child process of its own), the Node.js libraries a user could pick instead
 * (onnxruntime-node, TensorFlow.js) and the native libraries users measure us against (PyTorch,
 * oneDNN, each in a child process). Each missing one is reported once, with why, and skipped.
 */
import { onednnBackends } from './backends/onednn';
import { onnxruntimeBackend } from './backends/onnxruntime';
import { OURS, PEERS, selected } from './backends/names';
import { oursBackends } from './backends/ours';
import { PeerFiles, type StartedPeers } from './backends/peer';
import { tfjsBackend } from './backends/tfjs';
import { torchBackends } from './backends/torch';
import type { BenchBackend } from './backends/types';
import type { Options } from './cli';

export interface Peers {
  backends: BenchBackend[];
  /** Installed version of each peer library asked for, or why it is not available. */
  versions: Record<string, string>;
  /** Ends the child processes and removes their files. */
  close(): void;
}

const firstLine = (e: unknown) => (e as Error).message.split('\n')[0];

function nodePackageVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

async function nodePeers(wanted: string[], versions: Record<string, string>, log: (m: string) => void): Promise<BenchBackend[]> {
  const out: BenchBackend[] = [];
  if (selected(wanted, 'onnxruntime')) {
    versions['onnxruntime-node'] = nodePackageVersion('onnxruntime-node');
    try {
      out.push(onnxruntimeBackend(await import('onnxruntime-node')));
    } catch (e) {
      log(`onnxruntime: skipped (${firstLine(e)})`);
    }
  }
  const tfWanted = (['wasm', 'cpu'] as const).filter((w) => selected(wanted, `tfjs-${w}`));
  if (tfWanted.length) {
    for (const name of ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm']) versions[name] = nodePackageVersion(name);
    try {
      const tf = await import('@tensorflow/tfjs');
      if (tfWanted.includes('wasm')) await import('@tensorflow/tfjs-backend-wasm');
      for (const w of tfWanted) out.push(tfjsBackend(tf, w));
    } catch (e) {
      log(`tfjs: skipped (${firstLine(e)})`);
    }
  }
  return out;
}

export async function startPeers({ backends: wanted, python, nodeFlags }: Pick<Options, 'backends' | 'python' | 'nodeFlags'>, log: (m: string) => void): Promise<Peers> {
  const versions: Record<string, string> = {};
  const backends = await nodePeers(wanted, versions, log);
  const files = new PeerFiles();
  // `peer: false`: this package itself, whose version the report gives elsewhere.
  const libraries: { library: string; peer?: false; start: () => Promise<StartedPeers> }[] = [];
  if (Object.values(OURS).some((n) => selected(wanted, n))) {
    libraries.push({ library: 'batchnorm (no destinations, layer)', peer: false, start: () => oursBackends(wanted, files, nodeFlags) });
  }
  if ([PEERS.torch, PEERS.torchNommap, PEERS.torchLayer].some((n) => selected(wanted, n))) {
    libraries.push({ library: 'PyTorch', start: () => torchBackends(python, wanted, files) });
  }
  if (selected(wanted, PEERS.onednn)) libraries.push({ library: 'oneDNN', start: () => onednnBackends(files, log) });
  const started = await Promise.allSettled(libraries.map((l) => l.start()));
  const processes = started.flatMap((s, k) => {
    const { library, peer } = libraries[k];
    if (s.status === 'rejected') {
      if (peer !== false) versions[library] = `not available: ${firstLine(s.reason)}`;
      log(`${library}: skipped (${firstLine(s.reason)})`);
      return [];
    }
    if (peer !== false) versions[library] = s.value.version;
    backends.push(...s.value.backends);
    return s.value.processes;
  });
  return {
    backends,
    versions,
    close: () => {
      for (const p of processes) p.close();
      files.remove();
    },
  };
}
