import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

/** The benchmark's own server's admin key and user secret (a throwaway server on 127.0.0.1). */
export const BENCH_ADMIN_KEY = 'bench-admin-key-0123456789abcdef';
export const BENCH_USER_SECRET = 'bench-user-secret-0123456789abcdef0123456789';

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export interface BenchServerOptions {
  redis?: string;
  database?: string;
  allowVolatileRedis?: boolean;
  workers?: number;
  /** More of the server's environment (a profile's own settings). */
  env?: Record<string, string>;
}

/** Start seckill as the benchmark's own child process, embedded or distributed; rate limits off. */
export async function startBenchServer(o: BenchServerOptions = {}): Promise<Child> {
  const port = await freePort();
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    SECKILL_ADMIN_KEY: BENCH_ADMIN_KEY,
    SECKILL_USER_SECRET: BENCH_USER_SECRET,
    SECKILL_DATA_DIR: tempDataDir(),
    SECKILL_RATE_PER_IP: '0',
    SECKILL_RATE_PER_USER: '0',
    SECKILL_DEMO_SALE: 'false',
    LOG_LEVEL: 'warn',
    ...o.env,
  };
  if (o.redis) env.REDIS_URL = o.redis;
  if (o.database) env.DATABASE_URL = o.database;
  if (o.redis) env.SECKILL_REDIS_PREFIX = `bench${process.pid}`;
  if (o.allowVolatileRedis) env.SECKILL_ALLOW_VOLATILE_REDIS = '1';
  const workers = o.workers ?? 1;
  const args = ['bin/seckill.mjs', 'start', ...(workers > 1 ? ['--workers', String(workers)] : [])];
  const child = await startChild(args, env, '/readyz', port);
  if (workers > 1) await new Promise((r) => setTimeout(r, 1000)); // every worker listening
  return child;
}

/** A process the benchmark started, and where it listens. */
export interface Child {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** Start a Node program from the repo and wait for its "listening <port>" or its HTTP readiness. */
export async function startChild(args: string[], env: Record<string, string>, readyPath: string | null, port?: number): Promise<Child> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => (out += d.toString()).length > 1e5 && (out = out.slice(-5e4));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode}: ${out}`);
    const m = /listening (\d+)/.exec(out);
    if (readyPath === null && m) return { child, url: `http://127.0.0.1:${m[1]}`, stop };
    if (readyPath !== null && port) {
      try {
        const r = await request(`http://127.0.0.1:${port}${readyPath}`);
        await r.body.text();
        if (r.statusCode === 200) return { child, url: `http://127.0.0.1:${port}`, stop };
      } catch {
        // not yet
      }
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${args.join(' ')} did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function tempDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-bench-'));
}

/** A small JSON client on a keep-alive pool. */
export class Api {
  readonly agent: Agent;
  constructor(readonly base: string, connections: number) {
    this.agent = new Agent({ connections, keepAliveTimeout: 30_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  }

  async call(method: string, url: string, token: string | null, body?: unknown): Promise<{ status: number; body: any; retryAfter: number }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- replies are read as loose JSON
    const res = await request(this.base + url, {
      method: method as 'POST',
      dispatcher: this.agent,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? JSON.parse(text) : null, retryAfter: Number(res.headers['retry-after'] ?? 0) };
  }

  /**
   * The bench's own bookkeeping calls (create, stats, order lists, end, archive): a 429 or 503 is
   * waited out (Retry-After) a few times, so that a target's rate limit refuses the measures, which
   * say so, not the bench's setup and clean-up.
   */
  async patient(method: string, url: string, token: string | null, body?: unknown): ReturnType<Api['call']> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.call(method, url, token, body);
      if ((r.status !== 429 && r.status !== 503) || attempt >= 8) return r;
      await new Promise((res) => setTimeout(res, Math.max(1, r.retryAfter) * 1000));
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
