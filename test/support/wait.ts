// Waiting for a condition in tests, with a deadline: a hang must fail, not be waited for.
import { setTimeout as sleep } from 'node:timers/promises';

/** Poll `check` every `everyMs` until it gives a value (not undefined/false), or fail after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms: number, everyMs = 20): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
