// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics:
// - a candidate takes the Lease when it is absent, released (no holder), held by itself, or expired;
// - "expired" is judged by the candidate's own clock: leaseDurationSeconds after the moment this process
//   last saw the Lease record change, never from the remote renewTime, so clock skew between replicas
//   cannot make a live leader look dead;
// - every write is a create or a resourceVersion-guarded replace, so of two candidates racing for the
//   same record only one write succeeds;
// - the leader renews every retryPeriod and gives up (onStoppedLeading) once no renewal has succeeded
//   for renewDeadline, which is shorter than leaseDuration: it stops before anyone else may start.
// Like client-go's Run, an elector leads at most once: after losing the Lease the caller is expected to
// exit (as controller-runtime does), not to campaign again with state that may be stale.
import { setTimeout as sleepFor } from 'node:timers/promises';
import {
  CoordinationV1Api, Observable, V1MicroTime,
  type ConfigurationOptions, type KubeConfig, type RequestContext, type ResponseContext, type V1Lease,
} from '@kubernetes/client-node';
import type { Clock, Random } from '../util/clock.ts';
import { systemClock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import { silentLogger } from '../util/logger.ts';
import { classifyKubeError } from './errors.ts';

export type LeaseApi = Pick<CoordinationV1Api, 'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'>;

export interface LeaderElectorOptions {
  /** Where to build the Lease client from; or pass `api` directly. */
  kc?: KubeConfig;
  api?: LeaseApi;
  namespace: string;
  name: string;
  /** Unique per replica, e.g. the pod name. */
  identity: string;
  /** How long others wait after last seeing the Lease change before taking it. Default 15 s. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before giving up. Default 10 s. */
  renewDeadlineMs?: number;
  /** Pause between attempts (acquire and renew). Default 2 s. */
  retryPeriodMs?: number;
  clock?: Clock;
  random?: Random;
  /** Waits between attempts; resolves early (without throwing) when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  log?: Logger;
  /** Called once when this process becomes leader; `signal` aborts when leadership ends for any reason. */
  onStartedLeading?: (signal: AbortSignal) => void | Promise<void>;
  /**
   * Called once when leadership is lost without being asked to stop (renewals failed for renewDeadline, or
   * another holder was seen). Not called by stop() or release(). The caller should exit the process.
   */
  onStoppedLeading?: () => void;
  /** Called when the observed holder changes, including to this process ('' when the Lease was released). */
  onNewLeader?: (identity: string) => void;
}

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
/** Acquire attempts wait retryPeriod × [1, 1 + JITTER) so that candidates do not poll in lockstep. */
const JITTER = 0.2;

/** The Lease fields leader election reads and writes, with times as the server's MicroTime strings. */
interface LeaderRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string | undefined;
  renewTime: string | undefined;
  leaseTransitions: number;
}

type AttemptResult = 'acquired' | 'held-by-other' | 'failed';

/**
 * client-node 2.x declares Lease times as V1MicroTime (a Date) but does not convert them when reading: they
 * arrive as the server's strings ("2026-01-01T00:00:00.123456Z"). Accept both.
 */
function microTimeText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return new V1MicroTime(value.getTime()).toISOString();
  return undefined;
}

function recordOf(lease: V1Lease): LeaderRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? '',
    // A Lease without a duration is valid for no time at all, as in client-go.
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: microTimeText(spec.acquireTime),
    renewTime: microTimeText(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
}

/** Request options that abort the HTTP exchange with `signal` (stop() and the renew deadline). */
function abortWith(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [{
      pre: (ctx: RequestContext) => {
        ctx.setSignal(signal);
        return new Observable(Promise.resolve(ctx));
      },
      post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
    }],
    middlewareMergeStrategy: 'append',
  };
}

async function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleepFor(ms, undefined, { signal });
  } catch {
    // aborted: the caller checks the signal
  }
}

export class LeaderElector {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;

  private readonly api: LeaseApi;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly log: Logger;
  private readonly onStartedLeading: LeaderElectorOptions['onStartedLeading'];
  private readonly onStoppedLeading: LeaderElectorOptions['onStoppedLeading'];
  private readonly onNewLeader: LeaderElectorOptions['onNewLeader'];

