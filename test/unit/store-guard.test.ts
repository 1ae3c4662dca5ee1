// guardStore: every async method of a store goes through its breaker, found from the object
// itself (no list of names); the local ones the type requires pass through untouched.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeckillError } from '../../src/domain/errors.js';
import { Breaker } from '../../src/gateway/breaker.js';
import { guardStore, type LocalMembers } from '../../src/gateway/store-guard.js';

interface FakeStore {
  readonly name: string;
  read(id: string): Promise<string>;
  write(id: string, value: string): Promise<void>;
  /** Added after the guard was written: guarded without naming it anywhere. */
  purge(): Promise<number>;
  /** Local: answers without the store. */
  cached(id: string): string | undefined;
  rows(): AsyncIterable<string>;
}

class Fake implements FakeStore {
  readonly name = 'fake';
  down = false;
  calls: string[] = [];
  private readonly data = new Map<string, string>();

  async read(id: string): Promise<string> {
    return this.call('read', () => this.data.get(id) ?? '');
  }
  async write(id: string, value: string): Promise<void> {
    this.call('write', () => this.data.set(id, value));
  }
  async purge(): Promise<number> {
    return this.call('purge', () => {
      const n = this.data.size;
      this.data.clear();
      return n;
    });
  }
  cached(id: string): string | undefined {
    this.calls.push('cached');
    return this.data.get(id);
  }
  async *rows(): AsyncIterable<string> {
    yield* this.data.values();
  }
  private call<R>(name: string, fn: () => R): R {
    this.calls.push(name);
    if (this.down) throw new Error(`${name}: connection refused`);
    return fn();
  }
}

const LOCAL: LocalMembers<FakeStore> = { cached: true, rows: true };

const busy = (err: unknown) => err instanceof SeckillError && err.code === 'busy';

test('every async method is guarded: a store failure is 503 busy, then the open breaker refuses without calling the store', async () => {
  for (const method of ['read', 'write', 'purge'] as const) {
    const fake = new Fake();
    const breaker = new Breaker('fake store', 2, 60_000);
    const store = guardStore<FakeStore>(fake, breaker, 'fake store', LOCAL);
    fake.down = true;
    const call = () => (method === 'read' ? store.read('a') : method === 'write' ? store.write('a', 'x') : store.purge());
    await assert.rejects(call(), busy, method);
    await assert.rejects(call(), busy, method);
    assert.equal(breaker.state, 'open', method);
    fake.down = false;
    const before = fake.calls.length;
    await assert.rejects(call(), busy, method);
    assert.equal(fake.calls.length, before, `${method}: refused at once, the store was not called`);
  }
});

test('the store answers through the guard; its own refusals are answers, not failures', async () => {
  const fake = new Fake();
  const breaker = new Breaker('fake store', 1, 60_000);
  const store = guardStore<FakeStore>(fake, breaker, 'fake store', LOCAL);
  await store.write('a', 'x');
  assert.equal(await store.read('a'), 'x');
  assert.equal(await store.purge(), 1);

  const refusing = guardStore<FakeStore>(
    Object.assign(new Fake(), {
      read: async () => {
        throw new SeckillError('not_found', 'no such thing');
      },
    }),
    breaker,
    'fake store',
    LOCAL,
  );
  await assert.rejects(refusing.read('a'), (err: unknown) => err instanceof SeckillError && err.code === 'not_found');
  assert.equal(breaker.state, 'closed');
});

test('local methods and plain members pass through, even while the breaker is open', async () => {
  const fake = new Fake();
  const breaker = new Breaker('fake store', 1, 60_000);
  const store = guardStore<FakeStore>(fake, breaker, 'fake store', LOCAL);
  await store.write('a', 'x');
  fake.down = true;
  await assert.rejects(store.read('a'), busy);
  assert.equal(breaker.state, 'open');
  assert.equal(store.cached('a'), 'x'); // synchronous, not a promise
  assert.equal(store.name, 'fake');
  const rows: string[] = [];
  for await (const r of store.rows()) rows.push(r);
  assert.deepEqual(rows, ['x']);
});

test('the guarded store is still the store: instanceof, and methods run on the store itself', async () => {
  const fake = new Fake();
  const store = guardStore<FakeStore>(fake, new Breaker('fake store'), 'fake store', LOCAL);
  assert.ok(store instanceof Fake);
  await store.write('b', 'y');
  assert.equal(fake.cached('b'), 'y');
});
