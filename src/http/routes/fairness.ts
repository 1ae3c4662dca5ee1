import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FAIRNESS_CSV_COLUMNS, type FairnessUser } from '../../domain/fairness.js';
import { iso } from '../../domain/sale.js';
import { Auth } from '../../gateway/auth.js';
import type { Services } from '../../wiring/services.js';
import { SaleIdParams } from '../schemas.js';
import { csvCell } from './admin.js';

/** What the fairness routes use. */
export type FairnessDeps = Pick<Services, 'auth' | 'fairness'>;

/** `botPrefix`: users whose id starts with it count as bots (the bench names its bots `bot-N`); empty: none. */
export const FairnessQuery = Type.Object(
  { botPrefix: Type.String({ maxLength: 64, default: 'bot-' }) },
  { additionalProperties: false },
);

const Tally = Type.Object({ users: Type.Integer(), units: Type.Integer() });
const Share = Type.Union([Type.Number(), Type.Null()]);

/** The JSON answer (docs/fairness.md, docs/http-api.md). */
export const FairnessReply = Type.Object({
  saleId: Type.String(),
  opensAt: Type.String(),
  method: Type.Union([Type.Literal('random'), Type.Literal('fifo'), Type.Null()]),
  users: Type.Integer(),
  units: Type.Integer(),
  arrival: Type.Union([Type.Object({ beforeOpen: Tally, afterOpen: Tally, unknown: Tally }), Type.Null()]),
  arrivalUnknown: Type.Union([Type.String(), Type.Null()]),
  fifoInversions: Type.Union([Type.Object({ inversions: Type.Integer(), pairs: Type.Integer(), admitted: Type.Integer() }), Type.Null()]),
  bots: Type.Object({ prefix: Type.String(), users: Type.Integer(), units: Type.Integer(), shareOfUsers: Share, shareOfUnits: Share }),
});

function csvOf(users: readonly FairnessUser[], botPrefix: string): string {
  const rows = users.map((u) => {
    const j = { ...u, firstJoinedAt: iso(u.firstJoinedAt), joinedAt: iso(u.joinedAt), admittedAt: iso(u.admittedAt), bot: botPrefix !== '' && u.userId.startsWith(botPrefix) };
    return FAIRNESS_CSV_COLUMNS.map((c) => csvCell(j[c])).join(',') + '\n';
  });
  return FAIRNESS_CSV_COLUMNS.join(',') + '\n' + rows.join('');
}

/**
 * Operators (admin key): a sale's fairness report (src/domain/fairness.ts) as JSON, and its rows,
 * one per user seen, as CSV (`Accept: text/csv`).
 */
export function fairnessRoutes(s: FairnessDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addHook('onRequest', async (req) => {
      s.auth.requireAdmin(Auth.bearer(req.headers.authorization));
    });

    // One route, two forms: JSON, or with `Accept: text/csv` one row per user (as the orders list does).
    app.get('/api/admin/sales/:saleId/fairness', {
      schema: {
        params: SaleIdParams,
        querystring: FairnessQuery,
        response: { 200: { content: { 'application/json': { schema: FairnessReply }, 'text/csv': { schema: Type.String() } } } },
      },
    }, async (req, reply) => {
      if ((req.headers.accept ?? '').includes('text/csv')) {
        const { sale, users } = await s.fairness.users(req.params.saleId);
        reply.header('content-type', 'text/csv; charset=utf-8');
        reply.header('content-disposition', `attachment; filename="fairness-${sale.id}.csv"`);
        return reply.send(csvOf(users, req.query.botPrefix));
      }
      const { sale, report } = await s.fairness.report(req.params.saleId, req.query.botPrefix);
      return { saleId: sale.id, opensAt: iso(sale.startsAt) as string, method: sale.waitingRoom?.method ?? null, ...report };
    });
  };
}
