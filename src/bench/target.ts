import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

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
