import net from 'node:net';
import path from 'node:path';
import { Type, type Static } from 'typebox';
import { ConfigError, validateEnv } from './errors.js';
import { parseWebEnv, type WebConfig } from './shop.js';
import { parseSinksEnv, type SinksSettings } from '../sinks/config.js';

/** An on/off switch: 1/0, true/false, yes/no. */
const Flag = (dflt: boolean) =>
  Type.Union(['1', '0', 'true', 'false', 'yes', 'no'].map((v) => Type.Literal(v)), { default: dflt ? 'true' : 'false' });
const on = (v: string) => v === '1' || v === 'true' || v === 'yes';

/** The shortest key (admin or payments) seckill accepts. */
const KEY_MIN_LENGTH = 16;

const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ default: '127.0.0.1' }),
  SECKILL_ADMIN_KEY: Type.Optional(Type.String({ minLength: KEY_MIN_LENGTH })),
  /** More admin keys, comma-separated (rotation); checked by keyList. */
  SECKILL_ADMIN_KEYS: Type.Optional(Type.String()),
  /** Keys of the payments scope (pay, cancel, refund, read orders), comma-separated. */
  SECKILL_PAYMENTS_KEYS: Type.Optional(Type.String()),
  SECKILL_USER_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  SECKILL_DATA_DIR: Type.String({ default: './data' }),
  REDIS_URL: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  SECKILL_RATE_PER_IP: Type.Number({ minimum: 0, default: 200 }),
  SECKILL_RATE_PER_USER: Type.Number({ minimum: 0, default: 5 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  /** How long a batch of reservations waits for company before it is committed. */
  SECKILL_GROUP_COMMIT_MS: Type.Number({ minimum: 0, maximum: 1000, default: 2 }),
  SECKILL_WRITER_BATCH: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
  /** How often unpaid reservations past their window are expired. */
  SECKILL_SWEEP_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 250 }),
  /** Waiting room: a place not polled for this long is dropped (the page polls every 2 s). */
  SECKILL_QUEUE_ABANDON_MS: Type.Integer({ minimum: 500, maximum: 600_000, default: 20_000 }),
  /** Waiting room: how long a pass stays good. */
  SECKILL_PASS_TTL_MS: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000 }),
  /**
   * Challenge pow: leading zero bits of SHA-256 asked for. 15: about 33,000 hashes on average, ~0.2 s
   * in Chromium on a server core (crypto.subtle, ~150,000/s), ~0.7–1.1 s on a phone (docs/challenges.md).
   */
  SECKILL_POW_BITS: Type.Integer({ minimum: 0, maximum: 32, default: 15 }),
  /** Challenge quiz: an answer sooner than this after the question was given is refused (a script's speed). */
  SECKILL_QUIZ_MIN_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 1500 }),
  /** FULL fsyncs every commit (survives power loss); NORMAL survives a process crash only. */
  SECKILL_SQLITE_SYNC: Type.Union([Type.Literal('FULL'), Type.Literal('NORMAL')], { default: 'FULL' }),
  /** Embedded mode: the group commit's batches are committed on a worker thread with its own SQLite connection. */
  SECKILL_SQLITE_WRITER_THREAD: Flag(false),
  /** Distributed mode: run on a Redis without an append-only file (tests only: a Redis restart loses accepted orders). */
  SECKILL_ALLOW_VOLATILE_REDIS: Flag(false),
  /** Prefix of every Redis key: several seckill deployments (or test runs) can share one Redis. */
  SECKILL_REDIS_PREFIX: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', default: 'seckill' }),
  /** Distributed order writer: entries a consumer left unacknowledged this long are claimed by another. */
  SECKILL_CLAIM_IDLE_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 5000 }),
  SECKILL_PG_POOL: Type.Integer({ minimum: 1, maximum: 100, default: 4 }),
  /** Distributed mode: how often each process adds its per-sale request counts to the shared ones in Redis. */
  SECKILL_STATS_FLUSH_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 250 }),
  /**
   * TEST-ONLY fault injection, never set in production: the distributed order writer waits this
   * many ms between a batch's PostgreSQL commit and its XACK, so a crash test can kill a writer
   * holding a committed but unacknowledged batch. 0 (default) = no pause.
   */
  SECKILL_TEST_WRITER_PAUSE_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 0 }),
  /** TEST-ONLY fault injection, like the above: the wait between reading a batch and its commit. */
  SECKILL_TEST_WRITER_PAUSE_BEFORE_COMMIT_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 0 }),
  /** Load shedding: buys get 503 busy while the event loop lags more than this (ms); 0 = off. */
  SECKILL_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 200 }),
  /** Load shedding: buys get 503 busy while the heap is over this (MB); 0 = off. */
  SECKILL_MAX_HEAP_MB: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 3072 }),
  /** Load shedding: buys get 503 busy while more decided orders than this wait for the database. */
  SECKILL_MAX_WRITER_BACKLOG: Type.Integer({ minimum: 0, maximum: 100_000_000, default: 200_000 }),
  /** Open order-event streams (SSE) one user may hold at once. */
  SECKILL_SSE_PER_USER: Type.Integer({ minimum: 1, maximum: 1000, default: 5 }),
  /** When set, user tokens must carry this `aud` claim. */
  SECKILL_TOKEN_AUDIENCE: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  /** Create a demo sale on the first start of an empty data dir. */
  SECKILL_DEMO_SALE: Flag(true),
  /**
   * Demo mode (anyone may mint a user token at POST /api/demo/token; users may pay their own
   * orders): 1 on, 0 off. Unset: on only for a data dir whose first start generated both secrets
   * (the quick start), which records that choice in secrets.json; never for secrets from the environment.
   */
  SECKILL_DEMO: Type.Optional(Type.Union(['1', '0', 'true', 'false', 'yes', 'no'].map((v) => Type.Literal(v)))),
  /** Bearer token that may read /metrics (the admin key may too); unset: the admin key only. */
  SECKILL_METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  /**
   * Behind a proxy or load balancer: whose X-Forwarded-For to believe for the client address (the
   * per-address limit). false (default), true (any: only when nothing else can reach seckill), a
   * hop count, or comma-separated addresses/CIDRs of the proxies (also loopback, linklocal, uniquelocal).
   */
  SECKILL_TRUST_PROXY: Type.String({ default: 'false' }),
  /** Accept user tokens without an `exp` claim (never expiring). Off: they are refused with 401. */
  SECKILL_ALLOW_TOKENS_WITHOUT_EXP: Flag(false),
  /** The shop the pages sell for (checked further in shop.ts): name, home, logo, money, login, checkout. */
  SECKILL_SHOP_NAME: Type.Optional(Type.String({ maxLength: 80 })),
  SECKILL_SHOP_URL: Type.Optional(Type.String({ maxLength: 2000 })),
  SECKILL_SHOP_LOGO_URL: Type.Optional(Type.String({ maxLength: 2000 })),
  SECKILL_CURRENCY: Type.String({ default: 'USD' }),
  SECKILL_LOCALE: Type.String({ default: 'en-US' }),
  SECKILL_SIGN_IN_URL: Type.Optional(Type.String({ maxLength: 2000 })),
  SECKILL_CHECKOUT_URL: Type.Optional(Type.String({ maxLength: 2000 })),
  /** Origins whose pages may call /api/ (CORS); unset: none. */
  SECKILL_CORS_ORIGINS: Type.Optional(Type.String()),
  /** Origins that may frame the buyers' pages (CSP frame-ancestors); unset: none. */
  SECKILL_FRAME_ANCESTORS: Type.Optional(Type.String()),
  /** Intended purchases (buyers refused as sold out, kept for the sales team): on (default) or off. */
  SECKILL_INTEREST: Type.Union(['on', 'off', '1', '0', 'true', 'false', 'yes', 'no'].map((v) => Type.Literal(v)), { default: 'on' }),
  /** Event sinks of the outbox relay (checked further in src/sinks/config.ts; docs/integrating.md). */
  SECKILL_AMQP_URL: Type.Optional(Type.String({ minLength: 1 })),
  SECKILL_AMQP_EXCHANGE: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,255}$', default: 'seckill' }),
  SECKILL_NATS_URL: Type.Optional(Type.String({ minLength: 1 })),
  SECKILL_NATS_STREAM: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'SECKILL' }),
  /** Events go to <prefix>.<type>; another prefix only when several deployments share one NATS. */
  SECKILL_NATS_SUBJECT_PREFIX: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}(\\.[A-Za-z0-9_-]{1,64}){0,3}$', default: 'seckill' }),
  SECKILL_WEBHOOK_URLS: Type.Optional(Type.String()),
  SECKILL_WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /** The outbox: sent events are kept this long (hours), so a sink added later gets them; then pruned. */
  SECKILL_OUTBOX_RETENTION_HOURS: Type.Number({ minimum: 0, maximum: 24 * 365, default: 168 }),
  /** Failed attempts of one event (sent alone) before it is a sink's dead letter. */
  SECKILL_OUTBOX_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 1000, default: 20 }),
});