  /** The Lease as last read or written, with the resourceVersion the next replace is guarded by. */
  private observedLease: V1Lease | undefined;
  private observedRecord: LeaderRecord | undefined;
  private observedKey = '';
  /** Local time at which the record last changed; expiry is measured from here. */
  private observedAt = 0;

  private leading = false;
  /** Local time at which the last successful renewal was sent; the renew deadline counts from here. */
  private lastRenewAt = 0;
  private leadership: AbortController | undefined;
  private stopper: AbortController | undefined;
  private loop: Promise<void> | undefined;

  constructor(options: LeaderElectorOptions) {
    if (options.api) this.api = options.api;
    else if (options.kc) this.api = options.kc.makeApiClient(CoordinationV1Api);
    else throw new Error('LeaderElector needs either kc or api');
    if (!options.identity) throw new Error('LeaderElector needs a non-empty identity');
    this.namespace = options.namespace;
    this.name = options.name;
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    this.retryPeriodMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    // client-go's invariants: the leader must give up before others may take over, and have time to retry.
    if (this.leaseDurationMs < 1_000) throw new Error('leaseDurationMs must be at least 1000 (the Lease counts whole seconds)');
    if (this.leaseDurationMs <= this.renewDeadlineMs) throw new Error('leaseDurationMs must be greater than renewDeadlineMs');
    if (this.retryPeriodMs <= 0) throw new Error('retryPeriodMs must be positive');
    if (this.renewDeadlineMs <= this.retryPeriodMs * (1 + JITTER)) throw new Error(`renewDeadlineMs must be greater than ${1 + JITTER} × retryPeriodMs`);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? abortableSleep;
    this.log = (options.log ?? silentLogger).child({ lease: `${this.namespace}/${this.name}`, identity: this.identity });
    this.onStartedLeading = options.onStartedLeading;
    this.onStoppedLeading = options.onStoppedLeading;
    this.onNewLeader = options.onNewLeader;
  }

  /**
   * True while this process holds the Lease. Also false once renewDeadline has passed without a successful
   * renewal, even before the loop has noticed, so a check right before a write errs on the safe side.
   */
  get isLeader(): boolean {
    return this.leading && this.clock.now() - this.lastRenewAt < this.renewDeadlineMs;
  }

  /** The holder this process last observed ('' if released or unknown). */
  get observedLeader(): string {
    return this.observedRecord?.holderIdentity ?? '';
  }

  /** Starts campaigning in the background. */
  start(): void {
    if (this.stopper) throw new Error('LeaderElector was already started');
    this.stopper = new AbortController();
    const stop = this.stopper.signal;
    this.loop = this.run(stop).catch((err: unknown) => {
      this.log.error({ err }, 'leader election loop failed');
      if (this.leading) this.lose('the election loop failed');
    });
  }

  /**
   * Stops campaigning and renewing, and waits for an in-flight request to end. The Lease is left as it is,
   * so another replica takes over only once it expires; use release() on a graceful shutdown.
   */
  async stop(): Promise<void> {
    this.stopper?.abort();
    await this.loop;
    if (this.leading) {
      this.leading = false;
      this.leadership?.abort();
    }
  }

  /**
   * Graceful shutdown: stops, then, if this process was leading, marks the Lease released (no holder,
   * leaseDurationSeconds 1) so another replica takes over on its next attempt instead of waiting for
   * expiry. Call it after the work that needed leadership has stopped.
   */
  async release(): Promise<void> {
    const wasLeading = this.leading;
    await this.stop();
    if (!wasLeading || !this.observedLease) return;
    const signal = AbortSignal.timeout(this.renewDeadlineMs);
    try {
      await this.writeRelease(this.observedLease, signal);
    } catch (err) {
      if (classifyKubeError(err).kind !== 'Conflict') {
        this.log.warn({ err: errorText(err) }, 'releasing the leader Lease failed; another replica takes over when it expires');
        return;
      }
      // Our last renewal may have landed without us seeing the answer; release only if it still names us.
      try {
        const current = await this.api.readNamespacedLease({ namespace: this.namespace, name: this.name }, abortWith(signal));
        if (recordOf(current).holderIdentity !== this.identity) return;
        await this.writeRelease(current, signal);
      } catch (retryErr) {
        this.log.warn({ err: errorText(retryErr) }, 'releasing the leader Lease failed; another replica takes over when it expires');
        return;
      }
    }
    this.log.info('released the leader Lease');
  }

