// The intended-purchase recorder (src/services/interest-recorder.ts) without a server: a bounded
// queue that drops and counts, tokens verified in batches off the refusal path (forged ones record
// nothing), de-duplication by token and by user, the raw body's quantity, a failed write forgotten,
// and the one `sale.interest` summary per sale.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { SeckillError } from '../../src/domain/errors.js';
import type { OutboxEvent } from '../../src/domain/events.js';
import type { Sale } from '../../src/domain/sale.js';
import { InterestRecorder, quantityOf, type InterestLimits } from '../../src/services/interest-recorder.js';
import type { InterestRow } from '../../src/stores/record-store.js';
import { sale, silent } from '../support/fakes.js';

/** Tokens `ok:<user>` verify as <user>; anything else is refused, as Auth.user refuses a forged one. */
class FakeAuth {
  verified = 0;
  user(token: string | null): string {
    this.verified++;
    if (token?.startsWith('ok:')) return token.slice(3);
    throw new SeckillError('unauthorized', 'Invalid or expired token.');
  }
}

/** The table: insert-or-ignore on (sale, user), as the SQL stores do. */
class FakeStore {
  rows = new Map<string, InterestRow>();
  batches = 0;
  failNext = false;
  async recordInterest(rows: InterestRow[]): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new SeckillError('busy', 'down');
    }
    this.batches++;
    for (const r of rows) if (!this.rows.has(`${r.saleId}|${r.userId}`)) this.rows.set(`${r.saleId}|${r.userId}`, r);
  }
  async listInterest(saleId: string) {
    return { rows: [...this.rows.values()].filter((r) => r.saleId === saleId), next: null };
  }
  async interestSummary(saleId: string) {
    const rows = [...this.rows.values()].filter((r) => r.saleId === saleId);
    return { users: rows.length, units: rows.reduce((a, r) => a + r.quantity, 0) };
  }
}

function recorder(o: { enabled?: boolean; limits?: Partial<InterestLimits>; sales?: Sale[]; soldOut?: Set<string>; events?: OutboxEvent[] } = {}) {
  const auth = new FakeAuth();
  const store = new FakeStore();
  const events = o.events ?? [];
  const r = new InterestRecorder({
    auth,
    store,
    sales: { all: () => o.sales ?? [], available: (id) => (o.soldOut?.has(id) ? 0 : 1) },
    log: silent,
    enabled: o.enabled ?? true,
    appendEvents: async (e) => {
      events.push(...e);
    },
  }, { flushMs: 5, ...o.limits });
  return { r, auth, store, events };
}

const users = (store: FakeStore) => [...store.rows.values()].map((r) => r.userId).sort();

