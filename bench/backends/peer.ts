/**
 * A path of a peer library in a child process (bench/peers/peer-process.ts) as a benchmark
 * backend: the cell's inputs go through a file of raw float32, each run is timed by the peer
 * itself, and the output comes back through a file for the correctness check.
 */
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

import type { PeerProcess } from '../peers/peer-process';
import type { BenchBackend, Cell, Inputs, Prepared } from './types';

/** The temporary files the peers read and write; one inputs file at a time (the current case's). */
export class PeerFiles {
  readonly dir: string;
  #inputs?: { of: Inputs; file: string };
  #count = 0;

  constructor() {
    // The protocol's words are separated by white space.
    if (/\s/.test(tmpdir())) throw new Error(`the temporary folder "${tmpdir()}" has white space in its name`);
    this.dir = mkdtempSync(join(tmpdir(), 'batchnorm-peers-'));
  }

  /** The file of `inputs` in the protocol's order: x, dy, gamma, beta, running mean, running variance. */
  inputsFile(inputs: Inputs): string {
    if (this.#inputs?.of === inputs) return this.#inputs.file;
    if (this.#inputs) unlinkSync(this.#inputs.file);
    const file = this.#fresh('inputs');
    const parts = [inputs.x, inputs.dy, inputs.gamma, inputs.beta, inputs.runningMean, inputs.runningVar];
    writeFileSync(file, Buffer.concat(parts.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))));
    this.#inputs = { of: inputs, file };
    return file;
  }

  /** Reads and deletes a file of raw float32 that a peer wrote. */
  takeFloats(file: string): Float32Array {
    const bytes = readFileSync(file);
    unlinkSync(file);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  /** A new file name for a peer's output. */
  outputFile(): string {
    return this.#fresh('output');
  }

  #fresh(what: string): string {
    return join(this.dir, `${what}-${this.#count++}.bin`);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A peer library's started processes and the backends they serve. */
export interface StartedPeers {
  backends: BenchBackend[];
  processes: PeerProcess[];
  version: string;
}

let nextCellId = 0;

export interface PeerPath {
  name: string;
  peer: PeerProcess;
  /** The peer's path: alloc, prealloc, dest, layer or layer-reuse (what each peer offers is in its source). */
  path: 'alloc' | 'prealloc' | 'dest' | 'layer' | 'layer-reuse';
  files: PeerFiles;
  unsupported(cell: Cell): string | undefined;
}

export function peerBackend({ name, peer, path, files, unsupported }: PeerPath): BenchBackend {
  return {
    name,
    unsupported,
    threadsUsed: (t) => t,
    async prepare(cell: Cell): Promise<Prepared> {
      const id = nextCellId++;
      const { c } = cell;
      const data = files.inputsFile(cell.inputs);
      await peer.request(`setup ${id} ${path} ${cell.op} ${c.layout} ${cell.threads} ${cell.inputs.eps} ${data} ${c.dims.join('x')}`);
      return {
        run: async () => ({ ms: Number(await peer.request(`run ${id}`)) }),
        runAfter: async (untimed) => ({ ms: Number(await peer.request(`run ${id} ${untimed}`)) }),
        output: async () => {
          const file = files.outputFile();
          await peer.request(`save ${id} ${file}`);
          return files.takeFloats(file);
        },
        dispose: async () => {
          await peer.request(`free ${id}`);
        },
      };
    },
  };
}
