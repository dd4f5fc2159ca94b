// The CRDs in crds/ are generated from the zod schemas: they must be current, structural, documented, and
// default exactly what zod defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { CHART_CRDS_TEMPLATE, CRD_DIR, renderChartCrdsTemplate, renderCrdFiles } from '../../scripts/gen-crds.ts';
import {
  buildCrds, VaultConnectionSpecSchema, VaultSecretSpecSchema, type CustomResourceDefinition,
} from '../../src/api/index.ts';
import type { JSONSchemaProps } from '../../src/api/structural.ts';

type Schema = JSONSchemaProps & Record<string, unknown>;

const crds = buildCrds();

function crd(plural: string): CustomResourceDefinition {
  const found = crds.find((c) => c.spec.names.plural === plural);
  assert.ok(found, `no CRD for ${plural}`);
  return found;
}

function rootSchema(plural: string): Schema {
  return crd(plural).spec.versions[0]!.schema.openAPIV3Schema as Schema;
}

function specSchema(plural: string): Schema {
  return rootSchema(plural).properties!.spec as Schema;
}

function at(schema: Schema, path: string): Schema {
  let node = schema;
  for (const part of path.split('.')) {
    const next = part === '[]' ? node.items : node.properties?.[part];
    assert.ok(next, `schema has no ${path}`);
    node = next as Schema;
  }
  return node;
}

test('crds/ holds exactly the generated CRDs (run `npm run gen:crds` after changing src/api)', () => {
  const expected = renderCrdFiles();
  const onDisk = readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml')).sort();
  assert.deepEqual(onDisk, [...expected.keys()].sort(), 'crds/ has missing or extra files: run `npm run gen:crds`');
  for (const [name, text] of expected) {
    assert.ok(readFileSync(CRD_DIR + name, 'utf8') === text, `crds/${name} is stale: run \`npm run gen:crds\``);
  }
});

test('the chart\'s templates/crds.yaml holds the same generated CRDs (run `npm run gen:crds` after changing src/api)', () => {
  assert.ok(readFileSync(CHART_CRDS_TEMPLATE, 'utf8') === renderChartCrdsTemplate(),
    'charts/vault-sync-operator/templates/crds.yaml is stale: run `npm run gen:crds`');
});

// ---- structural ------------------------------------------------------------------------------------------

const ALLOWED_KEYS = new Set([
  'type', 'description', 'format', 'properties', 'required', 'items', 'additionalProperties', 'default', 'enum',
  'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems',
  'maxItems', 'minProperties', 'maxProperties', 'x-kubernetes-validations', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string',
  'x-kubernetes-embedded-resource',
]);
const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

/** Returns the problems found in a schema node and its children; [] means structural. */
function structuralProblems(node: Schema, path: string, isProperty: boolean): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(node)) {
    if (!ALLOWED_KEYS.has(key)) problems.push(`${path}: "${key}" is not allowed in a structural schema`);
  }
  const untyped = node['x-kubernetes-int-or-string'] === true || node['x-kubernetes-preserve-unknown-fields'] === true;
  if (!untyped && !TYPES.has(node.type as string)) problems.push(`${path}: needs a type`);
  if (node.properties && node.additionalProperties !== undefined) problems.push(`${path}: properties next to additionalProperties`);
  if (typeof node.additionalProperties === 'boolean') problems.push(`${path}: additionalProperties must be a schema`);
  if (node.properties && node.type !== 'object') problems.push(`${path}: properties on a non-object`);
  if (node.items && node.type !== 'array') problems.push(`${path}: items on a non-array`);
  if (node.type === 'array' && !node.items) problems.push(`${path}: array without items`);
  if (isProperty && path !== 'metadata' && !node.description) problems.push(`${path}: no description (kubectl explain shows nothing)`);
  for (const r of node.required ?? []) if (!node.properties?.[r]) problems.push(`${path}: required "${r}" is not a property`);
  if (node.pattern && /\(\?[=!<]|\\[1-9]/.test(node.pattern)) problems.push(`${path}: pattern is not RE2`);
  if (node['x-kubernetes-list-type'] === 'map') {
    for (const k of node['x-kubernetes-list-map-keys'] ?? []) {
      if (!node.items?.required?.includes(k)) problems.push(`${path}: list map key "${k}" must be required`);
    }
  }
  if (node['x-kubernetes-list-type'] === 'set' && node.items?.type === 'object') problems.push(`${path}: a set of objects`);
  for (const v of node['x-kubernetes-validations'] ?? []) {
    if (!v.rule || !v.message) problems.push(`${path}: validation rule without rule or message`);
  }
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    problems.push(...structuralProblems(child as Schema, path === '' ? name : `${path}.${name}`, true));
  }
  if (node.items) problems.push(...structuralProblems(node.items as Schema, `${path}[]`, false));
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    problems.push(...structuralProblems(node.additionalProperties as Schema, `${path}{}`, false));
  }
  return problems;
}

