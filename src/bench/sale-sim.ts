import { setTimeout as sleep } from 'node:timers/promises';
import { createSigner } from 'fast-jwt';
import type { Profile } from './profiles.js';
import { Latency, Progress } from './stats.js';
import type { Api } from './target.js';

export interface Accepted {
  orderId: string;
  userId: string;
  quantity: number;
}

export interface SaleRun {
  saleId: string;
  stock: number;
  perUserLimit: number;
  requests: number;
  outcomes: Record<string, number>;
  accepted: Accepted[];
  paid: number;
  /** ms from the open to the last unit reserved (null: never sold out). */
  soldOutMs: number | null;
  /** ms from the open to the end of the buyers' activity. */
  durationMs: number;
  latency: Latency;
}


/**
 * A flash sale as buyers make it: the sale opens, everyone fetches their order path and buys.
 * Some users send a quantity over the limit first, some buy again after success, one in twenty
 * is a bot that hammers without pause; busy answers are retried after Retry-After with jitter.
 * In the soak profile buyers keep coming for a while, half of them pay, the rest expire and
 * their stock is sold again.
 */
export async function simulateSale(api: Api, adminKey: string, userSecret: string, p: Profile, onCreated: (saleId: string) => void = () => undefined): Promise<SaleRun> {
  const openInMs = 2000;
  const startsAt = Date.now() + openInMs;
  const created = await api.patient('POST', '/api/admin/sales', adminKey, {
    name: `bench ${p.name}`,
    priceCents: 999,
    stock: p.units,
    perUserLimit: p.perUserLimit,
    startsAt: new Date(startsAt).toISOString(),
    endsAt: new Date(startsAt + 3600_000).toISOString(),
    paymentWindowSeconds: p.paymentWindowSeconds,
  });
  if (created.status !== 201) throw new Error(`create sale: ${created.status} ${JSON.stringify(created.body)}`);
  const saleId: string = created.body.id;
  onCreated(saleId);

  const sign = createSigner({ key: userSecret, algorithm: 'HS256', expiresIn: 3600_000 });
  const tokens = Array.from({ length: p.users }, (_, i) => sign({ sub: `bench-${saleId}-${i}` }));

  const run: SaleRun = { saleId, stock: p.units, perUserLimit: p.perUserLimit, requests: 0, outcomes: {}, accepted: [], paid: 0, soldOutMs: null, durationMs: 0, latency: new Latency() };
  let reservedUnits = 0;
  const count = (k: string) => (run.outcomes[k] = (run.outcomes[k] ?? 0) + 1);

  const timed = async (method: string, url: string, token: string, body?: unknown) => {
    for (let attempt = 0; ; attempt++) {
      const t = process.hrtime.bigint();
      const r = await api.call(method, url, token, body);
      run.latency.record(t);
      run.requests++;
      if (r.status !== 503 || attempt >= 3) return r;
      count('busy (retried)');
      await sleep((r.retryAfter || 1) * 1000 * (0.5 + Math.random()));
    }
  };

  const buyOnce = async (i: number, token: string, path: string, quantity: number) => {
    const r = await timed('POST', `/api/sales/${saleId}/buy/${path}`, token, { quantity });
    const outcome = r.status === 202 ? 'reserved' : (r.body?.error?.code ?? String(r.status));
    count(outcome);
    if (r.status === 202) {
      run.accepted.push({ orderId: r.body.orderId, userId: `bench-${saleId}-${i}`, quantity });
      reservedUnits += quantity;
      if (run.soldOutMs === null && reservedUnits >= p.units && p.payShare === 0) run.soldOutMs = performance.now() - t0;
      if (p.payShare > 0 && Math.random() < p.payShare) {
        const paid = await timed('POST', `/api/orders/${r.body.orderId}/pay`, adminKey, { paymentRef: `bench-${r.body.orderId}` });
        if (paid.status === 200) run.paid++;
      }
    }
    return outcome;
  };

  const oneUser = async (i: number) => {
    const token = tokens[i];
    const pr = await timed('POST', `/api/sales/${saleId}/path`, token);
    if (pr.status !== 200) {
      count(`path ${pr.body?.error?.code ?? pr.status}`);
      return;
    }
    const path: string = pr.body.path;
    if (i % 20 === 0) {
      // a bot: hammers the buy without pause
      for (let k = 0; k < 10; k++) await buyOnce(i, token, path, 1);
      return;
    }
    if (i % 20 === 1) await buyOnce(i, token, path, p.perUserLimit + 1); // over the limit
    const first = await buyOnce(i, token, path, 1);
    if (i % 10 === 2 && first === 'reserved') await buyOnce(i, token, path, 1); // buys again
  };

  const progress = new Progress(() => `${p.name}: ${run.requests} requests, ${reservedUnits}/${p.units} units reserved, ${Object.entries(run.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  await sleep(Math.max(0, startsAt - Date.now()));
  const t0 = performance.now();
  progress.start();
  let next = 0;
  const soakEnd = p.soakSeconds > 0 ? Date.now() + p.soakSeconds * 1000 : 0;
  const nextUser = (): number | null => {
    if (soakEnd) return Date.now() < soakEnd ? next++ % p.users : null;
    return next < p.users ? next++ : null;
  };
  await Promise.all(Array.from({ length: Math.min(p.connections, p.users) }, async () => {
    for (let i = nextUser(); i !== null; i = nextUser()) {
      try {
        await oneUser(i);
      } catch (err) {
        count(`error ${(err as Error).name}`);
      }
    }
  }));
  run.durationMs = performance.now() - t0;
  progress.stop();
  return run;
}
