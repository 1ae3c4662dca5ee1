import type { Logger } from 'pino';
import { shownValue } from '../config/errors.js';
import { AmqpSink } from './amqp-sink.js';
import { NatsSink } from './nats-sink.js';
import type { EventSink } from './sink.js';
import { WebhookSink, webhookSinkNames } from './webhook-sink.js';
import { WEBHOOK_SECRET_MIN_LENGTH } from './webhook-signature.js';

// Which sinks the outbox relay publishes to, from the environment (the fixed interface of issue
// 13). The variables' types and defaults are in src/config/config.ts's schema; what one variable
// cannot say alone (a secret needed by the URLs, a URL's scheme) is checked here. The client
// libraries are loaded by each sink on its first publish, so reading the config loads none.

/** The variables, as the env schema has read them. */
export interface SinksEnv {
  SECKILL_AMQP_URL?: string;
  SECKILL_AMQP_EXCHANGE: string;
  SECKILL_NATS_URL?: string;
  SECKILL_NATS_STREAM: string;
  SECKILL_NATS_SUBJECT_PREFIX: string;
  SECKILL_WEBHOOK_URLS?: string;
  SECKILL_WEBHOOK_SECRET?: string;
}

export interface SinksSettings {
  amqp?: { url: string; exchange: string };
  /** `servers`: one NATS URL or several, comma-separated; events go to `<subjectPrefix>.<type>`. */
  nats?: { servers: string; stream: string; subjectPrefix: string };
  webhooks?: { urls: string[]; secret: string };
}

/** The sinks configured, checked; each problem is one line naming the variable and what it takes. */
export function parseSinksEnv(e: SinksEnv, problems: string[]): SinksSettings {
  const out: SinksSettings = {};
  const amqpUrl = e.SECKILL_AMQP_URL?.trim();
  if (amqpUrl) {
    if (!hasScheme(amqpUrl, ['amqp:', 'amqps:'])) {
      problems.push(`SECKILL_AMQP_URL=${shownValue('SECKILL_AMQP_URL', amqpUrl)} is not allowed: SECKILL_AMQP_URL takes an amqp:// or amqps:// URL (e.g. amqp://user:password@rabbit.internal:5672/vhost).`);
    }
    if (e.SECKILL_AMQP_EXCHANGE.startsWith('amq.')) {
      problems.push(`SECKILL_AMQP_EXCHANGE="${e.SECKILL_AMQP_EXCHANGE}" is not allowed: names starting with "amq." are the broker's own; SECKILL_AMQP_EXCHANGE takes another name (default seckill).`);
    }
    out.amqp = { url: amqpUrl, exchange: e.SECKILL_AMQP_EXCHANGE };
  }
  const natsUrl = e.SECKILL_NATS_URL?.trim();
  if (natsUrl) {
    const servers = natsUrl.split(',').map((s) => s.trim());
    servers.forEach((s, i) => {
      if (!hasScheme(s.includes('://') ? s : `nats://${s}`, ['nats:', 'tls:'])) {
        problems.push(`SECKILL_NATS_URL: entry ${i + 1} of ${servers.length} (${shownValue('SECKILL_NATS_URL', s)}) is not a NATS server; SECKILL_NATS_URL takes nats://host:port or tls://host:port, several comma-separated.`);
      }
    });
    out.nats = { servers: servers.join(','), stream: e.SECKILL_NATS_STREAM, subjectPrefix: e.SECKILL_NATS_SUBJECT_PREFIX };
  }
  const hooks = e.SECKILL_WEBHOOK_URLS?.trim();
  if (hooks) {
    const urls = hooks.split(',').map((u) => u.trim());
    let valid = true;
    urls.forEach((u, i) => {
      if (!hasScheme(u, ['http:', 'https:'])) {
        valid = false;
        problems.push(`SECKILL_WEBHOOK_URLS: entry ${i + 1} of ${urls.length} is ${u ? `not an http:// or https:// URL (${shownValue('SECKILL_WEBHOOK_URLS', u)})` : 'empty'}; SECKILL_WEBHOOK_URLS takes absolute http(s) URLs separated by single commas.`);
      }
    });
    if (new Set(urls).size !== urls.length) problems.push('SECKILL_WEBHOOK_URLS names the same URL twice.');
    const secret = e.SECKILL_WEBHOOK_SECRET;
    if (secret === undefined || secret.length < WEBHOOK_SECRET_MIN_LENGTH) {
      problems.push(`SECKILL_WEBHOOK_SECRET=${shownValue('SECKILL_WEBHOOK_SECRET', secret)} is not allowed: SECKILL_WEBHOOK_URLS is set, so SECKILL_WEBHOOK_SECRET must be set too, to a secret of at least ${WEBHOOK_SECRET_MIN_LENGTH} characters (e.g. openssl rand -hex 32) that the receivers use to verify the signature.`);
    } else if (valid) {
      out.webhooks = { urls, secret };
    }
  }
  return out;
}

function hasScheme(text: string, schemes: readonly string[]): boolean {
  try {
    const u = new URL(text);
    return schemes.includes(u.protocol) && u.hostname !== '';
  } catch {
    return false;
  }
}

/** Optional knobs of the sinks (timeouts, retry budget): the defaults suit production; tests shorten them. */
export interface SinkTunings {
  connectTimeoutMs?: number;
  publishTimeoutMs?: number;
  webhookRequestTimeoutMs?: number;
  webhookRetryBudgetMs?: number;
}

/** One sink per configured destination: "amqp", "nats", then one "webhook:<host>" per URL. */
export function sinksFromConfig(settings: SinksSettings, log: Logger, tunings: SinkTunings = {}): EventSink[] {
  const sinks: EventSink[] = [];
  const { connectTimeoutMs, publishTimeoutMs } = tunings;
  if (settings.amqp) sinks.push(new AmqpSink({ ...settings.amqp, log, connectTimeoutMs, publishTimeoutMs }));
  if (settings.nats) sinks.push(new NatsSink({ ...settings.nats, log, connectTimeoutMs, publishTimeoutMs }));
  if (settings.webhooks) {
    const { urls, secret } = settings.webhooks;
    const names = webhookSinkNames(urls);
    urls.forEach((url, i) => sinks.push(new WebhookSink({
      url, secret, name: names[i], log,
      requestTimeoutMs: tunings.webhookRequestTimeoutMs,
      retryBudgetMs: tunings.webhookRetryBudgetMs,
    })));
  }
  return sinks;
}
