// The CLI cannot mislead (issue 11): sale ids with a leading dash, prices in one unit, the service's
// own data dir (never a new one), admin-key wording, configuration errors that say what is allowed,
// and a cluster that stops on a start-up error instead of restarting its workers forever.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { parsePrice, protectSaleIds } from '../../src/cli/args.js';
import { loadConfig } from '../../src/config/config.js';
import { newSaleId } from '../../src/services/sale-service.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { call, tempDir } from '../support/server.js';

const BIN = path.resolve(import.meta.dirname, '../..', 'bin', 'seckill.mjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The seckill command as a user runs it: its own process, a given folder and environment. */
function seckill(args: string[], o: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<Run> {
  const env: NodeJS.ProcessEnv = {};
  // Nothing of the test runner's own seckill configuration leaks into the command.
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(SECKILL_|HOST$|PORT$|REDIS_URL$|DATABASE_URL$|LOG_LEVEL$)/.test(k)) env[k] = v;
  }
  Object.assign(env, o.env ?? {});
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: o.cwd, env, timeout: o.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('sale ids', () => {
  test('are never issued with a leading "-"', () => {
    for (let i = 0; i < 20_000; i++) {
      const id = newSaleId();
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{11}$/, id);
    }
  });

  test('protectSaleIds: an issued id with a leading dash becomes an operand; options and their values stay', () => {
    const root = new Command('seckill');
    const sale = root.command('sale');
    sale.command('show <saleId>').option('--url <url>');
    root.command('reconcile [saleId]').option('--all').option('--repair').option('--drain <d>');
    root.command('token <userId>');
    const argv = (...a: string[]) => ['node', 'seckill', ...a];
    assert.deepEqual(protectSaleIds(root, argv('sale', 'show', '-AbCdEfGhIjK')), argv('sale', 'show', '--', '-AbCdEfGhIjK'));
    assert.deepEqual(
      protectSaleIds(root, argv('sale', 'show', '-hbCdEfGhIjK', '--url', 'http://x')),
      argv('sale', 'show', '--url', 'http://x', '--', '-hbCdEfGhIjK'),
    );
    assert.deepEqual(protectSaleIds(root, argv('reconcile', '--repair', '-AbCdEfGhIjK')), argv('reconcile', '--repair', '--', '-AbCdEfGhIjK'));
    // Already protected, an ordinary id, an option value, an unknown option of another shape: unchanged.
    for (const a of [
      ['sale', 'show', '--', '-AbCdEfGhIjK'],
      ['sale', 'show', 'AbCdEfGhIjKl'],
      ['reconcile', '--drain', '-AbCdEfGhIjK', '--all'],
      ['reconcile', '--repiar', 'AbCdEfGhIjKl'],
      ['token', '-AbCdEfGhIjK'],
    ]) {
      assert.deepEqual(protectSaleIds(root, argv(...a)), argv(...a));
    }
  });
});

describe('prices', () => {
  test('--price is currency units with at most two decimals; anything else is refused', () => {
    assert.equal(parsePrice('49'), 4900);
    assert.equal(parsePrice('49.00'), 4900);
    assert.equal(parsePrice('49.9'), 4990);
    assert.equal(parsePrice('0.49'), 49);
    assert.equal(parsePrice('4999.99'), 499_999);
    for (const bad of ['49.999', '1,50', '1,000', '$49', '-1', '49.', '.5', '4 9', '1e3', '']) {
      assert.throws(() => parsePrice(bad), /at most two decimals/, bad);
    }
  });
});

