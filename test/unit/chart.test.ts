// The Helm chart as a platform engineer relies on it: it lints, it renders what each value promises, its
// schema rejects a wrong value before anything reaches the cluster, and every value is documented. Renders
// with the real helm binary (HELM_BIN, fetched by `npm test`) and parses the output as YAML.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import type {
  V1ClusterRole, V1ClusterRoleBinding, V1CustomResourceDefinition, V1Deployment, V1PodDisruptionBudget,
  V1PolicyRule, V1Role, V1RoleBinding, V1Service, V1ServiceAccount,
} from '@kubernetes/client-node';
import { buildCrds, DURATION_PATTERN } from '../../src/api/index.ts';
import { DURATION_MAX_LENGTH } from '../../src/api/duration.ts';
import { ConfigSchema } from '../../src/config.ts';

const run = promisify(execFile);
const CHART = fileURLToPath(new URL('../../charts/vault-sync-operator/', import.meta.url));
const RELEASE = 'vso';
const NAMESPACE = 'vault-sync-system';
const FULLNAME = 'vso-vault-sync-operator';
const CHART_META = parse(readFileSync(`${CHART}Chart.yaml`, 'utf8')) as { version: string; appVersion: string };
const APP_VERSION = CHART_META.appVersion;

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Fails every test with the reason, rather than skipping: a skipped chart test reads like a passing one. */
function helmBin(): string {
  const bin = process.env.HELM_BIN;
  if (!bin) {
    throw new Error('HELM_BIN is not set: the chart tests run the real helm binary. Run them with `npm test`, or ' +
      '`eval "$(bash scripts/components.sh env)"` first (it fetches helm and prints HELM_BIN).');
  }
  return bin;
}

