// When to renew, rotate, revoke or forget the leases of dynamic secrets; when to re-read static database
// roles; how to spread catch-up work after an outage; when to restart the workloads that consume a Secret.
// Pure: time (`now`, epoch ms) and jitter (a number in [0, 1)) are parameters, so an operator restarted with
// the same recorded leases makes the same decisions and issues nothing that is not due.
//
// Pass a jitter that is stable per lease or per resource (e.g. stableJitter(lease.leaseId) from decide.ts),
// not a fresh random() per call: a deadline that moves on every reconcile would make a restarted operator
// decide differently from the one it replaced.

export interface LeaseRecord {
  leaseId: string;
  /** When the credentials were issued (epoch ms). */
  issuedAt: number;
  /** When Vault expires the lease unless it is renewed (epoch ms). */
  expiresAt: number;
  /** As Vault last reported it. */
  renewable: boolean;
  /**
   * The lease's full duration: granted at issue or by the last untruncated renewal, and the increment a
   * renewal asks for. A truncated grant does not shrink it, so the rotation lead stays sized for consumers.
   */
  ttlSeconds: number;
  state: 'active' | 'superseded';
  /** When newer credentials were written in its place. */
  supersededAt?: number;
  /** A renewal came back shorter than asked (max_ttl): renewing again cannot extend the lease. */
  truncated?: boolean;
  /** Expiry of the token that issued the lease: Vault revokes the lease together with that token. */
  parentTokenExpiresAt?: number;
}

export interface LeasePolicy {
  /** Renew once this share of the TTL has passed. */
  renewFraction: number;
  /** Deadlines are brought forward by up to this share of the TTL, so equal TTLs do not fire together. */
  jitterFraction: number;
  /** New credentials are written this share of the TTL (or of the remaining usable life) before the old die. */
  rotationLeadFraction: number;
  /** ...but at least this long before, unless the lease is too short for it (see rotationDeadline). */
  minRotationLeadMs: number;
  /** Superseded credentials stay valid this long after new ones were written, then they are revoked. */
  revokeGraceMs: number;
  /** The parent token is treated as dead this long before its recorded expiry. */
  parentTokenMarginMs: number;
  /** A static role is re-read this long after Vault's announced rotation time... */
  staticRereadDelayMs: number;
  /** ...plus up to this much jitter. */
  staticRereadJitterMs: number;
}

export const DEFAULT_LEASE_POLICY: Readonly<LeasePolicy> = Object.freeze({
  // Vault's and Vault Secrets Operator's convention: a third of the TTL is left when a renewal fails.
  renewFraction: 2 / 3,
  // Spreads renewals of equal TTLs over a window of 10 % of the TTL (6 min for 1 h leases).
  jitterFraction: 0.1,
  // Non-renewable credentials are replaced where renewable ones would be renewed, so both overlap their
  // successor for the last third of their life.
  rotationLeadFraction: 1 / 3,
  // Mounted Secrets reach pods within the kubelet sync period (1 min by default) plus its cache delay.
  minRotationLeadMs: 2 * 60_000,
  // Long enough for mounted files to update and for a debounced rollout restart to finish.
  revokeGraceMs: 5 * 60_000,
  // Covers clock skew, request latency and a few retries of the issue call before the token dies.
  parentTokenMarginMs: 30_000,
  // Vault's database engine checks its rotation queue every 5 s, and `ttl` is rounded down to whole seconds.
  staticRereadDelayMs: 6_000,
  staticRereadJitterMs: 4_000,
});

/**
 * A lease's rotation lead never exceeds this share of its usable life: a fresh lease must serve a while
 * before it is replaced, otherwise a short TTL (or a short-lived parent token) would re-issue in a loop.
 */
const MAX_LEAD_SHARE = 0.5;

export type ExternalIssueReason = 'specChanged' | 'secretMissing' | 'secretChanged' | 'forceSync';
/** 'parentTokenExpiring': log in anew before issuing; credentials issued under the dying token die with it. */
export type RotationReason = 'notRenewable' | 'maxTtl' | 'parentTokenExpiring';
export type IssueReason = 'initial' | 'expired' | RotationReason | ExternalIssueReason;

