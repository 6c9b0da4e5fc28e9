/**
 * The collective across processes over Node's built-in IPC channel (child_process.fork and
 * process.send): the parent process runs the hub (`serveIpcGroup(children)`, rank = index in
 * `children`), each child joins as a replica (`joinIpcGroup({ rank, size })`; every request
 * carries them, and a child whose rank or size disagrees with the parent's list breaks the
 * group, so no replica gets sums it was not meant to). Messages are
 * small JSON objects tagged `batchnorm`, so they share the channel with the application's own;
 * the numbers travel as base64 of their float64 bytes (JSON would turn NaN and Infinity into
 * null), so every replica receives the hub's sums bit for bit.
 */
import type { ChildProcess } from 'child_process';

import { BatchNormCollectiveError, rangeError, typeError, type BatchNormErrorCode } from '../errors';
import { integerAtLeast, optionsObject } from '../layer/checks';
import { DEFAULT_TIMEOUT_MS, rankIn, timeoutMs, type AsyncCollective } from './collective';
import { ReductionHub, type HubReply } from './hub';
import { RemoteCollective } from './remote';

interface IpcRequest {
  batchnorm: 'allReduceSum';
  /** The child's joinIpcGroup rank and size, which the parent checks against its list. */
  rank: number;
  size: number;
  round: number;
  data: string;
}

interface IpcReply {
  batchnorm: 'reduced';
  round: number;
  data?: string;
  error?: { code: BatchNormErrorCode; message: string };
}

const encode = (data: Float64Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');

/** The float64s in a base64 string; null when it is not one. */
function decode(text: unknown): Float64Array | null {
  if (typeof text !== 'string') return null;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.byteLength % 8 !== 0) return null;
  const data = new Float64Array(bytes.byteLength / 8);
  new Uint8Array(data.buffer).set(bytes);
  return data;
}

const tagged = (message: unknown, tag: string): message is Record<string, unknown> =>
  typeof message === 'object' && message !== null && (message as { batchnorm?: unknown }).batchnorm === tag;

/** A replica's collective in a child process with an IPC channel (started by child_process.fork). */
export interface IpcCollective extends AsyncCollective {
  /**
   * Stops listening on the channel, so the process can exit once its own work is done. A call
   * still waiting, and any later one, fails (ERR_BATCHNORM_COLLECTIVE_ABORTED).
   */
  close(): void;
}

/**
 * Joins the group that the parent serves with {@link serveIpcGroup}, as `rank` of `size`.
 *
 * @param options.timeoutMs how long to wait for a round's sums before failing (default 30000)
 */
export function joinIpcGroup(options: { rank: number; size: number; timeoutMs?: number }): IpcCollective {
  const o = optionsObject(options, 'opts', ['rank', 'size', 'timeoutMs']);
  const size = integerAtLeast(o.size, 'opts.size', 1);
  const rank = rankIn(o.rank, size, 'opts.rank');
  const timeout = timeoutMs(o.timeoutMs, 'opts.timeoutMs', DEFAULT_TIMEOUT_MS);
  const channel = process.send?.bind(process);
  if (!channel) {
    throw new BatchNormCollectiveError('ERR_BATCHNORM_COLLECTIVE_ABORTED', 'joinIpcGroup: this process has no IPC channel (start it with child_process.fork)');
  }
  const lost = (why: string) => remote.fail('ERR_BATCHNORM_COLLECTIVE_ABORTED', why);
  const send = (round: number, data: Float64Array) => {
    const request: IpcRequest = { batchnorm: 'allReduceSum', rank, size, round, data: encode(data) };
    channel(request, undefined, undefined, (e: Error | null) => e && lost(`the IPC channel failed: ${e.message}`));
  };
  const remote = new RemoteCollective(rank, size, send, { timeoutMs: timeout });
  const onMessage = (message: unknown) => {
    if (!tagged(message, 'reduced')) return;
    const { round, data, error } = message as Partial<IpcReply>;
    if (error) return remote.deliver({ round: Number(round), error });
    const sums = decode(data);
    if (sums && typeof round === 'number') remote.deliver({ round, data: sums });
    else lost('the parent sent a malformed reply');
  };
  const onDisconnect = () => lost('the parent process disconnected');
  process.on('message', onMessage);
  process.on('disconnect', onDisconnect);
  return {
    rank,
    size,
    async: true,
    allReduceSum: (data) => remote.allReduceSum(data),
    close() {
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      remote.fail('ERR_BATCHNORM_COLLECTIVE_ABORTED', 'the collective was closed'); // no reply can come now: do not wait for the timeout
    },
  };
}

/** Why a child's request does not fit its place (`rank` of `size`) in the parent's list; '' when it does. */
function misplaced(request: Record<string, unknown>, rank: number, size: number): string {
  if (request.rank === rank && request.size === size) return '';
  const shown = (v: unknown) => JSON.stringify(v) ?? 'nothing'; // v came as JSON
  return `the child at index ${rank} of serveIpcGroup's ${size} children joined as rank ${shown(request.rank)} of ${shown(request.size)}; joinIpcGroup's rank must be the child's index and its size the number of children`;
}

/**
 * Serves the group of `children` (rank = index) from the parent process: adds up each round's
 * contributions in rank order and sends every child the same sums. A child that exits while a
 * round needs it, or a round not complete within `timeoutMs`, fails every replica's call.
 *
 * @returns `close()`, which stops serving (call it once the children are done)
 */
export function serveIpcGroup(children: readonly ChildProcess[], options?: { timeoutMs?: number }): { close(): void } {
  if (!Array.isArray(children)) throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'an array of child processes', 'children', children);
  if (children.length === 0) throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'at least one child process', 'children', 'an empty array');
  const o = optionsObject(options, 'opts', ['timeoutMs']);
  let encoded: { data: Float64Array; text: string } = { data: new Float64Array(0), text: '' }; // the hub sends every child the same sums: encode them once
  const hub = new ReductionHub(
    children.length,
    (rank, reply: HubReply) => {
      const child = children[rank]!;
      if ('data' in reply && encoded.data !== reply.data) encoded = { data: reply.data, text: encode(reply.data) };
      const message: IpcReply = 'error' in reply
        ? { batchnorm: 'reduced', round: reply.round, error: reply.error }
        : { batchnorm: 'reduced', round: reply.round, data: encoded.text };
      if (child.connected) child.send(message, undefined, undefined, () => {}); // a failed send surfaces as the child's exit
    },
    { timeoutMs: timeoutMs(o.timeoutMs, 'opts.timeoutMs', DEFAULT_TIMEOUT_MS) },
  );
  const listeners = children.map((child, rank) => {
    const onMessage = (message: unknown) => {
      if (!tagged(message, 'allReduceSum')) return;
      const wrongPlace = misplaced(message, rank, children.length);
      if (wrongPlace) return hub.fail('ERR_BATCHNORM_COLLECTIVE_MISMATCH', wrongPlace);
      const data = decode(message.data);
      if (data) hub.contribute(rank, Number(message.round), data);
      else hub.leave(rank, 'sent a malformed message');
    };
    const onExit = (code: number | null, signal: string | null) => hub.leave(rank, `exited (${signal ?? `code ${code}`})`);
    child.on('message', onMessage);
    child.on('exit', onExit);
    return { child, onMessage, onExit };
  });
  return {
    close() {
      for (const { child, onMessage, onExit } of listeners) {
        child.off('message', onMessage);
        child.off('exit', onExit);
      }
      hub.close();
    },
  };
}
