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
