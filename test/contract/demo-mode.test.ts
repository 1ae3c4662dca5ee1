// Issue 9, defect 10: demo mode (anyone may mint a token for any user; users pay their own orders)
// is an explicit choice, never implied by where the secrets came from. The quick start's first
// start of an empty data dir may choose it, records that in secrets.json and says so loudly at
// every start. Embedded only: the decision is made per process from the environment and the data
// dir (secrets.ts), the same code in every mode.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { resolveSecrets, secretsFile } from '../../src/config/secrets.js';
import { ADMIN_KEY, USER_SECRET, buy, call, mode, randomUser, saleBody, startTestServer, tempDir, userToken, type TestServer } from '../support/server.js';

const skip = mode === 'distributed' && 'the demo decision is per process and mode-independent (embedded run)';
const STORED_SECRET = 'user-secret-stored-in-the-data-dir-0123456789';

/** stdout written while `fn` runs (the console banner). */
async function captureStdout<T>(fn: () => Promise<T>): Promise<{ value: T; out: string }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    chunks.push(String(chunk));
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    return { value: await fn(), out: chunks.join('') };
  } finally {
    process.stdout.write = write;
  }
}

/** Demo powers, tried over HTTP: the token route and a user paying their own order. */
async function demoPowers(t: TestServer, secret: string, adminKey = ADMIN_KEY): Promise<{ tokenRoute: number; selfPay: number; page: string }> {
  const tokenRoute = (await call(t.url, 'POST', '/api/demo/token', { body: { userId: 'mallory' } })).status;
  const created = await call(t.url, 'POST', '/api/admin/sales', { token: adminKey, body: saleBody({ stock: 2 }) });
  assert.equal(created.status, 201, created.text);
  const sale = created.body as { id: string };
  const owner = userToken(randomUser(), 600, secret);
  const r = await buy(t.url, sale.id, owner);
  assert.equal(r.status, 202, r.text);
  const selfPay = (await call(t.url, 'POST', `/api/orders/${r.body.orderId}/pay`, { token: owner, body: { paymentRef: 'self' } })).status;
  const html = (await call(t.url, 'GET', `/sales/${sale.id}`)).text;
  const page = /name="seckill-demo" content="(on|off)"/.exec(html)?.[1] ?? '?';
  return { tokenRoute, selfPay, page };
}

describe('defect 10: demo mode is an explicit choice', { skip }, () => {
  test('secrets from an earlier start (secrets.json without "demo"), none in the environment: not demo', async () => {
    const dir = tempDir();
    fs.writeFileSync(secretsFile(dir), JSON.stringify({ adminKey: ADMIN_KEY, userSecret: STORED_SECRET }), { mode: 0o600 });
    const t = await startTestServer({ SECKILL_ADMIN_KEY: undefined, SECKILL_USER_SECRET: undefined }, dir);
    try {
      assert.equal(t.server?.services.secrets.demo, false);
      assert.deepEqual(await demoPowers(t, STORED_SECRET), { tokenRoute: 404, selfPay: 403, page: 'off' });
    } finally {
      await t.close();
    }
  });

  test('the admin key in the environment, the user secret from the data dir: not demo', async () => {
    const dir = tempDir();
    fs.writeFileSync(secretsFile(dir), JSON.stringify({ adminKey: 'stored-admin-key-0123456789', userSecret: STORED_SECRET }), { mode: 0o600 });
    const t = await startTestServer({ SECKILL_USER_SECRET: undefined }, dir);
    try {
      assert.deepEqual(await demoPowers(t, STORED_SECRET), { tokenRoute: 404, selfPay: 403, page: 'off' });
    } finally {
      await t.close();
    }
  });

  test('first start of an empty data dir with a secret in the environment: not demo, and not recorded as demo', async () => {
    const dir = tempDir();
    const t = await startTestServer({ SECKILL_USER_SECRET: undefined }, dir); // the admin key comes from the environment
    try {
      const stored = JSON.parse(fs.readFileSync(secretsFile(dir), 'utf8')) as { userSecret: string; demo?: boolean };
      assert.equal(stored.demo, false);
      assert.deepEqual(await demoPowers(t, stored.userSecret), { tokenRoute: 404, selfPay: 403, page: 'off' });
    } finally {
      await t.close();
    }
  });

  test('the quick start: first start of an empty data dir, no secrets in the environment: demo, recorded, loud at every start; SECKILL_DEMO=0 turns it off', async () => {
    const dir = tempDir();
    const env = { SECKILL_ADMIN_KEY: undefined, SECKILL_USER_SECRET: undefined };
    const first = await captureStdout(() => startTestServer(env, dir));
    let stored: { adminKey: string; userSecret: string; demo?: boolean };
    try {
      stored = JSON.parse(fs.readFileSync(secretsFile(dir), 'utf8'));
      assert.equal(stored.demo, true, 'the choice is recorded in secrets.json');
      assert.match(first.out, /DEMO MODE/);
      assert.deepEqual(await demoPowers(first.value, stored.userSecret, stored.adminKey), { tokenRoute: 200, selfPay: 200, page: 'on' });
    } finally {
      await first.value.close();
    }
    // Every later start says it again.
    const again = await captureStdout(() => startTestServer(env, dir));
    try {
      assert.match(again.out, /DEMO MODE/);
      assert.match(again.out, /secrets\.json/, 'the banner says why');
      assert.equal(again.value.server?.services.secrets.demo, true);
    } finally {
      await again.value.close();
    }
    // The operator says no: off, silently.
    const off = await captureStdout(() => startTestServer({ ...env, SECKILL_DEMO: '0' }, dir));
    try {
      assert.doesNotMatch(off.out, /DEMO MODE/);
      assert.deepEqual(await demoPowers(off.value, stored.userSecret, stored.adminKey), { tokenRoute: 404, selfPay: 403, page: 'off' });
    } finally {
      await off.value.close();
    }
  });

  test('SECKILL_DEMO=1 turns it on even with secrets in the environment (and says so)', async () => {
    const on = await captureStdout(() => startTestServer({ SECKILL_DEMO: '1' }));
    try {
      assert.match(on.out, /DEMO MODE/);
      assert.match(on.out, /SECKILL_DEMO=1/);
      assert.deepEqual(await demoPowers(on.value, USER_SECRET), { tokenRoute: 200, selfPay: 200, page: 'on' });
    } finally {
      await on.value.close();
    }
  });

  test('resolveSecrets: the rule in one place', () => {
    const fresh = () => tempDir();
    assert.equal(resolveSecrets(fresh(), {}).demo, true, 'quick start');
    assert.equal(resolveSecrets(fresh(), { demo: false }).demo, false);
    assert.equal(resolveSecrets(fresh(), { adminKey: ADMIN_KEY }).demo, false, 'an operator set the admin key');
    assert.equal(resolveSecrets(fresh(), { userSecret: USER_SECRET }).demo, false, 'the shop signs the tokens');
    assert.equal(resolveSecrets(fresh(), { adminKey: ADMIN_KEY, userSecret: USER_SECRET }).demo, false);
    assert.equal(resolveSecrets(fresh(), { adminKey: ADMIN_KEY, userSecret: USER_SECRET, demo: true }).demo, true);
    // Recorded demo, but now the shop's secret is in the environment: not demo.
    const dir = fresh();
    assert.equal(resolveSecrets(dir, {}).demo, true);
    assert.equal(resolveSecrets(dir, {}).generated, false);
    assert.equal(resolveSecrets(dir, {}).demo, true);
    assert.equal(resolveSecrets(dir, { userSecret: USER_SECRET }).demo, false);
  });
});
