// Issue 11: /metrics under `seckill start --workers N`. Each scrape used to be answered from the
// registry of whichever worker got the connection, so counters jumped between the workers' shares
// (1, 2, 1, 3, 2). Now every scrape shows all workers added up (src/services/cluster-metrics.ts),
// each metric by its aggregator (src/services/metrics.ts), and a worker that does not answer in
// time is left out and reported (seckill_workers_missing) instead of hanging the scrape.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Agent, request } from 'undici';
import client from 'prom-client';
import { Metrics, type MetricsSources } from '../../src/services/metrics.js';
import { skipUnlessServices, TestCluster } from '../support/cluster.js';
import { ADMIN_KEY, until } from '../support/launcher.js';
import { metric } from '../support/metrics.js';

/**
 * One request on a connection of its own: node:cluster's primary hands each new connection to the
 * next worker (round robin), so a run of these reaches every worker; a keep-alive pool would
 * stay with one.
 */
async function fresh(base: string, path: string, o: { token?: string; timeoutMs?: number } = {}): Promise<{ status: number; text: string }> {
  const dispatcher = new Agent({ pipelining: 0 });
  try {
    const res = await request(base + path, {
      headers: { connection: 'close', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
      dispatcher,
      signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
    });
    return { status: res.statusCode, text: await res.body.text() };
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}

const HEALTHZ = 'route="/healthz",outcome="ok"';
const SCRAPES = 'route="/metrics",outcome="ok"';

function sourcesOf(o: { available: number; backlog: number; breaker: string; delayMs: number; refuseBuys: boolean }): MetricsSources {
  return {
    available: () => [['s1', o.available]],
    totals: async () => [['s1', { reserved: 10 - o.available, paid: 0, expired: 0, cancelled: 0, refunded: 0 }]],
    writerBacklog: () => o.backlog,
    ordersWritten: () => 0,
    writerQuarantined: () => 0,
    switches: () => ({ refuseBuys: o.refuseBuys }),
    breakers: () => [['database', o.breaker]],
  };
}

describe('cluster aggregation of one metric, chosen per metric (no cluster needed)', () => {
  test('counters add up; shared figures are taken from the first registry (the scraped worker); per-process states take the worst', async () => {
    const a = new Metrics(sourcesOf({ available: 7, backlog: 4, breaker: 'closed', delayMs: 3, refuseBuys: false }));
    const b = new Metrics(sourcesOf({ available: 6, backlog: 5, breaker: 'open', delayMs: 9, refuseBuys: true }));
    a.pressure = () => ({ eventLoopDelayMs: 3, heapUsedBytes: 0 });
    b.pressure = () => ({ eventLoopDelayMs: 9, heapUsedBytes: 0 });
    for (let i = 0; i < 3; i++) a.countRequest('/healthz', 'ok');
    for (let i = 0; i < 4; i++) b.countRequest('/healthz', 'ok');
    a.countReservation('s1');
    b.countReservation('s1');
    // No cluster here: a scrape is this process's registry, as before.
    const own = await a.scrape();
    assert.equal(metric(own, 'seckill_http_requests_total', HEALTHZ), 3);
    assert.equal(own.includes('seckill_workers'), false);

    const text = await client.AggregatorRegistry.aggregate([await a.registry.getMetricsAsJSON(), await b.registry.getMetricsAsJSON()]).metrics();
    assert.equal(metric(text, 'seckill_http_requests_total', HEALTHZ), 7);
    assert.equal(metric(text, 'seckill_reservations_total', 'sale="s1"'), 2);
    assert.equal(metric(text, 'seckill_stock_available', 'sale="s1"'), 7);
    assert.equal(metric(text, 'seckill_order_units', 'sale="s1",status="reserved"'), 3);
    assert.equal(metric(text, 'seckill_writer_backlog'), 4);
    assert.equal(metric(text, 'seckill_writer_quarantined'), 0);
    assert.equal(metric(text, 'seckill_breaker_open', 'store="database"'), 1);
    assert.equal(metric(text, 'seckill_switch', 'name="refuseBuys"'), 1);
    assert.equal(metric(text, 'seckill_pressure_event_loop_delay_ms'), 9);
    await Promise.all([a.close(), b.close()]);
  });
});

const skip = await skipUnlessServices();

describe('/metrics with --workers 2: every scrape is the sum over the workers', { skip }, () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await new TestCluster({ workers: 2 }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('N requests, then scrape after scrape: the counter reads N each time, never one worker\'s share', async () => {
    const url = cluster.procs[0].url;
    const N = 12;
    for (let i = 0; i < N; i++) assert.equal((await fresh(url, '/healthz')).status, 200);
    let scrapesBefore = -1;
    for (let i = 0; i < 6; i++) {
      const r = await fresh(url, '/metrics', { token: ADMIN_KEY });
      assert.equal(r.status, 200, r.text);
      assert.equal(metric(r.text, 'seckill_http_requests_total', HEALTHZ), N, `scrape ${i}`);
      assert.equal(metric(r.text, 'seckill_workers'), 2);
      assert.equal(metric(r.text, 'seckill_workers_missing'), 0);
      // The scrapes count themselves once answered: never back, never ahead of the scrapes made.
      const scrapes = metric(r.text, 'seckill_http_requests_total', SCRAPES) ?? 0;
      assert.ok(scrapes >= scrapesBefore && scrapes <= i, `scrape ${i}: ${scrapes} scrapes counted after ${scrapesBefore}`);
      scrapesBefore = scrapes;
      // Figures read from a shared source are there once, not once per worker.
      assert.equal(metric(r.text, 'seckill_writer_quarantined'), 0);
    }
  });

  /** The primary's worker processes (tsx's esbuild service, run from the sources, is a child too). */
  function workerPids(): number[] {
    const primary = cluster.procs[0].child.pid;
    assert.ok(primary);
    const children = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(primary)], { encoding: 'utf8' }).split('\n');
    return children.filter((l) => l.trim() && !l.includes('esbuild')).map((l) => Number.parseInt(l.trim(), 10));
  }

  test('a worker that does not answer: the scrape comes within the time limit, says so, and its counters stand as last seen', async () => {
    const url = cluster.procs[0].url;
    const workers = workerPids();
    assert.equal(workers.length, 2, `workers: ${workers.join(', ')}`);
    const before = metric((await fresh(url, '/metrics', { token: ADMIN_KEY })).text, 'seckill_http_requests_total', HEALTHZ);
    assert.equal(before, 12);
    process.kill(workers[0], 'SIGSTOP');
    try {
      // A connection handed to the stopped worker waits; one handed to the other answers without it.
      let partial: string | null = null;
      for (let i = 0; i < 6 && !partial; i++) {
        const started = Date.now();
        const r = await fresh(url, '/metrics', { token: ADMIN_KEY, timeoutMs: 5000 }).catch(() => null);
        if (!r) continue;
        assert.equal(r.status, 200, r.text);
        assert.ok(Date.now() - started < 4500, `answered after ${Date.now() - started} ms`);
        partial = r.text;
      }
      assert.ok(partial, 'no scrape answered while one worker was stopped');
      assert.equal(metric(partial, 'seckill_workers'), 1);
      assert.equal(metric(partial, 'seckill_workers_missing'), 1);
      // Not one worker's share: the stopped one's counters as last seen stand in (a counter never goes back).
      assert.equal(metric(partial, 'seckill_http_requests_total', HEALTHZ), before);
    } finally {
      process.kill(workers[0], 'SIGCONT');
    }
    const r = await fresh(url, '/metrics', { token: ADMIN_KEY });
    assert.equal(r.status, 200, r.text);
    assert.equal(metric(r.text, 'seckill_workers'), 2);
    assert.equal(metric(r.text, 'seckill_workers_missing'), 0);
    assert.equal(metric(r.text, 'seckill_http_requests_total', HEALTHZ), before);
    assert.ok(cluster.procs[0].output.join('').includes('did not answer within'), 'the primary said a worker was missing');
  });

  test('a worker dies and is replaced: its counts stay in the sum (the replacement starts from zero)', async () => {
    const url = cluster.procs[0].url;
    const scrape = async () => (await fresh(url, '/metrics', { token: ADMIN_KEY })).text;
    const before = metric(await scrape(), 'seckill_http_requests_total', HEALTHZ);
    const [victim] = workerPids();
    process.kill(victim, 'SIGKILL');
    await until('the primary saw the worker die', () => !workerPids().includes(victim), 30_000, 50);
    // A connection the primary handed to the worker as it died is never answered (node:cluster):
    // such a scrape times out and the next one is asked, as Prometheus would.
    const text = await until(
      'the replacement worker answers scrapes',
      async () => {
        const t = await fresh(url, '/metrics', { token: ADMIN_KEY, timeoutMs: 5000 }).then((r) => r.text, () => '');
        return metric(t, 'seckill_workers') === 2 && t;
      },
      60_000,
      200,
    );
    assert.equal(metric(text, 'seckill_http_requests_total', HEALTHZ), before);
    for (let i = 0; i < 3; i++) assert.equal((await fresh(url, '/healthz')).status, 200);
    assert.equal(metric(await scrape(), 'seckill_http_requests_total', HEALTHZ), (before ?? 0) + 3);
  });
});
