// When to renew, re-issue, revoke or forget the leases of a dynamic secret. Pure: everything comes from
// the recorded leases, the policy, a stable jitter and `now`, so an operator restarted with the same
// records makes the same decisions and issues nothing that is not due.

export interface LeaseRecord {
  leaseId: string;
  issuedAt: number;
  expiresAt: number;
  /** False also once a renewal came back truncated (max_ttl): renewing further cannot extend it. */
  renewable: boolean;
  ttlSeconds: number;
  state: 'active' | 'superseded';
  supersededAt?: number;
  /** The lease dies with the token that issued it. */
  parentTokenExpiresAt?: number;
}

export interface LeasePolicy {
  /** Renew when this share of the TTL has passed. */
  renewFraction: number;
  /** How long superseded credentials stay valid for consumers to pick up the new ones. */
  revokeGraceMs: number;
  /** Preferred shortest time between writing new credentials and the old ones' death (capped at half the life). */
  minRotationLeadMs: number;
}

export type IssueReason = 'Initial' | 'SpecChanged' | 'SecretMissing' | 'SecretChanged' | 'ForceSync' | 'NotRenewable' | 'MaxTtl' | 'ParentTokenExpiring' | 'Expired';

export interface LeasePlan {
  action: { kind: 'issue'; reason: IssueReason } | { kind: 'renew'; leaseId: string } | { kind: 'none' };
  revoke: string[];
  forget: string[];
  /** Earliest moment something is due, for the requeue. */
  nextAt: number;
}

/**
 * When new credentials must be written for `lease`: ahead of its death by a lead long enough for
 * consumers, i.e. the part of the TTL after the renewal point, at least `minRotationLeadMs`. Death is the
 * lease's expiry or, if sooner, its parent token's.
 */
export function rotationDeadline(lease: LeaseRecord, policy: LeasePolicy, jitter: number): number {
  const { byLease, byParent } = rotationDeadlines(lease, policy, jitter);
  return Math.min(byLease, byParent ?? Infinity);
}

function rotationDeadlines(lease: LeaseRecord, policy: LeasePolicy, jitter: number): { byLease: number; byParent?: number } {
  // At least minRotationLeadMs (consumers such as the kubelet need time to see the new Secret), but never
  // more than half the life, or short TTLs and short-lived tokens would re-issue in a loop.
  const lead = (lifeMs: number) => Math.min(Math.max(policy.minRotationLeadMs, lifeMs * (1 - policy.renewFraction) + 0.1 * lifeMs * jitter), lifeMs / 2);
  const byLease = lease.expiresAt - lead(lease.ttlSeconds * 1000);
  if (lease.parentTokenExpiresAt === undefined) return { byLease };
  // A parent token shorter-lived than the lease sets its own, shorter lead, measured on the token's life
  // left when the lease was issued; measured on the lease's TTL it would make rotation due again at once.
  return { byLease, byParent: lease.parentTokenExpiresAt - lead(Math.max(0, lease.parentTokenExpiresAt - lease.issuedAt)) };
}

/** Renew at `renewFraction` of the current TTL, brought forward by up to 10 % jitter. */
export function renewalDeadline(lease: LeaseRecord, policy: LeasePolicy, jitter: number): number {
  const ttlMs = lease.ttlSeconds * 1000;
  const lastExtended = lease.expiresAt - ttlMs;
  return lastExtended + ttlMs * policy.renewFraction - 0.1 * ttlMs * jitter;
}

export function planLeases(input: {
  now: number;
  leases: LeaseRecord[];
  policy: LeasePolicy;
  jitter: number;
  /** A reason to issue regardless of the lease (spec changed, Secret gone or edited, force-sync). */
  issueNow?: IssueReason;
}): LeasePlan {
  const { now, policy, jitter } = input;
  const revoke: string[] = [];
  const forget: string[] = [];
  let nextAt = Infinity;

  for (const lease of input.leases) {
    if (lease.state !== 'superseded') continue;
    if (lease.expiresAt <= now) forget.push(lease.leaseId);
    else if (now >= (lease.supersededAt ?? now) + policy.revokeGraceMs) revoke.push(lease.leaseId);
    else nextAt = Math.min(nextAt, (lease.supersededAt ?? now) + policy.revokeGraceMs, lease.expiresAt);
  }

  const active = input.leases.find((l) => l.state === 'active');
  // Something due now makes `now` the next moment too: a caller re-planning after one step must not sleep.
  const due = (action: LeasePlan['action']): LeasePlan => ({ action, revoke, forget, nextAt: Math.min(nextAt, now) });
  if (input.issueNow) return due({ kind: 'issue', reason: input.issueNow });
  if (!active) return due({ kind: 'issue', reason: 'Initial' });
  if (active.expiresAt <= now) return due({ kind: 'issue', reason: 'Expired' });

  const deadlines = rotationDeadlines(active, policy, jitter);
  const rotateAt = Math.min(deadlines.byLease, deadlines.byParent ?? Infinity);
  const parentFirst = deadlines.byParent !== undefined && deadlines.byParent < deadlines.byLease;
  const renewAt = renewalDeadline(active, policy, jitter);
  if (now >= rotateAt) {
    const reason: IssueReason = parentFirst ? 'ParentTokenExpiring' : active.renewable ? 'MaxTtl' : 'NotRenewable';
    // A renewable lease past its rotation point gets new credentials only if renewing cannot save it.
    if (!active.renewable || parentFirst) return due({ kind: 'issue', reason });
  }
  if (active.renewable && now >= renewAt) return due({ kind: 'renew', leaseId: active.leaseId });
  const next = active.renewable && !parentFirst ? Math.min(renewAt, rotateAt) : rotateAt;
  return { action: { kind: 'none' }, revoke, forget, nextAt: Math.min(nextAt, next) };
}

/**
 * The record after a renewal. Vault caps renewals at the role's max_ttl: a grant shorter than asked, or
 * an expiry that did not move, means renewing cannot keep these credentials alive much longer, so the
 * lease is marked not renewable and the next plan issues new credentials before it dies.
 */
export function afterRenewal(lease: LeaseRecord, requestedSeconds: number, granted: { leaseDurationSeconds: number; renewable: boolean }, now: number): LeaseRecord {
  const expiresAt = now + granted.leaseDurationSeconds * 1000;
  const truncated = granted.leaseDurationSeconds < requestedSeconds || expiresAt <= lease.expiresAt;
  return {
    ...lease,
    expiresAt,
    ttlSeconds: truncated ? lease.ttlSeconds : granted.leaseDurationSeconds,
    renewable: granted.renewable && !truncated,
  };
}

/**
 * Debounced restarts: the first rotation after a sync opens a window; rotations inside it join it; the
 * restart happens when it closes. Never for the first credentials a workload ever gets.
 */
export function restartDue(pendingSince: number | undefined, now: number, windowMs: number): { restart: boolean; at?: number } {
  if (pendingSince === undefined) return { restart: false };
  const at = pendingSince + windowMs;
  return now >= at ? { restart: true } : { restart: false, at };
}
