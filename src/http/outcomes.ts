import type { Metrics } from '../services/metrics.js';
import type { SaleService } from '../services/sale-service.js';

export const BUY_ROUTE = '/api/sales/:saleId/buy/:path';
export const PATH_ROUTE = '/api/sales/:saleId/path';

/** Seconds: the operators' "refuse all buys" switch asks buyers to wait longer than other busy answers (1 s). */
export const SWITCH_RETRY_AFTER = 5;

export interface OutcomeDeps {
  metrics: Pick<Metrics, 'countRequest' | 'countBuy'>;
  sales: Pick<SaleService, 'get'>;
}

/**
 * The one place an answer is counted, whoever gave it (the raw fast path or fastify's
 * onResponse): by route and outcome, and a buy also per sale, for a sale this process knows
 * (an unknown id must not grow the per-sale maps).
 */
export function countAnswer(d: OutcomeDeps, route: string, saleId: string | undefined, outcome: string, latencyMs: number): void {
  d.metrics.countRequest(route, outcome);
  if (route === BUY_ROUTE && saleId && d.sales.get(saleId)) d.metrics.countBuy(saleId, outcome, latencyMs);
}
