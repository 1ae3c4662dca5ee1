// The shop's clock, as both pages read it. The server's time is pinned to one instant of the
// monotonic clock (performance.now); the device's wall clock (Date.now) is never used for timing,
// so a device set an hour wrong changes nothing.

import { serverTime } from './api.js';

/** A kept sample is replaced by a later one this much slower only once it is a minute old. */
const RTT_SLACK_MS = 20;
const MAX_AGE_MS = 60_000;

export class ServerClock {
  /** The server's time (epoch ms) at `#mono` on performance.now()'s scale: the device's until the first sample. */
  #server = Date.now();
  #mono = performance.now();
  /** Round trip of the sample in use, ms (its error is at most half of it). */
  rtt = Infinity;
  /** performance.now() when the sample in use was taken. */
  at = -Infinity;

  /**
   * One sample of GET /api/time. Of the samples so far the one with the shortest round trip is
   * kept (the best of N, N growing with every call), unless it has grown old.
   */
  async sync() {
    const t0 = performance.now();
    const { serverTime: time } = await serverTime();
    const t1 = performance.now();
    const rtt = t1 - t0;
    if (rtt <= this.rtt + RTT_SLACK_MS || t1 - this.at > MAX_AGE_MS) {
      // The server read its clock about half-way through the round trip.
      this.#server = Date.parse(time);
      this.#mono = t0 + rtt / 2;
      this.rtt = rtt;
      this.at = t1;
    }
  }

  /** The server's time now, epoch ms. */
  now() {
    return this.#server + (performance.now() - this.#mono);
  }

  /** How long ago the sample in use was taken, ms. */
  age() {
    return performance.now() - this.at;
  }
}
