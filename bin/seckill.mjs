#!/usr/bin/env node
// The seckill command. Runs the compiled JavaScript in dist/ (`npm run build`; `npm start` builds it
// when needed) as long as it is up to date with src/. Otherwise it runs the TypeScript sources
// through tsx, so a checkout being edited never runs a stale build. Under node:test (the test
// runner's children carry NODE_TEST_CONTEXT) the sources are always run: `npm test` tests src/.
// SECKILL_FROM_SOURCE=1 forces the sources, =0 the build (when it is up to date).
import { distIsFresh } from './build.mjs';

const fromSource = process.env.SECKILL_FROM_SOURCE ?? (process.env.NODE_TEST_CONTEXT ? '1' : '0');
if (fromSource !== '1' && distIsFresh()) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
