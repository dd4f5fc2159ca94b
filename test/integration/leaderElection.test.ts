// Leader election against the real API server: optimistic concurrency, MicroTime round trips and Lease
// expiry are what a fake would get wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import { LeaderElector, type LeaseApi, type LeaderElectorOptions } from '../../src/kube/leaderElection.ts';
import { eventually, kubeConfig, testNamespace } from '../support/stack.ts';

const LEASE_MS = 3_000;
const RENEW_DEADLINE_MS = 2_000;
const RETRY_MS = 500;
/** Acquire attempts wait up to 1.2 retry periods (jitter). */
const MAX_POLL_MS = RETRY_MS * 1.2;
/** Room for API latency and timers on a busy 2-core machine. */
const SLACK_MS = 500;
const LEASE_NAME = 'vault-sync-operator-leader';
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function leases(): CoordinationV1Api {
  return kubeConfig().makeApiClient(CoordinationV1Api);
}

interface Candidate {
  elector: LeaderElector;
  identity: string;
  startedAt: number[];
  stoppedAt: number[];
  observedLeaders: string[];
}

function candidate(t: { after(fn: () => Promise<void>): void }, namespace: string, identity: string, extra: Partial<LeaderElectorOptions> = {}): Candidate {
  const c: Candidate = { identity, startedAt: [], stoppedAt: [], observedLeaders: [], elector: undefined as unknown as LeaderElector };
  c.elector = new LeaderElector({
    kc: kubeConfig(),
    namespace,
    name: LEASE_NAME,
    identity,
    leaseDurationMs: LEASE_MS,
    renewDeadlineMs: RENEW_DEADLINE_MS,
    retryPeriodMs: RETRY_MS,
    onStartedLeading: () => void c.startedAt.push(Date.now()),
    onStoppedLeading: () => void c.stoppedAt.push(Date.now()),
    onNewLeader: (leader) => void c.observedLeaders.push(leader),
    ...extra,
  });
  t.after(() => c.elector.stop());
  return c;
}

/** Wraps the Lease API so a test can cut this candidate off from the API server. */
function partitionable(api: LeaseApi): { api: LeaseApi; cut(): void } {
  let down = false;
  const refuse = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED (simulated partition)'), { code: 'ECONNREFUSED' }));
  return {
    api: {
      readNamespacedLease: (p, o) => (down ? refuse() : api.readNamespacedLease(p, o)),
      createNamespacedLease: (p, o) => (down ? refuse() : api.createNamespacedLease(p, o)),
      replaceNamespacedLease: (p, o) => (down ? refuse() : api.replaceNamespacedLease(p, o)),
    },
    cut: () => {
      down = true;
    },
  };
}

async function readLease(namespace: string): Promise<V1Lease> {
  return leases().readNamespacedLease({ namespace, name: LEASE_NAME });
}

async function leaderOf(...cs: Candidate[]): Promise<Candidate> {
  return eventually('a leader', async () => cs.find((c) => c.elector.isLeader), 15_000, 25);
}

test('two candidates on one Lease: exactly one leads, and keeps renewing', async (t) => {
  const ns = await testNamespace('le-two', t);
  const a = candidate(t, ns, 'replica-a');
  const b = candidate(t, ns, 'replica-b');
  a.elector.start();
  b.elector.start();

  const leader = await leaderOf(a, b);
  const follower = leader === a ? b : a;
  const first = await readLease(ns);
  // Watch for a few renew periods: never two leaders, never a second term.
  for (let i = 0; i < 20; i++) {
    assert.ok(!(a.elector.isLeader && b.elector.isLeader), 'both candidates lead at once');
    assert.ok(leader.elector.isLeader, 'the leader lost the Lease without contention');
    await sleep(100);
  }
  assert.equal(a.startedAt.length + b.startedAt.length, 1);
  assert.equal(follower.elector.observedLeader, leader.identity);

  const later = await readLease(ns);
  assert.equal(later.spec?.holderIdentity, leader.identity);
  assert.equal(later.spec?.leaseDurationSeconds, LEASE_MS / 1000);
  assert.equal(later.spec?.leaseTransitions, 0, 'the first holder created the Lease');
  // client-node 2.x declares MicroTime as a Date but hands back the server's string, microseconds included.
  assert.match(String(later.spec?.renewTime), MICRO_TIME);
  assert.match(String(later.spec?.acquireTime), MICRO_TIME);
  assert.equal(String(later.spec?.acquireTime), String(first.spec?.acquireTime), 'renewals keep the term start');
  assert.ok(Date.parse(String(later.spec?.renewTime)) > Date.parse(String(first.spec?.renewTime)), 'renewTime advances');
});

