import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { treeCpuMicros } from '../../src/bench/cpu.js';
import { cpuCell, unmeasured } from '../../src/bench/measured.js';
import { ADMIN_KEY, childEnv, launchSeckill, terminate, USER_SECRET } from '../support/launcher.js';
import { tempDir } from '../support/server.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** `seckill bench …` as a child process: its exit code and everything it wrote. */
async function bench(args: string[], env: Record<string, string> = {}): Promise<{ code: number; text: string }> {
  const child = spawn(process.execPath, ['bin/seckill.mjs', 'bench', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
  return { code, text };
}

interface ResultLine {
  measure: string;
  ratio: string;
  cpu: string;
  measured: boolean;
  cpuUsPerRequest: number | null;
}

/**
 * `seckill bench --profile smoke` end to end: it must finish and its invariant check (run against
 * the database of record through the admin API) must pass. Not a speed check: CI machines are noisy.
 */
test('bench smoke profile: the sale sells out, the invariants hold, server CPU per request is reported', { skip: process.env.SECKILL_TEST_MODE === 'distributed' && 'embedded bench' }, async () => {
  const out = tempDir('seckill-bench-out-');
  const { code, text } = await bench(['--profile', 'smoke', '--out', out]);
  assert.equal(code, 0, text);
  assert.match(text, /invariants hold/);
  assert.match(text, /\| CPU µs\/req \|/, 'the table has the CPU column');
  assert.match(text, /archived (\d+) of \1 bench sales/);
  const result = JSON.parse(fs.readFileSync(path.join(out, 'embedded-smoke.json'), 'utf8')) as {
    summary: { invariants: { ok: boolean; heldUnits: number; rows: number }; outcomes: Record<string, number> };
    profile: { units: number };
    lines: ResultLine[];
  };
  assert.equal(result.summary.invariants.ok, true);
  assert.equal(result.summary.invariants.heldUnits, result.profile.units, 'the whole stock sold, not more');
  assert.equal(result.summary.outcomes.reserved, result.summary.invariants.rows, 'one row per 202');
  // The bench started the servers itself: CPU is read from /proc for every HTTP measure.
  for (const m of ['bare node:http', 'refusal fast path', 'buy path', 'flash sale']) {
    const line = result.lines.find((l) => l.measure.startsWith(m));
    assert.ok(line?.measured, `${m} measured: ${JSON.stringify(line)}`);
    assert.ok(typeof line.cpuUsPerRequest === 'number' && line.cpuUsPerRequest > 0, `${m}: CPU µs/req ${line.cpu}`);
  }
  assert.ok(fs.readFileSync(path.join(out, 'embedded-smoke.md'), 'utf8').includes('CPU µs/req'));
});

/**
 * Against a target with the default rate limits (per address and per user), whose 429s answer most
 * of the load, no figure may pass for measured: those rows say "not measured", no ratio is printed
 * anywhere, and the command exits non-zero. (A per-user limit alone does not bite: the buy measure
 * spreads its load over 2,000 buyers, and sold-out refusals are answered before any limit.)
 */
test('bench against a target with rate limits on: "not measured", no ratio, exit non-zero', { skip: process.env.SECKILL_TEST_MODE === 'distributed' && 'embedded bench' }, async () => {
  const target = await launchSeckill({
    env: childEnv({ SECKILL_DATA_DIR: tempDir('seckill-bench-target-'), SECKILL_RATE_PER_IP: undefined, SECKILL_RATE_PER_USER: '1', REDIS_URL: undefined, DATABASE_URL: undefined }),
  });
  try {
    const out = tempDir('seckill-bench-out-');
    const { code, text } = await bench(
      ['--profile', 'smoke', '--target', target.url, '--duration', '1', '--connections', '10', '--units', '5', '--users', '50', '--out', out],
      { SECKILL_ADMIN_KEY: ADMIN_KEY, SECKILL_USER_SECRET: USER_SECRET },
    );
    assert.notEqual(code, 0, text);
    assert.match(text, /not measured: .*429 rate_limited/);
    assert.match(text, /CPU: not measured \(remote target\)/);
    const result = JSON.parse(fs.readFileSync(path.join(out, 'target-smoke.json'), 'utf8')) as { lines: ResultLine[] };
    assert.ok(result.lines.some((l) => !l.measured), 'some row not measured');
    for (const l of result.lines) assert.equal(l.ratio, '', `no ratio printed: ${l.measure}`);
    // Every sale it made is archived (off the public list for good).
    let listed = await fetch(`${target.url}/api/admin/sales`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    for (let i = 0; listed.status === 429 && i < 5; i++) { // the target's own per-address limit
      await new Promise((r) => setTimeout(r, 2000));
      listed = await fetch(`${target.url}/api/admin/sales`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    }
    const { sales } = await listed.json() as { sales: { name: string; archivedAt: string | null }[] };
    const made = sales.filter((s) => s.name.startsWith('bench'));
    assert.ok(made.length >= 2, JSON.stringify(sales));
    assert.deepEqual(made.filter((s) => !s.archivedAt), [], 'bench sales archived');
  } finally {
    await terminate(target.child);
  }
});

// The verdict and the CPU reading on their own (no load): cheap, every run.

test('bench verdict: a measure whose answers were mostly something else is not measured, and says what they were', () => {
  // The run: 4,450 buys, 2 reserved, the rest refused by the rate limit.
  assert.equal(unmeasured({ statuses: { 202: 2, 429: 4448 }, errors: 0 }, 202, (s) => (s === 429 ? 'rate_limited' : undefined)),
    'not measured: 4,448 of 4,450 answers were 429 rate_limited (expected 202)');
  assert.equal(unmeasured({ statuses: { 409: 995, 503: 5 }, errors: 0 }, 409), null, '99 % is enough');
  assert.match(unmeasured({ statuses: { 409: 980, 503: 20 }, errors: 0 }, 409) ?? '', /20 of 1,000 answers were 503/);
  assert.match(unmeasured({ statuses: { 200: 10 }, errors: 90 }, 200) ?? '', /90 of 100 requests had no answer/);
  assert.equal(unmeasured({ statuses: {}, errors: 0 }, 200), 'not measured: no request was answered');
  assert.deepEqual(cpuCell(5_000_000, 50_000, true), { cpu: 'not measured (remote target)', cpuUsPerRequest: null });
  assert.deepEqual(cpuCell(5_000_000, 50_000, false), { cpu: '100', cpuUsPerRequest: 100 });
});

test('bench CPU reading: a process tree\'s user + system time, children included', { skip: !fs.existsSync('/proc/self/stat') && 'no /proc' }, async () => {
  const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 300; while (Date.now() < end);'], { stdio: 'ignore' });
  const before = treeCpuMicros(process.pid);
  assert.ok(before !== null && before > 0);
  await new Promise((r) => setTimeout(r, 200));
  const during = treeCpuMicros(process.pid);
  assert.ok(during !== null && during > before, `${during} > ${before}: the busy child counts`);
  await new Promise((r) => child.on('exit', r));
  assert.equal(treeCpuMicros(2 ** 22 + 7), null, 'no such process');
});
