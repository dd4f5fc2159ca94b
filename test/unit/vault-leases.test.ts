import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readDynamic, renewLease, revokeLease } from '../../src/vault/leases.ts';
import { VaultError } from '../../src/vault/errors.ts';
import { rejection, routes, startFakeVault, testClient, type Handler } from './vault-fakes.ts';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers) await close();
});

async function setup(handler: Handler) {
  const vault = await startFakeVault(handler);
  const { client, observed } = testClient(vault.address);
  closers.push(() => client.close(), () => vault.close());
  return { vault, client, observed };
}

const LEASE = 'database/creds/app/AbCdEf123';

test('renewLease PUTs sys/leases/renew with the lease and increment and returns the granted duration', async () => {
  const { vault, client, observed } = await setup(routes({
    'PUT sys/leases/renew': { status: 200, body: { lease_id: LEASE, lease_duration: 1800, renewable: true, data: null } },
  }));
  assert.deepEqual(await renewLease(client, 't', LEASE, 3600), { leaseId: LEASE, leaseDurationSeconds: 1800, renewable: true });
  assert.deepEqual(vault.requests[0]?.body, { lease_id: LEASE, increment: 3600 });
  assert.equal(vault.requests[0]?.headers['x-vault-token'], 't');
  assert.equal(observed[0]?.operation, 'lease-renew');
});

test('renewLease refuses a fractional increment and reports an unknown lease as Vault classifies it', async () => {
  const { client } = await setup(() => ({ status: 400, body: { errors: ['lease not found'] } }));
  const bad = await rejection(renewLease(client, 't', LEASE, 1.5));
  assert.ok(bad instanceof VaultError && bad.kind === 'Invalid');
  const gone = await rejection(renewLease(client, 't', LEASE, 60));
  assert.ok(gone instanceof VaultError);
  assert.equal(gone.kind, 'Invalid');
  assert.ok(!gone.message.includes(LEASE), 'lease IDs stay out of messages');
});

test('revokeLease PUTs sys/leases/revoke', async () => {
  const { vault, client, observed } = await setup(routes({ 'PUT sys/leases/revoke': { status: 204 } }));
  await revokeLease(client, 't', LEASE, { namespace: 'team-a' });
  assert.deepEqual(vault.requests[0]?.body, { lease_id: LEASE });
  assert.equal(vault.requests[0]?.headers['x-vault-namespace'], 'team-a');
  assert.equal(observed[0]?.operation, 'lease-revoke');
});

const creds = { status: 200, body: { lease_id: LEASE, lease_duration: 3600, renewable: true, data: { username: 'v-app-x', password: 'pw' }, warnings: null } };

test('readDynamic GET passes params as query and returns data with its lease', async () => {
  const { vault, client, observed } = await setup(routes({ 'GET database/creds/app': creds }));
  const secret = await readDynamic(client, 't', { path: 'database/creds/app', method: 'GET', params: { ttl: '1h', n: 2 } });
  assert.deepEqual(secret, { data: { username: 'v-app-x', password: 'pw' }, leaseId: LEASE, leaseDurationSeconds: 3600, renewable: true, warnings: [] });
  assert.equal(vault.requests[0]?.query.toString(), 'ttl=1h&n=2');
  assert.equal(observed[0]?.operation, 'dynamic-read');
});

test('readDynamic POST/PUT send params as the JSON body', async () => {
  const { vault, client } = await setup(routes({
    'POST pki/issue/web': { status: 200, body: { data: { certificate: 'c' }, warnings: ['TTL capped'] } },
    'PUT aws/sts/role': { status: 200, body: { lease_id: 'aws/sts/role/x', lease_duration: 900, renewable: false, data: { a: 1 } } },
  }));
  const issued = await readDynamic(client, 't', { path: 'pki/issue/web', method: 'POST', params: { common_name: 'web.example' } });
  assert.deepEqual(vault.requests[0]?.body, { common_name: 'web.example' });
  assert.deepEqual(issued, { data: { certificate: 'c' }, leaseId: undefined, leaseDurationSeconds: 0, renewable: false, warnings: ['TTL capped'] });
  const sts = await readDynamic(client, 't', { path: 'aws/sts/role', method: 'PUT' });
  assert.deepEqual(vault.requests[1]?.body, {});
  assert.equal(sts.renewable, false);
});

test('readDynamic refuses non-scalar GET params, empty answers and unexpected shapes', async () => {
  const { vault, client } = await setup(routes({
    'GET empty/x': { status: 204 },
    'GET odd/x': { status: 200, body: { lease_id: LEASE, data: ['password-in-a-list'] } },
  }));
  const kinds = [];
  for (const p of [
    readDynamic(client, 't', { path: 'database/creds/app', method: 'GET', params: { nested: { a: 1 } } }),
    readDynamic(client, 't', { path: 'empty/x', method: 'GET' }),
    readDynamic(client, 't', { path: 'odd/x', method: 'GET' }),
  ]) {
    const err = await rejection(p);
    assert.ok(err instanceof VaultError);
    assert.ok(!err.message.includes('password-in-a-list'));
    kinds.push(err.kind);
  }
  assert.deepEqual(kinds, ['Invalid', 'Invalid', 'Invalid']);
  assert.equal(vault.requests.length, 2, 'the bad GET param is refused before sending');
});

test('readDynamic repeats a request only when Vault certainly issued nothing: a lost answer is not asked again', async () => {
  // Refused by a standby (503), then answered: retried as before.
  let attempts = 0;
  const standby = await setup(routes({ 'GET database/creds/app': () => (++attempts === 1 ? { status: 503, body: { errors: ['standby'] } } : creds) }));
  assert.equal((await readDynamic(standby.client, 't', { path: 'database/creds/app', method: 'GET' })).leaseId, LEASE);
  assert.equal(standby.vault.count('database/creds/app'), 2);

  // Vault received the request and the connection died before the answer: asking again could issue a second lease.
  const hangup = await setup(routes({ 'GET database/creds/app': 'hangup' }));
  const lost = await rejection(readDynamic(hangup.client, 't', { path: 'database/creds/app', method: 'GET' }));
  assert.ok(lost instanceof VaultError && lost.kind === 'Transient');
  assert.equal(hangup.vault.count('database/creds/app'), 1, 'one request only');

  // A 500 may come after Vault acted; a 2xx it could not parse certainly did.
  const broken = await setup(routes({ 'GET database/creds/app': { status: 500, body: { errors: ['internal error'] } }, 'GET odd/x': { status: 200, raw: 'not json' } }));
  await rejection(readDynamic(broken.client, 't', { path: 'database/creds/app', method: 'GET' }));
  assert.equal(broken.vault.count('database/creds/app'), 1);
  const unparsed = await rejection(readDynamic(broken.client, 't', { path: 'odd/x', method: 'GET' }));
  assert.ok(unparsed instanceof VaultError && unparsed.status === 200, 'the error keeps the 2xx status');
});
