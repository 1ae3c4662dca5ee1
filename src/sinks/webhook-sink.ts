import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Agent } from 'undici';
import type { OutboxEvent } from '../domain/events.js';
import type { EventSink } from './sink.js';
import { SinkError, messageOf } from './sink-error.js';
import { EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook } from './webhook-signature.js';

export interface WebhookSinkOptions {
  url: string;
  secret: string;
  /** `webhook:<host>` (see webhookSinkNames). */
  name: string;
  log: Logger;
  /** One POST: connect, headers and body. */
  requestTimeoutMs?: number;
  /**
   * Retries of one event within one publish call stop once this much time has passed since its
   * first attempt; the publish then rejects and the relay retries later (or dead-letters).
   */
  retryBudgetMs?: number;
  /** Exponential backoff between attempts: base, doubling, capped; each wait jittered to 50–100 %. */
  backoffMs?: { base: number; max: number };
  /** POSTs in flight at once within a batch (events of different orders only). */
  concurrency?: number;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Statuses worth another attempt: the receiver is busy or broken for now, not refusing. */
const RETRYABLE = new Set([408, 425, 429]);

/**
 * One webhook URL: each event is a JSON POST of its body, signed (webhook-signature.ts); up to
 * `concurrency` orders' events at once, each order's in the batch's order; a 2xx confirms it. A failed attempt (network error,
 * timeout, 5xx, 408/425/429) is retried with exponential backoff and jitter within a small budget;
 * other 4xx and 3xx are permanent (SinkError.permanent). Events before the failed one stay
 * delivered: the relay's retry sends them again, and receivers de-duplicate by Seckill-Event-Id.
 */
export class WebhookSink implements EventSink {
  readonly name: string;
  private agent: Promise<{ agent: Agent; request: typeof import('undici').request }> | null = null;
  private readonly closing = new AbortController();
  private readonly requestTimeoutMs: number;
  private readonly retryBudgetMs: number;
  private readonly backoff: { base: number; max: number };
  private readonly concurrency: number;

  constructor(private readonly opts: WebhookSinkOptions) {
    this.name = opts.name;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
    this.retryBudgetMs = opts.retryBudgetMs ?? 10_000;
    this.backoff = opts.backoffMs ?? { base: 250, max: 4000 };
    this.concurrency = opts.concurrency ?? 16;
  }

  async publish(events: readonly OutboxEvent[]): Promise<void> {
    // Different orders' events go out side by side (a POST costs a round trip, one after the
    // other capped delivery at a few hundred events/s); one order's events stay one after the other.
    const byKey = new Map<string, OutboxEvent[]>();
    for (const ev of events) {
      const line = byKey.get(ev.key);
      if (line) line.push(ev);
      else byKey.set(ev.key, [ev]);
    }
    const lines = [...byKey.values()];
    let next = 0;
    let failure: unknown = null;
    const worker = async (): Promise<void> => {
      while (failure === null && next < lines.length) {
        const line = lines[next++];
        try {
          for (const ev of line) await this.deliver(ev);
        } catch (err) {
          failure ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, lines.length) }, worker));
    if (failure !== null) throw failure;
  }

  async close(): Promise<void> {
    this.closing.abort();
    const a = await this.agent?.catch(() => null);
    this.agent = null;
    await a?.agent.destroy().catch(() => undefined);
  }

  private client(): Promise<{ agent: Agent; request: typeof import('undici').request }> {
    this.agent ??= import('undici').then((u) => ({
      agent: new u.Agent({ connectTimeout: this.requestTimeoutMs, headersTimeout: this.requestTimeoutMs, bodyTimeout: this.requestTimeoutMs, keepAliveTimeout: 10_000 }),
      request: u.request,
    }));
    return this.agent;
  }

  /** One event, retried until a 2xx, a permanent refusal, or the budget is spent. */
  private async deliver(ev: OutboxEvent): Promise<void> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (this.closing.signal.aborted) throw new SinkError(this.name, 'closed');
      const failure = await this.attempt(ev);
      if (!failure) return;
      if (failure.permanent) throw failure;
      const wait = Math.max(this.backoffDelay(attempt), failure.retryAfterMs ?? 0);
      if (Date.now() + wait - started > this.retryBudgetMs) {
        throw new SinkError(this.name, `event ${ev.id} not delivered after ${attempt} attempt(s): ${failure.message}`, false, { cause: failure });
      }
      this.opts.log.debug({ sink: this.name, eventId: ev.id, attempt, waitMs: wait, err: failure.message }, 'event sink: webhook attempt failed, retrying');
      await sleep(wait, undefined, { signal: this.closing.signal }).catch(() => undefined);
    }
  }

  private backoffDelay(attempt: number): number {
    const ceiling = Math.min(this.backoff.max, this.backoff.base * 2 ** (attempt - 1));
    return Math.round(ceiling * (0.5 + Math.random() * 0.5));
  }

  /** undefined when the receiver confirmed; otherwise why not, and whether to try again. */
  private async attempt(ev: OutboxEvent): Promise<(SinkError & { retryAfterMs?: number }) | undefined> {
    const { agent, request } = await this.client();
    // Signed at each attempt: the timestamp is the sending time, checked against the receiver's clock.
    const { timestamp, signature } = signWebhook(this.opts.secret, ev.body, Date.now() / 1000);
    const abort = AbortSignal.any([AbortSignal.timeout(this.requestTimeoutMs), this.closing.signal]);
    try {
      const res = await request(this.opts.url, {
        dispatcher: agent,
        method: 'POST',
        signal: abort,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'seckill-webhook/1',
          [EVENT_ID_HEADER]: ev.id,
          [EVENT_TYPE_HEADER]: ev.type,
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signature,
        },
        body: ev.body,
      });
      await res.body.dump({ limit: 64 * 1024, signal: abort }).catch(() => undefined);
      const s = res.statusCode;
      if (s >= 200 && s < 300) return undefined;
      const retryable = s >= 500 || RETRYABLE.has(s);
      const err: SinkError & { retryAfterMs?: number } = new SinkError(this.name, `HTTP ${s} for event ${ev.id}`, !retryable);
      err.retryAfterMs = retryAfterMs(res.headers['retry-after']);
      return err;
    } catch (err) {
      // The abort signal or undici's own timers, whichever fired first: the same failure.
      const code = (err as { code?: string }).code ?? '';
      const timedOut = (abort.aborted && !this.closing.signal.aborted) || TIMEOUT_CODES.has(code);
      const why = timedOut ? `no answer within ${this.requestTimeoutMs} ms` : messageOf(err);
      return new SinkError(this.name, `POST failed for event ${ev.id}: ${why}`, false, { cause: err });
    }
  }
}

/** Retry-After in seconds (the date form is ignored: the backoff decides then). */
function retryAfterMs(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  return v && /^[0-9]{1,6}$/.test(v.trim()) ? Number(v.trim()) * 1000 : undefined;
}

/**
 * Sink names of the webhook URLs, stable when the list is reordered: `webhook:<host[:port]>`, and
 * `webhook:<host>#<n>` (n from 1, in list order) for URLs sharing a host.
 */
export function webhookSinkNames(urls: readonly string[]): string[] {
  const hosts = urls.map((u) => new URL(u).host);
  const seen = new Map<string, number>();
  return hosts.map((h) => {
    const shared = hosts.filter((x) => x === h).length > 1;
    const n = (seen.get(h) ?? 0) + 1;
    seen.set(h, n);
    return shared ? `webhook:${h}#${n}` : `webhook:${h}`;
  });
}
