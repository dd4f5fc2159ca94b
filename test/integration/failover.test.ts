// Two operator replicas against the real API server: only the leader reconciles; when it is killed the
// standby takes over within the lease duration and carries on; SIGTERM hands over at once. Metrics are
// read from each process's /metrics endpoint, as Prometheus would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, testNamespace } from '../support/stack.ts';
import { startOperator, type RunningOperator } from '../support/operator.ts';
import { createVaultSecret, installCrds, putKv2, tenantRole, waitForSecretData } from '../support/vaultsync.ts';

const FAST_ELECTION = { VSYNC_LEASE_DURATION: '4s', VSYNC_RENEW_DEADLINE: '3s', VSYNC_RETRY_PERIOD: '1s', VSYNC_LEADER_ELECTION_LEASE: 'failover-test' };

async function scrape(op: RunningOperator): Promise<string> {
  const m = /"metrics":"([^"]+)"/.exec(op.output());
  if (!m) throw new Error('the operator did not log its metrics address');
  const res = await fetch(`http://${m[1]}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

function sample(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const [series, value] = line.split(' ');
    if (series === `${name}${labels}` || (labels === '' && series === name)) return Number(value);
  }
  return undefined;
}

function sumOf(text: string, name: string, labelFilter: RegExp = /.*/): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && labelFilter.test(line)) total += Number(line.split(' ').at(-1));
  }
  return total;
}

test('only the leader reconciles; killing it hands over within the lease duration', async (t) => {
  await installCrds();
  const a = await startOperator({ env: FAST_ELECTION });
  t.after(async () => { await a.stop('SIGKILL'); });
  await eventually('replica A leads', async () => (sample(await scrape(a), 'vaultsync_leader') === 1 ? true : undefined), 15_000);
  const b = await startOperator({ env: FAST_ELECTION });
  t.after(async () => { await b.stop(); });

  const ns = await testNamespace('failover', t);
  const role = await tenantRole(ns);
  await putKv2(`${ns}/app`, { value: 'one' });
  await createVaultSecret(ns, 'app', { vault: { auth: { kubernetes: { role } } }, source: { kv: { mount: 'secret', path: `${ns}/app` } } });
  await waitForSecretData(ns, 'app', { value: 'one' });

  const [ma, mb] = [await scrape(a), await scrape(b)];
  assert.equal(sample(ma, 'vaultsync_leader'), 1);
  assert.equal(sample(mb, 'vaultsync_leader'), 0, 'the standby does not lead');
  assert.ok(sumOf(ma, 'vaultsync_syncs_total', /result="written"/) >= 1, 'the leader wrote the Secret');
  assert.equal(sumOf(mb, 'vaultsync_syncs_total'), 0, 'the standby reconciled nothing');
  assert.equal(sumOf(mb, 'vaultsync_kube_writes_total', /resource="secrets"/), 0, 'the standby wrote no Secret');
  assert.ok(sumOf(ma, 'vaultsync_vault_requests_total', /operation="login"/) >= 1, 'Vault requests are counted by operation');

  // Kill the leader without a chance to release its Lease.
  const killedAt = Date.now();
  await a.stop('SIGKILL');
  await eventually('replica B leads', async () => (sample(await scrape(b), 'vaultsync_leader') === 1 ? true : undefined), 15_000, 200);
  const takeoverMs = Date.now() - killedAt;
  process.stdout.write(`# failover: standby led ${takeoverMs} ms after the leader was killed (lease 4 s, retry 1 s)\n`);
  assert.ok(takeoverMs <= 4000 + 2 * 1200 + 1500, `takeover within the lease duration plus two retry periods (${takeoverMs} ms)`);

  // The new leader serves changes.
  await putKv2(`${ns}/app`, { value: 'two' });
  await createVaultSecret(ns, 'app2', { vault: { auth: { kubernetes: { role } } }, source: { kv: { mount: 'secret', path: `${ns}/app` } } });
  await waitForSecretData(ns, 'app2', { value: 'two' });
});

test('SIGTERM releases the Lease so the standby takes over at once, and the process exits cleanly', async (t) => {
  await installCrds();
  const env = { ...FAST_ELECTION, VSYNC_LEADER_ELECTION_LEASE: 'failover-term', VSYNC_LEASE_DURATION: '15s', VSYNC_RENEW_DEADLINE: '10s' };
  const a = await startOperator({ env });
  t.after(async () => { await a.stop('SIGKILL'); });
  await eventually('replica A leads', async () => (sample(await scrape(a), 'vaultsync_leader') === 1 ? true : undefined), 20_000);
  const b = await startOperator({ env });
  t.after(async () => { await b.stop(); });
  const stoppedAt = Date.now();
  assert.equal(await a.stop('SIGTERM'), 0, 'graceful exit code 0');
  await eventually('replica B leads', async () => (sample(await scrape(b), 'vaultsync_leader') === 1 ? true : undefined), 10_000, 100);
  const handover = Date.now() - stoppedAt;
  assert.ok(handover < 5000, `handover ${handover} ms is far below the 15 s lease: the Lease was released`);
});

test('health endpoints: /healthz live, /readyz ready once the caches have synced', async (t) => {
  const op = await startOperator({ env: { VSYNC_LEADER_ELECT: 'false' } });
  t.after(async () => { await op.stop(); });
  const m = /"health":"([^"]+)"/.exec(op.output());
  assert.ok(m, 'the operator logs its health address');
  assert.equal((await fetch(`http://${m[1]}/healthz`)).status, 200);
  assert.equal((await fetch(`http://${m[1]}/readyz`)).status, 200);
  assert.equal((await fetch(`http://${m[1]}/nope`)).status, 404);
});

test('an invalid setting stops the operator with a message naming it and the accepted values', async () => {
  await assert.rejects(startOperator({ env: { VSYNC_LOG_LEVEL: 'loud' } }), (err: Error) =>
    /VSYNC_LOG_LEVEL/.test(err.message) && /info/.test(err.message) && /exited with 2/.test(err.message));
});

test('restricted mode: an operator told to watch some namespaces serves those and leaves others alone', async (t) => {
  await installCrds();
  const served = await testNamespace('scope-in', t);
  const ignored = await testNamespace('scope-out', t);
  const op = await startOperator({ env: { VSYNC_LEADER_ELECT: 'false', VSYNC_WATCH_NAMESPACES: `${served},kube-system` } });
  t.after(async () => { await op.stop(); });
  for (const ns of [served, ignored]) {
    const role = await tenantRole(ns);
    await putKv2(`${ns}/app`, { value: ns });
    await createVaultSecret(ns, 'app', { vault: { auth: { kubernetes: { role } } }, source: { kv: { mount: 'secret', path: `${ns}/app` } } });
  }
  await waitForSecretData(served, 'app', { value: served });
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const { kubeClients } = await import('../support/stack.ts');
  const { core } = kubeClients();
  await assert.rejects(core.readNamespacedSecret({ name: 'app', namespace: ignored }), (e: any) => e.code === 404, 'no Secret outside the watched namespaces');
});
