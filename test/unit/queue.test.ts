import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue, type Priority, type ReconcileResult, type Timers, type WorkQueueOptions } from '../../src/controller/queue.ts';
import { ManualClock } from '../../src/util/clock.ts';

const T0 = Date.UTC(2026, 0, 1);

/** Lets every promise the queue chained settle; workers here never wait on real time. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Timers driven by a ManualClock; records how many timers the queue ever held at once. */
class FakeTimers implements Timers {
  readonly clock: ManualClock;
  maxPending = 0;
  private readonly due = new Map<number, { at: number; callback: () => void }>();
  private nextId = 1;

  constructor(clock: ManualClock) {
    this.clock = clock;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.due.set(id, { at: this.clock.now() + ms, callback });
    this.maxPending = Math.max(this.maxPending, this.due.size);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }

  get pending(): number {
    return this.due.size;
  }

  /** Moves time forward, firing due timers in order and letting the queue react after each. */
  async advance(ms: number): Promise<void> {
    const target = this.clock.now() + ms;
    for (;;) {
      await settle(); // work started before this call may still be arming the timer
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const timer of this.due) if (timer[1].at <= target && (!next || timer[1].at < next[1].at)) next = timer;
      if (!next) break;
      this.due.delete(next[0]);
      this.clock.set(Math.max(this.clock.now(), next[1].at));
      next[1].callback();
    }
    this.clock.set(target);
    await settle();
  }
}

function setup(options: Partial<WorkQueueOptions> = {}) {
  const clock = new ManualClock(T0);
  const timers = new FakeTimers(clock);
  const queue = new WorkQueue({ clock, timers, ...options });
  return { clock, timers, queue };
}

/** A worker whose runs stay in flight until the test finishes them; records overlaps. */
class HeldWorker {
  readonly started: string[] = [];
  readonly overlapping: string[] = [];
  maxInFlight = 0;
  private readonly held = new Map<string, { resolve: (r: ReconcileResult) => void; reject: (e: Error) => void }>();

  readonly run = (key: string): Promise<ReconcileResult> => {
    if (this.held.has(key)) this.overlapping.push(key);
    this.started.push(key);
    return new Promise((resolve, reject) => {
      this.held.set(key, { resolve, reject });
      this.maxInFlight = Math.max(this.maxInFlight, this.held.size);
    });
  };

  async finish(key: string, outcome?: ReconcileResult | Error): Promise<void> {
    const run = this.held.get(key);
    assert.ok(run, `${key} is not in flight`);
    this.held.delete(key);
    if (outcome instanceof Error) run.reject(outcome);
    else run.resolve(outcome);
    await settle();
  }
}

/** A worker that finishes at once and records which key ran when. */
function recordingWorker(clock: ManualClock, outcome: (key: string) => ReconcileResult = () => undefined) {
  const runs: { key: string; at: number }[] = [];
  const run = async (key: string): Promise<ReconcileResult> => {
    runs.push({ key, at: clock.now() - T0 });
    return outcome(key);
  };
  return { runs, run };
}

test('adding a key that is already waiting queues it once', async () => {
  const cases: [string, string[], string[]][] = [
    ['same key three times', ['a', 'a', 'a'], ['a']],
    ['interleaved keys', ['a', 'b', 'a', 'b', 'c'], ['a', 'b', 'c']],
  ];
  for (const [name, adds, expectedRuns] of cases) {
    const { clock, queue } = setup();
    for (const key of adds) queue.add(key);
    assert.equal(queue.depth(), expectedRuns.length, name);
    const worker = recordingWorker(clock);
    queue.start(worker.run, 1);
    await settle();
    assert.deepEqual(worker.runs.map((r) => r.key), expectedRuns, name);
    assert.equal(queue.depth(), 0, name);
  }
});

test('a key is never processed twice at once; adds during its run queue exactly one more run', async () => {
  const { queue } = setup();
  const worker = new HeldWorker();
  queue.add('a');
  queue.start(worker.run, 4);
  await settle();

  queue.add('a');
  queue.add('a');
  queue.add('b');
  await settle();
  assert.deepEqual(worker.started, ['a', 'b'], 'b takes a free worker; a waits for its own run');
  assert.equal(queue.inFlight(), 2);

  await worker.finish('a');
  assert.deepEqual(worker.started, ['a', 'b', 'a'], 'a runs again once its first run finished');
  await worker.finish('a');
  await worker.finish('b');
  assert.deepEqual(worker.started, ['a', 'b', 'a'], 'the repeated adds collapsed into one re-run');
  assert.deepEqual(worker.overlapping, []);
  assert.equal(queue.inFlight(), 0);
});