test('a leader cut off from the API server gives up within the renew deadline, before the other takes over', async (t) => {
  const ns = await testNamespace('le-cut', t);
  const link = partitionable(leases());
  const a = candidate(t, ns, 'replica-a', { kc: undefined, api: link.api });
  a.elector.start();
  await leaderOf(a);
  const b = candidate(t, ns, 'replica-b');
  b.elector.start();
  await eventually('b to see a as leader', async () => (b.elector.observedLeader === a.identity ? true : undefined), 10_000, 25);

  const cutAt = Date.now();
  link.cut();
  await eventually('a to stop leading', async () => a.stoppedAt[0], 10_000, 25);
  const stoppedAt = a.stoppedAt[0]!;
  t.diagnostic(`a stopped leading ${stoppedAt - cutAt} ms after the cut`);
  assert.ok(stoppedAt - cutAt <= RENEW_DEADLINE_MS + 200, `a stopped ${stoppedAt - cutAt} ms after the cut`);
  assert.equal(a.elector.isLeader, false);

  await leaderOf(b);
  const takeoverAt = b.startedAt[0]!;
  assert.ok(takeoverAt >= stoppedAt, 'b started leading while a still believed it led');
  t.diagnostic(`b took over ${takeoverAt - cutAt} ms after the cut`);
  // b restarts its expiry clock when it sees a's last renewal (up to one poll after it), then needs one more
  // poll to notice the expiry.
  assert.ok(takeoverAt - cutAt <= LEASE_MS + 2 * MAX_POLL_MS + SLACK_MS, `b took over ${takeoverAt - cutAt} ms after the cut`);
  assert.ok(takeoverAt - cutAt >= LEASE_MS - MAX_POLL_MS, `b took over ${takeoverAt - cutAt} ms after the cut, before the Lease expired`);

  const lease = await readLease(ns);
  assert.equal(lease.spec?.holderIdentity, b.identity);
  assert.equal(lease.spec?.leaseTransitions, 1);
  assert.equal(a.startedAt.length, 1);
  assert.equal(a.stoppedAt.length, 1);
});

test('when the leader stops renewing without releasing, the other takes over once the Lease expires', async (t) => {
  const ns = await testNamespace('le-stop', t);
  const a = candidate(t, ns, 'replica-a');
  a.elector.start();
  await leaderOf(a);
  const b = candidate(t, ns, 'replica-b');
  b.elector.start();
  await eventually('b to see a as leader', async () => (b.elector.observedLeader === a.identity ? true : undefined), 10_000, 25);

  const stoppedAt = Date.now();
  await a.elector.stop();
  assert.equal(a.elector.isLeader, false);
  assert.deepEqual(a.stoppedAt, [], 'an intended stop is not a lost Lease');
  assert.equal((await readLease(ns)).spec?.holderIdentity, a.identity, 'stop() leaves the Lease to expire');

  await leaderOf(b);
  const elapsed = b.startedAt[0]! - stoppedAt;
  t.diagnostic(`b took over ${elapsed} ms after a stopped`);
  assert.ok(elapsed >= LEASE_MS - MAX_POLL_MS, `b took over ${elapsed} ms after a stopped, before the Lease expired`);
  assert.ok(elapsed <= LEASE_MS + 2 * MAX_POLL_MS + SLACK_MS, `b took over ${elapsed} ms after a stopped`);
  assert.equal((await readLease(ns)).spec?.leaseTransitions, 1);
});

