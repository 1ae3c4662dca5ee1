import type { Redis } from 'ioredis';

export interface GroupInfo {
  /** Delivered to a writer, not yet acknowledged. */
  pending: number;
  /** Not yet delivered to any writer. */
  lag: number;
  lastDeliveredId: string;
}

/** The order writers' consumer group on one stream (XINFO GROUPS), or null when it has none. */
export async function writerGroupInfo(redis: Redis, stream: string, group: string): Promise<GroupInfo | null> {
  const groups = (await redis.xinfo('GROUPS', stream)) as Array<Array<string | number>>;
  for (const g of groups) {
    const f = new Map<string, string>();
    for (let i = 0; i < g.length; i += 2) f.set(String(g[i]), String(g[i + 1]));
    if (f.get('name') === group) {
      return { pending: Number(f.get('pending') ?? 0), lag: Number(f.get('lag') ?? 0), lastDeliveredId: f.get('last-delivered-id') ?? '0-0' };
    }
  }
  return null;
}

/** Order records decided but not yet written: pending plus not yet delivered. */
export function backlogOf(info: GroupInfo | null): number {
  return info ? info.pending + info.lag : 0;
}

/**
 * Trim a stream below what the group has acknowledged, in one script (trim-stream-1.lua): the
 * pending list and the last-delivered id are read and the trim done in the same atomic step.
 * Returns the entries trimmed, -1 when the stream or group does not exist.
 */
export async function trimAcknowledged(redis: Redis, stream: string, group: string): Promise<number> {
  return Number(await redis.seckillTrimStream(stream, group));
}

/**
 * Stream of the order records PostgreSQL refused (one per deployment): each entry has the sale
 * stream and entry id it came from, the error, the time, and the entry's own fields (k, o).
 * An operator repairs and writes them; nothing reads them automatically.
 */
export function quarantineKey(prefix: string): string {
  return `${prefix}:quarantine`;
}

/** Create the writers' group on a stream (and the stream), unless it is there already. */
export async function createWriterGroup(redis: Redis, stream: string, group: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  } catch (err) {
    if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
  }
}
