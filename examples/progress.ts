/** A one-line progress bar: redrawn in place on a terminal, printed once when done otherwise. */

const WIDTH = 30;

/** Draws `label [#####.....] 50% suffix`; call `done()` to end the line. */
export function progressBar(label: string, total: number) {
  const interactive = Boolean(process.stdout.isTTY);
  const line = (current: number, suffix: string) => {
    const filled = Math.round((WIDTH * current) / total);
    const percent = String(Math.round((100 * current) / total)).padStart(3);
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${percent}% ${suffix}`;
  };
  let last = '';
  return {
    update(current: number, suffix = '') {
      last = line(current, suffix);
      if (interactive) process.stdout.write(`\r${last}`);
    },
    done(suffix = '') {
      last = line(total, suffix);
      process.stdout.write(interactive ? `\r${last}\n` : `${last}\n`);
    },
  };
}
