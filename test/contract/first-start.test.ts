// The first start prints the same guidance in every mode (issue 11): exactly one block, from the one
// process that prints (the primary with --workers); with the demo sale off it says how to create a
// sale and how to get a token; with the secrets from the environment a short version without any
// key; a later start on the same data dir prints none. Also the file modes of a new data dir
// (0700, its files 0600: the database holds per-sale secrets).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { GUIDANCE_HEAD } from '../../src/server.js';
import { REDIS_URL, createDatabase, skipUnlessServices } from '../support/cluster.js';
import { ADMIN_KEY, USER_SECRET, childEnv, kill9, spawnSeckill, terminate, waitReady, type Env, type Proc } from '../support/launcher.js';
import { freePort } from '../support/ports.js';
import { tempDir } from '../support/server.js';

/** Starts `seckill start` (with `workers`), waits until it serves, and a little for late output. */
async function started(env: Env, workers = 1): Promise<Proc> {
  const p = spawnSeckill({ env: childEnv(env), port: await freePort(), workers });
  await waitReady(p);
  // The guidance is written right after listen (the primary: before the forks); a second block would follow soon.
  const deadline = Date.now() + 5000;
  while (!p.output.join('').includes(GUIDANCE_HEAD) && Date.now() < deadline) await sleep(50);
  await sleep(workers > 1 ? 1500 : 500);
  return p;
}

function blocks(p: Proc): number {
  return p.output.join('').split(GUIDANCE_HEAD).length - 1;
}

const mode = (file: string) => (fs.statSync(file).mode & 0o777).toString(8);

/** No secret in the environment: the quick start. */
const QUICK = { SECKILL_ADMIN_KEY: undefined, SECKILL_USER_SECRET: undefined };

describe('first-start guidance, embedded', () => {
  const procs: Proc[] = [];
  after(async () => {
    for (const p of procs) await kill9(p.child);
  });

  test('quick start with the demo sale: one block with the generated admin key and the sale; the files are private; a restart prints none', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const p = await started({ ...QUICK, SECKILL_DATA_DIR: dataDir, SECKILL_DEMO_SALE: '1' });
    procs.push(p);
    const out = p.output.join('');
    assert.equal(blocks(p), 1, out);
    const stored = JSON.parse(fs.readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')) as { adminKey: string };
    assert.ok(out.includes(stored.adminKey), 'the generated admin key is shown, once');
    assert.match(out, /Demo sale \S+ opens at/);
    assert.match(out, new RegExp(`${p.url}/admin`));
    assert.match(out, /docs\/production\.md/);

    // While it runs: the data dir 0700; the database, its WAL and shared memory, the lock and the secrets 0600.
    assert.equal(mode(dataDir), '700', 'data dir');
    for (const f of ['seckill.db', 'seckill.db-wal', 'seckill.db-shm', 'seckill.lock', 'secrets.json']) {
      assert.equal(mode(path.join(dataDir, f)), '600', f);
    }

    await terminate(p.child);
    const again = await started({ ...QUICK, SECKILL_DATA_DIR: dataDir, SECKILL_DEMO_SALE: '1' });
    procs.push(again);
    assert.equal(blocks(again), 0, again.output.join(''));
    assert.ok(!again.output.join('').includes(stored.adminKey), 'the admin key is printed only at the first start');
    await terminate(again.child);
  });

  test('demo sale off: one block saying how to create a sale and how to get a token', async () => {
    const dataDir = tempDir();
    const p = await started({ ...QUICK, SECKILL_DATA_DIR: dataDir, SECKILL_DEMO_SALE: '0' });
    procs.push(p);
    const out = p.output.join('');
    assert.equal(blocks(p), 1, out);
    assert.match(out, /No sale yet/);
    assert.match(out, /seckill sale create/);
    assert.match(out, /New sale/, 'the dashboard way too');
    assert.match(out, /TOKEN=ey/);
    assert.match(out, /seckill token <userId>/);
    await terminate(p.child);
  });

  test('secrets from the environment: the short version, never a key', async () => {
    const payments = 'payments-key-from-env-0123456789';
    const p = await started({ SECKILL_DATA_DIR: tempDir(), SECKILL_PAYMENTS_KEYS: payments, SECKILL_DEMO_SALE: '1' });
    procs.push(p);
    const out = p.output.join('');
    assert.equal(blocks(p), 1, out);
    assert.match(out, /from the environment/);
    assert.match(out, new RegExp(`${p.url}/admin`));
    assert.match(out, /docs\/production\.md/);
    for (const secret of [ADMIN_KEY, USER_SECRET, payments]) assert.ok(!out.includes(secret), 'no key or secret from the environment is printed');
    assert.doesNotMatch(out, /TOKEN=/);
    await terminate(p.child);
  });
});

const skipDistributed = await skipUnlessServices();

describe('first-start guidance, --workers 2', { skip: skipDistributed }, () => {
  test('exactly one block, from the primary, with the demo sale off', async () => {
    const db = await createDatabase();
    const prefix = `fs${process.pid}`;
    let p: Proc | undefined;
    try {
      p = await started({
        ...QUICK,
        SECKILL_DATA_DIR: tempDir(),
        SECKILL_DEMO_SALE: '0',
        REDIS_URL,
        DATABASE_URL: db.url,
        SECKILL_REDIS_PREFIX: prefix,
        SECKILL_ALLOW_VOLATILE_REDIS: '1',
      }, 2);
      const out = p.output.join('');
      assert.equal(blocks(p), 1, out);
      assert.match(out, /distributed mode/);
      assert.match(out, /No sale yet/);
      assert.match(out, /Admin key \(printed once/);
    } finally {
      if (p) await terminate(p.child);
      await db.drop();
      const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      try {
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length > 0) await redis.del(...keys);
      } finally {
        redis.disconnect();
      }
    }
  });
});