export type Env = Static<typeof EnvSchema>;

export interface Config {
  port: number;
  host: string;
  adminKey?: string;
  /** SECKILL_ADMIN_KEYS: more admin keys (SECKILL_ADMIN_KEY is one more). */
  adminKeys?: string[];
  /** SECKILL_PAYMENTS_KEYS. */
  paymentsKeys?: string[];
  userSecret?: string;
  dataDir: string;
  redisUrl?: string;
  databaseUrl?: string;
  ratePerIp: number;
  ratePerUser: number;
  logLevel: string;
  groupCommitMs: number;
  writerBatch: number;
  sweepMs: number;
  queueAbandonMs: number;
  passTtlMs: number;
  /** SECKILL_POW_BITS. */
  powBits: number;
  /** SECKILL_QUIZ_MIN_MS. */
  quizMinMs: number;
  sqliteSync: 'FULL' | 'NORMAL';
  sqliteWriterThread: boolean;
  demoSale: boolean;
  allowVolatileRedis: boolean;
  redisPrefix: string;
  claimIdleMs: number;
  pgPool: number;
  statsFlushMs: number;
  maxEventLoopDelayMs: number;
  maxHeapMb: number;
  maxWriterBacklog: number;
  ssePerUser: number;
  tokenAudience?: string;
  /** SECKILL_DEMO: true/false when set, undefined = decided by the data dir (see secrets.ts). */
  demo?: boolean;
  metricsToken?: string;
  /** fastify's trustProxy: false, true, a hop count or the proxies' addresses/CIDRs. */
  trustProxy: boolean | number | string[];
  allowTokensWithoutExp: boolean;
  /** The shop's branding, money, login and checkout; CORS origins; frame ancestors (shop.ts). */
  web: WebConfig;
  /** SECKILL_INTEREST: record buyers refused because a sale is sold out. */
  interest: boolean;
  /** Where the outbox relay publishes events: AMQP, NATS JetStream, webhooks (src/sinks/config.ts). */
  sinks: SinksSettings;
  /** The outbox relay: how long sent events are kept (ms), attempts before a dead letter. */
  outbox: { retentionMs: number; maxAttempts: number };
  /** Test-only fault injection (SECKILL_TEST_WRITER_PAUSE_MS): pause between commit and XACK. */
  testWriterPauseMs: number;
  /** Test-only fault injection (SECKILL_TEST_WRITER_PAUSE_BEFORE_COMMIT_MS): pause between read and commit. */
  testWriterPauseBeforeCommitMs: number;
}