describe('interest recorder', () => {
  test('verifies in batches off the refusal path; forged tokens record nothing; each user once', async () => {
    const { r, auth, store } = recorder({ limits: { batchSize: 2 } });
    r.soldOut('s1', 'ok:ann', 2, 1000);
    r.soldOut('s1', 'ok:ann', 5, 1001); // the same token again: not even queued
    r.soldOut('s1', 'forged', 1, 1002);
    r.soldOut('s1', 'ok:bob', 1, 1003);
    r.soldOut('s1', null, 1, 1004); // no token: nothing to record
    assert.equal(auth.verified, 0, 'nothing verified on the refusal path');
    assert.equal(r.stats.queued, 3);
    await r.flush();
    assert.equal(auth.verified, 3);
    assert.deepEqual(users(store), ['ann', 'bob']);
    assert.deepEqual(store.rows.get('s1|ann'), { saleId: 's1', userId: 'ann', quantity: 2, at: 1000 });
    assert.equal(r.stats.rejected, 1);

    // Another token of a recorded user: verified once, not written again; forged again: not even queued.
    r.soldOut('s1', 'ok:ann', 1, 2000);
    r.soldOut('s1', 'forged', 1, 2001);
    r.soldOut('s1', 'ok:carl', 1, 2002);
    await r.flush();
    assert.equal(auth.verified, 4);
    assert.deepEqual(users(store), ['ann', 'bob', 'carl']);
    // The same user in another sale is another intended purchase.
    r.soldOut('s2', 'ok:ann', 1, 3000);
    await r.flush();
    assert.equal(store.rows.get('s2|ann')?.quantity, 1);
    await r.close();
  });

  test('the queue is bounded: past its capacity refusals are dropped and counted, and may come back later', async () => {
    const { r, store } = recorder({ limits: { queueCapacity: 3, flushMs: 60_000 } });
    for (let i = 0; i < 5; i++) r.soldOut('s1', `ok:u${i}`, 1, i);
    assert.equal(r.stats.queued, 3);
    assert.equal(r.stats.dropped, 2);
    await r.flush();
    assert.deepEqual(users(store), ['u0', 'u1', 'u2']);
    // A dropped token was not remembered: its next refusal is queued.
    r.soldOut('s1', 'ok:u3', 1, 10);
    await r.flush();
    assert.deepEqual(users(store), ['u0', 'u1', 'u2', 'u3']);
    await r.close();
  });

  test('a timed batch verifies within its time budget; the rest waits in the queue for the next', async () => {
    const { r, store, auth } = recorder({ limits: { flushMs: 60_000, verifyShare: 0, batchSize: 4 } });
    for (let i = 0; i < 10; i++) r.soldOut('s1', `ok:u${i}`, 1, i);
    await (r as unknown as { timedBatch(): Promise<void> }).timedBatch();
    assert.equal(auth.verified, 4, 'no budget: one chunk per batch');
    assert.equal(store.rows.size, 4);
    r.soldOut('s1', 'ok:late', 1, 99);
    await r.flush(); // an explicit flush takes everything
    assert.equal(store.rows.size, 11);
    assert.deepEqual([...store.rows.values()].map((x) => x.userId).slice(4, 6), ['u4', 'u5'], 'the rest first, in order');
    await r.close();
  });

  test('memory per sale is bounded: past the token and user caps the database key de-duplicates', async () => {
    const { r, store } = recorder({ limits: { tokensPerSale: 2, usersPerSale: 2 } });
    for (const u of ['a', 'b', 'c', 'c']) r.soldOut('s1', `ok:${u}`, 1, 0);
    await r.flush();
    assert.deepEqual(users(store), ['a', 'b', 'c']);
    assert.equal(r.stats.queued, 4, 'c past the token cap: queued twice');
    assert.equal(r.stats.written, 4, 'c past the user cap: written twice, kept once by the key');
    await r.close();
  });

  test('the raw fast path: the quantity is read from the body when it ends', async () => {
    const { r, store } = recorder();
    const body = new EventEmitter();
    r.soldOut('s1', 'ok:ann', body, 5);
    const again = new EventEmitter();
    r.soldOut('s1', 'ok:ann', again, 6); // while the first body is still coming: not collected twice
    assert.equal(again.listenerCount('data'), 0);
    body.emit('data', Buffer.from('{"quanti'));
    body.emit('data', Buffer.from('ty":3}'));
    body.emit('end');
    const empty = new EventEmitter();
    r.soldOut('s1', 'ok:bob', empty, 7);
    empty.emit('end');
    await r.flush();
    assert.equal(store.rows.get('s1|ann')?.quantity, 3);
    assert.equal(store.rows.get('s1|bob')?.quantity, 1);
    assert.equal(quantityOf(''), 1);
    assert.equal(quantityOf('null'), 1);
    assert.equal(quantityOf('{"quantity":1001}'), 1);
    assert.equal(quantityOf('{"quantity":2.5}'), 1);
    assert.equal(quantityOf('not json'), 1);
    assert.equal(quantityOf('{"quantity":1000}'), 1000);
    await r.close();
  });

  test('off: nothing queued, nothing verified', async () => {
    const { r, auth, store } = recorder({ enabled: false });
    r.soldOut('s1', 'ok:ann', 1, 0);
    await r.flush();
    assert.equal(r.stats.queued, 0);
    assert.equal(auth.verified, 0);
    assert.equal(store.rows.size, 0);
    await r.close();
  });

  test('a failed write is forgotten: the next refusal of those buyers records them', async () => {
    const { r, store } = recorder();
    store.failNext = true;
    r.soldOut('s1', 'ok:ann', 1, 0);
    await r.flush();
    assert.equal(store.rows.size, 0);
    assert.equal(r.stats.failed, 1);
    r.soldOut('s1', 'ok:ann', 1, 1);
    await r.flush();
    assert.deepEqual(users(store), ['ann']);
    await r.close();
  });

  test('one sale.interest summary per sale: when it ends, or sold out for the settle time without an end', async () => {
    const now = Date.now();
    const ended = sale({ id: 'ended', startsAt: now - 10_000, endsAt: now - 1000 });
    const longAgo = sale({ id: 'long-ago', startsAt: now - 10 * 3_600_000, endsAt: now - 9 * 3_600_000 });
    const open = sale({ id: 'open', startsAt: now - 10_000, endsAt: null });
    const running = sale({ id: 'running', startsAt: now - 10_000, endsAt: now + 3_600_000 });
    const events: OutboxEvent[] = [];
    const { r } = recorder({ sales: [ended, longAgo, open, running], soldOut: new Set(['open', 'running']), events, limits: { settleMs: 500 } });
    r.soldOut('ended', 'ok:ann', 2, now - 2000);
    r.soldOut('ended', 'ok:bob', 1, now - 2000);
    r.soldOut('ended', 'forged', 1, now - 2000);
    await r.summariseDue(now);
    assert.deepEqual(events.map((e) => e.key), ['ended'], 'the ended sale only (its queue written first)');
    assert.deepEqual(JSON.parse(events[0].body), { id: events[0].id, type: 'sale.interest', at: new Date(now).toISOString(), saleId: 'ended', users: 2, units: 3 });
    await r.summariseDue(now + 100);
    assert.equal(events.length, 1, 'once');
    await r.summariseDue(now + 700);
    assert.deepEqual(events.map((e) => e.key), ['ended', 'open'], 'sold out without an end: after the settle time');
    await r.summariseDue(now + 10_000);
    assert.equal(events.length, 2, 'a running sale with an end waits for it');
    await r.close();
  });
});
