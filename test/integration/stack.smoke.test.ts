// Proof that the local stack is real: each test exercises what a fake could not do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DATABASE_MOUNT, KUBERNETES_AUTH_MOUNT, KV2_MOUNT, putDatabaseRole,
} from '../../devstack/configure.ts';
import { VaultAdminError } from '../../devstack/vaultAdmin.ts';
import {
  eventually, kubeClients, pgAdmin, pgLogin, serviceAccountToken, testNamespace, uniqueSuffix, vaultAdmin,
} from '../support/stack.ts';

test('the API server serves a CustomResourceDefinition and an object of it', async (t) => {
  const { apiext, custom } = kubeClients();
  const ns = await testNamespace('smoke-crd', t);
  const group = `smoke${uniqueSuffix()}.vaultsync.dev`;
  const crdName = `widgets.${group}`;
  await apiext.createCustomResourceDefinition({
    body: {
      metadata: { name: crdName },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [{
          name: 'v1', served: true, storage: true,
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer', minimum: 1 } } } } } },
        }],
      },
    },
  });
  t.after(() => apiext.deleteCustomResourceDefinition({ name: crdName }).then(() => undefined));
  await eventually('the CRD to be established', async () => {
    const crd = await apiext.readCustomResourceDefinition({ name: crdName });
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
  });
  const created = await eventually('the widget to be created', () => custom.createNamespacedCustomObject({
    group, version: 'v1', namespace: ns, plural: 'widgets',
    body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 3 } },
  }));
  assert.equal(created.spec.size, 3);
  // The schema is enforced by the server: a fake would accept anything.
  await assert.rejects(
    custom.createNamespacedCustomObject({
      group, version: 'v1', namespace: ns, plural: 'widgets',
      body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w2' }, spec: { size: 0 } },
    }),
    (err: any) => err.code === 422,
  );
});

test('a TokenRequest token logs in to Vault through kubernetes auth and reads a KV v2 secret', async (t) => {
  const { core } = kubeClients();
  const vault = vaultAdmin();
  const ns = await testNamespace('smoke-auth', t);
  const sa = 'app';
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  const secretPath = `smoke/${ns}/config`;
  await vault.write(`${KV2_MOUNT}/data/${secretPath}`, { data: { username: 'alice', color: 'blue' } });
  await vault.putPolicy(`smoke-${ns}`, `path "${KV2_MOUNT}/data/smoke/${ns}/*" { capabilities = ["read"] }`);
  await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/role/smoke-${ns}`, {
    bound_service_account_names: [sa],
    bound_service_account_namespaces: [ns],
    audience: 'vault',
    token_policies: [`smoke-${ns}`],
    token_ttl: '10m',
  });

  const jwt = await serviceAccountToken(ns, sa, ['vault']);
  const login = await vault.withToken('').write(`auth/${KUBERNETES_AUTH_MOUNT}/login`, { role: `smoke-${ns}`, jwt });
  const clientToken: string = login.auth.client_token;
  assert.ok(clientToken, 'login returned a client token');
  assert.equal(login.auth.metadata.service_account_namespace, ns);

  const read = await vault.withToken(clientToken).read(`${KV2_MOUNT}/data/${secretPath}`);
  assert.deepEqual(read.data.data, { username: 'alice', color: 'blue' });
  assert.equal(read.data.metadata.version, 1);

  // The policy bounds the token: another path is denied.
  await assert.rejects(vault.withToken(clientToken).read(`${KV2_MOUNT}/data/other/${ns}`), (e: unknown) => e instanceof VaultAdminError && e.status === 403);
  // A token for another audience is refused by the role.
  const wrongAudience = await serviceAccountToken(ns, sa, ['not-vault']);
  await assert.rejects(vault.withToken('').write(`auth/${KUBERNETES_AUTH_MOUNT}/login`, { role: `smoke-${ns}`, jwt: wrongAudience }));
});

test('Vault issues PostgreSQL credentials that log in, and stop working once the lease is revoked', async () => {
  const vault = vaultAdmin();
  const role = `smoke-${uniqueSuffix()}`;
  await putDatabaseRole(vault, role, { defaultTtl: '5m', maxTtl: '10m' });
  const creds = await vault.read(`${DATABASE_MOUNT}/creds/${role}`);
  const { username, password } = creds.data as { username: string; password: string };
  assert.ok(creds.lease_id.startsWith(`${DATABASE_MOUNT}/creds/${role}/`));
  assert.ok(creds.lease_duration > 0 && creds.lease_duration <= 300);

  const session = await pgLogin(username, password);
  const who = await session.query('select current_user as u');
  assert.equal(who.rows[0].u, username);
  await session.end();

  await vault.write('sys/leases/revoke', { lease_id: creds.lease_id });
  await assert.rejects(pgLogin(username, password), /password authentication failed|does not exist/);
  const admin = await pgAdmin();
  const roles = await admin.query('select 1 from pg_roles where rolname = $1', [username]);
  await admin.end();
  assert.equal(roles.rowCount, 0, 'the revoked role is gone from PostgreSQL');
});

test('the garbage collector deletes an object whose owner is deleted', async (t) => {
  const { core } = kubeClients();
  const ns = await testNamespace('smoke-gc', t);
  const owner = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'owner' }, data: { a: 'b' } } });
  await core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: {
        name: 'owned',
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid!, controller: true }],
      },
      data: { k: Buffer.from('v').toString('base64') },
    },
  });
  await core.deleteNamespacedConfigMap({ name: 'owner', namespace: ns });
  await eventually('the owned Secret to be garbage-collected', async () => {
    try {
      await core.readNamespacedSecret({ name: 'owned', namespace: ns });
      return undefined;
    } catch (err: any) {
      return err.code === 404 ? true : undefined;
    }
  }, 60_000);
});
