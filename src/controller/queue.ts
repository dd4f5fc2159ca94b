// A keyed work queue with client-go / controller-runtime semantics: keys, not events, are queued; a key is
// never processed by two workers at once; a delayed re-add keeps the earliest deadline; failures back off
// per key under a global token bucket; new and changed resources go ahead of periodic refreshes.
//
// Built for 10,000+ keys: every operation is O(1) or O(log n), and all delayed keys share one timer.
import type { Clock } from '../util/clock.ts';
import { systemClock } from '../util/clock.ts';

export type Priority = 'high' | 'low';

/** What a worker returns: nothing (done) or when to look at the key again. A thrown error is a failure. */
export type ReconcileResult = { requeueAfterMs?: number } | void;

export type Worker = (key: string) => Promise<ReconcileResult>;

/** The timer primitive the queue needs; tests pass a fake one driven together with a ManualClock. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface WorkQueueOptions {
  clock?: Clock;
  timers?: Timers;
  /** First per-key retry delay; doubles on each consecutive failure. Default 100 ms. */
  backoffBaseMs?: number;
  /** Cap of the per-key retry delay. Default 5 min. */
  backoffMaxMs?: number;
  /** Global rate of rate-limited re-adds across all keys. Default 10 per second; Infinity disables it. */
  rateLimitQps?: number;
  /** Rate-limited re-adds allowed at once before the global rate applies. Default 100. */
  rateLimitBurst?: number;
  /** Called when a worker takes a key; waitedMs runs from the add (or the delay firing) to now. */
  onDequeue?: (key: string, waitedMs: number, priority: Priority) => void;
  /** Called when a worker fails, with the delay before the key's retry. */
  onFailure?: (key: string, error: unknown, retryInMs: number) => void;
}

export interface AddOptions {
  priority?: Priority;
}

// setTimeout overflows above 2^31-1 ms and fires at once; longer delays re-arm when the timer fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

export class WorkQueue {
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly bucket: TokenBucket;
  private readonly onDequeue: WorkQueueOptions['onDequeue'];
  private readonly onFailure: WorkQueueOptions['onFailure'];

  /** Keys that need a run: ready ones sit in a FIFO, the others wait for their in-flight run to finish. */
  private readonly pending = new Map<string, Pending>();
  private readonly highReady = new Fifo<ReadyEntry>();
  private readonly lowReady = new Fifo<ReadyEntry>();
  private readyCount = 0;
  private readonly processing = new Set<string>();
  private readonly delayed = new DeadlineHeap();
  private readonly failures = new Map<string, number>();
  private sequence = 0;

  private timer: unknown = undefined;
  private timerDeadline = Infinity;

