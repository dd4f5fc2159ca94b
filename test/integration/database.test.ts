// Dynamic database credentials on the real stack: Vault's database engine issuing PostgreSQL logins.
// What a user checks: the Secret's credentials log in, rotate before they die, superseded ones stop
// working after the grace period, deletion removes the database role, and restarts (also mid-rotation) re-issue nothing.
// A lease that no status can record (the operator died, or Vault's answer was lost) is announced with a Warning
// event and a metric; nothing is issued into a namespace being deleted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdmissionregistrationV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { DATABASE_MOUNT, KUBERNETES_AUTH_MOUNT } from '../../devstack/configure.ts';
import { eventually, kubeClients, pgAdmin, testNamespace, vaultAdmin } from '../support/stack.ts';
import { sample, scrape, startOperator, sumOf, type RunningOperator } from '../support/operator.ts';
import { flakyVaultConnection } from '../support/proxy.ts';
import {
  GROUP, VERSION, canLogin, condition, createDeployment, createVaultSecret, credentials, databaseTenant, dbSpec, decoded, eventsFor,
  getVaultSecret, installCrds, pgRolesFor, readSecret, rollouts, vaultLeases, waitForCondition,
  watchDatabaseUse,
} from '../support/vaultsync.ts';

// One replica without leader election: a process started after a SIGKILL reconciles at once instead of
// waiting out the killed one's leader Lease (failover.test.ts covers two replicas with election).
const SINGLE_REPLICA = { env: { VSYNC_LEADER_ELECT: 'false' } };
let operator: RunningOperator;

before(async () => {
  await installCrds();
  operator = await startOperator(SINGLE_REPLICA);
});

after(async () => {
  await operator?.stop();
});

test('database credentials land in the Secret, log in, and their lease is tracked in status', async (t) => {
  const ns = await testNamespace('db-basic', t);
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '10m', maxTtl: '1h' });
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole));
  const vs = await waitForCondition(ns, 'db', 'Ready', 'True');
  const creds = await credentials(ns, 'db');
  assert.ok(await canLogin(creds), 'the credentials in the Secret log in to PostgreSQL');
  const leases = vs.status.leases as any[];
  assert.equal(leases.length, 1);
  assert.equal(leases[0].state, 'active');
  assert.match(leases[0].leaseId, new RegExp(`^${DATABASE_MOUNT}/creds/${dbRole}/`));
  assert.ok(Date.parse(leases[0].expiresAt) > Date.now() + 5 * 60_000, 'expiry about 10 minutes out');
  assert.deepEqual(await vaultLeases(dbRole), [leases[0].leaseId.split('/').at(-1)]);

  // Deleting the VaultSecret revokes the lease: the database role is gone.
  const { custom } = kubeClients();
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name: 'db' });
  await eventually('the database role dropped', async () => ((await pgRolesFor(dbRole)).length === 0 ? true : undefined), 30_000);
  assert.equal(await canLogin(creds), false);
  assert.deepEqual(await vaultLeases(dbRole), []);
});

test('rotation before max_ttl: new credentials work, superseded ones are revoked after the grace period', async (t) => {
  const ns = await testNamespace('db-rotate', t);
  // Renewals are truncated at max_ttl, so the operator must issue new credentials before 16 s are up.
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '8s', maxTtl: '16s' });
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, { leases: { revokeGracePeriod: '3s' } }));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const first = await credentials(ns, 'db');
  const rotated = await eventually('new credentials in the Secret', async () => {
    const now = await credentials(ns, 'db');
    return now.username !== first.username ? now : undefined;
  }, 25_000, 200);
  assert.ok(await canLogin(rotated), 'the new credentials log in');
  await eventually('the superseded credentials revoked', async () => ((await canLogin(first)) ? undefined : true), 15_000);
  const vs = await getVaultSecret(ns, 'db');
  assert.ok(vs.status.lastRotationTime, 'status records the rotation');
  assert.ok((vs.status.leases as any[]).every((l) => l.leaseId !== undefined));
});

