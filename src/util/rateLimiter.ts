// A token bucket that makes callers wait their turn. Used to spread lease work (issue, renew, revoke):
// after an outage or a restart many leases are due at once, and Vault should see a steady rate, not a burst.
import type { Clock } from './clock.ts';

export class TokenBucket {
  private readonly ratePerSecond: number;
  private readonly burst: number;
  private readonly clock: Clock;
  private readonly sleep: (ms: number) => Promise<void>;
  private tokens: number;
  private updatedAt: number;
  /** Callers are served in arrival order: each reserves its slot before waiting. */
  private nextFreeAt = 0;

  constructor(opts: { ratePerSecond: number; burst: number; clock: Clock; sleep?: (ms: number) => Promise<void> }) {
    if (!(opts.ratePerSecond > 0) || !(opts.burst >= 1)) throw new RangeError('ratePerSecond must be > 0 and burst >= 1');
    this.ratePerSecond = opts.ratePerSecond;
    this.burst = opts.burst;
    this.clock = opts.clock;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.tokens = opts.burst;
    this.updatedAt = opts.clock.now();
  }

  /** How long the next caller would wait, reserving its token; for tests and for `take`. */
  reserve(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.ratePerSecond);
    this.updatedAt = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return Math.max(0, this.nextFreeAt - now);
    const wait = (-this.tokens / this.ratePerSecond) * 1000;
    this.nextFreeAt = now + wait;
    return wait;
  }

  async take(): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await this.sleep(wait);
  }
}
