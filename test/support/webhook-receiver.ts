// A webhook receiver in the test process: checks each delivery's signature, keeps the events in
// arrival order, and refuses (with a chosen status) the events `refuse` picks.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhook } from '../../src/sinks/webhook-signature.js';

export interface ReceivedEvent {
  id: string;
  type: string;
  seq?: number;
  at: string;
  order?: { orderId: string; userId: string; status: string };
}

export class WebhookReceiver {
  readonly events: ReceivedEvent[] = [];
  badSignatures = 0;
  /** Answer this status instead of 204 for an event it returns a status for. */
  refuse: (e: ReceivedEvent) => number | null = () => null;
  /** Answer each delivery after this long (keeps the relay mid-publish). */
  delayMs = 0;
  private constructor(private readonly server: http.Server, readonly url: string, private readonly secret: string) {}

  static async start(secret: string): Promise<WebhookReceiver> {
    let self: WebhookReceiver | null = null;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const r = self!;
        if (!verifyWebhook(r.secret, body, req.headers[TIMESTAMP_HEADER] as string | undefined, req.headers[SIGNATURE_HEADER] as string | undefined)) {
          r.badSignatures++;
          res.writeHead(401).end();
          return;
        }
        const e = JSON.parse(body) as ReceivedEvent;
        const status = r.refuse(e);
        if (status !== null) {
          res.writeHead(status).end();
          return;
        }
        r.events.push(e);
        if (r.delayMs > 0) setTimeout(() => res.writeHead(204).end(), r.delayMs);
        else res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new WebhookReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, secret);
    return self;
  }

  /** Each order's events in first-arrival order (duplicates dropped: receivers de-duplicate by id). */
  byOrder(): Map<string, ReceivedEvent[]> {
    return eventsByOrder(this.events);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Events from any sink, per order in first-arrival order, duplicates (same id) dropped. */
export function eventsByOrder<E extends { id: string; order?: { orderId: string } }>(events: readonly E[]): Map<string, E[]> {
  const seen = new Set<string>();
  const out = new Map<string, E[]>();
  for (const e of events) {
    if (!e.order || seen.has(e.id)) continue;
    seen.add(e.id);
    const list = out.get(e.order.orderId) ?? [];
    list.push(e);
    out.set(e.order.orderId, list);
  }
  return out;
}
