import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { SeckillError } from '../../domain/errors.js';
import { iso } from '../../domain/sale.js';
import { Auth } from '../../gateway/auth.js';
import type { Services } from '../../wiring/services.js';

/** What the outbox routes use. */
export type EventsDeps = Pick<Services, 'auth' | 'outbox'>;

const SinkName = Type.String({ minLength: 1, maxLength: 200 });
const EventId = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' });

export const DeadQuery = Type.Object(
  { sink: SinkName, limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })) },
  { additionalProperties: false },
);

export const RedriveBody = Type.Union([
  Type.Object(
    { sink: Type.Optional(SinkName), ids: Type.Optional(Type.Array(EventId, { minItems: 1, maxItems: 1000 })) },
    { additionalProperties: false },
  ),
  Type.Null(),
]);

type DeadLetter = Awaited<ReturnType<EventsDeps['outbox']['deadLetters']>>[number];

function deadJson(d: DeadLetter) {
  return { id: d.id, type: d.type, key: d.key, seq: d.seq, at: iso(d.at), deadAt: iso(d.deadAt), attempts: d.attempts, error: d.error };
}

/**
 * Operators (admin key): the outbox relay per sink (src/services/outbox-relay.ts) — backlog, sent,
 * dead letters — and redrive of dead letters.
 */
export function eventsRoutes(s: EventsDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addHook('onRequest', async (req) => {
      s.auth.requireAdmin(Auth.bearer(req.headers.authorization));
    });
    const known = (sink: string) => {
      if (!s.outbox.sinkNames().includes(sink)) {
        throw new SeckillError('not_found', `No sink named ${JSON.stringify(sink)} here; configured: ${s.outbox.sinkNames().join(', ') || 'none'}.`);
      }
      return sink;
    };

    app.get('/api/admin/events', async (_req, reply) => {
      const now = Date.now();
      const stats = await s.outbox.status();
      reply.header('cache-control', 'no-store');
      return {
        retentionHours: s.outbox.settings.retentionMs / 3600_000,
        sinks: stats.map((st) => ({
          sink: st.sink,
          backlog: st.backlog,
          sent: st.sent,
          dead: st.dead,
          oldestPendingAt: st.oldestPendingAt === null ? null : iso(st.oldestPendingAt),
          oldestPendingAgeSeconds: st.oldestPendingAt === null ? null : Math.max(0, now - st.oldestPendingAt) / 1000,
        })),
      };
    });

    app.get('/api/admin/events/dead', { schema: { querystring: DeadQuery } }, async (req) => {
      const sink = known(req.query.sink);
      const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
      if (limit < 1 || limit > 1000) throw new SeckillError('bad_request', 'limit must be 1-1000.');
      return { sink, dead: (await s.outbox.deadLetters(sink, limit)).map(deadJson) };
    });

    app.post('/api/admin/events/redrive', { schema: { body: RedriveBody } }, async (req) => {
      const body = req.body ?? {};
      const sink = body.sink === undefined ? undefined : known(body.sink);
      return { redriven: await s.outbox.redrive(sink, body.ids) };
    });
  };
}
