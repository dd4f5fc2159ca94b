import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { VaultTokenManager, type RenewalOutcome, type VaultLogin } from '../../src/vault/auth.ts';
import { VaultError } from '../../src/vault/errors.ts';
import { eventually, FakeTimers, rejection, startFakeVault, T0, testClient, type Recorded, type Reply } from './vault-fakes.ts';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers) await close();
});

const HOUR = 3600;
const KEY = 'team-a/kubernetes/app';

/** A fake Vault that issues numbered tokens; each route's behaviour can be swapped by the test. */
class AuthVault {
  loginTtl = HOUR;
  loginRenewable = true;
  loginReply: ((req: Recorded) => Reply | Promise<Reply>) | undefined;
  renewReply: ((req: Recorded) => Reply) | undefined;
  lookupReply: ((req: Recorded) => Reply) | undefined;
  issued = 0;

  handle = async (req: Recorded): Promise<Reply> => {
    if (req.path.endsWith('/login')) {
      if (this.loginReply) return this.loginReply(req);
      return this.issue();
    }
    if (req.path === 'auth/token/renew-self') {
      if (this.renewReply) return this.renewReply(req);
      const increment = (req.body as { increment: number }).increment;
      return { status: 200, body: { auth: { client_token: req.headers['x-vault-token'], accessor: 'acc', lease_duration: increment, renewable: true } } };
    }
    if (req.path === 'auth/token/lookup-self') {
      if (this.lookupReply) return this.lookupReply(req);
      return { status: 200, body: { data: { ttl: 0, renewable: false, accessor: 'root-acc' } } };
    }
    return { status: 404, body: { errors: [] } };
  };

  issue(): Reply {
    this.issued++;
    return {
      status: 200,
      body: { auth: { client_token: `s.login-${this.issued}`, accessor: `acc-${this.issued}`, lease_duration: this.loginTtl, renewable: this.loginRenewable, policies: ['default'] } },
    };
  }
}

async function setup(options: { random?: () => number } = {}) {
  const fake = new AuthVault();
  const vault = await startFakeVault(fake.handle);
  const { client, clock } = testClient(vault.address, {}, { retry: { maxAttempts: 1 } });
  const timers = new FakeTimers(clock);
  const outcomes: RenewalOutcome[] = [];
  const manager = new VaultTokenManager({
    client, clock, timers, random: options.random ?? (() => 0), onRenewal: (key, outcome) => {
      assert.equal(key, KEY);
      outcomes.push(outcome);
    },
  });
  closers.push(async () => manager.stop(), () => client.close(), () => vault.close());
  let jwtCalls = 0;
  const login: VaultLogin = { method: 'kubernetes', role: 'app', jwt: async () => `jwt-${++jwtCalls}` };
  /** Fires the next timer and waits until the manager reports what it did. */
  const fireNext = async (): Promise<void> => {
    const at = timers.nextAt;
    assert.ok(at !== undefined, 'a timer is armed');
    const before = outcomes.length;
    timers.advance(at - clock.now());
    await eventually('a renewal outcome', () => outcomes.length > before);
  };
  return { fake, vault, client, clock, timers, manager, outcomes, login, fireNext, jwtCalls: () => jwtCalls };
}

test('concurrent callers share one login; later callers get the cached token', async () => {
  const { fake, vault, manager, login } = await setup();
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  fake.loginReply = async () => {
    await gate;
    return fake.issue();
  };
  const callers = Array.from({ length: 10 }, () => manager.getToken(KEY, login));
  await eventually('the login request', () => vault.requests.length === 1);
  release();
  const tokens = await Promise.all(callers);
  assert.deepEqual(new Set(tokens), new Set(['s.login-1']));
  assert.equal(await manager.getToken(KEY, login), 's.login-1');
  assert.equal(vault.count('auth/kubernetes/login'), 1);
});