export interface LeaseState {
  leases: readonly LeaseRecord[];
  /** A reason found outside the leases (spec changed, Secret deleted or edited, force-sync) to issue now. */
  issueNow?: ExternalIssueReason;
}

export type LeaseAction =
  | { action: 'issue'; reason: IssueReason }
  | { action: 'renew'; leaseId: string; incrementSeconds: number }
  | { action: 'wait'; until: number };

export type LeaseDecision = LeaseAction & {
  /** Superseded leases whose grace period is over: revoke now. */
  revoke: string[];
  /** Superseded leases already dead (expired, or their token did): Vault revoked them, drop the records. */
  forget: string[];
  /**
   * The earliest deadline still ahead once this decision is carried out: `until` for a wait, and the
   * superseded leases' revocations and expiries. After an issue or a renewal the active lease's deadlines
   * change, so decide again with the new records. Infinity: nothing is scheduled.
   */
  wakeAt: number;
};

export interface LeaseDeadlines {
  /** When to renew; absent when renewing cannot keep the credentials alive longer. */
  renewAt?: number;
  /** When to issue new credentials instead; absent when renewals keep the lease alive. */
  rotation?: { at: number; reason: RotationReason };
  /** When the credentials stop working: the lease's expiry or its parent token's, whichever is first. */
  diesAt: number;
}

/**
 * All deadlines of a lease in one place. `parentTokenExpiresAt` adds to the record's own: the earliest
 * known death wins, since a stale early value costs one early rotation and a late one costs an outage.
 */
export function leaseDeadlines(lease: LeaseRecord, policy: LeasePolicy, jitter: number, parentTokenExpiresAt?: number): LeaseDeadlines {
  const j = unitJitter(jitter);
  const ttlMs = lease.ttlSeconds * 1000;
  const parentExpiresAt = Math.min(lease.parentTokenExpiresAt ?? Infinity, parentTokenExpiresAt ?? Infinity);
  const diesAt = Math.min(lease.expiresAt, parentExpiresAt);
  // A lease dies with the token that issued it: once that token goes first, renewing the lease is useless
  // and the only way to keep consumers working is new credentials issued under a fresh token.
  const parentDeadline = parentExpiresAt - policy.parentTokenMarginMs;
  const parentFirst = parentDeadline < lease.expiresAt;

  if (lease.renewable && !lease.truncated && !parentFirst) {
    // Measured back from the expiry, so the rule holds after any number of renewals. The jitter never takes
    // more than half the wait, so a renewal is never due the moment it was granted.
    const jitterMs = j * Math.min(policy.jitterFraction, policy.renewFraction / 2) * ttlMs;
    // Whole milliseconds, rounded down: a deadline is never later than the rule says.
    return { renewAt: Math.floor(lease.expiresAt - (1 - policy.renewFraction) * ttlMs - jitterMs), diesAt };
  }

  const reason: RotationReason = parentFirst ? 'parentTokenExpiring' : lease.truncated ? 'maxTtl' : 'notRenewable';
  const usableUntil = Math.min(lease.expiresAt, parentDeadline);
  const lifetime = Math.max(0, usableUntil - lease.issuedAt);
  const basis = Math.min(ttlMs, lifetime);
  const lead = Math.min(Math.max(policy.rotationLeadFraction * basis, policy.minRotationLeadMs), MAX_LEAD_SHARE * lifetime);
  const jitterMs = j * Math.min(policy.jitterFraction, (1 - MAX_LEAD_SHARE) / 2) * basis;
  return { rotation: { at: Math.floor(usableUntil - lead - jitterMs), reason }, diesAt };
}

/** When to renew `lease`; undefined when renewing cannot extend it (not renewable, truncated, token first). */
export function renewalDeadline(lease: LeaseRecord, policy: LeasePolicy, jitter: number, parentTokenExpiresAt?: number): number | undefined {
  return leaseDeadlines(lease, policy, jitter, parentTokenExpiresAt).renewAt;
}

/**
 * When to issue new credentials instead of renewing, and why; undefined while renewals keep the lease
 * alive. The lead before the credentials die is `rotationLeadFraction` of the TTL (or of the usable life, if
 * shorter), at least `minRotationLeadMs`, at most half the usable life, plus jitter.
 */
