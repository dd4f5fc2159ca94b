import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { VaultClient } from '../../src/vault/client.ts';
import { VaultError, type VaultErrorKind } from '../../src/vault/errors.ts';
import { rejection, routes, startFakeVault, testClient, type Reply } from './vault-fakes.ts';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers) await close();
});

async function setup(handler: Parameters<typeof startFakeVault>[0], ...rest: Parameters<typeof testClient> extends [string, ...infer R] ? R : never) {
  const vault = await startFakeVault(handler);
  const t = testClient(vault.address, ...rest);
  closers.push(() => t.client.close(), () => vault.close());
  return { vault, ...t };
}

async function vaultError(promise: Promise<unknown>): Promise<VaultError> {
  const err = await rejection(promise);
  assert.ok(err instanceof VaultError, `expected a VaultError, got ${String(err)}`);
  return err;
}

test('sends the token, the namespace, X-Vault-Request and the extra headers', async () => {
  const { vault, client } = await setup(routes({ 'secret/data/app': { status: 200, body: { data: { data: { a: 1 } } } } }), {
    namespace: 'team-a/',
    headers: { 'X-Custom': 'yes' },
  });
  const body = await client.read('secret/data/app', 's.tok');
  assert.deepEqual(body, { data: { data: { a: 1 } } });
  const [req] = vault.requests;
  assert.equal(req?.method, 'GET');
  assert.equal(req?.headers['x-vault-token'], 's.tok');
  assert.equal(req?.headers['x-vault-namespace'], 'team-a');
  assert.equal(req?.headers['x-vault-request'], 'true');
  assert.equal(req?.headers['x-custom'], 'yes');
});

test('a per-request namespace overrides the connection one; an empty one sends none', async () => {
  const { vault, client } = await setup(() => ({ status: 204 }), { namespace: 'root-ns' });
  await client.request({ method: 'GET', path: 'a', token: 't', namespace: 'team-b' });
  await client.request({ method: 'GET', path: 'a', token: 't', namespace: '' });
  await client.request({ method: 'GET', path: 'a' });
  assert.deepEqual(vault.requests.map((r) => r.headers['x-vault-namespace']), ['team-b', undefined, 'root-ns']);
  assert.equal(vault.requests[2]?.headers['x-vault-token'], undefined, 'no token, no header');
});

test('write sends JSON, list is a GET with list=true, delete a DELETE; 204 gives undefined', async () => {
  const { vault, client } = await setup(routes({
    'POST kv/app': { status: 204 },
    'GET kv/dir/': { status: 200, body: { data: { keys: ['a', 'b/'] } } },
    'DELETE kv/app': { status: 204 },
  }));
  assert.equal(await client.write('kv/app', { password: 'p' }, 't'), undefined);
  assert.deepEqual(await client.list('kv/dir/', 't'), { data: { keys: ['a', 'b/'] } });
  assert.equal(await client.delete('kv/app', 't'), undefined);
  assert.deepEqual(vault.requests[0]?.body, { password: 'p' });
  assert.equal(vault.requests[0]?.headers['content-type'], 'application/json');
  assert.equal(vault.requests[1]?.query.get('list'), 'true');
  assert.equal(vault.requests[2]?.method, 'DELETE');
});

test('path segments are URL-encoded, query parameters appended, dot segments refused before sending', async () => {
  const { vault, client } = await setup(() => ({ status: 204 }));
  await client.request({ method: 'GET', path: '/secret/data/my app/ü?x', query: { version: 3, skip: undefined } });
  assert.equal(vault.requests[0]?.path, 'secret/data/my app/ü?x');
  assert.equal(vault.requests[0]?.query.toString(), 'version=3');
  const err = await vaultError(client.read('secret/data/../../sys/seal', 't'));
  assert.equal(err.kind, 'Invalid');
  assert.equal(vault.requests.length, 1);
});

test('an address with a path prefix (behind a proxy) keeps the prefix', async () => {
  const vault = await startFakeVault((req) => ({ status: 200, body: { seen: req.path } }));
  const { client } = testClient(`${vault.address}/vault/`);
  closers.push(() => client.close(), () => vault.close());
  await client.read('secret/x', 't');
  // The fake strips only a leading /v1/, so the prefix shows up in the recorded path.
  assert.equal(vault.requests[0]?.path, '/vault/v1/secret/x');
});