test('a consumer logging in every 100 ms with whatever the Secret holds never fails across rotations', async (t) => {
  const ns = await testNamespace('db-soak', t);
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '6s', maxTtl: '12s' });
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, { leases: { revokeGracePeriod: '4s' } }));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const seconds = Number(process.env.VSYNC_SOAK_SECONDS ?? 45);
  const deadline = Date.now() + seconds * 1000;
  const usernames = new Set<string>();
  let attempts = 0;
  const failures: string[] = [];
  while (Date.now() < deadline) {
    const creds = await credentials(ns, 'db');
    usernames.add(creds.username);
    attempts++;
    if (!(await canLogin(creds))) failures.push(`${new Date().toISOString()} ${creds.username}`);
    await sleep(100);
  }
  process.stdout.write(`# soak: ${seconds} s, ${attempts} logins, ${usernames.size - 1} rotations, ${failures.length} failures\n`);
  assert.ok(usernames.size >= 3, `at least two rotations happened (saw ${usernames.size} credentials)`);
  assert.deepEqual(failures, [], 'no login failed');
});

test('an operator restart at steady state issues no new lease and restarts nothing', async (t) => {
  const ns = await testNamespace('db-restart', t);
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '10m', maxTtl: '1h' });
  await createDeployment(ns, 'app');
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, { rolloutRestartTargets: [{ kind: 'Deployment', name: 'app' }] }));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const before = { leases: await vaultLeases(dbRole), roles: await pgRolesFor(dbRole), creds: await credentials(ns, 'db') };
  const workloadBefore = await rollouts(ns, 'app');
  assert.equal(before.leases.length, 1);
  assert.equal(before.roles.length, 1, 'one PostgreSQL user for the one lease');
  assert.equal(workloadBefore.restartedAt, undefined, 'the first sync restarts nothing');

  // Hard kill: no graceful shutdown, no Lease release.
  await operator.stop('SIGKILL');
  operator = await startOperator(SINGLE_REPLICA);
  // The new process has looked at the dynamic VaultSecret (a lease-schedule pass), and then some.
  await eventually('the restarted operator to reconcile', async () =>
    (sumOf(await scrape(operator), 'vaultsync_syncs_total', /reason="LeaseSchedule"/) >= 1 ? true : undefined), 15_000, 200);
  await sleep(8000);
  await waitForCondition(ns, 'db', 'Ready', 'True');
  assert.deepEqual(await vaultLeases(dbRole), before.leases, 'no lease issued or lost');
  assert.deepEqual(await pgRolesFor(dbRole), before.roles, 'no database role created or dropped');
  assert.deepEqual(await credentials(ns, 'db'), before.creds, 'the Secret still holds the same credentials');
  assert.deepEqual(await rollouts(ns, 'app'), workloadBefore, 'no workload restart');
});

