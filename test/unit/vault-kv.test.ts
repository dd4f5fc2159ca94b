import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readKv, forgetKvVersions } from '../../src/vault/kv.ts';
import { VaultError } from '../../src/vault/errors.ts';
import { rejection, routes, startFakeVault, testClient, type Handler, type Recorded, type Reply } from './vault-fakes.ts';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers) await close();
});

async function setup(handler: Handler, namespace?: string) {
  const vault = await startFakeVault(handler);
  const { client } = testClient(vault.address, namespace === undefined ? {} : { namespace });
  closers.push(() => client.close(), () => vault.close());
  return { vault, client };
}

async function vaultError(promise: Promise<unknown>): Promise<VaultError> {
  const err = await rejection(promise);
  assert.ok(err instanceof VaultError, String(err));
  return err;
}

const mounts = (version: '1' | '2' | null, type = 'kv'): Reply => ({
  status: 200,
  body: { data: { type, path: 'x/', options: version === null ? null : { version } } },
});

const v2Secret = (data: Record<string, unknown> | null, metadata: Record<string, unknown>): Reply => ({
  status: 200,
  body: { request_id: 'r', lease_id: '', data: { data, metadata: { created_time: '2026-01-01T00:00:00Z', custom_metadata: null, deletion_time: '', destroyed: false, ...metadata } } },
});

test('KV v1 reads <mount>/<path>', async () => {
  const { vault, client } = await setup(routes({ 'kv1/team-a/db': { status: 200, body: { data: { password: 'p1' }, lease_duration: 2764800 } } }));
  const secret = await readKv(client, 's.tok', { mount: '/kv1/', path: '/team-a/db', kvVersion: 1 });
  assert.deepEqual(secret, { data: { password: 'p1' }, kvVersion: 1 });
  assert.equal(vault.requests[0]?.headers['x-vault-token'], 's.tok');
});

test('KV v2 reads <mount>/data/<path>: data, version and metadata', async () => {
  const { vault, client } = await setup(routes({ 'secret/data/team-a/db': v2Secret({ password: 'p2' }, { version: 7, custom_metadata: { owner: 'a' } }) }));
  const secret = await readKv(client, 't', { mount: 'secret', path: 'team-a/db', kvVersion: 2 });
  assert.deepEqual(secret, {
    data: { password: 'p2' }, version: 7, kvVersion: 2,
    metadata: { createdTime: '2026-01-01T00:00:00Z', version: 7, customMetadata: { owner: 'a' } },
  });
  assert.equal(vault.requests[0]?.query.get('version'), null, 'the latest version unless pinned');
});

test('KV v2 version pin sends ?version=N', async () => {
  const { vault, client } = await setup(routes({ 'secret/data/app': (req: Recorded) => v2Secret({ v: req.query.get('version') }, { version: 3 }) }));
  const secret = await readKv(client, 't', { mount: 'secret', path: 'app', version: 3, kvVersion: 2 });
  assert.equal(vault.requests[0]?.query.get('version'), '3');
  assert.deepEqual(secret.data, { v: '3' });
  assert.equal(secret.version, 3);
});

test('a deleted KV v2 version is NotFound and says so', async () => {
  // What Vault answers for a soft-deleted version: 404 with the version's metadata and null data.
  const deleted: Reply = { status: 404, body: { data: { data: null, metadata: { version: 4, deletion_time: '2026-01-02T03:04:05Z', destroyed: false } } } };
  const { client } = await setup(routes({ 'secret/data/app': deleted }));
  const err = await vaultError(readKv(client, 't', { mount: 'secret', path: 'app', kvVersion: 2 }));
  assert.equal(err.kind, 'NotFound');
  assert.equal(err.status, 404);
  assert.equal(err.path, 'secret/data/app');
  assert.match(err.message, /version 4 was deleted at 2026-01-02T03:04:05Z/);
});

test('a destroyed KV v2 version is NotFound and says so, whether Vault answers 404 or 200', async () => {
  for (const status of [404, 200]) {
    const destroyed: Reply = { status, body: { data: { data: null, metadata: { version: 2, deletion_time: '', destroyed: true } } } };
    const { client } = await setup(routes({ 'secret/data/app': destroyed }));
    const err = await vaultError(readKv(client, 't', { mount: 'secret', path: 'app', version: 2, kvVersion: 2 }));
    assert.equal(err.kind, 'NotFound');
    assert.match(err.message, /version 2 is destroyed/);
  }
});

test('a secret that never existed is a plain NotFound', async () => {
  const { client } = await setup(() => ({ status: 404, body: { errors: [] } }));
  const v2 = await vaultError(readKv(client, 't', { mount: 'secret', path: 'nope', kvVersion: 2 }));
  assert.equal(v2.kind, 'NotFound');
  assert.equal(v2.message, 'Vault kv-read GET secret/data/nope: NotFound (HTTP 404)');
  const v1 = await vaultError(readKv(client, 't', { mount: 'kv1', path: 'nope', kvVersion: 1 }));
  assert.equal(v1.kind, 'NotFound');
});

