// Starts order-insert-worker.ts when seckill runs from its TypeScript sources. A worker thread
// does not inherit the loader hooks the main thread registered at run time (bin/seckill.mjs
// registers tsx that way), only those given on the command line (`node --import tsx`, the tests).
// So: import the worker's entry, and register tsx here only when the thread cannot load it yet.
import { workerData } from 'node:worker_threads';

try {
  await import(workerData.entry);
} catch (err) {
  if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  const { register } = await import('tsx/esm/api');
  register();
  // Another URL: the failed import above stays cached under the first one.
  await import(`${workerData.entry}?tsx`);
}
