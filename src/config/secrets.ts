import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface Secrets {
  adminKey: string;
  userSecret: string;
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
  userSecret?: string;
  /** SECKILL_DEMO: on or off when set; undefined lets the data dir decide. */
  demo?: boolean;
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
  let stored: Stored | null = null;
  let generated = false;
  if (!env.adminKey || !env.userSecret) {
    if (fs.existsSync(file)) {
      stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Stored;
    } else {
      fs.mkdirSync(dataDir, { recursive: true });
      stored = {
        adminKey: crypto.randomBytes(24).toString('base64url'),
        userSecret: crypto.randomBytes(32).toString('base64url'),
        demo: env.demo === undefined && !env.adminKey && !env.userSecret,
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
  return {
    adminKey: env.adminKey ?? stored!.adminKey,
    userSecret: env.userSecret ?? stored!.userSecret,
    demo: demoReason !== null,
    demoReason,
    generated,
  };
}
