import type { HttpFigures } from './baselines.js';

// Whether a measure measured what it names: the bench reports no figure it did not measure.

/** Share of a measure's answers that must be the answer it measures, or it counts as not measured. */
export const MEASURED_SHARE = 0.99;

export const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** Requests that got an HTTP answer, whatever its status. */
export const answeredOf = (f: Pick<HttpFigures, 'statuses'>) => Object.values(f.statuses).reduce((a, n) => a + n, 0);

/**
 * Null when (nearly) every answer of the measure was `expected`; else why it measured nothing,
 * naming the most frequent other answer (and its error code when `codeOf` knows it).
 */
export function unmeasured(f: Pick<HttpFigures, 'statuses' | 'errors'>, expected: number, codeOf?: (status: number) => string | undefined): string | null {
  const asked = answeredOf(f) + f.errors;
  if (asked === 0) return 'not measured: no request was answered';
  const good = f.statuses[String(expected)] ?? 0;
  if (good >= MEASURED_SHARE * asked) return null;
  const others = Object.entries(f.statuses).filter(([code]) => code !== String(expected)).sort((a, b) => b[1] - a[1]);
  const [code, n] = others[0] ?? ['', 0];
  if (f.errors >= n) return `not measured: ${fmt(f.errors)} of ${fmt(asked)} requests had no answer (connection errors or timeouts), ${fmt(good)} answered ${expected}`;
  const name = codeOf?.(Number(code));
  return `not measured: ${fmt(n)} of ${fmt(asked)} answers were ${code}${name ? ` ${name}` : ''} (expected ${expected})`;
}

/** The CPU cell and value: µs per answered request, or why there is none. */
export function cpuCell(cpuUs: number | null, answered: number, remote: boolean): { cpu: string; cpuUsPerRequest: number | null } {
  if (remote) return { cpu: 'not measured (remote target)', cpuUsPerRequest: null };
  if (cpuUs === null) return { cpu: 'not measured (no /proc)', cpuUsPerRequest: null };
  if (answered === 0) return { cpu: '', cpuUsPerRequest: null };
  const per = cpuUs / answered;
  return { cpu: fmt(per), cpuUsPerRequest: Math.round(per * 10) / 10 };
}