export function rotationDeadline(lease: LeaseRecord, policy: LeasePolicy, jitter: number, parentTokenExpiresAt?: number): { at: number; reason: RotationReason } | undefined {
  return leaseDeadlines(lease, policy, jitter, parentTokenExpiresAt).rotation;
}

/**
 * What to do with a VaultSecret's leases at `now`. For the active lease, first match wins:
 *   1. `issueNow` (spec changed, Secret missing or edited, force-sync): the Secret must change regardless.
 *   2. no active lease: issue, 'initial'.
 *   3. the active lease is dead (expired, or its parent token did): issue, 'expired'.
 *   4. its rotation deadline has passed: issue, 'notRenewable' | 'maxTtl' | 'parentTokenExpiring'.
 *   5. its renewal deadline has passed: renew.
 *   6. otherwise wait until the earliest of those deadlines.
 * Independently, each superseded lease is forgotten once dead, else revoked once `revokeGraceMs` passed
 * since it was superseded, else waited for. Of several leases recorded as active (a crash between issuing
 * and recording the supersede), the newest is the active one and the others count as superseded by it.
 * `parentTokenExpiresAt` applies to the active lease only: superseded ones may come from older tokens,
 * whose expiry their records carry.
 */
export function decideLeaseAction(state: LeaseState, now: number, policy: LeasePolicy, jitter: number, parentTokenExpiresAt?: number): LeaseDecision {
  const active = newestActive(state.leases);
  const revoke: string[] = [];
  const forget: string[] = [];
  let wakeAt = Infinity;

  for (const lease of state.leases) {
    if (lease === active) continue;
    const diesAt = Math.min(lease.expiresAt, lease.parentTokenExpiresAt ?? Infinity);
    const revokeAt = (lease.supersededAt ?? active?.issuedAt ?? lease.issuedAt) + policy.revokeGraceMs;
    if (now >= diesAt) forget.push(lease.leaseId);
    else if (now >= revokeAt) revoke.push(lease.leaseId);
    else wakeAt = Math.min(wakeAt, revokeAt, diesAt);
  }

  const action = activeLeaseAction(state, active, now, policy, jitter, parentTokenExpiresAt);
  if (action.action === 'wait') wakeAt = Math.min(wakeAt, action.until);
  return { ...action, revoke, forget, wakeAt };
}

function activeLeaseAction(state: LeaseState, active: LeaseRecord | undefined, now: number, policy: LeasePolicy, jitter: number, parentTokenExpiresAt: number | undefined): LeaseAction {
  if (state.issueNow) return { action: 'issue', reason: state.issueNow };
  if (!active) return { action: 'issue', reason: 'initial' };
  const { renewAt, rotation, diesAt } = leaseDeadlines(active, policy, jitter, parentTokenExpiresAt);
  if (now >= diesAt) return { action: 'issue', reason: 'expired' };
  if (rotation && now >= rotation.at) return { action: 'issue', reason: rotation.reason };
  if (renewAt !== undefined && now >= renewAt) return { action: 'renew', leaseId: active.leaseId, incrementSeconds: active.ttlSeconds };
  return { action: 'wait', until: Math.min(renewAt ?? Infinity, rotation?.at ?? Infinity, diesAt) };
}

function newestActive(leases: readonly LeaseRecord[]): LeaseRecord | undefined {
  let newest: LeaseRecord | undefined;
  for (const lease of leases) {
    if (lease.state === 'active' && (!newest || lease.issuedAt >= newest.issuedAt)) newest = lease;
  }
  return newest;
}

/**
 * The record after Vault answered a renewal. Vault caps renewals at the role's max_ttl: a grant shorter
 * than asked, or one that does not move the expiry forward, means renewing cannot keep these credentials
 * alive, so the lease is marked truncated and the next decision rotates it before it dies.
 */
export function afterRenewal(lease: LeaseRecord, requestedIncrementSeconds: number, grantedSeconds: number, now: number, grantedRenewable = lease.renewable): { lease: LeaseRecord; truncated: boolean } {
  const expiresAt = now + grantedSeconds * 1000;
  const truncated = grantedSeconds < requestedIncrementSeconds || expiresAt <= lease.expiresAt;
  return {
    lease: { ...lease, expiresAt, renewable: grantedRenewable, ttlSeconds: truncated ? lease.ttlSeconds : grantedSeconds, truncated },
    truncated,
  };
}

