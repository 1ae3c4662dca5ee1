// A start that fails half-way leaves nothing open: createServices (and startServer after it) close
// what they had already opened (PostgreSQL pool, Redis clients, locks), so that the process can
// exit, or start again, and no connection lingers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/config.js';
import { startServer } from '../../src/server.js';
import { createDatabase, REDIS_URL, skipUnlessServices } from '../support/cluster.js';
import { tempDir } from '../support/server.js';

const skip = await skipUnlessServices();
const SERVICES = fileURLToPath(new URL('../../src/wiring/services.js', import.meta.url)).replace(/\.js$/, '.ts');
const CONFIG = fileURLToPath(new URL('../../src/config/config.js', import.meta.url)).replace(/\.js$/, '.ts');

/** Runs createServices in a child; resolves with its output once it exits, or with null if it is still alive after `ms`. */
function startInChild(env: Record<string, string>, ms: number): Promise<string | null> {
  const code = `
    const { createServices } = await import(${JSON.stringify(SERVICES)});
    const { loadConfig } = await import(${JSON.stringify(CONFIG)});
    const { pino } = await import('pino');
    try {
      await createServices(loadConfig(process.env), pino({ level: 'silent' }));
      console.log('STARTED');
    } catch (err) {
      console.log('REFUSED: ' + err.message);
    }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, ...env, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(null);
    }, ms);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

test('distributed: Redis refused after PostgreSQL and Redis were opened, the process exits by itself', { skip }, async () => {
  const db = await createDatabase();
  try {
    // The test Redis keeps no append-only file: without SECKILL_ALLOW_VOLATILE_REDIS the start is refused
    // after the pool and all three Redis clients are open.
    const out = await startInChild(
      {
        DATABASE_URL: db.url,
        REDIS_URL,
        SECKILL_REDIS_PREFIX: `wiring-start-${process.pid}`,
        SECKILL_ALLOW_VOLATILE_REDIS: '0',
        SECKILL_DATA_DIR: tempDir(),
      },
      20_000,
    );
    assert.ok(out !== null, 'the process did not exit: something opened before the failure is still open');
    assert.match(out, /REFUSED: Redis persistence is off/);
  } finally {
    await db.drop();
  }
});

test('embedded: the port is taken, the start fails and releases the data dir (a retry on another port starts)', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const address = taken.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const env = { HOST: '127.0.0.1', SECKILL_DATA_DIR: tempDir(), SECKILL_DEMO_SALE: 'false', LOG_LEVEL: 'silent' };
  try {
    await assert.rejects(startServer(loadConfig({ ...env, PORT: String(port) })), /EADDRINUSE/);
    const retry = await startServer(loadConfig({ ...env, PORT: '0' }));
    await retry.close();
  } finally {
    taken.close();
  }
});
