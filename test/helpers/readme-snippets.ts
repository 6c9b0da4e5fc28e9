/**
 * The README's TypeScript examples as a test sees them: every ```ts block, type-checked as a
 * user's file that imports `batchnorm` and `batchnorm/tfjs` (mapped to lib/, whose types are
 * what dist/ ships), and run with those imports bound to the modules the test loaded.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import ts from 'typescript';

export const root = join(__dirname, '..', '..');

export interface Snippet {
  /** The heading the block sits under, e.g. "Fused ReLU and residual add". */
  heading: string;
  /** Line of the opening fence in README.md (1-based). */
  line: number;
  code: string;
}

/** Every ```ts block of the README, in order, with the nearest heading above it. */
export function readmeSnippets(path = join(root, 'README.md')): Snippet[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const snippets: Snippet[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)/.exec(lines[i]);
    if (!fence) {
      const title = /^#+\s+(.*)$/.exec(lines[i]);
      if (title) heading = title[1].replace(/`/g, '');
      continue;
    }
    const end = lines.indexOf('```', i + 1);
    if (end < 0) throw new Error(`README.md:${i + 1}: unclosed code block`);
    if (fence[1] === 'ts') snippets.push({ heading, line: i + 1, code: lines.slice(i + 1, end).join('\n') });
    i = end; // a fenced block's lines are not headings
  }
  return snippets;
}

/** What the examples import, as a user would: the package's entry points (package.json `exports`). */
const PATHS = { batchnorm: ['lib/index.ts'], 'batchnorm/tfjs': ['lib/tfjs/index.ts'] };

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ES2022, // top-level await, as in the tfjs example
  moduleResolution: ts.ModuleResolutionKind.Node10,
  lib: ['lib.es2022.d.ts'],
  types: ['node'],
  strict: true,
  esModuleInterop: true,
  skipLibCheck: true,
  noEmit: true,
  baseUrl: root,
  paths: PATHS,
};

/**
 * Type-checks sources (file name -> text, each a module of its own) in one program; returns the
 * diagnostics of those files as "name:line:col message" lines (empty when all compile).
 */
export function typeCheck(sources: Map<string, string>): string[] {
  const files = new Map([...sources].map(([name, text]) => [join(root, 'test', '.readme', name), text]));
  const host = ts.createCompilerHost(OPTIONS);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (f) => files.has(f) || fileExists(f);
  host.readFile = (f) => files.get(f) ?? readFile(f);
  host.getSourceFile = (f, version, ...rest) => {
    const text = files.get(f);
    return text === undefined ? getSourceFile(f, version, ...rest) : ts.createSourceFile(f, text, version);
  };
  const program = ts.createProgram([...files.keys()], OPTIONS, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || files.has(d.file.fileName))
    .map(diagnosticLine);
}

/** A diagnostic as "name:line:col message", the name relative to the repository root. */
export function diagnosticLine(d: ts.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) return message;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return `${d.file.fileName.slice(root.length + 1)}:${line + 1}:${character + 1} ${message}`;
}

/**
 * Runs a module's source: compiled to CommonJS, its body in an async function (so top-level
 * await works), with `require` answering from `modules` (an import the test did not bind fails).
 */
export async function runModule(source: string, modules: Record<string, unknown>): Promise<void> {
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true },
  });
  const require = (name: string) => {
    if (!(name in modules)) throw new Error(`the test binds no module '${name}'`);
    return modules[name];
  };
  const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<void>;
  await new AsyncFunction('require', 'exports', 'module', outputText)(require, {}, { exports: {} });
}