test('a hard kill mid-rotation: the new process revokes the superseded lease on time and issues nothing extra', async (t) => {
  const ns = await testNamespace('db-midkill', t);
  // Renewal at ~2/3 of 24 s is cut short by max_ttl 30 s, so new credentials come half a TTL before the end,
  // at ~18 s. The superseded lease then has 12 s left: revoked after the 8 s grace, 4 s before it would expire.
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '24s', maxTtl: '30s' });
  const graceMs = 8000;
  await createDeployment(ns, 'app');
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, {
    leases: { revokeGracePeriod: '8s' }, rolloutRestartTargets: [{ kind: 'Deployment', name: 'app' }],
  }));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const first = await credentials(ns, 'db');
  const workloadBefore = await rollouts(ns, 'app');
  await eventually('a superseded lease in status', async () => {
    const vs = await getVaultSecret(ns, 'db');
    return (vs.status?.leases ?? []).some((l: any) => l.state === 'superseded') ? true : undefined;
  }, 30_000, 100);
  await operator.stop('SIGKILL');
  const killedAt = Date.now();

  // What the killed process left behind: status, Vault and PostgreSQL agree on two leases.
  const vs = await getVaultSecret(ns, 'db');
  const superseded = (vs.status.leases as any[]).find((l) => l.state === 'superseded');
  const active = (vs.status.leases as any[]).find((l) => l.state === 'active');
  const supersededAt = Date.parse(superseded.supersededAt);
  const atKill = { leases: await vaultLeases(dbRole), roles: await pgRolesFor(dbRole), creds: await credentials(ns, 'db') };
  assert.ok(killedAt < supersededAt + graceMs - 4000, `killed ${killedAt - supersededAt} ms into the ${graceMs} ms grace period`);
  assert.deepEqual(atKill.leases, [superseded.leaseId, active.leaseId].map((id: string) => id.split('/').at(-1)).sort(), 'status records both leases Vault holds');
  assert.equal(atKill.roles.length, 2);
  assert.ok(atKill.roles.includes(first.username), 'the superseded credentials still exist during the grace period');
  assert.notEqual(atKill.creds.username, first.username, 'the Secret holds the new credentials');
  assert.ok(vs.status.pendingRestartSince, 'the rotation left a debounced restart pending');

  // From now on: every lease and database user seen, and a consumer logging in with whatever the Secret holds.
  const { seen, failures, stop: stopWatching } = watchDatabaseUse(ns, 'db', dbRole, () => `+${Date.now() - killedAt} ms after the kill`, {}, t);

  operator = await startOperator(SINGLE_REPLICA);
  await eventually('the restarted operator to reconcile', async () =>
    (sumOf(await scrape(operator), 'vaultsync_syncs_total', /reason="LeaseSchedule"/) >= 1 ? true : undefined), 10_000, 100);
  assert.deepEqual(await vaultLeases(dbRole), atKill.leases, 'right after the restart: the same leases in Vault');
  assert.deepEqual(await pgRolesFor(dbRole), atKill.roles, 'right after the restart: the same PostgreSQL users');

  // The superseded lease is revoked once its grace period is over, by the new process, before it would expire.
  const revokedAt = await eventually('the superseded database user dropped', async () =>
    ((await pgRolesFor(dbRole)).includes(first.username) ? undefined : Date.now()), 20_000, 100);
  process.stdout.write(`# mid-rotation kill: killed ${killedAt - supersededAt} ms after the rotation, superseded user dropped ` +
    `${revokedAt - supersededAt} ms after it (grace ${graceMs} ms, expiry ${Date.parse(superseded.expiresAt) - supersededAt} ms)\n`);
  assert.ok(revokedAt >= supersededAt + graceMs, 'not before the grace period was over');
  assert.ok(revokedAt < Date.parse(superseded.expiresAt), 'revoked, not left to expire');
  assert.deepEqual(await vaultLeases(dbRole), [active.leaseId.split('/').at(-1)], 'Vault holds only the current lease');
  assert.equal(await canLogin(first), false, 'the superseded credentials no longer log in');
  assert.equal(sample(await scrape(operator), 'vaultsync_revocations_total', '{result="revoked"}'), 1, 'the new process revoked it');

  // The restart the rotation asked for happens once, when its debounce window closes.
  const restarted = await eventually('the debounced rollout restart', async () => {
    const now = await rollouts(ns, 'app');
    return now.restartedAt !== undefined ? now : undefined;
  }, 15_000, 200);
  await sleep(1500);
  await stopWatching();
  const after = await getVaultSecret(ns, 'db');
  assert.equal(restarted.generation, workloadBefore.generation + 1, 'one restart for the one rotation');
  assert.deepEqual(await rollouts(ns, 'app'), restarted, 'and no other');
  assert.equal(restarted.restartedAt, after.status.lastRestartTime);
  assert.equal(after.status.pendingRestartSince, undefined);

  // No lease issued by the new process: nothing was due before the current lease's own rotation point.
  assert.deepEqual([...seen.leases].sort(), atKill.leases, 'no lease issued after the kill');
  assert.deepEqual([...seen.roles].sort(), [...atKill.roles].sort(), 'no PostgreSQL user created after the kill');
  assert.equal(sample(await scrape(operator), 'vaultsync_rotations_total'), 0, 'the new process issued no credentials');
  assert.deepEqual((after.status.leases as any[]).map((l) => [l.leaseId, l.state]), [[active.leaseId, 'active']]);
  assert.deepEqual(await credentials(ns, 'db'), atKill.creds, 'the Secret holds the same credentials');
  assert.ok(await canLogin(atKill.creds), 'and they log in');
  assert.deepEqual(failures, [], 'the consumer never failed to log in');
});

