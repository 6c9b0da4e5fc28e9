/**
 * Command lines of `npm run example:tfjs` and `npm run bench:tfjs`, on Node's util.parseArgs: a
 * flag that cannot be parsed is an error whose message ends with the usage, and --help prints
 * the usage and exits.
 */
import { parseArgs, type ParseArgsConfig } from 'util';

/** The flags' values; `options` must declare a boolean `help`. */
export function parseFlags<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>>['values'] {
  let values: ReturnType<typeof parseArgs<T>>['values'];
  try {
    ({ values } = parseArgs(config));
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${usage}`);
  }
  if ((values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}

/** A flag's integer value, at least `min`. */
export function integerFlag(value: string, flag: string, min: number, usage: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${flag} takes an integer >= ${min}, not "${value}"\n${usage}`);
  return n;
}
