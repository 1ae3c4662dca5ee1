import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './config.js';

/** The keys of each scope: `admin` may do everything; `payments` pay, cancel, refund and read orders. */
export interface Keys {
  admin: string[];
  payments: string[];
}

export interface Secrets {
  /** The first admin key (the one seckill generated, or SECKILL_ADMIN_KEY, or the first of SECKILL_ADMIN_KEYS). */
  adminKey: string;
  /** Every key, per scope (several per scope, for rotation). */
  keys: Keys;
  userSecret: string;
  /** Where the admin keys and the user secret came from: the environment (never printed) or the data dir. */
  fromEnv: { adminKey: boolean; userSecret: boolean };
  /**
   * Demo mode: anyone may mint a user token (POST /api/demo/token) and users may pay their own
   * orders. Never implied by where the secrets came from; see `resolveSecrets`.
   */
  demo: boolean;
  /** Why demo mode is on (for the warning printed at every start), or null. */
  demoReason: string | null;
  /** True when this call generated the stored secrets (first start on this data dir). */
  generated: boolean;
}

interface Stored {
  adminKey: string;
  userSecret: string;
  /** Written once, at the first start: true only for the quick start (no secret in the environment). */
  demo?: boolean;
}

export interface SecretsEnv {
  adminKey?: string;
  /** SECKILL_ADMIN_KEYS: more admin keys (rotation); SECKILL_ADMIN_KEY is one more. */
  adminKeys?: string[];
  /** SECKILL_PAYMENTS_KEYS. */
  paymentsKeys?: string[];
  userSecret?: string;
  /** SECKILL_DEMO: on or off when set; undefined lets the data dir decide. */
  demo?: boolean;
}

/** What of the secrets the configuration sets (the rest comes from the data dir). */
export function secretsEnv(config: Config): SecretsEnv {
  return {
    adminKey: config.adminKey,
    adminKeys: config.adminKeys,
    paymentsKeys: config.paymentsKeys,
    userSecret: config.userSecret,
    demo: config.demo,
  };
}

export function secretsFile(dataDir: string): string {
  return path.join(dataDir, 'secrets.json');
}

/**
 * Secrets come from the environment; what is missing is read from, or generated into,
 * `<dataDir>/secrets.json` (mode 0600). Never from code.
 *
 * Demo mode is an explicit choice: SECKILL_DEMO=1/0 decides when set. Unset, it is on only when
 * the user secret is seckill's own and secrets.json says `"demo": true`, which seckill writes
 * only on the first start of an empty data dir with neither secret in the environment (the
 * README's quick start). A data dir whose secrets.json has no such field (made before this rule,
 * or by an operator) is not in demo mode, wherever its secrets came from.
 */
export function resolveSecrets(dataDir: string, env: SecretsEnv): Secrets {
  const file = secretsFile(dataDir);
  // Admin keys from the environment: SECKILL_ADMIN_KEY and SECKILL_ADMIN_KEYS together.
  const envAdmin = [...(env.adminKey ? [env.adminKey] : []), ...(env.adminKeys ?? [])];
  let stored: Stored | null = null;
  let generated = false;
  if (envAdmin.length === 0 || !env.userSecret) {
    if (fs.existsSync(file)) {
      stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Stored;
    } else {
      makeDataDir(dataDir);
      stored = {
        adminKey: crypto.randomBytes(24).toString('base64url'),
        userSecret: crypto.randomBytes(32).toString('base64url'),
        demo: env.demo === undefined && envAdmin.length === 0 && !env.userSecret,
      };
      try {
        fs.writeFileSync(file, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
        generated = true;
      } catch (err) {
        // Another process of this data dir wrote it first: use theirs.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Stored;
      }
    }
  }
  let demoReason: string | null = null;
  if (env.demo !== undefined) demoReason = env.demo ? 'SECKILL_DEMO=1' : null;
  else if (!env.userSecret && stored?.demo === true) demoReason = `"demo": true in ${file} (written at its first start; SECKILL_DEMO=0 turns it off)`;
  const admin = envAdmin.length > 0 ? envAdmin : stored ? [stored.adminKey] : [];
  const userSecret = env.userSecret ?? stored?.userSecret;
  if (admin.length === 0 || !userSecret) throw new Error(`${file} lacks adminKey or userSecret.`);
  return {
    adminKey: admin[0],
    keys: { admin, payments: [...(env.paymentsKeys ?? [])] },
    userSecret,
    fromEnv: { adminKey: envAdmin.length > 0, userSecret: Boolean(env.userSecret) },
    demo: demoReason !== null,
    demoReason,
    generated,
  };
}

/**
 * The data dir, created readable by its owner only (0700): it holds the secrets and the database
 * (per-sale secrets). An existing dir keeps its mode (the operator's choice). The SQLite store
 * creates it the same way (src/stores/sqlite/private-files.ts).
 */
export function makeDataDir(dataDir: string): void {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
}