/**
 * Start times for `count` overdue items (after an outage, or a restart that finds many deadlines past),
 * evenly spaced so that no one-second window holds more than `maxPerSecond` of them. The first starts at
 * `now`. Order the items most urgent first (closest to expiry): they keep their order.
 */
export function staggerCatchUp(count: number, now: number, maxPerSecond: number): number[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a whole number ≥ 0, got ${count}`);
  if (!(maxPerSecond > 0) || !Number.isFinite(maxPerSecond)) throw new RangeError(`maxPerSecond must be a positive number, got ${maxPerSecond}`);
  const spacingMs = 1000 / maxPerSecond;
  // Rounded up to whole milliseconds: spacing only grows, so the rate cap holds.
  return Array.from({ length: count }, (_, i) => now + Math.ceil(i * spacingMs));
}

/**
 * When to read a static database role again: Vault rotates its password when `ttl` (whole seconds until
 * the next rotation, as Vault reported it at `now`) runs out, so read just after that. A role whose
 * rotation is overdue (ttl ≤ 0) is read again after the delay alone.
 */
export function staticRoleRereadAt(now: number, ttlSecondsUntilRotation: number, jitter: number, policy: LeasePolicy = DEFAULT_LEASE_POLICY): number {
  return now + Math.max(0, ttlSecondsUntilRotation) * 1000 + policy.staticRereadDelayMs + unitJitter(jitter) * policy.staticRereadJitterMs;
}

export interface RestartInput {
  now: number;
  /** Latest time new credentials were written to the Secret; undefined if never. */
  rotatedAt?: number;
  /** Those were the first credentials ever written: no workload holds older ones, so nothing restarts. */
  firstSync: boolean;
  /** Earliest rotation not yet followed by a restart; defaults to `rotatedAt`. */
  pendingSince?: number;
  lastRestartAt?: number;
  /** A restart waits until no rotation happened for this long... */
  debounceMs?: number;
  /** ...but never longer than this after the first pending rotation. */
  maxDelayMs?: number;
}

export type RestartDecision = { restart: true } | { restart: false; at?: number };

export const DEFAULT_RESTART_DEBOUNCE = Object.freeze({
  // Rotations that come together (several edits of a spec, a force-sync right after one) are seconds apart.
  debounceMs: 10_000,
  // Bounded well inside revokeGraceMs, so restarted pods hold new credentials before the old are revoked.
  maxDelayMs: 60_000,
});

/**
 * Debounced rollout restarts, trailing edge with a cap: restart at the earlier of `debounceMs` after the
 * latest rotation and `maxDelayMs` after the first rotation still pending, so a burst of rotations causes
 * one restart and a steady stream of them cannot postpone it forever. Never for the first sync, and not
 * again once a restart followed the latest rotation. `at`: when to decide again.
 */
export function restartDecision(input: RestartInput): RestartDecision {
  const { now, rotatedAt, lastRestartAt } = input;
  if (rotatedAt === undefined || input.firstSync) return { restart: false };
  if (lastRestartAt !== undefined && lastRestartAt >= rotatedAt) return { restart: false };
  const debounceMs = input.debounceMs ?? DEFAULT_RESTART_DEBOUNCE.debounceMs;
  const maxDelayMs = input.maxDelayMs ?? DEFAULT_RESTART_DEBOUNCE.maxDelayMs;
  // A pendingSince from before the last restart is stale: that restart already covered it.
  const pending = input.pendingSince;
  const since = pending === undefined || (lastRestartAt !== undefined && pending <= lastRestartAt) ? rotatedAt : Math.min(pending, rotatedAt);
  const at = Math.min(rotatedAt + debounceMs, since + maxDelayMs);
  return now >= at ? { restart: true } : { restart: false, at };
}

/** Jitter outside [0, 1) (or NaN) would push deadlines past their bounds; clamp it. */
function unitJitter(jitter: number): number {
  if (!Number.isFinite(jitter) || jitter <= 0) return 0;
  return Math.min(jitter, 1 - Number.EPSILON);
}
