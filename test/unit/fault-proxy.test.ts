// The TCP fault proxy against a local echo server: no Redis or PostgreSQL needed.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaultProxy } from '../support/fault-proxy.js';

let echo: net.Server;
let echoPort = 0;
/** Bytes the echo server received, over all connections. */
let received = '';

before(async () => {
  echo = net.createServer((s) => {
    s.on('data', (d) => {
      received += d.toString();
      s.write(d);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  echoPort = (echo.address() as net.AddressInfo).port;
});

after(async () => {
  await new Promise<void>((r) => echo.close(() => r()));
});

/** A client of the proxy that collects what comes back. */
async function client(proxy: FaultProxy): Promise<{ sock: net.Socket; got: () => string; closed: () => boolean }> {
  const sock = net.connect(proxy.port, '127.0.0.1');
  let data = '';
  let closed = false;
  sock.on('data', (d) => (data += d.toString()));
  sock.on('close', () => (closed = true));
  sock.on('error', () => undefined);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  return { sock, got: () => data, closed: () => closed };
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('forwards both ways when no fault is set', async () => {
  const proxy = await new FaultProxy('127.0.0.1', echoPort).start();
  try {
    const c = await client(proxy);
    c.sock.write('hello');
    await until('echo', () => c.got() === 'hello');
    assert.equal(proxy.connections, 1);
    assert.equal(proxy.upstreamPorts().size, 1);
    c.sock.destroy();
  } finally {
    await proxy.close();
  }
});

test('url() points a redis:// or postgres:// URL at the proxy, keeping the rest', async () => {
  const proxy = await new FaultProxy('127.0.0.1', echoPort).start();
  try {
    const u = new URL(proxy.url('postgres://postgres@127.0.0.1:5432/db_x'));
    assert.equal(u.port, String(proxy.port));
    assert.equal(u.pathname, '/db_x');
    assert.equal(u.username, 'postgres');
    const p = FaultProxy.forUrl('redis://127.0.0.1:6380');
    assert.equal(p.targetPort, 6380);
  } finally {
    await proxy.close();
  }
});

test('delay adds time per chunk and keeps the order of bytes', async () => {
  const proxy = await new FaultProxy('127.0.0.1', echoPort).start();
  try {
    const c = await client(proxy);
    proxy.delay(100);
    const t0 = Date.now();
    for (const part of ['a', 'b', 'c', 'd']) c.sock.write(part);
    await until('delayed echo', () => c.got().length === 4);
    assert.equal(c.got(), 'abcd');
    // At least one delay up and one down: a lower bound only (a loaded machine is slower, never faster).
    assert.ok(Date.now() - t0 >= 190, `took ${Date.now() - t0} ms`);
    proxy.restore();
    c.sock.write('e');
    await until('undelayed echo', () => c.got() === 'abcde');
    c.sock.destroy();
  } finally {
    await proxy.close();
  }
});

test('stall holds every byte until release, then delivers them in order', async () => {
  const proxy = await new FaultProxy('127.0.0.1', echoPort).start();
  try {
    const c = await client(proxy);
    received = '';
    proxy.stall();
    c.sock.write('x1');
    c.sock.write('x2');
    await sleep(200);
    assert.equal(received, '', 'nothing reached the server while stalled');
    assert.equal(c.got(), '');
    proxy.release();
    await until('released echo', () => c.got() === 'x1x2');
    assert.equal(received, 'x1x2');
    c.sock.destroy();
  } finally {
    await proxy.close();
  }
});

test('a stall also holds the replies: the server applied, the client waits', async () => {
  const proxy = await new FaultProxy('127.0.0.1', echoPort).start();
  try {
    const c = await client(proxy);
    received = '';
    c.sock.write('q');
    await until('server got it', () => received === 'q');
    await until('reply', () => c.got() === 'q');
    proxy.stall();
    c.sock.write('r');
    await sleep(150);
    assert.equal(c.got(), 'q');
    proxy.restore();
    await until('reply after restore', () => c.got() === 'qr');
    c.sock.destroy();
  } finally {
    await proxy.close();
  }
});

test('cut destroys every connection; new ones are accepted', async () => {
  const proxy = await new FaultProxy('127.0.0.1', echoPort).start();
  try {
    const a = await client(proxy);
    const b = await client(proxy);
    await until('two links', () => proxy.connections === 2);
    proxy.cut();
    await until('both closed', () => a.closed() && b.closed());
    assert.equal(proxy.connections, 0);
    const c = await client(proxy);
    c.sock.write('again');
    await until('echo after cut', () => c.got() === 'again');
    c.sock.destroy();
  } finally {
    await proxy.close();
  }
});

test('dropReplies forwards the request and swallows the reply', async () => {
  const proxy = await new FaultProxy('127.0.0.1', echoPort).start();
  try {
    const c = await client(proxy);
    received = '';
    proxy.dropReplies();
    c.sock.write('commit');
    await until('server applied', () => received === 'commit');
    await sleep(150);
    assert.equal(c.got(), '', 'the client never hears');
    assert.ok(proxy.droppedBytes >= 6);
    proxy.restore();
    c.sock.write('next');
    await until('replies flow again', () => c.got() === 'next');
    c.sock.destroy();
  } finally {
    await proxy.close();
  }
});

test('a target that is down: the client connection is closed', async () => {
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  const port = (dead.address() as net.AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const proxy = await new FaultProxy('127.0.0.1', port).start();
  try {
    const c = await client(proxy);
    await until('closed', () => c.closed());
    assert.equal(proxy.connections, 0);
  } finally {
    await proxy.close();
  }
});