test('a rotation restarts the target workloads once, debounced', async (t) => {
  const ns = await testNamespace('db-restarts', t);
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '5s', maxTtl: '8s' });
  for (const name of ['web', 'worker']) await createDeployment(ns, name, { tier: 'db-client' });
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, {
    leases: { revokeGracePeriod: '2s' },
    rolloutRestartTargets: [{ kind: 'Deployment', selector: { matchLabels: { tier: 'db-client' } } }],
  }));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const restartedAt = async (name: string) => (await rollouts(ns, name)).restartedAt;
  assert.equal(await restartedAt('web'), undefined, 'not on the first sync');
  const first = await eventually('a restart after the first rotation', () => restartedAt('web'), 30_000);
  assert.equal(await restartedAt('worker'), first, 'both selected workloads restarted together');
  const vs = await getVaultSecret(ns, 'db');
  assert.ok(vs.status.lastRestartTime);
  const { core } = kubeClients();
  const events = (await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=db' })).items;
  assert.ok(events.some((e) => e.reason === 'RolloutRestarted'), 'an event per restart');
  // Debounced: never more restarts than rotations (each restart event names one workload; two are selected).
  await sleep(12_000);
  const later = (await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=db' })).items;
  const total = (reason: string) => later.filter((e) => e.reason === reason).reduce((n, e) => n + (e.count ?? 1), 0);
  assert.ok(total('RolloutRestarted') / 2 <= total('CredentialsRotated'), `${total('RolloutRestarted') / 2} restarts for ${total('CredentialsRotated')} rotations`);
});

