import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** Latency in ms from an HDR-style histogram of nanoseconds (perf_hooks). */
export class Latency {
  readonly h: RecordableHistogram = createHistogram();

  record(startNs: bigint): void {
    const d = Number(process.hrtime.bigint() - startNs);
    this.h.record(Math.max(1, d));
  }

  ms(p: number): number {
    return this.h.count === 0 ? 0 : this.h.percentile(p) / 1e6;
  }

  summary() {
    return { p50: round(this.ms(50)), p90: round(this.ms(90)), p99: round(this.ms(99)), max: round(this.h.count ? this.h.max / 1e6 : 0), count: this.h.count };
  }
}

export const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

/** One line on stderr, rewritten in place: the progress of a long run. */
export class Progress {
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly render: () => string) {}
  start(): void {
    if (!process.stderr.isTTY) return;
    this.timer = setInterval(() => process.stderr.write(`\r${this.render().padEnd(100)}`), 250);
  }
  stop(): void {
    if (this.timer) {
      clearInterval(this.timer);
      process.stderr.write(`\r${this.render().padEnd(100)}\n`);
    }
  }
}
