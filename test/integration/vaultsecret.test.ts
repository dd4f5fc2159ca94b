// VaultSecret behaviour on the real stack, as a user sees it: Secrets, conditions, events, Vault policies.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { eventually, kubeClients, stackEnv, testNamespace, vaultAdmin } from '../support/stack.ts';
import { startOperator, type RunningOperator } from '../support/operator.ts';
import { flakyVaultConnection } from '../support/proxy.ts';
import {
  GROUP, VERSION, condition, createVaultSecret, decoded, eventsFor, getVaultSecret, installCrds, kubernetesAuth,
  putKv1, putKv2, readSecret, tenantRole, waitForCondition, waitForSecretData,
} from '../support/vaultsync.ts';

let operator: RunningOperator;
/** Every secret value a test writes to Vault; none may appear in logs, events or status. */
const secretValues: string[] = [];
function secretValue(label: string): string {
  const value = `${label}-${Math.random().toString(36).slice(2)}-s3cr3t`;
  secretValues.push(value);
  return value;
}

before(async () => {
  await installCrds();
  operator = await startOperator();
});

after(async () => {
  await operator?.stop();
});

test('a KV v2 secret is synced into a Secret owned by the VaultSecret, with Ready=True', async (t) => {
  const ns = await testNamespace('vs-kv2', t);
  const role = await tenantRole(ns);
  const password = secretValue('pw');
  await putKv2(`${ns}/db`, { username: 'app', password });
  const vs = await createVaultSecret(ns, 'db', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/db` } } });

  const secret = await waitForSecretData(ns, 'db', { username: 'app', password });
  assert.equal(secret.type, 'Opaque');
  assert.deepEqual(secret.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid]), [['VaultSecret', 'db', vs.metadata.uid]]);
  const ready = await waitForCondition(ns, 'db', 'Ready', 'True');
  assert.equal(ready.status.secretName, 'db');
  assert.match(ready.status.dataHmac, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(ready.status.kv, [{ mount: 'secret', path: `${ns}/db`, version: 1 }]);
  assert.ok(ready.status.lastSyncTime);
});

test('KV v1, a pinned KV v2 version, a key subset, a merge of paths and templates', async (t) => {
  const ns = await testNamespace('vs-shapes', t);
  const role = await tenantRole(ns);
  const auth = kubernetesAuth(role);
  const v1pw = secretValue('v1');
  await putKv1(`${ns}/legacy`, { token: v1pw });
  const first = secretValue('first');
  await putKv2(`${ns}/pinned`, { value: first });
  await putKv2(`${ns}/pinned`, { value: secretValue('second') });
  const pw = secretValue('pw');
  await putKv2(`${ns}/many`, { username: 'svc', password: pw, unwanted: secretValue('unwanted') });
  await putKv2(`${ns}/base`, { host: 'db.internal', port: '5432', mode: 'base' });
  await putKv2(`${ns}/override`, { mode: 'override' });

  await createVaultSecret(ns, 'legacy', { vault: auth, source: { kv: { mount: 'kv1', path: `${ns}/legacy` } } });
  await createVaultSecret(ns, 'pinned', { vault: auth, source: { kv: { mount: 'secret', path: `${ns}/pinned`, version: 1 } } });
  await createVaultSecret(ns, 'subset', { vault: auth, source: { kv: { mount: 'secret', path: `${ns}/many`, keys: ['username', 'password'] } } });
  await createVaultSecret(ns, 'merged', {
    vault: auth,
    source: { kvMerge: { sources: [{ mount: 'secret', path: `${ns}/base` }, { mount: 'secret', path: `${ns}/override` }] } },
  });
  await createVaultSecret(ns, 'url', {
    vault: auth,
    source: { kv: { mount: 'secret', path: `${ns}/many` } },
    template: { data: { DATABASE_URL: 'postgresql://{{ secret.username }}:{{ secret.password | url_encode }}@db.internal/app' } },
  });

  await waitForSecretData(ns, 'legacy', { token: v1pw });
  const pinned = await waitForSecretData(ns, 'pinned', { value: first });
  assert.deepEqual(Object.keys(decoded(pinned)), ['value']);
  assert.deepEqual((await waitForCondition(ns, 'pinned', 'Ready', 'True')).status.kv, [{ mount: 'secret', path: `${ns}/pinned`, version: 1 }]);
  const subset = await waitForSecretData(ns, 'subset', { username: 'svc', password: pw });
  assert.deepEqual(Object.keys(decoded(subset)).sort(), ['password', 'username']);
  const merged = await waitForSecretData(ns, 'merged', { host: 'db.internal', port: '5432', mode: 'override' });
  assert.equal(Object.keys(decoded(merged)).length, 3);
  const url = await waitForSecretData(ns, 'url', { DATABASE_URL: `postgresql://svc:${encodeURIComponent(pw)}@db.internal/app` });
  assert.deepEqual(Object.keys(decoded(url)), ['DATABASE_URL'], 'template output only, unless includeSourceKeys');
});

test('tenant isolation: a namespace cannot read another namespace\'s Vault paths, nor log in with its role', async (t) => {
  const nsA = await testNamespace('vs-team-a', t);
  const nsB = await testNamespace('vs-team-b', t);
  const roleA = await tenantRole(nsA);
  const roleB = await tenantRole(nsB);
  const bSecret = secretValue('b-only');
  await putKv2(`${nsB}/private`, { key: bSecret });

  // A's identity asks for B's path: Vault's policy refuses.
  await createVaultSecret(nsA, 'steal', { vault: kubernetesAuth(roleA), source: { kv: { mount: 'secret', path: `${nsB}/private` } } });
  const denied = await waitForCondition(nsA, 'steal', 'Ready', 'False', 'VaultPermissionDenied');
  assert.match(condition(denied, 'Ready')!.message, new RegExp(`secret/${nsB}/private`));
  // A names B's role: the role is bound to B's ServiceAccount, so A's token cannot log in with it.
  await createVaultSecret(nsA, 'borrow', { vault: kubernetesAuth(roleB), source: { kv: { mount: 'secret', path: `${nsB}/private` } } });
  await waitForCondition(nsA, 'borrow', 'Ready', 'False', 'VaultLoginFailed');
  assert.equal(await readSecret(nsA, 'steal'), undefined);
  assert.equal(await readSecret(nsA, 'borrow'), undefined);
  // B itself can read it.
  await createVaultSecret(nsB, 'mine', { vault: kubernetesAuth(roleB), source: { kv: { mount: 'secret', path: `${nsB}/private` } } });
  await waitForSecretData(nsB, 'mine', { key: bSecret });
  const warnings = await eventsFor(nsA, 'steal');
  assert.ok(warnings.some((e) => e.type === 'Warning' && e.reason === 'VaultPermissionDenied'), 'a Warning event explains the denial');
});

test('drift: a deleted or edited Secret is restored', async (t) => {
  const ns = await testNamespace('vs-drift', t);
  const role = await tenantRole(ns);
  const value = secretValue('drift');
  await putKv2(`${ns}/app`, { value });
  await createVaultSecret(ns, 'app', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/app` } } });
  await waitForSecretData(ns, 'app', { value });
  const { core } = kubeClients();

  await core.deleteNamespacedSecret({ name: 'app', namespace: ns });
  await waitForSecretData(ns, 'app', { value }, 15_000);

  await core.patchNamespacedSecret(
    { name: 'app', namespace: ns, body: { data: { value: Buffer.from('tampered').toString('base64'), extra: Buffer.from('x').toString('base64') } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await waitForSecretData(ns, 'app', { value }, 15_000);
});

test('a change in Vault is picked up on refresh and on force-sync; a refresh with no change writes nothing', async (t) => {
  const ns = await testNamespace('vs-refresh', t);
  const role = await tenantRole(ns);
  const one = secretValue('one');
  await putKv2(`${ns}/rotating`, { value: one });
  await createVaultSecret(ns, 'refresh', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/rotating` } }, refresh: { interval: '10s' } });
  await createVaultSecret(ns, 'manual', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/rotating` } }, refresh: { interval: '1h' } });
  await waitForSecretData(ns, 'refresh', { value: one });
  await waitForSecretData(ns, 'manual', { value: one });
  await waitForCondition(ns, 'manual', 'Ready', 'True');

  // Nothing changes in Vault for more than one refresh interval: neither the Secret nor the VaultSecret is written.
  const before = { secret: (await readSecret(ns, 'refresh'))!.metadata!.resourceVersion, vs: (await getVaultSecret(ns, 'refresh')).metadata.resourceVersion };
  await sleep(13_000);
  const afterIdle = { secret: (await readSecret(ns, 'refresh'))!.metadata!.resourceVersion, vs: (await getVaultSecret(ns, 'refresh')).metadata.resourceVersion };
  assert.deepEqual(afterIdle, before, 'an idle refresh made no Kubernetes writes');
  assert.match(operator.output(), /refresh/i, 'the refresh did run');

  const two = secretValue('two');
  await putKv2(`${ns}/rotating`, { value: two });
  await waitForSecretData(ns, 'refresh', { value: two }, 20_000);
  // The 1h VaultSecret still holds the old value until asked.
  assert.equal(decoded(await readSecret(ns, 'manual')).value, one);
  const { custom } = kubeClients();
  await custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name: 'manual', body: { metadata: { annotations: { 'vaultsync.dev/force-sync': '1' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await waitForSecretData(ns, 'manual', { value: two }, 15_000);
});

test('creation and deletion policies, and a Secret the operator does not own', async (t) => {
  const ns = await testNamespace('vs-policy', t);
  const role = await tenantRole(ns);
  const value = secretValue('policy');
  await putKv2(`${ns}/p`, { synced: value });
  const { core, custom } = kubeClients();
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'theirs' }, data: { own: Buffer.from('keep-me').toString('base64') } } });

  // Owner (default) refuses to touch a Secret someone else made.
  await createVaultSecret(ns, 'clash', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/p` } }, destination: { name: 'theirs' } });
  await waitForCondition(ns, 'clash', 'Ready', 'False', 'SecretNotOwned');
  assert.deepEqual(decoded(await readSecret(ns, 'theirs')), { own: 'keep-me' });

  // Merge writes our keys next to theirs; deleting the VaultSecret takes back only ours.
  await createVaultSecret(ns, 'merge', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/p` } }, destination: { name: 'theirs', creationPolicy: 'Merge' } });
  await waitForSecretData(ns, 'theirs', { own: 'keep-me', synced: value });
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name: 'clash' });
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name: 'merge' });
  await eventually('merged keys withdrawn', async () => {
    const data = decoded(await readSecret(ns, 'theirs'));
    return data.synced === undefined && data.own === 'keep-me' ? true : undefined;
  });

  // Owner + Delete: the Secret goes with the VaultSecret (garbage collector). Retain: it stays.
  await createVaultSecret(ns, 'owned', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/p` } } });
  await createVaultSecret(ns, 'kept', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/p` } }, destination: { deletionPolicy: 'Retain' } });
  await waitForSecretData(ns, 'owned', { synced: value });
  await waitForSecretData(ns, 'kept', { synced: value });
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name: 'owned' });
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name: 'kept' });
  await eventually('owned Secret garbage-collected', async () => ((await readSecret(ns, 'owned')) === undefined ? true : undefined), 60_000);
  assert.deepEqual(decoded(await readSecret(ns, 'kept')), { synced: value });
});

test('invalid specs: rejected at admission where the schema can tell, otherwise a condition and an event', async (t) => {
  const ns = await testNamespace('vs-invalid', t);
  const role = await tenantRole(ns);
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['no source', { vault: kubernetesAuth(role), source: {} }, /exactly one/i],
    ['two sources', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: 'a' }, kvMerge: { sources: [{ mount: 'secret', path: 'a' }, { mount: 'secret', path: 'b' }] } } }, /exactly one/i],
    ['two auth methods', { vault: { auth: { kubernetes: { role }, token: { secretRef: { name: 't' } } } }, source: { kv: { mount: 'secret', path: 'a' } } }, /exactly one/i],
    ['bad interval', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: 'a' } }, refresh: { interval: 'soon' } }, /interval/i],
    ['bad creation policy', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: 'a' } }, destination: { creationPolicy: 'Steal' } }, /creationPolicy/],
  ];
  for (const [name, spec, message] of cases) {
    await assert.rejects(createVaultSecret(ns, 'bad', spec), (err: any) => err.code === 422 && message.test(String(err.body)), name);
  }

  // Valid by schema, wrong at run time: the template names a key Vault does not have.
  const value = secretValue('tpl');
  await putKv2(`${ns}/tpl`, { present: value });
  await createVaultSecret(ns, 'tpl', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/tpl` } }, template: { data: { OUT: '{{ secret.absent }}' } } });
  const failed = await waitForCondition(ns, 'tpl', 'Ready', 'False', 'TemplateError');
  assert.match(condition(failed, 'Ready')!.message, /OUT/);
  await eventually('a TemplateError event', async () => ((await eventsFor(ns, 'tpl')).some((e) => e.reason === 'TemplateError') ? true : undefined));
  // A missing path is its own reason, and other VaultSecrets keep being served meanwhile.
  await createVaultSecret(ns, 'nopath', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/does-not-exist` } } });
  await waitForCondition(ns, 'nopath', 'Ready', 'False', 'VaultPathNotFound');
  await createVaultSecret(ns, 'fine', { vault: kubernetesAuth(role), source: { kv: { mount: 'secret', path: `${ns}/tpl` } } });
  await waitForSecretData(ns, 'fine', { present: value });
});

test('Vault unreachable: the Secret is kept, the condition says why, and the sync recovers', async (t) => {
  const ns = await testNamespace('vs-outage', t);
  const role = await tenantRole(ns);
  const proxy = await flakyVaultConnection(ns, 'flaky', t);
  const one = secretValue('outage-one');
  await putKv2(`${ns}/svc`, { value: one });
  await createVaultSecret(ns, 'svc', {
    vault: { connectionRef: { name: 'flaky' }, ...kubernetesAuth(role) },
    source: { kv: { mount: 'secret', path: `${ns}/svc` } },
    refresh: { interval: '10s' },
  });
  await waitForSecretData(ns, 'svc', { value: one });

  await proxy.cut();
  await waitForCondition(ns, 'svc', 'Ready', 'False', 'VaultUnreachable', 40_000);
  assert.deepEqual(decoded(await readSecret(ns, 'svc')), { value: one }, 'the Secret keeps its last good data');

  const two = secretValue('outage-two');
  await putKv2(`${ns}/svc`, { value: two });
  await proxy.restore();
  await waitForSecretData(ns, 'svc', { value: two }, 60_000);
  await waitForCondition(ns, 'svc', 'Ready', 'True', undefined, 30_000);
});

test('other auth methods: a Vault token and an AppRole secret ID from the namespace\'s own Secrets', async (t) => {
  const ns = await testNamespace('vs-auth', t);
  const role = await tenantRole(ns);
  const vault = vaultAdmin();
  const { core } = kubeClients();
  const value = secretValue('auth');
  await putKv2(`${ns}/app`, { value });
  const created = await vault.write('auth/token/create', { policies: [role], ttl: '1h' });
  secretValues.push(created.auth.client_token);
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'vault-token' }, stringData: { token: created.auth.client_token } } });
  await createVaultSecret(ns, 'by-token', { vault: { auth: { token: { secretRef: { name: 'vault-token' } } } }, source: { kv: { mount: 'secret', path: `${ns}/app` } } });
  await waitForSecretData(ns, 'by-token', { value });

  await vault.ensureMount('auth', 'approle', { type: 'approle' });
  await vault.write(`auth/approle/role/${ns}`, { token_policies: [role], token_ttl: '20m' });
  const roleId = (await vault.read(`auth/approle/role/${ns}/role-id`)).data.role_id as string;
  const secretId = (await vault.write(`auth/approle/role/${ns}/secret-id`, {})).data.secret_id as string;
  secretValues.push(secretId);
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'approle' }, stringData: { 'secret-id': secretId } } });
  await createVaultSecret(ns, 'by-approle', {
    vault: { auth: { appRole: { roleId, secretIdRef: { name: 'approle', key: 'secret-id' } } } },
    source: { kv: { mount: 'secret', path: `${ns}/app` } },
  });
  await waitForSecretData(ns, 'by-approle', { value });
  // A credentials Secret that does not exist is reported by name, not guessed around.
  await createVaultSecret(ns, 'no-creds', { vault: { auth: { token: { secretRef: { name: 'missing' } } } }, source: { kv: { mount: 'secret', path: `${ns}/app` } } });
  await waitForCondition(ns, 'no-creds', 'Ready', 'False', 'CredentialsNotFound');
});

test('no secret value or Vault token appears in operator logs, events or status', async () => {
  assert.ok(secretValues.length > 5, 'the tests above wrote secret values');
  const { core, custom } = kubeClients();
  const events = JSON.stringify((await core.listEventForAllNamespaces({})).items);
  const statuses = JSON.stringify((await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'vaultsecrets' })).items.map((i: any) => i.status));
  const logs = operator.output();
  assert.ok(logs.length > 1000, 'the operator logged at debug level');
  for (const value of secretValues) {
    assert.ok(!logs.includes(value), 'a secret value leaked into the logs');
    assert.ok(!events.includes(value), 'a secret value leaked into events');
    assert.ok(!statuses.includes(value), 'a secret value leaked into status');
  }
  // Vault tokens: service tokens start with hvs. (Vault) or s. (OpenBao); the root token is in the env.
  assert.ok(!logs.includes(stackEnv().VAULT_TOKEN));
  assert.doesNotMatch(logs, /\b(hvs|hvb|s|b)\.[A-Za-z0-9]{20,}/, 'a Vault token leaked into the logs');
  assert.doesNotMatch(logs, /eyJhbGciOi[A-Za-z0-9_-]{20,}/, 'a ServiceAccount JWT leaked into the logs');
});
