// /metrics under `seckill start --workers N` (node:cluster). The kernel hands each scrape to one
// worker, and each worker counts only what it answered: a scrape answered from one registry would
// jump between the workers' shares. So the worker that got the scrape asks the primary, which
// gathers every worker's registry over IPC and adds them up with prom-client's cluster
// aggregation (AggregatorRegistry.aggregate, each metric by its `aggregator`, see metrics.ts).
//
// prom-client's own AggregatorRegistry.clusterMetrics() is not used as is: it is meant for a
// primary that serves HTTP itself (ours does not), and it fails the whole scrape when one worker
// is slow. Here a worker that has not answered within `timeoutMs` is left out, and the scrape
// says so (seckill_workers_missing) instead of hanging.
//
// Counters must not go back, or Prometheus takes the drop for a restart and counts everything
// again. A worker that misses a scrape is stood in for by its counters as last seen, and a worker
// that exits leaves its last-seen counters to the primary, which adds them to every later scrape
// (its replacement starts from zero). Only the counts since a dead worker's last scrape are lost.
import cluster, { type Worker } from 'node:cluster';
import client from 'prom-client';

/** How long the primary waits for the workers' registries of one scrape. */
export const CLUSTER_SCRAPE_MS = 2000;

type RegistryJSON = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>;

// Message types; the prefix keeps them apart from node:cluster's own and anyone else's.
const ASK = 'seckill:metrics:ask'; // worker → primary: a scrape came in; carries the worker's own registry
const COLLECT = 'seckill:metrics:collect'; // primary → the other workers
const COLLECTED = 'seckill:metrics:collected'; // worker → primary: its registry
const ANSWER = 'seckill:metrics:answer'; // primary → the asking worker: the aggregated text

interface Ask { type: typeof ASK; id: number; metrics: RegistryJSON }
interface Collect { type: typeof COLLECT; id: number }
interface Collected { type: typeof COLLECTED; id: number; metrics: RegistryJSON }
interface Answer { type: typeof ANSWER; id: number; text?: string; error?: string }

/** Metric types whose values only grow (a histogram's buckets, count and sum are counters too). */
const MONOTONIC = new Set(['counter', 'histogram']);

function monotonic(r: RegistryJSON): RegistryJSON {
  return r.filter((m) => MONOTONIC.has(String(m.type)));
}

function isMessage<T extends { type: string }>(m: unknown, type: T['type']): m is T {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type && typeof (m as { id?: unknown }).id === 'number';
}

/**
 * The primary's side: answers the workers' scrape requests until the process exits. Call it
 * before the first fork: it switches the IPC channel to structured clone ("advanced"), so that
 * values JSON cannot carry (NaN, ±Infinity) reach the primary as they are.
 */