for (const c of crds) {
  test(`${c.metadata.name}: the schema is structural and every field is documented`, () => {
    assert.equal(c.spec.versions.length, 1);
    const root = rootSchema(c.spec.names.plural);
    assert.deepEqual(structuralProblems(root, '', false), []);
    assert.deepEqual(root.properties!.metadata, { type: 'object' }, 'metadata must not be constrained beyond its type');
    assert.ok(root.required?.includes('spec'));
    assert.deepEqual(c.spec.versions[0]!.subresources, { status: {} });
  });
}

test('the checker catches what the API server would reject', () => {
  const bad: Schema = {
    type: 'object',
    description: 'x',
    properties: {
      a: { anyOf: [{ type: 'string' }, { type: 'integer' }] } as Schema,
      b: { description: 'b', type: 'object', properties: {}, additionalProperties: { type: 'string' } },
      c: { description: 'c', type: 'string', pattern: '^(?!x)' },
      d: { type: 'string' },
    },
  };
  const problems = structuralProblems(bad, '', false);
  assert.ok(problems.some((p) => p.includes('"anyOf"')));
  assert.ok(problems.some((p) => p.startsWith('a: needs a type')));
  assert.ok(problems.some((p) => p.startsWith('b: properties next to additionalProperties')));
  assert.ok(problems.some((p) => p.startsWith('c: pattern is not RE2')));
  assert.ok(problems.some((p) => p.startsWith('d: no description')));
});

test('every exactly-one-of rule names every sibling, so a new source or auth kind cannot be forgotten', () => {
  const cases = [
    [specSchema('vaultsecrets'), 'source'],
    [specSchema('vaultsecrets'), 'vault.auth'],
  ] as const;
  for (const [schema, path] of cases) {
    const node = at(schema, path);
    const fields = Object.keys(node.properties!);
    const rule = node['x-kubernetes-validations']?.find((v) => v.rule.endsWith('.filter(x, x).size() == 1'));
    assert.ok(rule, `${path} has no exactly-one-of rule`);
    assert.equal(rule.rule, `[${fields.map((f) => `has(self.${f})`).join(', ')}].filter(x, x).size() == 1`);
    assert.equal(node.required, undefined, `${path}: a one-of member must not be required`);
  }
});

test('printer columns show readiness, the Secret and the last sync', () => {
  const columns = crd('vaultsecrets').spec.versions[0]!.additionalPrinterColumns;
  assert.deepEqual(columns.map((c) => [c.name, c.type, c.jsonPath]), [
    ['Ready', 'string', '.status.conditions[?(@.type=="Ready")].status'],
    ['Reason', 'string', '.status.conditions[?(@.type=="Ready")].reason'],
    ['Secret', 'string', '.status.secretName'],
    ['Last sync', 'date', '.status.lastSyncTime'],
    ['Age', 'date', '.metadata.creationTimestamp'],
  ]);
  assert.deepEqual(crd('vaultsecrets').spec.names.shortNames, ['vs']);
  assert.deepEqual(crd('vaultconnections').spec.names.shortNames, ['vconn']);
  const conditions = at(rootSchema('vaultsecrets'), 'status.conditions');
  assert.equal(conditions['x-kubernetes-list-type'], 'map');
  assert.deepEqual(conditions['x-kubernetes-list-map-keys'], ['type']);
});

// ---- defaults: the API server's and zod's must agree ------------------------------------------------------

/**
 * Defaulting as the API server does it: top-down, a missing property with a default gets it, and the
 * defaulted value is defaulted in turn. Records the path of every default applied.
 */
function applyCrdDefaults(schema: Schema, value: unknown, path: string, applied: Set<string>): unknown {
  if (Array.isArray(value)) return value.map((v) => (schema.items ? applyCrdDefaults(schema.items as Schema, v, `${path}[]`, applied) : v));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  if (schema.properties) {
    for (const [name, child] of Object.entries(schema.properties)) {
      if (out[name] === undefined && child.default !== undefined) {
        out[name] = structuredClone(child.default);
        applied.add(`${path}.${name}`);
      }
      if (out[name] !== undefined) out[name] = applyCrdDefaults(child as Schema, out[name], `${path}.${name}`, applied);
    }
  } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    for (const [k, v] of Object.entries(out)) out[k] = applyCrdDefaults(schema.additionalProperties as Schema, v, `${path}{}`, applied);
  }
  return out;
}

