// The HTTP client of the tests: one keep-alive pool, JSON in and out, and a variant with a deadline
// for tests where a hang must fail rather than be waited for.
import { Agent, request } from 'undici';

/**
 * Keep-alive pool for tests that fire thousands of requests at once. An idle connection is
 * dropped after 1 s, well before seckill closes it (Node's 5 s keepAliveTimeout): a loaded machine
 * runs the client's timers seconds late, and a request sent on a connection the server has just
 * closed fails with "other side closed" / ECONNRESET without ever reaching it.
 */
export const agent = new Agent({ connections: 128, pipelining: 1, keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000 });

export interface Reply<T = any> { // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  text: string;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Sent as is, instead of JSON.stringify(body). */
  rawBody?: string;
  headers?: Record<string, string>;
  /** Abort the request (it rejects) when no full answer came within this many ms. */
  timeoutMs?: number;
}

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  json: unknown;
}

async function send(base: string, method: string, url: string, o: CallOptions): Promise<Raw> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body: string | undefined;
  if (o.rawBody !== undefined) body = o.rawBody;
  else if (o.body !== undefined) body = JSON.stringify(o.body);
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  const signal = o.timeoutMs === undefined ? undefined : AbortSignal.timeout(o.timeoutMs);
  const res = await request(base + url, { method: method as 'GET', headers, body, dispatcher: agent, signal });
  const text = await res.body.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/** One request; the body is the parsed JSON (undefined when there is none). */
export async function call(base: string, method: string, url: string, o: CallOptions = {}): Promise<Reply> {
  const r = await send(base, method, url, o);
  return { status: r.status, headers: r.headers, body: r.json, text: r.text };
}

/** What the tests read in an answer body, typed (the rest is there as unknown). */
export interface ApiBody {
  orderId?: string;
  status?: string;
  quantity?: number;
  path?: string;
  orders?: Array<{ orderId: string }>;
  error?: { code?: string; message?: string };
  [k: string]: unknown;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ApiBody;
  text: string;
}

/** One request that must be answered within `timeoutMs`; the body is {} when there is no JSON. */
export async function timedCall(base: string, method: 'GET' | 'POST', url: string, o: { token?: string; body?: unknown }, timeoutMs: number): Promise<Answer> {
  const r = await send(base, method, url, { ...o, timeoutMs });
  return { status: r.status, headers: r.headers, body: (r.json ?? {}) as ApiBody, text: r.text };
}
