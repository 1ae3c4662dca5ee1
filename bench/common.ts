import fs from 'node:fs';
import path from 'node:path';

export const RESULTS_DIR = path.join(path.dirname(new URL(import.meta.url).pathname), 'results');

export interface Row {
  [column: string]: string | number;
}

/** A Markdown table of rows, columns in the order of the first row. */
export function markdownTable(rows: Row[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]);
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(cols), line(cols.map(() => '---')), ...rows.map((r) => line(cols.map((c) => r[c] ?? '')))].join('\n');
}

/** Writes <name>.json and <name>.md under bench/results and prints the table. */
export function writeResults(name: string, title: string, meta: Record<string, unknown>, rows: Row[]): void {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const table = markdownTable(rows);
  const stamp = new Date().toISOString();
  fs.writeFileSync(path.join(RESULTS_DIR, `${name}.json`), JSON.stringify({ title, date: stamp, meta, rows }, null, 2) + '\n');
  fs.writeFileSync(path.join(RESULTS_DIR, `${name}.md`), `# ${title}\n\n${stamp}, Node ${process.version}\n\n${table}\n`);
  process.stdout.write(`\n${title}\n${table}\n\nwritten to bench/results/${name}.{json,md}\n`);
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