test('addAfter keeps the earliest deadline', async () => {
  const cases: [string, number[], number][] = [
    ['single delay', [1000], 1000],
    ['later call is earlier', [5000, 1000], 1000],
    ['later call is later', [1000, 5000], 1000],
    ['three calls, middle earliest', [4000, 2000, 3000], 2000],
    ['equal deadlines', [3000, 3000], 3000],
  ];
  for (const [name, delays, expectedAt] of cases) {
    const { clock, timers, queue } = setup();
    const worker = recordingWorker(clock);
    queue.start(worker.run, 1);
    for (const delay of delays) queue.addAfter('a', delay);
    assert.equal(queue.scheduled(), 1, name);

    await timers.advance(expectedAt - 1);
    assert.deepEqual(worker.runs, [], `${name}: not before the deadline`);
    await timers.advance(1);
    assert.deepEqual(worker.runs, [{ key: 'a', at: expectedAt }], `${name}: at the deadline`);
    await timers.advance(3_600_000);
    assert.equal(worker.runs.length, 1, `${name}: the later deadlines were dropped`);
    assert.equal(timers.pending, 0, `${name}: no timer left behind`);
  }
});

test('failures back off per key, doubling up to the cap', () => {
  const cases: [string, Partial<WorkQueueOptions>, number[]][] = [
    ['defaults: 100 ms doubling, capped at 5 min', {},
      [100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 51_200, 102_400, 204_800, 300_000, 300_000]],
    ['configured base and cap', { backoffBaseMs: 250, backoffMaxMs: 1000 }, [250, 500, 1000, 1000]],
    ['base equal to cap', { backoffBaseMs: 5, backoffMaxMs: 5 }, [5, 5, 5]],
  ];
  for (const [name, options, expected] of cases) {
    const { queue } = setup(options);
    const delays = expected.map(() => queue.addRateLimited('a'));
    assert.deepEqual(delays, expected, name);
    assert.equal(queue.numRequeues('a'), expected.length, name);
    assert.equal(queue.addRateLimited('b'), expected[0], `${name}: another key has its own backoff`);
  }
});