async function helm(args: string[]): Promise<string> {
  const bin = helmBin();
  try {
    const { stdout } = await run(bin, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

/** Runs a helm command that must fail; returns its error output. */
async function helmFails(args: string[]): Promise<string> {
  const bin = helmBin();
  try {
    await run(bin, args, { maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    return (err as { stderr: string }).stderr;
  }
  assert.fail(`helm ${args.join(' ')} succeeded, but it should have been rejected`);
}

function setArgs(values: Record<string, string>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
}

/** `helm template` with the given --set values, parsed into objects. */
async function render(values: Record<string, string> = {}): Promise<KubeObject[]> {
  const out = await helm(['template', RELEASE, CHART, '--namespace', NAMESPACE, ...setArgs(values)]);
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(out)) {
    assert.deepEqual(doc.errors, [], 'helm template printed invalid YAML');
    const obj = doc.toJS() as KubeObject | null;
    if (obj !== null) objects.push(obj);
  }
  return objects;
}

function ofKind<T>(objects: KubeObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as unknown as T[];
}

function only<T>(objects: KubeObject[], kind: string): T {
  const found = ofKind<T>(objects, kind);
  assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0]!;
}

function inventory(objects: KubeObject[]): string[] {
  return objects.map((o) => `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`).sort();
}

/** What the operator needs wherever it serves VaultSecrets, and nothing more. */
const OPERATOR_RULES: V1PolicyRule[] = [
  { apiGroups: ['vaultsync.dev'], resources: ['vaultsecrets', 'vaultconnections'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
  { apiGroups: ['vaultsync.dev'], resources: ['vaultsecrets/status', 'vaultconnections/status'], verbs: ['get', 'patch', 'update'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
  { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets'], verbs: ['get', 'list', 'patch'] },
];

/** In its own namespace: the leader-election Lease and the HMAC key Secret. */
const SELF_RULES: V1PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create'] },
];

test('helm lint passes, also with --strict, for the defaults and for namespaces mode', async () => {
  for (const extra of [[], setArgs({ 'rbac.mode': 'namespaces', 'rbac.watchNamespaces': '{team-a,team-b}' })]) {
    for (const strict of [[], ['--strict']]) {
      const out = await helm(['lint', ...strict, CHART, ...extra]);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/, out);
      assert.doesNotMatch(out, /\[(WARNING|ERROR)\]/, out);
    }
  }
});

test('the default render holds exactly the operator, its RBAC and the CRDs', async () => {
  const objects = await render();
  assert.deepEqual(inventory(objects), [
    `ClusterRole/${FULLNAME}`,
    `ClusterRoleBinding/${FULLNAME}`,
    'CustomResourceDefinition/vaultconnections.vaultsync.dev',
    'CustomResourceDefinition/vaultsecrets.vaultsync.dev',
    `Deployment/${NAMESPACE}/${FULLNAME}`,
    `PodDisruptionBudget/${NAMESPACE}/${FULLNAME}`,
    `Role/${NAMESPACE}/${FULLNAME}-self`,
    `RoleBinding/${NAMESPACE}/${FULLNAME}-self`,
    `Service/${NAMESPACE}/${FULLNAME}-metrics`,
    `ServiceAccount/${NAMESPACE}/${FULLNAME}`,
  ]);
  for (const o of objects) {
    assert.equal(o.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm', `${o.kind} ${o.metadata.name} lacks the chart's labels`);
    assert.equal(o.metadata.labels?.['app.kubernetes.io/instance'], RELEASE);
  }
});

test('the Deployment runs restricted: non-root, read-only root, no escalation, RuntimeDefault seccomp, no capabilities', async () => {
  const deployment = only<V1Deployment>(await render(), 'Deployment');
  const pod = deployment.spec!.template.spec!;
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  assert.ok((pod.securityContext?.runAsUser ?? 0) > 0, 'runs as a non-zero uid');
  assert.equal(pod.containers.length, 1);
  const container = pod.containers[0]!;
  assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
  assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL']);
  assert.equal(container.securityContext?.capabilities?.add, undefined);
  assert.equal(container.securityContext?.privileged, undefined);
  assert.equal(pod.hostNetwork, undefined);
  assert.ok(container.resources?.limits?.memory, 'a memory limit');
  assert.ok(container.resources?.requests?.cpu && container.resources.requests.memory, 'cpu and memory requests');
});

test('the Deployment probes /healthz and /readyz and configures the operator from values', async () => {
  const objects = await render();
  const deployment = only<V1Deployment>(objects, 'Deployment');
  const pod = deployment.spec!.template.spec!;
  const container = pod.containers[0]!;
  assert.equal(deployment.spec!.replicas, 2);
  assert.equal(container.image, `ghcr.io/vault-sync-operator/vault-sync-operator:${APP_VERSION}`);
  assert.deepEqual(container.ports, [{ name: 'metrics', containerPort: 8080 }, { name: 'health', containerPort: 8081 }]);
  assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port: 'health' });
  assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port: 'health' });
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
  assert.deepEqual(env, {
    VSYNC_OPERATOR_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
    VSYNC_CONCURRENCY: '32',
    VSYNC_LOG_LEVEL: 'info',
    VSYNC_METRICS_ADDRESS: '0.0.0.0:8080',
    VSYNC_HEALTH_ADDRESS: '0.0.0.0:8081',
    VSYNC_VAULT_TIMEOUT: '30s',
  });
  // The selector, the Service and the ServiceAccount all meet the pods.
  const podLabels = deployment.spec!.template.metadata!.labels!;
  for (const [k, v] of Object.entries(deployment.spec!.selector.matchLabels!)) assert.equal(podLabels[k], v);
  const service = only<V1Service>(objects, 'Service');
  for (const [k, v] of Object.entries(service.spec!.selector!)) assert.equal(podLabels[k], v);
  assert.deepEqual(service.spec!.ports, [{ name: 'metrics', port: 8080, targetPort: 'metrics' }]);
  assert.equal(pod.serviceAccountName, only<V1ServiceAccount>(objects, 'ServiceAccount').metadata!.name);
});

test('cluster mode: one ClusterRole with exactly the rules the operator needs, bound to its ServiceAccount', async () => {
  const objects = await render();
  assert.deepEqual(only<V1ClusterRole>(objects, 'ClusterRole').rules, OPERATOR_RULES);
  const binding = only<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding');
  assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: FULLNAME });
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NAMESPACE }]);
  const self = only<V1Role>(objects, 'Role');
  assert.equal(self.metadata!.namespace, NAMESPACE);
  assert.deepEqual(self.rules, SELF_RULES);
  const selfBinding = only<V1RoleBinding>(objects, 'RoleBinding');
  assert.deepEqual(selfBinding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${FULLNAME}-self` });
  assert.deepEqual(selfBinding.subjects, [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NAMESPACE }]);
});

test('the chart installs the generated CRDs unchanged, labelled by the chart and kept on uninstall', async () => {
  const crds = ofKind<V1CustomResourceDefinition>(await render(), 'CustomResourceDefinition');
  const generated = buildCrds();
  assert.deepEqual(crds.map((c) => c.metadata!.name).sort(), generated.map((c) => c.metadata.name).sort());
  for (const crd of crds) {
    assert.equal(crd.metadata!.annotations?.['helm.sh/resource-policy'], 'keep', `${crd.metadata!.name} would be deleted by helm uninstall`);
    assert.equal(crd.metadata!.labels?.['app.kubernetes.io/name'], 'vault-sync-operator');
    assert.equal(crd.metadata!.labels?.['helm.sh/chart'], `vault-sync-operator-${CHART_META.version}`);
    // Deep equality also proves the Liquid examples ("{{ secret.password }}") survive Go templating.
    const source = generated.find((c) => c.metadata.name === crd.metadata!.name)!;
    assert.deepEqual(crd.spec, source.spec, `${crd.metadata!.name} differs from crds/: run \`npm run gen:crds\``);
  }
});

test('crds.install=false renders no CRD', async () => {
  const objects = await render({ 'crds.install': 'false' });
  assert.deepEqual(ofKind(objects, 'CustomResourceDefinition'), []);
  assert.equal(ofKind(objects, 'Deployment').length, 1);
});

test('namespaces mode: a Role and RoleBinding in each watched namespace and no cluster-wide rights', async () => {
  const objects = await render({ 'rbac.mode': 'namespaces', 'rbac.watchNamespaces': '{team-a,team-b}' });
  assert.deepEqual(ofKind(objects, 'ClusterRole'), []);
  assert.deepEqual(ofKind(objects, 'ClusterRoleBinding'), []);
  const roles = ofKind<V1Role>(objects, 'Role');
  assert.deepEqual(roles.map((r) => `${r.metadata!.namespace}/${r.metadata!.name}`).sort(),
    [`team-a/${FULLNAME}`, `team-b/${FULLNAME}`, `${NAMESPACE}/${FULLNAME}-self`]);
  for (const ns of ['team-a', 'team-b']) {
    const role = roles.find((r) => r.metadata!.namespace === ns)!;
    assert.deepEqual(role.rules, OPERATOR_RULES);
    const binding = ofKind<V1RoleBinding>(objects, 'RoleBinding').find((b) => b.metadata!.namespace === ns);
    assert.ok(binding, `no RoleBinding in ${ns}`);
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: FULLNAME });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NAMESPACE }]);
  }
  assert.equal(ofKind(objects, 'RoleBinding').length, 3);
});

