import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { secretsFile } from '../config/secrets.js';

/**
 * Where the operator commands (token, sale) find the service they mean. They never create a data
 * dir: new secrets would sign tokens and carry an admin key that the running service refuses.
 */

export interface DataDirChoice {
  dir: string;
  /** How it was chosen, for the line that says so. */
  how: string;
}

/**
 * The service's data dir: `--data-dir`, else SECKILL_DATA_DIR, else `./data` of this folder (where
 * `seckill start` keeps it by default). Throws a message saying where it looked and what to do when
 * it holds no secrets.json: never a guess at another folder, never a new data dir.
 */
export function findDataDir(config: Config, explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): DataDirChoice {
  const choice: DataDirChoice = explicit
    ? { dir: path.resolve(explicit), how: '--data-dir' }
    : env.SECKILL_DATA_DIR
      ? { dir: config.dataDir, how: 'SECKILL_DATA_DIR' }
      : { dir: config.dataDir, how: 'the default ./data of this folder' };
  if (fs.existsSync(secretsFile(choice.dir))) return choice;
  throw new Error(
    `no seckill data dir with secrets.json at ${choice.dir} (${choice.how}). ` +
      "Give the running service's data dir (--data-dir <dir> or SECKILL_DATA_DIR), run this from the folder it was started in, " +
      'or set SECKILL_ADMIN_KEY / SECKILL_USER_SECRET as the service has them. Only `seckill start` creates a data dir.',
  );
}

function readStored(choice: DataDirChoice): { adminKey?: unknown; userSecret?: unknown } {
  const file = secretsFile(choice.dir);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as { adminKey?: unknown; userSecret?: unknown };
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
}

export interface Credential {
  value: string;
  /** Where it came from, e.g. "SECKILL_ADMIN_KEY" or "/srv/seckill/data/secrets.json (--data-dir)". */
  from: string;
}

/** The admin key or user secret: the environment's when set, else the service's data dir's. */
export function credential(config: Config, which: 'adminKey' | 'userSecret', dataDirOption?: string): Credential {
  // An admin key from SECKILL_ADMIN_KEY, else the first of SECKILL_ADMIN_KEYS (scoped keys, README).
  const envName = which === 'userSecret' ? 'SECKILL_USER_SECRET' : config.adminKey ? 'SECKILL_ADMIN_KEY' : 'SECKILL_ADMIN_KEYS';
  const fromEnv = which === 'userSecret' ? config.userSecret : config.adminKey ?? config.adminKeys?.[0];
  if (fromEnv && !dataDirOption) return { value: fromEnv, from: envName };
  const choice = findDataDir(config, dataDirOption);
  const value = readStored(choice)[which];
  const file = secretsFile(choice.dir);
  if (typeof value !== 'string' || value.length === 0) throw new Error(`${file} has no ${which}`);
  return { value, from: `${file} (${choice.how})` };
}

export interface ServiceUrl {
  url: string;
  from: string;
}

/** The running service: --url, else HOST and PORT as the service reads them. */
export function serviceUrl(config: Config, urlOption: string | undefined): ServiceUrl {
  if (urlOption) {
    let u: URL;
    try {
      u = new URL(urlOption);
    } catch {
      throw new Error(`--url ${urlOption} is not a URL such as http://127.0.0.1:3000`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`--url ${urlOption}: only http:// and https:// are served`);
    return { url: urlOption.replace(/\/+$/, ''), from: '--url' };
  }
  // A service listening on every address is reached on the loopback one.
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '::1' : config.host;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`, from: 'HOST/PORT (pass --url for another)' };
}

export interface AdminCallOptions {
  url?: string;
  dataDir?: string;
}

/**
 * One admin API call to the running service; prints the answer. Says on stderr which service
 * and which admin key it used, and what a refusal or an unreachable service most likely means.
 */
export async function adminCall(config: Config, o: AdminCallOptions, method: string, urlPath: string, body?: unknown): Promise<void> {
  const target = serviceUrl(config, o.url);
  const key = credential(config, 'adminKey', o.dataDir);
  process.stderr.write(`seckill: ${method} ${target.url}${urlPath} (service from ${target.from}; admin key from ${key.from})\n`);
  let res: Response;
  try {
    res = await fetch(target.url + urlPath, {
      method,
      headers: { authorization: `Bearer ${key.value}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`no seckill answers at ${target.url} (${cause?.code ?? cause?.message ?? (err as Error).message}); is it running there? Pass --url <url>.`);
  }
  const text = await res.text();
  process.stdout.write(text + '\n');
  if (res.status === 401 || res.status === 403) {
    process.stderr.write(
      `seckill: ${target.url} refused the admin key from ${key.from}: that service runs with another admin key ` +
        '(its own data dir or SECKILL_ADMIN_KEY); give --data-dir or SECKILL_ADMIN_KEY to match it.\n',
    );
  }
  if (!res.ok) process.exitCode = 1;
}
