// Dynamic secrets (database credentials, PKI, cloud credentials): issue, renew, rotate before expiry, and
// revoke what is superseded, with every lease recorded in status so a restarted operator resumes exactly
// where the last one stopped. The decisions are leasePlan.ts's; this file does the I/O in a safe order:
// new credentials are written to the Secret before the old lease is marked superseded, and a lease is
// dropped from status only after Vault revoked it or it expired.
import type { LeaseStatus, VaultSecretSpec } from '../api/index.ts';
import { parseDuration } from '../api/index.ts';
import type { EventSink } from '../kube/events.ts';
import type { SecretStore } from '../kube/secrets.ts';
import { dataHmac } from '../render/secretData.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import { sameJson, setReadyAndSynced } from './conditions.ts';
import { vaultSecretEventTarget as eventTarget } from './vaultSecretObject.ts';
import { afterRenewal, planLeases, restartDue, type IssueReason, type LeasePolicy, type LeaseRecord } from './leasePlan.ts';
import type { VaultSecretObject, VaultSecretStatus } from './reconciler.ts';
import { SyncError } from './syncError.ts';
import type { IssuedSecret } from './vaultSource.ts';
import type { WorkloadRestarter } from './workloads.ts';

/** Restarts of rolloutRestartTargets wait this long after a rotation, so a burst of rotations restarts once. */
export const RESTART_DEBOUNCE_MS = 10_000;
/** The kubelet refreshes mounted Secrets about once a minute; two minutes cover its sync period and cache. */
const MIN_ROTATION_LEAD_MS = 120_000;
/** Vault's database engine checks its static-role rotation queue every 5 s; re-read after that. */
const STATIC_REREAD_DELAY_MS = 6_000;

export interface DynamicSource {
  issue(target: Target, spec: VaultSecretSpec, opts?: { freshToken?: boolean }): Promise<IssuedSecret>;
  renew(target: Target, spec: VaultSecretSpec, leaseId: string, incrementSeconds: number): Promise<{ leaseDurationSeconds: number; renewable: boolean }>;
  revoke(target: Target, spec: VaultSecretSpec, leaseId: string): Promise<void>;
  currentToken(target: Target, spec: VaultSecretSpec): Promise<{ obtainedAt: number; expiresAt: number } | undefined>;
}

type Target = { namespace: string; name: string; uid: string };

export interface DynamicDeps {
  clock: Clock;
  log: Logger;
  source: DynamicSource;
  secrets: SecretStore;
  events: EventSink;
  restarter: WorkloadRestarter;
  hmacKey: Buffer;
  writeStatus: (obj: VaultSecretObject, status: VaultSecretStatus) => Promise<void>;
  /** Renders the Secret's data from the issued data (templates, key checks) and applies it. */
  writeSecret: (obj: VaultSecretObject, spec: VaultSecretSpec, data: Record<string, unknown>) => Promise<Record<string, Buffer>>;
  onRotation?: () => void;
  onRevocation?: (result: 'revoked' | 'failed') => void;
  onRestart?: (kind: string) => void;
  /** Paces lease work (issue, renew, revoke) so a backlog after an outage reaches Vault at a steady rate. */
  leaseLimiter?: { take(): Promise<void> };
}

export function policyFrom(spec: VaultSecretSpec): LeasePolicy {
  return {
    renewFraction: spec.leases?.renewFraction ?? 0.67,
    revokeGraceMs: parseDuration(spec.leases?.revokeGracePeriod ?? '5m'),
    minRotationLeadMs: MIN_ROTATION_LEAD_MS,
  };
}

export function recordsFrom(status: VaultSecretStatus | undefined): LeaseRecord[] {
  return (status?.leases ?? []).map((l) => ({
    leaseId: l.leaseId,
    issuedAt: Date.parse(l.issuedAt),
    expiresAt: Date.parse(l.expiresAt),
    renewable: l.renewable,
    ttlSeconds: l.ttlSeconds,
    state: l.state,
    supersededAt: l.supersededAt ? Date.parse(l.supersededAt) : undefined,
    parentTokenExpiresAt: l.parentTokenExpiresAt ? Date.parse(l.parentTokenExpiresAt) : undefined,
  }));
}

function toStatus(records: LeaseRecord[]): LeaseStatus[] {
  const iso = (ms: number) => new Date(ms).toISOString();
  return records.map((r) => ({
    leaseId: r.leaseId,
    issuedAt: iso(r.issuedAt),
    expiresAt: iso(r.expiresAt),
    renewable: r.renewable,
    ttlSeconds: r.ttlSeconds,
    state: r.state,
    ...(r.supersededAt !== undefined ? { supersededAt: iso(r.supersededAt) } : {}),
    ...(r.parentTokenExpiresAt !== undefined ? { parentTokenExpiresAt: iso(r.parentTokenExpiresAt) } : {}),
  }));
}

