// The Lua loader: every script in src/stores/redis/lua/ is named `name-N.lua` with N its number of
// keys, defines one ioredis command, and the typed commands (scripts.ts) are exactly those files.
// No Redis server needed: ioredis defines the commands when the client is built.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import type { ClientContext, RedisCommander } from 'ioredis';
import { redisConnection } from '../../src/stores/redis/connection.js';
import { commandName, readScripts } from '../../src/stores/redis/scripts.js';

const LUA_DIR = new URL('../../src/stores/redis/lua/', import.meta.url);

type SeckillCommand = Extract<keyof RedisCommander<ClientContext>, `seckill${string}`>;
// The compiler insists this lists every typed command; the test compares it with the files.
const TYPED: Record<SeckillCommand, true> = {
  seckillReserveMany: true,
  seckillTransition: true,
  seckillRefund: true,
  seckillInitSale: true,
  seckillRebuildBegin: true,
  seckillRebuildChunk: true,
  seckillLockExtend: true,
  seckillLockRelease: true,
  seckillAdoptOrder: true,
  seckillReserveOutcome: true,
  seckillTrimStream: true,
  seckillPruneOrder: true,
  seckillUpdateSale: true,
  seckillRoomVisit: true,
  seckillRoomTick: true,
  seckillRoomPass: true,
};

test('every Lua file is named name-N.lua, and N is the highest KEYS index it uses', () => {
  const files = fs.readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
  assert.ok(files.length > 0);
  for (const file of files) {
    const m = /-(\d+)\.lua$/.exec(file);
    assert.ok(m, `${file} has no -N key count`);
    const body = fs.readFileSync(new URL(file, LUA_DIR), 'utf8');
    const used = Math.max(0, ...[...body.matchAll(/KEYS\[(\d+)\]/g)].map((k) => Number(k[1])));
    assert.equal(Number(m[1]), used, `${file}: named with ${m[1]} keys, uses KEYS[${used}]`);
  }
  assert.equal(readScripts().length, files.length);
});

test('the loader defines one command per file, and they are exactly the typed commands', () => {
  const scripts = readScripts();
  const redis = redisConnection('redis://127.0.0.1:1'); // lazy: never connects
  try {
    for (const s of scripts) {
      assert.equal(typeof (redis as unknown as Record<string, unknown>)[s.command], 'function', `${s.file} defines ${s.command}`);
    }
    assert.deepEqual(scripts.map((s) => s.command).sort(), Object.keys(TYPED).sort());
  } finally {
    redis.disconnect();
  }
});

test('command names come from the file name without its key count', () => {
  assert.equal(commandName('reserve'), 'seckillReserve');
  assert.equal(commandName('reserve-outcome'), 'seckillReserveOutcome');
  assert.deepEqual(
    readScripts().filter((s) => s.name === 'init-sale').map((s) => [s.command, s.numberOfKeys]),
    [['seckillInitSale', 3]],
  );
});

test('a Lua file without a key count in its name is refused', () => {
  const dir = fs.mkdtempSync('/tmp/seckill-lua-');
  try {
    fs.writeFileSync(`${dir}/ok-1.lua`, 'return 1');
    assert.deepEqual(readScripts(new URL(`file://${dir}/`)).map((s) => [s.name, s.numberOfKeys]), [['ok', 1]]);
    fs.writeFileSync(`${dir}/nameless.lua`, 'return 1');
    assert.throws(() => readScripts(new URL(`file://${dir}/`)), /-N\.lua/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