test('metrics.serviceMonitor.enabled=true renders a ServiceMonitor that selects the metrics Service', async () => {
  assert.deepEqual(ofKind(await render(), 'ServiceMonitor'), []);
  const objects = await render({ 'metrics.serviceMonitor.enabled': 'true', 'metrics.serviceMonitor.labels.release': 'prometheus', 'metrics.serviceMonitor.interval': '1m' });
  const monitor = only<KubeObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: unknown[] } }>(objects, 'ServiceMonitor');
  assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
  assert.equal(monitor.metadata.namespace, NAMESPACE);
  assert.equal(monitor.metadata.labels?.release, 'prometheus');
  assert.deepEqual(monitor.spec.endpoints, [{ port: 'metrics', interval: '1m' }]);
  const service = only<V1Service>(objects, 'Service');
  for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(service.metadata!.labels![k], v, `the ServiceMonitor misses the Service on ${k}`);
});

test('a PodDisruptionBudget only when more than one replica can honour it', async () => {
  const pdb = only<V1PodDisruptionBudget>(await render(), 'PodDisruptionBudget');
  assert.equal(pdb.spec!.minAvailable, 1);
  const deployment = only<V1Deployment>(await render(), 'Deployment');
  assert.deepEqual(pdb.spec!.selector!.matchLabels, deployment.spec!.selector.matchLabels);
  assert.deepEqual(ofKind(await render({ replicaCount: '1' }), 'PodDisruptionBudget'), []);
  assert.deepEqual(ofKind(await render({ 'podDisruptionBudget.enabled': 'false' }), 'PodDisruptionBudget'), []);
});

