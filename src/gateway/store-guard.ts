import { SeckillError } from '../domain/errors.js';
import type { Breaker } from './breaker.js';

/**
 * Puts the named async methods of a backing store (the database, the Redis engine) behind a
 * circuit breaker: a failure of the store — down, slow, refused connection — becomes 503 busy
 * with nothing changed, and while the breaker is open calls are refused at once instead of
 * waiting on timeouts. Other members pass through untouched; methods run on the store itself.
 */
export function guardStore<T extends object>(store: T, breaker: Breaker, methods: ReadonlyArray<keyof T>, what: string): T {
  const guarded = new Set<PropertyKey>(methods as ReadonlyArray<PropertyKey>);
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (!guarded.has(prop)) return (value as (...a: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) =>
        breaker.run(() =>
          Promise.resolve()
            .then(() => (value as (...a: unknown[]) => unknown).apply(target, args))
            .catch((err: unknown) => {
              if (err instanceof SeckillError) throw err;
              throw new SeckillError('busy', `The ${what} is unavailable; nothing was changed. Try again shortly.`, 1, err);
            }),
        );
    },
  });
}
