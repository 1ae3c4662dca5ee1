import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { SeckillError } from '../../domain/errors.js';
import { iso } from '../../domain/sale.js';
import { Auth } from '../../gateway/auth.js';
import type { InterestRow } from '../../services/interest-recorder.js';
import type { Services } from '../../wiring/services.js';
import { SaleIdParams } from '../schemas.js';
import { csvCell } from './admin.js';

/** What the intended-purchase routes use. */
export type InterestDeps = Pick<Services, 'auth' | 'sales' | 'interest'>;

/**
 * `after` is the previous page's `next`: the last user id, base64url-encoded (user ids may hold
 * any printable character; the cursor stays URL-safe and opaque).
 */
export const InterestQuery = Type.Object(
  {
    after: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,700}$' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
  },
  { additionalProperties: false },
);

const CSV_COLUMNS = ['userId', 'quantity', 'at'] as const;

const cursorOf = (userId: string) => Buffer.from(userId, 'utf8').toString('base64url');
const userOf = (cursor: string) => Buffer.from(cursor, 'base64url').toString('utf8');

function interestJson(r: InterestRow) {
  return { userId: r.userId, quantity: r.quantity, at: iso(r.at) };
}

async function* csvRows(rows: AsyncIterable<InterestRow>): AsyncIterable<string> {
  yield CSV_COLUMNS.join(',') + '\n';
  for await (const r of rows) {
    const j = interestJson(r);
    yield CSV_COLUMNS.map((c) => csvCell(j[c])).join(',') + '\n';
  }
}

/**
 * Operators (admin key): the buyers refused because a sale was sold out, once each
 * (src/services/interest-recorder.ts), as JSON pages or, with `Accept: text/csv`, all of them.
 */
export function interestRoutes(s: InterestDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addHook('onRequest', async (req) => {
      s.auth.requireAdmin(Auth.bearer(req.headers.authorization));
    });
    const find = async (saleId: string) => {
      const sale = s.sales.get(saleId) ?? (await s.sales.find(saleId));
      if (!sale) throw new SeckillError('not_found', 'No such sale.');
      return sale;
    };

    app.get('/api/admin/sales/:saleId/interest', { schema: { params: SaleIdParams, querystring: InterestQuery } }, async (req, reply) => {
      const sale = await find(req.params.saleId);
      if ((req.headers.accept ?? '').includes('text/csv')) {
        reply.header('content-type', 'text/csv; charset=utf-8');
        reply.header('content-disposition', `attachment; filename="interest-${sale.id}.csv"`);
        return reply.send(Readable.from(csvRows(s.interest.iterate(sale.id))));
      }
      const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
      if (limit < 1 || limit > 1000) throw new SeckillError('bad_request', 'limit must be 1-1000.');
      const after = req.query.after === undefined ? undefined : userOf(req.query.after);
      const page = await s.interest.list(sale.id, after, limit);
      return { interest: page.rows.map(interestJson), next: page.next === null ? null : cursorOf(page.next) };
    });

    // The dashboard's line on the sale's card: how many buyers were refused, and the units they
    // asked for; with this process's recorder counters (refusals dropped by a full queue, tokens
    // that did not verify), all sales together.
    app.get('/api/admin/sales/:saleId/interest/summary', { schema: { params: SaleIdParams } }, async (req) => {
      const sale = await find(req.params.saleId);
      return { ...(await s.interest.summary(sale.id)), recording: s.interest.enabled, thisProcess: { ...s.interest.stats } };
    });
  };
}