test('optional values reach the Deployment: Vault defaults, CA ConfigMap, scheduling, pull secrets', async () => {
  const objects = await render({
    'vault.address': 'https://vault.vault.svc:8200',
    'vault.namespace': 'team',
    'vault.caConfigMap': 'vault-ca',
    'vault.tlsServerName': 'vault.internal',
    'vault.timeout': '1m30s',
    'image.tag': 'v9',
    'imagePullSecrets[0].name': 'regcred',
    'nodeSelector.kubernetes\\.io/os': 'linux',
    'tolerations[0].key': 'dedicated',
    'tolerations[0].operator': 'Exists',
    'priorityClassName': 'system-cluster-critical',
    'podAnnotations.a': 'b',
    'podLabels.team': 'platform',
    'serviceAccount.create': 'false',
    'serviceAccount.name': 'existing',
    'metrics.service.enabled': 'false',
  });
  const deployment = only<V1Deployment>(objects, 'Deployment');
  const pod = deployment.spec!.template.spec!;
  const container = pod.containers[0]!;
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
  assert.equal(env.VSYNC_VAULT_ADDRESS, 'https://vault.vault.svc:8200');
  assert.equal(env.VSYNC_VAULT_NAMESPACE, 'team');
  assert.equal(env.VSYNC_VAULT_TLS_SERVER_NAME, 'vault.internal');
  assert.equal(env.VSYNC_VAULT_TIMEOUT, '1m30s');
  assert.equal(env.VSYNC_VAULT_CA_FILE, '/etc/vault-sync/ca/ca.crt');
  assert.deepEqual(container.volumeMounts, [{ name: 'vault-ca', mountPath: '/etc/vault-sync/ca', readOnly: true }]);
  assert.deepEqual(pod.volumes, [{ name: 'vault-ca', configMap: { name: 'vault-ca' } }]);
  assert.equal(container.image, 'ghcr.io/vault-sync-operator/vault-sync-operator:v9');
  assert.deepEqual(pod.imagePullSecrets, [{ name: 'regcred' }]);
  assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
  assert.deepEqual(pod.tolerations, [{ key: 'dedicated', operator: 'Exists' }]);
  assert.equal(pod.priorityClassName, 'system-cluster-critical');
  assert.deepEqual(deployment.spec!.template.metadata!.annotations, { a: 'b' });
  assert.equal(deployment.spec!.template.metadata!.labels!.team, 'platform');
  assert.equal(pod.serviceAccountName, 'existing');
  assert.deepEqual(ofKind(objects, 'ServiceAccount'), []);
  assert.deepEqual(ofKind(objects, 'Service'), []);
  assert.deepEqual(only<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding').subjects, [{ kind: 'ServiceAccount', name: 'existing', namespace: NAMESPACE }]);
});

test('the schema rejects a wrong value before anything is rendered, naming the value and what it accepts', async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'rbac.mode': 'bogus' }, /at '\/rbac\/mode': value must be one of 'cluster', 'namespaces'/],
    [{ logLevel: 'loud' }, /at '\/logLevel': value must be one of 'fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'/],
    [{ 'rbac.mode': 'namespaces' }, /at '\/rbac\/watchNamespaces': minItems/],
    [{ 'vault.timeout': 'soon' }, /at '\/vault\/timeout': 'soon' does not match pattern/],
    [{ 'vault.address': 'vault:8200' }, /at '\/vault\/address': 'vault:8200' does not match pattern/],
    [{ 'metrics.port': 'http' }, /at '\/metrics\/port': got string, want integer/],
    [{ 'health.port': '70000' }, /at '\/health\/port': maximum/],
    [{ concurrency: '0' }, /at '\/concurrency': minimum/],
    [{ 'podDisruptionBudget.minAvailable': 'half' }, /at '\/podDisruptionBudget\/minAvailable': 'half' does not match pattern/],
    [{ 'image.pullPolicy': 'Sometimes' }, /at '\/image\/pullPolicy': value must be one of/],
    // Typos are caught rather than silently ignored.
    [{ 'vault.adress': 'https://vault:8200' }, /at '\/vault': additional properties 'adress' not allowed/],
    [{ replicas: '3' }, /at '': additional properties 'replicas' not allowed/],
    [{ 'rbac.watchNamespace': '{a}' }, /at '\/rbac': additional properties 'watchNamespace' not allowed/],
  ];
  for (const [values, message] of cases) {
    const stderr = await helmFails(['template', RELEASE, CHART, ...setArgs(values)]);
    assert.match(stderr, /values don't meet the specifications of the schema/, stderr);
    assert.match(stderr, message, `${JSON.stringify(values)}: ${stderr}`);
  }
  // A parent chart's globals and a percentage PDB are fine.
  await render({ 'global.imageRegistry': 'example.com', 'podDisruptionBudget.minAvailable': '50%' });
});

// ---- values.yaml, values.schema.json and the templates agree ---------------------------------------------

