// Scoped keys (issue 11): `admin` may do everything; `payments` (the shop's payment service) may pay,
// cancel, refund and read orders. Several keys per scope (rotation), from the environment; every
// route answers each credential as the table says; a key removed from the configuration is refused
// after a restart; a bad key list stops the start naming the variable.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/config/errors.js';
import { Auth, keyRef } from '../../src/gateway/auth.js';
import type { RunningServer } from '../../src/server.js';
import { startInProcess } from '../support/launcher.js';
import { ADMIN_KEY, USER_SECRET, buy, call, randomUser, saleBody, skipUnlessReady, startTestServer, tempDir, userToken, type TestServer } from '../support/server.js';

const ADMIN_A = 'rotating-admin-key-a-0123456789';
const ADMIN_B = 'rotating-admin-key-b-0123456789';
const PAY_A = 'payments-key-a-0123456789abcdef';
const PAY_B = 'payments-key-b-0123456789abcdef';

const skip = await skipUnlessReady();

type Who = 'admin' | 'payments' | 'user' | 'none';
const WHO: readonly Who[] = ['admin', 'payments', 'user', 'none'];

/** What a row needs: a sale (open), its paused twin, and a fresh order of `owner` per call. */
interface Fixture {
  saleId: string;
  pausableId: string;
  owner: string;
  /** A new reserved order of the owner (each pay/cancel row uses its own). */
  reserved(): Promise<string>;
  /** A new paid order of the owner. */
  paid(): Promise<string>;
}

interface Row {
  name: string;
  method: 'GET' | 'POST';
  /** The URL (and body) for one call; may create what it acts on. */
  prepare(f: Fixture): Promise<{ url: string; body?: unknown; headers?: Record<string, string> }>;
  expect: Record<Who, number>;
}

const fixed = (method: 'GET' | 'POST', url: (f: Fixture) => string, expect: Record<Who, number>, body?: unknown): Omit<Row, 'name'> => ({
  method,
  prepare: async (f) => ({ url: url(f), body }),
  expect,
});

const ADMIN_ONLY = { admin: 200, payments: 403, user: 403, none: 401 };
const KEYS_ONLY_READ = { admin: 200, payments: 200, user: 403, none: 401 };

const ROWS: Row[] = [
  { name: 'POST /api/admin/sales', ...fixed('POST', () => '/api/admin/sales', { ...ADMIN_ONLY, admin: 201 }, { name: 'x', priceCents: 1, stock: 1, startsAt: new Date(Date.now() + 3600_000).toISOString() }) },
  { name: 'GET /api/admin/sales', ...fixed('GET', () => '/api/admin/sales', ADMIN_ONLY) },
  { name: 'GET /api/admin/sales/:id', ...fixed('GET', (f) => `/api/admin/sales/${f.saleId}`, ADMIN_ONLY) },
  { name: 'GET /api/admin/sales/:id/live', ...fixed('GET', (f) => `/api/admin/sales/${f.saleId}/live`, ADMIN_ONLY) },
  { name: 'POST /api/admin/sales/:id/pause', ...fixed('POST', (f) => `/api/admin/sales/${f.pausableId}/pause`, ADMIN_ONLY, {}) },
  { name: 'POST /api/admin/sales/:id/resume', ...fixed('POST', (f) => `/api/admin/sales/${f.pausableId}/resume`, ADMIN_ONLY, {}) },
  { name: 'GET /api/admin/switches', ...fixed('GET', () => '/api/admin/switches', ADMIN_ONLY) },
  { name: 'POST /api/admin/switches', ...fixed('POST', () => '/api/admin/switches', ADMIN_ONLY, { refuseBuys: false }) },
  { name: 'GET /api/admin/sales/:id/orders', ...fixed('GET', (f) => `/api/admin/sales/${f.saleId}/orders`, KEYS_ONLY_READ) },
  {
    name: 'GET /api/admin/sales/:id/orders (CSV export)',
    method: 'GET',
    prepare: async (f) => ({ url: `/api/admin/sales/${f.saleId}/orders`, headers: { accept: 'text/csv' } }),
    expect: KEYS_ONLY_READ,
  },
  {
    name: 'GET /api/orders/:id',
    method: 'GET',
    prepare: async (f) => ({ url: `/api/orders/${await f.reserved()}` }),
    expect: { admin: 200, payments: 200, user: 200, none: 401 },
  },
  {
    name: 'GET /api/orders/:id/events (a paid order: the stream ends)',
    method: 'GET',
    prepare: async (f) => ({ url: `/api/orders/${await f.paid()}/events` }),
    expect: { admin: 200, payments: 200, user: 200, none: 401 },
  },
  {
    name: 'POST /api/orders/:id/pay',
    method: 'POST',
    prepare: async (f) => ({ url: `/api/orders/${await f.reserved()}/pay`, body: { paymentRef: 'psp-1' } }),
    // Users never confirm payments (demo mode is off).
    expect: { admin: 200, payments: 200, user: 403, none: 401 },
  },
  {
    name: 'POST /api/orders/:id/cancel',
    method: 'POST',
    prepare: async (f) => ({ url: `/api/orders/${await f.reserved()}/cancel`, body: {} }),
    expect: { admin: 200, payments: 200, user: 200, none: 401 },
  },
  {
    name: 'POST /api/orders/:id/refund',
    method: 'POST',
    prepare: async (f) => ({ url: `/api/orders/${await f.paid()}/refund`, body: {} }),
    expect: { admin: 200, payments: 200, user: 403, none: 401 },
  },
  // Keys are no user tokens.
  { name: 'GET /api/me/orders', ...fixed('GET', () => '/api/me/orders', { admin: 401, payments: 401, user: 200, none: 401 }) },
  { name: 'POST /api/sales/:id/path', ...fixed('POST', (f) => `/api/sales/${f.saleId}/path`, { admin: 401, payments: 401, user: 200, none: 401 }, {}) },
  { name: 'GET /metrics', ...fixed('GET', () => '/metrics', { admin: 200, payments: 403, user: 401, none: 401 }) },
  // Public.
  { name: 'GET /api/sales', ...fixed('GET', () => '/api/sales', { admin: 200, payments: 200, user: 200, none: 200 }) },
  { name: 'GET /api/sales/:id', ...fixed('GET', (f) => `/api/sales/${f.saleId}`, { admin: 200, payments: 200, user: 200, none: 200 }) },
];