function defaultPaths(schema: Schema, path: string, into: Set<string>): Set<string> {
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    if (child.default !== undefined) into.add(`${path}.${name}`);
    defaultPaths(child as Schema, `${path}.${name}`, into);
  }
  if (schema.items) defaultPaths(schema.items as Schema, `${path}[]`, into);
  return into;
}

const kv = { mount: 'secret', path: 'team/app' };
/** Every optional object present and empty where possible, so every default in the schema is reached. */
const minimalVaultSecretSpecs = [
  { vault: { auth: { kubernetes: { role: 'app' } } }, source: { kv }, destination: {}, template: { data: {} }, refresh: {} },
  { vault: { auth: { jwt: { role: 'app', serviceAccountName: 'app' } }, connectionRef: { name: 'vault' } }, source: { kvMerge: { sources: [kv, kv] } } },
  { vault: { auth: { appRole: { roleId: 'r', secretIdRef: { name: 's', key: 'id' } } } }, source: { kv } },
  { vault: { auth: { token: { secretRef: { name: 's' } } } }, source: { kv } },
  { vault: { auth: { kubernetes: { role: 'app' } } }, source: { database: { role: 'app' } }, leases: {} },
  { vault: { auth: { kubernetes: { role: 'app' } } }, source: { dynamic: { path: 'pki/issue/web' } }, rolloutRestartTargets: [{ kind: 'Deployment', name: 'web' }] },
];
const minimalVaultConnectionSpecs = [
  { address: 'https://vault:8200', caBundleSecretRef: { name: 'ca' }, clientCertSecretRef: { name: 'tls' }, headers: {} },
];

test('zod applies exactly the defaults the CRD declares', () => {
  const cases = [
    ['vaultsecrets', VaultSecretSpecSchema, minimalVaultSecretSpecs],
    ['vaultconnections', VaultConnectionSpecSchema, minimalVaultConnectionSpecs],
  ] as const;
  for (const [plural, zodSchema, specs] of cases) {
    const schema = specSchema(plural);
    const applied = new Set<string>();
    for (const spec of specs) {
      const byServer = applyCrdDefaults(schema, spec, 'spec', applied);
      const byZod = zodSchema.parse(spec);
      assert.deepEqual(byZod, byServer, `${plural}: zod's defaults differ from the CRD's for ${JSON.stringify(spec)}`);
    }
    assert.deepEqual([...applied].sort(), [...defaultPaths(schema, 'spec', new Set())].sort(),
      `${plural}: the minimal specs must reach every default in the schema`);
  }
});

test('the documented defaults', () => {
  const spec = specSchema('vaultsecrets');
  const defaults = Object.fromEntries([...defaultPaths(spec, 'spec', new Set())].map((p) => [p, at(spec, p.slice('spec.'.length).replaceAll('[]', '.[]')).default]));
  assert.deepEqual(defaults, {
    'spec.vault.auth.kubernetes.serviceAccountName': 'default',
    'spec.vault.auth.kubernetes.audiences': ['vault'],
    'spec.vault.auth.kubernetes.mount': 'kubernetes',
    'spec.vault.auth.kubernetes.tokenExpirationSeconds': 600,
    'spec.vault.auth.jwt.mount': 'jwt',
    'spec.vault.auth.appRole.mount': 'approle',
    'spec.vault.auth.token.secretRef.key': 'token',
    'spec.destination.type': 'Opaque',
    'spec.destination.creationPolicy': 'Owner',
    'spec.destination.deletionPolicy': 'Delete',
    'spec.template.includeSourceKeys': false,
    'spec.refresh.interval': '1h',
    'spec.source.database.mount': 'database',
    'spec.source.database.static': false,
    'spec.source.dynamic.method': 'GET',
    'spec.leases.renewFraction': 0.67,
    'spec.leases.revokeGracePeriod': '5m',
    'spec.leases.revokeOnDelete': true,
  });
  const conn = specSchema('vaultconnections');
  assert.equal(at(conn, 'timeout').default, '30s');
  assert.equal(at(conn, 'caBundleSecretRef.key').default, 'ca.crt');
});
