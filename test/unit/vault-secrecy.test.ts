// Secrets never leak: drives logins, renewals, reads and failures through a debug-level pino logger (without
// its redaction, which is only the second line of defence) and scans every log line and every error for the
// tokens, credentials and secret values involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { pino } from 'pino';
import { VaultClient } from '../../src/vault/client.ts';
import { VaultTokenManager, type VaultLogin } from '../../src/vault/auth.ts';
import { readKv } from '../../src/vault/kv.ts';
import { readDynamic, renewLease } from '../../src/vault/leases.ts';
import { eventually, FakeTimers, startFakeVault, type Recorded, type Reply } from './vault-fakes.ts';
import { ManualClock } from '../../src/util/clock.ts';

const SECRETS = {
  token: 's.SECRET-TOKEN-4242',
  renewedToken: 's.SECRET-TOKEN-SECOND',
  staticToken: 's.SECRET-STATIC-TOKEN',
  jwt: 'eyJSECRET.JWT.PAYLOAD',
  secretId: 'SECRET-ID-9999',
  kvPassword: 'hunter2-SECRET-KV',
  dbPassword: 'A1a-SECRET-DB-PASSWORD',
};

test('tokens, credentials and secret values appear in no log line and no error', async () => {
  let logins = 0;
  let renewRefused = false;
  const vault = await startFakeVault((req: Recorded): Reply => {
    const token = req.headers['x-vault-token'];
    switch (req.path) {
      case 'auth/kubernetes/login':
        logins++;
        return { status: 200, body: { auth: { client_token: logins === 1 ? SECRETS.token : SECRETS.renewedToken, accessor: 'acc', lease_duration: 60, renewable: true } } };
      case 'auth/approle/login':
        // Vault echoing an input into its error must not carry it into ours.
        return { status: 400, body: { errors: [`invalid secret id "${SECRETS.secretId}"`], data: { secret_id: SECRETS.secretId } } };
      case 'auth/jwt/login':
        return { status: 400, body: { errors: [`token ${SECRETS.jwt} is expired`] } };
      case 'auth/token/renew-self':
        return renewRefused
          ? { status: 403, body: { errors: [`permission denied for ${String(token)}`] } }
          : { status: 200, body: { auth: { client_token: token, lease_duration: 60, renewable: true } } };
      case 'auth/token/lookup-self':
        return { status: 200, body: { data: { ttl: 0, renewable: false } } };
      case 'sys/internal/ui/mounts/secret':
        return { status: 200, body: { data: { type: 'kv', options: { version: '2' } } } };
      case 'secret/data/app':
        return { status: 200, body: { data: { data: { password: SECRETS.kvPassword }, metadata: { version: 1 } } } };
      case 'secret/data/broken':
        return { status: 200, body: { data: { data: SECRETS.kvPassword } } };
      case 'secret/data/flaky':
        return { status: 500, body: { errors: ['internal error'], data: { password: SECRETS.kvPassword } } };
      case 'database/creds/app':
        return { status: 200, body: { lease_id: 'database/creds/app/x', lease_duration: 60, renewable: true, data: { password: SECRETS.dbPassword } } };
      case 'database/creds/odd':
        return { status: 200, body: { data: [SECRETS.dbPassword] } };
      default:
        return { status: 403, body: { errors: ['permission denied'] } };
    }
  });

  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const clock = new ManualClock();
  const timers = new FakeTimers(clock);
  const client = new VaultClient(
    { address: vault.address, timeoutMs: 2_000 },
    { logger, clock, random: () => 0, sleep: async (ms) => clock.advance(ms), retry: { maxAttempts: 2 } },
  );
  const outcomes: string[] = [];
  const manager = new VaultTokenManager({ client, clock, timers, random: () => 0, logger, onRenewal: (_k, o) => outcomes.push(o) });
  const errors: unknown[] = [];
  const capture = async (work: Promise<unknown>): Promise<void> => {
    try {
      await work;
    } catch (err) {
      errors.push(err);
    }
  };

  try {
    const login: VaultLogin = { method: 'kubernetes', role: 'app', jwt: async () => SECRETS.jwt };
    const token = await manager.getToken('team-a/kubernetes/app', login);
    assert.equal(token, SECRETS.token);
    const kv = await readKv(client, token, { mount: 'secret', path: 'app' });
    assert.equal(kv.data.password, SECRETS.kvPassword);
    const creds = await readDynamic(client, token, { path: 'database/creds/app', method: 'POST', params: { password: SECRETS.dbPassword } });
    assert.equal(creds.data.password, SECRETS.dbPassword);

    await capture(readKv(client, token, { mount: 'secret', path: 'broken' }));
    await capture(readKv(client, token, { mount: 'secret', path: 'flaky' }));
    await capture(readDynamic(client, token, { path: 'database/creds/odd', method: 'GET' }));
    await capture(readDynamic(client, token, { path: 'database/creds/denied', method: 'POST', params: { password: SECRETS.dbPassword } }));
    await capture(renewLease(client, token, 'database/creds/app/x', 60));
    await capture(manager.getToken('team-a/approle/app', { method: 'appRole', roleId: 'role', secretId: async () => SECRETS.secretId }));
    await capture(manager.getToken('team-a/jwt/app', { method: 'jwt', role: 'app', jwt: async () => SECRETS.jwt }));
    await capture(manager.getToken('team-a/kubernetes/broken', {
      method: 'kubernetes', role: 'app', jwt: async () => {
        throw new Error(`TokenRequest failed; partial token ${SECRETS.jwt}`);
      },
    }));
    await capture(manager.getToken('static', { method: 'token', token: async () => SECRETS.staticToken }));
    await capture(client.request({ method: 'GET', path: 'x', token: `${SECRETS.token}\n` }));

    // Background maintenance: one renewal, then a refused renewal and the re-login it causes.
    timers.advance((timers.nextAt ?? 0) - clock.now());
    await eventually('renewal', () => outcomes.length === 1);
    renewRefused = true;
    timers.advance((timers.nextAt ?? 0) - clock.now());
    await eventually('re-login', () => outcomes.length === 3);
    assert.deepEqual(outcomes, ['renewed', 'failed', 'relogin']);
    assert.equal(await manager.getToken('team-a/kubernetes/app', login), SECRETS.renewedToken);
    await capture(manager.withToken('team-a/kubernetes/app', login, (t) => readKv(client, t, { mount: 'secret', path: 'denied' })));
  } finally {
    manager.stop();
    await client.close();
    await vault.close();
  }

  assert.ok(errors.length >= 10, `collected ${errors.length} errors`);
  assert.ok(lines.length >= 4, 'the scenario logged something to scan');
  assert.ok(lines.some((l) => l.includes('team-a/kubernetes/app')), 'identities are logged');
  const errorText = errors.map((e) => [
    e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e),
    JSON.stringify(e),
    inspect(e, { depth: 5 }),
  ].join('\n'));
  const haystack = [...lines, ...errorText].join('\n');
  for (const [name, value] of Object.entries(SECRETS)) {
    // The callback's own error is the caller's; everything the Vault layer produced must be clean.
    const leaks = haystack.split('\n').filter((line) => line.includes(value) && !line.includes('TokenRequest failed'));
    assert.deepEqual(leaks, [], `${name} leaked`);
  }
  assert.ok(errorText.some((t) => t.includes('invalid secret id "[redacted]"')), 'echoed credentials are cut out of Vault errors');
});