test('credentials are rotated before the Vault token that issued them expires', async (t) => {
  const ns = await testNamespace('db-parent', t);
  const vault = vaultAdmin();
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '10m', maxTtl: '1h' });
  // The login token cannot outlive 15 s (token_max_ttl), so its leases would die with it after 15 s.
  await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/role/${vaultRole}`, {
    bound_service_account_names: ['default'], bound_service_account_namespaces: [ns], audience: 'vault',
    token_policies: [vaultRole], token_ttl: '15s', token_max_ttl: '15s',
  });
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, { leases: { revokeGracePeriod: '1s' } }));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const first = await credentials(ns, 'db');
  const issued = Date.now();
  const vs = await getVaultSecret(ns, 'db');
  const parent = Date.parse(vs.status.leases[0].parentTokenExpiresAt);
  assert.ok(parent - issued < 16_000, 'status records the short-lived parent token');
  const second = await eventually('new credentials before the parent token expires', async () => {
    const now = await credentials(ns, 'db');
    return now.username !== first.username ? now : undefined;
  }, 20_000, 200);
  assert.ok(Date.now() < parent, 'rotated before the parent token died');
  assert.ok(await canLogin(second));
  // No runaway: over 30 s, about one rotation per token lifetime.
  await sleep(30_000);
  const rotations = (await eventsFor(ns, 'db')).filter((e) => e.reason === 'CredentialsRotated').reduce((n, e) => n + (e.count ?? 1), 0);
  assert.ok(rotations >= 2 && rotations <= 9, `rotations in ~45 s with 15 s tokens (one per ~7.5 s expected, a loop would be dozens): ${rotations}`);
  assert.ok(await canLogin(await credentials(ns, 'db')), 'the current credentials work');
});

test('Vault unreachable through a renewal window: the Secret keeps working credentials and the lease is renewed after', async (t) => {
  const ns = await testNamespace('db-outage', t);
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '24s', maxTtl: '1h' });
  const proxy = await flakyVaultConnection(ns, 'flaky', t);
  await createVaultSecret(ns, 'db', { ...dbSpec(vaultRole, dbRole), vault: { connectionRef: { name: 'flaky' }, auth: { kubernetes: { role: vaultRole } } } });
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const creds = await credentials(ns, 'db');
  const issuedAt = Date.parse((await getVaultSecret(ns, 'db')).status.leases[0].issuedAt);
  // Renewal is due at ~2/3 of 24 s (14.4–16 s); cut Vault off from 10 s to 19 s.
  await sleep(Math.max(0, issuedAt + 10_000 - Date.now()));
  await proxy.cut();
  const failures: string[] = [];
  const consumer = (async () => {
    const until = issuedAt + 30_000;
    while (Date.now() < until) {
      const now = await credentials(ns, 'db');
      if (!now.username || !now.password) failures.push('empty Secret');
      else if (!(await canLogin(now))) failures.push(`login failed at +${Date.now() - issuedAt} ms`);
      await sleep(200);
    }
  })();
  await waitForCondition(ns, 'db', 'Ready', 'False', 'VaultUnreachable', 12_000);
  await sleep(Math.max(0, issuedAt + 19_000 - Date.now()));
  await proxy.restore();
  await consumer;
  assert.deepEqual(failures, [], 'the Secret always held working credentials');
  const vs = await waitForCondition(ns, 'db', 'Ready', 'True', undefined, 20_000);
  const active = (vs.status.leases as any[]).find((l) => l.state === 'active');
  assert.ok(Date.parse(active.expiresAt) > issuedAt + 24_000, 'the lease was renewed or replaced after the outage');
  assert.ok(await canLogin(await credentials(ns, 'db')));
  void creds;
});

test('a static database role: the Secret follows the password Vault rotates', async (t) => {
  const ns = await testNamespace('db-static', t);
  const vault = vaultAdmin();
  const username = `static_${ns.replace(/-/g, '_')}`;
  const admin = await pgAdmin();
  await admin.query(`CREATE ROLE "${username}" WITH LOGIN PASSWORD 'initial-not-used'`);
  await admin.end();
  t.after(async () => {
    const a = await pgAdmin();
    await a.query(`DROP ROLE IF EXISTS "${username}"`).catch(() => undefined);
    await a.end();
  });
  const staticRole = `static-${ns}`;
  await vault.write(`${DATABASE_MOUNT}/static-roles/${staticRole}`, { db_name: 'devstack-postgres', username, rotation_period: '10s' });
  t.after(async () => { await vault.delete(`${DATABASE_MOUNT}/static-roles/${staticRole}`).catch(() => undefined); });
  const vaultRole = `static-${ns}`;
  await vault.putPolicy(vaultRole, `path "${DATABASE_MOUNT}/static-creds/${staticRole}" { capabilities = ["read"] }`);
  await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/role/${vaultRole}`, {
    bound_service_account_names: ['default'], bound_service_account_namespaces: [ns], audience: 'vault', token_policies: [vaultRole], token_ttl: '1h',
  });
  const { core } = kubeClients();
  await eventually(`ServiceAccount ${ns}/default`, () => core.readNamespacedServiceAccount({ name: 'default', namespace: ns }));
  await createVaultSecret(ns, 'static', { vault: { auth: { kubernetes: { role: vaultRole } } }, source: { database: { role: staticRole, static: true } } });
  await waitForCondition(ns, 'static', 'Ready', 'True');
  const first = await credentials(ns, 'static');
  assert.equal(first.username, username);
  assert.ok(await canLogin(first), 'the current static password logs in');
  const vs = await getVaultSecret(ns, 'static');
  assert.deepEqual(vs.status.leases ?? [], [], 'a static role has no lease to track');
  // Vault rotates every 10 s; the operator re-reads just after each rotation.
  const next = await eventually('the rotated password in the Secret', async () => {
    const now = await credentials(ns, 'static');
    return now.password !== first.password ? now : undefined;
  }, 30_000, 250);
  assert.equal(next.username, username);
  assert.ok(await canLogin(next), 'the rotated password logs in');
});

