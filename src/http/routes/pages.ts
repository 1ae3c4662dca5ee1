import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebConfig } from '../../config/shop.js';
import type { Services } from '../../wiring/services.js';
import { demoRoutes, liveRoutes, type DemoDeps, type LiveDeps } from './page-api.js';

/**
 * The pages: `/` (sales), `/sales/:saleId` (the sale page) and `/admin` (the operators'
 * dashboard), plus the two API routes only they need (page-api.ts).
 *
 * Static edge: every file is read, fingerprinted and compressed once, at startup. Assets are served
 * at `/assets/<name>.<hash>.<ext>` and cached for a year as immutable; the HTML pages name them by
 * those paths and are the same bytes for every user and every moment (the user and the clock live
 * in the browser), so a CDN may keep them too, for a minute. Everything that changes comes from
 * the API: `/api/time` (never cached) and `/api/sales/:id` (cached ≤ 1 s).
 */

const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
const require = createRequire(import.meta.url);

/** Asset name → source file. */
const ASSET_SOURCES: Record<string, string> = {
  'sale.css': path.join(WEB_DIR, 'sale.css'),
  'sale.js': path.join(WEB_DIR, 'sale.js'),
  'index.js': path.join(WEB_DIR, 'index.js'),
  'admin.css': path.join(WEB_DIR, 'admin.css'),
  'admin.js': path.join(WEB_DIR, 'admin.js'),
  // The modules the pages share (api client, server clock, labels).
  'api.js': path.join(WEB_DIR, 'api.js'),
  'clock.js': path.join(WEB_DIR, 'clock.js'),
  'ui.js': path.join(WEB_DIR, 'ui.js'),
  // The sale page's proof-of-work Web Worker (docs/challenges.md); sale.html names its path.
  'pow-worker.js': path.join(WEB_DIR, 'pow-worker.js'),
  // uPlot (MIT), the dashboard's charts: its browser build, as published.
  'uplot.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
  'uplot.css': require.resolve('uplot/dist/uPlot.min.css'),
};

/** Page path → HTML template. */
const PAGES = { index: 'index.html', sale: 'sale.html', admin: 'admin.html' } as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';
const PAGE_CACHE = 'public, max-age=60';

/**
 * No inline script or style anywhere: the pages run under a strict policy. The shop's logo may
 * come from its own origin; only the buyers' pages may be framed, and only by the origins
 * SECKILL_FRAME_ANCESTORS names (none by default; the dashboard never).
 */
function securityHeaders(web: WebConfig | undefined, framable: boolean): Record<string, string> {
  const logo = web?.shop.logoUrl?.startsWith('https:') ? ` ${new URL(web.shop.logoUrl).origin}` : '';
  const ancestors = framable && web && web.frameAncestors.length > 0 ? web.frameAncestors.join(' ') : null;
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data:${logo}`,
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${ancestors ?? "'none'"}`,
  ].join('; ');
  const headers: Record<string, string> = { 'content-security-policy': csp, 'referrer-policy': 'no-referrer' };
  // X-Frame-Options cannot name origins: it goes when some may frame (CSP governs then).
  if (ancestors === null) headers['x-frame-options'] = 'DENY';
  return headers;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);

/**
 * JSON that may stand inside a <script type="application/json"> element: the parser ends the
 * element at `</script`, and entities are not decoded there, so `<`, `>` and `&` are written as
 * JSON escapes (JSON.parse reads them back unchanged).
 */
const scriptJson = (value: unknown) =>
  JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The header's link back to the shop: its logo and name, or seckill's. */
function brandHtml(web: WebConfig | undefined): string {
  const shop = web?.shop;
  const href = escapeHtml(shop?.url ?? '/');
  const name = escapeHtml(shop?.name ?? 'seckill');
  const logo = shop?.logoUrl ? `<img class="logo" src="${escapeHtml(shop.logoUrl)}" alt="" height="28">` : '';
  return `<a class="brand${logo ? ' has-logo' : ''}" id="brand" href="${href}">${logo}<span>${name}</span></a>`;
}

interface Served {
  body: Buffer;
  gzip: Buffer | null;
  br: Buffer | null;
  type: string;
  /** Of the identity bytes; the compressed variants add `-br` / `-gz` (a strong ETag per representation). */
  etag: string;
  cacheControl: string;
  /** Pages only: their CSP and framing headers. */
  security: Record<string, string> | null;
}

function served(body: Buffer, type: string, cacheControl: string, security: Record<string, string> | null = null): Served {
  const gzip = zlib.gzipSync(body, { level: 9 });
  const br = zlib.brotliCompressSync(body, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length },
  });
  return {
    body,
    gzip: gzip.length < body.length ? gzip : null,
    br: br.length < body.length ? br : null,
    type,
    etag: crypto.createHash('sha256').update(body).digest('base64url').slice(0, 22),
    cacheControl,
    security,
  };
}

/** The fingerprinted assets and the pages that name them, built once. */
export interface WebBundle {
  /** `/assets/…` file name → content. */
  assets: Map<string, Served>;
  /** Asset name (`sale.js`) → its public path (`/assets/sale.1a2b3c4d5e6f.js`). */
  paths: Record<string, string>;
  pages: Record<keyof typeof PAGES, Served>;
}

/**
 * A page module's imports of its siblings (`from './api.js'`, `import './x.js'`). The browser would
 * resolve them to `/assets/api.js`, which has no fingerprint and so could not be cached for good:
 * they are pointed at the fingerprinted paths instead.
 */
