// The waiting room's event streams (src/services/queue-stream.ts) on a hand-driven clock, against a
// fake room: the sell-out pushed to every stream of the sale in one tick without a poll per user, a
// user let out polled at once, each stream's answer refreshed (and the place kept) at most every
// refreshMs, dropped users told and ended, degraded mode and shutdown end the streams, keep-alives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeckillError } from '../../src/domain/errors.js';
import type { QueueAnswer } from '../../src/domain/queue.js';
import { QueueStreamService, type QueueStreamSink } from '../../src/services/queue-stream.js';

const SALE = 'stream-sale';

function setup() {
  const state = { available: 10, admitted: 0, opened: true, degraded: false };
  /** What the room answers each user (a function, for what changes with state). */
  const answers = new Map<string, () => QueueAnswer>();
  const polls: Array<{ user: string; now: number }> = [];
  const room = {
    poll: async (_saleId: string, userId: string, now = 0): Promise<QueueAnswer> => {
      polls.push({ user: userId, now });
      const a = answers.get(userId);
      if (!a) throw new SeckillError('not_found', 'Not in line.');
      return a();
    },
    stats: async () => ({ admitted: state.admitted, opened: state.opened }),
  };
  const sales = { available: () => state.available };
  const switches = { get degraded() { return state.degraded; } };
  const qs = new QueueStreamService(room, sales, switches, { refreshMs: 1000, keepAliveMs: 15_000 });
  const sinks = new Map<string, Sink>();
  const subscribe = (user: string, position: number, now: number) => {
    const first: QueueAnswer = { state: 'waiting', position, ahead: position - 1, etaSeconds: position };
    answers.set(user, () => (state.opened && state.available <= 0 ? { state: 'sold_out', position, ahead: position - 1, etaSeconds: null } : first));
    const sink = new Sink();
    sinks.set(user, sink);
    qs.subscribe(SALE, user, sink, first, now);
    return sink;
  };
  /** A tick, and the polls it started settled. */
  const tick = async (now: number) => {
    await qs.tick(now);
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { state, answers, polls, qs, subscribe, tick, sinks };
}

class Sink implements QueueStreamSink {
  readonly events: Array<{ name: string; data: QueueAnswer & { error?: { code: string } } }> = [];
  keepAlives = 0;
  ended = false;
  event(name: 'queue' | 'refused', data: unknown): void {
    this.events.push({ name, data: data as QueueAnswer });
  }
  keepAlive(): void {
    this.keepAlives++;
  }
  end(): void {
    this.ended = true;
  }
}

test('the sell-out reaches every waiting stream of the sale in one tick, without a poll per user', async () => {
  const { state, polls, qs, subscribe, tick } = setup();
  const sinks = Array.from({ length: 200 }, (_, i) => subscribe(`u${i}`, i + 1, 0));
  await tick(100); // each new stream is read once against the room's count
  assert.equal(polls.length, 200);
  state.available = 0;
  await tick(200);
  assert.equal(polls.length, 200, 'told from what each was last told');
  for (const [i, s] of sinks.entries()) {
    assert.deepEqual(s.events, [{ name: 'queue', data: { state: 'sold_out', position: i + 1, ahead: i, etaSeconds: null } }]);
    assert.equal(s.ended, false, 'kept open: stock may return');
  }
  // The refresh that follows reads the same answer: nothing new is sent.
  await tick(1100);
  assert.equal(polls.length, 400);
  assert.ok(sinks.every((s) => s.events.length === 1));
  // Stock returns: polled at once and told.
  state.available = 1;
  await tick(1200);
  assert.equal(polls.length, 600);
  assert.ok(sinks.every((s) => s.events.at(-1)?.data.state === 'waiting'));
  assert.equal(qs.open, 200);
});

test('before the open nobody is told sold out', async () => {
  const { state, polls, subscribe, tick } = setup();
  state.opened = false;
  const s = subscribe('ann', 1, 0);
  state.available = 0;
  await tick(100);
  await tick(200);
  assert.equal(s.events.length, 0);
  assert.equal(polls.length, 1, 'the first read only');
});

test('a user whose place the room\'s count of let-out users covers is polled at once and gets the pass; the stream ends', async () => {
  const { state, answers, polls, qs, subscribe, tick } = setup();
  const ann = subscribe('ann', 1, 0);
  const bob = subscribe('bob', 2, 0);
  await tick(100); // the count when subscribed: 0
  polls.length = 0;
  state.admitted = 1;
  answers.set('ann', () => ({ state: 'admitted', position: 0, ahead: 0, etaSeconds: 0, pass: 'p1.x.y' }));
  answers.set('bob', () => ({ state: 'waiting', position: 1, ahead: 0, etaSeconds: 1 }));
  await tick(200);
  assert.deepEqual(polls.map((p) => p.user), ['ann'], 'only the user let out, long before the refresh');
  assert.deepEqual(ann.events, [{ name: 'queue', data: { state: 'admitted', position: 0, ahead: 0, etaSeconds: 0, pass: 'p1.x.y' } }]);
  assert.equal(ann.ended, true);
  assert.equal(bob.ended, false);
  assert.equal(qs.open, 1);
  // bob hears his new place at his refresh.
  await tick(1100);
  assert.deepEqual(bob.events.map((e) => e.data.position), [1]);
});

test('a user let out between the stream\'s first answer and the first tick is told at that tick', async () => {
  const { state, answers, subscribe, tick } = setup();
  const ann = subscribe('ann', 1, 0);
  state.admitted = 1;
  answers.set('ann', () => ({ state: 'admitted', position: 0, ahead: 0, etaSeconds: 0, pass: 'p1.x.y' }));
  await tick(100);
  assert.deepEqual(ann.events.map((e) => e.data.state), ['admitted']);
  assert.equal(ann.ended, true);
});

test('each stream is polled (keeping its place) at most once per refreshMs, and only changes are sent', async () => {
  const { answers, polls, subscribe, tick } = setup();
  const s = subscribe('ann', 3, 0);
  for (let t = 100; t <= 5000; t += 100) await tick(t);
  assert.deepEqual(polls.map((p) => p.now), [100, 1100, 2100, 3100, 4100]);
  assert.equal(s.events.length, 0, 'the same answer: nothing sent');
  answers.set('ann', () => ({ state: 'waiting', position: 2, ahead: 1, etaSeconds: 2 }));
  for (let t = 5100; t <= 6000; t += 100) await tick(t);
  assert.deepEqual(s.events.map((e) => e.data.position), [2]);
});

test('dropped from the line or the sale ended: a refused event, then the end', async () => {
  const { answers, subscribe, tick, qs } = setup();
  const s = subscribe('ann', 1, 0);
  const e = subscribe('eve', 2, 0);
  answers.delete('ann');
  answers.set('eve', () => {
    throw new SeckillError('ended');
  });
  await tick(1000);
  assert.deepEqual(s.events.map((x) => [x.name, x.data.error?.code]), [['refused', 'not_found']]);
  assert.deepEqual(e.events.map((x) => [x.name, x.data.error?.code]), [['refused', 'ended']]);
  assert.ok(s.ended && e.ended);
  assert.equal(qs.open, 0);
});

test('a failing store is retried at the next refresh; the stream stays open', async () => {
  const { answers, polls, subscribe, tick } = setup();
  const s = subscribe('ann', 1, 0);
  answers.set('ann', () => {
    throw new Error('store down');
  });
  await tick(1000);
  assert.equal(s.ended, false);
  answers.set('ann', () => ({ state: 'waiting', position: 1, ahead: 0, etaSeconds: 0 }));
  await tick(2000);
  assert.equal(polls.length, 2);
  assert.equal(s.events.at(-1)?.data.etaSeconds, 0);
});

test('keep-alive after 15 s without an event; degraded mode and stop end every stream', async () => {
  const { state, qs, subscribe, tick, sinks } = setup();
  state.opened = false;
  const s = subscribe('ann', 1, 0);
  // Refreshes every second send nothing new: a comment once 15 s passed since the last write.
  for (let t = 1000; t <= 16_000; t += 1000) await tick(t + 500);
  assert.equal(s.keepAlives, 1);
  state.degraded = true;
  await tick(17_000);
  assert.equal(s.ended, true);
  assert.equal(qs.open, 0);
  state.degraded = false;
  subscribe('bob', 1, 20_000);
  qs.stop();
  assert.equal(sinks.get('bob')?.ended, true);
  assert.equal(qs.open, 0);
});