describe('the CLI against a running service', () => {
  let server: RunningServer;
  let dataDir: string;
  let elsewhere: string;
  const saleIdWithDash = '-' + newSaleId().slice(1);

  before(async () => {
    dataDir = path.join(tempDir('seckill-cli-'), 'data');
    elsewhere = tempDir('seckill-cli-elsewhere-');
    server = await startServer(loadConfig({ SECKILL_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent', SECKILL_DEMO_SALE: '0' }));
    // A sale issued before ids were kept from starting with "-".
    const s = await server.services.sales.create({ name: 'Old sale', priceCents: 100, stock: 5, startsAt: Date.now() + 60_000 });
    await server.services.repo.insertSale({ ...s, id: saleIdWithDash });
  });

  after(async () => {
    await server?.close();
  });

  const inService = () => ({ cwd: elsewhere, env: { SECKILL_DATA_DIR: dataDir } });

  test('sale show and reconcile accept an existing id that begins with "-"', async () => {
    for (const args of [['sale', 'show', saleIdWithDash, '--url', server.url], ['sale', 'show', '--url', server.url, '--', saleIdWithDash]]) {
      const r = await seckill(args, inService());
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).sale.id, saleIdWithDash, r.stdout);
    }
    // reconcile reaches its own check (distributed mode only), not "unknown option".
    const rec = await seckill(['reconcile', saleIdWithDash], inService());
    assert.notEqual(rec.code, 0);
    assert.doesNotMatch(rec.stderr, /unknown option/, rec.stderr);
    assert.match(rec.stderr, /REDIS_URL/, rec.stderr);
  });

  test('sale create: --price 49.00 is 49.00 as in the dashboard; --price-cents is explicit; ambiguous prices are refused', async () => {
    const common = ['sale', 'create', '--name', 'Keyboard', '--stock', '3', '--url', server.url];
    const units = await seckill([...common, '--price', '49.00'], inService());
    assert.equal(units.code, 0, units.stderr);
    assert.equal(JSON.parse(units.stdout).priceCents, 4900);
    assert.equal(JSON.parse(units.stdout).restockOnRefund, false, 'refunded units stay sold unless asked');
    const cents = await seckill([...common, '--price-cents', '4999', '--restock-on-refund'], inService());
    assert.equal(cents.code, 0, cents.stderr);
    assert.equal(JSON.parse(cents.stdout).priceCents, 4999);
    assert.equal(JSON.parse(cents.stdout).restockOnRefund, true);

    const before = server.services.sales.all().length;
    for (const [args, why] of [
      [['--price', '49.999'], /at most two decimals/],
      [['--price', '1,50'], /use a dot/],
      [['--price', '49', '--price-cents', '4900'], /not both/],
      [[], /a price is needed/],
    ] as const) {
      const r = await seckill([...common, ...args], inService());
      assert.notEqual(r.code, 0, `${args.join(' ')} must be refused`);
      assert.match(r.stderr, why, r.stderr);
    }
    assert.equal(server.services.sales.all().length, before, 'no sale created by a refused command');
  });

  test('token and sale from another folder: refused with where to look, no data dir created; the service\'s data dir works', async () => {
    for (const args of [['token', 'alice'], ['sale', 'show', 'AbCdEfGhIjKl', '--url', server.url]]) {
      const r = await seckill(args, { cwd: elsewhere });
      assert.notEqual(r.code, 0, `${args[0]} must refuse: ${r.stdout}`);
      assert.match(r.stderr, /no seckill data dir with secrets\.json at .*--data-dir.*SECKILL_DATA_DIR/s, r.stderr);
      assert.equal(r.stdout, '', 'no token printed');
      assert.ok(!fs.existsSync(path.join(elsewhere, 'data')), 'no data dir created');
    }
    const missing = path.join(elsewhere, 'nope');
    const r = await seckill(['token', 'alice'], { cwd: elsewhere, env: { SECKILL_DATA_DIR: missing } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`no seckill data dir with secrets\\.json at ${missing}`), r.stderr);
    assert.ok(!fs.existsSync(missing), 'SECKILL_DATA_DIR is not created by token');

    // The service's data dir, by SECKILL_DATA_DIR or --data-dir: a token the service accepts.
    for (const o of [inService(), { cwd: elsewhere, args: ['--data-dir', dataDir] }]) {
      const t = await seckill(['token', 'alice', ...('args' in o ? o.args : [])], o);
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stderr, new RegExp(`user secret from ${path.join(dataDir, 'secrets.json')}`), t.stderr);
      const me = await call(server.url, 'GET', '/api/me/orders', { token: t.stdout.trim() });
      assert.equal(me.status, 200, me.text);
    }
    const show = await seckill(['sale', 'show', saleIdWithDash, '--url', server.url, '--data-dir', dataDir], { cwd: elsewhere });
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stderr, new RegExp(`${server.url}.*service from --url; admin key from ${path.join(dataDir, 'secrets.json')}`), show.stderr);
  });

  test('a wrong admin key is answered in admin-key words; the CLI says which key and which service', async () => {
    const r = await call(server.url, 'GET', '/api/admin/sales', { token: 'not-the-admin-key-0123456789' });
    assert.equal(r.status, 401);
    assert.match(r.body.error.message, /admin key/i, r.text);
    assert.doesNotMatch(r.body.error.message, /expired token|invalid .*token/i, r.text);
    const none = await call(server.url, 'GET', '/api/admin/sales');
    assert.equal(none.status, 401);
    assert.match(none.body.error.message, /admin key/i, none.text);

    const cli = await seckill(['sale', 'show', saleIdWithDash, '--url', server.url], { cwd: elsewhere, env: { SECKILL_ADMIN_KEY: 'not-the-admin-key-0123456789' } });
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, new RegExp(`${server.url} refused the admin key from SECKILL_ADMIN_KEY`), cli.stderr);

    const down = await seckill(['sale', 'show', saleIdWithDash, '--url', 'http://127.0.0.1:1'], inService());
    assert.notEqual(down.code, 0);
    assert.match(down.stderr, /no seckill answers at http:\/\/127\.0\.0\.1:1/, down.stderr);
  });
});

