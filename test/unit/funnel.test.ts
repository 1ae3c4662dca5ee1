// The funnel (src/gateway/funnel.ts): the checks before the stock engine, in order, as tables; and the
// buy use case around it (src/services/buy.ts) with fake services.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Sale } from '../../src/domain/sale.js';
import type { ReserveResult } from '../../src/engine/stock-engine.js';
import { FUNNEL, buyerRefusal, publicRefusal, type FunnelHints, type FunnelStep } from '../../src/gateway/funnel.js';
import { orderPath } from '../../src/gateway/order-path.js';
import { BuyService, type BuyDeps } from '../../src/services/buy.js';
import { order, sale } from '../support/fakes.js';

/** Hints with fixed answers: `soldOut` sale ids, `atLimit` "saleId/userId" pairs. */
function hints(soldOut: string[] = [], atLimit: string[] = []): FunnelHints {
  return {
    isSoldOut: (saleId) => soldOut.includes(saleId),
    holdsLimit: (saleId, userId) => atLimit.includes(`${saleId}/${userId}`),
  };
}

test('the checks run in the documented order (docs/design.md, "the funnel")', () => {
  assert.deepEqual(
    FUNNEL.map((c) => `${c.stage}: ${c.name}`),
    [
      'public: refuse-all switch',
      'public: unknown sale',
      'public: sale window',
      'public: sold-out hint',
      'buyer: waiting-room pass',
      'buyer: challenge',
      'buyer: order path',
      'buyer: at-limit memo',
      'buyer: quantity over limit',
    ],
  );
});

// startsAt 1 000, endsAt 5 000 unless a row says otherwise; now 2 000 is inside the window.
const PUBLIC_TABLE: Array<{
  name: string;
  step: FunnelStep | 'both';
  sale?: Partial<Sale> | 'unknown';
  now?: number;
  refuseBuys?: boolean;
  soldOut?: boolean;
  want: string | null;
}> = [
  { name: 'open sale, nothing to refuse', step: 'both', want: null },
  { name: 'switch on', step: 'both', refuseBuys: true, want: 'busy' },
  { name: 'switch before an unknown sale (nothing looked up)', step: 'both', sale: 'unknown', refuseBuys: true, want: 'busy' },
  { name: 'switch before the window', step: 'both', now: 500, refuseBuys: true, want: 'busy' },
  { name: 'switch before sold out', step: 'buy', refuseBuys: true, soldOut: true, want: 'busy' },
  { name: 'unknown sale', step: 'both', sale: 'unknown', want: 'not_found' },
  { name: 'before the start', step: 'both', now: 999, want: 'not_started' },
  { name: 'at the start', step: 'both', now: 1_000, want: null },
  { name: 'at the end', step: 'both', now: 5_000, want: 'ended' },
  { name: 'paused', step: 'both', sale: { paused: true }, want: 'paused' },
  { name: 'ended wins over paused', step: 'both', sale: { paused: true }, now: 6_000, want: 'ended' },
  { name: 'paused wins over not started', step: 'both', sale: { paused: true }, now: 500, want: 'paused' },
  { name: 'window before sold out', step: 'buy', now: 500, soldOut: true, want: 'not_started' },
  { name: 'sold out: the buy is refused', step: 'buy', soldOut: true, want: 'sold_out' },
  { name: 'sold out: the path request is not', step: 'path', soldOut: true, want: null },
];

for (const row of PUBLIC_TABLE) {
  for (const step of row.step === 'both' ? (['path', 'buy'] as const) : [row.step]) {
    test(`public checks, ${step}: ${row.name} → ${row.want ?? 'passes'}`, () => {
      const s = row.sale === 'unknown' ? undefined : sale({ startsAt: 1_000, endsAt: 5_000, ...row.sale });
      const got = publicRefusal({ step, sale: s, now: row.now ?? 2_000 }, { refuseBuys: row.refuseBuys ?? false }, hints(row.soldOut ? ['sale-1'] : []));
      assert.equal(got, row.want);
    });
  }
}

const S = sale({ perUserLimit: 2 });
const PATH_ANN = orderPath(S, 'ann');
const BUYER_TABLE: Array<{ name: string; userId?: string; path?: string; quantity?: number; atLimit?: boolean; want: string | null }> = [
  { name: 'own path, under the limit', want: null },
  { name: 'quantity up to the limit', quantity: 2, want: null },
  { name: "another user's path", userId: 'bob', want: 'bad_path' },
  { name: 'a path that differs in its last character', path: PATH_ANN.slice(0, -1) + (PATH_ANN.endsWith('A') ? 'B' : 'A'), want: 'bad_path' },
  { name: 'bad path before the at-limit memo', userId: 'bob', atLimit: true, want: 'bad_path' },
  { name: 'at-limit memo', atLimit: true, want: 'limit_reached' },
  { name: 'quantity over the limit', quantity: 3, want: 'limit_reached' },
  { name: 'bad path before the quantity', path: 'x', quantity: 3, want: 'bad_path' },
];

