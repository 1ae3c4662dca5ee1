// The fairness report over HTTP (docs/fairness.md): admin only, JSON and CSV, units won counted from
// the orders that hold stock, bots by prefix; a room sale's arrival and FIFO order from the room.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_KEY } from '../support/launcher.js';
import { until } from '../support/wait.js';
import { buy, call, saleBody, skipUnlessReady, startTestServer, userToken, type TestServer } from '../support/server.js';

const skip = await skipUnlessReady();

describe('fairness report', { skip }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('sale without a room: units per user, bots by prefix, arrival unknown; CSV; admin only', async () => {
    const s = await t.admin('POST', '/api/admin/sales', saleBody({ stock: 5, perUserLimit: 2 }));
    assert.equal(s.status, 201, s.text);
    const id = s.body.id as string;
    for (const [user, q] of [['bot-1', 2], ['user-1', 1], ['user-2', 1]] as const) {
      assert.equal((await buy(t.url, id, userToken(user), q)).status, 202);
    }
    const cancelled = await buy(t.url, id, userToken('user-3'), 1);
    assert.equal(cancelled.status, 202);
    assert.equal((await call(t.url, 'POST', `/api/orders/${cancelled.body.orderId}/cancel`, { token: userToken('user-3') })).status, 200);
    await t.settle(id);

    const r = await t.admin('GET', `/api/admin/sales/${id}/fairness`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.method, null);
    assert.equal(r.body.arrival, null);
    assert.match(r.body.arrivalUnknown, /no waiting room/);
    assert.equal(r.body.fifoInversions, null);
    assert.equal(r.body.units, 4, 'the cancelled order won nothing');
    assert.deepEqual(r.body.bots, { prefix: 'bot-', users: 1, units: 2, shareOfUsers: 1 / 3, shareOfUnits: 0.5 });
    const other = await t.admin('GET', `/api/admin/sales/${id}/fairness?botPrefix=user-`);
    assert.equal(other.body.bots.units, 2);

    const c = await call(t.url, 'GET', `/api/admin/sales/${id}/fairness`, { token: ADMIN_KEY, headers: { accept: 'text/csv' } });
    assert.equal(c.status, 200, c.text);
    assert.match(String(c.headers['content-type']), /^text\/csv/);
    assert.deepEqual(c.text.trim().split('\n'), [
      'userId,firstJoinedAt,joinedAt,admittedAt,units,bot',
      'bot-1,,,,2,true',
      'user-1,,,,1,false',
      'user-2,,,,1,false',
    ]);

    assert.equal((await call(t.url, 'GET', `/api/admin/sales/${id}/fairness`)).status, 401);
    assert.equal((await call(t.url, 'GET', `/api/admin/sales/${id}/fairness`, { token: userToken('user-1') })).status, 403);
    assert.equal((await t.admin('GET', '/api/admin/sales/nope/fairness')).status, 404);
    assert.equal((await t.admin('GET', `/api/admin/sales/${id}/fairness?other=1`)).status, 400);
  });

  test('fifo room: arrival before the open, admission order, inversions', async () => {
    const s = await t.admin('POST', '/api/admin/sales', { ...saleBody({ stock: 3, startsIn: 1500 }), waitingRoom: { method: 'fifo', admitPerSecond: 20 } });
    assert.equal(s.status, 201, s.text);
    const id = s.body.id as string;
    const users = ['bot-1', 'user-1', 'user-2'];
    for (const u of users) assert.equal((await call(t.url, 'POST', `/api/sales/${id}/queue`, { token: userToken(u) })).status, 200);
    for (const u of users) {
      const pass = await until(`${u} admitted`, async () => {
        const r = await call(t.url, 'GET', `/api/sales/${id}/queue`, { token: userToken(u) });
        return r.body?.state === 'admitted' ? (r.body.pass as string) : undefined;
      }, 15_000, 100);
      const p = await call(t.url, 'POST', `/api/sales/${id}/path`, { token: userToken(u), headers: { 'x-seckill-pass': pass } });
      assert.equal(p.status, 200, p.text);
      const b = await call(t.url, 'POST', `/api/sales/${id}/buy/${p.body.path}`, { token: userToken(u), body: { quantity: 1 }, headers: { 'x-seckill-pass': pass } });
      assert.equal(b.status, 202, b.text);
    }
    await t.settle(id);
    const r = await t.admin('GET', `/api/admin/sales/${id}/fairness`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.method, 'fifo');
    assert.deepEqual(r.body.arrival, { beforeOpen: { users: 3, units: 3 }, afterOpen: { users: 0, units: 0 }, unknown: { users: 0, units: 0 } });
    assert.deepEqual(r.body.fifoInversions, { inversions: 0, pairs: 3, admitted: 3 });
    assert.equal(r.body.bots.shareOfUnits, 1 / 3);
    const c = await call(t.url, 'GET', `/api/admin/sales/${id}/fairness`, { token: ADMIN_KEY, headers: { accept: 'text/csv' } });
    const rows = c.text.trim().split('\n').slice(1).map((l) => l.split(','));
    assert.equal(rows.length, 3);
    for (const row of rows) assert.ok(row[1] && row[2] && row[3], `times filled: ${row.join(',')}`);
  });
});
