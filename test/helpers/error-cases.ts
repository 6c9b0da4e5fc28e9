/**
 * The harness of the error tests (SPEC section 4): each case is called sync and async, and must
 * throw (or reject with) the right class, code and message, and write nothing.
 */
import { types } from 'util';
import { describe, expect, test } from 'vitest';

import * as bn from '../../lib/index';

export type Op = 'forwardTrain' | 'forwardInference' | 'backward' | 'batchMoments' | 'backwardSums';

export interface ErrorCase {
  name: string;
  op: Op;
  /** Builds fresh arguments; every typed array among them is checked for writes. */
  args: () => unknown[];
  type: typeof TypeError | typeof RangeError;
  code: string;
  /** A fragment the message must contain (usually the argument's name). */
  mentions: string;
}

type Data = Float32Array | Float64Array | Uint8Array;
const isData = (v: unknown): v is Data => v instanceof Float32Array || v instanceof Float64Array || v instanceof Uint8Array;

/** Every attached data array reachable from the arguments (into option objects and their sub-objects). */
function arraysIn(args: unknown[]): Data[] {
  const found: Data[] = [];
  const visit = (a: unknown, depth: number) => {
    if (types.isProxy(a)) return; // hostile shapes and options: no arrays to watch
    if (isData(a)) found.push(a);
    else if (depth < 2 && a && typeof a === 'object' && !Array.isArray(a)) {
      for (const key of Object.keys(a)) {
        const d = Object.getOwnPropertyDescriptor(a, key);
        if (d && 'value' in d) visit(d.value, depth + 1);
      }
    }
  };
  args.forEach((a) => visit(a, 0));
  return found.filter((a) => a.buffer.byteLength > 0);
}

const call = (op: Op, args: unknown[]) => (bn[op] as (...a: unknown[]) => unknown)(...args);
const callAsync = (op: Op, args: unknown[]) => (bn[`${op}Async`] as (...a: unknown[]) => Promise<unknown>)(...args);

export function describeErrorCases(cases: ErrorCase[]) {
  describe.each(cases)('$op: $name', ({ op, args, type, code, mentions }) => {
    const check = (e: unknown) => {
      expect(e).toBeInstanceOf(type);
      expect((e as { code?: string }).code).toBe(code);
      expect((e as Error).message).toContain(mentions);
    };

    test('sync: throws and writes nothing', () => {
      const a = args();
      const arrays = arraysIn(a);
      const before = arrays.map((x) => x.slice());
      let thrown: unknown;
      try {
        call(op, a);
      } catch (e) {
        thrown = e;
      }
      check(thrown);
      arrays.forEach((x, i) => expect(x).toEqual(before[i]));
    });

    test('async: rejects with the same error and writes nothing', async () => {
      const a = args();
      const arrays = arraysIn(a);
      const before = arrays.map((x) => x.slice());
      let thrown: unknown;
      try {
        await callAsync(op, a);
      } catch (e) {
        thrown = e;
      }
      check(thrown);
      arrays.forEach((x, i) => expect(x).toEqual(before[i]));
    });
  });
}
