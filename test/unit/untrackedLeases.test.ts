// A lease no status records: the intent written before each issue, what a process concludes when it finds
// one, and what it does when its own request fails. DynamicSecretSync runs against in-process fakes: a
// status store with JSON-merge-patch semantics, a scripted Vault source, and a recording event sink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVaultSecretSpec, type PendingIssue, type VaultSecretSpec, type VaultSecretStatus } from '../../src/api/index.ts';
import {
  DynamicSecretSync, judgeIntent, leasedIssuePath, untrackedLeaseMessage, type DynamicSource, type UntrackedCause,
} from '../../src/controller/dynamicSync.ts';
import type { VaultSecretObject } from '../../src/controller/reconciler.ts';
import { SyncError } from '../../src/controller/syncError.ts';
import type { IssuedSecret } from '../../src/controller/vaultSource.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { VaultError } from '../../src/vault/errors.ts';
import { mayHaveIssued } from '../../src/vault/leases.ts';

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

function spec(raw: Record<string, unknown>): VaultSecretSpec {
  const parsed = parseVaultSecretSpec({ vault: { auth: { kubernetes: { role: 'r' } } }, ...raw });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.spec;
}
const DB = spec({ source: { database: { role: 'app' } } });
const PATH = 'database/creds/app';

test('judgeIntent: only an intent this process wrote and settled is cleared quietly', () => {
  const found: PendingIssue = { since: iso(T0), path: PATH };
  assert.equal(judgeIntent(undefined, undefined), 'none');
  assert.equal(judgeIntent(found, undefined), 'untracked', 'written by another process (restart, leader change)');
  assert.equal(judgeIntent(found, { since: iso(T0), settled: true }), 'settled');
  assert.equal(judgeIntent(found, { since: iso(T0), settled: false }), 'untracked', 'ours, but the pass that wrote it never learned the outcome');
  assert.equal(judgeIntent(found, { since: iso(T0 + 1), settled: true }), 'untracked', 'ours was another request');
});

test('leasedIssuePath: the path whose leases to look up, none where an issue leaves no lease', () => {
  assert.equal(leasedIssuePath(DB, undefined), PATH);
  assert.equal(leasedIssuePath(spec({ source: { database: { role: 'app', mount: 'pg' } } }), undefined), 'pg/creds/app');
  assert.equal(leasedIssuePath(spec({ source: { database: { role: 'app', static: true } } }), undefined), undefined, 'static roles have no lease');
  const pki = spec({ source: { dynamic: { path: 'pki/issue/web', method: 'POST' } } });
  assert.equal(leasedIssuePath(pki, undefined), 'pki/issue/web', 'first issue: a lease may come');
  assert.equal(leasedIssuePath(pki, { dataHmac: 'x', leases: [] }), undefined, 'issued before without a lease');
  assert.equal(leasedIssuePath(pki, { dataHmac: 'x', leases: [lease('pki/issue/web/1')] }), 'pki/issue/web');
});