test('a generic dynamic source: PKI certificates re-issued before they expire', async (t) => {
  const ns = await testNamespace('pki', t);
  const vault = vaultAdmin();
  const mount = `pki-${ns}`;
  await vault.write(`sys/mounts/${mount}`, { type: 'pki', config: { max_lease_ttl: '1h' } });
  t.after(async () => { await vault.delete(`sys/mounts/${mount}`).catch(() => undefined); });
  await vault.write(`${mount}/root/generate/internal`, { common_name: 'devstack test CA', ttl: '1h' });
  // generate_lease: certificates come with a (non-renewable) lease the operator must replace in time.
  await vault.write(`${mount}/roles/web`, { allowed_domains: 'svc.cluster.local', allow_subdomains: true, max_ttl: '1h', generate_lease: true });
  const vaultRole = `pki-${ns}`;
  await vault.putPolicy(vaultRole, [`path "${mount}/issue/web" { capabilities = ["create", "update"] }`, 'path "sys/leases/revoke" { capabilities = ["update"] }'].join('\n'));
  await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/role/${vaultRole}`, {
    bound_service_account_names: ['default'], bound_service_account_namespaces: [ns], audience: 'vault', token_policies: [vaultRole], token_ttl: '1h',
  });
  const { core } = kubeClients();
  await eventually(`ServiceAccount ${ns}/default`, () => core.readNamespacedServiceAccount({ name: 'default', namespace: ns }));
  await createVaultSecret(ns, 'tls', {
    vault: { auth: { kubernetes: { role: vaultRole } } },
    source: { dynamic: { path: `${mount}/issue/web`, method: 'POST', params: { common_name: 'web.app.svc.cluster.local', ttl: '12s' } } },
    template: { data: { 'tls.crt': '{{ secret.certificate }}', 'tls.key': '{{ secret.private_key }}', 'serial': '{{ secret.serial_number }}' } },
    destination: { type: 'kubernetes.io/tls' },
    leases: { revokeGracePeriod: '2s' },
  });
  const vs = await waitForCondition(ns, 'tls', 'Ready', 'True');
  assert.equal(vs.status.leases[0].renewable, false);
  const first = decoded(await readSecret(ns, 'tls'));
  assert.match(first['tls.crt']!, /BEGIN CERTIFICATE/);
  assert.match(first['tls.key']!, /PRIVATE KEY/);
  const second = await eventually('a new certificate before the first expires', async () => {
    const now = decoded(await readSecret(ns, 'tls'));
    return now.serial !== first.serial ? now : undefined;
  }, 15_000, 250);
  assert.match(second['tls.crt']!, /BEGIN CERTIFICATE/);
  const secret = await readSecret(ns, 'tls');
  assert.equal(secret?.type, 'kubernetes.io/tls');
});

// ---- leases no status records ---------------------------------------------------------------------------

async function forceSync(ns: string, name: string, value: string): Promise<void> {
  await kubeClients().custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name, body: { metadata: { annotations: { 'vaultsync.dev/force-sync': value } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

/** Leases Vault holds for the role that the VaultSecret's status does not record. */
async function unrecordedLeases(ns: string, name: string, dbRole: string): Promise<string[]> {
  const recorded = ((await getVaultSecret(ns, name)).status?.leases ?? []).map((l: any) => l.leaseId.split('/').at(-1));
  return (await vaultLeases(dbRole)).filter((id) => !recorded.includes(id));
}

async function revokeByHand(dbRole: string, ids: string[]): Promise<void> {
  for (const id of ids) await vaultAdmin().write('sys/leases/revoke', { lease_id: `${DATABASE_MOUNT}/creds/${dbRole}/${id}` });
}

test('a kill after Vault answered an issue request: the next process reports the lease no status records', async (t) => {
  const ns = await testNamespace('db-killed-issue', t);
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '10m', maxTtl: '1h' });
  const proxy = await flakyVaultConnection(ns, 'held', t);
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, { vault: { connectionRef: { name: 'held' }, auth: { kubernetes: { role: vaultRole } } } }));
  await waitForCondition(ns, 'db', 'Ready', 'True');

  // Vault acts on the next request, its answer never reaches the operator, and the operator dies waiting for it.
  const held = proxy.holdAnswers();
  await forceSync(ns, 'db', '1');
  await Promise.race([held.answered, sleep(10_000).then(() => { throw new Error('no request reached Vault'); })]);
  await operator.stop('SIGKILL');
  proxy.release();
  const atKill = await getVaultSecret(ns, 'db');
  assert.deepEqual(atKill.status.pendingIssue?.path, `${DATABASE_MOUNT}/creds/${dbRole}`, 'the killed process recorded its intent first');
  const untracked = await unrecordedLeases(ns, 'db', dbRole);
  t.after(() => revokeByHand(dbRole, untracked));
  assert.equal(untracked.length, 1, 'Vault issued a lease that no status records');

  operator = await startOperator(SINGLE_REPLICA);
  const warning = await eventually('the LeaseMayBeUntracked event', async () =>
    (await eventsFor(ns, 'db')).find((e) => e.reason === 'LeaseMayBeUntracked'), 15_000);
  assert.equal(warning.type, 'Warning');
  assert.match(warning.message!, new RegExp(`VaultSecret ${ns}/db`));
  assert.match(warning.message!, new RegExp(`vault list sys/leases/lookup/${DATABASE_MOUNT}/creds/${dbRole}/ `));
  assert.match(warning.message!, /stopped before recording the answer/);
  const metrics = await scrape(operator);
  assert.equal(sample(metrics, 'vaultsync_untracked_lease_suspicions_total', '{cause="interrupted"}'), 1);
  assert.equal(sample(metrics, 'vaultsync_untracked_lease_suspicions_total', '{cause="outcome_unknown"}'), 0);

  // The force-sync the killed process never finished is done once by the new one; the intent is gone.
  const after = await eventually('the force-sync handled and the intent cleared', async () => {
    const vs = await getVaultSecret(ns, 'db');
    return vs.status.lastForceSync === '1' && vs.status.pendingIssue === undefined ? vs : undefined;
  }, 15_000);
  await sleep(2000);
  assert.equal(sample(await scrape(operator), 'vaultsync_rotations_total'), 1, 'one issue, for the force-sync');
  assert.deepEqual(await unrecordedLeases(ns, 'db', dbRole), untracked, 'what the warning points to is the one lease status does not record');
  assert.equal((after.status.leases as any[]).filter((l) => l.state === 'active').length, 1);
  assert.equal((await eventsFor(ns, 'db')).filter((e) => e.reason === 'LeaseMayBeUntracked').reduce((n, e) => n + (e.count ?? 1), 0), 1, 'reported once');
});

test('a lost answer to an issue request is reported, not repeated blindly: every unrecorded lease was announced', async (t) => {
  const ns = await testNamespace('db-lost-answer', t);
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '10m', maxTtl: '1h' });
  const proxy = await flakyVaultConnection(ns, 'held', t);
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, { vault: { connectionRef: { name: 'held' }, auth: { kubernetes: { role: vaultRole } } } }));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const lost = () => scrape(operator).then((m) => sample(m, 'vaultsync_untracked_lease_suspicions_total', '{cause="outcome_unknown"}') ?? 0);
  const lostBefore = await lost();

  // Vault issues, the answer is swallowed, the operator's 2 s request timeout expires.
  const held = proxy.holdAnswers();
  await forceSync(ns, 'db', '1');
  await Promise.race([held.answered, sleep(10_000).then(() => { throw new Error('no request reached Vault'); })]);
  await eventually('the operator to report the lost answer', async () => ((await lost()) > lostBefore ? true : undefined), 10_000, 100);
  proxy.release();

  const vs = await eventually('the force-sync done once answers arrive again', async () => {
    const now = await getVaultSecret(ns, 'db');
    return now.status.lastForceSync === '1' && now.status.pendingIssue === undefined ? now : undefined;
  }, 30_000);
  assert.equal(condition(vs, 'Ready')?.status, 'True');
  await sleep(1000);
  const announced = (await lost()) - lostBefore;
  const untracked = await unrecordedLeases(ns, 'db', dbRole);
  t.after(() => revokeByHand(dbRole, untracked));
  assert.ok(untracked.length >= 1, 'Vault issued at least one lease whose answer was lost');
  assert.equal(announced, untracked.length, `each unrecorded lease was announced (${untracked.length} unrecorded, ${announced} announced)`);
  const warnings = (await eventsFor(ns, 'db')).filter((e) => e.reason === 'LeaseMayBeUntracked');
  assert.ok(warnings.length >= 1 && warnings.every((e) => e.type === 'Warning' && /was lost/.test(e.message!)));
  assert.ok(await canLogin(await credentials(ns, 'db')), 'the Secret holds working credentials');
});

test('no credentials are issued into a namespace being deleted', async (t) => {
  const ns = await testNamespace('db-ns-gone', t);
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '10m', maxTtl: '1h' });
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const leases = await vaultLeases(dbRole);
  const { kc, core, custom } = kubeClients();
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);

  // The namespace controller deletes a namespace's objects in no fixed order. Refusing the VaultSecret's deletion
  // makes the order the one that issued credentials into terminating namespaces: the Secret first.
  const hold = `hold-${ns}`;
  await admission.createValidatingAdmissionPolicy({ body: {
    metadata: { name: hold },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: { resourceRules: [{ apiGroups: [GROUP], apiVersions: ['*'], resources: ['vaultsecrets'], operations: ['DELETE'] }] },
      validations: [{ expression: 'false', message: 'held by the test' }],
    },
  } });
  const release = async () => {
    await admission.deleteValidatingAdmissionPolicyBinding({ name: hold }).catch(() => undefined);
    await admission.deleteValidatingAdmissionPolicy({ name: hold }).catch(() => undefined);
  };
  t.after(release);
  await admission.createValidatingAdmissionPolicyBinding({ body: {
    metadata: { name: hold },
    spec: { policyName: hold, validationActions: ['Deny'], matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } } },
  } });
  const vsRef = { group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name: 'db' };
  await eventually('the hold in effect', async () => {
    try {
      await custom.deleteNamespacedCustomObject({ ...vsRef, dryRun: 'All' });
      return undefined;
    } catch (err: any) {
      return err.code === 422 || err.code === 403 ? true : undefined;
    }
  });

  const issueRequests = async () => sumOf(await scrape(operator), 'vaultsync_vault_requests_total', /operation="dynamic-read"/);
  const before = await issueRequests();
  await core.deleteNamespace({ name: ns });
  await eventually('the namespace controller to delete the Secret', async () => ((await readSecret(ns, 'db')) === undefined ? true : undefined));
  await eventually('the operator to decline issuing', async () =>
    (operator.output().includes(`"vaultSecret":"${ns}/db","msg":"namespace is being deleted: not issuing new credentials"`) ? true : undefined), 15_000, 100);
  const phase = (await core.readNamespace({ name: ns })).status?.phase;
  assert.equal(phase, 'Terminating');
  assert.equal((await getVaultSecret(ns, 'db')).metadata.deletionTimestamp, undefined, 'the VaultSecret itself is not being deleted yet');
  assert.equal(await issueRequests(), before, 'no request for new credentials reached Vault');
  assert.deepEqual(await vaultLeases(dbRole), leases);

  // Once the VaultSecret may go, its finalizer revokes what it holds.
  await release();
  await eventually('the VaultSecret deleted', async () => {
    // Refused until the API server has dropped the hold; 404 if the namespace controller was first.
    await custom.deleteNamespacedCustomObject(vsRef).catch((err: any) => { if (err.code !== 404) throw err; });
    return true;
  });
  await eventually('the lease revoked', async () => ((await vaultLeases(dbRole)).length === 0 ? true : undefined), 20_000);
});
