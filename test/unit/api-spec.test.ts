// Runtime validation of VaultSecret and VaultConnection specs: what is accepted, and that a rejection names
// the field and what to fix, in the same words as the CRD's CEL rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import {
  buildCrds, parseVaultConnectionSpec, parseVaultSecretSpec, VAULTSECRET_KIND,
} from '../../src/api/index.ts';

const kv = { mount: 'secret', path: 'team-a/db' };
const vault = { auth: { kubernetes: { role: 'team-a' } } };
const base = { vault, source: { kv } };

test('valid VaultSecret specs are accepted', () => {
  const cases: [string, unknown][] = [
    ['minimal', base],
    ['no vault section: default connection', { source: { kv } }],
    ['every kv option', { vault, source: { kv: { ...kv, version: 3, kvVersion: 2, keys: ['username', 'password'] } } }],
    ['kv v1', { vault, source: { kv: { ...kv, kvVersion: 1 } } }],
    ['kvMerge', { vault, source: { kvMerge: { sources: [kv, { mount: 'secret', path: 'team-a/override' }] } } }],
    ['connection in another namespace', { vault: { ...vault, connectionRef: { name: 'shared', namespace: 'vault-system' }, namespace: 'team-a/' }, source: { kv } }],
    ['jwt with a ServiceAccount', { vault: { auth: { jwt: { role: 'r', serviceAccountName: 'app', audiences: ['vault'] } } }, source: { kv } }],
    ['jwt from a Secret', { vault: { auth: { jwt: { role: 'r', secretRef: { name: 'jwt', key: 'token' } } } }, source: { kv } }],
    ['appRole', { vault: { auth: { appRole: { roleId: 'abc', secretIdRef: { name: 'approle', key: 'secret-id' } } } }, source: { kv } }],
    ['token', { vault: { auth: { token: { secretRef: { name: 'dev-token' } } } }, source: { kv } }],
    ['destination', { ...base, destination: { name: 'db.creds', type: 'kubernetes.io/basic-auth', labels: { a: 'b' }, annotations: { c: 'd' }, creationPolicy: 'Merge', deletionPolicy: 'Retain' } }],
    ['template', { ...base, template: { data: { DATABASE_URL: 'postgresql://{{ secret.username }}@db/app' }, includeSourceKeys: true } }],
    ['refresh 1h30m', { ...base, refresh: { interval: '1h30m' } }],
    ['refresh exactly 10s', { ...base, refresh: { interval: '10s' } }],
    ['refresh 1.5h', { ...base, refresh: { interval: '1.5h' } }],
  ];
  for (const [name, spec] of cases) {
    const result = parseVaultSecretSpec(spec);
    assert.ok(result.ok, `${name}: ${result.ok ? '' : result.message}`);
  }
});

