import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_LABEL_VALUES, OVERFLOW_LABEL, OperatorMetrics, leaseExpiryBucket, type LeaseExpiryBucket,
} from '../../src/metrics/metrics.ts';
import { parseListenAddress } from '../../src/metrics/server.ts';
import { ManualClock } from '../../src/util/clock.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (enough of it for these samples). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = match[3] === '+Inf' ? Infinity : Number(match[3]);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** The value of the one sample with this name and exactly these labels; undefined when absent. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && sameLabels(s.labels, labels));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} appears ${found.length} times`);
  return found[0]?.value;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

async function scrape(address: string): Promise<{ status: number; contentType: string | null; samples: Sample[] }> {
  const res = await fetch(`http://${address}/metrics`);
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), samples: res.ok ? parseExposition(text) : [] };
}

test('recorded values appear in the exposition served over HTTP', async (t) => {
  const clock = new ManualClock();
  const metrics = new OperatorMetrics({ clock });
  const server = await metrics.serve('127.0.0.1:0');
  t.after(() => server.close());
  assert.match(server.address, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(server.address, '127.0.0.1:0', 'the bound port is reported, not the requested 0');

  metrics.recordSync({ result: 'written', reason: 'Initial' });
  metrics.recordSync({ result: 'written', reason: 'Initial' });
  metrics.recordSync({ result: 'unchanged', reason: 'Refresh' });
  metrics.recordSync({ result: 'failed', reason: 'Retry', failure: 'VaultDenied' });
  metrics.observeReconcile(120, 'success');
  metrics.observeReconcile(3_000, 'error');
  metrics.setQueueDepth(5);
  metrics.setInFlight(2);
  metrics.observeQueueWait(30, 'high');
  metrics.recordVaultRequest({ operation: 'kv-read', status: 200, durationMs: 40 });
  metrics.recordVaultRequest({ operation: 'kv-read', status: 200, durationMs: 60 });
  metrics.recordVaultRequest({ operation: 'login', status: 'error', durationMs: 1_500 });
  metrics.recordTokenRenewal('renewed');
  metrics.recordTokenRenewal('relogin');
  const now = clock.now();
  metrics.setLeaseExpiries([now + 10_000, now - 5_000, now + 2 * 60_000, now + 30 * 60_000, now + 3 * 3_600_000, now + 7_200_000], now);
  metrics.recordRotation();
  metrics.recordRevocation('revoked');
  metrics.recordUntrackedLeaseSuspicion('interrupted');
  metrics.recordRolloutRestart('Deployment');
  metrics.setLeader(true);
  for (let i = 0; i < 3; i++) metrics.recordKubeWrite('apply', 'secrets');
  metrics.recordKubeWrite('patch', 'vaultsecrets/status');

  const { status, contentType, samples } = await scrape(server.address);
  assert.equal(status, 200);
  assert.match(contentType ?? '', /^text\/plain; version=0\.0\.4/);

  assert.equal(valueOf(samples, 'vaultsync_syncs_total', { result: 'written', reason: 'Initial' }), 2);
  assert.equal(valueOf(samples, 'vaultsync_syncs_total', { result: 'unchanged', reason: 'Refresh' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_syncs_total', { result: 'failed', reason: 'Retry' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_sync_failures_total', { reason: 'VaultDenied' }), 1);

  assert.equal(valueOf(samples, 'vaultsync_reconcile_duration_seconds_count', { result: 'success' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_reconcile_duration_seconds_sum', { result: 'success' }), 0.12);
  assert.equal(valueOf(samples, 'vaultsync_reconcile_duration_seconds_bucket', { result: 'success', le: '0.1' }), 0);
  assert.equal(valueOf(samples, 'vaultsync_reconcile_duration_seconds_bucket', { result: 'success', le: '0.25' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_reconcile_duration_seconds_bucket', { result: 'error', le: '2.5' }), 0);
  assert.equal(valueOf(samples, 'vaultsync_reconcile_duration_seconds_bucket', { result: 'error', le: '5' }), 1);

  assert.equal(valueOf(samples, 'vaultsync_queue_depth'), 5);
  assert.equal(valueOf(samples, 'vaultsync_queue_in_flight'), 2);
  assert.equal(valueOf(samples, 'vaultsync_queue_wait_seconds_count', { priority: 'high' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_queue_wait_seconds_sum', { priority: 'high' }), 0.03);

  assert.equal(valueOf(samples, 'vaultsync_vault_requests_total', { operation: 'kv-read', status: '200' }), 2);
  assert.equal(valueOf(samples, 'vaultsync_vault_requests_total', { operation: 'login', status: 'error' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_vault_request_duration_seconds_count', { operation: 'kv-read' }), 2);
  assert.equal(valueOf(samples, 'vaultsync_vault_request_duration_seconds_sum', { operation: 'kv-read' }), 0.1);
  assert.equal(valueOf(samples, 'vaultsync_vault_request_duration_seconds_bucket', { operation: 'login', le: '+Inf' }), 1);

  assert.equal(valueOf(samples, 'vaultsync_token_renewals_total', { outcome: 'renewed' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_token_renewals_total', { outcome: 'relogin' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_token_renewals_total', { outcome: 'failed' }), 0, 'known outcomes start at zero');

  assert.equal(valueOf(samples, 'vaultsync_leases', { expires_in: '<1m' }), 2, 'an expired lease counts as <1m');
  assert.equal(valueOf(samples, 'vaultsync_leases', { expires_in: '<5m' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_leases', { expires_in: '<1h' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_leases', { expires_in: '>=1h' }), 2);

  assert.equal(valueOf(samples, 'vaultsync_rotations_total'), 1);
  assert.equal(valueOf(samples, 'vaultsync_revocations_total', { result: 'revoked' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_revocations_total', { result: 'failed' }), 0);
  assert.equal(valueOf(samples, 'vaultsync_untracked_lease_suspicions_total', { cause: 'interrupted' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_untracked_lease_suspicions_total', { cause: 'outcome_unknown' }), 0, 'both causes start at zero');
  assert.equal(valueOf(samples, 'vaultsync_rollout_restarts_total', { kind: 'Deployment' }), 1);
  assert.equal(valueOf(samples, 'vaultsync_leader'), 1);
  assert.equal(valueOf(samples, 'vaultsync_kube_writes_total', { verb: 'apply', resource: 'secrets' }), 3);
  assert.equal(valueOf(samples, 'vaultsync_kube_writes_total', { verb: 'patch', resource: 'vaultsecrets/status' }), 1);

  // Default process metrics share the instance's registry.
  assert.ok(samples.some((s) => s.name === 'process_cpu_user_seconds_total'), 'process metrics are exported');
  assert.ok(samples.some((s) => s.name === 'nodejs_heap_size_used_bytes'), 'nodejs metrics are exported');

  metrics.setLeader(false);
  assert.equal(valueOf((await scrape(server.address)).samples, 'vaultsync_leader'), 0);
});

test('the server answers only /metrics and reads', async (t) => {
  const metrics = new OperatorMetrics({ defaultMetrics: false });
  const server = await metrics.serve('127.0.0.1:0');
  t.after(() => server.close());
  assert.equal((await fetch(`http://${server.address}/`)).status, 404);
  assert.equal((await fetch(`http://${server.address}/metrics`, { method: 'POST' })).status, 405);
  assert.equal((await fetch(`http://${server.address}/metrics?x=1`)).status, 200);
});

test('a scrape of tracked leases uses the clock at scrape time', async () => {
  const clock = new ManualClock();
  const metrics = new OperatorMetrics({ clock, defaultMetrics: false });
  const expiries = [clock.now() + 90 * 60_000, clock.now() + 4 * 60_000];
  metrics.trackLeaseExpiries(() => expiries);
  const leases = async () => {
    const samples = parseExposition(await metrics.metrics());
    return Object.fromEntries(['<1m', '<5m', '<1h', '>=1h'].map((b) => [b, valueOf(samples, 'vaultsync_leases', { expires_in: b })]));
  };
  assert.deepEqual(await leases(), { '<1m': 0, '<5m': 1, '<1h': 0, '>=1h': 1 });
  clock.advance(31 * 60_000);
  assert.deepEqual(await leases(), { '<1m': 1, '<5m': 0, '<1h': 1, '>=1h': 0 });

  // A failing callback keeps the last values instead of failing the scrape.
  metrics.trackLeaseExpiries(() => { throw new Error('lease table unavailable'); });
  assert.deepEqual(await leases(), { '<1m': 1, '<5m': 0, '<1h': 1, '>=1h': 0 });
});

test('two instances do not share state', async (t) => {
  const a = new OperatorMetrics();
  const b = new OperatorMetrics(); // the global registry would throw "already registered" here
  assert.notEqual(a.registry, b.registry);
  a.recordSync({ result: 'written', reason: 'Initial' });
  a.recordKubeWrite('apply', 'secrets');
  a.setLeader(true);
  b.recordVaultRequest({ operation: 'login', status: 200, durationMs: 5 });

  const serverA = await a.serve('127.0.0.1:0');
  t.after(() => serverA.close());
  const serverB = await b.serve('127.0.0.1:0');
  t.after(() => serverB.close());
  assert.notEqual(serverA.address, serverB.address);

  const sa = (await scrape(serverA.address)).samples;
  const sb = (await scrape(serverB.address)).samples;
  assert.equal(valueOf(sa, 'vaultsync_syncs_total', { result: 'written', reason: 'Initial' }), 1);
  assert.equal(valueOf(sb, 'vaultsync_syncs_total', { result: 'written', reason: 'Initial' }), undefined);
  assert.equal(valueOf(sa, 'vaultsync_kube_writes_total', { verb: 'apply', resource: 'secrets' }), 1);
  assert.equal(valueOf(sb, 'vaultsync_kube_writes_total', { verb: 'apply', resource: 'secrets' }), undefined);
  assert.equal(valueOf(sa, 'vaultsync_leader'), 1);
  assert.equal(valueOf(sb, 'vaultsync_leader'), 0);
  assert.equal(valueOf(sa, 'vaultsync_vault_requests_total', { operation: 'login', status: '200' }), undefined);
  assert.equal(valueOf(sb, 'vaultsync_vault_requests_total', { operation: 'login', status: '200' }), 1);
});

test('a label accepts a bounded number of distinct values', async () => {
  const metrics = new OperatorMetrics({ defaultMetrics: false });
  const total = MAX_LABEL_VALUES + 36;
  for (let i = 0; i < total; i++) metrics.recordKubeWrite('apply', `resource-${i}`);
  const writes = parseExposition(await metrics.metrics()).filter((s) => s.name === 'vaultsync_kube_writes_total');
  assert.equal(writes.length, MAX_LABEL_VALUES + 1);
  assert.equal(valueOf(writes, 'vaultsync_kube_writes_total', { verb: 'apply', resource: OVERFLOW_LABEL }), total - MAX_LABEL_VALUES);
  assert.equal(writes.reduce((sum, s) => sum + s.value, 0), total, 'nothing is dropped, only folded');
});

test('lease expiry buckets', () => {
  const now = 1_000_000;
  const cases: [number, LeaseExpiryBucket][] = [
    [-1, '<1m'], [0, '<1m'], [59_999, '<1m'], [60_000, '<5m'], [299_999, '<5m'], [300_000, '<1h'],
    [3_599_999, '<1h'], [3_600_000, '>=1h'], [86_400_000, '>=1h'],
  ];
  for (const [remaining, bucket] of cases) assert.equal(leaseExpiryBucket(now + remaining, now), bucket, `${remaining} ms left`);
});

test('listen addresses', async () => {
  assert.deepEqual(parseListenAddress('0.0.0.0:8080'), { host: '0.0.0.0', port: 8080 });
  assert.deepEqual(parseListenAddress(':9090'), { host: undefined, port: 9090 });
  assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.throws(() => parseListenAddress('8080'), /not host:port/);
  assert.throws(() => parseListenAddress('localhost:http'), /invalid port/);
  assert.throws(() => parseListenAddress('localhost:70000'), /invalid port/);

  const metrics = new OperatorMetrics({ defaultMetrics: false });
  const first = await metrics.serve('127.0.0.1:0');
  try {
    await assert.rejects(metrics.serve(first.address), (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE');
  } finally {
    await first.close();
  }
});
