// The conformance suite of one engine+store combination: the same spec for every one of them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { skipUnlessServices } from './cluster.js';
import { Backend, usesPostgres, usesRedis, type Combo } from './backends.js';
import { faultReport, runInterleavings, runModel, runRefundPath, type FaultStat } from './sale-model.js';

const num = (name: string, dflt: number) => (process.env[name] ? Number(process.env[name]) : dflt);

/** Sizes: small enough for the whole tier to take a few minutes on a loaded 2-core machine. */
export interface SuiteSize {
  modelRuns: number;
  faultRuns: number;
  interleavingRuns: number;
  maxCommands: number;
}

export function conformanceSuite(combo: Combo, size: SuiteSize): void {
  let b: Backend | null = null;
  const stats = new Map<string, FaultStat>();
  let skip: string | false = false;
  const scale = num('CONFORMANCE_SCALE', 1);
  const runs = (n: number) => Math.max(1, Math.round(n * scale));

  before(async () => {
    if (usesPostgres(combo) || usesRedis(combo)) skip = await skipUnlessServices();
    if (!skip) b = await Backend.start(combo);
  });
  after(async () => {
    await b?.close();
    // A client that a failed start left behind (reconnecting to a closed proxy) must not keep this
    // file's process alive: the runner waits for it, and the next file never starts.
    setTimeout(() => process.exit(process.exitCode ?? 0), 5000).unref();
    if (stats.size > 0) process.stdout.write(`# ${combo} faults:\n${faultReport(stats).replace(/^/gm, '#   ')}\n`);
  });

  const timed = async <T extends object>(name: string, f: () => Promise<T>) => {
    const t0 = Date.now();
    const r = await f();
    process.stdout.write(`# ${combo} ${name}: ${JSON.stringify(r)} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  };

  test(`${combo}: reserve, pay, cancel, refund, expire, restart follow the model`, async (t) => {
    if (skip) return t.skip(String(skip));
    await timed('model', () => runModel(b!, { numRuns: runs(size.modelRuns), maxCommands: size.maxCommands, withFaults: false }, stats));
  });

  test(`${combo}: a refund keeps or returns the units per restockOnRefund, once, across a restart`, async (t) => {
    if (skip) return t.skip(String(skip));
    for (const restock of [false, true]) await timed(`refund path (restockOnRefund ${restock})`, () => runRefundPath(b!, restock));
  });

  test(`${combo}: concurrent reserves and transitions in scheduled orders form a legal history`, async (t) => {
    if (skip) return t.skip(String(skip));
    await timed('interleavings', () => runInterleavings(b!, runs(size.interleavingRuns)));
  });

  if (!usesRedis(combo)) {
    test(`${combo}: a second instance on the same data refuses to start (one seller per stock)`, async (t) => {
      if (skip) return t.skip(String(skip));
      // Waiting for the first to go is no refusal: after 30 s this resolves, and the assertion fails.
      const started = Promise.race([b!.startSecond(), new Promise<void>((r) => setTimeout(r, 30_000).unref())]);
      await assert.rejects(started, 'a second process on the same data would sell the same stock again');
    });
  }

  test(`${combo}: under faults every answer is true (busy means nothing changed)`, async (t) => {
    if (skip) return t.skip(String(skip));
    await timed('faults', () => runModel(b!, { numRuns: runs(size.faultRuns), maxCommands: size.maxCommands, withFaults: true }, stats));
  });
}
