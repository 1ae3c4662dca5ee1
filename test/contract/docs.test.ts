// The contract and the design live in docs/: these tests keep them honest. The OpenAPI document is
// served and generated from the route schemas; docs/http-api.md names exactly the error codes of the
// registry (src/domain/errors.ts), each with its status; the "where does X live" table of
// docs/architecture.md points at files that exist.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ERROR_STATUS } from '../../src/domain/errors.js';
import { call, mode, startTestServer, type TestServer } from '../support/server.js';

const ROOT = new URL('../../', import.meta.url);
const read = (file: string) => fs.readFileSync(new URL(file, ROOT), 'utf8');

describe('GET /api/openapi.json', { skip: mode !== 'embedded' && 'embedded only: the document is the same in every mode' }, () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv?.close();
  });

  test('public, cacheable OpenAPI 3.1 listing the buy, path and order routes with their schemas', async () => {
    const r = await call(srv.url, 'GET', '/api/openapi.json');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.match(String(r.headers['cache-control']), /\bpublic\b.*max-age=\d+/);
    const doc = r.body;
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(doc.info.title, 'seckill');
    assert.equal(typeof doc.info.version, 'string');

    const paths = doc.paths as Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: unknown; responses: Record<string, unknown>; security?: unknown[] }>>;
    const expected: [string, string][] = [
      ['post', '/api/sales/{saleId}/path'],
      ['post', '/api/sales/{saleId}/buy/{path}'],
      ['get', '/api/orders/{orderId}'],
      ['get', '/api/orders/{orderId}/events'],
      ['post', '/api/orders/{orderId}/pay'],
      ['post', '/api/orders/{orderId}/cancel'],
      ['get', '/api/me/orders'],
      ['get', '/api/sales/{saleId}'],
      ['post', '/api/admin/sales'],
    ];
    for (const [method, p] of expected) {
      const op = paths[p]?.[method];
      assert.ok(op, `${method.toUpperCase()} ${p} is in the document`);
      assert.ok(Object.keys(op.responses).length > 0, `${p} has responses`);
    }
    // Generated from the route schemas: the buy route's parameters and body are the validated ones.
    const buy = paths['/api/sales/{saleId}/buy/{path}'].post;
    assert.deepEqual(buy.parameters?.map((x) => `${x.in}:${x.name}`).sort(), ['path:path', 'path:saleId']);
    assert.match(JSON.stringify(buy.requestBody), /"quantity"/);
    assert.deepEqual(buy.security, [{ userToken: [] }]);
    assert.deepEqual(paths['/api/admin/sales'].post.security, [{ adminKey: [] }]);
    assert.ok(doc.components.securitySchemes.userToken && doc.components.securitySchemes.adminKey);
    // The refusal shape enumerates exactly the registry's codes.
    assert.deepEqual([...doc.components.schemas.Error.properties.error.properties.code.enum].sort(), Object.keys(ERROR_STATUS).sort());
    // The pages and the document itself are not part of the API surface.
    for (const p of Object.keys(paths)) assert.match(p, /^\/(?:api\/|healthz$|readyz$|metrics$)/);
    assert.ok(!paths['/api/openapi.json']);
    // Every route the server has is described in the prose contract too.
    const md = read('docs/http-api.md');
    const undocumented = Object.keys(paths).map((p) => p.replace(/\{(\w+)\}/g, ':$1')).filter((route) => !md.includes(route));
    assert.deepEqual(undocumented, [], 'routes missing from docs/http-api.md');

    // Conditional request: same document, 304.
    const again = await call(srv.url, 'GET', '/api/openapi.json', { headers: { 'if-none-match': String(r.headers.etag) } });
    assert.equal(again.status, 304);
  });
});

/** `| \`code\` | status | … |` rows of the "## Errors" section of docs/http-api.md. */
function documentedCodes(md: string): Map<string, number> {
  const section = /\n## Errors\n([\s\S]*?)(?=\n## )/.exec(md);
  assert.ok(section, 'docs/http-api.md has an "## Errors" section');
  const codes = new Map<string, number>();
  for (const m of section[1].matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) {
    assert.ok(!codes.has(m[1]), `${m[1]} is listed once`);
    codes.set(m[1], Number(m[2]));
  }
  return codes;
}

describe('docs/http-api.md and the error registry', () => {
  const md = read('docs/http-api.md');

  test('every code of src/domain/errors.ts is documented with its status, and no other code is', () => {
    const documented = documentedCodes(md);
    const registry = new Map(Object.entries(ERROR_STATUS));
    const missing = [...registry.keys()].filter((c) => !documented.has(c));
    const unknown = [...documented.keys()].filter((c) => !registry.has(c));
    assert.deepEqual(missing, [], `codes of the registry missing from docs/http-api.md: ${missing.join(', ')}`);
    assert.deepEqual(unknown, [], `docs/http-api.md names codes the registry does not have: ${unknown.join(', ')}`);
    for (const [code, status] of documented) assert.equal(status, registry.get(code), `status of ${code}`);
  });

  test('every "<status> `code`"-style mention in the docs names a registry code with its status', () => {
    for (const file of ['docs/http-api.md', 'docs/design.md', 'docs/architecture.md']) {
      const text = read(file);
      for (const m of text.matchAll(/`(\d{3}) ([a-z_]+)`/g)) {
        const status = (ERROR_STATUS as Record<string, number>)[m[2]];
        assert.ok(status !== undefined, `${file}: \`${m[1]} ${m[2]}\` is not a code of the registry`);
        assert.equal(Number(m[1]), status, `${file}: \`${m[1]} ${m[2]}\` has the wrong status`);
      }
    }
  });

  test('the checker itself notices a missing and an unknown code', () => {
    const withoutBusy = md.replace(/^\|\s*`busy`.*\n/m, '');
    assert.ok(!documentedCodes(withoutBusy).has('busy'));
    const withExtra = md.replace(/^(\|\s*`busy`.*\n)/m, '$1| `teapot` | 418 | never |\n');
    assert.ok(documentedCodes(withExtra).has('teapot'));
  });
});

describe('docs point at real files', () => {
  test('every src/, test/, bin/ or docs/ path named in docs/*.md and the README exists', () => {
    const files = [...fs.readdirSync(new URL('docs/', ROOT)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), 'README.md'];
    const missing: string[] = [];
    for (const file of files) {
      for (const m of read(file).matchAll(/`((?:src|test|bin|docs)\/[\w./-]+?)(?::\d+)?`/g)) {
        const p = m[1].replace(/\/$/, '');
        if (/[*<>]/.test(p)) continue;
        if (!fs.existsSync(new URL(p, ROOT))) missing.push(`${file}: ${p}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  test('no reference to documents outside the repository', () => {
    const offenders: string[] = [];
    const scan = (dir: string) => {
      for (const e of fs.readdirSync(new URL(dir, ROOT), { withFileTypes: true })) {
        const p = `${dir}${e.name}`;
        if (e.isDirectory()) scan(`${p}/`);
        else if (/\.(?:ts|md|mjs|js|lua)$/.test(e.name) && /(?:\.\.\/|\/work\/)shared\//.test(read(p))) offenders.push(p);
      }
    };
    for (const dir of ['src/', 'test/', 'docs/', 'bin/']) scan(dir);
    if (/(?:\.\.\/|\/work\/)shared\//.test(read('README.md'))) offenders.push('README.md');
    assert.deepEqual(offenders, []);
  });
});