for (const row of BUYER_TABLE) {
  test(`buyer checks: ${row.name} → ${row.want ?? 'passes'}`, () => {
    const userId = row.userId ?? 'ann';
    const got = buyerRefusal(
      { sale: S, userId, path: row.path ?? PATH_ANN, quantity: row.quantity ?? 1 },
      hints([], row.atLimit ? [`sale-1/${userId}`] : []),
    );
    assert.equal(got, row.want);
  });
}

// A sale with a waiting room: no path and no buy without a good pass (the caller verifies it: hasPass).
const ROOM = sale({ perUserLimit: 2, waitingRoom: { method: 'fifo', admitPerSecond: 10, stockFactor: 1 } });
const PASS_TABLE: Array<{ name: string; step: FunnelStep; room: boolean; hasPass?: boolean; path?: string; want: string | null }> = [
  { name: 'room, no pass: the path request', step: 'path', room: true, want: 'no_pass' },
  { name: 'room, no pass: the buy', step: 'buy', room: true, want: 'no_pass' },
  { name: 'room, a good pass: the path request', step: 'path', room: true, hasPass: true, want: null },
  { name: 'room, a good pass: the buy', step: 'buy', room: true, hasPass: true, want: null },
  { name: 'room: no pass before a bad path', step: 'buy', room: true, path: 'x', want: 'no_pass' },
  { name: 'room, a good pass, a bad path', step: 'buy', room: true, hasPass: true, path: 'x', want: 'bad_path' },
  { name: 'no room: the path request needs no pass', step: 'path', room: false, want: null },
  { name: 'no room: the buy needs no pass', step: 'buy', room: false, want: null },
];

for (const row of PASS_TABLE) {
  test(`buyer checks, ${row.step}: ${row.name} → ${row.want ?? 'passes'}`, () => {
    const s = row.room ? ROOM : S;
    const got = buyerRefusal({ sale: s, userId: 'ann', path: row.path ?? orderPath(s, 'ann'), quantity: 1, hasPass: row.hasPass }, hints(), row.step);
    assert.equal(got, row.want);
  });
}

// A sale with a challenge: no path without one solved (the caller checks it: challenge); the buy is not asked.
const CHALLENGED = sale({ perUserLimit: 2, challenge: 'pow' });
const CHALLENGE_TABLE: Array<{ name: string; step: FunnelStep; on: boolean; challenge?: 'solved' | 'missing' | 'failed'; want: string | null }> = [
  { name: 'challenge, none sent: the path request', step: 'path', on: true, want: 'challenge_required' },
  { name: 'challenge, header missing: the path request', step: 'path', on: true, challenge: 'missing', want: 'challenge_required' },
  { name: 'challenge, not accepted: the path request', step: 'path', on: true, challenge: 'failed', want: 'challenge_failed' },
  { name: 'challenge, solved: the path request', step: 'path', on: true, challenge: 'solved', want: null },
  { name: 'challenge: the buy asks for none', step: 'buy', on: true, want: null },
  { name: 'no challenge: the path request needs none', step: 'path', on: false, want: null },
];

for (const row of CHALLENGE_TABLE) {
  test(`buyer checks, ${row.step}: ${row.name} → ${row.want ?? 'passes'}`, () => {
    const s = row.on ? CHALLENGED : S;
    const got = buyerRefusal({ sale: s, userId: 'ann', path: orderPath(s, 'ann'), quantity: 1, challenge: row.challenge }, hints(), row.step);
    assert.equal(got, row.want);
  });
}

/** Fake services for the use case; records what it was asked. */
function fakes(over: { known?: Sale[]; elsewhere?: Sale[]; refuseBuys?: boolean; soldOut?: boolean; reserve?: ReserveResult } = {}) {
  const calls: string[] = [];
  const known = new Map((over.known ?? []).map((x) => [x.id, x]));
  const deps: BuyDeps = {
    sales: {
      get: (id) => known.get(id),
      find: async (id) => {
        calls.push(`find ${id}`);
        return known.get(id) ?? (over.elsewhere ?? []).find((x) => x.id === id);
      },
    },
    switches: { refuseBuys: over.refuseBuys ?? false },
    refusals: {
      isSoldOut: () => over.soldOut ?? false,
      holdsLimit: () => false,
      markAtLimit: (saleId, userId) => void calls.push(`atLimit ${saleId} ${userId}`),
    },
    signals: { soldOut: (saleId) => void calls.push(`soldOut ${saleId}`) },
    engine: {
      reserve: async (s, userId, quantity) => {
        calls.push(`reserve ${s.id} ${userId} ${quantity}`);
        return over.reserve ?? { ok: true, order: order({ saleId: s.id, userId, quantity }), available: 5, held: quantity };
      },
    },
    auth: {
      user: (token) => {
        if (token === null) throw new Error('unauthorized');
        return token;
      },
    },
    userLimit: { enabled: true, take: async (userId) => void calls.push(`limit ${userId}`) },
    metrics: { countReservation: (saleId) => void calls.push(`reserved ${saleId}`) },
  };
  return { deps, calls };
}