test('logins send each method\'s credentials to its mount and namespace', async () => {
  const { vault, manager } = await setup();
  await manager.getToken('k', { method: 'kubernetes', role: 'app', jwt: async () => 'sa-jwt', namespace: 'team-a' });
  await manager.getToken('k2', { method: 'kubernetes', mount: 'k8s-prod', role: 'app', jwt: async () => 'sa-jwt' });
  await manager.getToken('j', { method: 'jwt', role: 'ci', jwt: async () => 'oidc-jwt' });
  await manager.getToken('a', { method: 'appRole', roleId: 'rid', secretId: async () => 'sid' });
  assert.deepEqual(vault.requests.map((r) => [r.method, r.path, r.body, r.headers['x-vault-namespace'], r.headers['x-vault-token']]), [
    ['POST', 'auth/kubernetes/login', { role: 'app', jwt: 'sa-jwt' }, 'team-a', undefined],
    ['POST', 'auth/k8s-prod/login', { role: 'app', jwt: 'sa-jwt' }, undefined, undefined],
    ['POST', 'auth/jwt/login', { role: 'ci', jwt: 'oidc-jwt' }, undefined, undefined],
    ['POST', 'auth/approle/login', { role_id: 'rid', secret_id: 'sid' }, undefined, undefined],
  ]);
});

test('renews in the background at 2/3 of the TTL, asking for the TTL again', async () => {
  const { vault, clock, timers, manager, outcomes, login, fireNext } = await setup();
  await manager.getToken(KEY, login);
  assert.deepEqual(manager.tokenInfo(KEY), { expiresAt: T0 + HOUR * 1000, renewable: true, accessor: 'acc-1', ttlSeconds: HOUR, obtainedAt: T0 });
  assert.equal(timers.nextAt, T0 + 2_400_000);

  timers.advance(2_399_999);
  assert.equal(vault.count('auth/token/renew-self'), 0, 'not before 2/3 of the TTL');
  await fireNext();
  assert.deepEqual(outcomes, ['renewed']);
  const renew = vault.requests.find((r) => r.path === 'auth/token/renew-self');
  assert.equal(renew?.headers['x-vault-token'], 's.login-1');
  assert.deepEqual(renew?.body, { increment: HOUR });
  assert.equal(manager.tokenInfo(KEY)?.expiresAt, clock.now() + HOUR * 1000);
  assert.equal(timers.nextAt, clock.now() + 2_400_000, 'the next renewal is planned the same way');
  assert.equal(await manager.getToken(KEY, login), 's.login-1', 'same token after renewal');
  assert.equal(vault.count('auth/kubernetes/login'), 1);
});

test('renewal is jittered by up to a tenth of the TTL', async () => {
  const { timers, manager, login } = await setup({ random: () => 0.999 });
  await manager.getToken(KEY, login);
  const at = (timers.nextAt ?? 0) - T0;
  assert.ok(at > 2_400_000 && at < 2_760_000, String(at));
});

test('a token that is not renewable is replaced by a new login before it expires', async () => {
  const { fake, vault, manager, outcomes, login, fireNext, jwtCalls } = await setup();
  fake.loginRenewable = false;
  await manager.getToken(KEY, login);
  await fireNext();
  assert.deepEqual(outcomes, ['relogin']);
  assert.equal(vault.count('auth/token/renew-self'), 0);
  assert.equal(await manager.getToken(KEY, login), 's.login-2');
  assert.equal(jwtCalls(), 2, 'a fresh JWT for each login');
});

test('when renewal grants less than asked (max TTL near), the next step is a new login', async () => {
  const { fake, vault, clock, manager, outcomes, login, fireNext } = await setup();
  await manager.getToken(KEY, login);
  fake.renewReply = (req) => ({ status: 200, body: { auth: { client_token: req.headers['x-vault-token'], lease_duration: 600, renewable: true } } });
  await fireNext();
  assert.deepEqual(outcomes, ['renewed']);
  assert.equal(manager.tokenInfo(KEY)?.expiresAt, clock.now() + 600_000);
  await fireNext();
  assert.deepEqual(outcomes, ['renewed', 'relogin']);
  assert.equal(vault.count('auth/token/renew-self'), 1);
  assert.equal(await manager.getToken(KEY, login), 's.login-2');
  assert.equal(manager.tokenInfo(KEY)?.ttlSeconds, HOUR);
});

