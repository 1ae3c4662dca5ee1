// The page tests' browser: Debian's Chromium driven by playwright-core, headless, a phone-sized
// window, in a throwaway profile. Without Chromium a test file skips on a developer's machine
// (saying why) and fails in CI.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.SECKILL_CHROMIUM ?? '/usr/bin/chromium';
const OUT = path.resolve(process.env.SECKILL_TEST_OUTPUT ?? fileURLToPath(new URL('../../test-output/', import.meta.url)));
/** Where the page tests leave their screenshots. */
export const SHOTS = path.resolve(process.env.SECKILL_SCREENSHOTS ?? path.join(OUT, 'screenshots'));

/**
 * Why the page test `name` cannot run here (null: it can). The pages are the same in every mode,
 * so they run against the embedded server only. Under CI a missing Chromium is a failing test.
 */
export function browserSkip(name: string): string | null {
  const missing = fs.existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (Debian: apt-get install -y chromium)`;
  const distributed = process.env.SECKILL_TEST_MODE === 'distributed' ? 'the page tests run in embedded mode only' : null;
  if (missing && process.env.CI) test('browser tests need Chromium', () => assert.fail(`CI is set and ${missing}`));
  const why = missing ?? distributed;
  if (why) console.log(`# ${name} skipped: ${why}`);
  return why;
}

export interface Browser {
  ctx: BrowserContext;
  close(): Promise<void>;
}

/** A fresh headless Chromium with a phone's window (390 × 844), en-GB, UTC. */
export async function phoneBrowser(): Promise<Browser> {
  fs.mkdirSync(SHOTS, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-chromium-'));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 390, height: 844 },
    locale: 'en-GB',
    timezoneId: 'UTC',
    acceptDownloads: true,
  });
  return {
    ctx,
    async close() {
      await ctx.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
