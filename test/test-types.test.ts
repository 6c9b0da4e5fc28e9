/**
 * The tests themselves type-check (tsconfig.test.json). Vitest strips types without checking
 * them, so a test could drift from the types it exercises (an option renamed, a result's shape
 * changed) and still run, testing something other than it says.
 */
import { join } from 'path';

import ts from 'typescript';
import { expect, test } from 'vitest';

test('every test file type-checks against the library', () => {
  const root = join(__dirname, '..');
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.test.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  })!;
  expect(config.errors).toEqual([]);
  expect(config.fileNames.length).toBeGreaterThan(40);
  const program = ts.createProgram(config.fileNames, config.options);
  const errors = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${d.file.fileName.slice(root.length + 1)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : '';
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
  });
  expect(errors).toEqual([]);
}, 120_000);