test('Vault answers are classified into kinds', async () => {
  const table: Array<[Reply, VaultErrorKind, number]> = [
    [{ status: 400, body: { errors: ['invalid request'] } }, 'Invalid', 1],
    [{ status: 403, body: { errors: ['permission denied'] } }, 'Denied', 1],
    [{ status: 404, body: { errors: [] } }, 'NotFound', 1],
    [{ status: 429, body: { errors: ['rate limit quota exceeded'] } }, 'Throttled', 4],
    [{ status: 500, body: { errors: ['internal error'] } }, 'Transient', 4],
    [{ status: 503, body: { errors: ['Vault is sealed'] } }, 'Sealed', 4],
  ];
  for (const [reply, kind, attempts] of table) {
    const { vault, client } = await setup(() => reply);
    const err = await vaultError(client.read('secret/data/app', 't'));
    assert.equal(err.kind, kind, `HTTP ${typeof reply === 'object' ? reply.status : reply}`);
    assert.equal(err.status, typeof reply === 'object' ? reply.status : undefined);
    assert.equal(err.path, 'secret/data/app');
    assert.equal(vault.requests.length, attempts, `attempts for ${kind}`);
  }
});

test('connection refused is Unreachable, after bounded retries', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
  const { client, sleeps, observed } = testClient(`http://127.0.0.1:${port}`);
  closers.push(() => client.close());
  const err = await vaultError(client.read('secret/data/app', 't'));
  assert.equal(err.kind, 'Unreachable');
  assert.equal(err.code, 'ECONNREFUSED');
  assert.equal(sleeps.length, 3);
  assert.deepEqual(observed.map((o) => o.status), ['error', 'error', 'error', 'error']);
});

test('a hung-up connection is Transient and retried', async () => {
  let calls = 0;
  const { vault, client } = await setup(() => (++calls === 1 ? 'hangup' : { status: 200, body: { ok: true } }));
  assert.deepEqual(await client.read('x', 't'), { ok: true });
  assert.equal(vault.requests.length, 2);
});

test('a 5xx is retried with growing backoff until it succeeds', async () => {
  let calls = 0;
  const { vault, client, sleeps } = await setup(() => (++calls <= 2 ? { status: 502 } : { status: 200, body: { data: { ok: true } } }));
  assert.deepEqual(await client.read('secret/x', 't'), { data: { ok: true } });
  assert.equal(vault.requests.length, 3);
  assert.deepEqual(sleeps, [188, 375], 'base 250 ms doubling, jitter draw 0.5');
});

test('403 is not retried', async () => {
  const { vault, client, sleeps } = await setup(() => ({ status: 403, body: { errors: ['permission denied'] } }));
  const err = await vaultError(client.read('secret/x', 't'));
  assert.equal(err.kind, 'Denied');
  assert.deepEqual(err.vaultErrors, ['permission denied']);
  assert.equal(vault.requests.length, 1);
  assert.deepEqual(sleeps, []);
});

test('retries are bounded by attempts, by the delay cap and by the deadline', async () => {
  const always500 = () => ({ status: 500 }) as Reply;
  const capped = await setup(always500, {}, { retry: { maxAttempts: 6, baseDelayMs: 1_000, maxDelayMs: 3_000 }, random: () => 0.999999 });
  await vaultError(capped.client.read('x', 't'));
  assert.equal(capped.vault.requests.length, 6);
  assert.ok(capped.sleeps.every((ms) => ms <= 3_000), String(capped.sleeps));
  assert.deepEqual(capped.sleeps, [1_000, 2_000, 3_000, 3_000, 3_000]);

  const deadline = await setup(always500, {}, { retry: { maxAttempts: 10, baseDelayMs: 1_000, maxDelayMs: 4_000, deadlineMs: 5_000 }, random: () => 0.999999 });
  await vaultError(deadline.client.read('x', 't'));
  // 1 s + 2 s slept = 3 s; the next 4 s backoff would end past the 5 s budget, so it gives up after 3 attempts.
  assert.deepEqual(deadline.sleeps, [1_000, 2_000]);
  assert.equal(deadline.vault.requests.length, 3);

  const once = await setup(always500);
  await vaultError(once.client.request({ method: 'POST', path: 'x', retry: false }));
  assert.equal(once.vault.requests.length, 1);
});

test('Retry-After is honoured when within the cap, and ends the retries when beyond it', async () => {
  let calls = 0;
  const honoured = await setup(() => (++calls === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 204 }));
  await honoured.client.read('x', 't');
  assert.deepEqual(honoured.sleeps, [2_000]);

  const tooLong = await setup(() => ({ status: 429, headers: { 'retry-after': '600' } }));
  const err = await vaultError(tooLong.client.read('x', 't'));
  assert.equal(err.kind, 'Throttled');
  assert.equal(err.retryAfterMs, 600_000);
  assert.equal(tooLong.vault.requests.length, 1);
});

