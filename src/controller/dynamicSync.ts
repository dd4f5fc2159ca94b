// Dynamic secrets (database credentials, PKI, cloud credentials): issue, renew, rotate before expiry, and
// revoke what is superseded, with every lease recorded in status so a restarted operator resumes exactly
// where the last one stopped. The decisions are leasePlan.ts's; this file does the I/O in a safe order:
// new credentials are written to the Secret before the old lease is marked superseded, and a lease is
// dropped from status only after Vault revoked it or it expired. Before asking Vault for new credentials it
// records the intent in status (pendingIssue), so a process that died before recording the answer leaves a
// trace its successor reports: the one lease that no status may record.
import type { LeaseStatus, PendingIssue, VaultSecretSpec } from '../api/index.ts';
import { parseDuration } from '../api/index.ts';
import { classifyKubeError } from '../kube/errors.ts';
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
/** A namespace being deleted takes the VaultSecret with it soon; until then look again this rarely. */
const TERMINATING_RECHECK_MS = 30_000;

export const UNTRACKED_LEASE_REASON = 'LeaseMayBeUntracked';
/**
 * interrupted: an intent no process settled (restart, leader change, or a status write that failed after
 * issuing); outcome_unknown: Vault's answer to an issue request was lost (timeout, reset, server error).
 */
export type UntrackedCause = 'interrupted' | 'outcome_unknown';

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
  secrets: Pick<SecretStore, 'namespaceTerminating'>;
  events: EventSink;
  restarter: Pick<WorkloadRestarter, 'restart'>;
  hmacKey: Buffer;
  writeStatus: (obj: VaultSecretObject, status: VaultSecretStatus) => Promise<void>;
  /** A JSON merge patch of the named status fields only (null removes one). */
  patchStatus: (obj: VaultSecretObject, fields: Partial<Record<keyof VaultSecretStatus, unknown>>) => Promise<void>;
  onUntrackedLease?: (cause: UntrackedCause) => void;
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

/**
 * The Vault path whose answer may carry a lease that status must record, or undefined when an issue cannot
 * leave one behind: static database roles, and dynamic endpoints that answered without a lease before.
 */
export function leasedIssuePath(spec: VaultSecretSpec, status: VaultSecretStatus | undefined): string | undefined {
  const { database, dynamic } = spec.source;
  if (database) return database.static ? undefined : `${database.mount}/creds/${database.role}`;
  if (!dynamic) return undefined;
  const issuedWithoutLease = (status?.leases?.length ?? 0) === 0 && status?.dataHmac !== undefined;
  return issuedWithoutLease ? undefined : dynamic.path;
}

/**
 * Whether a failed Secret write may have landed anyway (no answer, or a server error), so that consumers may
 * already use the credentials. Rendering and ownership checks fail before anything is written.
 */
export function secretWriteMayHaveLanded(err: unknown): boolean {
  if (err instanceof SyncError) return false;
  return classifyKubeError(err).kind === 'Transient';
}

/** This process's own intent for a VaultSecret; `settled`: it knows what became of the request. */
export interface OwnIntent {
  since: string;
  settled: boolean;
}

/**
 * What an intent found in status means: 'settled' when this process wrote it and knows the outcome (only
 * clearing it failed); otherwise no process that knows the outcome is left, and a lease may be untracked.
 */
export function judgeIntent(found: PendingIssue | undefined, own: OwnIntent | undefined): 'none' | 'settled' | 'untracked' {
  if (!found) return 'none';
  return own !== undefined && own.since === found.since && own.settled ? 'settled' : 'untracked';
}

/** The Warning for a lease that may exist unrecorded: where to look, and how long it can live. Names no secret. */
export function untrackedLeaseMessage(m: {
  vaultSecret: string; intent: PendingIssue; cause: UntrackedCause; lastTtlSeconds?: number; vaultNamespace?: string; failure?: string;
}): string {
  const what = m.cause === 'interrupted'
    ? `An operator process asked Vault for new credentials from ${m.intent.path} at ${m.intent.since} and stopped before recording the answer`
    : `The answer to a request for new credentials from ${m.intent.path} at ${m.intent.since} was lost (${m.failure ?? 'no answer'})`;
  // Nobody renews such a lease, so it lives for the TTL it was issued with, not up to the role's max_ttl.
  const expiry = m.lastTtlSeconds !== undefined
    ? `around ${new Date(Date.parse(m.intent.since) + m.lastTtlSeconds * 1000).toISOString()} if the role still grants the ${m.lastTtlSeconds}s TTL of the last lease recorded here`
    : 'the role\'s TTL after that';
  const ns = m.vaultNamespace ? ` -namespace=${m.vaultNamespace}` : '';
  return `${what}: if Vault issued a lease, no status records it and nothing renews or revokes it; it expires at the end of its TTL ` +
    `(${expiry}) or with the Vault token that asked for it. To find it: vault list${ns} sys/leases/lookup/${m.intent.path}/ ` +
    `with a token allowed to list sys/leases/lookup; a lease not in status.leases of VaultSecret ${m.vaultSecret} is it (vault lease revoke ends it now).`;
}