/**
 * One typed config, read from the environment and validated; a bad value stops the start with a
 * ConfigError naming the variable, its value and what is allowed (src/config-errors.ts).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = validateEnv<Env>(EnvSchema, env);
  const problems: string[] = [];
  const adminKeys = keyList('SECKILL_ADMIN_KEYS', e.SECKILL_ADMIN_KEYS, problems);
  const paymentsKeys = keyList('SECKILL_PAYMENTS_KEYS', e.SECKILL_PAYMENTS_KEYS, problems);
  const admin = new Set([...(e.SECKILL_ADMIN_KEY ? [e.SECKILL_ADMIN_KEY] : []), ...adminKeys]);
  if (paymentsKeys.some((k) => admin.has(k))) {
    problems.push('SECKILL_PAYMENTS_KEYS holds a key that is also an admin key (SECKILL_ADMIN_KEY or SECKILL_ADMIN_KEYS): each key has one scope.');
  }
  const sinks = parseSinksEnv(e, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port: e.PORT,
    host: e.HOST,
    adminKey: e.SECKILL_ADMIN_KEY,
    adminKeys,
    paymentsKeys,
    userSecret: e.SECKILL_USER_SECRET,
    dataDir: path.resolve(e.SECKILL_DATA_DIR),
    redisUrl: e.REDIS_URL,
    databaseUrl: e.DATABASE_URL,
    ratePerIp: e.SECKILL_RATE_PER_IP,
    ratePerUser: e.SECKILL_RATE_PER_USER,
    logLevel: e.LOG_LEVEL,
    groupCommitMs: e.SECKILL_GROUP_COMMIT_MS,
    writerBatch: e.SECKILL_WRITER_BATCH,
    sweepMs: e.SECKILL_SWEEP_MS,
    queueAbandonMs: e.SECKILL_QUEUE_ABANDON_MS,
    passTtlMs: e.SECKILL_PASS_TTL_MS,
    powBits: e.SECKILL_POW_BITS,
    quizMinMs: e.SECKILL_QUIZ_MIN_MS,
    sqliteSync: e.SECKILL_SQLITE_SYNC,
    sqliteWriterThread: on(e.SECKILL_SQLITE_WRITER_THREAD),
    demoSale: on(e.SECKILL_DEMO_SALE),
    allowVolatileRedis: on(e.SECKILL_ALLOW_VOLATILE_REDIS),
    redisPrefix: e.SECKILL_REDIS_PREFIX,
    claimIdleMs: e.SECKILL_CLAIM_IDLE_MS,
    pgPool: e.SECKILL_PG_POOL,
    statsFlushMs: e.SECKILL_STATS_FLUSH_MS,
    maxEventLoopDelayMs: e.SECKILL_MAX_EVENT_LOOP_DELAY_MS,
    maxHeapMb: e.SECKILL_MAX_HEAP_MB,
    maxWriterBacklog: e.SECKILL_MAX_WRITER_BACKLOG,
    ssePerUser: e.SECKILL_SSE_PER_USER,
    tokenAudience: e.SECKILL_TOKEN_AUDIENCE,
    demo: e.SECKILL_DEMO === undefined ? undefined : on(e.SECKILL_DEMO),
    metricsToken: e.SECKILL_METRICS_TOKEN,
    trustProxy: parseTrustProxy(e.SECKILL_TRUST_PROXY),
    allowTokensWithoutExp: on(e.SECKILL_ALLOW_TOKENS_WITHOUT_EXP),
    web: parseWebEnv(e),
    interest: e.SECKILL_INTEREST === 'on' || on(e.SECKILL_INTEREST),
    sinks,
    outbox: { retentionMs: e.SECKILL_OUTBOX_RETENTION_HOURS * 3600_000, maxAttempts: e.SECKILL_OUTBOX_MAX_ATTEMPTS },
    testWriterPauseMs: e.SECKILL_TEST_WRITER_PAUSE_MS,
    testWriterPauseBeforeCommitMs: e.SECKILL_TEST_WRITER_PAUSE_BEFORE_COMMIT_MS,
  };
}

/**
 * A comma-separated key list: each entry at least KEY_MIN_LENGTH characters, none empty (a stray
 * comma is a mistake, not a key). Keys are secrets: a refusal names the entry, never its text.
 */