export function serveClusterMetrics(warn: (text: string) => void, timeoutMs = CLUSTER_SCRAPE_MS): void {
  cluster.setupPrimary({ serialization: 'advanced' });
  let nextId = 0;
  /** Gathering id → takes one worker's registry. */
  const gathering = new Map<number, (workerId: number, metrics: RegistryJSON) => void>();
  /** Each live worker's counters as last seen: its stand-in when it misses a scrape. */
  const lastSeen = new Map<number, RegistryJSON>();
  /** The counters of the workers that exited, added up. */
  let retired: RegistryJSON = [];

  cluster.on('message', (worker: Worker, m: unknown) => {
    if (isMessage<Ask>(m, ASK)) {
      lastSeen.set(worker.id, monotonic(m.metrics));
      void answer(worker, m);
    } else if (isMessage<Collected>(m, COLLECTED)) {
      lastSeen.set(worker.id, monotonic(m.metrics));
      gathering.get(m.id)?.(worker.id, m.metrics);
    }
  });
  cluster.on('exit', (worker: Worker) => {
    const last = lastSeen.get(worker.id);
    lastSeen.delete(worker.id);
    if (!last) return;
    void client.AggregatorRegistry.aggregate([retired, last])
      .getMetricsAsJSON()
      .then((sum) => (retired = sum), () => undefined);
  });

  async function answer(asker: Worker, ask: Ask): Promise<void> {
    const id = nextId++;
    // The asking worker's registry first: for a `first` metric its reading wins, as when a single process answered.
    const got: RegistryJSON[] = [ask.metrics];
    const waiting = new Set<number>();
    const others = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.id !== asker.id && w.isConnected());
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      const settleIfDone = () => {
        if (waiting.size > 0) return;
        clearTimeout(timer);
        resolve();
      };
      gathering.set(id, (workerId, metrics) => {
        if (!waiting.delete(workerId)) return; // late, or twice
        got.push(metrics);
        settleIfDone();
      });
      for (const w of others) {
        waiting.add(w.id);
        try {
          // A worker that died meanwhile never answers: the timeout leaves it out.
          w.send({ type: COLLECT, id } satisfies Collect, undefined, () => undefined);
        } catch {
          waiting.delete(w.id);
        }
      }
      settleIfDone();
    });
    gathering.delete(id);
    const standIns = [...waiting].flatMap((workerId) => lastSeen.get(workerId) ?? []);
    let reply: Answer;
    try {
      const registry = client.AggregatorRegistry.aggregate([...got, standIns, retired]);
      new client.Gauge({ name: 'seckill_workers', help: 'Worker processes (--workers) whose metrics this scrape adds up', registers: [registry] }).set(got.length);
      new client.Gauge({
        name: 'seckill_workers_missing',
        help: `Worker processes that did not answer this scrape within ${timeoutMs} ms: their counters stand as last seen, their gauges are missing`,
        registers: [registry],
      }).set(waiting.size);
      if (waiting.size > 0) warn(`seckill: /metrics: ${waiting.size} of ${others.length + 1} workers did not answer within ${timeoutMs} ms; the scrape shows their counters as last seen`);
      reply = { type: ANSWER, id: ask.id, text: await registry.metrics() };
    } catch (err) {
      reply = { type: ANSWER, id: ask.id, error: (err as Error).message };
    }
    if (asker.isConnected()) asker.send(reply, undefined, () => undefined);
  }
}

/**
 * A worker's side: hands its registry to the primary when asked, and turns a scrape into a
 * request to the primary. Exists only in a node:cluster worker (`inWorker`); a single process
 * answers from its own registry.
 */
export class ClusterScrape {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve(text: string): void; reject(err: Error): void }>();
  private readonly onMessage = (m: unknown) => {
    if (isMessage<Collect>(m, COLLECT)) {
      this.registry.getMetricsAsJSON().then(
        (metrics) => this.send({ type: COLLECTED, id: m.id, metrics } satisfies Collected),
        () => undefined, // no answer: the primary leaves this worker out after its timeout
      );
    } else if (isMessage<Answer>(m, ANSWER)) {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.text !== undefined) w?.resolve(m.text);
      else w?.reject(new Error(`the primary could not aggregate the metrics: ${m.error ?? 'no text'}`));
    }
  };

  /** A ClusterScrape in a node:cluster worker; null in any other process. */
  static inWorker(registry: client.Registry, timeoutMs = CLUSTER_SCRAPE_MS + 1000): ClusterScrape | null {
    return cluster.isWorker && typeof process.send === 'function' ? new ClusterScrape(registry, timeoutMs) : null;
  }

  private constructor(
    private readonly registry: client.Registry,
    /** How long to wait for the primary (its own wait for the workers, and a margin). */
    private readonly timeoutMs: number,
  ) {
    process.on('message', this.onMessage);
  }

  /** The aggregated metrics of every worker, in the Prometheus text format. Rejects when the primary does not answer in time. */
  async scrape(): Promise<string> {
    const id = this.nextId++;
    const metrics = await this.registry.getMetricsAsJSON();
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`the cluster's primary did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.send({ type: ASK, id, metrics } satisfies Ask);
    });
  }

  close(): void {
    process.off('message', this.onMessage);
    for (const w of this.waiting.values()) w.reject(new Error('metrics closed'));
    this.waiting.clear();
  }

  private send(m: Ask | Collected): void {
    // The channel may be gone while the worker shuts down: the primary's timeout covers it.
    if (process.connected) process.send?.(m, undefined, undefined, () => undefined);
  }
}