export class DynamicSecretSync {
  private readonly deps: DynamicDeps;
  /** leaseId → the issuing token's obtainedAt, for leases issued by this process. */
  private readonly parents = new Map<string, number>();
  /** uid → the intent this process wrote last, while status may still hold it. */
  private readonly intents = new Map<string, OwnIntent>();
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
    const status: VaultSecretStatus = { ...obj.status };
    let changed = false;
    // Reported before anything that needs Vault, so an outage cannot delay the warning; cleared with this pass's status write.
    if (obj.status?.pendingIssue) {
      this.noticeIntent(obj, spec, obj.status.pendingIssue, recordsFrom(obj.status));
      delete status.pendingIssue;
      changed = true;
    }
    const refreshed = await this.refreshParentExpiry(target, spec, recordsFrom(obj.status));
    let records = refreshed.records;
    const plan = planLeases({ now, leases: records, policy, jitter, issueNow });
    changed ||= refreshed.changed;
    let nextAt = plan.nextAt;
    /** The object as the API server has it, so writeStatus removes what this pass added and then dropped. */
    let current = obj;
    // Secrets cannot be created in a namespace being deleted: new credentials would reach no one (and the
    // VaultSecret, deleted with the namespace, revokes what it holds).
    const blocked = plan.action.kind === 'issue' && await this.deps.secrets.namespaceTerminating(meta.namespace!);