  private async writeRelease(lease: V1Lease, signal: AbortSignal): Promise<void> {
    const now = new V1MicroTime(this.clock.now());
    const record = recordOf(lease);
    await this.api.replaceNamespacedLease({
      namespace: this.namespace,
      name: this.name,
      body: {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: record.leaseTransitions },
      },
    }, abortWith(signal));
  }

  private async run(stop: AbortSignal): Promise<void> {
    // Acquire: try until the Lease is ours.
    while (!stop.aborted) {
      const startedAt = this.clock.now();
      const result = await this.attempt(stop, this.renewDeadlineMs);
      if (stop.aborted) return;
      if (result === 'acquired') {
        this.becomeLeader(startedAt);
        break;
      }
      await this.sleep(this.retryPeriodMs * (1 + JITTER * this.random()), stop);
    }
    // Renew: every retryPeriod, until the deadline passes without success.
    while (!stop.aborted && this.leading) {
      await this.sleep(this.retryPeriodMs, stop);
      if (stop.aborted) return;
      const startedAt = this.clock.now();
      const remaining = this.lastRenewAt + this.renewDeadlineMs - startedAt;
      if (remaining <= 0) {
        this.lose(`no successful renewal for ${this.renewDeadlineMs} ms`);
        return;
      }
      const result = await this.attempt(stop, remaining);
      if (stop.aborted) return;
      if (result === 'acquired') {
        this.lastRenewAt = startedAt;
      } else if (result === 'held-by-other') {
        this.lose(`the Lease is held by ${this.observedLeader}`);
        return;
      } else if (this.clock.now() - this.lastRenewAt >= this.renewDeadlineMs) {
        this.lose(`no successful renewal for ${this.renewDeadlineMs} ms`);
        return;
      }
    }
  }

  /** One tryAcquireOrRenew, bounded by `timeoutMs` and by stop(). Never throws. */
  private async attempt(stop: AbortSignal, timeoutMs: number): Promise<AttemptResult> {
    const signal = AbortSignal.any([stop, AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs)))]);
    try {
      return await this.tryAcquireOrRenew(signal);
    } catch (err) {
      if (!stop.aborted) {
        const level = this.leading ? 'warn' : 'debug';
        this.log[level]({ err: errorText(err) }, this.leading ? 'renewing the leader Lease failed' : 'acquiring the leader Lease failed');
      }
      return 'failed';
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<AttemptResult> {
    const now = this.clock.now();
    const options = abortWith(signal);

    // Fast path for the leader: replace on the resourceVersion we hold, skipping the read.
    if (this.leading && this.observedLease && this.observedRecord && this.validAt(now)) {
      try {
        const renewed = await this.api.replaceNamespacedLease({
          namespace: this.namespace, name: this.name,
          body: this.withRecord(this.observedLease, now, {
            acquireTime: this.observedRecord.acquireTime, leaseTransitions: this.observedRecord.leaseTransitions,
          }),
        }, options);
        this.observe(renewed, now);
        return 'acquired';
      } catch (err) {
        if (signal.aborted || classifyKubeError(err).kind !== 'Conflict') throw err;
        this.log.debug('the leader Lease changed since our last renewal; reading it again');
      }
    }

    let current: V1Lease;
    try {
      current = await this.api.readNamespacedLease({ namespace: this.namespace, name: this.name }, options);
    } catch (err) {
      if (classifyKubeError(err).kind !== 'NotFound') throw err;
      // A concurrent create by another candidate fails one of us with 409 (AlreadyExists).
      const created = await this.api.createNamespacedLease({
        namespace: this.namespace,
        body: this.withRecord({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace } }, now, {
          leaseTransitions: 0,
        }),
      }, options);
      this.observe(created, now);
      return 'acquired';
    }

    // Observed when the answer arrived: the later of the two instants, so expiry is never judged early.
    const seenAt = this.clock.now();
    this.observe(current, seenAt);
    const old = this.observedRecord!;
    if (old.holderIdentity !== '' && old.holderIdentity !== this.identity && this.validAt(seenAt)) return 'held-by-other';

    const ours = old.holderIdentity === this.identity;
    const updated = await this.api.replaceNamespacedLease({
      namespace: this.namespace, name: this.name,
      // Still ours (a renewal, or a restart with the same identity): keep the term's start and count.
      body: this.withRecord(current, seenAt, ours
        ? { acquireTime: old.acquireTime, leaseTransitions: old.leaseTransitions }
        : { leaseTransitions: old.leaseTransitions + 1 }),
    }, options);
    this.observe(updated, seenAt);
    return 'acquired';
  }

  /**
   * `lease` naming us as holder, renewed at `now`; other spec fields (e.g. a preferredHolder) are kept.
   * Without an `acquireTime` to keep, the term starts now.
   */
  private withRecord(lease: V1Lease, now: number, term: { acquireTime?: string | undefined; leaseTransitions: number }): V1Lease {
    // V1MicroTime serialises with microseconds; a plain Date's milliseconds are rejected by the server (400).
    const nowTime = new V1MicroTime(now);
    return {
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        // The server's own string goes back unchanged: the client serialises MicroTime fields as they are.
        acquireTime: term.acquireTime === undefined ? nowTime : (term.acquireTime as unknown as V1MicroTime),
        renewTime: nowTime,
        leaseTransitions: term.leaseTransitions,
      },
    };
  }

  /** Records what the server holds; the expiry clock restarts only when the record itself changed. */
  private observe(lease: V1Lease, now: number): void {
    const record = recordOf(lease);
    const key = JSON.stringify(record);
    const previousHolder = this.observedRecord?.holderIdentity;
    this.observedLease = lease;
    if (key !== this.observedKey) {
      this.observedKey = key;
      this.observedRecord = record;
      this.observedAt = now;
    }
    if (record.holderIdentity !== previousHolder) {
      this.log.info({ leader: record.holderIdentity || undefined }, record.holderIdentity ? 'observed a new leader' : 'the leader Lease was released');
      if (this.onNewLeader) {
        try {
          this.onNewLeader(record.holderIdentity);
        } catch (err) {
          this.log.warn({ err: errorText(err) }, 'onNewLeader failed');
        }
      }
    }
  }

  /** Whether the observed record is still within its duration, by our own clock. */
  private validAt(now: number): boolean {
    return !!this.observedRecord && this.observedAt + this.observedRecord.leaseDurationSeconds * 1000 > now;
  }

  private becomeLeader(renewedAt: number): void {
    this.leading = true;
    this.lastRenewAt = renewedAt;
    this.leadership = new AbortController();
    this.log.info({ transitions: this.observedRecord?.leaseTransitions }, 'became leader');
    if (!this.onStartedLeading) return;
    try {
      const started = this.onStartedLeading(this.leadership.signal);
      if (started instanceof Promise) started.catch((err: unknown) => this.log.error({ err }, 'onStartedLeading failed'));
    } catch (err) {
      this.log.error({ err }, 'onStartedLeading failed');
    }
  }

  private lose(why: string): void {
    this.leading = false;
    this.leadership?.abort();
    this.log.warn({ why }, 'lost leadership');
    try {
      this.onStoppedLeading?.();
    } catch (err) {
      this.log.error({ err }, 'onStoppedLeading failed');
    }
  }
}

/** Error text for logs: the classified Kubernetes error, not the ApiException's dump of headers. */
function errorText(err: unknown): string {
  const info = classifyKubeError(err);
  return info.status ? `${info.kind} (${info.status}): ${info.message}` : `${info.kind}: ${info.message}`;
}