describe('configuration errors', () => {
  test('name the variable, the value and what is allowed; unambiguous spellings are accepted', async () => {
    const c = loadConfig({ SECKILL_DEMO_SALE: 'off', LOG_LEVEL: 'warning', SECKILL_SQLITE_SYNC: 'normal' });
    assert.equal(c.demoSale, false);
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.sqliteSync, 'NORMAL');
    assert.equal(loadConfig({ SECKILL_DEMO_SALE: 'ON', LOG_LEVEL: 'Debug', SECKILL_SQLITE_SYNC: 'full' }).sqliteSync, 'FULL');

    const refused = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        return (err as Error).message;
      }
      assert.fail(`accepted ${JSON.stringify(env)}`);
    };
    const m = refused({ LOG_LEVEL: 'loud', SECKILL_SQLITE_SYNC: 'fast', SECKILL_DEMO_SALE: 'maybe', PORT: '70000', SECKILL_ADMIN_KEY: 'short-secret' });
    assert.match(m, /LOG_LEVEL="loud" .*one of fatal, error, warn, info, debug, trace, silent/);
    assert.match(m, /SECKILL_SQLITE_SYNC="fast" .*one of FULL, NORMAL/);
    assert.match(m, /SECKILL_DEMO_SALE="maybe" .*one of 1, 0, true, false, yes, no/);
    assert.match(m, /PORT="70000" .*a whole number from 0 to 65535/);
    assert.match(m, /SECKILL_ADMIN_KEY=\(12 characters, not shown\) .*at least 16 characters/);
    assert.doesNotMatch(m, /short-secret/, 'a secret is never printed');
    assert.doesNotMatch(m, /must be equal to constant|anyOf/, 'no schema jargon');

    // As a user sees it: the start stops with that message.
    const r = await seckill(['start'], { cwd: tempDir('seckill-cli-cfg-'), env: { LOG_LEVEL: 'verbose' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /LOG_LEVEL="verbose" is not allowed: LOG_LEVEL takes one of fatal, error, warn/, r.stderr);
  });
});

describe('--workers', () => {
  test('a start-up error (a store it cannot reach) stops the cluster with the error instead of restarting workers forever', async () => {
    const dir = tempDir('seckill-cli-workers-');
    const r = await seckill(['start', '--workers', '2'], {
      cwd: dir,
      env: {
        SECKILL_DATA_DIR: path.join(dir, 'data'),
        PORT: '0',
        REDIS_URL: 'redis://127.0.0.1:1',
        DATABASE_URL: 'postgres://postgres@127.0.0.1:1/seckill',
        SECKILL_DEMO_SALE: '0',
      },
      timeoutMs: 90_000,
    });
    assert.notEqual(r.code, null, `still running after 90 s: ${r.stderr}`);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /ECONNREFUSED/, r.stderr);
    assert.match(r.stderr, /could not start .*stopping/, r.stderr);
    assert.doesNotMatch(r.stderr, /starting another/, r.stderr);
  });
});