function keyList(name: string, text: string | undefined, problems: string[]): string[] {
  if (text === undefined) return [];
  const keys = text.split(',').map((k) => k.trim());
  keys.forEach((k, i) => {
    const which = `entry ${i + 1} of ${keys.length}`;
    if (k.length === 0) problems.push(`${name}: ${which} is empty; ${name} takes keys of at least ${KEY_MIN_LENGTH} characters separated by single commas.`);
    else if (k.length < KEY_MIN_LENGTH) problems.push(`${name}: ${which} has ${k.length} characters (not shown); ${name} takes keys of at least ${KEY_MIN_LENGTH} characters separated by commas.`);
  });
  const given = keys.filter((k) => k.length > 0);
  if (new Set(given).size !== given.length) problems.push(`${name} names the same key twice.`);
  return keys;
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** SECKILL_TRUST_PROXY → fastify's trustProxy; a value that is none of the forms stops the start. */
export function parseTrustProxy(text: string): boolean | number | string[] {
  const v = text.trim().toLowerCase();
  if (v === '' || v === 'false' || v === 'no' || v === '0') return false;
  if (v === 'true' || v === 'yes') return true;
  if (/^[0-9]{1,3}$/.test(v)) return Number(v);
  const list = text.split(',').map((x) => x.trim()).filter(Boolean);
  for (const item of list) {
    const [ip, bits, extra] = item.split('/');
    const family = net.isIP(ip);
    const okBits = bits === undefined || (/^[0-9]{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (!(PROXY_NAMES.has(item) || (family !== 0 && okBits && extra === undefined))) {
      throw new Error(`SECKILL_TRUST_PROXY: "${item}" is not an address, a CIDR, loopback, linklocal or uniquelocal (or use true, false, a hop count)`);
    }
  }
  return list;
}