export class DynamicSecretSync {
  private readonly deps: DynamicDeps;
  /** leaseId → the issuing token's obtainedAt, for leases issued by this process. */
  private readonly parents = new Map<string, number>();
  constructor(deps: DynamicDeps) {
    this.deps = deps;
  }

  /**
   * A token renewed in the background outlives the expiry recorded at issue time. Only this process can
   * tell that the token it renewed is the lease's parent; after a restart the recorded expiry stands.
   */
  private async refreshParentExpiry(target: Target, spec: VaultSecretSpec, records: LeaseRecord[]): Promise<{ records: LeaseRecord[]; changed: boolean }> {
    const active = records.find((r) => r.state === 'active');
    if (!active || active.parentTokenExpiresAt === undefined || !this.parents.has(active.leaseId)) return { records, changed: false };
    const current = await this.deps.source.currentToken(target, spec);
    if (!current || current.obtainedAt !== this.parents.get(active.leaseId) || current.expiresAt <= active.parentTokenExpiresAt + 1000) {
      return { records, changed: false };
    }
    return { records: records.map((r) => (r === active ? { ...r, parentTokenExpiresAt: current.expiresAt } : r)), changed: true };
  }

  /**
   * One pass over a dynamic VaultSecret; returns when to come back. `issueNow` carries reasons the
   * reconciler found (spec changed, Secret missing or edited, force-sync).
   */
  async sync(obj: VaultSecretObject, spec: VaultSecretSpec, jitter: number, issueNow: IssueReason | undefined): Promise<{ nextAt: number; issued: boolean }> {
    const { clock } = this.deps;
    const now = clock.now();
    const meta = obj.metadata;
    const target = { namespace: meta.namespace!, name: meta.name, uid: meta.uid ?? '' };
    const policy = policyFrom(spec);
    const refreshed = await this.refreshParentExpiry(target, spec, recordsFrom(obj.status));
    let records = refreshed.records;
    const status: VaultSecretStatus = { ...obj.status };
    const plan = planLeases({ now, leases: records, policy, jitter, issueNow });
    let changed = refreshed.changed;
    let nextAt = plan.nextAt;

    if (plan.action.kind === 'issue') {
      await this.deps.leaseLimiter?.take();
      // New credentials under a token about to expire would die with it: log in anew first.
      const issued = await this.deps.source.issue(target, spec, { freshToken: plan.action.reason === 'ParentTokenExpiring' });
      const data = await this.deps.writeSecret(obj, spec, issued.data);
      // Only now that consumers can see the new credentials is the old lease superseded.
      const firstEver = records.length === 0 && !obj.status?.lastRotationTime && !obj.status?.dataHmac;
      records = records.map((r) => (r.state === 'active' ? { ...r, state: 'superseded' as const, supersededAt: now } : r));
      if (issued.lease) {
        records.push({
          leaseId: issued.lease.leaseId, issuedAt: now, expiresAt: now + issued.lease.leaseDurationSeconds * 1000,
          renewable: issued.lease.renewable, ttlSeconds: issued.lease.leaseDurationSeconds, state: 'active',
          parentTokenExpiresAt: issued.parentTokenExpiresAt,
        });
        if (issued.parentTokenObtainedAt !== undefined) this.parents.set(issued.lease.leaseId, issued.parentTokenObtainedAt);
      }
      status.dataHmac = dataHmac(this.deps.hmacKey, data);
      status.lastRotationTime = new Date(now).toISOString();
      status.lastSyncTime = status.lastRotationTime;
      if (!firstEver && (spec.rolloutRestartTargets?.length ?? 0) > 0 && !status.pendingRestartSince) {
        status.pendingRestartSince = new Date(now).toISOString();
      }
      changed = true;
      this.deps.onRotation?.();
      this.deps.events.emit(eventTarget(obj), 'Normal', firstEver ? 'CredentialsIssued' : 'CredentialsRotated',
        `wrote new credentials to Secret ${spec.destination?.name ?? meta.name} (${plan.action.reason}` +
        (issued.lease ? `, lease valid ${issued.lease.leaseDurationSeconds}s` : '') + ')');
      // Static database roles have no lease: Vault rotates the password after `ttl`; read again right after.
      if (!issued.lease) nextAt = Math.min(nextAt, now + Math.max(1, issued.ttlSeconds) * 1000 + STATIC_REREAD_DELAY_MS);
      const fresh = records.find((r) => r.state === 'active');
      if (fresh) nextAt = Math.min(nextAt, planLeases({ now, leases: [fresh], policy, jitter }).nextAt);
    } else if (plan.action.kind === 'renew') {
      const leaseId = plan.action.leaseId;
      const lease = records.find((r) => r.leaseId === leaseId)!;
      try {
        await this.deps.leaseLimiter?.take();
        const granted = await this.deps.source.renew(target, spec, leaseId, lease.ttlSeconds);
        const renewed = afterRenewal(lease, lease.ttlSeconds, granted, now);
        records = records.map((r) => (r.leaseId === leaseId ? renewed : r));
        changed = true;
        nextAt = Math.min(nextAt, planLeases({ now, leases: [renewed], policy, jitter }).nextAt);
      } catch (err) {
        // A lease Vault no longer knows (revoked outside, or its token died) cannot be saved: replace it.
        if (err instanceof SyncError && err.reason === 'VaultPathNotFound') {
          records = records.map((r) => (r.leaseId === leaseId ? { ...r, renewable: false, expiresAt: now } : r));
          changed = true;
          nextAt = now;
        } else {
          throw err;
        }
      }
    } else {
      nextAt = Math.min(nextAt, plan.nextAt);
    }

    // Superseded leases: revoke after the grace period; forget once expired (Vault already revoked them).
    for (const leaseId of plan.revoke) {
      try {
        await this.deps.leaseLimiter?.take();
        await this.deps.source.revoke(target, spec, leaseId);
        this.deps.onRevocation?.('revoked');
        records = records.filter((r) => r.leaseId !== leaseId);
        this.parents.delete(leaseId);
        changed = true;
      } catch (err) {
        this.deps.onRevocation?.('failed');
        this.deps.log.warn({ leaseId, err: String((err as Error).message ?? err) }, 'revoking a superseded lease failed; it stays tracked');
        nextAt = Math.min(nextAt, now + 30_000);
      }
    }
    if (plan.forget.length > 0) {
      records = records.filter((r) => !plan.forget.includes(r.leaseId));
      for (const leaseId of plan.forget) this.parents.delete(leaseId);
      changed = true;
    }

    // Debounced rollout restarts of the consuming workloads.
    const pending = status.pendingRestartSince ? Date.parse(status.pendingRestartSince) : undefined;
    const restart = restartDue(pending, now, RESTART_DEBOUNCE_MS);
    if (restart.restart && spec.rolloutRestartTargets?.length) {
      const restarted = await this.deps.restarter.restart(meta.namespace!, spec.rolloutRestartTargets, new Date(now));
      for (const w of restarted) {
        this.deps.onRestart?.(w.split('/')[0]!);
        this.deps.events.emit(eventTarget(obj), 'Normal', 'RolloutRestarted', `restarted ${w} after credentials rotated`);
      }
      status.lastRestartTime = new Date(now).toISOString();
      delete status.pendingRestartSince;
      changed = true;
    } else if (restart.at !== undefined) {
      nextAt = Math.min(nextAt, restart.at);
    }

    status.leases = toStatus(records);
    const ready = describeReady(spec, records);
    const conditions = setReadyAndSynced(obj.status?.conditions, 'True', 'Synced', ready, meta.generation, now);
    const conditionsChanged = !sameJson(conditions, obj.status?.conditions ?? []);
    if (changed || conditionsChanged || obj.status?.observedGeneration !== meta.generation) {
      status.conditions = conditions;
      status.observedGeneration = meta.generation;
      status.secretName = spec.destination?.name ?? meta.name;
      status.nextSyncTime = Number.isFinite(nextAt) ? new Date(nextAt).toISOString() : undefined;
      await this.deps.writeStatus(obj, status);
    }
    return { nextAt: Number.isFinite(nextAt) ? nextAt : now + 3_600_000, issued: plan.action.kind === 'issue' };
  }