  private worker: Worker | undefined = undefined;
  private concurrency = 0;
  private pumpScheduled = false;
  private stopping = false;
  private stopped: Promise<void> | undefined = undefined;
  private resolveStopped: (() => void) | undefined = undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.backoffBaseMs = options.backoffBaseMs ?? 100;
    this.backoffMaxMs = options.backoffMaxMs ?? 5 * 60_000;
    if (!(this.backoffBaseMs > 0) || !(this.backoffMaxMs >= this.backoffBaseMs)) {
      throw new RangeError('backoff needs 0 < backoffBaseMs <= backoffMaxMs');
    }
    this.bucket = new TokenBucket(options.rateLimitQps ?? 10, options.rateLimitBurst ?? 100, this.clock);
    this.onDequeue = options.onDequeue;
    this.onFailure = options.onFailure;
  }

  /**
   * Queues a key now. A key already waiting is not queued twice; adding it as 'high' promotes a waiting
   * 'low' key, never the reverse. A key being processed is re-queued once its run finishes.
   * Default priority 'high': adds come from watch events, that is new and changed resources.
   */
  add(key: string, options: AddOptions = {}): void {
    if (this.stopping) return;
    const priority = options.priority ?? 'high';
    const existing = this.pending.get(key);
    if (existing) {
      if (priority === 'high' && existing.priority === 'low') {
        existing.priority = 'high';
        // The entry left behind in the low FIFO goes stale because its sequence no longer matches.
        if (existing.ready) this.pushReady(key, existing);
      }
      return;
    }
    const entry: Pending = { priority, since: this.clock.now(), ready: false, sequence: 0 };
    this.pending.set(key, entry);
    if (!this.processing.has(key)) {
      this.pushReady(key, entry);
      this.readyCount++;
      this.schedulePump();
    }
  }

  /**
   * Queues a key once delayMs has passed. If the key is already scheduled, the earliest deadline wins.
   * Default priority 'low': delayed re-adds are periodic refreshes and retries.
   */
  addAfter(key: string, delayMs: number, options: AddOptions = {}): void {
    if (this.stopping) return;
    const priority = options.priority ?? 'low';
    if (!(delayMs > 0)) {
      this.add(key, { priority });
      return;
    }
    const deadline = this.clock.now() + delayMs;
    const scheduled = this.delayed.get(key);
    if (scheduled) {
      if (priority === 'high') scheduled.priority = 'high';
      if (deadline < scheduled.deadline) this.delayed.moveEarlier(scheduled, deadline, ++this.sequence);
    } else {
      this.delayed.push({ key, deadline, order: ++this.sequence, priority, index: -1 });
    }
    if (deadline < this.timerDeadline) this.armTimer();
  }

  /**
   * Queues a key after its backoff (base doubling per consecutive failure, capped) or the global rate
   * limit, whichever is longer, like client-go's MaxOfRateLimiter. Returns the delay applied.
   */
  addRateLimited(key: string, options: AddOptions = {}): number {
    if (this.stopping) return 0;
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const backoffMs = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** failures);
    const delayMs = Math.max(backoffMs, this.bucket.reserve());
    this.addAfter(key, delayMs, options);
    return delayMs;
  }

  /** Clears the key's backoff: its next failure retries after the base delay again. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Consecutive rate-limited re-adds since the key was last forgotten. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys ready to be taken by a worker (not counting delayed keys or keys waiting on their own run). */
  depth(): number {
    return this.readyCount;
  }

  /** Keys scheduled for later by addAfter, addRateLimited or requeueAfter. */
  scheduled(): number {
    return this.delayed.size;
  }

  /** Keys a worker is processing now. */
  inFlight(): number {
    return this.processing.size;
  }

  /**
   * Starts up to `concurrency` workers. A worker's result decides what happens to the key: nothing forgets
   * its backoff; requeueAfterMs forgets it and re-adds the key after that delay; a thrown error re-adds it
   * rate-limited.
   */
  start(worker: Worker, concurrency: number): void {
    if (this.worker) throw new Error('work queue already started');
    if (this.stopping) throw new Error('work queue is shut down');
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be an integer >= 1');
    this.worker = worker;
    this.concurrency = concurrency;
    this.schedulePump();
  }

  /**
   * Stops taking work: later adds are ignored, waiting and delayed keys are dropped (a restarted operator
   * relists everything). Resolves once every in-flight run has finished.
   */
  shutdown(): Promise<void> {
    if (this.stopped) return this.stopped;
    this.stopping = true;
    this.cancelTimer();
    this.delayed.clear();
    this.pending.clear();
    this.highReady.clear();
    this.lowReady.clear();
    this.readyCount = 0;
    this.stopped = new Promise((resolve) => {
      this.resolveStopped = resolve;
    });
    this.resolveIfStopped();
    return this.stopped;
  }

  private pushReady(key: string, entry: Pending): void {
    entry.ready = true;
    entry.sequence = ++this.sequence;
    (entry.priority === 'high' ? this.highReady : this.lowReady).push({ key, sequence: entry.sequence });
  }

  private takeReady(): { key: string; entry: Pending } | undefined {
    for (const fifo of [this.highReady, this.lowReady]) {
      for (let item = fifo.shift(); item; item = fifo.shift()) {
        const entry = this.pending.get(item.key);
        if (entry && entry.ready && entry.sequence === item.sequence) {
          this.pending.delete(item.key);
          this.readyCount--;
          return { key: item.key, entry };
        }
      }
    }
    return undefined;
  }

  // Workers start on a microtask so that add(), often called from a watch handler, never runs worker code
  // synchronously inside its caller.
  private schedulePump(): void {
    if (this.pumpScheduled || !this.worker) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (!this.stopping && this.worker && this.processing.size < this.concurrency) {
      const next = this.takeReady();
      if (!next) return;
      this.processing.add(next.key);
      const waitedMs = this.clock.now() - next.entry.since;
      if (this.onDequeue) callHook(() => this.onDequeue?.(next.key, waitedMs, next.entry.priority));
      void this.process(next.key, this.worker);
    }
  }

  private async process(key: string, worker: Worker): Promise<void> {
    try {
      const result = await worker(key);
      this.forget(key);
      const requeueAfterMs = result?.requeueAfterMs;
      if (requeueAfterMs !== undefined) this.addAfter(key, requeueAfterMs);
    } catch (error) {
      if (!this.stopping) {
        const retryInMs = this.addRateLimited(key);
        if (this.onFailure) callHook(() => this.onFailure?.(key, error, retryInMs));
      }
    } finally {
      this.processing.delete(key);
      const dirty = this.pending.get(key);
      if (dirty) {
        this.pushReady(key, dirty);
        this.readyCount++;
      }
      this.resolveIfStopped();
      this.schedulePump();
    }
  }

  private resolveIfStopped(): void {
    if (this.stopping && this.processing.size === 0) this.resolveStopped?.();
  }

  /** Points the single timer at the earliest delayed key. */
  private armTimer(): void {
    this.cancelTimer();
    const next = this.delayed.peek();
    if (!next || this.stopping) return;
    const waitMs = Math.min(MAX_TIMER_MS, Math.max(0, next.deadline - this.clock.now()));
    this.timerDeadline = next.deadline;
    this.timer = this.timers.setTimeout(() => this.fireDue(), waitMs);
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDeadline = Infinity;
  }

  private fireDue(): void {
    this.timer = undefined;
    this.timerDeadline = Infinity;
    const now = this.clock.now();
    for (let next = this.delayed.peek(); next && next.deadline <= now; next = this.delayed.peek()) {
      this.delayed.pop();
      this.add(next.key, { priority: next.priority });
    }
    this.armTimer();
  }
}

