import type { FastifyReply } from 'fastify';
import { SeckillError } from '../domain/errors.js';

/** An open text/event-stream response: events, keep-alive comments, one end. */
export interface EventStream {
  event(name: string, data: unknown): void;
  keepAlive(): void;
  /** Ends the response (once); `closed` given to openEventStream runs then. */
  end(): void;
}

/**
 * Takes the reply over as a server-sent event stream. `closed` runs once: when the stream is ended
 * here or the client leaves. Writes after the end are dropped.
 */
export function openEventStream(reply: FastifyReply, closed: () => void): EventStream {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    // What the hooks set (nosniff; CORS for an allowed origin): hijacked, fastify would not send it.
    ...Object.fromEntries(Object.entries(reply.getHeaders()).filter((h): h is [string, string | number | string[]] => h[1] !== undefined)),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    // nginx and other proxies pass each event on at once.
    'x-accel-buffering': 'no',
  });
  let ended = false;
  const finish = () => {
    if (ended) return;
    ended = true;
    closed();
  };
  raw.on('close', finish);
  const write = (text: string) => {
    if (!ended && !raw.writableEnded) raw.write(text);
  };
  return {
    event: (name, data) => write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`),
    keepAlive: () => write(': keep-alive\n\n'),
    end: () => {
      finish();
      if (!raw.writableEnded) raw.end();
    },
  };
}

/** Open streams per user, at most `limit` each: a stream holds a connection. */
export class StreamQuota {
  private readonly open = new Map<string, number>();

  constructor(private readonly what: string) {}

  /** Counts one more stream of `holder` (refused past the limit); the returned function gives it back, once. */
  take(holder: string, limit: number): () => void {
    const n = this.open.get(holder) ?? 0;
    if (n >= limit) throw new SeckillError('rate_limited', `Too many open ${this.what} streams for this user.`, 5);
    this.open.set(holder, n + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.open.get(holder) ?? 1) - 1;
      if (left > 0) this.open.set(holder, left);
      else this.open.delete(holder);
    };
  }
}