test('invalid VaultSecret specs are rejected with the field path and what to fix', () => {
  const cases: [string, unknown, string][] = [
    ['two sources', { vault, source: { kv, kvMerge: { sources: [kv, kv] } } }, 'spec.source: exactly one of kv, kvMerge, database or dynamic must be set'],
    ['empty source', { vault, source: {} }, 'spec.source: exactly one of kv, kvMerge, database or dynamic must be set'],
    ['no source', { vault }, 'spec.source: is required'],
    ['two auth methods', { vault: { auth: { kubernetes: { role: 'r' }, token: { secretRef: { name: 't' } } } }, source: { kv } },
      'spec.vault.auth: exactly one of kubernetes, jwt, appRole or token must be set'],
    ['no auth method', { vault: { auth: {} }, source: { kv } }, 'spec.vault.auth: exactly one of kubernetes, jwt, appRole or token must be set'],
    ['vault without auth', { vault: {}, source: { kv } }, 'spec.vault.auth: is required'],
    ['bad duration', { ...base, refresh: { interval: '5 minutes' } }, 'spec.refresh.interval: must be a duration such as 30s, 5m, 1h or 1h30m'],
    ['duration below the minimum', { ...base, refresh: { interval: '9s' } }, 'spec.refresh.interval: must be at least 10s'],
    ['bad creationPolicy', { ...base, destination: { creationPolicy: 'Steal' } }, 'spec.destination.creationPolicy: must be one of "Owner", "Merge", "Orphan"'],
    ['negative version pin', { vault, source: { kv: { ...kv, version: -1 } } }, 'spec.source.kv.version: must be at least 1'],
    ['fractional version pin', { vault, source: { kv: { ...kv, version: 1.5 } } }, 'spec.source.kv.version: must be an integer'],
    ['version pin on KV v1', { vault, source: { kv: { ...kv, version: 2, kvVersion: 1 } } }, 'spec.source.kv: version pins a KV v2 secret version and cannot be used with kvVersion: 1'],
    ['kvVersion 3', { vault, source: { kv: { ...kv, kvVersion: 3 } } }, 'spec.source.kv.kvVersion: must be one of 1, 2'],
    ['repeated key', { vault, source: { kv: { ...kv, keys: ['a', 'a'] } } }, 'spec.source.kv.keys: must not contain the same entry twice'],
    ['kvMerge with one source', { vault, source: { kvMerge: { sources: [kv] } } }, 'spec.source.kvMerge.sources: must have at least 2 entries'],
    ['kvMerge entry with a leading slash', { vault, source: { kvMerge: { sources: [kv, { mount: 'secret', path: '/x' }] } } },
      "spec.source.kvMerge.sources[1].path: must be a Vault path without leading or trailing '/'"],
    ['jwt with both identities', { vault: { auth: { jwt: { role: 'r', serviceAccountName: 'a', secretRef: { name: 's', key: 'k' } } } }, source: { kv } },
      'spec.vault.auth.jwt: exactly one of serviceAccountName or secretRef must be set'],
    ['jwt audiences with a stored token', { vault: { auth: { jwt: { role: 'r', audiences: ['x'], secretRef: { name: 's', key: 'k' } } } }, source: { kv } },
      'spec.vault.auth.jwt: audiences applies only with serviceAccountName'],
    ['token expiration below 600', { vault: { auth: { kubernetes: { role: 'r', tokenExpirationSeconds: 60 } } }, source: { kv } },
      'spec.vault.auth.kubernetes.tokenExpirationSeconds: must be at least 600'],
    ['uppercase destination name', { ...base, destination: { name: 'App' } }, 'spec.destination.name: must be a DNS subdomain name'],
    ['empty role', { vault: { auth: { kubernetes: { role: '' } } }, source: { kv } }, 'spec.vault.auth.kubernetes.role: must not be empty'],
    ['template value not a string', { ...base, template: { data: { 'db-url': 1 } } }, 'spec.template.data["db-url"]: must be a string'],
    ['not an object', 'kv', 'spec: must be an object'],
  ];
  for (const [name, spec, expected] of cases) {
    const result = parseVaultSecretSpec(spec);
    assert.equal(result.ok, false, `${name}: accepted`);
    if (!result.ok) assert.ok(result.message.includes(expected), `${name}: ${JSON.stringify(result.message)} does not include ${JSON.stringify(expected)}`);
  }
});

test('every CEL rule message of the CRDs is produced by zod too', () => {
  const messages = new Set<string>();
  const walk = (node: Record<string, any>) => {
    for (const v of node['x-kubernetes-validations'] ?? []) messages.add(v.message);
    for (const child of Object.values(node.properties ?? {})) walk(child as Record<string, any>);
    if (node.items) walk(node.items);
  };
  for (const crd of buildCrds()) walk(crd.spec.versions[0]!.schema.openAPIV3Schema);
  const produced = [
    parseVaultSecretSpec({ vault, source: {} }),
    parseVaultSecretSpec({ vault: { auth: {} }, source: { kv } }),
    parseVaultSecretSpec({ vault: { auth: { jwt: { role: 'r', audiences: ['x'] } } }, source: { kv: { ...kv, version: 1, kvVersion: 1 } }, refresh: { interval: '1s' } }),
    parseVaultConnectionSpec({ address: 'ftp://vault', headers: { 'X-Vault-Token': 't' }, timeout: '1ms' }),
    parseVaultSecretSpec({ vault, source: { database: { role: 'r' } }, rolloutRestartTargets: [{ kind: 'Deployment' }] }),
  ].map((r) => (r.ok ? '' : r.message)).join('; ');
  for (const message of messages) assert.ok(produced.includes(message), `no zod error reads "${message}"`);
});

