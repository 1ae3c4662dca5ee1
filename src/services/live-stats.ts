import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** How far back the operators' dashboard looks, in seconds. */
export const LIVE_WINDOW_SECONDS = 300;
const W = LIVE_WINDOW_SECONDS;

/** What the live series read of the order writer (shared by every sale of the process). */
export interface WriterProbe {
  ordersWritten(): number;
  backlog(): number;
}

/** Per-second figures of one sale, oldest first, for the seconds after `since` up to the last complete one. */
export interface LiveSeries {
  /** Epoch seconds, one per point. */
  t: number[];
  /** Buy requests answered in that second, by outcome (`ok` or the error code). */
  requests: Record<string, number[]>;
  /** Latency of the buy route in that second, milliseconds; null for a second without requests. */
  p50Ms: Array<number | null>;
  p99Ms: Array<number | null>;
  /** Orders committed by the order writer in that second (all sales of this process). */
  ordersWritten: number[];
  /** Highest writer backlog seen in that second; null when it was not looked at. */
  backlog: Array<number | null>;
}

/**
 * One sale's buy outcomes and latency, per second, over the last five minutes: rings of `W`
 * slots indexed by `second % W`, a slot being valid when its stamp is that second. Recording is
 * O(1) with no allocation (the histogram is perf_hooks' native one, reset every second).
 */
class SaleRing {
  readonly stamp = new Float64Array(W).fill(-1);
  readonly outcomes = new Map<string, Uint32Array>();
  readonly p50 = new Float64Array(W).fill(NaN);
  readonly p99 = new Float64Array(W).fill(NaN);
  private readonly hist: RecordableHistogram = createHistogram();
  private histSecond = -1;
  /** When the last 202 was sent; when the sale is found sold out, that is the sold-out time. */
  lastOkAt = 0;
  soldOutAt: number | null = null;

  record(sec: number, outcome: string, latencyMs: number): void {
    this.closeSecond(sec);
    const slot = sec % W;
    if (this.stamp[slot] !== sec) {
      this.stamp[slot] = sec;
      for (const counts of this.outcomes.values()) counts[slot] = 0;
      this.p50[slot] = NaN;
      this.p99[slot] = NaN;
    }
    let counts = this.outcomes.get(outcome);
    if (!counts) this.outcomes.set(outcome, (counts = new Uint32Array(W)));
    counts[slot]++;
    this.hist.record(Math.max(1, Math.round(latencyMs * 1000))); // microseconds, integers ≥ 1
  }

  /** Turn the histogram of a finished second into its p50/p99 and start afresh for `sec`. */
  closeSecond(sec: number): void {
    if (this.histSecond === sec) return;
    if (this.histSecond >= 0 && this.hist.count > 0) {
      const slot = this.histSecond % W;
      if (this.stamp[slot] === this.histSecond) {
        this.p50[slot] = this.hist.percentile(50) / 1000;
        this.p99[slot] = this.hist.percentile(99) / 1000;
      }
      this.hist.reset();
    }
    this.histSecond = sec;
  }
}

/**
 * The operators' dashboard figures of one process, kept cheap enough for the buy route:
 * per-sale outcome counts and latency percentiles per second, and the order writer's throughput
 * and backlog per second, all over the last `LIVE_WINDOW_SECONDS`.
 */
export class LiveStats {
  private readonly sales = new Map<string, SaleRing>();
  // The order writer, sampled at most once per second, whenever a buy or a dashboard read comes by.
  private readonly writerStamp = new Float64Array(W).fill(-1);
  private readonly writerTotal = new Float64Array(W);
  private readonly writerBacklog = new Float64Array(W);
  private writerSecond = -1;

  constructor(private readonly writer: WriterProbe) {}

  /** One answered buy request (called from the onResponse hook). */
  recordBuy(saleId: string, outcome: string, latencyMs: number, now = Date.now()): void {
    const sec = Math.floor(now / 1000);
    let ring = this.sales.get(saleId);
    if (!ring) this.sales.set(saleId, (ring = new SaleRing()));
    ring.record(sec, outcome, latencyMs);
    if (outcome === 'ok') ring.lastOkAt = now;
    else if (outcome === 'sold_out' && ring.soldOutAt === null) ring.soldOutAt = ring.lastOkAt || now;
    this.sampleWriter(sec);
  }

  /**
   * When the sale sold out (the 202 that took the last unit, as far as this process saw it), or
   * null while stock is left; `available` is the engine's count now.
   */
  soldOutAt(saleId: string, available: number): number | null {
    const ring = this.sales.get(saleId);
    if (!ring) return null;
    if (available > 0) ring.soldOutAt = null; // stock came back (expiry, cancellation)
    else if (ring.soldOutAt === null && ring.lastOkAt > 0) ring.soldOutAt = ring.lastOkAt;
    return ring.soldOutAt;
  }

  /** The complete seconds after `since` (epoch seconds), at most the last `LIVE_WINDOW_SECONDS`. */
  series(saleId: string, now = Date.now(), since = 0): LiveSeries {
    const nowSec = Math.floor(now / 1000);
    this.sampleWriter(nowSec);
    const ring = this.sales.get(saleId) ?? new SaleRing();
    ring.closeSecond(nowSec);
    const first = Math.max(nowSec - W + 1, since + 1);
    const out: LiveSeries = { t: [], requests: {}, p50Ms: [], p99Ms: [], ordersWritten: [], backlog: [] };
    const outcomes = [...ring.outcomes.entries()];
    for (const [name] of outcomes) out.requests[name] = [];
    // Orders written in a second: the writer's total at the next sample minus its total at the
    // previous one, spread evenly over the seconds between them.
    const sampled = this.writerSamples(nowSec);
    let k = 0; // sampled[k - 1] ≤ sec < sampled[k]
    for (let sec = first; sec < nowSec; sec++) {
      const slot = sec % W;
      const valid = ring.stamp[slot] === sec;
      out.t.push(sec);
      for (const [name, counts] of outcomes) out.requests[name].push(valid ? counts[slot] : 0);
      out.p50Ms.push(valid && !Number.isNaN(ring.p50[slot]) ? round(ring.p50[slot]) : null);
      out.p99Ms.push(valid && !Number.isNaN(ring.p99[slot]) ? round(ring.p99[slot]) : null);
      while (k < sampled.length && sampled[k] <= sec) k++;
      if (k === 0 || k === sampled.length) out.ordersWritten.push(0);
      else {
        const [a, b] = [sampled[k - 1], sampled[k]];
        out.ordersWritten.push(Math.round(((this.writerTotal[b % W] - this.writerTotal[a % W]) / (b - a)) * 10) / 10);
      }
      out.backlog.push(this.writerStamp[slot] === sec ? this.writerBacklog[slot] : null);
    }
    return out;
  }

  private sampleWriter(sec: number): void {
    const slot = sec % W;
    const backlog = this.writer.backlog();
    if (sec !== this.writerSecond) {
      this.writerSecond = sec;
      this.writerStamp[slot] = sec;
      this.writerTotal[slot] = this.writer.ordersWritten();
      this.writerBacklog[slot] = backlog;
    } else if (backlog > this.writerBacklog[slot]) {
      this.writerBacklog[slot] = backlog;
    }
  }

  /** The seconds in the window at which the writer was sampled, oldest first. */
  private writerSamples(nowSec: number): number[] {
    const sampled: number[] = [];
    for (let s = nowSec - W + 1; s <= nowSec; s++) if (this.writerStamp[s % W] === s) sampled.push(s);
    return sampled;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
