import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface Secrets {
  adminKey: string;
  userSecret: string;
  /** True when seckill made the user secret itself: demo conveniences are on. */
  demo: boolean;
  /** True when this call generated the stored secrets (first start on this data dir). */
  generated: boolean;
}

interface Stored {
  adminKey: string;
  userSecret: string;
}

export function secretsFile(dataDir: string): string {
  return path.join(dataDir, 'secrets.json');
}

/**
 * Secrets come from the environment; what is missing is read from, or generated into,
 * `<dataDir>/secrets.json` (mode 0600). Never from code.
 */
export function resolveSecrets(dataDir: string, env: { adminKey?: string; userSecret?: string }): Secrets {
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
  return {
    adminKey: env.adminKey ?? stored!.adminKey,
    userSecret: env.userSecret ?? stored!.userSecret,
    demo: !env.userSecret,
    generated,
  };
}
