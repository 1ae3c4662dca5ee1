// docs/tokens.md tells a shop exactly what a user token is and shows how to mint one in Node.js and
// in Python. This test takes both programs out of the document as they are written there, runs them
// with the variables the document names, and checks that a running seckill accepts what they print
// (and refuses the same token for another audience), so the document cannot drift from the server.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { userIdProblem } from '../../src/gateway/auth.js';
import { USER_SECRET, call, skipUnlessReady, startTestServer, tempDir, type TestServer } from '../support/server.js';

const DOC = fs.readFileSync(new URL('../../docs/tokens.md', import.meta.url), 'utf8');
const AUDIENCE = 'seckill.shop.example';

/** The body of the fenced block whose info string is `<lang> <name>`. */
function snippet(lang: string, name: string): string {
  const m = new RegExp('^```' + lang + ' ' + name.replace('.', '\\.') + '\\n([\\s\\S]*?)^```$', 'm').exec(DOC);
  assert.ok(m, `docs/tokens.md has a \`\`\`${lang} ${name} block`);
  return m[1];
}

function python3(): string | false {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'python3 is not installed (CI installs it): the Python example cannot be run';
  }
}

/** Runs a program of the document; its standard output, trimmed (the token). */
function run(cmd: string, file: string, userId: string, env: Record<string, string>): Promise<string> {
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
  return new Promise((resolve, reject) => {
    execFile(cmd, [file, userId], { env: childEnv, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${file}: ${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

function claimsOf(token: string): Record<string, unknown> {
  const parts = token.split('.');
  assert.equal(parts.length, 3, token);
  assert.deepEqual(JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')), { alg: 'HS256', typ: 'JWT' });
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('docs/tokens.md: the examples mint tokens seckill accepts', { skip: await skipUnlessReady() }, () => {
  let srv: TestServer;
  let saleId: string;
  const dir = tempDir('seckill-tokens-doc-');
  const programs: { lang: string; cmd: string; file: string; skip: string | false }[] = [
    { lang: 'Node.js', cmd: process.execPath, file: path.join(dir, 'mint-token.mjs'), skip: false },
    { lang: 'Python', cmd: 'python3', file: path.join(dir, 'mint_token.py'), skip: python3() },
  ];

  before(async () => {
    fs.writeFileSync(programs[0].file, snippet('js', 'mint-token.mjs'));
    fs.writeFileSync(programs[1].file, snippet('python', 'mint_token.py'));
    srv = await startTestServer({ SECKILL_TOKEN_AUDIENCE: AUDIENCE });
    saleId = (await srv.createSale({ stock: 10, perUserLimit: 1 })).id;
  });

  after(async () => {
    await srv?.close();
  });

  for (const p of programs) {
    test(`${p.lang}: accepted for a plain and a non-ASCII user id; another audience or none is 401`, { skip: p.skip }, async () => {
      for (const userId of [`doc-${p.lang}-buyer`, `zoë-ß-${p.lang}-✓`]) {
        const token = await run(p.cmd, p.file, userId, { SECKILL_USER_SECRET: USER_SECRET, SECKILL_TOKEN_AUDIENCE: AUDIENCE });
        // The claims the document states: sub, aud, iat, and a 15-minute exp.
        const c = claimsOf(token);
        assert.equal(c.sub, userId);
        assert.equal(c.aud, AUDIENCE);
        assert.equal(typeof c.iat, 'number');
        assert.equal(c.exp, (c.iat as number) + 15 * 60);
        assert.ok(Math.abs((c.iat as number) - Date.now() / 1000) < 60, 'iat is now');

        const me = await call(srv.url, 'GET', '/api/me/orders', { token });
        assert.equal(me.status, 200, me.text);
        const pathReply = await call(srv.url, 'POST', `/api/sales/${saleId}/path`, { token });
        assert.equal(pathReply.status, 200, pathReply.text);
        const bought = await call(srv.url, 'POST', `/api/sales/${saleId}/buy/${pathReply.body.path}`, { token, body: { quantity: 1 } });
        assert.equal(bought.status, 202, bought.text);
        await srv.settle(saleId);
        const mine = await call(srv.url, 'GET', '/api/me/orders', { token });
        assert.ok(JSON.stringify(mine.body).includes(bought.body.orderId), `the order is listed as ${userId}'s: ${mine.text}`);
      }
      // The same program with the wrong audience, or none while the service requires one: refused.
      for (const env of [{ SECKILL_TOKEN_AUDIENCE: 'another-service' }, {}] as Record<string, string>[]) {
        const token = await run(p.cmd, p.file, 'doc-refused', { SECKILL_USER_SECRET: USER_SECRET, ...env });
        const r = await call(srv.url, 'GET', '/api/me/orders', { token });
        assert.equal(r.status, 401, r.text);
        assert.equal(r.body.error.code, 'unauthorized');
      }
      // Signed with another secret: refused.
      const forged = await run(p.cmd, p.file, 'doc-forged', { SECKILL_USER_SECRET: 'x'.repeat(40), SECKILL_TOKEN_AUDIENCE: AUDIENCE });
      assert.equal((await call(srv.url, 'GET', '/api/me/orders', { token: forged })).status, 401);
    });
  }

  test('the sub rule the document states is the server\'s', async () => {
    assert.match(DOC, /1–128 characters/);
    assert.equal(userIdProblem('x'.repeat(128)), null);
    assert.notEqual(userIdProblem('x'.repeat(129)), null);
    assert.notEqual(userIdProblem(''), null);
    assert.notEqual(userIdProblem('a\tb'), null, 'no tab');
    assert.notEqual(userIdProblem('a\u009fb'), null, 'no C1 control');
    assert.notEqual(userIdProblem('a\uDC00'), null, 'no lone surrogate');
    assert.equal(userIdProblem('😀'.repeat(64)), null, 'an astral character counts 2');
    assert.notEqual(userIdProblem('😀'.repeat(64) + 'x'), null);
    // And the server applies it: a valid signature over a 129-character sub is still 401.
    const token = await run(process.execPath, programs[0].file, 'x'.repeat(129), { SECKILL_USER_SECRET: USER_SECRET, SECKILL_TOKEN_AUDIENCE: AUDIENCE });
    assert.equal((await call(srv.url, 'GET', '/api/me/orders', { token })).status, 401);
    assert.match(DOC, /SECKILL_TOKEN_AUDIENCE/);
    assert.match(DOC, /SECKILL_USER_SECRET/);
  });
});

describe('tokens seckill issues itself carry the configured audience', { skip: await skipUnlessReady() }, () => {
  test('the demo sign-in (POST /api/demo/token) with SECKILL_TOKEN_AUDIENCE: its token is accepted', async () => {
    const srv = await startTestServer({ SECKILL_TOKEN_AUDIENCE: AUDIENCE, SECKILL_DEMO: '1' });
    try {
      const t = await call(srv.url, 'POST', '/api/demo/token', { body: { userId: 'demo-aud' } });
      assert.equal(t.status, 200, t.text);
      assert.equal(claimsOf(t.body.token).aud, AUDIENCE);
      assert.equal((await call(srv.url, 'GET', '/api/me/orders', { token: t.body.token })).status, 200);
    } finally {
      await srv.close();
    }
  });
});