test('rejection messages never quote the rejected value', () => {
  const secretLooking = 's.SECRETTOKENVALUE';
  const result = parseVaultSecretSpec({ vault: { auth: { kubernetes: { role: 'r', serviceAccountName: secretLooking } } }, source: { kv: { ...kv, kvVersion: secretLooking } } });
  assert.equal(result.ok, false);
  if (!result.ok) assert.ok(!result.message.includes('SECRETTOKENVALUE'), result.message);
});

test('the parsed spec carries the defaults the operator relies on', () => {
  const result = parseVaultSecretSpec({ ...base, destination: {}, refresh: {} });
  assert.ok(result.ok);
  assert.deepEqual(result.spec.vault?.auth.kubernetes, {
    role: 'team-a', serviceAccountName: 'default', audiences: ['vault'], mount: 'kubernetes', tokenExpirationSeconds: 600,
  });
  assert.deepEqual(result.spec.destination, { type: 'Opaque', creationPolicy: 'Owner', deletionPolicy: 'Delete' });
  assert.deepEqual(result.spec.refresh, { interval: '1h' });
  // Defaults are fresh values: mutating one parse result does not leak into the next.
  result.spec.vault!.auth.kubernetes!.audiences.push('other');
  const again = parseVaultSecretSpec(base);
  assert.ok(again.ok);
  assert.deepEqual(again.spec.vault?.auth.kubernetes?.audiences, ['vault']);
});

test('VaultConnection specs', () => {
  const ok: unknown[] = [
    { address: 'https://vault.vault.svc:8200' },
    { address: 'http://127.0.0.1:8200', namespace: 'admin/', tlsServerName: 'vault', timeout: '5s', allowedNamespaces: ['*'], headers: { 'X-Proxy': 'a' } },
    { address: 'https://vault', caBundleSecretRef: { name: 'ca', key: 'bundle.pem' }, clientCertSecretRef: { name: 'client-tls' }, allowedNamespaces: ['team-a', 'team-b'] },
  ];
  for (const spec of ok) {
    const result = parseVaultConnectionSpec(spec);
    assert.ok(result.ok, result.ok ? '' : result.message);
  }
  const bad: [unknown, string][] = [
    [{}, 'spec.address: is required'],
    [{ address: 'vault:8200' }, 'spec.address: must be an http or https URL'],
    [{ address: 'ftp://vault' }, 'spec.address: must be an http or https URL'],
    [{ address: 'https://vault', headers: { authorization: 'Bearer x' } }, 'spec.headers: must not set Authorization or X-Vault-Token'],
    [{ address: 'https://vault', timeout: '0s' }, 'spec.timeout: must be at least 1s'],
    [{ address: 'https://vault', timeout: 'soon' }, 'spec.timeout: must be a duration'],
    [{ address: 'https://vault', allowedNamespaces: ['Team'] }, "spec.allowedNamespaces[0]: must be a namespace name (lowercase letters, digits and '-') or '*'"],
    [{ address: 'https://vault', allowedNamespaces: ['a', 'a'] }, 'spec.allowedNamespaces: must not contain the same entry twice'],
  ];
  for (const [spec, expected] of bad) {
    const result = parseVaultConnectionSpec(spec);
    assert.equal(result.ok, false, `accepted ${JSON.stringify(spec)}`);
    if (!result.ok) assert.ok(result.message.includes(expected), `${JSON.stringify(result.message)} does not include ${JSON.stringify(expected)}`);
  }
});

test('the VaultSecrets in examples/ are valid', () => {
  const dir = new URL('../../examples/', import.meta.url);
  const found: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(new URL(file, dir), 'utf8'))) {
      const obj = doc.toJS() as { kind?: string; spec?: unknown } | null;
      if (obj?.kind !== VAULTSECRET_KIND) continue;
      found.push(file);
      const result = parseVaultSecretSpec(obj.spec);
      assert.ok(result.ok, `examples/${file}: ${result.ok ? '' : result.message}`);
    }
  }
  assert.ok(found.length > 0, 'no VaultSecret found in examples/');
});
