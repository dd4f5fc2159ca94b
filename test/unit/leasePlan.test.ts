import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterRenewal, planLeases, renewalDeadline, restartDue, rotationDeadline, type LeasePolicy, type LeaseRecord } from '../../src/controller/leasePlan.ts';

const T0 = Date.UTC(2026, 0, 1);
const S = 1000;
const policy: LeasePolicy = { renewFraction: 2 / 3, revokeGraceMs: 300 * S, minRotationLeadMs: 120 * S };

function lease(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  return { leaseId: 'database/creds/app/a', issuedAt: T0, expiresAt: T0 + 600 * S, renewable: true, ttlSeconds: 600, state: 'active', ...overrides };
}

test('planLeases: what happens to the active lease', () => {
  const cases: [string, { now: number; leases: LeaseRecord[]; issueNow?: 'SpecChanged' }, string][] = [
    ['no lease yet: issue', { now: T0, leases: [] }, 'issue:Initial'],
    ['fresh renewable lease: nothing', { now: T0 + 60 * S, leases: [lease()] }, 'none'],
    ['two thirds of the TTL passed: renew', { now: T0 + 400 * S, leases: [lease()] }, 'renew'],
    ['not renewable, before the rotation point: nothing', { now: T0 + 300 * S, leases: [lease({ renewable: false })] }, 'none'],
    ['not renewable, past the rotation point: issue', { now: T0 + 401 * S, leases: [lease({ renewable: false })] }, 'issue:NotRenewable'],
    ['short TTL: the lead is capped at half the life', { now: T0 + 3 * S, leases: [lease({ renewable: false, expiresAt: T0 + 8 * S, ttlSeconds: 8 })] }, 'none'],
    ['short TTL: rotation at half the life', { now: T0 + 4 * S, leases: [lease({ renewable: false, expiresAt: T0 + 8 * S, ttlSeconds: 8 })] }, 'issue:NotRenewable'],
    ['expired: issue', { now: T0 + 601 * S, leases: [lease()] }, 'issue:Expired'],
    ['parent token dies before the lease: issue two minutes before it', { now: T0 + 131 * S, leases: [lease({ parentTokenExpiresAt: T0 + 250 * S })] }, 'issue:ParentTokenExpiring'],
    ['parent token dies before the lease: not yet', { now: T0 + 129 * S, leases: [lease({ parentTokenExpiresAt: T0 + 250 * S })] }, 'none'],
    ['credentials just issued under a short-lived token are not due again at once', { now: T0 + 1 * S, leases: [lease({ parentTokenExpiresAt: T0 + 20 * S })] }, 'none'],
    ['parent token outlives the lease: renew as usual', { now: T0 + 400 * S, leases: [lease({ parentTokenExpiresAt: T0 + 3600 * S })] }, 'renew'],
    ['a reason from the reconciler wins', { now: T0 + 60 * S, leases: [lease()], issueNow: 'SpecChanged' }, 'issue:SpecChanged'],
  ];
  for (const [name, input, expected] of cases) {
    const plan = planLeases({ ...input, policy, jitter: 0 });
    const got = plan.action.kind === 'issue' ? `issue:${plan.action.reason}` : plan.action.kind;
    assert.equal(got, expected, name);
  }
});

test('planLeases: superseded leases are revoked after the grace period, or forgotten once expired', () => {
  const superseded = (id: string, supersededAt: number, expiresAt: number) => lease({ leaseId: id, state: 'superseded', supersededAt, expiresAt });
  const plan = planLeases({
    now: T0 + 400 * S,
    leases: [lease({ issuedAt: T0 + 390 * S, expiresAt: T0 + 990 * S }), superseded('old-graced', T0, T0 + 1000 * S), superseded('old-waiting', T0 + 350 * S, T0 + 1000 * S), superseded('old-expired', T0, T0 + 399 * S)],
    policy,
    jitter: 0,
  });
  assert.deepEqual(plan.revoke, ['old-graced']);
  assert.deepEqual(plan.forget, ['old-expired']);
  assert.equal(plan.nextAt, T0 + 350 * S + policy.revokeGraceMs, 'wakes when the waiting one is due');
});

test('a restarted operator with the same records issues nothing that is not due', () => {
  const records = [lease()];
  for (const now of [T0 + 1 * S, T0 + 200 * S, T0 + 330 * S]) {
    const plan = planLeases({ now, leases: records, policy, jitter: 0.5 });
    assert.equal(plan.action.kind, 'none', `at +${(now - T0) / S}s`);
    assert.ok(plan.nextAt > now && plan.nextAt <= T0 + 400 * S);
  }
});

test('max_ttl truncation: the renewal is marked final and new credentials come before expiry, with a lead', () => {
  const first = lease({ expiresAt: T0 + 8 * S, ttlSeconds: 8 });
  // Renewed at +10.6 s with 5.4 s left before max_ttl (16 s): Vault grants less than asked.
  const now = T0 + 10_600;
  const renewed = afterRenewal(first, 8, { leaseDurationSeconds: 5.4, renewable: true }, now);
  assert.equal(renewed.renewable, false, 'no further renewal can help');
  assert.equal(renewed.expiresAt, T0 + 16 * S);
  const rotateAt = rotationDeadline(renewed, policy, 0);
  assert.ok(rotateAt < renewed.expiresAt - 2 * S, 'at least two seconds of overlap for consumers');
  assert.equal(planLeases({ now: rotateAt, leases: [renewed], policy, jitter: 0 }).action.kind, 'issue');
  const untruncated = afterRenewal(first, 8, { leaseDurationSeconds: 8, renewable: true }, T0 + 5 * S);
  assert.equal(untruncated.renewable, true);
  assert.equal(untruncated.expiresAt, T0 + 13 * S);
});

test('jitter spreads the renewals of 1,000 leases with equal TTL', () => {
  const perSecond = new Map<number, number>();
  for (let i = 0; i < 1000; i++) {
    const at = renewalDeadline(lease(), policy, i / 1000);
    perSecond.set(Math.floor(at / S), (perSecond.get(Math.floor(at / S)) ?? 0) + 1);
  }
  const peak = Math.max(...perSecond.values());
  const mean = 1000 / perSecond.size;
  assert.ok(perSecond.size >= 55, `spread over ${perSecond.size} seconds`);
  assert.ok(peak <= 2 * mean, `peak ${peak}/s vs mean ${mean.toFixed(1)}/s`);
});

test('restartDue: one restart per debounce window, none without a pending rotation', () => {
  assert.deepEqual(restartDue(undefined, T0, 10 * S), { restart: false });
  assert.deepEqual(restartDue(T0, T0 + 5 * S, 10 * S), { restart: false, at: T0 + 10 * S });
  assert.deepEqual(restartDue(T0, T0 + 10 * S, 10 * S), { restart: true });
});

test('a plan with work due now says so in nextAt, so a caller re-planning after one step does not sleep', () => {
  for (const leases of [[], [lease({ renewable: false, expiresAt: T0 + 2 * S, ttlSeconds: 8 })], [lease({ expiresAt: T0 + 100 * S, ttlSeconds: 600 })]]) {
    const plan = planLeases({ now: T0 + 1 * S, leases, policy, jitter: 0 });
    assert.notEqual(plan.action.kind, 'none');
    assert.equal(plan.nextAt, T0 + 1 * S);
  }
});
