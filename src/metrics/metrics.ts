// The operator's Prometheus metrics. One OperatorMetrics owns one Registry (never prom-client's global one),
// so tests and a second instance in the same process do not share counters.
//
// Cardinality: every label here takes values from a small fixed set (a result, a reason, an operation, a
// verb, a Kubernetes kind or resource type). No label ever carries a namespace, an object name, a Vault
// path, a role or a lease id: with thousands of VaultSecrets those would grow Prometheus' series without
// bound, and a Vault path can itself be sensitive. Per-object detail belongs in status conditions, events
// and logs. As a backstop, each label accepts at most MAX_LABEL_VALUES distinct values; later ones are
// counted under 'other'.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Clock } from '../util/clock.ts';
import { systemClock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import { silentLogger } from '../util/logger.ts';
import { serveMetrics, type MetricsServer } from './server.ts';

export type { MetricsServer } from './server.ts';

export const METRIC_PREFIX = 'vaultsync_';
export const MAX_LABEL_VALUES = 64;
const MAX_LABEL_LENGTH = 64;
export const OVERFLOW_LABEL = 'other';

export type SyncResult = 'written' | 'unchanged' | 'failed';
export type TokenRenewalOutcome = 'renewed' | 'relogin' | 'failed';
export type RevocationResult = 'revoked' | 'failed';
export type UntrackedLeaseCause = 'interrupted' | 'outcome_unknown';
export type ReconcileResult = 'success' | 'error';
export type KubeWriteVerb = 'create' | 'update' | 'patch' | 'apply' | 'delete';

/** What the reconciler reports per sync; `reason` is why it synced, `failure` the classified failure reason. */
export interface SyncOutcome {
  result: SyncResult;
  reason: string;
  failure?: string;
}

/** One HTTP exchange with Vault (the shape of the Vault client's `onRequest` hook). */
export interface VaultRequestSample {
  /** Low-cardinality, e.g. 'kv-read', 'login', 'lease-renew'. */
  operation: string;
  /** HTTP status, or 'error' when no response arrived. */
  status: number | 'error';
  durationMs: number;
}

export const LEASE_EXPIRY_BUCKETS = [
  { label: '<1m', belowMs: 60_000 },
  { label: '<5m', belowMs: 5 * 60_000 },
  { label: '<1h', belowMs: 60 * 60_000 },
  { label: '>=1h', belowMs: Number.POSITIVE_INFINITY },
] as const;
export type LeaseExpiryBucket = (typeof LEASE_EXPIRY_BUCKETS)[number]['label'];

/** The bucket for a lease expiring at `expiresAt`; already expired leases count as '<1m'. */
export function leaseExpiryBucket(expiresAt: number, now: number): LeaseExpiryBucket {
  const remaining = expiresAt - now;
  for (const bucket of LEASE_EXPIRY_BUCKETS) if (remaining < bucket.belowMs) return bucket.label;
  return '>=1h';
}

export interface OperatorMetricsOptions {
  /** Defaults to a new Registry owned by this instance. */
  registry?: Registry;
  /** process_* and nodejs_* metrics (CPU, memory, event loop lag, GC). Default true. */
  defaultMetrics?: boolean;
  clock?: Clock;
  log?: Logger;
}

/** Caps the distinct values a label may take, so a caller's bug cannot explode the series count. */
class LabelGuard {
  private readonly seen = new Map<string, Set<string>>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  value(metricLabel: string, raw: string): string {
    const value = raw === '' ? 'none' : raw.slice(0, MAX_LABEL_LENGTH);
    let values = this.seen.get(metricLabel);
    if (!values) this.seen.set(metricLabel, (values = new Set()));
    if (values.has(value)) return value;
    if (values.size >= MAX_LABEL_VALUES) {
      if (values.size === MAX_LABEL_VALUES) {
        values.add(OVERFLOW_LABEL); // warn once per label
        this.log.warn({ label: metricLabel, limit: MAX_LABEL_VALUES }, 'metric label has too many distinct values; counting the rest as "other"');
      }
      return OVERFLOW_LABEL;
    }
    values.add(value);
    return value;
  }
}

const seconds = (ms: number) => Math.max(0, ms) / 1000;

export class OperatorMetrics {
  readonly registry: Registry;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly labels: LabelGuard;
  private leaseSource: (() => Iterable<number>) | undefined;

  private readonly syncs: Counter<'result' | 'reason'>;
  private readonly syncFailures: Counter<'reason'>;
  private readonly reconcileDuration: Histogram<'result'>;
  private readonly queueDepth: Gauge;
  private readonly inFlight: Gauge;
  private readonly queueWait: Histogram<'priority'>;
  private readonly vaultRequests: Counter<'operation' | 'status'>;
  private readonly vaultRequestDuration: Histogram<'operation'>;
  private readonly tokenRenewals: Counter<'outcome'>;
  private readonly leases: Gauge<'expires_in'>;
  private readonly rotations: Counter;
  private readonly revocations: Counter<'result'>;
  private readonly untrackedLeases: Counter<'cause'>;
  private readonly rolloutRestarts: Counter<'kind'>;
  private readonly leader: Gauge;
  private readonly kubeWrites: Counter<'verb' | 'resource'>;

  constructor(options: OperatorMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    this.labels = new LabelGuard(this.log);
    const registers = [this.registry];
    const p = METRIC_PREFIX;

    this.syncs = new Counter({
      name: `${p}syncs_total`, help: 'Secret syncs by result (written, unchanged, failed) and the reason the sync ran.',
      labelNames: ['result', 'reason'], registers,
    });
    this.syncFailures = new Counter({
      name: `${p}sync_failures_total`, help: 'Failed syncs by classified failure reason.', labelNames: ['reason'], registers,
    });
    this.reconcileDuration = new Histogram({
      name: `${p}reconcile_duration_seconds`, help: 'Time one reconcile took, by result (success, error).',
      labelNames: ['result'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers,
    });
    this.queueDepth = new Gauge({ name: `${p}queue_depth`, help: 'Keys waiting in the work queue (due now or later).', registers });
    this.inFlight = new Gauge({ name: `${p}queue_in_flight`, help: 'Keys being reconciled right now.', registers });
    this.queueWait = new Histogram({
      name: `${p}queue_wait_seconds`, help: 'Time a key waited between becoming due and being picked up, by priority.',
      labelNames: ['priority'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300], registers,
    });
    this.vaultRequests = new Counter({
      name: `${p}vault_requests_total`, help: 'HTTP requests to Vault by operation and status code ("error" when no response arrived).',
      labelNames: ['operation', 'status'], registers,
    });
    this.vaultRequestDuration = new Histogram({
      name: `${p}vault_request_duration_seconds`, help: 'Duration of HTTP requests to Vault by operation.',
      labelNames: ['operation'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    });
    this.tokenRenewals = new Counter({
      name: `${p}token_renewals_total`, help: 'Vault token maintenance by outcome (renewed, relogin, failed).',
      labelNames: ['outcome'], registers,
    });
    this.leases = new Gauge({
      name: `${p}leases`, help: 'Vault leases held, by time left until they expire.',
      labelNames: ['expires_in'], registers,
      collect: () => this.collectLeases(),
    });
    this.rotations = new Counter({ name: `${p}rotations_total`, help: 'Dynamic credentials rotated (re-issued before expiry).', registers });
    this.revocations = new Counter({
      name: `${p}revocations_total`, help: 'Vault lease revocations by result (revoked, failed).', labelNames: ['result'], registers,
    });
    this.untrackedLeases = new Counter({
      name: `${p}untracked_lease_suspicions_total`,
      help: 'Requests for new credentials whose lease, if Vault issued one, no status records (see the LeaseMayBeUntracked event), ' +
        'by cause: interrupted (the process that asked stopped before recording the answer), outcome_unknown (the answer was lost).',
      labelNames: ['cause'], registers,
    });
    this.rolloutRestarts = new Counter({
      name: `${p}rollout_restarts_total`, help: 'Workload rollout restarts triggered, by workload kind.', labelNames: ['kind'], registers,
    });
    this.leader = new Gauge({ name: `${p}leader`, help: '1 while this process holds the leader lease, else 0.', registers });
    this.kubeWrites = new Counter({
      name: `${p}kube_writes_total`, help: 'Kubernetes API writes by verb and resource type.', labelNames: ['verb', 'resource'], registers,
    });

    // Series that exist from the start, so rate() and alerts see zeros instead of nothing.
    for (const outcome of ['renewed', 'relogin', 'failed'] as const) this.tokenRenewals.inc({ outcome }, 0);
    for (const result of ['revoked', 'failed'] as const) this.revocations.inc({ result }, 0);
    for (const cause of ['interrupted', 'outcome_unknown'] as const) this.untrackedLeases.inc({ cause }, 0);
    for (const bucket of LEASE_EXPIRY_BUCKETS) this.leases.set({ expires_in: bucket.label }, 0);
    this.leader.set(0);

    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  recordSync(outcome: SyncOutcome): void {
    this.syncs.inc({ result: outcome.result, reason: this.labels.value('sync.reason', outcome.reason) });
    if (outcome.result === 'failed') {
      this.syncFailures.inc({ reason: this.labels.value('sync_failure.reason', outcome.failure ?? 'Unknown') });
    }
  }

  observeReconcile(durationMs: number, result: ReconcileResult = 'success'): void {
    this.reconcileDuration.observe({ result }, seconds(durationMs));
  }

  setQueueDepth(depth: number): void {
    this.queueDepth.set(depth);
  }

  setInFlight(count: number): void {
    this.inFlight.set(count);
  }

  observeQueueWait(waitedMs: number, priority = 'low'): void {
    this.queueWait.observe({ priority: this.labels.value('queue.priority', priority) }, seconds(waitedMs));
  }

  recordVaultRequest(sample: VaultRequestSample): void {
    const operation = this.labels.value('vault.operation', sample.operation);
    this.vaultRequests.inc({ operation, status: this.labels.value('vault.status', String(sample.status)) });
    this.vaultRequestDuration.observe({ operation }, seconds(sample.durationMs));
  }

  recordTokenRenewal(outcome: TokenRenewalOutcome): void {
    this.tokenRenewals.inc({ outcome });
  }

  /** Replaces the lease gauge with these expiry instants (ms since the epoch). */
  setLeaseExpiries(expiresAt: Iterable<number>, now: number = this.clock.now()): void {
    const counts = new Map<LeaseExpiryBucket, number>(LEASE_EXPIRY_BUCKETS.map((b) => [b.label, 0]));
    for (const at of expiresAt) {
      const bucket = leaseExpiryBucket(at, now);
      counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
    }
    for (const [bucket, count] of counts) this.leases.set({ expires_in: bucket }, count);
  }

  /**
   * Reads lease expiries from `source` at every scrape (against the injected clock), so the buckets move
   * as time passes without anyone calling setLeaseExpiries. Pass undefined to stop.
   */
  trackLeaseExpiries(source: (() => Iterable<number>) | undefined): void {
    this.leaseSource = source;
  }

  recordRotation(): void {
    this.rotations.inc();
  }

  recordRevocation(result: RevocationResult): void {
    this.revocations.inc({ result });
  }

  recordUntrackedLeaseSuspicion(cause: UntrackedLeaseCause): void {
    this.untrackedLeases.inc({ cause });
  }

  /** `kind` is the workload kind (Deployment, StatefulSet, DaemonSet), never its name. */
  recordRolloutRestart(kind: string): void {
    this.rolloutRestarts.inc({ kind: this.labels.value('rollout.kind', kind) });
  }

  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }

  /** `resource` is the resource type, e.g. 'secrets', 'vaultsecrets/status', 'events'; never an object name. */
  recordKubeWrite(verb: KubeWriteVerb, resource: string): void {
    this.kubeWrites.inc({ verb, resource: this.labels.value('kube.resource', resource) });
  }

  /** The exposition text, as a scrape would see it. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Serves `/metrics` on `address` ('host:port'; port 0 picks a free port, reported in the result). */
  serve(address: string): Promise<MetricsServer> {
    return serveMetrics(this, address, (err) => this.log.warn({ err }, 'collecting metrics for a scrape failed'));
  }

  private collectLeases(): void {
    if (!this.leaseSource) return;
    try {
      this.setLeaseExpiries(this.leaseSource(), this.clock.now());
    } catch (err) {
      // Keep the last values: one failing callback should not fail the whole scrape.
      this.log.warn({ err }, 'reading lease expiries for metrics failed');
    }
  }
}