describe('seckill token: --aud, and only ids the service accepts', () => {
  const AUD = 'shop.example/seckill';
  let server: RunningServer;
  let dataDir: string;
  let elsewhere: string;

  before(async () => {
    dataDir = path.join(tempDir('seckill-cli-aud-'), 'data');
    elsewhere = tempDir('seckill-cli-aud-elsewhere-');
    server = await startServer(loadConfig({ SECKILL_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent', SECKILL_DEMO_SALE: '0', SECKILL_TOKEN_AUDIENCE: AUD }));
  });

  after(async () => {
    await server?.close();
  });

  const meStatus = async (token: string) => (await call(server.url, 'GET', '/api/me/orders', { token })).status;

  test('--aud (or SECKILL_TOKEN_AUDIENCE) gives a token the service accepts; another audience or none is refused', async () => {
    const withAud = await seckill(['token', 'alice', '--aud', AUD, '--data-dir', dataDir], { cwd: elsewhere });
    assert.equal(withAud.code, 0, withAud.stderr);
    assert.match(withAud.stderr, /audience "shop\.example\/seckill" \(--aud\)/, withAud.stderr);
    assert.equal(await meStatus(withAud.stdout.trim()), 200);

    const fromEnv = await seckill(['token', 'alice', '--data-dir', dataDir], { cwd: elsewhere, env: { SECKILL_TOKEN_AUDIENCE: AUD } });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stderr, /\(SECKILL_TOKEN_AUDIENCE\)/, fromEnv.stderr);
    assert.equal(await meStatus(fromEnv.stdout.trim()), 200);

    const other = await seckill(['token', 'alice', '--aud', 'another-service', '--data-dir', dataDir], { cwd: elsewhere });
    assert.equal(other.code, 0, other.stderr);
    assert.equal(await meStatus(other.stdout.trim()), 401);

    const none = await seckill(['token', 'alice', '--data-dir', dataDir], { cwd: elsewhere });
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stderr, /no audience .*pass --aud/, none.stderr);
    assert.equal(await meStatus(none.stdout.trim()), 401);
  });

  test('an id the service would refuse gets no token: too long, empty, a control character', async () => {
    for (const [id, why] of [
      ['x'.repeat(129), /1-128 characters/],
      ['', /1-128 characters/],
      ['bob\tsmith', /control characters/],
      ['bob\u0085', /control characters/],
    ] as const) {
      const r = await seckill(['token', id, '--aud', AUD, '--data-dir', dataDir], { cwd: elsewhere });
      assert.notEqual(r.code, 0, `${JSON.stringify(id)} must be refused`);
      assert.equal(r.stdout, '', 'no token printed');
      assert.match(r.stderr, /refused \(the service would answer 401\)/, r.stderr);
      assert.match(r.stderr, why, r.stderr);
    }
    // The longest id the service takes is taken, and the service agrees.
    const longest = await seckill(['token', 'y'.repeat(128), '--aud', AUD, '--data-dir', dataDir], { cwd: elsewhere });
    assert.equal(longest.code, 0, longest.stderr);
    assert.equal(await meStatus(longest.stdout.trim()), 200);
    // A lone surrogate cannot travel in argv (it arrives as U+FFFD): the same rule, called directly.
    const { mintToken } = await import('../../src/cli/token.js');
    assert.throws(() => mintToken(loadConfig({ SECKILL_DATA_DIR: dataDir }), 'a\uD800', { ttl: 60_000 }), /unpaired surrogates/);
    assert.throws(() => mintToken(loadConfig({ SECKILL_DATA_DIR: dataDir }), 'alice', { ttl: 0 }), /at least 1s/);
  });
});
