import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { SeckillError } from '../../domain/errors.js';
import { Auth } from '../../gateway/auth.js';
import type { QueueStreamSink } from '../../services/queue-stream.js';
import type { Services } from '../../wiring/services.js';
import { EventsQuery, SaleIdParams } from '../schemas.js';

/** What the waiting room's event stream uses. */
export type QueueEventsDeps = Pick<Services, 'auth' | 'room' | 'queueStream' | 'switches' | 'config'>;

const USER = [{ userToken: [] }];

/**
 * `GET /api/sales/:saleId/queue/events`: the waiting room's answers pushed as server-sent events
 * (event `queue`, the poll's JSON) instead of polled; holding the stream keeps the place. The
 * conventions of the order stream (routes/buying.ts): `?access_token=` since EventSource sends no
 * headers, `503 busy` in degraded mode, at most `SECKILL_SSE_PER_USER` streams per user, a comment
 * every 15 s. What is sent when: src/services/queue-stream.ts.
 */
export function queueEventsRoutes(s: QueueEventsDeps): FastifyPluginAsyncTypebox {
  /** Open queue streams per user (apart from the order streams' count). */
  const openStreams = new Map<string, number>();

  return async (app) => {
    // Hijacked streams would hold app.close() until their clients leave: ended first.
    app.addHook('preClose', (done) => {
      s.queueStream.closeAll();
      done();
    });

    app.get('/api/sales/:saleId/queue/events', { schema: { params: SaleIdParams, querystring: EventsQuery, security: USER } }, async (req, reply) => {
      // A user token only, in the header or (EventSource) in the query.
      const userId = s.auth.user(Auth.bearer(req.headers.authorization) ?? req.query.access_token ?? null);
      if (s.switches.degraded) {
        throw new SeckillError('busy', 'Degraded mode: the waiting room by polling GET /api/sales/:saleId/queue only.', 5);
      }
      if ((openStreams.get(userId) ?? 0) >= s.config.ssePerUser) {
        throw new SeckillError('rate_limited', 'Too many open waiting-room streams for this user.', 5);
      }
      const { saleId } = req.params;
      // Not in line (never joined, dropped), no room, ended: the poll's refusal, as an HTTP answer.
      const first = await s.room.poll(saleId, userId);
      openStreams.set(userId, (openStreams.get(userId) ?? 0) + 1);
      const sink = eventStream(reply, () => {
        const n = (openStreams.get(userId) ?? 1) - 1;
        if (n > 0) openStreams.set(userId, n);
        else openStreams.delete(userId);
      });
      sink.event('queue', first);
      if (first.state === 'admitted') return sink.end();
      const unsubscribe = s.queueStream.subscribe(saleId, userId, sink, first);
      // The response's close: the client left (or the stream was ended here). Gone already: end now.
      reply.raw.on('close', unsubscribe);
      if (reply.raw.destroyed) unsubscribe();
    });
  };
}

/** Takes the reply over as a text/event-stream; `closed` runs once when it ends. */
function eventStream(reply: FastifyReply, closed: () => void): QueueStreamSink {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    // What the hooks set (nosniff; CORS for an allowed origin): hijacked, fastify would not send it.
    ...Object.fromEntries(Object.entries(reply.getHeaders()).filter((h): h is [string, string | number | string[]] => h[1] !== undefined)),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let ended = false;
  const write = (text: string) => {
    if (!ended && !raw.writableEnded) raw.write(text);
  };
  return {
    event: (name, data) => write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`),
    keepAlive: () => write(': keep-alive\n\n'),
    end: () => {
      if (ended) return;
      ended = true;
      closed();
      if (!raw.writableEnded) raw.end();
    },
  };
}
