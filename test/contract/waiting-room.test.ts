// The waiting room over HTTP (issue 14, docs/waiting-room.md): one place per user, abandoned places
// dropped, passes that cannot be forged, reused, moved to another user or used after expiry, no path
// or buy without a pass, admission within the stock, sold out told at once, the seed revealed at the
// open and the shuffle recomputed from it. Embedded and distributed (the room in Redis).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { until } from '../support/wait.js';
import { call, saleBody, skipUnlessReady, startTestServer, userToken, type Reply, type SaleOptions, type TestServer } from '../support/server.js';

const skip = await skipUnlessReady();

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body?.error?.code, code, r.text);
}

type Room = { method: 'random' | 'fifo'; admitPerSecond: number; stockFactor?: number };

// Both tiers: embedded (the room in memory) and distributed (3 processes, the room in Redis: every
// request may land on another process, and the answers are the same).
describe('waiting room', { skip }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ SECKILL_QUEUE_ABANDON_MS: '1500', SECKILL_PASS_TTL_MS: '4000' });
  });
  after(async () => {
    await t.close();
  });

  const newSale = async (room: Room | null, o: SaleOptions = {}) => {
    const r = await t.admin('POST', '/api/admin/sales', { ...saleBody(o), waitingRoom: room });
    assert.equal(r.status, 201, r.text);
    return r.body as { id: string; waitingRoom: Room | null };
  };
  const join = (saleId: string, user: string) => call(t.url, 'POST', `/api/sales/${saleId}/queue`, { token: userToken(user) });
  const poll = (saleId: string, user: string) => call(t.url, 'GET', `/api/sales/${saleId}/queue`, { token: userToken(user) });
  const path = (saleId: string, user: string, pass?: string) =>
    call(t.url, 'POST', `/api/sales/${saleId}/path`, { token: userToken(user), headers: pass === undefined ? {} : { 'x-seckill-pass': pass } });
  const buyWith = (saleId: string, user: string, p: string, pass?: string) =>
    call(t.url, 'POST', `/api/sales/${saleId}/buy/${encodeURIComponent(p)}`, { token: userToken(user), body: { quantity: 1 }, headers: pass === undefined ? {} : { 'x-seckill-pass': pass } });
  /** Poll until the room lets this user out; the pass. */
  const admitted = async (saleId: string, user: string): Promise<string> =>
    until(`${user} admitted`, async () => {
      const r = await poll(saleId, user);
      assert.equal(r.status, 200, r.text);
      return r.body.state === 'admitted' ? (r.body.pass as string) : undefined;
    }, 10_000, 100);

  test('settings: stored and shown, checked, with a challenge too, frozen at the open', async () => {
    const s = await newSale({ method: 'fifo', admitPerSecond: 5 }, { startsIn: 60_000 });
    assert.deepEqual(s.waitingRoom, { method: 'fifo', admitPerSecond: 5, stockFactor: 1 });
    const pub = await call(t.url, 'GET', `/api/sales/${s.id}`);
    assert.deepEqual(pub.body.waitingRoom, { method: 'fifo', admitPerSecond: 5 });
    // A room and a challenge together (the challenge itself: test/contract/challenge.test.ts).
    const pow = await t.admin('POST', '/api/admin/sales', { ...saleBody(), waitingRoom: { method: 'fifo', admitPerSecond: 5 }, challenge: 'pow' });
    assert.equal(pow.status, 201, pow.text);
    assert.equal(pow.body.challenge, 'pow');
    assertError(await t.admin('POST', '/api/admin/sales', { ...saleBody(), waitingRoom: { method: 'fifo', admitPerSecond: 5, stockFactor: 0.5 } }), 400, 'bad_request');
    assertError(await t.admin('POST', '/api/admin/sales', { ...saleBody(), waitingRoom: { method: 'lottery', admitPerSecond: 5 } }), 400, 'bad_request');
    const changed = await t.admin('PATCH', `/api/admin/sales/${s.id}`, { waitingRoom: { method: 'random', admitPerSecond: 50, stockFactor: 2 }, challenge: null });
    assert.equal(changed.status, 200, changed.text);
    assert.deepEqual(changed.body.waitingRoom, { method: 'random', admitPerSecond: 50, stockFactor: 2 });
    assert.equal(changed.body.challenge, null);
    const live = await newSale(null);
    assert.equal(live.waitingRoom, null);
    assertError(await t.admin('PATCH', `/api/admin/sales/${live.id}`, { waitingRoom: { method: 'fifo', admitPerSecond: 5 } }), 409, 'sale_open');
  });

  test('a sale without a room: no queue, the path needs no pass', async () => {
    const s = await newSale(null);
    assertError(await join(s.id, 'ann'), 404, 'not_found');
    assertError(await call(t.url, 'GET', `/api/sales/${s.id}/queue/seed`), 404, 'not_found');
    assert.equal((await path(s.id, 'ann')).status, 200);
  });

  test('one place per user (the token\'s user id: another token, another device, same place)', async () => {
    const s = await newSale({ method: 'fifo', admitPerSecond: 1 }, { startsIn: 60_000 });
    for (const u of ['ann', 'bob', 'cy']) assert.equal((await join(s.id, u)).status, 200);
    await sleep(250); // a tick numbers the line
    const again = await call(t.url, 'POST', `/api/sales/${s.id}/queue`, { token: userToken('bob', 600) });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.state, 'waiting');
    assert.equal(again.body.position, 2);
    assert.equal(again.body.ahead, 1);
    assert.equal(typeof again.body.etaSeconds, 'number');
    assert.equal((await poll(s.id, 'cy')).body.position, 3);
    assertError(await call(t.url, 'POST', `/api/sales/${s.id}/queue`), 401, 'unauthorized');
  });

  test('abandoned places are dropped; coming back joins at the back', async () => {
    const s = await newSale({ method: 'fifo', admitPerSecond: 1 }, { startsIn: 60_000 });
    for (const u of ['ann', 'bob', 'cy']) await join(s.id, u);
    // bob and cy keep polling, ann closed her tab.
    const deadline = Date.now() + 3_500;
    while (Date.now() < deadline) {
      await Promise.all([poll(s.id, 'bob'), poll(s.id, 'cy')]);
      await sleep(300);
    }
    assertError(await poll(s.id, 'ann'), 404, 'not_found');
    assert.equal((await poll(s.id, 'bob')).body.position, 1);
    assert.equal((await join(s.id, 'ann')).body.position, 3);
  });

  test('no path and no buy without a good pass; a pass is single use and bound to its user', async () => {
    const s = await newSale({ method: 'fifo', admitPerSecond: 1000 }, { stock: 5, perUserLimit: 2 });
    assertError(await path(s.id, 'ann'), 403, 'no_pass');
    await join(s.id, 'ann');
    await join(s.id, 'bob');
    const pass = await admitted(s.id, 'ann');
    const bobPass = await admitted(s.id, 'bob');
    assertError(await path(s.id, 'ann', 'p1.e30.AAAA'), 403, 'no_pass');
    assertError(await path(s.id, 'ann', pass.slice(0, -3) + (pass.endsWith('AAA') ? 'BBB' : 'AAA')), 403, 'no_pass');
    assertError(await path(s.id, 'bob', pass), 403, 'no_pass'); // ann's pass is not bob's
    assertError(await path(s.id, 'ann', bobPass), 403, 'no_pass');
    const p = await path(s.id, 'ann', pass);
    assert.equal(p.status, 200, p.text);
    assertError(await buyWith(s.id, 'ann', p.body.path), 403, 'no_pass');
    const bought = await buyWith(s.id, 'ann', p.body.path, pass);
    assert.equal(bought.status, 202, bought.text);
    // Spent with the reservation: neither the path nor a second buy with it.
    assertError(await path(s.id, 'ann', pass), 403, 'no_pass');
    assertError(await buyWith(s.id, 'ann', p.body.path, pass), 403, 'no_pass');
    const after = await poll(s.id, 'ann');
    assert.equal(after.body.state, 'admitted');
    assert.equal(after.body.pass, undefined);
    // Another sale's pass does not open this one.
    const other = await newSale({ method: 'fifo', admitPerSecond: 1000 });
    await join(other.id, 'cy');
    const cyOther = await admitted(other.id, 'cy');
    assertError(await path(s.id, 'cy', cyOther), 403, 'no_pass');
  });

  test('a pass is refused after its expiry (then the user joins again, at the back)', async () => {
    const s = await newSale({ method: 'fifo', admitPerSecond: 1000 });
    await join(s.id, 'dee');
    const pass = await admitted(s.id, 'dee');
    assert.equal((await path(s.id, 'dee', pass)).status, 200);
    await sleep(4_300);
    assertError(await path(s.id, 'dee', pass), 403, 'no_pass');
    const back = await until('dee dropped once the pass expired', async () => {
      const r = await poll(s.id, 'dee');
      return r.status === 404 ? r : undefined;
    }, 5_000, 200);
    assertError(back, 404, 'not_found');
    const again = await join(s.id, 'dee');
    assert.equal(again.status, 200);
    const fresh = await admitted(s.id, 'dee');
    assert.notEqual(fresh, pass);
  });

  test('admission never exceeds what the stock allows (units × stockFactor less those out and not bought)', async () => {
    const s = await newSale({ method: 'fifo', admitPerSecond: 1000, stockFactor: 1.5 }, { stock: 2 });
    const users = Array.from({ length: 10 }, (_, i) => `cap-${i}`);
    for (const u of users) await join(s.id, u);
    const states = async () => Promise.all(users.map(async (u) => (await poll(s.id, u)).body.state as string));
    await until('3 let out', async () => (await states()).filter((x) => x === 'admitted').length >= 3, 5_000, 100);
    await sleep(600);
    assert.equal((await states()).filter((x) => x === 'admitted').length, 3, 'floor(2 × 1.5)');
    // One buys: 1 unit left, cap floor(1.5) = 1, 2 still out: nobody more.
    const first = users[(await states()).indexOf('admitted')];
    const pass = (await poll(s.id, first)).body.pass as string;
    const p = await path(s.id, first, pass);
    assert.equal((await buyWith(s.id, first, p.body.path, pass)).status, 202);
    await sleep(600);
    assert.equal((await states()).filter((x) => x === 'admitted').length, 3);
    // The operators' figures agree.
    const figures = await t.admin('GET', `/api/admin/sales/${s.id}/queue`);
    assert.equal(figures.status, 200, figures.text);
    assert.equal(figures.body.room.admitted, 3);
    assert.equal(figures.body.room.outstanding, 2);
    assert.equal(figures.body.room.waiting, 7);
    assertError(await call(t.url, 'GET', `/api/admin/sales/${s.id}/queue`, { token: userToken('ann') }), 403, 'forbidden');
  });

  test('waiting users are told sold_out within a second of the last unit', async () => {
    const s = await newSale({ method: 'fifo', admitPerSecond: 1000 }, { stock: 1 });
    const users = Array.from({ length: 6 }, (_, i) => `so-${i}`);
    for (const u of users) await join(s.id, u);
    const winner = users[0];
    const pass = await admitted(s.id, winner);
    const p = await path(s.id, winner, pass);
    assert.equal((await buyWith(s.id, winner, p.body.path, pass)).status, 202);
    const boughtAt = Date.now();
    const told = await Promise.all(users.slice(1).map((u) => until(`${u} told sold_out`, async () => {
      const r = await poll(s.id, u);
      return r.body.state === 'sold_out' ? Date.now() : undefined;
    }, 10_000, 50)));
    const slowest = Math.max(...told) - boughtAt;
    assert.ok(slowest < 1_000, `told after ${slowest} ms`);
  });

  test('random: the seed is hashed before the open, revealed after, and the order recomputes from it', async () => {
    const s = await newSale({ method: 'random', admitPerSecond: 0.01 }, { startsIn: 2_000 });
    const users = Array.from({ length: 8 }, (_, i) => `rnd-${i}`);
    for (const u of users) {
      const r = await join(s.id, u);
      assert.deepEqual(r.body, { state: 'waiting', position: null, ahead: null, etaSeconds: null });
    }
    const early = await call(t.url, 'GET', `/api/sales/${s.id}/queue/seed`);
    assert.equal(early.status, 200);
    assert.deepEqual(Object.keys(early.body), ['seedHash']);
    // Keep the places while waiting for the open.
    const seed = await until('the seed revealed', async () => {
      await Promise.all(users.map((u) => poll(s.id, u)));
      const r = await call(t.url, 'GET', `/api/sales/${s.id}/queue/seed`);
      return typeof r.body.seed === 'string' ? (r.body.seed as string) : undefined;
    }, 10_000, 250);
    assert.equal(crypto.createHash('sha256').update(seed).digest('hex'), early.body.seedHash);
    await sleep(300);
    const positions = await Promise.all(users.map(async (u) => ({ u, position: (await poll(s.id, u)).body.position as number })));
    const served = positions.sort((a, b) => a.position - b.position).map((x) => x.u);
    // The documented rank: the draw's first 13 hex digits as an integer, ascending.
    const rank = (u: string) => BigInt('0x' + crypto.createHmac('sha256', seed).update(u).digest('hex').slice(0, 13));
    const recomputed = [...users].sort((a, b) => (rank(a) < rank(b) ? -1 : 1));
    assert.deepEqual(served, recomputed);
  });
});