test('a graceful release hands the Lease over within a retry period', async (t) => {
  const ns = await testNamespace('le-release', t);
  const a = candidate(t, ns, 'replica-a');
  a.elector.start();
  await leaderOf(a);
  const b = candidate(t, ns, 'replica-b');
  b.elector.start();
  await eventually('b to see a as leader', async () => (b.elector.observedLeader === a.identity ? true : undefined), 10_000, 25);

  const releasedAt = Date.now();
  await a.elector.release();
  assert.equal(a.elector.isLeader, false);
  assert.deepEqual(a.stoppedAt, []);

  await leaderOf(b);
  const elapsed = b.startedAt[0]! - releasedAt;
  t.diagnostic(`b took over ${elapsed} ms after the release`);
  assert.ok(elapsed <= MAX_POLL_MS + SLACK_MS, `b took over ${elapsed} ms after the release`);
  const lease = await readLease(ns);
  assert.equal(lease.spec?.holderIdentity, b.identity);
  assert.equal(lease.spec?.leaseDurationSeconds, LEASE_MS / 1000, 'the new holder restores the duration');
  assert.equal(lease.spec?.leaseTransitions, 1);
  assert.deepEqual(b.observedLeaders.slice(-2), ['', b.identity], 'b saw the released Lease, then itself');
});

test('a Lease another identity keeps renewing is not taken, and expiry is judged by local observation time', async (t) => {
  const ns = await testNamespace('le-held', t);
  const api = leases();
  // The remote renewTime is an hour old: only a candidate trusting remote clocks would take it at once.
  const longAgo = new V1MicroTime(Date.now() - 3_600_000);
  await api.createNamespacedLease({
    namespace: ns,
    body: {
      metadata: { name: LEASE_NAME },
      spec: { holderIdentity: 'other-replica', leaseDurationSeconds: LEASE_MS / 1000, acquireTime: longAgo, renewTime: longAgo, leaseTransitions: 4 },
    },
  });
  const c = candidate(t, ns, 'replica-c');
  c.elector.start();

  // The other holder renews every second for longer than a Lease duration.
  let renewalSent = 0;
  let renewalDone = 0;
  for (let i = 0; i < 4; i++) {
    await sleep(1_000);
    assert.equal(c.elector.isLeader, false, `took a fresh Lease after ${i + 1} s`);
    const lease = await api.readNamespacedLease({ namespace: ns, name: LEASE_NAME });
    renewalSent = Date.now();
    await api.replaceNamespacedLease({
      namespace: ns, name: LEASE_NAME,
      body: { ...lease, spec: { ...lease.spec, renewTime: new V1MicroTime(renewalSent) } },
    });
    renewalDone = Date.now();
  }
  assert.equal(c.elector.observedLeader, 'other-replica');
  assert.deepEqual(c.startedAt, []);

  await leaderOf(c);
  // c cannot have seen the last renewal before it was sent, and waits a full Lease duration from then.
  const sinceSent = c.startedAt[0]! - renewalSent;
  assert.ok(sinceSent >= LEASE_MS, `took the Lease ${sinceSent} ms after its last renewal was sent`);
  const sinceDone = c.startedAt[0]! - renewalDone;
  t.diagnostic(`c took the Lease ${sinceSent} ms after the last foreign renewal was sent`);
  assert.ok(sinceDone <= LEASE_MS + 2 * MAX_POLL_MS + SLACK_MS, `took the Lease ${sinceDone} ms after its last renewal`);

  const lease = await readLease(ns);
  assert.equal(lease.spec?.holderIdentity, c.identity);
  assert.equal(lease.spec?.leaseTransitions, 5);
  assert.match(String(lease.spec?.acquireTime), MICRO_TIME);
  assert.ok(Date.parse(String(lease.spec?.acquireTime)) >= renewalSent + LEASE_MS, 'a new term starts at the takeover');
});
