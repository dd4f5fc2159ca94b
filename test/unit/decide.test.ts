import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideSync, nextRefreshAt, stableJitter, type SyncFacts } from '../../src/controller/decide.ts';
import { setCondition } from '../../src/controller/conditions.ts';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const synced: SyncFacts = {
  now: T0 + 10 * 60_000,
  generation: 3,
  syncedGeneration: 3,
  lastSyncAt: T0,
  refreshIntervalMs: HOUR,
  secret: 'unchanged',
  lastAttemptFailed: false,
  jitter: 0,
};

test('decideSync: why a VaultSecret is synced now, or when next', () => {
  const cases: [string, Partial<SyncFacts>, ReturnType<typeof decideSync>][] = [
    ['never synced', { lastSyncAt: undefined, syncedGeneration: undefined }, { sync: true, reason: 'Initial' }],
    ['spec changed', { generation: 4 }, { sync: true, reason: 'SpecChanged' }],
    ['force-sync annotation set for the first time', { forceSyncRequested: 'a' }, { sync: true, reason: 'ForceSync' }],
    ['force-sync annotation changed', { forceSyncRequested: 'b', forceSyncHandled: 'a' }, { sync: true, reason: 'ForceSync' }],
    ['force-sync annotation already handled', { forceSyncRequested: 'a', forceSyncHandled: 'a' }, { sync: false, nextAt: T0 + HOUR }],
    ['destination Secret deleted', { secret: 'missing' }, { sync: true, reason: 'SecretMissing' }],
    ['destination Secret edited', { secret: 'changed' }, { sync: true, reason: 'SecretChanged' }],
    ['last attempt failed', { lastAttemptFailed: true }, { sync: true, reason: 'Retry' }],
    ['interval not yet passed', {}, { sync: false, nextAt: T0 + HOUR }],
    ['interval passed', { now: T0 + HOUR }, { sync: true, reason: 'Refresh' }],
    ['jitter brings the refresh forward by at most 10 %', { jitter: 0.5, now: T0 }, { sync: false, nextAt: T0 + 0.95 * HOUR }],
    ['secret state unknown is not a reason by itself', { secret: 'unknown' }, { sync: false, nextAt: T0 + HOUR }],
    ['spec change beats everything after it', { generation: 9, secret: 'missing', lastAttemptFailed: true }, { sync: true, reason: 'SpecChanged' }],
  ];
  for (const [name, overrides, expected] of cases) {
    assert.deepEqual(decideSync({ ...synced, ...overrides }), expected, name);
  }
});

test('nextRefreshAt stays within 90–100 % of the interval', () => {
  for (const jitter of [0, 0.25, 0.5, 0.999]) {
    const next = nextRefreshAt(T0, HOUR, jitter);
    assert.ok(next <= T0 + HOUR && next >= T0 + 0.9 * HOUR, `jitter ${jitter}`);
  }
});

test('stableJitter is stable per seed and spreads different seeds', () => {
  assert.equal(stableJitter('uid-1'), stableJitter('uid-1'));
  const values = Array.from({ length: 1000 }, (_, i) => stableJitter(`9f1c${i}-uid`));
  assert.ok(values.every((v) => v >= 0 && v < 1));
  const buckets = new Array(10).fill(0);
  for (const v of values) buckets[Math.floor(v * 10)]++;
  assert.ok(buckets.every((b) => b > 50), `roughly uniform: ${buckets.join(',')}`);
});

test('setCondition keeps lastTransitionTime unless the status flips', () => {
  const one = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'VaultUnreachable', message: 'm1' }, T0);
  assert.equal(one[0]!.lastTransitionTime, new Date(T0).toISOString());
  const two = setCondition(one, { type: 'Ready', status: 'False', reason: 'VaultDenied', message: 'm2' }, T0 + 1000);
  assert.equal(two[0]!.lastTransitionTime, new Date(T0).toISOString());
  assert.equal(two[0]!.reason, 'VaultDenied');
  const three = setCondition(two, { type: 'Ready', status: 'True', reason: 'Synced', message: 'ok' }, T0 + 2000);
  assert.equal(three[0]!.lastTransitionTime, new Date(T0 + 2000).toISOString());
  const four = setCondition(three, { type: 'Synced', status: 'True', reason: 'Synced', message: 'ok' }, T0 + 3000);
  assert.deepEqual(four.map((c) => c.type), ['Ready', 'Synced']);
});
