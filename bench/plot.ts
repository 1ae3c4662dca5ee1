// The README's Performance figures from bench/results/: a markdown table of every measured row with
// its ratio and server CPU µs/req (bench/results/summary.md), and an SVG bar chart of the ratios to
// the bare server (bench/results/ratios.svg). No dependency: `node --import tsx bench/plot.ts`.
import fs from 'node:fs';
import path from 'node:path';

const DIR = new URL('./results/', import.meta.url).pathname;

interface Line { measure: string; seckill: string | number; baseline: string | number; ratio: string | number; cpu: string; measured: boolean }
interface Result { date: string; mode: string; profile: { name: string }; lines: Line[] }

const results = fs
  .readdirSync(DIR)
  .filter((f) => /^(embedded|distributed)-(smoke|sale|soak)\.json$/.test(f))
  .map((f) => JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8')) as Result)
  .sort((a, b) => `${a.mode}${a.profile.name}`.localeCompare(`${b.mode}${b.profile.name}`));

const esc = (s: unknown) => String(s).replace(/\|/g, '\\|');
const rows = results.flatMap((r) =>
  r.lines.filter((l) => l.measured && (l.seckill !== '' || l.baseline !== '')).map((l) => ({ run: `${r.mode}, ${r.profile.name}, ${r.date.slice(0, 16)}Z`, ...l })),
);
const table = [
  '| run | measure | seckill | baseline | ratio | CPU µs/req |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows.map((l) => `| ${esc(l.run)} | ${esc(l.measure)} | ${esc(l.seckill)} | ${esc(l.baseline)} | ${esc(l.ratio)} | ${esc(l.cpu)} |`),
].join('\n');
fs.writeFileSync(path.join(DIR, 'summary.md'), `${table}\n`);

// Bars: every row with a ratio, the 1.0 line being the bare server of the same run.
const bars = rows.filter((l) => l.ratio !== '' && Number.isFinite(Number(l.ratio))).map((l) => ({ label: `${l.run.split(',').slice(0, 2).join(',')}: ${l.measure}`, v: Number(l.ratio), cpu: l.cpu }));
const W = 900, left = 430, barH = 18, gap = 8, top = 30;
const H = top + bars.length * (barH + gap) + 30;
const x = (v: number) => left + (Math.min(v, 1.2) / 1.2) * (W - left - 20);
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const svg = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
  `<text x="10" y="18" font-weight="bold">seckill req/s as a share of the bare node:http server of the same run (CPU µs/req at the bar's end)</text>`,
  ...bars.flatMap((b, i) => {
    const y = top + i * (barH + gap);
    return [
      `<text x="${left - 6}" y="${y + 13}" text-anchor="end">${xml(b.label.slice(0, 70))}</text>`,
      `<rect x="${left}" y="${y}" width="${x(b.v) - left}" height="${barH}" fill="#4a7bd0"/>`,
      `<text x="${x(b.v) + 4}" y="${y + 13}">${b.v.toFixed(2)}×${b.cpu ? `, ${xml(String(b.cpu))} µs` : ''}</text>`,
    ];
  }),
  `<line x1="${x(1)}" y1="${top - 6}" x2="${x(1)}" y2="${H - 20}" stroke="#c33" stroke-dasharray="4 3"/>`,
  `<text x="${x(1)}" y="${H - 6}" text-anchor="middle" fill="#c33">1.0× bare</text>`,
  '</svg>',
].join('\n');
fs.writeFileSync(path.join(DIR, 'ratios.svg'), `${svg}\n`);
process.stdout.write(`${table}\n\nwrote bench/results/summary.md and bench/results/ratios.svg\n`);
