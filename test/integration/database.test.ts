// Dynamic database credentials on the real stack: Vault's database engine issuing PostgreSQL logins.
// What a user checks: the Secret's credentials log in, rotate before they die, superseded ones stop
// working after the grace period, deletion removes the database role, and restarts re-issue nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DATABASE_MOUNT, KUBERNETES_AUTH_MOUNT, putDatabaseRole } from '../../devstack/configure.ts';
import { eventually, kubeClients, pgAdmin, pgLogin, testNamespace, vaultAdmin } from '../support/stack.ts';
import { startOperator, type RunningOperator } from '../support/operator.ts';
import { flakyVaultConnection } from '../support/proxy.ts';
import { GROUP, VERSION, createVaultSecret, decoded, eventsFor, getVaultSecret, installCrds, readSecret, waitForCondition } from '../support/vaultsync.ts';

let operator: RunningOperator;

before(async () => {
  await installCrds();
  operator = await startOperator();
});

after(async () => {
  await operator?.stop();
});

/** A database role with the given TTLs and a namespace role allowed to use it (and renew/revoke leases). */
async function databaseTenant(ns: string, ttl: { defaultTtl: string; maxTtl: string }): Promise<{ dbRole: string; vaultRole: string }> {
  const vault = vaultAdmin();
  const dbRole = `db-${ns}`;
  await putDatabaseRole(vault, dbRole, ttl);
  const vaultRole = `dbtenant-${ns}`;
  await vault.putPolicy(vaultRole, [
    `path "${DATABASE_MOUNT}/creds/${dbRole}" { capabilities = ["read"] }`,
    'path "sys/leases/renew" { capabilities = ["update"] }',
    'path "sys/leases/revoke" { capabilities = ["update"] }',
  ].join('\n'));
  await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/role/${vaultRole}`, {
    bound_service_account_names: ['default'], bound_service_account_namespaces: [ns], audience: 'vault',
    token_policies: [vaultRole], token_ttl: '1h', token_max_ttl: '2h',
  });
  const { core } = kubeClients();
  await eventually(`ServiceAccount ${ns}/default`, () => core.readNamespacedServiceAccount({ name: 'default', namespace: ns }));
  return { dbRole, vaultRole };
}

async function credentials(ns: string, name: string): Promise<{ username: string; password: string }> {
  const data = decoded(await readSecret(ns, name));
  return { username: data.username!, password: data.password! };
}

async function canLogin(creds: { username: string; password: string }): Promise<boolean> {
  try {
    const session = await pgLogin(creds.username, creds.password);
    await session.end();
    return true;
  } catch {
    return false;
  }
}

/** PostgreSQL roles Vault created for a database role (their names embed the role name). */
async function pgRolesFor(dbRole: string): Promise<string[]> {
  const admin = await pgAdmin();
  try {
    const res = await admin.query('select rolname from pg_roles where rolname like $1 order by rolname', [`%${dbRole.slice(0, 20)}%`]);
    return res.rows.map((r) => r.rolname as string);
  } finally {
    await admin.end();
  }
}

async function vaultLeases(dbRole: string): Promise<string[]> {
  try {
    const res = await vaultAdmin().list(`sys/leases/lookup/${DATABASE_MOUNT}/creds/${dbRole}/`);
    return res.data.keys as string[];
  } catch {
    return [];
  }
}

function dbSpec(vaultRole: string, dbRole: string, extra: Record<string, unknown> = {}) {
  return { vault: { auth: { kubernetes: { role: vaultRole } } }, source: { database: { role: dbRole } }, ...extra };
}

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
  const { apps } = kubeClients();
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'app', labels: { app: 'app' } },
      spec: { selector: { matchLabels: { app: 'app' } }, template: { metadata: { labels: { app: 'app' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
    },
  });
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, { rolloutRestartTargets: [{ kind: 'Deployment', name: 'app' }] }));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const before = { leases: await vaultLeases(dbRole), roles: await pgRolesFor(dbRole), creds: await credentials(ns, 'db') };
  const templateBefore = (await apps.readNamespacedDeployment({ name: 'app', namespace: ns })).spec?.template.metadata?.annotations ?? {};
  assert.equal(before.leases.length, 1);
  assert.equal(templateBefore['vaultsync.dev/restartedAt'], undefined, 'the first sync restarts nothing');

  // Hard kill: no graceful shutdown, no Lease release.
  await operator.stop('SIGKILL');
  operator = await startOperator();
  await sleep(8000);
  await waitForCondition(ns, 'db', 'Ready', 'True');
  assert.deepEqual(await vaultLeases(dbRole), before.leases, 'no lease issued or lost');
  assert.deepEqual(await pgRolesFor(dbRole), before.roles, 'no database role created or dropped');
  assert.deepEqual(await credentials(ns, 'db'), before.creds, 'the Secret still holds the same credentials');
  const templateAfter = (await apps.readNamespacedDeployment({ name: 'app', namespace: ns })).spec?.template.metadata?.annotations ?? {};
  assert.equal(templateAfter['vaultsync.dev/restartedAt'], undefined, 'no workload restart');
});

test('a rotation restarts the target workloads once, debounced', async (t) => {
  const ns = await testNamespace('db-restarts', t);
  const { dbRole, vaultRole } = await databaseTenant(ns, { defaultTtl: '5s', maxTtl: '8s' });
  const { apps } = kubeClients();
  for (const name of ['web', 'worker']) {
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name, labels: { tier: 'db-client' } },
        spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
      },
    });
  }
  await createVaultSecret(ns, 'db', dbSpec(vaultRole, dbRole, {
    leases: { revokeGracePeriod: '2s' },
    rolloutRestartTargets: [{ kind: 'Deployment', selector: { matchLabels: { tier: 'db-client' } } }],
  }));
  await waitForCondition(ns, 'db', 'Ready', 'True');
  const restartedAt = async (name: string) =>
    (await apps.readNamespacedDeployment({ name, namespace: ns })).spec?.template.metadata?.annotations?.['vaultsync.dev/restartedAt'];
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
