// deploy/backup.sh and deploy/restore.sh as docs/production.md tells an operator to use them, on an
// embedded seckill: a backup taken while it sells, a restore refused while it runs, then a restore
// with it stopped; the restored service knows the orders of the backup (and their limits), signs
// with the same secrets, and sells on.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { signUserToken } from '../../src/gateway/auth.js';
import { buy, call, mode, startTestServer, tempDir, type TestServer } from '../support/server.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

function script(name: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', [path.join(ROOT, 'deploy', name), ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const mode8 = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

describe('embedded backup and restore (deploy/backup.sh, deploy/restore.sh)', { skip: mode !== 'embedded' && 'embedded only: PostgreSQL is backed up with pg_dump' }, () => {
  const dataDir = path.join(tempDir('seckill-backup-'), 'data');
  const backupRoot = tempDir('seckill-backups-');
  // Secrets generated into the data dir (secrets.json), not from the environment: the backup must carry them.
  const env = { SECKILL_ADMIN_KEY: undefined, SECKILL_USER_SECRET: undefined, SECKILL_DEMO: '0' };
  let srv: TestServer | undefined;

  after(async () => {
    await srv?.close();
  });

  test('backup while selling; restore refused while running, done when stopped; the restored service sells on', async () => {
    srv = await startTestServer(env, dataDir);
    const secrets = JSON.parse(fs.readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')) as { adminKey: string; userSecret: string };
    const token = (user: string) => signUserToken(secrets.userSecret, user);
    const created = await call(srv.url, 'POST', '/api/admin/sales', {
      token: secrets.adminKey,
      body: { name: 'Backup sale', priceCents: 500, stock: 5, startsAt: new Date(Date.now() - 1000).toISOString(), perUserLimit: 1, paymentWindowSeconds: 600 },
    });
    assert.equal(created.status, 201, created.text);
    const saleId: string = created.body.id;
    for (const u of ['before-1', 'before-2']) assert.equal((await buy(srv.url, saleId, token(u))).status, 202);

    const b = await script('backup.sh', [backupRoot], { SECKILL_DATA_DIR: dataDir, SECKILL_HOME: ROOT });
    assert.equal(b.code, 0, b.stderr);
    const backupDir = b.stdout.trim();
    assert.match(b.stderr, /1 sales, 2 orders copied/);
    assert.deepEqual(fs.readdirSync(backupDir).sort(), ['seckill.db', 'secrets.json'], 'one self-contained database file and the secrets');
    assert.equal(mode8(backupDir), '700');
    for (const f of fs.readdirSync(backupDir)) assert.equal(mode8(path.join(backupDir, f)), '600', f);

    // Sold after the backup: not in it.
    const late = await buy(srv.url, saleId, token('after-backup'));
    assert.equal(late.status, 202);

    const refused = await script('restore.sh', [backupDir, dataDir], { SECKILL_HOME: ROOT });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /a seckill is running on this data dir/);

    await srv.close();
    srv = undefined;
    const r = await script('restore.sh', [backupDir, dataDir], { SECKILL_HOME: ROOT });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /restored/);
    assert.equal(mode8(path.join(dataDir, 'seckill.db')), '600');
    const aside = fs.readdirSync(dataDir).find((f) => f.startsWith('before-restore-'));
    assert.ok(aside && fs.existsSync(path.join(dataDir, aside, 'seckill.db')), 'the replaced database is kept aside');

    srv = await startTestServer(env, dataDir);
    // The same secrets: tokens and the admin key of before still work.
    const mine = await call(srv.url, 'GET', '/api/me/orders', { token: token('before-1') });
    assert.equal(mine.status, 200, mine.text);
    assert.equal(JSON.stringify(mine.body).includes(saleId), true, `the backed-up order is there: ${mine.text}`);
    const lost = await call(srv.url, 'GET', `/api/orders/${late.body.orderId}`, { token: secrets.adminKey });
    assert.equal(lost.status, 404, 'an order taken after the backup is not in it');
    // The holdings were rebuilt from the restored orders: before-1 is at its limit; others buy on.
    const again = await buy(srv.url, saleId, token('before-1'));
    assert.equal(again.status, 409, again.text);
    for (const u of ['after-restore-1', 'after-restore-2', 'after-restore-3']) assert.equal((await buy(srv.url, saleId, token(u))).status, 202, u);
    const over = await buy(srv.url, saleId, token('after-restore-4'));
    assert.equal(over.status, 409, `5 units: 2 restored + 3 sold after the restore; then sold out: ${over.text}`);
  });
});