test('a refused renewal leads to a new login', async () => {
  const { fake, manager, outcomes, login, fireNext } = await setup();
  await manager.getToken(KEY, login);
  fake.renewReply = () => ({ status: 403, body: { errors: ['permission denied'] } });
  await fireNext();
  await eventually('the new login', () => outcomes.length === 2);
  assert.deepEqual(outcomes, ['failed', 'relogin']);
  assert.equal(await manager.getToken(KEY, login), 's.login-2');
});

test('a renewal that fails because Vault is unavailable keeps the token and retries the renewal', async () => {
  const { fake, vault, clock, timers, manager, outcomes, login, fireNext } = await setup();
  await manager.getToken(KEY, login);
  fake.renewReply = () => ({ status: 503, body: { errors: ['Vault is sealed'] } });
  await fireNext();
  assert.deepEqual(outcomes, ['failed']);
  assert.equal(timers.nextAt, clock.now() + 15_000, 'retry within 30 s (half of it with this jitter draw)');
  fake.renewReply = undefined;
  await fireNext();
  assert.deepEqual(outcomes, ['failed', 'renewed']);
  assert.equal(vault.count('auth/kubernetes/login'), 1);
  assert.equal(await manager.getToken(KEY, login), 's.login-1');
});

test('callers keep using the current token while a background login runs', async () => {
  const { fake, vault, timers, clock, manager, outcomes, login } = await setup();
  fake.loginRenewable = false;
  await manager.getToken(KEY, login);
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  fake.loginReply = async () => {
    await gate;
    return fake.issue();
  };
  timers.advance((timers.nextAt ?? 0) - clock.now());
  await eventually('the background login request', () => vault.count('auth/kubernetes/login') === 2);
  assert.equal(await manager.getToken(KEY, login), 's.login-1');
  release();
  await eventually('the relogin', () => outcomes.length === 1);
  assert.equal(await manager.getToken(KEY, login), 's.login-2');
});

test('when every login fails until the token expires, the token is dropped and the next caller logs in', async () => {
  const { fake, clock, timers, manager, outcomes, login, fireNext } = await setup();
  fake.loginRenewable = false;
  fake.loginTtl = 60;
  await manager.getToken(KEY, login);
  fake.loginReply = () => ({ status: 500, body: { errors: ['internal error'] } });
  while (timers.pending > 0) await fireNext();
  assert.ok(outcomes.length >= 2 && outcomes.every((o) => o === 'failed'), outcomes.join());
  assert.ok(clock.now() < T0 + 60_000, 'gave up before expiry');
  assert.equal(manager.tokenInfo(KEY), undefined);
  fake.loginReply = undefined;
  assert.equal(await manager.getToken(KEY, login), 's.login-2');
});

test('an expired cached token is never handed out', async () => {
  const { fake, vault, clock, manager, login } = await setup();
  fake.loginTtl = 60;
  await manager.getToken(KEY, login);
  clock.advance(55_000); // within the last tenth of its TTL; no timer fired (timers are not advanced)
  assert.equal(await manager.getToken(KEY, login), 's.login-2');
  assert.equal(vault.count('auth/kubernetes/login'), 2);
});

test('a failed login is not cached', async () => {
  const { fake, manager, login } = await setup();
  fake.loginReply = () => ({ status: 403, body: { errors: ['invalid role'] } });
  const err = await rejection(manager.getToken(KEY, login));
  assert.ok(err instanceof VaultError && err.kind === 'Denied');
  fake.loginReply = undefined;
  assert.equal(await manager.getToken(KEY, login), 's.login-1');
});

