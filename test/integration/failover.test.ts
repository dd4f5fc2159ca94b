// Two operator replicas against the real API server: only the leader reconciles; when it is killed the
// standby takes over within the lease duration and carries on; SIGTERM hands over at once. Metrics are
// read from each process's /metrics endpoint, as Prometheus would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, kubeClients, testNamespace } from '../support/stack.ts';
import { sample, scrape, startOperator, sumOf, waitForLeader } from '../support/operator.ts';
import {
  GROUP, VERSION, canLogin, createDeployment, createVaultSecret, credentials, databaseTenant, dbSpec, eventsFor, getVaultSecret, installCrds,
  pgRolesFor, putKv2, rollouts, tenantRole, vaultLeases, waitForCondition, waitForSecretData,
  watchDatabaseUse,
} from '../support/vaultsync.ts';

const FAST_ELECTION = { VSYNC_LEASE_DURATION: '4s', VSYNC_RENEW_DEADLINE: '3s', VSYNC_RETRY_PERIOD: '1s', VSYNC_LEADER_ELECTION_LEASE: 'failover-test' };

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
  const { core } = kubeClients();
  await assert.rejects(core.readNamespacedSecret({ name: 'app', namespace: ignored }), (e: any) => e.code === 404, 'no Secret outside the watched namespaces');
});

test('failover with dynamic leases: the standby re-issues nothing on takeover, and the next rotation happens once', async (t) => {
  await installCrds();
  const env = { ...FAST_ELECTION, VSYNC_LEADER_ELECTION_LEASE: 'failover-db' };
  const a = await startOperator({ env });
  t.after(async () => { await a.stop('SIGKILL'); });
  await waitForLeader(a);
  const b = await startOperator({ env });
  t.after(async () => { await b.stop(); });

  const ns = await testNamespace('failover-db', t);
  // Renewal at ~2/3 of 20 s is cut short by max_ttl 30 s, so new credentials are due half a TTL before the
  // end: ~20 s after the first issue, well after the takeover (~5 s) and ~20 s before the next rotation.
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '20s', maxTtl: '30s' });
  await createDeployment(ns, 'app');
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, {
    leases: { revokeGracePeriod: '3s' }, rolloutRestartTargets: [{ kind: 'Deployment', name: 'app' }],
  }));
  const ready = await waitForCondition(ns, 'db', 'Ready', 'True');
  const issuedAt = Date.parse(ready.status.leases[0].issuedAt);
  const before = { leases: await vaultLeases(dbRole), roles: await pgRolesFor(dbRole), creds: await credentials(ns, 'db') };
  const workloadBefore = await rollouts(ns, 'app');
  assert.equal(before.leases.length, 1);
  assert.equal(before.roles.length, 1);
  assert.equal(workloadBefore.restartedAt, undefined, 'the first credentials restart nothing');

  // Every lease and database user that exists from now on, and a consumer logging in with whatever the Secret holds.
  const { seen, failures, stop: stopWatching } = watchDatabaseUse(ns, 'db', dbRole, () => `+${Date.now() - issuedAt} ms`, before, t);

  const killedAt = Date.now();
  await a.stop('SIGKILL');
  await waitForLeader(b);
  const takeoverMs = Date.now() - killedAt;
  await eventually('the new leader to reconcile the VaultSecret', async () =>
    (sumOf(await scrape(b), 'vaultsync_syncs_total', /reason="LeaseSchedule"/) >= 1 ? true : undefined), 10_000, 100);
  assert.ok(Date.now() < issuedAt + 11_000, 'the takeover is checked before the lease is even due for renewal');
  assert.deepEqual(await vaultLeases(dbRole), before.leases, 'takeover: no lease issued');
  assert.deepEqual(await pgRolesFor(dbRole), before.roles, 'takeover: no PostgreSQL user created');
  assert.deepEqual(await credentials(ns, 'db'), before.creds, 'takeover: the Secret keeps its credentials');
  assert.deepEqual(await rollouts(ns, 'app'), workloadBefore, 'takeover: no workload restart');
  assert.equal(sample(await scrape(b), 'vaultsync_rotations_total'), 0);

  // The rotation that falls due after the takeover: new credentials once, one debounced restart, the old
  // lease revoked after its grace period.
  const rotated = await eventually('new credentials in the Secret', async () => {
    const now = await credentials(ns, 'db');
    return now.username !== before.creds.username ? now : undefined;
  }, 30_000, 200);
  const rotatedAt = Date.now();
  const restarted = await eventually('the debounced rollout restart', async () => {
    const now = await rollouts(ns, 'app');
    return now.restartedAt !== undefined ? now : undefined;
  }, 15_000, 200);
  await eventually('the superseded database user dropped', async () =>
    ((await pgRolesFor(dbRole)).includes(before.creds.username) ? undefined : true), 10_000, 200);
  await sleep(1500);
  await stopWatching();

  const newLeases = [...seen.leases].filter((id) => !before.leases.includes(id));
  const newRoles = [...seen.roles].filter((r) => !before.roles.includes(r));
  const rotations = (await eventsFor(ns, 'db')).filter((e) => e.reason === 'CredentialsRotated').reduce((n, e) => n + (e.count ?? 1), 0);
  const metrics = await scrape(b);
  process.stdout.write(`# failover with leases: takeover ${takeoverMs} ms after the kill, rotation ${rotatedAt - issuedAt} ms after the first issue, ` +
    `${newLeases.length} lease(s) issued over ${Date.now() - issuedAt} ms, ${rotations} CredentialsRotated event(s)\n`);
  assert.ok(rotatedAt - issuedAt < 30_000, 'rotated before the first lease reached max_ttl');
  assert.equal(newLeases.length, 1, 'one new lease for the one rotation due');
  assert.equal(newRoles.length, 1, 'one new PostgreSQL user');
  assert.deepEqual(newRoles, [rotated.username]);
  assert.equal(rotations, 1, 'one rotation event');
  assert.equal(sample(metrics, 'vaultsync_rotations_total'), 1, 'the new leader issued once');
  assert.equal(sample(metrics, 'vaultsync_revocations_total', '{result="revoked"}'), 1, 'and revoked the superseded lease');
  assert.deepEqual(await vaultLeases(dbRole), newLeases, 'Vault holds only the current lease');
  assert.equal(restarted.generation, workloadBefore.generation + 1, 'one workload restart, for the rotation');
  assert.deepEqual(await rollouts(ns, 'app'), restarted, 'and no other');
  assert.equal(restarted.restartedAt, (await getVaultSecret(ns, 'db')).status.lastRestartTime);
  assert.ok(await canLogin(rotated), 'the current credentials log in');
  assert.equal(await canLogin(before.creds), false, 'the superseded ones no longer do');
  assert.deepEqual(failures, [], 'the consumer never failed to log in');

  // Delete the VaultSecret while a leader runs, so that its finalizer revokes the lease before the namespace goes.
  await kubeClients().custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name: 'db' });
  await eventually('the lease revoked on deletion', async () => ((await vaultLeases(dbRole)).length === 0 ? true : undefined), 15_000);
});