const KEYS_ENV = { SECKILL_ADMIN_KEYS: `${ADMIN_A},${ADMIN_B}`, SECKILL_PAYMENTS_KEYS: `${PAY_A}, ${PAY_B}` };

describe('scoped keys: every route × {admin key, payments key, user token, none}', { skip }, () => {
  let srv: TestServer;
  let f: Fixture;
  before(async () => {
    srv = await startTestServer(KEYS_ENV);
    const sale = await srv.createSale({ stock: 1000, perUserLimit: 1000 });
    const pausable = await srv.createSale({ stock: 1 });
    const owner = randomUser('owner');
    const token = userToken(owner);
    const reserved = async () => {
      const r = await buy(srv.url, sale.id, token);
      assert.equal(r.status, 202, r.text);
      return r.body.orderId as string;
    };
    f = {
      saleId: sale.id,
      pausableId: pausable.id,
      owner,
      reserved,
      async paid() {
        const id = await reserved();
        const p = await call(srv.url, 'POST', `/api/orders/${id}/pay`, { token: ADMIN_KEY, body: { paymentRef: 'psp-0' } });
        assert.equal(p.status, 200, p.text);
        return id;
      },
    };
  });
  after(() => srv?.close());

  const credential = (who: Who, i: number): string | undefined =>
    who === 'admin' ? [ADMIN_KEY, ADMIN_A, ADMIN_B][i % 3]
      : who === 'payments' ? [PAY_A, PAY_B][i % 2]
        : who === 'user' ? userToken(f.owner)
          : undefined;

  for (const [i, row] of ROWS.entries()) {
    test(row.name, async () => {
      const got: Record<string, number> = {};
      for (const who of WHO) {
        const { url, body, headers } = await row.prepare(f);
        const r = await call(srv.url, row.method, url, { token: credential(who, i), body, headers });
        got[who] = r.status;
        if (who === 'payments' && r.status === 403) {
          // The refusal says what the key is and what the route needs (never the key).
          assert.equal(r.body.error.code, 'forbidden');
          assert.match(r.body.error.message, /payments scope/, r.text);
          assert.match(r.body.error.message, /payments:[0-9a-f]{8}/, r.text);
        }
      }
      assert.deepEqual(got, row.expect);
    });
  }

  test('a key of one scope is not a key of another, however close', async () => {
    const r = await call(srv.url, 'GET', `/api/admin/sales/${f.saleId}/orders`, { token: PAY_A.slice(0, -1) + 'X' });
    assert.equal(r.status, 401, r.text);
    assert.match(r.body.error.message, /key/i);
  });
});

