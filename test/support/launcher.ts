// Starting seckill for a test: in-process (the server object, with its internals) or as a child
// process of bin/seckill.mjs, as an operator runs it; waiting until it answers; stopping it. Every
// child is killed when the test process exits, whatever happened.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../../src/config/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { timedCall } from './client.js';
import { freePort } from './ports.js';

export { until } from './wait.js';

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';
export const USER_SECRET = 'test-user-secret-0123456789abcdef0123456789';

/** The repository root: bin/seckill.mjs resolves from here. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Limits of waits that prove no latency (a start, a drain, an answer that must merely come): a
 * loaded 2-core CI machine has started a seckill process in 30 s, so only a hang may fail them.
 */
export const START_MS = 120_000;
export const PATIENCE_MS = 30_000;

export type Env = Record<string, string | undefined>;

/**
 * The settings every test seckill starts from: known secrets, no rate limits, no demo sale, and
 * no shedding on event-loop delay (the load generator shares the machine's cores, so its lag says
 * nothing about the server; tests of shedding set their own threshold). `overrides` win; a
 * variable given as `undefined` is left out.
 */
export function testEnv(overrides: Env = {}): Record<string, string> {
  return defined({
    HOST: '127.0.0.1',
    SECKILL_ADMIN_KEY: ADMIN_KEY,
    SECKILL_USER_SECRET: USER_SECRET,
    SECKILL_RATE_PER_IP: '0',
    SECKILL_RATE_PER_USER: '0',
    SECKILL_DEMO_SALE: 'false',
    SECKILL_MAX_EVENT_LOOP_DELAY_MS: '0',
    LOG_LEVEL: 'warn',
    ...overrides,
  });
}

/**
 * The environment of a child process: the test process's own, then testEnv, then `overrides`; a
 * variable given as `undefined` is left out even when the test process has it.
 */
export function childEnv(overrides: Env = {}): Record<string, string> {
  return defined({ ...process.env, ...testEnv(), ...overrides });
}

/** The variables that have a value (`undefined` means: not set). */
function defined(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

// ---------------------------------------------------------------------------------------------
// In-process

/**
 * The configuration of an in-process test server: testEnv on a port the kernel picks, silent.
 * Only these variables count, not the test process's environment (loadConfig reads what it is given).
 */
export function inProcessConfig(env: Env = {}): Config {
  return loadConfig(testEnv({ PORT: '0', LOG_LEVEL: 'silent', ...env }));
}

/** An in-process seckill, listening when this resolves; `close` drains its writer. */
export function startInProcess(env: Env = {}): Promise<RunningServer> {
  return startServer(inProcessConfig(env));
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is SIGKILLed when the test process exits, whatever happened.

const children = new Set<ChildProcess>();

export function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export function killTracked(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.once('exit', killTracked);

export function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

export async function kill9(child: ChildProcess): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** SIGTERM and wait for the exit (SIGKILL after `graceMs`). */
export async function terminate(child: ChildProcess, graceMs = PATIENCE_MS): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  // A cleared timer, so that a quick exit does not keep the test process alive longer.
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A seckill child process on its port. */
export interface Proc {
  child: ChildProcess;
  url: string;
  port: number;
  /** Everything it wrote to stdout and stderr, in order. */
  output: string[];
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

export interface SpawnOptions {
  /** The whole environment of the process (`undefined`: not set); PORT is set from `port`. */
  env: Env;
  port: number;
  /** Worker processes behind the port (`start --workers N`); 1: a single process. */
  workers?: number;
}

/** `seckill start` as a tracked child process, not waited for. */
export function spawnSeckill(o: SpawnOptions): Proc {
  const workers = o.workers ?? 1;
  const args = ['bin/seckill.mjs', 'start', ...(workers > 1 ? ['--workers', String(workers)] : [])];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: defined({ ...o.env, PORT: String(o.port) }), stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  const output: string[] = [];
  child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, port: o.port, url: `http://127.0.0.1:${o.port}`, output, exited };
}

export interface ReadyOptions {
  /** What must answer 200: /readyz (default: the stores are up) or /healthz (the process is). */
  path?: '/readyz' | '/healthz';
  /** Give up (and kill the process) after this long; only a hang should ever reach it. */
  timeoutMs?: number;
  /** Deadline of each probe request. */
  requestMs?: number;
  everyMs?: number;
}

/** Resolves when the process answers `path` with 200; kills it and throws when it exits first or never does. */
export async function waitReady(p: Proc, o: ReadyOptions = {}): Promise<void> {
  const readyPath = o.path ?? '/readyz';
  const timeoutMs = o.timeoutMs ?? START_MS;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (!alive(p.child)) throw new Error(`seckill exited (code ${p.child.exitCode}, signal ${p.child.signalCode}) before it was ready:\n${p.output.join('')}`);
      const r = await timedCall(p.url, 'GET', readyPath, {}, o.requestMs ?? PATIENCE_MS).catch(() => null); // not listening yet
      if (r?.status === 200) return;
      if (Date.now() > deadline) throw new Error(`seckill not ready on ${readyPath} after ${timeoutMs} ms:\n${p.output.join('')}`);
      await sleep(o.everyMs ?? 50);
    }
  } catch (err) {
    await kill9(p.child);
    throw err;
  }
}

export interface LaunchOptions extends Omit<SpawnOptions, 'port'>, ReadyOptions {
  /** A fixed port (a restart on the same one); by default a free one, tried again if taken meanwhile. */
  port?: number;
}

/** `seckill start` and wait until it answers; with several workers, until each had time to listen. */
export async function launchSeckill(o: LaunchOptions): Promise<Proc> {
  for (let attempt = 1; ; attempt++) {
    const p = spawnSeckill({ ...o, port: o.port ?? (await freePort()) });
    try {
      await waitReady(p, o);
    } catch (err) {
      // A port taken between the probe and the bind: another port, another try.
      const taken = o.port === undefined && p.output.join('').includes('EADDRINUSE');
      if (attempt >= 3 || !taken) throw err;
      continue;
    }
    if ((o.workers ?? 1) > 1) await sleep(300); // let every worker reach listen
    return p;
  }
}