const LIVE = sale({ id: 'live', startsAt: 0, perUserLimit: 2 });

test('buy: checks, reserve, then hints and one reservation counted', async () => {
  const { deps, calls } = fakes({ known: [LIVE], reserve: { ok: true, order: order({ saleId: 'live', userId: 'ann', quantity: 2 }), available: 0, held: 2 } });
  const r = await new BuyService(deps).buy({ saleId: 'live', path: orderPath(LIVE, 'ann'), token: 'ann', quantity: 2 });
  assert.equal(r.ok, true);
  assert.deepEqual(calls, ['limit ann', 'reserve live ann 2', 'soldOut live', 'atLimit live ann', 'reserved live']);
});

test('buy: an engine refusal sets the hints it teaches and counts no reservation', async () => {
  const { deps, calls } = fakes({ known: [LIVE], reserve: { ok: false, refusal: 'sold_out', available: 0, held: 0 } });
  const r = await new BuyService(deps).buy({ saleId: 'live', path: orderPath(LIVE, 'ann'), token: 'ann', quantity: 1 });
  assert.deepEqual(r, { ok: false, refusal: 'sold_out' });
  assert.deepEqual(calls, ['limit ann', 'reserve live ann 1', 'soldOut live']);
});

test('buy: a public refusal comes before the token (no token needed, nothing asked)', async () => {
  const { deps, calls } = fakes({ known: [LIVE], soldOut: true });
  assert.deepEqual(await new BuyService(deps).buy({ saleId: 'live', path: 'x', token: null, quantity: 1 }), { ok: false, refusal: 'sold_out' });
  assert.deepEqual(calls, []);
});

test('buy: a bad path is refused after identity, before the engine', async () => {
  const { deps, calls } = fakes({ known: [LIVE] });
  assert.deepEqual(await new BuyService(deps).buy({ saleId: 'live', path: orderPath(LIVE, 'bob'), token: 'ann', quantity: 1 }), { ok: false, refusal: 'bad_path' });
  assert.deepEqual(calls, ['limit ann']);
});

test('buy: a pass claim whose answer never came is given back before the buy answers (busy), so the retry finds the pass good', async () => {
  const roomSale = sale({ id: 'room', startsAt: 0, perUserLimit: 1, waitingRoom: { method: 'fifo', admitPerSecond: 10, stockFactor: 1 } });
  const { deps, calls } = fakes({ known: [roomSale] });
  let claimed = false;
  let lose = true;
  deps.room = {
    checkPass: async () => true,
    // The claim applies in the store; its reply is lost once (a timeout: the caller cannot know).
    claimPass: async () => {
      if (claimed) return false;
      claimed = true;
      if (lose) {
        lose = false;
        throw new Error('command timed out');
      }
      return true;
    },
    settlePass: async (_saleId, _userId, reserved) => {
      calls.push(`settle ${reserved}`);
      if (!reserved) claimed = false;
    },
  };
  const ask = { saleId: 'room', path: orderPath(roomSale, 'ann'), token: 'ann', quantity: 1, pass: 'p' };
  await assert.rejects(new BuyService(deps).buy(ask), /timed out/);
  assert.deepEqual(calls, ['limit ann', 'settle false'], 'given back, nothing reserved');
  const retry = await new BuyService(deps).buy(ask);
  assert.equal(retry.ok, true, JSON.stringify(retry));
  assert.ok(calls.includes('reserve room ann 1') && calls.includes('settle true'), JSON.stringify(calls));
});

test('an unknown sale is looked up further only when the switch is off', async () => {
  const on = fakes({ elsewhere: [LIVE], refuseBuys: true });
  assert.deepEqual(await new BuyService(on.deps).path('live', 'ann'), { ok: false, refusal: 'busy' });
  assert.deepEqual(on.calls, []);

  const off = fakes({ elsewhere: [LIVE] });
  assert.deepEqual(await new BuyService(off.deps).path('live', 'ann'), { ok: true, path: orderPath(LIVE, 'ann') });
  assert.deepEqual(off.calls, ['find live', 'limit ann']);

  const none = fakes();
  assert.deepEqual(await new BuyService(none.deps).buy({ saleId: 'nope', path: 'x', token: 'ann', quantity: 1 }), { ok: false, refusal: 'not_found' });
  assert.deepEqual(none.calls, ['find nope']);
});

test('localRefusal (the raw fast path): public refusals of a sale known here, never not_found', () => {
  const upcoming = sale({ id: 'soon', startsAt: Date.now() + 60_000 });
  const { deps } = fakes({ known: [LIVE, upcoming], soldOut: true });
  const b = new BuyService(deps);
  const now = Date.now();
  assert.equal(b.localRefusal('buy', 'live', now), 'sold_out');
  assert.equal(b.localRefusal('path', 'live', now), null);
  assert.equal(b.localRefusal('path', 'soon', now), 'not_started');
  assert.equal(b.localRefusal('buy', 'unknown', now), null, 'not known here: fastify looks further');
});
