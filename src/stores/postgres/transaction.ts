import type pg from 'pg';

/**
 * Run `fn` inside one transaction on one pooled connection: COMMIT when it returns, ROLLBACK
 * when it throws. A checked-out client has no listener of its own, so the server going away
 * mid-transaction would emit an unhandled 'error' and end the process; the failed query
 * rejects anyway. A client whose transaction failed may hold a dead connection: it is
 * destroyed, never pooled again.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  const onError = () => undefined;
  c.on('error', onError);
  let failed: Error | undefined;
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    failed = err as Error;
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.off('error', onError);
    c.release(failed);
  }
}