// In process and embedded whatever SECKILL_TEST_MODE says: a restart with other keys on the same data dir.
describe('rotation', () => {
  test('two keys of a scope both work; a key removed from the configuration is refused after a restart', async () => {
    const dataDir = tempDir();
    let srv: RunningServer = await startInProcess({ SECKILL_DATA_DIR: dataDir, ...KEYS_ENV });
    try {
      const created = await call(srv.url, 'POST', '/api/admin/sales', { token: ADMIN_A, body: saleBody({ stock: 5 }) });
      assert.equal(created.status, 201, created.text);
      const orders = `/api/admin/sales/${created.body.id}/orders`;
      for (const key of [ADMIN_A, ADMIN_B, ADMIN_KEY]) {
        assert.equal((await call(srv.url, 'GET', '/api/admin/sales', { token: key })).status, 200, 'admin key works');
      }
      for (const key of [PAY_A, PAY_B]) {
        assert.equal((await call(srv.url, 'GET', orders, { token: key })).status, 200, 'payments key works');
      }
      // The operator removes the old keys and restarts.
      await srv.close();
      srv = await startInProcess({ SECKILL_DATA_DIR: dataDir, SECKILL_ADMIN_KEYS: ADMIN_B, SECKILL_PAYMENTS_KEYS: PAY_B });
      assert.equal((await call(srv.url, 'GET', '/api/admin/sales', { token: ADMIN_A })).status, 401, 'removed admin key');
      assert.equal((await call(srv.url, 'GET', orders, { token: PAY_A })).status, 401, 'removed payments key');
      assert.equal((await call(srv.url, 'GET', '/api/admin/sales', { token: ADMIN_B })).status, 200, 'kept admin key');
      assert.equal((await call(srv.url, 'GET', orders, { token: PAY_B })).status, 200, 'kept payments key');
    } finally {
      await srv.close();
    }
  });
});

describe('key configuration', () => {
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig({ SECKILL_USER_SECRET: USER_SECRET, ...env });
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems;
    }
    return [];
  };

  test('comma-separated lists, SECKILL_ADMIN_KEY one more admin key', () => {
    const c = loadConfig({ SECKILL_ADMIN_KEY: ADMIN_KEY, ...KEYS_ENV });
    assert.deepEqual(c.adminKeys, [ADMIN_A, ADMIN_B]);
    assert.deepEqual(c.paymentsKeys, [PAY_A, PAY_B]);
    assert.equal(c.adminKey, ADMIN_KEY);
  });

  test('an empty entry, a short key, a repeated key or one key in two scopes: an error naming the variable, never the key', () => {
    for (const [env, name] of [
      [{ SECKILL_PAYMENTS_KEYS: `${PAY_A},` }, 'SECKILL_PAYMENTS_KEYS'],
      [{ SECKILL_PAYMENTS_KEYS: `${PAY_A},,${PAY_B}` }, 'SECKILL_PAYMENTS_KEYS'],
      [{ SECKILL_ADMIN_KEYS: 'short-key' }, 'SECKILL_ADMIN_KEYS'],
      [{ SECKILL_ADMIN_KEYS: '' }, 'SECKILL_ADMIN_KEYS'],
      [{ SECKILL_ADMIN_KEYS: `${ADMIN_A},${ADMIN_A}` }, 'SECKILL_ADMIN_KEYS'],
      [{ SECKILL_ADMIN_KEYS: ADMIN_A, SECKILL_PAYMENTS_KEYS: ADMIN_A }, 'SECKILL_PAYMENTS_KEYS'],
      [{ SECKILL_ADMIN_KEY: ADMIN_KEY, SECKILL_PAYMENTS_KEYS: ADMIN_KEY }, 'SECKILL_PAYMENTS_KEYS'],
    ] as const) {
      const p = problems(env);
      assert.equal(p.length, 1, JSON.stringify(p));
      assert.match(p[0], new RegExp(`^${name}`), p[0]);
      for (const secret of [PAY_A, PAY_B, ADMIN_A, ADMIN_KEY, 'short-key']) assert.ok(!p[0].includes(secret), p[0]);
    }
  });
});

describe('the auth result says which key', () => {
  test('scope and the first 8 hex digits of the key\'s SHA-256, from a constant-time comparison of digests', () => {
    const auth = new Auth(USER_SECRET, { admin: [ADMIN_A], payments: [PAY_A, PAY_B] });
    const hex = (k: string) => crypto.createHash('sha256').update(k).digest('hex').slice(0, 8);
    assert.deepEqual(auth.identify(PAY_B), { kind: 'admin', key: { scope: 'payments', id: `payments:${hex(PAY_B)}` } });
    assert.deepEqual(auth.identify(ADMIN_A), { kind: 'admin', key: keyRef('admin', ADMIN_A) });
    assert.deepEqual(auth.requireScope(PAY_A, 'payments'), keyRef('payments', PAY_A));
    assert.deepEqual(auth.requireScope(ADMIN_A, 'payments'), keyRef('admin', ADMIN_A), 'an admin key covers payments');
    assert.throws(() => auth.requireScope(PAY_A, 'admin'), /payments scope/);
    assert.deepEqual(auth.identify(userToken('bob')), { kind: 'user', userId: 'bob' });
  });
});
