import { SeckillError } from '../domain/errors.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * A circuit breaker for one backing store. After `threshold` failures in a row it opens: calls
 * are refused at once with 503 busy (no waiting on a store that is down) for `cooldownMs`;
 * then one call probes (half-open), and a success closes it again by itself.
 */
export class Breaker {
  private failures = 0;
  private openUntil = 0;
  private probing = false;
  opened = 0;

  constructor(
    readonly name: string,
    private readonly threshold = 5,
    private readonly cooldownMs = 1000,
  ) {}

  get state(): BreakerState {
    if (this.failures < this.threshold) return 'closed';
    return Date.now() < this.openUntil ? 'open' : 'half-open';
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.probing)) {
      throw new SeckillError('busy', `The ${this.name} is unavailable; nothing was changed. Try again shortly.`, Math.max(1, Math.ceil(this.cooldownMs / 1000)));
    }
    const probe = state === 'half-open';
    if (probe) this.probing = true;
    try {
      const result = await fn();
      this.failures = 0;
      return result;
    } catch (err) {
      // Refusals decided by the store are answers, not failures of the store.
      if (!(err instanceof SeckillError) || err.code === 'busy') this.failed();
      throw err;
    } finally {
      if (probe) this.probing = false;
    }
  }

  private failed(): void {
    this.failures++;
    if (this.failures >= this.threshold) {
      if (this.failures === this.threshold) this.opened++;
      this.openUntil = Date.now() + this.cooldownMs;
    }
  }
}