test('a version pin on KV v1 is Invalid before any request', async () => {
  const { vault, client } = await setup(() => ({ status: 500 }));
  const err = await vaultError(readKv(client, 't', { mount: 'kv1', path: 'a', version: 2, kvVersion: 1 }));
  assert.equal(err.kind, 'Invalid');
  assert.match(err.message, /KV v1/);
  assert.equal((await vaultError(readKv(client, 't', { mount: 'kv1', path: 'a', version: 0, kvVersion: 2 }))).kind, 'Invalid');
  assert.equal((await vaultError(readKv(client, 't', { mount: '/', path: 'a', kvVersion: 2 }))).kind, 'Invalid');
  assert.equal(vault.requests.length, 0);
});

test('the KV version is detected once per mount and namespace, and shared by concurrent readers', async () => {
  const { vault, client } = await setup(routes({
    'sys/internal/ui/mounts/secret': mounts('2'),
    'sys/internal/ui/mounts/kv1': mounts(null),
    'secret/data/a': v2Secret({ x: 1 }, { version: 1 }),
    'kv1/a': { status: 200, body: { data: { y: 2 } } },
  }));
  const reads = await Promise.all(Array.from({ length: 5 }, () => readKv(client, 't', { mount: 'secret', path: 'a' })));
  assert.ok(reads.every((r) => r.kvVersion === 2));
  await readKv(client, 't', { mount: 'secret/', path: 'a' });
  assert.equal((await readKv(client, 't', { mount: 'kv1', path: 'a' })).kvVersion, 1);
  await readKv(client, 't', { mount: 'kv1', path: 'a' });
  assert.equal(vault.count('sys/internal/ui/mounts/secret'), 1);
  assert.equal(vault.count('sys/internal/ui/mounts/kv1'), 1);

  await readKv(client, 't', { mount: 'secret', path: 'a', namespace: 'team-b' });
  assert.equal(vault.count('sys/internal/ui/mounts/secret'), 2, 'another namespace is another mount');
  assert.equal(vault.requests.filter((r) => r.path === 'sys/internal/ui/mounts/secret').at(-1)?.headers['x-vault-namespace'], 'team-b');

  forgetKvVersions(client);
  await readKv(client, 't', { mount: 'secret', path: 'a' });
  assert.equal(vault.count('sys/internal/ui/mounts/secret'), 3);
});

test('the detection cache belongs to the client (connection)', async () => {
  const vault = await startFakeVault(routes({ 'sys/internal/ui/mounts/secret': mounts('2'), 'secret/data/a': v2Secret({}, { version: 1 }) }));
  const one = testClient(vault.address).client;
  const two = testClient(vault.address).client;
  closers.push(() => one.close(), () => two.close(), () => vault.close());
  await readKv(one, 't', { mount: 'secret', path: 'a' });
  await readKv(two, 't', { mount: 'secret', path: 'a' });
  await readKv(one, 't', { mount: 'secret', path: 'a' });
  assert.equal(vault.count('sys/internal/ui/mounts/secret'), 2);
});

test('a failed detection is not remembered', async () => {
  let denied = true;
  const { vault, client } = await setup(routes({
    'sys/internal/ui/mounts/secret': () => (denied ? { status: 403, body: { errors: ['permission denied'] } } : mounts('2')),
    'secret/data/a': v2Secret({ x: 1 }, { version: 1 }),
  }));
  assert.equal((await vaultError(readKv(client, 't', { mount: 'secret', path: 'a' }))).kind, 'Denied');
  denied = false;
  assert.equal((await readKv(client, 't', { mount: 'secret', path: 'a' })).kvVersion, 2);
  assert.equal(vault.count('sys/internal/ui/mounts/secret'), 2);
});

test('a mount that is not KV is Invalid', async () => {
  const { client } = await setup(routes({ 'sys/internal/ui/mounts/database': mounts(null, 'database') }));
  const err = await vaultError(readKv(client, 't', { mount: 'database', path: 'creds/app' }));
  assert.equal(err.kind, 'Invalid');
  assert.match(err.message, /is a database mount, not KV/);
});

test('an unexpected response shape is Invalid and does not quote the response', async () => {
  const { client } = await setup(routes({ 'secret/data/a': { status: 200, body: { data: { data: 'hunter2-not-an-object', metadata: {} } } } }));
  const err = await vaultError(readKv(client, 't', { mount: 'secret', path: 'a', kvVersion: 2 }));
  assert.equal(err.kind, 'Invalid');
  assert.match(err.message, /data\.data: invalid_type/);
  assert.ok(!err.message.includes('hunter2'));
});
