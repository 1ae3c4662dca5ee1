import cluster from 'node:cluster';
import type { Config } from './config/config.js';
import type { Secrets } from './config/secrets.js';
import { signUserToken } from './gateway/auth.js';
import { buildApp, type App } from './http/app.js';
import { createServices, type Services } from './wiring/services.js';

export interface RunningServer {
  app: App;
  services: Services;
  url: string;
  close(): Promise<void>;
}

/** Wire the services, serve HTTP, start the sweeper; `close` drains the writer before it returns. */
export async function startServer(config: Config): Promise<RunningServer> {
  const services = await createServices(config);
  const app = buildApp(services);
  const { log, secrets } = services;

  let demoSale: DemoSale | null = null;
  try {
    if (secrets.generated && config.demoSale) demoSale = await createDemoSale(services);
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    // Port taken, or the demo sale refused: close what was opened, so that the process can exit.
    await app.close().catch(() => undefined);
    await services.close().catch(() => undefined);
    throw err;
  }
  services.sweeper.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = baseUrl(config.host, port);
  log.info({ url, dataDir: config.dataDir, sales: services.sales.all().length }, 'seckill listening');

  // With --workers the primary prints it, once (primaryGuidance); a worker never does. LOG_LEVEL=silent: nothing.
  if (cluster.isPrimary && config.logLevel !== 'silent') {
    const text = firstStartGuidance({ url, dataDir: config.dataDir, mode: services.mode, secrets, audience: config.tokenAudience, demoSale });
    if (text !== null) process.stdout.write(text);
  }
  if (secrets.demo) {
    // Loud, at every start: in demo mode anyone can act as any user.
    log.warn({ demo: true, reason: secrets.demoReason }, 'DEMO MODE: anyone can get a token for any user (POST /api/demo/token) and users pay their own orders; never use this for a real sale');
    if (cluster.isPrimary) process.stdout.write(demoBanner(secrets.demoReason));
  }

  let closing: Promise<void> | null = null;
  return {
    app,
    services,
    url,
    close() {
      closing ??= (async () => {
        await app.close();
        await services.close();
      })();
      return closing;
    },
  };
}

/** The demo sale as the first-start guidance names it. */
export interface DemoSale {
  id: string;
  startsAt: number;
}

async function createDemoSale(s: Services): Promise<DemoSale> {
  const now = Date.now();
  const sale = await s.sales.create({
    name: 'Demo sale: 100 mechanical keyboards',
    description: 'A demo flash sale created at first start. One per person.',
    priceCents: 999,
    stock: 100,
    startsAt: now + 60_000,
    endsAt: now + 60_000 + 3600_000,
    perUserLimit: 1,
    paymentWindowSeconds: 600,
  });
  s.log.info({ saleId: sale.id }, 'demo sale created');
  return { id: sale.id, startsAt: sale.startsAt };
}

export interface GuidanceFacts {
  url: string;
  dataDir: string;
  mode: string;
  secrets: Secrets;
  audience?: string;
  /** The demo sale this start created, or null (SECKILL_DEMO_SALE=0, --workers, not the first start). */
  demoSale: DemoSale | null;
}

/** The guidance of `start --workers N`'s primary: it serves nothing itself, so no demo sale. */
export function primaryGuidance(config: Config, mode: string, secrets: Secrets): string | null {
  if (config.logLevel === 'silent') return null;
  return firstStartGuidance({ url: baseUrl(config.host, config.port), dataDir: config.dataDir, mode, secrets, audience: config.tokenAudience, demoSale: null });
}

function baseUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The first line of every guidance block (tests count it). */
export const GUIDANCE_HEAD = '  seckill is ready';

/**
 * What to do next, printed by the one process that prints (the primary with --workers):
 * - on the first start of a data dir (seckill generated secrets.json): the long version, with the
 *   generated admin key (the only time it is shown), a sale to try or how to create one, a token;
 * - when the admin keys and the user secret come from the environment (production): a short
 *   version at every start, with no key in it (a key from the environment is never printed);
 * - otherwise (a later start on the same data dir) nothing: null.
 */
export function firstStartGuidance(f: GuidanceFacts): string | null {
  const { secrets, url } = f;
  const docs = '  Docs: README.md (Keys and scopes), docs/http-api.md, docs/tokens.md; going live: docs/production.md.';
  if (!secrets.generated) {
    if (!(secrets.fromEnv.adminKey && secrets.fromEnv.userSecret)) return null;
    return [
      '',
      `${GUIDANCE_HEAD} at ${url} (${f.mode} mode; keys and user secret from the environment, not shown).`,
      `  Operators' dashboard: ${url}/admin`,
      docs,
      '',
      '',
    ].join('\n');
  }
  const token = signUserToken(secrets.userSecret, 'alice', 24 * 3600, f.audience);
  const lines = [
    '',
    `${GUIDANCE_HEAD} at ${url} (${f.mode} mode).`,
    ...(secrets.fromEnv.adminKey
      ? ['  Admin key: from the environment (not shown).']
      : [`  Admin key (printed once; also in ${f.dataDir}/secrets.json, mode 0600):`, `    ${secrets.adminKey}`]),
    `  Operators' dashboard: ${url}/admin (sign in with the admin key).`,
    '',
  ];
  const demo = f.demoSale;
  if (demo) {
    lines.push(
      `  Demo sale ${demo.id} opens at ${new Date(demo.startsAt).toISOString()}.`,
      secrets.demo
        ? `  In a browser: ${url}/sales/${demo.id} (sign in with any name; two windows = two buyers).`
        : `  In a browser: ${url}/sales/${demo.id} (with a token from npx seckill token <userId>: demo mode is off).`,
      '  Or with curl:',
      `    TOKEN=${token}`,
      `    curl -s ${url}/api/sales/${demo.id}`,
      `    PATH_ID=$(curl -s -X POST -H "authorization: Bearer $TOKEN" ${url}/api/sales/${demo.id}/path | sed 's/.*"path":"\\([^"]*\\)".*/\\1/')`,
      `    curl -s -X POST -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"quantity":1}' ${url}/api/sales/${demo.id}/buy/$PATH_ID`,
    );
  } else {
    lines.push(
      '  No sale yet. Create one in the dashboard ("New sale") or with the CLI:',
      `    npx seckill sale create --url ${url} --name "My first sale" --stock 100 --price 9.99 --starts-in 1m`,
      '  A user token for alice (24 h), for the buying API:',
      `    TOKEN=${token}`,
    );
  }
  lines.push(
    '  More tokens: npx seckill token <userId> (the shop\'s login signs its own: docs/tokens.md).',
    docs,
    '',
    '',
  );
  return lines.join('\n');
}

/** The console warning of demo mode, printed at every start in that mode. */
export function demoBanner(reason: string | null): string {
  const bar = '  ' + '!'.repeat(78);
  return [
    '',
    bar,
    '  !! DEMO MODE: anyone can get a token for any user (POST /api/demo/token) and',
    '  !! users may pay their own orders. Fine for trying seckill; NEVER for a real sale.',
    `  !! On because of: ${reason ?? 'SECKILL_DEMO'}.`,
    '  !! For production set SECKILL_USER_SECRET and SECKILL_ADMIN_KEY (demo stays off),',
    '  !! or SECKILL_DEMO=0. See README, "Demo mode".',
    bar,
    '',
    '',
  ].join('\n');
}
