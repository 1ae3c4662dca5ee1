import { SeckillError } from '../domain/errors.js';
import type { Breaker } from './breaker.js';

/** Names of T's methods that do not return a promise: local reads and lazy iterators, no store call. */
export type LocalMethods<T> = {
  [K in keyof T]-?: T[K] extends (...args: never[]) => infer R ? (R extends PromiseLike<unknown> ? never : K) : never;
}[keyof T];

/**
 * The methods `guardStore` must leave alone. The compiler derives which they are from the
 * interface (every method that returns no promise), so the caller cannot forget one; every other
 * method, including one added later, is guarded without being named anywhere.
 */
export type LocalMembers<T> = { readonly [K in LocalMethods<T>]: true };

/**
 * Puts every async method of a backing store (the database, the Redis engine) behind a circuit
 * breaker: a failure of the store — down, slow, refused connection — becomes 503 busy with nothing
 * changed, and while the breaker is open calls are refused at once instead of waiting on timeouts.
 * The methods named in `local` and the non-function members pass through; methods run on the
 * store itself. The store's own lifecycle (ping, close) is its owner's: the wiring calls it on
 * the unguarded store, so that a check or a shutdown is never refused by an open breaker.
 */
export function guardStore<T extends object>(store: T, breaker: Breaker, what: string, local: LocalMembers<T>): T {
  const passThrough = new Set<PropertyKey>(Object.keys(local));
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (passThrough.has(prop)) return method.bind(target);
      return (...args: unknown[]) =>
        breaker.run(() =>
          Promise.resolve()
            .then(() => method.apply(target, args))
            .catch((err: unknown) => {
              if (err instanceof SeckillError) throw err;
              throw new SeckillError('busy', `The ${what} is unavailable; nothing was changed. Try again shortly.`, 1, err);
            }),
        );
    },
  });
}
