#!/usr/bin/env node
// The production build: `tsc -p tsconfig.build.json` compiles src/ to dist/, and every file of src/
// that is not TypeScript (the Lua scripts, the web pages and assets) is copied to the same place in
// dist/, because the code finds them relative to its own module (new URL('./lua/x.lua', import.meta.url)).
// It builds into a fresh directory and swaps it in, so a process starting meanwhile never sees half
// a build. `node bin/build.mjs --if-stale` builds only when dist/ is missing or older than src/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'src');
const DIST = path.join(ROOT, 'dist');
/** Written last; its mtime is the start of the build that produced dist/. */
const STAMP = '.built';
/** Besides src/: what else changes the output. */
const INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'package.json'];

function newestMtime(dir, newest = 0) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return newest;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = newestMtime(p, newest);
    else newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** dist/ exists, was built completely, and nothing in src/ (or the build's config) changed since. */
export function distIsFresh() {
  let built;
  try {
    built = fs.statSync(path.join(DIST, STAMP)).mtimeMs;
  } catch {
    return false;
  }
  let newest = newestMtime(SRC);
  for (const f of INPUTS) {
    try {
      newest = Math.max(newest, fs.statSync(path.join(ROOT, f)).mtimeMs);
    } catch {
      // not there: nothing to compare
    }
  }
  return newest <= built;
}

function copyAssets(from, to) {
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, e.name);
    const dst = path.join(to, e.name);
    if (e.isDirectory()) copyAssets(src, dst);
    else if (!e.name.endsWith('.ts')) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(src, dst);
    }
  }
}

export function build() {
  const started = new Date();
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    throw new Error('dist/ needs building and TypeScript is not installed: run `npm install` (with dev dependencies), then `npm run build`.');
  }
  const out = `${DIST}.tmp-${process.pid}`;
  fs.rmSync(out, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', out], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    fs.rmSync(out, { recursive: true, force: true });
    throw new Error(`tsc failed (exit ${r.status ?? r.signal}); dist/ left as it was.`);
  }
  copyAssets(SRC, out);
  const stamp = path.join(out, STAMP);
  fs.writeFileSync(stamp, `${started.toISOString()}\n`);
  // A source saved while tsc ran is newer than the stamp, so the next check builds again.
  fs.utimesSync(stamp, started, started);
  fs.rmSync(DIST, { recursive: true, force: true });
  fs.renameSync(out, DIST);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const ifStale = process.argv.includes('--if-stale');
  try {
    if (ifStale && distIsFresh()) process.exit(0);
    const t0 = performance.now();
    build();
    process.stderr.write(`seckill: built dist/ in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  } catch (err) {
    process.stderr.write(`seckill: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
