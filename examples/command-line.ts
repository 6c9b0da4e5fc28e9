/**
 * Command lines of the examples and of the benchmarks, on Node's util.parseArgs: a flag
 * that cannot be parsed or a value out of range is a UsageError, which exitWithError prints as
 * one line of why and the usage, with exit status 2 and no stack trace; --help prints the
 * usage and exits.
 */
import { parseArgs, type ParseArgsConfig } from 'util';

/** A command line that cannot be run. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

/** The flags' values; `options` must declare a boolean `help`. */
export function parseFlags<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>>['values'] {
  let values: ReturnType<typeof parseArgs<T>>['values'];
  try {
    ({ values } = parseArgs(config));
  } catch (e) {
    // parseArgs's messages name the flag; the hint after it repeats what the usage says.
    throw new UsageError((e as Error).message.split('. To specify')[0]!, usage);
  }
  if ((values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}

/** A flag's integer value, from `min` to `max`. */
export function integerFlag(value: string, flag: string, min: number, usage: string, max = Infinity): number {
  const n = Number(value);
  if (!/\S/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${flag} takes an integer ${range}, not "${value}"`, usage);
  }
  return n;
}

/** A flag's comma-separated list of `allowed` values, each once (a repeat is dropped). */
export function listFlag<T extends string>(value: string, allowed: readonly T[], flag: string, usage: string): T[] {
  const items = value.split(',');
  for (const v of items) if (!allowed.includes(v as T)) throw new UsageError(`--${flag}: unknown "${v}"`, usage);
  return [...new Set(items as T[])];
}

/**
 * Ends the command `name` after `e`: a UsageError as `name: why` and the usage, exit status 2;
 * anything else with its stack, exit status 1.
 */
export function exitWithError(name: string, e: unknown): never {
  if (e instanceof UsageError) {
    console.error(`${name}: ${e.message}\n${e.usage}`);
    process.exit(2);
  }
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
}
