/**
 * Test projects: the whole suite on the native backend (best ISA), the numerical files again
 * for every other ISA this CPU supports (BATCHNORM_ISA) and for the JavaScript backend.
 * Native projects set BATCHNORM_BACKEND=native, so a binary that fails to load fails the run
 * instead of silently testing the fallback.
 */
import { createRequire } from 'module';
import { dirname } from 'path';
import { fileURLToPath } from 'url';
import { defineConfig } from 'vitest/config';

const root = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** ISAs the built addon can run here, best first; empty when it does not load. */
function supportedIsas(): string[] {
  try {
    const binding = require('node-gyp-build')(root) as { info(): { supportedIsas: string } };
    return binding.info().supportedIsas.split(',');
  } catch {
    return [];
  }
}

const PER_BACKEND = ['test/numerics.test.ts', 'test/gradcheck.test.ts', 'test/conformance.test.ts', 'test/special-cases.test.ts', 'test/bad-numbers.test.ts', 'test/synchronized.test.ts'];
/** Fused BatchNorm + residual + ReLU (SPEC section 7): numerical files, run per ISA and on JS too. */
const FUSED = ['test/fused/numerics.test.ts', 'test/fused/special-cases.test.ts', 'test/fused/synchronized.test.ts'];
/** The layer API's tests: cheap, run again on the JavaScript backend (not per ISA: they add no kernel coverage). */
const LAYER = ['test/layer.test.ts', 'test/layer-buffers.test.ts', 'test/state-dict.test.ts', 'test/folding.test.ts', 'test/slimming.test.ts', 'test/stability.test.ts', 'test/layer-sync.test.ts', 'test/fused/layer.test.ts'];
/** batchnorm/tfjs: run again on the JavaScript backend (its kernels call the same API). */
const TFJS = ['test/tfjs-kernels.test.ts', 'test/tfjs-models.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'native', include: ['test/**/*.test.ts'], env: { BATCHNORM_BACKEND: 'native' } } },
      ...supportedIsas()
        .slice(1)
        .map((isa) => ({
          extends: true,
          test: { name: `isa-${isa}`, include: [...PER_BACKEND, ...FUSED], env: { BATCHNORM_BACKEND: 'native', BATCHNORM_ISA: isa } },
        })),
      { extends: true, test: { name: 'js', include: [...PER_BACKEND, ...FUSED, 'test/errors.test.ts', 'test/fused/errors.test.ts', 'test/sizes.test.ts', 'test/outputs.test.ts', ...LAYER, ...TFJS], env: { BATCHNORM_BACKEND: 'js' } } },
    ],
  },
});
