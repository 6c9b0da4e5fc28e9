/**
 * A peer library (PyTorch, oneDNN) in a child process, driven by a line protocol on its stdin
 * and stdout. The child first prints `ready <library> <version>`; then each request line gets
 * one reply line, `ok[ <value>]` or `error <message>`:
 *
 *   setup <id> <path> <op> <layout> <threads> <eps> <inputs file> <N>x<C>x<spatial...>
 *        sets up cell <id>: <path> is alloc, prealloc or layer (what each peer offers is in its
 *        own source), <op> one of bench/workload.ts's ops, <layout> nc, nchw or nhwc; the inputs
 *        file holds raw float32 x, dy (the tensor's length each), gamma, beta, running mean,
 *        running variance (C each), x and dy in the layout's memory order
 *   run <id> [n]      n untimed calls (default 0), then one timed by the peer: `ok <milliseconds>`
 *   save <id> <file>  writes the last call's main output (y, or dx) as raw float32 in the
 *                     layout's memory order
 *   free <id>         forgets the cell
 *
 * The child exits when its stdin closes.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import { createInterface } from 'readline';

const STARTUP_SECONDS = 120;

/** Requests awaiting their reply line, oldest first. */
type Pending = { resolve: (line: string) => void; reject: (e: Error) => void }[];

export class PeerProcess {
  readonly version: string;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending: Pending;
  #exited?: Error;

  private constructor(child: ChildProcessWithoutNullStreams, version: string, pending: Pending) {
    this.#child = child;
    this.version = version;
    this.#pending = pending;
  }

  /**
   * Starts `command` and waits for its `ready` line; rejects with the child's own last words
   * (e.g. "ModuleNotFoundError: No module named 'torch'") when it fails to start.
   */
  static start(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<PeerProcess> {
    const child = spawn(command, args, { env, stdio: 'pipe' });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const lastWords = () => stderr.trim().split('\n').pop() ?? '';
    const pending: Pending = [];
    let peer: PeerProcess | undefined;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill();
        reject(new Error(`${command} did not start within ${STARTUP_SECONDS} s`));
      }, STARTUP_SECONDS * 1000);
      const fail = (why: string) => {
        clearTimeout(timer);
        const error = new Error(why);
        if (peer) peer.#exited = error;
        for (const p of pending.splice(0)) p.reject(error);
        reject(error);
      };
      child.on('error', (e) => fail(e.message));
      child.on('exit', (code, signal) => fail(`${command} exited (${signal ?? `code ${code}`})${lastWords() ? `: ${lastWords()}` : ''}`));
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (!peer) {
          clearTimeout(timer);
          const m = /^ready \S+ (\S+)$/.exec(line);
          if (!m) return fail(`${command} said "${line}" instead of "ready <library> <version>"`);
          peer = new PeerProcess(child, m[1], pending);
          return resolve(peer);
        }
        pending.shift()?.resolve(line);
      });
    });
  }

  /** Sends one request; resolves with what follows `ok`, rejects with the peer's error. */
  request(line: string): Promise<string> {
    if (this.#exited) return Promise.reject(this.#exited);
    return new Promise<string>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#child.stdin.write(`${line}\n`);
    }).then((reply) => {
      if (reply === 'ok' || reply.startsWith('ok ')) return reply.slice(3);
      throw new Error(reply.replace(/^error /, ''));
    });
  }

  /** Closes the peer's stdin: it exits. */
  close(): void {
    this.#child.removeAllListeners('exit');
    this.#child.stdin.end();
  }
}
