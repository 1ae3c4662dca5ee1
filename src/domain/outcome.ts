import { SeckillError } from './errors.js';

/**
 * A write whose reply was lost (connection cut, client-side timeout, the server going away while
 * the statement or its COMMIT was in flight): it may or may not have applied. `outcome` settles
 * once the database of record says what happened (the repository keeps asking until it can).
 * Nobody may answer `busy` or return stock for it before then. It is a SeckillError so that the
 * store guard passes it on unchanged (code busy: it counts as a failure of the store).
 */
export class AmbiguousOutcome<T> extends SeckillError {
  constructor(
    readonly outcome: Promise<T>,
    cause: unknown,
  ) {
    super('busy', 'The database did not confirm the write; its outcome is being checked.', 1, cause);
    this.name = 'AmbiguousOutcome';
    // Nobody may be listening yet when the repository gives up (closing): no unhandled rejection.
    outcome.catch(() => undefined);
  }
}

/**
 * The outcome is still unknown after waiting for it (the database unreachable for long): the
 * caller hears a 500 that says so, never `503 busy` (which promises nothing changed). What
 * depended on it (stock held by the reservation) stays as it is until `applied` settles.
 */
export class OutcomeUnknown extends SeckillError {
  constructor(
    message: string,
    readonly applied: Promise<boolean>,
    cause?: unknown,
  ) {
    super('internal', message, undefined, cause);
    this.name = 'OutcomeUnknown';
    applied.catch(() => undefined);
  }
}

/** `p`'s value if it settles within `ms`, else `undefined` (p keeps running). A rejection is thrown. */
export async function within<T>(p: Promise<T>, ms: number): Promise<{ value: T } | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p.then((value) => ({ value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
