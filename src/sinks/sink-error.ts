/**
 * Why a sink did not confirm a publish. `permanent`: retrying the same events will not help (a
 * webhook answered 4xx, a broker refused the topology) — the relay may dead-letter sooner; it
 * decides. `cause`: the client library's error, for the log.
 */
export class SinkError extends Error {
  constructor(
    readonly sink: string,
    message: string,
    readonly permanent = false,
    options?: { cause?: unknown },
  ) {
    super(`${sink}: ${message}`, options);
    this.name = 'SinkError';
  }
}

/**
 * `promise`, or a SinkError once `ms` have passed: no sink call may hang (a broker that stalls
 * mid-handshake, an ack that never comes). `onTimeout` releases what the call held.
 */
export async function within<T>(sink: string, what: string, ms: number, promise: Promise<T>, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new SinkError(sink, `${what} timed out after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
