// deploy/nginx.conf in front of seckill, as docs/production.md tells an operator to run it: Debian's
// nginx with that file (its TLS listeners replaced by plain ports on loopback, the upstream pointed
// at an embedded seckill, then at two distributed processes on two ports) must serve the sale page,
// pass a buy through (202), deliver an order's
// server-sent events as they happen (no buffering), and, with SECKILL_TRUST_PROXY, let seckill's
// per-address limit count each client by the address nginx forwards, not nginx's own.
// Without nginx the suite is skipped with the reason (CI installs it: .ci/run).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { freePort } from '../support/ports.js';
import { ADMIN_KEY, call, mode, saleBody, startTestServer, tempDir, userToken } from '../support/server.js';

const ROOT = new URL('../../', import.meta.url);
const SITE = fs.readFileSync(new URL('deploy/nginx.conf', ROOT), 'utf8');

function findNginx(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    const p = path.join(d, 'nginx');
    if (d && fs.existsSync(p)) return p;
  }
  return null;
}

const NGINX = findNginx();
const skip = mode !== 'embedded'
  ? 'run once, in the embedded run: it starts its own distributed backend'
  : NGINX === null
    ? 'nginx is not installed (Debian: apt-get install -y nginx; .ci/run installs it)'
    : false;
if (skip) console.log(`# nginx test skipped: ${skip}`);

/** What nginx is put in front of: one or more seckill processes on their own ports. */
interface Backend {
  upstreams: string[];
  /** Any process, for the test's own set-up calls. */
  url: string;
  close(): Promise<void>;
}

// 2 requests a second per address (bursts of 4): a few quick requests from one client hit it.
const BACKEND_ENV = { SECKILL_TRUST_PROXY: '127.0.0.1', SECKILL_RATE_PER_IP: '2' };

async function embeddedBackend(): Promise<Backend> {
  const srv = await startTestServer(BACKEND_ENV);
  return { upstreams: [new URL(srv.url).host], url: srv.url, close: () => srv.close() };
}

