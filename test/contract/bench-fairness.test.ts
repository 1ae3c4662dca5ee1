// `seckill bench --profile fairness` at smoke size (docs/fairness.md): it finishes, every setting is
// reported, and with the waiting room the bots win no more than their share of the users plus a
// margin. Not a speed check: the room's random order decides who wins, not who asks most often.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { SettingResult } from '../../src/bench/fairness.js';
import { tempDir } from '../support/server.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
/** Bots' share of the units may exceed their share of the users by this much with the room on. */
const MARGIN = 0.1;

test('bench fairness profile: bots win about their share with the room, the unprotected sale is reported', { skip: process.env.SECKILL_TEST_MODE === 'distributed' && 'embedded bench' }, async () => {
  const out = tempDir('seckill-bench-fairness-');
  const child = spawn(process.execPath, ['bin/seckill.mjs', 'bench', '--profile', 'fairness', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
  assert.equal(code, 0, text);
  assert.match(text, /\| setting \| bots' share of units \|/);
  const { results } = JSON.parse(fs.readFileSync(path.join(out, 'embedded-fairness.json'), 'utf8')) as { results: SettingResult[] };
  assert.deepEqual(results.map((r) => r.setting), ['none', 'room', 'room+pow', 'pow']);
  const none = results[0];
  assert.equal(none.notAvailable, null);
  assert.ok(none.unitsSold > 0 && none.botShareOfUnits !== null, `no protection reported: ${JSON.stringify(none)}`);
  for (const r of results.filter((x) => x.setting.startsWith('room'))) {
    if (r.notAvailable) continue; // a server without the challenge says so
    assert.equal(r.unitsSold, r.units, `${r.setting}: the stock sold`);
    assert.ok(r.botShareOfUnits !== null && r.botShareOfUnits <= r.botShareOfUsers + MARGIN,
      `${r.setting}: bots won ${r.botShareOfUnits} of the units, ${r.botShareOfUsers} of the users`);
    assert.ok(r.admission && r.admission.admitted >= r.units, `${r.setting}: admissions measured`);
  }
  assert.equal(results[1].notAvailable, null, 'the room setting ran');
  for (const r of results) assert.ok(r.notAvailable || r.invariants?.ok, `${r.setting}: invariants`);
  assert.ok(fs.readFileSync(path.join(out, 'embedded-fairness.md'), 'utf8').includes('peak smearing'));
});