test('invalidate with the failing token drops it once, however many callers report it', async () => {
  const { vault, timers, manager, login } = await setup();
  const old = await manager.getToken(KEY, login);
  manager.invalidate(KEY, old);
  assert.equal(manager.tokenInfo(KEY), undefined);
  assert.equal(timers.pending, 0, 'no renewal for a dropped token');
  const fresh = await Promise.all(Array.from({ length: 5 }, async () => {
    manager.invalidate(KEY, old); // every caller that saw the old token fail reports it
    return manager.getToken(KEY, login);
  }));
  assert.deepEqual(new Set(fresh), new Set(['s.login-2']));
  manager.invalidate(KEY, old);
  assert.equal(await manager.getToken(KEY, login), 's.login-2', 'a stale report does not drop the new token');
  assert.equal(vault.count('auth/kubernetes/login'), 2);

  manager.invalidate(KEY);
  assert.equal(manager.tokenInfo(KEY), undefined);
  assert.equal(timers.pending, 0);
});

test('withToken logs in again when the token itself was revoked, not on a policy denial', async () => {
  const { fake, vault, manager, login } = await setup();
  const revoked = new Set<string>();
  fake.lookupReply = (req) => (revoked.has(String(req.headers['x-vault-token']))
    ? { status: 403, body: { errors: ['permission denied'] } }
    : { status: 200, body: { data: { ttl: 100 } } });
  const denied = (path: string) => new VaultError({ operation: 'kv-read', method: 'GET', path, kind: 'Denied', status: 403 });

  const seen: string[] = [];
  await manager.getToken(KEY, login);
  revoked.add('s.login-1');
  const result = await manager.withToken(KEY, login, async (token) => {
    seen.push(token);
    if (revoked.has(token)) throw denied('secret/data/a');
    return 'ok';
  });
  assert.equal(result, 'ok');
  assert.deepEqual(seen, ['s.login-1', 's.login-2']);

  const err = await rejection(manager.withToken(KEY, login, async () => {
    throw denied('secret/data/not-mine');
  }));
  assert.ok(err instanceof VaultError && err.kind === 'Denied');
  assert.equal(vault.count('auth/kubernetes/login'), 2, 'a policy denial costs no login');
});

test('a static token is looked up; one without TTL never expires and needs no timer', async () => {
  const { fake, vault, timers, manager } = await setup();
  const token = await manager.getToken('static', { method: 'token', token: async () => ' s.static-root\n' });
  assert.equal(token, 's.static-root');
  assert.equal(vault.requests[0]?.path, 'auth/token/lookup-self');
  assert.equal(vault.requests[0]?.headers['x-vault-token'], 's.static-root');
  assert.equal(manager.tokenInfo('static')?.expiresAt, Number.POSITIVE_INFINITY);
  assert.equal(timers.pending, 0);

  fake.lookupReply = () => ({ status: 200, body: { data: { ttl: 300, creation_ttl: 600, renewable: true, accessor: 'a' } } });
  await manager.getToken('periodic', { method: 'token', token: async () => 's.periodic' });
  assert.equal(manager.tokenInfo('periodic')?.expiresAt, T0 + 300_000);
  assert.equal(timers.nextAt, T0 + 200_000);
});

test('renewal uses the namespace the token was issued in', async () => {
  const { vault, manager, login, fireNext } = await setup();
  await manager.getToken(KEY, { ...login, namespace: 'team-a' });
  await fireNext();
  const renew = vault.requests.find((r) => r.path === 'auth/token/renew-self');
  assert.equal(renew?.headers['x-vault-namespace'], 'team-a');
});

test('stop clears every timer and refuses further use', async () => {
  const { timers, manager, login } = await setup();
  await manager.getToken(KEY, login);
  await manager.getToken('other', login);
  assert.equal(timers.pending, 2);
  manager.stop();
  assert.equal(timers.pending, 0);
  await rejection(manager.getToken(KEY, login));
});
