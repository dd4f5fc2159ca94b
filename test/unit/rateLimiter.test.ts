import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/util/clock.ts';
import { TokenBucket } from '../../src/util/rateLimiter.ts';

test('a burst beyond the bucket is spread at the configured rate', () => {
  const clock = new ManualClock();
  const bucket = new TokenBucket({ ratePerSecond: 10, burst: 5, clock });
  const waits = Array.from({ length: 25 }, () => bucket.reserve());
  assert.deepEqual(waits.slice(0, 5), [0, 0, 0, 0, 0], 'the burst goes at once');
  assert.deepEqual(waits.slice(5, 8).map(Math.round), [100, 200, 300]);
  assert.equal(Math.round(waits.at(-1)!), 2000, '20 beyond the burst at 10/s take 2 s');
  // Per second of the schedule, never more than the rate (after the burst).
  const perSecond = new Map<number, number>();
  for (const w of waits.slice(5)) perSecond.set(Math.floor((w - 1) / 1000), (perSecond.get(Math.floor((w - 1) / 1000)) ?? 0) + 1);
  assert.ok([...perSecond.values()].every((n) => n <= 10));
});

test('the bucket refills with time and never beyond its burst', () => {
  const clock = new ManualClock();
  const bucket = new TokenBucket({ ratePerSecond: 2, burst: 3, clock });
  for (let i = 0; i < 3; i++) assert.equal(bucket.reserve(), 0);
  assert.equal(Math.round(bucket.reserve()), 500);
  clock.advance(60_000);
  for (let i = 0; i < 3; i++) assert.equal(bucket.reserve(), 0, 'refilled to the burst');
  assert.ok(bucket.reserve() > 0, 'but not beyond it');
});

test('take() waits what reserve() says', async () => {
  const clock = new ManualClock();
  const slept: number[] = [];
  const bucket = new TokenBucket({ ratePerSecond: 1, burst: 1, clock, sleep: async (ms) => { slept.push(ms); } });
  await bucket.take();
  await bucket.take();
  assert.deepEqual(slept.map(Math.round), [1000]);
  assert.throws(() => new TokenBucket({ ratePerSecond: 0, burst: 1, clock }), RangeError);
});
