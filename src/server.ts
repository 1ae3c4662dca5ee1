import cluster from 'node:cluster';
import type { Config } from './config/config.js';
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

  try {
    if (secrets.generated && config.demoSale) await createDemoSale(services);
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
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  log.info({ url, dataDir: config.dataDir, sales: services.sales.all().length }, 'seckill listening');

  if (secrets.generated) printFirstStart(services, url);
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

async function createDemoSale(s: Services): Promise<void> {
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
}

/** Printed once, on the first start of a data dir: the only time the admin key is shown. */
function printFirstStart(s: Services, url: string): void {
  const demo = s.sales.all()[0];
  const token = signUserToken(s.secrets.userSecret, 'alice', 24 * 3600, s.config.tokenAudience);
  const lines = [
    '',
    '  seckill is ready.',
    `  Admin key (printed once; also in ${s.config.dataDir}/secrets.json, mode 0600):`,
    `    ${s.secrets.adminKey}`,
    '',
  ];
  if (demo) {
    lines.push(
      `  Demo sale ${demo.id} opens at ${new Date(demo.startsAt).toISOString()}.`,
      s.secrets.demo
        ? `  In a browser: ${url}/sales/${demo.id} (sign in with any name; two windows = two buyers),`
        : `  In a browser: ${url}/sales/${demo.id} (with a token from npx seckill token <userId>: demo mode is off),`,
      `  operators' dashboard: ${url}/admin (the admin key above). Or with curl:`,
      `    TOKEN=${token}`,
      `    curl -s ${url}/api/sales/${demo.id}`,
      `    PATH_ID=$(curl -s -X POST -H "authorization: Bearer $TOKEN" ${url}/api/sales/${demo.id}/path | sed 's/.*"path":"\\([^"]*\\)".*/\\1/')`,
      `    curl -s -X POST -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"quantity":1}' ${url}/api/sales/${demo.id}/buy/$PATH_ID`,
      '  More tokens: npx seckill token <userId>',
      '',
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
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
