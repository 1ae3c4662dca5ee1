// A test-owned PostgreSQL server for the fault tests (test/distributed-faults.test.ts): initdb on a
// temporary directory, its own port and socket directory, stopped and started again at will.
// initdb and pg_ctl refuse to run as root: as root they run as the `postgres` user.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';

const run = promisify(execFile);

/** The bin directory of the newest installed PostgreSQL (Debian layout), or null. */
export function pgBinDir(): string | null {
  const base = '/usr/lib/postgresql';
  if (!fs.existsSync(base)) return null;
  const versions = fs.readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = path.join(base, v, 'bin');
    if (fs.existsSync(path.join(bin, 'pg_ctl')) && fs.existsSync(path.join(bin, 'initdb'))) return bin;
  }
  return null;
}

/** uid/gid to run PostgreSQL's tools as: the postgres user when we are root, else ourselves. */
function runAs(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root and there is no postgres user to run PostgreSQL as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Servers still running, stopped at exit even when a test failed before its cleanup. */
const running = new Set<PgServer>();
process.once('exit', () => {
  for (const s of running) s.stopSync();
});

export class PgServer {
  readonly dir: string;
  port = 0;
  private readonly bin: string;
  private readonly user: { uid: number; gid: number } | null;

  constructor() {
    const bin = pgBinDir();
    if (!bin) throw new Error('no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql');
    this.bin = bin;
    this.user = runAs();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-pg-'));
    if (this.user) fs.chownSync(this.dir, this.user.uid, this.user.gid);
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private get data(): string {
    return path.join(this.dir, 'data');
  }

  private async tool(name: string, args: string[], timeoutMs = 30_000): Promise<string> {
    const opts = { timeout: timeoutMs, ...(this.user ?? {}), env: { ...process.env, LC_ALL: 'C' } };
    const r = await run(path.join(this.bin, name), args, opts);
    return r.stdout + r.stderr;
  }

  /** initdb (first time only) and start; resolves when it accepts connections. */
  async start(): Promise<void> {
    if (this.port === 0) {
      this.port = await freePort();
      await this.tool('initdb', ['-D', this.data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
    }
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=100`;
    running.add(this);
    await this.tool('pg_ctl', ['-D', this.data, '-o', options, '-l', path.join(this.dir, 'log'), '-w', '-t', '30', 'start']);
  }

  /** At process exit: stop immediately, synchronously. */
  stopSync(): void {
    try {
      execFileSync(path.join(this.bin, 'pg_ctl'), ['-D', this.data, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore', timeout: 10_000, ...(this.user ?? {}) });
    } catch {
      // not running
    }
  }

  /** fast: rolls back open transactions and closes connections; immediate: like a crash (recovery at the next start). */
  async stop(how: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (this.port === 0 || !fs.existsSync(path.join(this.data, 'postmaster.pid'))) return;
    await this.tool('pg_ctl', ['-D', this.data, '-m', how, '-w', '-t', '30', 'stop']);
  }

  /** A fresh database on this server; its URL. */
  async createDatabase(name: string): Promise<string> {
    const c = new pg.Client({ connectionString: this.url });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    return `postgres://postgres@127.0.0.1:${this.port}/${name}`;
  }

  log(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'log'), 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }

  /** Stop (immediately) whatever runs and remove the directory. Safe to call twice. */
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    running.delete(this);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
