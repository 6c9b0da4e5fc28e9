/**
 * The tests themselves type-check (tsconfig.test.json). Vitest strips types without checking
 * them, so a test could drift from the types it exercises (an option renamed, a result's shape
 * changed) and still run, testing something other than it says.
 */
import { join } from 'path';

import ts from 'typescript';
import { expect, test } from 'vitest';

import { diagnosticLine, root } from './helpers/readme-snippets';

test('every test file type-checks against the library', () => {
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.test.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(diagnosticLine(d));
    },
  })!;
  expect(config.errors.map(diagnosticLine)).toEqual([]);
  expect(config.fileNames.length).toBeGreaterThan(40);
  const program = ts.createProgram(config.fileNames, config.options);
  expect(ts.getPreEmitDiagnostics(program).map(diagnosticLine)).toEqual([]);
}, 120_000);
