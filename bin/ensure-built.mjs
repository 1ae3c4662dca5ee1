#!/usr/bin/env node
// `npm start` runs this first (prestart): builds dist/ when it is missing or older than src/.
import { build, distIsFresh } from './build.mjs';

if (!distIsFresh()) {
  process.stderr.write('seckill: dist/ is missing or older than src/; building…\n');
  try {
    build();
  } catch (err) {
    process.stderr.write(`seckill: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
