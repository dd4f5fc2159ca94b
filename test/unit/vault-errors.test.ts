import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyVaultFailure, isRetryable, VaultError, type VaultErrorKind } from '../../src/vault/errors.ts';
import { backoffDelayMs, operationForPath } from '../../src/vault/client.ts';

const ctx = { operation: 'kv-read', method: 'GET', path: 'secret/data/app' };

test('HTTP statuses map to kinds; only the retryable kinds are retryable', () => {
  const table: Array<[number, unknown, VaultErrorKind, boolean]> = [
    [400, { errors: ['missing client token'] }, 'Invalid', false],
    [401, { errors: [] }, 'Denied', false],
    [403, { errors: ['permission denied'] }, 'Denied', false],
    [404, { errors: [] }, 'NotFound', false],
    [405, { errors: ['unsupported operation'] }, 'Invalid', false],
    [412, { errors: ['required index state not present'] }, 'Transient', true],
    [429, { errors: ['request path "x": rate limit quota exceeded'] }, 'Throttled', true],
    [473, undefined, 'Throttled', true],
    [500, { errors: ['internal error'] }, 'Transient', true],
    [502, 'not json', 'Transient', true],
    [503, { errors: ['Vault is sealed'] }, 'Sealed', true],
    [503, { errors: ['error performing token check: Vault is sealed'] }, 'Sealed', true],
    [503, { errors: ['local node not active but active cluster node not found'] }, 'Transient', true],
  ];
  for (const [status, body, kind, retryable] of table) {
    const err = classifyVaultFailure({ status, body }, ctx);
    assert.equal(err.kind, kind, `HTTP ${status} ${JSON.stringify(body)}`);
    assert.equal(err.status, status);
    assert.equal(err.retryable, retryable, `HTTP ${status}`);
    assert.equal(isRetryable(err), retryable);
  }
});

test('network failures: cannot connect is Unreachable, a broken exchange is Transient', () => {
  const withCode = (code: string, cause?: unknown) => Object.assign(new Error(`boom ${code}`), { code, cause });
  const table: Array<[unknown, VaultErrorKind]> = [
    [withCode('ECONNREFUSED'), 'Unreachable'],
    [withCode('ENOTFOUND'), 'Unreachable'],
    [withCode('EAI_AGAIN'), 'Unreachable'],
    [withCode('UND_ERR_CONNECT_TIMEOUT'), 'Unreachable'],
    [withCode('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'Unreachable'],
    [withCode('SELF_SIGNED_CERT_IN_CHAIN'), 'Unreachable'],
    [withCode('ERR_TLS_CERT_ALTNAME_INVALID'), 'Unreachable'],
    [withCode('UND_ERR_SOCKET', withCode('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')), 'Unreachable'],
    [withCode('ECONNRESET'), 'Transient'],
    [withCode('UND_ERR_HEADERS_TIMEOUT'), 'Transient'],
    [withCode('UND_ERR_BODY_TIMEOUT'), 'Transient'],
    [withCode('UND_ERR_SOCKET', withCode('ECONNRESET')), 'Transient'],
    [withCode('UND_ERR_INVALID_ARG'), 'Invalid'],
    [new Error('no code at all'), 'Transient'],
  ];
  for (const [error, kind] of table) {
    const err = classifyVaultFailure({ error }, ctx);
    assert.equal(err.kind, kind, (error as Error).message);
    assert.equal(err.status, undefined);
  }
});

test('a VaultError passes through the classifier unchanged', () => {
  const original = new VaultError({ ...ctx, kind: 'NotFound', status: 404 });
  assert.equal(classifyVaultFailure({ error: original }, ctx), original);
  assert.equal(isRetryable(new Error('x')), false);
});

test('the message names the operation, path, status and Vault errors, and nothing else from the body', () => {
  const err = classifyVaultFailure(
    { status: 403, body: { errors: ['1 error occurred:\n\t* permission denied\n\n'], data: { password: 'hunter2' }, auth: { client_token: 's.abc' } } },
    ctx,
  );
  assert.equal(err.message, 'Vault kv-read GET secret/data/app: Denied (HTTP 403): 1 error occurred: * permission denied');
  assert.deepEqual(err.vaultErrors, ['1 error occurred: * permission denied']);
  const everything = JSON.stringify(err) + err.message + String(err.stack);
  assert.ok(!everything.includes('hunter2') && !everything.includes('s.abc'));
});

test('network error messages carry the code only', () => {
  const err = classifyVaultFailure({ error: Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:8200 while sending x'), { code: 'ECONNREFUSED' }) }, ctx);
  assert.equal(err.message, 'Vault kv-read GET secret/data/app: Unreachable (ECONNREFUSED)');
  assert.equal(err.code, 'ECONNREFUSED');
});

test('Vault error strings are bounded', () => {
  const err = classifyVaultFailure({ status: 400, body: { errors: Array.from({ length: 20 }, () => 'x'.repeat(1000)) } }, ctx);
  assert.equal(err.vaultErrors.length, 5);
  assert.ok(err.vaultErrors.every((e) => e.length <= 301));
});

test('Retry-After is read as seconds or as an HTTP date', () => {
  assert.equal(classifyVaultFailure({ status: 429, retryAfter: '3' }, ctx).retryAfterMs, 3_000);
  const now = Date.UTC(2026, 0, 1);
  assert.equal(classifyVaultFailure({ status: 503, retryAfter: new Date(now + 7_000).toUTCString(), nowMs: now }, ctx).retryAfterMs, 7_000);
  assert.equal(classifyVaultFailure({ status: 429 }, ctx).retryAfterMs, undefined);
});

test('backoff doubles per attempt, jitters between half and all, and never exceeds the cap', () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1_000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(a, policy, () => 0)), [50, 100, 200, 400, 500, 500]);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(a, policy, () => 0.999999)), [100, 200, 400, 800, 1_000, 1_000]);
});

test('operation labels do not carry mounts, roles or secret paths', () => {
  const table: Array<[string, string]> = [
    ['auth/kubernetes/login', 'login'],
    ['auth/team-a/k8s/login', 'login'],
    ['/auth/approle/login', 'login'],
    ['auth/token/renew-self', 'token-renew'],
    ['auth/token/lookup-self', 'token-lookup'],
    ['sys/leases/renew', 'lease-renew'],
    ['sys/leases/revoke', 'lease-revoke'],
    ['sys/internal/ui/mounts/secret', 'mount-lookup'],
    ['secret/data/team-a/app', 'other'],
    ['auth/kubernetes/role/login-like', 'other'],
  ];
  for (const [path, label] of table) assert.equal(operationForPath(path), label, path);
});