interface Pending {
  priority: Priority;
  /** When the key was added, for the wait-time hook. */
  since: number;
  /** In a FIFO, as opposed to waiting for its in-flight run to finish. */
  ready: boolean;
  /** Matches the FIFO entry that is current; promotions leave older entries behind to be skipped. */
  sequence: number;
}

interface ReadyEntry {
  key: string;
  sequence: number;
}

function callHook(hook: () => void): void {
  try {
    hook();
  } catch {
    // A failing metrics hook must not leave a key marked in flight forever.
  }
}

/** Array-backed FIFO with amortised O(1) shift (Array.prototype.shift is O(n)). */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

interface Scheduled {
  key: string;
  deadline: number;
  /** Breaks deadline ties first come, first served. */
  order: number;
  priority: Priority;
  /** Position in the heap array, so a key's deadline can move in O(log n). */
  index: number;
}

/** Binary min-heap of delayed keys by deadline, indexed by key. */
class DeadlineHeap {
  private readonly heap: Scheduled[] = [];
  private readonly byKey = new Map<string, Scheduled>();

  get size(): number {
    return this.heap.length;
  }

  get(key: string): Scheduled | undefined {
    return this.byKey.get(key);
  }

  peek(): Scheduled | undefined {
    return this.heap[0];
  }

  push(entry: Scheduled): void {
    entry.index = this.heap.length;
    this.heap.push(entry);
    this.byKey.set(entry.key, entry);
    this.siftUp(entry.index);
  }

  moveEarlier(entry: Scheduled, deadline: number, order: number): void {
    entry.deadline = deadline;
    entry.order = order;
    this.siftUp(entry.index);
  }

  pop(): Scheduled | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (!top || !last) return undefined;
    this.byKey.delete(top.key);
    if (last !== top) {
      this.place(last, 0);
      this.siftDown(0);
    }
    return top;
  }

  clear(): void {
    this.heap.length = 0;
    this.byKey.clear();
  }

  private before(a: Scheduled, b: Scheduled): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.order < b.order);
  }

  private place(entry: Scheduled, index: number): void {
    this.heap[index] = entry;
    entry.index = index;
  }

  private siftUp(index: number): void {
    const entry = this.heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = this.heap[parentIndex]!;
      if (!this.before(entry, parent)) break;
      this.place(parent, index);
      index = parentIndex;
    }
    this.place(entry, index);
  }

  private siftDown(index: number): void {
    const entry = this.heap[index]!;
    const length = this.heap.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      const child = right < length && this.before(this.heap[right]!, this.heap[left]!) ? right : left;
      if (!this.before(this.heap[child]!, entry)) break;
      this.place(this.heap[child]!, index);
      index = child;
    }
    this.place(entry, index);
  }
}

/** Token bucket that hands out reservations, like golang.org/x/time/rate's Reserve().Delay(). */
class TokenBucket {
  private readonly qps: number;
  private readonly burst: number;
  private readonly clock: Clock;
  private tokens: number;
  private last: number;

  constructor(qps: number, burst: number, clock: Clock) {
    if (!(qps > 0) || !(burst >= 1)) throw new RangeError('rate limit needs qps > 0 and burst >= 1');
    this.qps = qps;
    this.burst = burst;
    this.clock = clock;
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes a token, possibly one not yet earned, and returns how long until it is. */
  reserve(): number {
    if (this.qps === Infinity) return 0;
    const now = this.clock.now();
    // A clock stepping backwards must not refill the bucket.
    const elapsedMs = Math.max(0, now - this.last);
    this.last = Math.max(this.last, now);
    this.tokens = Math.min(this.burst, this.tokens + (elapsedMs * this.qps) / 1000);
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.qps);
  }
}