  /** On deletion: revoke every lease still held (unless the spec keeps them). */
  async revokeAll(obj: VaultSecretObject, spec: VaultSecretSpec): Promise<void> {
    if (spec.leases?.revokeOnDelete === false) return;
    const meta = obj.metadata;
    const target = { namespace: meta.namespace!, name: meta.name, uid: meta.uid ?? '' };
    const now = this.deps.clock.now();
    for (const lease of recordsFrom(obj.status)) {
      if (lease.expiresAt <= now) continue;
      await this.deps.source.revoke(target, spec, lease.leaseId);
      this.deps.onRevocation?.('revoked');
    }
  }
}

function describeReady(spec: VaultSecretSpec, records: LeaseRecord[]): string {
  const active = records.find((r) => r.state === 'active');
  const where = spec.source.database ? `${spec.source.database.mount}/${spec.source.database.static ? 'static-creds' : 'creds'}/${spec.source.database.role}` : spec.source.dynamic?.path ?? 'Vault';
  const superseded = records.filter((r) => r.state === 'superseded').length;
  return `Secret ${spec.destination?.name ?? 'destination'} holds credentials from ${where}` +
    (active ? `; lease expires ${new Date(active.expiresAt).toISOString()}` : '') +
    (superseded ? `; ${superseded} superseded lease(s) awaiting revocation` : '');
}