/** Two separate seckill processes (distributed mode, each on its own port): two upstream lines. */
async function twoProcessBackend(): Promise<Backend> {
  const { TestCluster } = await import('../support/cluster.js');
  const cluster = new TestCluster({ processes: 2, env: BACKEND_ENV });
  try {
    await cluster.start();
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
  return { upstreams: cluster.procs.map((p) => new URL(p.url).host), url: cluster.procs[0].url, close: () => cluster.stop() };
}

async function distributedSkip(): Promise<string | false> {
  if (skip) return skip;
  const { skipUnlessServices } = await import('../support/cluster.js');
  return skipUnlessServices();
}

/** `text` with `from` replaced by `to`; `from` must occur exactly once (so the config cannot drift from the test). */
function replaceOnce(text: string, from: string, to: string): string {
  const n = text.split(from).length - 1;
  assert.equal(n, 1, `deploy/nginx.conf contains ${JSON.stringify(from)} exactly once (found ${n})`);
  return text.replace(from, to);
}

/**
 * deploy/nginx.conf for the test: plain listeners on loopback ports instead of 80/443 with TLS, the
 * upstream at the test seckill. Everything else is the file as shipped.
 */
function adaptSite(site: string, o: { https: number; http: number; upstreams: string[] }): string {
  let s = site;
  s = replaceOnce(s, '    listen 443 ssl;\n', `    listen 127.0.0.1:${o.https};\n`);
  s = replaceOnce(s, '    listen [::]:443 ssl;\n', '');
  s = replaceOnce(s, '    listen 80;\n', `    listen 127.0.0.1:${o.http};\n`);
  s = replaceOnce(s, '    listen [::]:80;\n', '');
  for (const directive of ['ssl_certificate ', 'ssl_certificate_key ', 'ssl_protocols ']) {
    const line = s.split('\n').find((l) => l.trimStart().startsWith(directive));
    assert.ok(line, `deploy/nginx.conf has ${directive.trim()}`);
    s = replaceOnce(s, line + '\n', '');
  }
  s = replaceOnce(s, '    server 127.0.0.1:3000;\n', o.upstreams.map((u) => `    server ${u};\n`).join(''));
  return s;
}

/** The surrounding nginx.conf: one foreground process, everything under the temp prefix. */
function mainConf(prefix: string, site: string): string {
  const p = (f: string) => path.join(prefix, f);
  return [
    'daemon off;',
    // One process running as the test's user: no worker switching to another user that could not
    // read this prefix.
    'master_process off;',
    `pid ${p('nginx.pid')};`,
    `error_log ${p('error.log')} warn;`,
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${p('access.log')};`,
    `  client_body_temp_path ${p('tmp/body')};`,
    `  proxy_temp_path ${p('tmp/proxy')};`,
    `  fastcgi_temp_path ${p('tmp/fastcgi')};`,
    `  uwsgi_temp_path ${p('tmp/uwsgi')};`,
    `  scgi_temp_path ${p('tmp/scgi')};`,
    // seckill's own `X-Accel-Buffering: no` would turn buffering off by itself: ignored here, so
    // that the configuration's `proxy_buffering off` is what the event-stream test checks.
    '  proxy_ignore_headers X-Accel-Buffering;',
    // An operator's compression for every text type (a common global setting): gzip holds small
    // writes back, so the event-stream location must switch it off.
    '  gzip on;',
    '  gzip_min_length 0;',
    '  gzip_types text/event-stream application/json text/css application/javascript;',
    `  include ${site};`,
    '}',
    '',
  ].join('\n');
}

/** A client connecting from its own loopback address (Linux routes all of 127/8 to lo). */
function clientFrom(localAddress: string): Agent {
  return new Agent({ localAddress, keepAliveTimeout: 1000 });
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
}

async function send(agent: Agent, url: string, method: string, o: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(url, { method: method as 'GET', headers, body: o.body === undefined ? undefined : JSON.stringify(o.body), dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

function nginxSuite(title: string, suiteSkip: string | false, startBackend: () => Promise<Backend>, clients: number): void {
  describe(title, { skip: suiteSkip }, () => {
    let srv: Backend;
    let nginx: ChildProcess | undefined;
    let base = '';
    let plainBase = '';
    let prefix = '';
    let saleId = '';
    const agents: Agent[] = [];
    const from = (address: string) => {
      const a = clientFrom(address);
      agents.push(a);
      return a;
    };

    before(async () => {
      srv = await startBackend();
      const created = await call(srv.url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: saleBody({ stock: 5, perUserLimit: 1 }) });
      assert.equal(created.status, 201, created.text);
      saleId = created.body.id;
      prefix = tempDir('seckill-nginx-');
      fs.mkdirSync(path.join(prefix, 'tmp'));
      const [https, plain] = [await freePort(), await freePort()];
      const site = path.join(prefix, 'seckill.conf');
      fs.writeFileSync(site, adaptSite(SITE, { https, http: plain, upstreams: srv.upstreams }));
      const conf = path.join(prefix, 'nginx.conf');
      fs.writeFileSync(conf, mainConf(prefix, site));
      nginx = spawn(NGINX as string, ['-p', prefix, '-c', conf, '-e', path.join(prefix, 'error.log')], { stdio: ['ignore', 'inherit', 'inherit'] });
      base = `http://127.0.0.1:${https}`;
      plainBase = `http://127.0.0.1:${plain}`;
      const probe = from('127.0.0.1');
      const deadline = Date.now() + 15_000;
      for (;;) {
        if (nginx.exitCode !== null) {
          const log = fs.existsSync(path.join(prefix, 'error.log')) ? fs.readFileSync(path.join(prefix, 'error.log'), 'utf8') : '';
          assert.fail(`nginx exited with ${nginx.exitCode}:\n${log}`);
        }
        try {
          if ((await send(probe, `${base}/healthz`, 'GET')).status === 200) break;
        } catch {
          // not listening yet
        }
        assert.ok(Date.now() < deadline, 'nginx answers /healthz within 15 s');
        await sleep(100);
      }
    });

    after(async () => {
      if (nginx && nginx.exitCode === null) {
        const exited = new Promise((resolve) => nginx?.once('exit', resolve));
        nginx.kill('SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (nginx.exitCode === null) nginx.kill('SIGKILL');
      }
      await Promise.all(agents.map((a) => a.close()));
      await srv?.close();
    });

    test('the sale page and the sale through nginx; plain HTTP is sent to HTTPS', async () => {
      const c = from('127.0.0.11');
      const page = await send(c, `${base}/sales/${saleId}`, 'GET');
      assert.equal(page.status, 200, page.text);
      assert.match(String(page.headers['content-type']), /^text\/html/);
      const sale = await send(c, `${base}/api/sales/${saleId}`, 'GET');
      assert.equal(sale.status, 200, sale.text);
      assert.equal(sale.json().id, saleId);
      const redirect = await send(c, `${plainBase}/sales/${saleId}`, 'GET');
      assert.equal(redirect.status, 301);
      assert.match(String(redirect.headers.location), new RegExp(`^https://127\\.0\\.0\\.1(:\\d+)?/sales/${saleId}$`));
    });

    test('a buy through nginx is 202; its event stream delivers each event as it happens', async () => {
      // The events location keeps its own settings (nginx 1.22 passed these small events on promptly
      // even with buffering on, so the file is checked as well as the behaviour).
      const eventsLocation = /location ~ \^\/api\/orders\/\[\^\/\]\+\/events\$ \{([^}]*)\}/.exec(SITE);
      assert.ok(eventsLocation, 'deploy/nginx.conf has the event-stream location');
      for (const d of ['proxy_buffering off;', 'proxy_cache off;', 'gzip off;', 'proxy_read_timeout 1h;']) assert.ok(eventsLocation[1].includes(d), d);
      const c = from('127.0.0.12');
      const token = userToken('nginx-buyer');
      const p = await send(c, `${base}/api/sales/${saleId}/path`, 'POST', { token });
      assert.equal(p.status, 200, p.text);
      const bought = await send(c, `${base}/api/sales/${saleId}/buy/${p.json().path}`, 'POST', { token, body: { quantity: 1 } });
      assert.equal(bought.status, 202, bought.text);
      const orderId: string = bought.json().orderId;

      // The stream stays open after its first event: that event must arrive now, not when the
      // stream ends (a buffering proxy would hold it).
      const events: string[] = [];
      let ended = false;
      let onData: () => void = () => undefined;
      const url = `${base}/api/orders/${orderId}/events?access_token=${encodeURIComponent(token)}`;
      // A browser asks for compression; events must still arrive as written.
      const req = http.get(url, { localAddress: '127.0.0.13', headers: { 'accept-encoding': 'gzip' } }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^text\/event-stream/);
        assert.equal(res.headers['content-encoding'], undefined, 'the event stream is not compressed');
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          buf += chunk;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            events.push(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
          onData();
        });
        res.on('end', () => {
          ended = true;
          onData();
        });
      });
      req.on('error', () => undefined);
      const waitFor = async (what: string, ok: () => boolean, ms = 5000) => {
        const deadline = Date.now() + ms;
        while (!ok()) {
          assert.ok(Date.now() < deadline, `${what} within ${ms} ms (events so far: ${JSON.stringify(events)})`);
          await new Promise<void>((resolve) => {
            onData = resolve;
            setTimeout(resolve, 100);
          });
        }
      };
      try {
        await waitFor('the first event', () => events.length >= 1);
        assert.match(events[0], /^event: status\ndata: .*"status":"reserved"/s);
        assert.equal(ended, false, 'the stream is still open');
        // The shop's payment service pays (admin key): the next event follows, then the stream ends.
        const paid = await send(c, `${base}/api/orders/${orderId}/pay`, 'POST', { token: ADMIN_KEY, body: { paymentRef: 'nginx-test-1' } });
        assert.equal(paid.status, 200, paid.text);
        await waitFor('the paid event and the end of the stream', () => ended);
        assert.ok(events.some((e) => /"status":"paid"/.test(e)), JSON.stringify(events));
      } finally {
        req.destroy();
      }
    });

    test('SECKILL_TRUST_PROXY: the per-address limit counts each client by the address nginx forwards', async () => {
      // Client A, each request claiming another address in its own X-Forwarded-For: seckill believes
      // only what nginx (127.0.0.1, trusted) appended, A's real address, so A is limited.
      const a = from('127.0.0.31');
      const statuses: number[] = [];
      for (let i = 0; i < clients; i++) {
        const r = await send(a, `${base}/api/sales/${saleId}`, 'GET', { headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } });
        statuses.push(r.status);
      }
      assert.ok(statuses.includes(429), `client A is limited: ${statuses.join(' ')}`);
      assert.equal(statuses[0], 200);
      // Client B, through the same nginx (the same address as far as the socket goes), right after:
      // not limited, because seckill counts it by its own forwarded address.
      const b = from('127.0.0.32');
      const r = await send(b, `${base}/api/sales/${saleId}`, 'GET');
      assert.equal(r.status, 200, `client B is not limited by A's requests: ${r.text}`);
    });
  });
}

nginxSuite('seckill behind nginx with deploy/nginx.conf (embedded)', skip, embeddedBackend, 12);
// Each process counts the per-address limit on its own: client A needs more requests to meet it.
nginxSuite('seckill behind nginx with deploy/nginx.conf, two processes (distributed)', await distributedSkip(), twoProcessBackend, 30);