test('untrackedLeaseMessage: names the VaultSecret, the path, how to find the lease and about when it expires', () => {
  const message = untrackedLeaseMessage({ vaultSecret: 'team-a/db', intent: { since: iso(T0), path: PATH }, cause: 'interrupted', lastTtlSeconds: 600 });
  assert.match(message, /VaultSecret team-a\/db/);
  assert.match(message, /vault list sys\/leases\/lookup\/database\/creds\/app\//);
  assert.match(message, new RegExp(`around ${iso(T0 + 600_000).replace(/\./g, '\\.')}`));
  assert.match(message, /stopped before recording the answer/);
  const lost = untrackedLeaseMessage({ vaultSecret: 'team-a/db', intent: { since: iso(T0), path: PATH }, cause: 'outcome_unknown', vaultNamespace: 'team', failure: 'VaultUnreachable' });
  assert.match(lost, /was lost \(VaultUnreachable\)/);
  assert.match(lost, /vault list -namespace=team sys\/leases\/lookup\//);
  assert.match(lost, /the role's TTL/);
  assert.ok(message.length < 1024 && lost.length < 1024, 'fits an Event message');
});

test('mayHaveIssued: only failures after which Vault certainly issued nothing are safe to retry or forget', () => {
  const ctx = { operation: 'dynamic-read', method: 'GET', path: PATH };
  const cases: [string, VaultError, boolean][] = [
    ['connection refused', new VaultError({ ...ctx, kind: 'Unreachable', code: 'ECONNREFUSED' }), false],
    ['TLS failure', new VaultError({ ...ctx, kind: 'Unreachable', code: 'CERT_HAS_EXPIRED' }), false],
    ['permission denied', new VaultError({ ...ctx, kind: 'Denied', status: 403 }), false],
    ['unknown role', new VaultError({ ...ctx, kind: 'Invalid', status: 400 }), false],
    ['sealed or standby (503)', new VaultError({ ...ctx, kind: 'Sealed', status: 503 }), false],
    ['rate limited', new VaultError({ ...ctx, kind: 'Throttled', status: 429 }), false],
    ['refused before sending', new VaultError({ ...ctx, kind: 'Invalid', code: 'UND_ERR_INVALID_ARG' }), false],
    ['timeout waiting for the answer', new VaultError({ ...ctx, kind: 'Transient', code: 'UND_ERR_HEADERS_TIMEOUT' }), true],
    ['connection reset', new VaultError({ ...ctx, kind: 'Transient', code: 'ECONNRESET' }), true],
    ['internal server error', new VaultError({ ...ctx, kind: 'Transient', status: 500 }), true],
    ['bad gateway', new VaultError({ ...ctx, kind: 'Transient', status: 502 }), true],
    ['2xx with an unusable body', new VaultError({ ...ctx, kind: 'Invalid', status: 200 }), true],
  ];
  for (const [name, err, expected] of cases) assert.equal(mayHaveIssued(err), expected, name);
});

// ---- DynamicSecretSync against fakes -------------------------------------------------------------------

function lease(leaseId: string, over: Partial<NonNullable<VaultSecretStatus['leases']>[number]> = {}) {
  return { leaseId, issuedAt: iso(T0 - 60_000), expiresAt: iso(T0 + 540_000), renewable: true, ttlSeconds: 600, state: 'active' as const, ...over };
}

function issuedSecret(leaseId: string): IssuedSecret {
  return { data: { username: 'u', password: 'p' }, lease: { leaseId, leaseDurationSeconds: 600, renewable: true, issuedAt: T0 }, ttlSeconds: 600 };
}

/** JSON merge patch (RFC 7386) of plain objects. */
function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' && !Array.isArray(out[k])) out[k] = mergePatch(out[k] as Record<string, unknown>, v as Record<string, unknown>);
    else out[k] = v;
  }
  return out;
}

function harness(opts: { status?: VaultSecretStatus; terminating?: boolean } = {}) {
  const clock = new ManualClock(T0);
  const calls: string[] = [];
  const events: { type: string; reason: string; message: string }[] = [];
  const untracked: UntrackedCause[] = [];
  const server = { status: structuredClone(opts.status ?? {}) as Record<string, unknown> };
  /** Fails the next status write this accepts (once). */
  let failNext: ((call: 'writeStatus' | 'patchStatus', patch: Record<string, unknown>) => boolean) | undefined;
  const vault = {
    issue: [] as (IssuedSecret | Error)[],
    revokeFails: false,
    revoked: [] as string[],
  };
  const source: DynamicSource = {
    issue: async () => {
      calls.push(`issue(status.pendingIssue=${JSON.stringify((server.status.pendingIssue as PendingIssue | undefined)?.path)})`);
      const next = vault.issue.shift();
      if (!next) throw new Error('unexpected issue');
      if (next instanceof Error) throw next;
      return next;
    },
    renew: async () => { throw new Error('unexpected renew'); },
    revoke: async (_t, _s, leaseId) => {
      calls.push(`revoke ${leaseId}`);
      if (vault.revokeFails) throw new SyncError('VaultUnreachable', 'down', true);
      vault.revoked.push(leaseId);
    },
    currentToken: async () => undefined,
  };
  const failIfAsked = (call: 'writeStatus' | 'patchStatus', patch: Record<string, unknown>) => {
    if (failNext?.(call, patch)) {
      failNext = undefined;
      throw new Error('API server unavailable');
    }
  };
  let secretWriteFails: Error | undefined;
  const sync = new DynamicSecretSync({
    clock, log: silentLogger, source, hmacKey: Buffer.alloc(32, 1),
    secrets: { namespaceTerminating: async () => { calls.push('namespace?'); return opts.terminating ?? false; } },
    events: { emit: (_t, type, reason, message) => events.push({ type, reason, message }) },
    restarter: { restart: async () => [] },
    // The reconciler's writeStatus: the whole status, with fields the object had and the status lacks sent as null.
    writeStatus: async (obj, status) => {
      const patch: Record<string, unknown> = JSON.parse(JSON.stringify(status));
      for (const key of Object.keys(obj.status ?? {})) if (patch[key] === undefined) patch[key] = null;
      failIfAsked('writeStatus', patch);
      calls.push('writeStatus');
      server.status = mergePatch(server.status, patch);
    },
    patchStatus: async (_obj, fields) => {
      failIfAsked('patchStatus', fields);
      calls.push(`patchStatus ${Object.keys(fields).join(',')}`);
      server.status = mergePatch(server.status, JSON.parse(JSON.stringify(fields)));
    },
    writeSecret: async () => {
      calls.push('writeSecret');
      if (secretWriteFails) throw secretWriteFails;
      return { username: Buffer.from('u'), password: Buffer.from('p') };
    },
    onUntrackedLease: (cause) => untracked.push(cause),
  });
  const object = (): VaultSecretObject => ({ metadata: { name: 'db', namespace: 'team-a', uid: 'uid-1', generation: 1 }, status: structuredClone(server.status) as VaultSecretStatus });
  return {
    clock, calls, events, untracked, server, vault, sync, object,
    /** Default: what the API server answers in a namespace being deleted (403). */
    failSecretWrite: (err: Error = Object.assign(new Error('unable to create new content in namespace team-a because it is being terminated'), { code: 403 })) => { secretWriteFails = err; },
    failNextWrite: (when: typeof failNext) => { failNext = when; },
    pass: (s: VaultSecretSpec = DB, issueNow?: 'ForceSync') => sync.sync(object(), s, 0, issueNow),
  };
}

test('the intent is in status before Vault is asked, and the write that records the lease clears it', async () => {
  const h = harness();
  h.vault.issue.push(issuedSecret(`${PATH}/new`));
  const result = await h.pass();
  assert.equal(result.issued, true);
  assert.deepEqual(h.calls, ['namespace?', 'patchStatus pendingIssue', `issue(status.pendingIssue="${PATH}")`, 'writeSecret', 'writeStatus']);
  assert.equal(h.server.status.pendingIssue, undefined, 'cleared by the write that records the lease');
  assert.deepEqual((h.server.status.leases as { leaseId: string }[]).map((l) => l.leaseId), [`${PATH}/new`]);
  assert.deepEqual(h.events.map((e) => e.reason), ['CredentialsIssued']);
  assert.deepEqual(h.untracked, []);
});

test('an intent this process did not write: one Warning naming where to look, the metric, and it is cleared without issuing', async () => {
  const since = iso(T0 - 5_000);
  const h = harness({ status: { dataHmac: 'h', leases: [lease(`${PATH}/old`)], pendingIssue: { since, path: PATH } } });
  const result = await h.pass();
  assert.equal(result.issued, false, 'the recorded lease is fresh: nothing is due');
  assert.equal(h.events.length, 1);
  const [event] = h.events;
  assert.equal(event!.type, 'Warning');
  assert.equal(event!.reason, 'LeaseMayBeUntracked');
  assert.match(event!.message, /team-a\/db/);
  assert.match(event!.message, new RegExp(`sys/leases/lookup/${PATH}/`));
  assert.match(event!.message, new RegExp(`around ${iso(T0 - 5_000 + 600_000).replace(/\./g, '\\.')}`));
  assert.deepEqual(h.untracked, ['interrupted']);
  assert.equal(h.server.status.pendingIssue, undefined);
  assert.ok(!h.calls.some((c) => c.startsWith('issue')));
  // Reported once: the next pass finds nothing.
  await h.pass();
  assert.equal(h.events.length, 1);
});

test('a definite failure of this process\'s own request clears the intent quietly', async () => {
  const h = harness({ status: { dataHmac: 'h', leases: [lease(`${PATH}/old`)] } });
  h.vault.issue.push(new SyncError('VaultPermissionDenied', 'denied', true));
  await assert.rejects(h.pass(undefined, 'ForceSync'), /denied/);
  assert.equal(h.server.status.pendingIssue, undefined);
  assert.deepEqual(h.events, []);
  assert.deepEqual(h.untracked, []);
});

test('an intent this process settled but failed to clear is cleared quietly on the next pass', async () => {
  const h = harness({ status: { dataHmac: 'h', leases: [lease(`${PATH}/old`)] } });
  h.vault.issue.push(new SyncError('VaultUnreachable', 'refused', true));
  h.failNextWrite((call, patch) => call === 'patchStatus' && patch.pendingIssue === null);
  await assert.rejects(h.pass(undefined, 'ForceSync'), /refused/);
  assert.ok(h.server.status.pendingIssue, 'the clearing write failed: status still holds the intent');
  await h.pass();
  assert.deepEqual(h.events, []);
  assert.deepEqual(h.untracked, []);
  assert.equal(h.server.status.pendingIssue, undefined);
});

test('a lost answer to this process\'s own request is reported like an interrupted one', async () => {
  const h = harness({ status: { dataHmac: 'h', leases: [lease(`${PATH}/old`)] } });
  h.vault.issue.push(new SyncError('VaultUnreachable', 'timeout', true, { issueOutcomeUnknown: true }));
  await assert.rejects(h.pass(undefined, 'ForceSync'), /timeout/);
  assert.deepEqual(h.untracked, ['outcome_unknown']);
  assert.equal(h.events.length, 1);
  assert.match(h.events[0]!.message, /was lost \(VaultUnreachable\)/);
  assert.equal(h.server.status.pendingIssue, undefined);
});

test('credentials that reach no Secret are revoked at once; if Vault refuses, the lease is recorded and revoked later', async () => {
  const h = harness({ status: { dataHmac: 'h', leases: [lease(`${PATH}/old`)] } });
  h.failSecretWrite();
  h.vault.issue.push(issuedSecret(`${PATH}/orphan`));
  await assert.rejects(h.pass(undefined, 'ForceSync'), /being terminated/);
  assert.deepEqual(h.vault.revoked, [`${PATH}/orphan`]);
  assert.equal(h.server.status.pendingIssue, undefined);
  assert.deepEqual((h.server.status.leases as { leaseId: string }[]).map((l) => l.leaseId), [`${PATH}/old`], 'the old lease stays active');
  assert.deepEqual(h.untracked, []);

  const refused = harness({ status: { dataHmac: 'h', leases: [lease(`${PATH}/old`)] } });
  refused.failSecretWrite();
  refused.vault.revokeFails = true;
  refused.vault.issue.push(issuedSecret(`${PATH}/orphan`));
  await assert.rejects(refused.pass(undefined, 'ForceSync'));
  const leases = refused.server.status.leases as { leaseId: string; state: string }[];
  assert.deepEqual(leases.map((l) => [l.leaseId, l.state]), [[`${PATH}/old`, 'active'], [`${PATH}/orphan`, 'superseded']]);
  assert.equal(refused.server.status.pendingIssue, undefined);
  assert.deepEqual(refused.untracked, [], 'the lease is tracked: nothing to warn about');
  refused.vault.revokeFails = false;
  await refused.pass();
  assert.deepEqual(refused.vault.revoked, [`${PATH}/orphan`], 'revoked on the next pass, without waiting for the grace period');
});

test('credentials a timed-out Secret write may have delivered are kept for the grace period, tracked', async () => {
  const h = harness({ status: { dataHmac: 'h', leases: [lease(`${PATH}/old`)] } });
  h.failSecretWrite(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
  h.vault.issue.push(issuedSecret(`${PATH}/maybe`));
  await assert.rejects(h.pass(undefined, 'ForceSync'), /hang up/);
  assert.deepEqual(h.vault.revoked, [], 'a consumer may already use them');
  const maybe = (h.server.status.leases as { leaseId: string; state: string; supersededAt?: string }[]).find((l) => l.leaseId === `${PATH}/maybe`);
  assert.deepEqual([maybe?.state, maybe?.supersededAt], ['superseded', iso(T0)]);
  assert.equal(h.server.status.pendingIssue, undefined);
  assert.deepEqual(h.untracked, []);
  h.clock.advance(301_000);
  await h.pass();
  assert.deepEqual(h.vault.revoked, [`${PATH}/maybe`], 'revoked once the 5m grace period is over');
});

test('after issuing, a failed status write leaves the lease unrecorded: the next pass warns', async () => {
  const h = harness({ status: { dataHmac: 'h', leases: [lease(`${PATH}/old`)] } });
  h.vault.issue.push(issuedSecret(`${PATH}/new`));
  h.failNextWrite((call) => call === 'writeStatus');
  await assert.rejects(h.pass(undefined, 'ForceSync'), /API server unavailable/);
  assert.deepEqual(h.untracked, []);
  assert.ok(!(h.server.status.leases as { leaseId: string }[]).some((l) => l.leaseId === `${PATH}/new`), 'Vault issued a lease status does not record');
  await h.pass();
  assert.deepEqual(h.untracked, ['interrupted']);
  assert.deepEqual(h.events.filter((e) => e.type === 'Warning').map((e) => e.reason), ['LeaseMayBeUntracked']);
  assert.equal(h.server.status.pendingIssue, undefined);
});

test('no credentials are issued into a namespace being deleted, and the key is not retried hot', async () => {
  const h = harness({ terminating: true, status: { dataHmac: 'h', leases: [lease(`${PATH}/old`)] } });
  const result = await h.pass(undefined, 'ForceSync');
  assert.equal(result.issued, false);
  assert.ok(!h.calls.some((c) => c.startsWith('issue') || c.startsWith('patchStatus') || c === 'writeSecret'), h.calls.join(', '));
  assert.ok(result.nextAt >= T0 + 30_000, 'looks again in 30 s, not in a loop');
});

test('a static role leaves no lease behind: no intent is written', async () => {
  const h = harness();
  h.vault.issue.push({ data: { username: 'static', password: 'p', ttl: 30 }, ttlSeconds: 30 });
  await h.pass(spec({ source: { database: { role: 'app', static: true } } }));
  assert.ok(!h.calls.some((c) => c.startsWith('patchStatus')), h.calls.join(', '));
});
