import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../support/server.js';

/**
 * `seckill bench --profile smoke` end to end: it must finish and its invariant check (run against
 * the database of record through the admin API) must pass. Not a speed check: CI machines are noisy.
 */
test('bench smoke profile: the sale sells out and the invariants hold', { skip: process.env.SECKILL_TEST_MODE === 'distributed' && 'embedded bench' }, async () => {
  const out = tempDir('seckill-bench-out-');
  const child = spawn(process.execPath, ['bin/seckill.mjs', 'bench', '--profile', 'smoke', '--out', out], {
    cwd: path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
  assert.equal(code, 0, text);
  assert.match(text, /invariants hold/);
  const result = JSON.parse(fs.readFileSync(path.join(out, 'embedded-smoke.json'), 'utf8')) as {
    summary: { invariants: { ok: boolean; heldUnits: number; rows: number }; outcomes: Record<string, number> };
    profile: { units: number };
  };
  assert.equal(result.summary.invariants.ok, true);
  assert.equal(result.summary.invariants.heldUnits, result.profile.units, 'the whole stock sold, not more');
  assert.equal(result.summary.outcomes.reserved, result.summary.invariants.rows, 'one row per 202');
});
