/**
 * The kernels' errors in the package's classes (lib/errors.ts). After validation, what a kernel
 * call can still throw is a failed allocation of its scratch space (per-channel or per-thread
 * arrays): the addon reports it with `ERR_BATCHNORM_OUT_OF_MEMORY` but as a plain RangeError
 * (sync) or a plain Error (async, from the worker thread), and the JavaScript backend's typed
 * arrays throw a bare RangeError ("Array buffer allocation failed"). Both become the
 * BatchNormRangeError that a failed output allocation gives (lib/outputs.ts), on both backends.
 */
import { BatchNormCollectiveError, BatchNormRangeError, BatchNormStateError, BatchNormTypeError, type BatchNormErrorCode } from './errors';
import type { Backend } from './plan';

const packageErrors = [BatchNormTypeError, BatchNormRangeError, BatchNormStateError, BatchNormCollectiveError];

/** `e` as a package error: the addon's coded errors keep their code; a bare RangeError is out of memory. */
function packageError(e: unknown): unknown {
  if (!(e instanceof Error) || packageErrors.some((P) => e instanceof P)) return e; // the exchange's collective errors, among others
  const code = (e as { code?: unknown }).code;
  let error: Error;
  if (typeof code === 'string' && code.startsWith('ERR_BATCHNORM_')) {
    error = e instanceof TypeError ? new BatchNormTypeError(code as BatchNormErrorCode, e.message) : new BatchNormRangeError(code as BatchNormErrorCode, e.message);
  } else if (e instanceof RangeError) {
    error = new BatchNormRangeError('ERR_BATCHNORM_OUT_OF_MEMORY', `batchnorm: out of memory for scratch space (${e.message})`);
  } else {
    return e;
  }
  (error as Error & { cause?: unknown }).cause = e;
  return error;
}

/** `backend` with every call's errors in the package's classes. */
export function withPackageErrors(backend: Backend): Backend {
  const wrapped: Record<string, (p: never) => unknown> = {};
  for (const [name, call] of Object.entries(backend) as [string, (p: never) => unknown][]) {
    const sync = (p: never) => {
      try {
        return call(p);
      } catch (e) {
        throw packageError(e);
      }
    };
    wrapped[name] = name.endsWith('Async') ? async (p: never) => (sync(p) as Promise<void>).catch((e: unknown) => Promise.reject(packageError(e))) : sync;
  }
  return wrapped as unknown as Backend;
}