test('a failing worker is retried after growing delays', async () => {
  const { clock, timers } = setup();
  const failures: { key: string; message: string; retryInMs: number }[] = [];
  const queue = new WorkQueue({
    clock, timers, backoffBaseMs: 100, backoffMaxMs: 1000,
    onFailure: (key, error, retryInMs) => failures.push({ key, message: (error as Error).message, retryInMs }),
  });
  const runs: number[] = [];
  // Throws synchronously rather than rejecting: the queue must treat both as failures.
  queue.start((): Promise<ReconcileResult> => {
    runs.push(clock.now() - T0);
    throw new Error('vault sealed');
  }, 1);
  queue.add('ns/a');
  await timers.advance(5000);
  assert.deepEqual(runs, [0, 100, 300, 700, 1500, 2500, 3500, 4500]);
  assert.deepEqual(failures.slice(0, 6).map((f) => f.retryInMs), [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual(failures[0], { key: 'ns/a', message: 'vault sealed', retryInMs: 100 });
});

test('forget, success and requeueAfter clear the backoff', async () => {
  type Outcome = 'fail' | 'ok' | 'requeue';
  const cases: [string, Outcome[], number[]][] = [
    ['control: nothing clears it', ['fail', 'fail', 'fail'], [100, 200, 400]],
    ['a successful run', ['fail', 'fail', 'ok', 'fail'], [100, 200, 100]],
    ['a requeueAfter result', ['fail', 'fail', 'requeue', 'fail'], [100, 200, 100]],
  ];
  for (const [name, script, expectedRetries] of cases) {
    const { clock, timers } = setup();
    const retries: number[] = [];
    const queue = new WorkQueue({ clock, timers, onFailure: (_key, _error, retryInMs) => retries.push(retryInMs) });
    const outcomes = [...script];
    queue.start(async () => {
      const outcome = outcomes.shift() ?? 'ok';
      if (outcome === 'fail') throw new Error('transient');
      return outcome === 'requeue' ? { requeueAfterMs: 50 } : undefined;
    }, 1);
    // The key is added again after each pause, as a watch event would, to restart it after a success.
    for (let round = 0; round < script.length; round++) {
      queue.add('a');
      await timers.advance(10_000);
    }
    assert.deepEqual(retries, expectedRetries, name);
  }

  const { queue } = setup();
  assert.deepEqual([queue.addRateLimited('a'), queue.addRateLimited('a'), queue.addRateLimited('a')], [100, 200, 400]);
  queue.forget('a');
  assert.equal(queue.numRequeues('a'), 0);
  assert.equal(queue.addRateLimited('a'), 100, 'forget() resets to the base delay');
});

test('requeueAfter re-runs the key after exactly that delay', async () => {
  const { clock, timers, queue } = setup();
  let first = true;
  const worker = recordingWorker(clock, () => {
    if (!first) return undefined;
    first = false;
    return { requeueAfterMs: 30_000 };
  });
  queue.start(worker.run, 1);
  queue.add('a');
  await settle();
  assert.equal(queue.scheduled(), 1);
  await timers.advance(29_999);
  assert.equal(worker.runs.length, 1);
  await timers.advance(1);
  assert.deepEqual(worker.runs, [{ key: 'a', at: 0 }, { key: 'a', at: 30_000 }]);
  await timers.advance(3_600_000);
  assert.equal(worker.runs.length, 2, 'a result without requeueAfter does not re-run the key');
});

test('the global rate cap spreads a burst of failures', async () => {
  const cases: [string, Partial<WorkQueueOptions>, number[]][] = [
    ['burst 5 at 10 qps: the sixth retry waits for a token', { rateLimitQps: 10, rateLimitBurst: 5 },
      [1, 1, 1, 1, 1, 100, 200, 300]],
    ['burst larger than the failures: only per-key backoff', { rateLimitQps: 10, rateLimitBurst: 100 },
      [1, 1, 1, 1, 1, 1, 1, 1]],
  ];
  for (const [name, options, expectedRetryAt] of cases) {
    const { clock, timers, queue } = setup({ backoffBaseMs: 1, ...options });
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'];
    const failed = new Set<string>();
    const retriedAt = new Map<string, number>();
    queue.start(async (key) => {
      if (!failed.has(key)) {
        failed.add(key);
        throw new Error('transient');
      }
      retriedAt.set(key, clock.now() - T0);
    }, keys.length);
    for (const key of keys) queue.add(key);
    await timers.advance(1000);
    assert.deepEqual(keys.map((key) => retriedAt.get(key)), expectedRetryAt, name);
  }

  // The bucket refills at qps up to the burst: after a quiet second, five immediate retries again.
  const { clock, queue } = setup({ backoffBaseMs: 1, rateLimitQps: 10, rateLimitBurst: 5 });
  for (let i = 0; i < 8; i++) queue.addRateLimited(`k${i}`);
  clock.advance(1000);
  const delays = [0, 1, 2, 3, 4, 5].map((i) => queue.addRateLimited(`fresh${i}`));
  assert.deepEqual(delays, [1, 1, 1, 1, 1, 100]);
});

test('high priority keys are taken before low ones, FIFO within a priority', async () => {
  const cases: [string, [string, Priority][], string[]][] = [
    ['high before low', [['a', 'low'], ['b', 'high'], ['c', 'low'], ['d', 'high']], ['b', 'd', 'a', 'c']],
    ['a low key added high is promoted', [['a', 'low'], ['b', 'low'], ['c', 'low'], ['c', 'high']], ['c', 'a', 'b']],
    ['promotion queues behind earlier high keys', [['x', 'high'], ['a', 'low'], ['y', 'high'], ['a', 'high']], ['x', 'y', 'a']],
    ['a high key is not demoted by a low add', [['a', 'high'], ['b', 'high'], ['a', 'low']], ['a', 'b']],
    ['a promoted key runs once', [['a', 'low'], ['a', 'high'], ['a', 'low'], ['b', 'low']], ['a', 'b']],
  ];
  for (const [name, adds, expectedOrder] of cases) {
    const { clock, queue } = setup();
    for (const [key, priority] of adds) queue.add(key, { priority });
    const worker = recordingWorker(clock);
    queue.start(worker.run, 1);
    await settle();
    assert.deepEqual(worker.runs.map((r) => r.key), expectedOrder, name);
  }
});

test('delayed re-adds and retries queue behind new and changed keys', async () => {
  const { timers, queue } = setup({ backoffBaseMs: 100 });
  const worker = new HeldWorker();
  queue.start(worker.run, 1);
  queue.add('busy');
  await settle();
  queue.addAfter('refresh', 100);
  queue.addRateLimited('retry');
  await timers.advance(100);
  queue.add('changed');
  queue.add('dirty-while-busy', { priority: 'low' });
  queue.add('busy'); // dirty: re-queued when its run ends, with the priority of this add
  await worker.finish('busy');
  for (const key of ['changed', 'busy', 'refresh', 'retry', 'dirty-while-busy']) await worker.finish(key);
  assert.deepEqual(worker.started, ['busy', 'changed', 'busy', 'refresh', 'retry', 'dirty-while-busy']);
});

test('no more than `concurrency` keys are processed at once', async () => {
  for (const concurrency of [1, 3, 8, 20]) {
    const { queue } = setup();
    const worker = new HeldWorker();
    const keys = Array.from({ length: 10 }, (_, i) => `ns/k${i}`);
    for (const key of keys) queue.add(key);
    queue.start(worker.run, concurrency);
    await settle();
    assert.equal(queue.inFlight(), Math.min(concurrency, keys.length), `concurrency ${concurrency}`);
    assert.equal(queue.depth(), Math.max(0, keys.length - concurrency), `concurrency ${concurrency}`);
    for (const key of keys) await worker.finish(key);
    assert.deepEqual(worker.started, keys, `concurrency ${concurrency}: every key once, in order`);
    assert.equal(worker.maxInFlight, Math.min(concurrency, keys.length), `concurrency ${concurrency}`);
  }
  assert.throws(() => setup().queue.start(async () => undefined, 0), RangeError);
});

test('shutdown waits for in-flight work and takes no new work', async () => {
  const { timers, queue } = setup();
  const worker = new HeldWorker();
  queue.start(worker.run, 2);
  queue.add('a');
  queue.add('b');
  queue.add('c');
  queue.addAfter('later', 1000);
  await settle();
  assert.deepEqual(worker.started, ['a', 'b']);

  let stopped = false;
  const shutdown = queue.shutdown().then(() => {
    stopped = true;
  });
  assert.equal(timers.pending, 0, 'the delay timer is cancelled at once, so the process can exit');
  queue.add('d');
  await worker.finish('a', { requeueAfterMs: 10 });
  assert.equal(stopped, false, 'b is still in flight');
  assert.deepEqual(worker.started, ['a', 'b'], 'c was not taken although a worker became free');

  await worker.finish('b', new Error('failed during shutdown'));
  await shutdown;
  assert.equal(stopped, true);
  await timers.advance(60_000);
  assert.deepEqual(worker.started, ['a', 'b'], 'no delayed key, retry or requeueAfter fired');
  assert.equal(timers.pending, 0, 'neither the requeueAfter nor the retry armed a new timer');
  assert.equal(queue.depth(), 0);
  assert.equal(queue.inFlight(), 0);
  assert.equal(queue.shutdown(), queue.shutdown(), 'shutdown is idempotent');
});

test('shutdown of an idle or never-started queue resolves at once', async () => {
  const { queue } = setup();
  queue.add('a');
  await queue.shutdown();
  assert.throws(() => queue.start(async () => undefined, 1), /shut down/);
});

test('depth, scheduled, inFlight and onDequeue report what waits and for how long', async () => {
  const { clock, timers } = setup();
  const dequeued: [string, number, Priority][] = [];
  const queue = new WorkQueue({ clock, timers, onDequeue: (key, waitedMs, priority) => dequeued.push([key, waitedMs, priority]) });
  const worker = new HeldWorker();
  queue.add('a');
  queue.addAfter('b', 1000);
  assert.deepEqual([queue.depth(), queue.scheduled(), queue.inFlight()], [1, 1, 0]);

  clock.advance(250);
  queue.start(worker.run, 1);
  await settle();
  assert.deepEqual([queue.depth(), queue.scheduled(), queue.inFlight()], [0, 1, 1]);

  await timers.advance(750);
  assert.deepEqual([queue.depth(), queue.scheduled(), queue.inFlight()], [1, 0, 1], 'b is due and waits for the worker');
  await timers.advance(40);
  await worker.finish('a');
  assert.deepEqual(dequeued, [['a', 250, 'high'], ['b', 40, 'low']], 'a delayed key waits from its deadline, not from addAfter');
});

test('a throwing onDequeue hook does not wedge the queue', async () => {
  const { clock, timers } = setup();
  const queue = new WorkQueue({ clock, timers, onDequeue: () => { throw new Error('metrics broke'); } });
  const worker = recordingWorker(clock);
  queue.start(worker.run, 1);
  queue.add('a');
  queue.add('b');
  await settle();
  assert.deepEqual(worker.runs.map((r) => r.key), ['a', 'b']);
  assert.equal(queue.inFlight(), 0);
});

test('10,000 delayed keys share one timer and fire in deadline order', async () => {
  const { clock, timers, queue } = setup();
  let seed = 42;
  // Deterministic pseudo-random deadlines with many ties, to exercise first-come-first-served among equals.
  const nextDelay = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return 1 + (seed % 5000);
  };
  const expected: { key: string; at: number }[] = [];
  for (let i = 0; i < 10_000; i++) {
    const key = `ns/k${i}`;
    const delay = nextDelay();
    queue.addAfter(key, delay);
    queue.addAfter(key, delay + 500); // later: must not move the key
    expected.push({ key, at: delay });
  }
  expected.sort((x, y) => x.at - y.at); // stable: ties keep insertion order
  assert.equal(queue.scheduled(), 10_000);

  const worker = recordingWorker(clock);
  queue.start(worker.run, 1);
  await timers.advance(10_000);
  assert.equal(timers.maxPending, 1);
  assert.equal(worker.runs.length, 10_000);
  assert.deepEqual(worker.runs, expected);
});