type JsonSchema = {
  description?: string;
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  enum?: unknown[];
  pattern?: string;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  $ref?: string;
};

const schema = JSON.parse(readFileSync(`${CHART}values.schema.json`, 'utf8')) as JsonSchema & { definitions: Record<string, JsonSchema> };
const valuesText = readFileSync(`${CHART}values.yaml`, 'utf8');
const values = parse(valuesText) as Record<string, unknown>;

function resolve(node: JsonSchema): JsonSchema {
  return node.$ref ? { ...schema.definitions[node.$ref.replace('#/definitions/', '')], ...node } : node;
}

/** The schema of a dotted values path, or undefined where the schema does not declare it. */
function schemaAt(path: string): JsonSchema | undefined {
  let node: JsonSchema | undefined = schema;
  for (const part of path.split('.')) node = node?.properties?.[part] && resolve(node.properties[part]);
  return node;
}

/**
 * Dotted paths of the keys in values.yaml with the comment lines right above each (no blank line between),
 * read line by line as helm-docs reads them.
 */
function valuesKeyComments(): Map<string, string[]> {
  const result = new Map<string, string[]>();
  const stack: { indent: number; key: string }[] = [];
  let comments: string[] = [];
  for (const line of valuesText.split('\n')) {
    if (/^\s*#/.test(line)) {
      comments.push(line.trim());
      continue;
    }
    const key = /^(\s*)([A-Za-z0-9_]+):/.exec(line);
    if (key) {
      const indent = key[1]!.length;
      while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop();
      stack.push({ indent, key: key[2]! });
      result.set(stack.map((s) => s.key).join('.'), comments);
    }
    comments = [];
  }
  return result;
}

test('every value the chart defines has a `# --` comment in values.yaml and a description in the schema', () => {
  const undocumented: string[] = [];
  for (const [path, comments] of valuesKeyComments()) {
    const parent = path.includes('.') ? schemaAt(path.slice(0, path.lastIndexOf('.'))) : schema;
    // Inside a free-form object (resources, security contexts) the keys are Kubernetes fields, not chart values.
    if (!parent?.properties) continue;
    if (!comments.some((c) => c.startsWith('# -- '))) undocumented.push(`values.yaml: ${path} has no "# --" comment`);
    if (!schemaAt(path)) undocumented.push(`values.schema.json: ${path} is not declared`);
    else if (!schemaAt(path)!.description) undocumented.push(`values.schema.json: ${path} has no description`);
  }
  assert.deepEqual(undocumented, []);
});

test('the schema declares nothing values.yaml lacks, and rejects unknown keys wherever the chart defines the keys', () => {
  const problems: string[] = [];
  const walk = (node: JsonSchema, path: string, value: unknown): void => {
    if (!node.properties) return;
    if (node.additionalProperties !== false) problems.push(`${path || '(root)'}: additionalProperties must be false`);
    for (const [name, child] of Object.entries(node.properties)) {
      const childPath = path ? `${path}.${name}` : name;
      const childValue = (value as Record<string, unknown> | undefined)?.[name];
      if (childValue === undefined && childPath !== 'global') problems.push(`${childPath}: in the schema but not in values.yaml`);
      walk(resolve(child), childPath, childValue);
    }
  };
  walk(schema, '', values);
  assert.deepEqual(problems, []);
});

test("the schema accepts exactly what the operator's configuration accepts", () => {
  const logLevels = ConfigSchema.shape.logLevel.unwrap().options;
  assert.deepEqual(schemaAt('logLevel')!.enum, [...logLevels]);
  assert.equal(schemaAt('vault.timeout')!.pattern, DURATION_PATTERN);
  assert.equal(schemaAt('vault.timeout')!.maxLength, DURATION_MAX_LENGTH);
  assert.deepEqual([schemaAt('concurrency')!.minimum, schemaAt('concurrency')!.maximum], [1, 256]);
  assert.deepEqual(schemaAt('rbac.mode')!.enum, ['cluster', 'namespaces']);
});

test('every .Values reference in the templates exists in values.yaml', () => {
  const templates = `${CHART}templates/`;
  const missing: string[] = [];
  for (const file of readdirSync(templates)) {
    const text = readFileSync(templates + file, 'utf8');
    for (const [, path] of text.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)) {
      let node: unknown = values;
      for (const part of path!.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
      if (node === undefined) missing.push(`${file}: .Values.${path}`);
    }
  }
  assert.deepEqual(missing, []);
});