const SIBLING_IMPORT = /(\bfrom\s*|\bimport\s*)(['"])\.\/([\w-]+\.js)\2/g;

export function buildWebBundle(opts: { demo: boolean; web?: WebConfig }): WebBundle {
  const assets = new Map<string, Served>();
  const paths: Record<string, string> = {};
  const pending = new Set<string>();
  /** Fingerprint an asset (after its imports: their paths are part of its bytes) and return its path. */
  const publish = (name: string): string => {
    const done = paths[name];
    if (done) return done;
    const file = ASSET_SOURCES[name];
    if (!file) throw new Error(`A page module imports an unknown asset: ${name}`);
    if (pending.has(name)) throw new Error(`The page modules import each other in a cycle through ${name}`);
    pending.add(name);
    let body = fs.readFileSync(file);
    if (name.endsWith('.js') && file.startsWith(WEB_DIR)) {
      body = Buffer.from(body.toString('utf8').replace(SIBLING_IMPORT, (_m, lead: string, q: string, dep: string) => `${lead}${q}${publish(dep)}${q}`));
    }
    const hash = crypto.createHash('sha256').update(body).digest('hex').slice(0, 12);
    const ext = path.extname(name);
    const fileName = `${path.basename(name, ext)}.${hash}${ext}`;
    assets.set(fileName, served(body, TYPES[ext], IMMUTABLE));
    pending.delete(name);
    return (paths[name] = `/assets/${fileName}`);
  };
  for (const name of Object.keys(ASSET_SOURCES)) publish(name);
  // The shop's settings for the pages' scripts, in every page: no request needed to read them.
  const shop = opts.web?.shop;
  const shopConfig = `<script type="application/json" id="shop-config">${scriptJson({
    name: shop?.name ?? null,
    url: shop?.url ?? null,
    logoUrl: shop?.logoUrl ?? null,
    currency: shop?.currency ?? 'USD',
    locale: shop?.locale ?? 'en-US',
    signInUrl: shop?.signInUrl ?? null,
    checkoutUrl: shop?.checkoutUrl ?? null,
  })}</script>\n`;
  const page = (template: string, framable: boolean): Served => {
    const html = fs.readFileSync(path.join(WEB_DIR, template), 'utf8')
      .replace(/\{\{asset ([\w.-]+)\}\}/g, (_m, name: string) => {
        const p = paths[name];
        if (!p) throw new Error(`${template} names an unknown asset: ${name}`);
        return p;
      })
      // A property of the deployment, the same for everyone: not user- or time-specific.
      .replace(/\{\{demo\}\}/g, opts.demo ? 'on' : 'off')
      .replace(/\{\{brand\}\}/g, () => brandHtml(opts.web))
      .replace(/\{\{shop-name\}\}/g, () => escapeHtml(shop?.name ?? 'seckill'))
      .replace('</head>', () => `${shopConfig}</head>`);
    return served(Buffer.from(html), TYPES['.html'], PAGE_CACHE, securityHeaders(opts.web, framable));
  };
  return {
    assets,
    paths,
    pages: { index: page(PAGES.index, true), sale: page(PAGES.sale, true), admin: page(PAGES.admin, false) },
  };
}

function send(req: FastifyRequest, reply: FastifyReply, f: Served): FastifyReply {
  const accepts = String(req.headers['accept-encoding'] ?? '');
  const [body, encoding, tag] =
    f.br && /\bbr\b/.test(accepts) ? [f.br, 'br', `"${f.etag}-br"`]
    : f.gzip && /\bgzip\b/.test(accepts) ? [f.gzip, 'gzip', `"${f.etag}-gz"`]
    : [f.body, null, `"${f.etag}"`];
  reply
    .header('cache-control', f.cacheControl)
    .header('etag', tag)
    .header('vary', 'accept-encoding')
    .header('x-content-type-options', 'nosniff');
  if (f.security) reply.headers(f.security);
  if (etagMatches(req.headers['if-none-match'], tag)) return reply.code(304).send();
  reply.type(f.type);
  if (encoding) reply.header('content-encoding', encoding);
  return reply.send(body);
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.trim() === '*' || header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

const SALE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ASSET_NAME = /^[a-z]+(?:-[a-z]+)*\.[0-9a-f]{12}\.(?:js|css)$/;

export type PagesDeps = Pick<Services, 'secrets' | 'config'> & LiveDeps & DemoDeps;

export function pagesRoutes(s: PagesDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    const web = buildWebBundle({ demo: s.secrets.demo, web: s.config.web });

    app.get('/', async (req, reply) => send(req, reply, web.pages.index));
    app.get('/admin', async (req, reply) => send(req, reply, web.pages.admin));
    // One page for every sale: the script reads the id from the address.
    app.get('/sales/:saleId', async (req, reply) => {
      const { saleId } = req.params as { saleId: string };
      if (!SALE_ID.test(saleId)) return reply.callNotFound();
      return send(req, reply, web.pages.sale);
    });
    app.get('/assets/:file', async (req, reply) => {
      const { file } = req.params as { file: string };
      const asset = ASSET_NAME.test(file) ? web.assets.get(file) : undefined;
      if (!asset) return reply.callNotFound();
      return send(req, reply, asset);
    });

    app.register(liveRoutes(s));
    if (s.secrets.demo) app.register(demoRoutes(s));
  };
}
