// The Lua scripts' return codes: every literal number a script returns is in LuaCode under that
// script, and LuaCode lists nothing a script does not return; reserve's refusals all map to one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LuaCode, reserveRefusal } from '../../src/stores/redis/codes.js';
import { readScripts } from '../../src/stores/redis/scripts.js';

/** Literal numbers a script returns: `return -7`, `return {-1, '', 0}` (the first element). */
function literalReturns(lua: string): Set<number> {
  const body = lua.replace(/--\[\[[\s\S]*?\]\]/g, '').replace(/--.*$/gm, '');
  return new Set([...body.matchAll(/\breturn\s*\{?\s*(-?\d+)\b/g)].map((m) => Number(m[1])));
}

test('LuaCode has one entry per script, and each lists exactly the literal codes the script returns', () => {
  const scripts = readScripts();
  assert.deepEqual(Object.keys(LuaCode).sort(), scripts.map((s) => s.name).sort());
  for (const s of scripts) {
    const listed = new Set<number>(Object.values(LuaCode[s.name as keyof typeof LuaCode]));
    assert.deepEqual([...literalReturns(s.lua)].sort(), [...listed].sort(), `${s.file} vs LuaCode['${s.name}']`);
    assert.equal(listed.size, Object.keys(LuaCode[s.name as keyof typeof LuaCode]).length, `${s.name}: two names for one code`);
  }
});

test('the literal-return reader finds bare and table returns, not comments', () => {
  assert.deepEqual([...literalReturns("--[[ return 9 ]]\nif x then return -7 end\n-- return 8\nreturn {1, a, b}\nreturn n")].sort(), [-7, 1]);
});

test("every reserve-many code but reserved, notLoaded and tooLate is a refusal, and those three are not", () => {
  const { reserved, notLoaded, tooLate, ...refusals } = LuaCode['reserve-many'];
  for (const code of [reserved, notLoaded, tooLate]) assert.equal(reserveRefusal(code), undefined);
  assert.deepEqual(
    Object.entries(refusals).map(([name, code]) => [name, reserveRefusal(code)]),
    [['paused', 'paused'], ['notStarted', 'not_started'], ['ended', 'ended'], ['limitReached', 'limit_reached'], ['soldOut', 'sold_out']],
  );
});
