/** The example's outputs: a Markdown table and an SVG of loss curves (log scale), no dependencies. */

/** A Markdown table from a header row and body rows. */
export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A loss curve: points (epoch, loss) and how to draw it. */
export interface Curve {
  label: string;
  color: string;
  dashed: boolean;
  points: [number, number][];
}

/** An SVG line chart of the curves, epochs on x and loss on a log10 y axis. */
export function lossCurvesSvg(title: string, curves: Curve[]): string {
  const width = 640;
  const height = 360;
  const margin = { left: 60, right: 20, top: 36, bottom: 44 };
  const all = curves.flatMap((c) => c.points);
  const maxX = Math.max(...all.map(([x]) => x));
  const lo = Math.floor(Math.log10(Math.min(...all.map(([, y]) => y))));
  const hi = Math.ceil(Math.log10(Math.max(...all.map(([, y]) => y))));
  const sx = (x: number) => margin.left + (x / maxX) * (width - margin.left - margin.right);
  const sy = (y: number) => margin.top + ((hi - Math.log10(y)) / (hi - lo)) * (height - margin.top - margin.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    for (const m of e < hi ? [1, 2, 5] : [1]) {
      const y = sy(m * 10 ** e);
      parts.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#ddd"/>`);
      parts.push(`<text x="${margin.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${m * 10 ** e >= 1 ? m * 10 ** e : (m * 10 ** e).toPrecision(1)}</text>`);
    }
  }
  for (let e = 0; e <= maxX; e++) {
    const x = sx(e);
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${margin.top}" y2="${height - margin.bottom}" stroke="#eee"/>`);
    parts.push(`<text x="${x.toFixed(1)}" y="${height - margin.bottom + 16}" text-anchor="middle">${e}</text>`);
  }
  parts.push(`<text x="${width / 2}" y="${height - 8}" text-anchor="middle">epoch</text>`);
  parts.push(`<text x="14" y="${height / 2}" text-anchor="middle" transform="rotate(-90 14 ${height / 2})">training loss (log scale)</text>`);
  curves.forEach((c, i) => {
    const path = c.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    const dash = c.dashed ? ' stroke-dasharray="6 4"' : '';
    parts.push(`<polyline fill="none" stroke="${c.color}" stroke-width="2"${dash} points="${path}"/>`);
    const ly = margin.top + 16 + 18 * i;
    parts.push(`<line x1="${width - 230}" x2="${width - 200}" y1="${ly}" y2="${ly}" stroke="${c.color}" stroke-width="2"${dash}/>`);
    parts.push(`<text x="${width - 194}" y="${ly + 4}">${c.label}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
