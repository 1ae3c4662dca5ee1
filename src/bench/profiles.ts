/** What a benchmark run does; `--profile` picks one, flags may override its numbers. */
export interface Profile {
  name: 'smoke' | 'sale' | 'soak';
  /** Seconds per fixed-request measure (baseline, refusal, buy path). */
  duration: number;
  connections: number;
  /** The simulated sale. */
  units: number;
  users: number;
  perUserLimit: number;
  /** Soak: payment window (s) and the share of buyers who pay; the rest expire and are sold again. */
  paymentWindowSeconds: number;
  payShare: number;
  /** Soak: how long buyers keep coming (s); 0 = until every user has tried once. */
  soakSeconds: number;
}

export const PROFILES: Record<Profile['name'], Profile> = {
  smoke: { name: 'smoke', duration: 1, connections: 50, units: 200, users: 2000, perUserLimit: 1, paymentWindowSeconds: 600, payShare: 0, soakSeconds: 0 },
  sale: { name: 'sale', duration: 5, connections: 1000, units: 10_000, users: 100_000, perUserLimit: 1, paymentWindowSeconds: 600, payShare: 0, soakSeconds: 0 },
  soak: { name: 'soak', duration: 3, connections: 200, units: 2000, users: 50_000, perUserLimit: 1, paymentWindowSeconds: 2, payShare: 0.5, soakSeconds: 30 },
};