    if (blocked) {
      this.deps.log.info({ vaultSecret: `${meta.namespace}/${meta.name}` }, 'namespace is being deleted: not issuing new credentials');
      nextAt = now + TERMINATING_RECHECK_MS;
    } else if (plan.action.kind === 'issue') {
      await this.deps.leaseLimiter?.take();
      const intent = await this.recordIntent(obj, spec, now);
      if (intent) current = { ...obj, status: { ...obj.status, pendingIssue: intent } };
      let issued: IssuedSecret;
      try {
        // New credentials under a token about to expire would die with it: log in anew first.
        issued = await this.deps.source.issue(target, spec, { freshToken: plan.action.reason === 'ParentTokenExpiring' });
      } catch (err) {
        if (intent) await this.settleFailedIssue(current, spec, intent, err, records);
        throw err;
      }
      let data: Record<string, Buffer>;
      try {
        data = await this.deps.writeSecret(current, spec, issued.data);
      } catch (err) {
        await this.abandon(current, spec, issued, intent, records, policy, now, secretWriteMayHaveLanded(err));
        throw err;
      }
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
      await this.deps.writeStatus(current, status);
    }
    // Status no longer holds an intent of ours (or holds none that matters): nothing left to remember.
    this.intents.delete(target.uid);
    return { nextAt: Number.isFinite(nextAt) ? nextAt : now + 3_600_000, issued: plan.action.kind === 'issue' && !blocked };
  }

  /** An intent found in status: warn unless this process knows what became of it. */
  private noticeIntent(obj: VaultSecretObject, spec: VaultSecretSpec, found: PendingIssue, records: LeaseRecord[]): void {
    const uid = obj.metadata.uid ?? '';
    if (judgeIntent(found, this.intents.get(uid)) === 'untracked') this.reportUntracked(obj, spec, found, 'interrupted', records);
    // Reported once: until status is cleared, this process treats it as settled.
    this.intents.set(uid, { since: found.since, settled: true });
  }

  private reportUntracked(obj: VaultSecretObject, spec: VaultSecretSpec, intent: PendingIssue, cause: UntrackedCause, records: LeaseRecord[], failure?: string): void {
    const meta = obj.metadata;
    const last = records.reduce<LeaseRecord | undefined>((a, r) => (!a || r.issuedAt > a.issuedAt ? r : a), undefined);
    const message = untrackedLeaseMessage({
      vaultSecret: `${meta.namespace}/${meta.name}`, intent, cause, lastTtlSeconds: last?.ttlSeconds, vaultNamespace: spec.vault?.namespace, failure,
    });
    this.deps.log.warn({ vaultSecret: `${meta.namespace}/${meta.name}`, path: intent.path, since: intent.since, cause }, 'a Vault lease may exist that no status records');
    this.deps.onUntrackedLease?.(cause);
    this.deps.events.emit(eventTarget(obj), 'Warning', UNTRACKED_LEASE_REASON, message);
  }

  /** Records in status that new credentials are being asked for; undefined when no lease can result. */
  private async recordIntent(obj: VaultSecretObject, spec: VaultSecretSpec, now: number): Promise<PendingIssue | undefined> {
    const path = leasedIssuePath(spec, obj.status);
    if (!path) return undefined;
    const intent = { since: new Date(now).toISOString(), path };
    const uid = obj.metadata.uid ?? '';
    // Settled until the request goes out: a failed patch leaves nothing unknown behind.
    this.intents.set(uid, { since: intent.since, settled: true });
    await this.deps.patchStatus(obj, { pendingIssue: intent });
    this.intents.set(uid, { since: intent.since, settled: false });
    return intent;
  }

  /** The issue request failed: quietly when Vault certainly issued nothing, with the warning when unsure. */
  private async settleFailedIssue(obj: VaultSecretObject, spec: VaultSecretSpec, intent: PendingIssue, err: unknown, records: LeaseRecord[]): Promise<void> {
    const unknown = !(err instanceof SyncError) || err.issueOutcomeUnknown;
    if (unknown) this.reportUntracked(obj, spec, intent, 'outcome_unknown', records, err instanceof SyncError ? err.reason : 'unexpected error');
    const uid = obj.metadata.uid ?? '';
    this.intents.set(uid, { since: intent.since, settled: true });
    await this.clearIntent(obj, { pendingIssue: null });
  }

  /**
   * Vault issued credentials the Secret did not take. If the write certainly failed nobody can use them: they
   * are revoked at once. Otherwise, or if Vault refuses, the lease is recorded as superseded: revoked after the
   * grace period (at once on the next pass when no Secret holds it), or on deletion.
   */
  private async abandon(obj: VaultSecretObject, spec: VaultSecretSpec, issued: IssuedSecret, intent: PendingIssue | undefined, records: LeaseRecord[], policy: LeasePolicy, now: number, mayBeInUse: boolean): Promise<void> {
    const meta = obj.metadata;
    const target = { namespace: meta.namespace!, name: meta.name, uid: meta.uid ?? '' };
    if (!issued.lease) {
      if (intent) await this.clearIntent(obj, { pendingIssue: null });
      return;
    }
    let revoked = false;
    if (!mayBeInUse) {
      try {
        await this.deps.source.revoke(target, spec, issued.lease.leaseId);
        this.deps.onRevocation?.('revoked');
        revoked = true;
      } catch (err) {
        this.deps.onRevocation?.('failed');
        this.deps.log.warn({ leaseId: issued.lease.leaseId, err: String((err as Error).message ?? err) }, 'revoking credentials that reached no Secret failed; recording the lease to revoke it later');
      }
    }
    if (revoked) {
      if (intent) this.intents.set(target.uid, { since: intent.since, settled: true });
      if (intent) await this.clearIntent(obj, { pendingIssue: null });
      return;
    }
    const lease: LeaseRecord = {
      leaseId: issued.lease.leaseId, issuedAt: now, expiresAt: now + issued.lease.leaseDurationSeconds * 1000,
      renewable: issued.lease.renewable, ttlSeconds: issued.lease.leaseDurationSeconds, state: 'superseded',
      supersededAt: mayBeInUse ? now : now - policy.revokeGraceMs, parentTokenExpiresAt: issued.parentTokenExpiresAt,
    };
    // Settled only once status records the lease; if this write fails the next pass warns.
    if (await this.clearIntent(obj, { leases: toStatus([...records, lease]), ...(intent ? { pendingIssue: null } : {}) }) && intent) {
      this.intents.set(target.uid, { since: intent.since, settled: true });
    }
  }

  /** Best effort: a pass that fails to clear an intent it settled clears it next time. */
  private async clearIntent(obj: VaultSecretObject, fields: Partial<Record<keyof VaultSecretStatus, unknown>>): Promise<boolean> {
    try {
      await this.deps.patchStatus(obj, fields);
      return true;
    } catch (err) {
      this.deps.log.warn({ vaultSecret: `${obj.metadata.namespace}/${obj.metadata.name}`, err: String((err as Error).message ?? err) }, 'updating status after a failed issue failed');
      return false;
    }
  }

  /** On deletion: revoke every lease still held (unless the spec keeps them). */
  async revokeAll(obj: VaultSecretObject, spec: VaultSecretSpec): Promise<void> {
    // An unrecorded lease is not revoked below: say so before the VaultSecret, and its trace, are gone.
    if (obj.status?.pendingIssue) this.noticeIntent(obj, spec, obj.status.pendingIssue, recordsFrom(obj.status));
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
