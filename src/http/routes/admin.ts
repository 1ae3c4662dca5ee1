import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SeckillError } from '../../domain/errors.js';
import { orderJson, type Order } from '../../domain/order.js';
import { auditJson, saleAdmin, type Sale } from '../../domain/sale.js';
import { Auth } from '../../gateway/auth.js';
import type { Services } from '../../wiring/services.js';
import { CorrectSaleBody, CreateSaleBody, EmptyBody, ListOrdersQuery, SaleIdParams, SwitchesBody } from '../schemas.js';

const CSV_COLUMNS = ['orderId', 'saleId', 'userId', 'quantity', 'priceCents', 'status', 'createdAt', 'expiresAt', 'paidAt', 'paymentRef', 'refundedAt', 'refundReason'] as const;

/** One CSV cell (also the intended purchases' export, routes/interest.ts). */
export function csvCell(v: unknown): string {
  const t = v === null || v === undefined ? '' : String(v);
  // Quote everything that could break a row, and defuse spreadsheet formulas.
  const safe = /^[=+\-@]/.test(t) ? `'${t}` : t;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

async function* csvRows(orders: AsyncIterable<Order>): AsyncIterable<string> {
  yield CSV_COLUMNS.join(',') + '\n';
  for await (const o of orders) {
    const j = orderJson(o);
    yield CSV_COLUMNS.map((c) => csvCell(j[c])).join(',') + '\n';
  }
}

/** The one operators' route a payments key may use too (the order list and its CSV export). */
const PAYMENTS_READABLE = '/api/admin/sales/:saleId/orders';

/** What the operators' routes use. */
export type AdminDeps = Pick<Services, 'auth' | 'sales' | 'orders' | 'switches' | 'setSwitches' | 'totals' | 'metrics'>;

export function adminRoutes(s: AdminDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    /** The key each request came with (its non-secret id), for the audit trail. */
    const keyIds = new WeakMap<object, string>();
    app.addHook('onRequest', async (req) => {
      // The shop's payment service (a payments key) may read a sale's orders; everything else here is admin only.
      const scope = req.routeOptions.url === PAYMENTS_READABLE ? 'payments' : 'admin';
      keyIds.set(req, s.auth.requireScope(Auth.bearer(req.headers.authorization), scope).id);
    });
    const actor = (req: object) => keyIds.get(req) ?? 'admin';
    const time = (t: string | null | undefined) => (t === undefined ? undefined : t === null ? null : Date.parse(t));

    const view = (sale: Sale) => saleAdmin(sale, Date.now(), s.sales.available(sale.id));
    const find = async (saleId: string) => {
      const sale = s.sales.get(saleId) ?? (await s.sales.find(saleId));
      if (!sale) throw new SeckillError('not_found', 'No such sale.');
      return sale;
    };

    app.post('/api/admin/sales', { schema: { body: CreateSaleBody } }, async (req, reply) => {
      const b = req.body;
      const sale = await s.sales.create({
        ...b,
        startsAt: Date.parse(b.startsAt),
        endsAt: b.endsAt === undefined ? null : Date.parse(b.endsAt),
      }, Date.now(), actor(req));
      req.log.info({ saleId: sale.id, stock: sale.stock }, 'sale created');
      reply.code(201);
      return view(sale);
    });

    // Operators' switches: refuse every buy (503 busy), degraded mode (order status by polling only).
    app.get('/api/admin/switches', async () => s.switches.values());
    app.post('/api/admin/switches', { schema: { body: SwitchesBody } }, async (req) => {
      const before = s.switches.values();
      const after = await s.setSwitches(req.body);
      const changes: Record<string, [unknown, unknown]> = {};
      for (const k of Object.keys(after) as (keyof typeof after)[]) if (before[k] !== after[k]) changes[k] = [before[k], after[k]];
      // The switches live outside the database: their record is written after the fact, and a
      // database that cannot take it does not undo a switch an operator needed.
      await s.sales.recordSwitches(actor(req), changes).catch((err: unknown) => req.log.error({ err, changes }, 'switch change not recorded in the audit trail'));
      return after;
    });
    app.get('/api/admin/switches/audit', async () => ({ entries: (await s.sales.switchesHistory()).map(auditJson) }));

    app.get('/api/admin/sales', async () => ({ sales: s.sales.all().map(view) }));

    app.get('/api/admin/sales/:saleId', { schema: { params: SaleIdParams } }, async (req) => {
      const sale = (await find(req.params.saleId));
      const [t, available, pendingWrites, requests] = await Promise.all([
        s.totals.read(sale.id),
        s.sales.availableNow(sale.id),
        s.sales.pendingWrites(sale.id),
        s.metrics.allSaleRequests(sale.id),
      ]);
      return {
        sale: view(sale),
        stats: {
          stock: sale.stock,
          ...t,
          available,
          // Distributed mode: decided orders not yet copied to PostgreSQL (the totals above lag by these).
          pendingWrites,
          // Buy outcomes over all processes (distributed: each adds its counts every SECKILL_STATS_FLUSH_MS).
          requests,
        },
      };
    });

    for (const action of ['pause', 'resume'] as const) {
      app.post(`/api/admin/sales/:saleId/${action}`, { schema: { params: SaleIdParams, body: EmptyBody } }, async (req) => {
        (await find(req.params.saleId));
        const sale = await s.sales.setPaused(req.params.saleId, action === 'pause', actor(req));
        req.log.info({ saleId: sale.id, action }, 'sale paused state changed');
        return view(sale);
      });
    }

    // Correct a sale: before it opens any field, afterwards name, description and end time only.
    app.patch('/api/admin/sales/:saleId', { schema: { params: SaleIdParams, body: CorrectSaleBody } }, async (req) => {
      const b = req.body;
      const sale = await s.sales.correct(req.params.saleId, { ...b, startsAt: time(b.startsAt) ?? undefined, endsAt: time(b.endsAt) }, actor(req));
      req.log.info({ saleId: sale.id, fields: Object.keys(b) }, 'sale corrected');
      return view(sale);
    });

    app.post('/api/admin/sales/:saleId/end', { schema: { params: SaleIdParams, body: EmptyBody } }, async (req) => {
      const sale = await s.sales.end(req.params.saleId, actor(req));
      req.log.info({ saleId: sale.id }, 'sale ended');
      return view(sale);
    });

    app.post('/api/admin/sales/:saleId/archive', { schema: { params: SaleIdParams, body: EmptyBody } }, async (req) => {
      const sale = await s.sales.archive(req.params.saleId, actor(req));
      req.log.info({ saleId: sale.id }, 'sale archived');
      return view(sale);
    });

    app.get('/api/admin/sales/:saleId/audit', { schema: { params: SaleIdParams } }, async (req) => {
      const sale = await find(req.params.saleId);
      return { entries: (await s.sales.history(sale.id)).map(auditJson) };
    });

    app.get('/api/admin/sales/:saleId/orders', { schema: { params: SaleIdParams, querystring: ListOrdersQuery } }, async (req, reply) => {
      const sale = (await find(req.params.saleId));
      const { status, after } = req.query;
      if ((req.headers.accept ?? '').includes('text/csv')) {
        reply.header('content-type', 'text/csv; charset=utf-8');
        reply.header('content-disposition', `attachment; filename="orders-${sale.id}.csv"`);
        return reply.send(Readable.from(csvRows(s.orders.iterate(sale.id, status))));
      }
      const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
      if (limit < 1 || limit > 1000) throw new SeckillError('bad_request', 'limit must be 1-1000.');
      const page = await s.orders.list(sale.id, status, after, limit);
      return { orders: page.orders.map(orderJson), next: page.next };
    });
  };
}