test('a request that gets no answer times out as Transient', async () => {
  const { client } = await setup(() => 'hold', { timeoutMs: 200 }, { retry: { maxAttempts: 1 } });
  const err = await vaultError(client.read('x', 't'));
  assert.equal(err.kind, 'Transient');
  assert.equal(err.code, 'UND_ERR_HEADERS_TIMEOUT');
});

test('a 2xx that is not JSON is Invalid', async () => {
  const { client } = await setup(() => ({ status: 200, raw: '<html>login page</html>' }));
  assert.equal((await vaultError(client.read('x', 't'))).kind, 'Invalid');
});

test('acceptStatus returns a listed error status with its body instead of throwing', async () => {
  const { client } = await setup(() => ({ status: 404, body: { data: { data: null } } }));
  assert.deepEqual(await client.send({ method: 'GET', path: 'x', acceptStatus: [404] }), { status: 404, body: { data: { data: null } } });
});

test('the observer sees one low-cardinality entry per attempt, never the path', async () => {
  let calls = 0;
  const { client, observed } = await setup(routes({
    'auth/kubernetes/login': () => (++calls === 1 ? { status: 500 } : { status: 200, body: {} }),
    'secret/data/team-a/app': { status: 200, body: {} },
    'sys/leases/renew': { status: 200, body: {} },
  }));
  await client.write('auth/kubernetes/login', { role: 'r' }, '');
  await client.request({ method: 'GET', path: 'secret/data/team-a/app', token: 't', operation: 'kv-read' });
  await client.request({ method: 'PUT', path: 'sys/leases/renew', token: 't' });
  await rejection(client.read('secret/other', 't'));
  assert.deepEqual(observed.map((o) => [o.operation, o.status]), [
    ['login', 500], ['login', 200], ['kv-read', 200], ['lease-renew', 200], ['other', 404],
  ]);
  assert.ok(observed.every((o) => typeof o.durationMs === 'number' && o.durationMs >= 0));
});

test('an observer that throws does not fail the request', async () => {
  const vault = await startFakeVault(() => ({ status: 204 }));
  const { client } = testClient(vault.address, {}, { onRequest: () => { throw new Error('metrics broke'); } });
  closers.push(() => client.close(), () => vault.close());
  assert.equal(await client.read('x', 't'), undefined);
});

test('a closed client refuses requests and stops waiting to retry', async () => {
  const vault = await startFakeVault(() => ({ status: 500 }));
  let release: (() => void) | undefined;
  const { client } = testClient(vault.address, {}, {
    sleep: (_ms, signal) => new Promise((resolve, reject) => {
      release = resolve;
      signal.addEventListener('abort', () => reject(new Error('aborted')));
    }),
  });
  closers.push(() => vault.close());
  const pending = vaultError(client.read('x', 't'));
  while (!release) await new Promise((r) => setTimeout(r, 5));
  await client.close();
  const err = await pending;
  assert.equal(err.kind, 'Transient', 'the last failure is reported');
  assert.equal(vault.requests.length, 1);
  assert.equal((await vaultError(client.read('x', 't'))).kind, 'Unreachable');
});

test('a token that cannot be a header value is refused without echoing it', async () => {
  const { vault, client } = await setup(() => ({ status: 204 }));
  const err = await vaultError(client.read('x', 's.abc\r\nX-Evil: 1'));
  assert.equal(err.kind, 'Invalid');
  assert.ok(!err.message.includes('s.abc'));
  assert.equal(vault.requests.length, 0);
});

test('an invalid connection is refused naming fields, never values', () => {
  const key = '-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----';
  assert.throws(() => new VaultClient({ address: 'ftp://vault', timeoutMs: 1 }), /invalid Vault connection: address/);
  assert.throws(
    () => new VaultClient({ address: 'https://vault:8200', timeoutMs: 1_000, headers: { 'X-Vault-Token': 's.static-in-a-header' } }),
    (err: Error) => /headers\.X-Vault-Token/.test(err.message) && !err.message.includes('s.static-in-a-header'),
  );
  assert.throws(
    () => new VaultClient({ address: 'https://vault:8200', timeoutMs: 1_000, clientKeyPem: key }),
    (err: Error) => /clientKeyPem/.test(err.message) && !err.message.includes('SECRETKEYMATERIAL'),
  );
});

test('accepts a pino logger', async () => {
  const vault = await startFakeVault(() => ({ status: 204 }));
  const client = new VaultClient({ address: vault.address, timeoutMs: 1_000 }, { logger: pino({ level: 'silent' }) });
  closers.push(() => client.close(), () => vault.close());
  assert.equal(await client.read('x', 't'), undefined);
});
