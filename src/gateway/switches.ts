/**
 * Operators' switches, beside the per-sale pause: refuse every buy (503 busy), and a degraded
 * mode in which order status is served by polling only (no server-sent events).
 */
export interface SwitchValues {
  refuseBuys: boolean;
  degraded: boolean;
}

export class Switches implements SwitchValues {
  refuseBuys = false;
  degraded = false;

  set(v: Partial<SwitchValues>): SwitchValues {
    if (v.refuseBuys !== undefined) this.refuseBuys = v.refuseBuys;
    if (v.degraded !== undefined) this.degraded = v.degraded;
    return this.values();
  }

  values(): SwitchValues {
    return { refuseBuys: this.refuseBuys, degraded: this.degraded };
  }
}
