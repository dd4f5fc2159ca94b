// The Helm chart against the real API server: every object it renders is validated and stored by the server
// (server-side apply with strict field validation), an upgrade with changed values converges, and uninstalling
// leaves the CRDs and users' VaultSecrets in place. The operator's pods never run (the stack has no kubelet),
// so these tests assert the objects, not pod readiness.
//
// Taking over CRDs someone applied with kubectl (as test/support/vaultsync.ts does, and as a user upgrading
// from `kubectl apply -f crds/` would have) needs two Helm 4 flags, verified against Helm 4.1:
//   --take-ownership   the CRDs carry no Helm ownership metadata (or, after an uninstall that kept them, that
//                      of the old release), and Helm refuses to adopt them otherwise;
//   --force-conflicts  Helm 4 applies server-side as field manager "helm", and kubectl's field manager owns
//                      .spec.versions: applying a different schema conflicts unless Helm forces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PolicyV1Api, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { eventually, kubeClients, stackEnv, testNamespace, uniqueSuffix } from '../support/stack.ts';
import { GROUP, createVaultSecret, getVaultSecret, installCrds } from '../support/vaultsync.ts';

const run = promisify(execFile);
const CHART = fileURLToPath(new URL('../../charts/vault-sync-operator/', import.meta.url));
const CRD_NAMES = [`vaultsecrets.${GROUP}`, `vaultconnections.${GROUP}`];
/** What a user upgrading from kubectl-applied CRDs runs; see the comment at the top. */
const TAKE_OVER_CRDS = ['--take-ownership', '--force-conflicts'];

function bin(name: 'HELM_BIN' | 'KUBECTL_BIN'): string {
  const path = process.env[name];
  if (!path) throw new Error(`${name} is not set: run the tests with \`npm test\`, which fetches helm and kubectl`);
  return path;
}

interface Result { code: number; stdout: string; stderr: string }

/** Runs helm or kubectl against the stack; resolves with the exit code and output, also on failure. */
async function exec(name: 'HELM_BIN' | 'KUBECTL_BIN', args: string[], input?: string): Promise<Result> {
  const env = { ...process.env, KUBECONFIG: stackEnv().KUBECONFIG };
  const promise = run(bin(name), args, { env, maxBuffer: 64 * 1024 * 1024 });
  if (input !== undefined) promise.child.stdin!.end(input);
  try {
    const { stdout, stderr } = await promise;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

async function helm(args: string[]): Promise<string> {
  const r = await exec('HELM_BIN', args);
  assert.equal(r.code, 0, `helm ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

function setArgs(values: Record<string, string>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
}

/** A release that is uninstalled after the test, whatever happened (ClusterRoles outlive namespaces). */
function release(t: { after(fn: () => Promise<void>): void }, namespace: string): string {
  const name = `vso-${uniqueSuffix()}`;
  t.after(async () => {
    await exec('HELM_BIN', ['uninstall', name, '--namespace', namespace, '--ignore-not-found']);
  });
  return name;
}

async function releaseStatus(name: string, namespace: string): Promise<{ status: string; revision: number }> {
  const status = JSON.parse(await helm(['status', name, '--namespace', namespace, '-o', 'json'])) as { version: number; info: { status: string } };
  return { status: status.info.status, revision: status.version };
}

async function notFound(what: string, read: () => Promise<unknown>): Promise<void> {
  await eventually(`${what} to be gone`, async () => {
    try {
      await read();
      return undefined;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return true;
      throw err;
    }
  });
}

async function readCrds(): Promise<V1CustomResourceDefinition[]> {
  const { apiext } = kubeClients();
  return Promise.all(CRD_NAMES.map((name) => apiext.readCustomResourceDefinition({ name })));
}

function established(crd: V1CustomResourceDefinition): boolean {
  return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
}

/** A binding's subjects as plain objects (the client returns class instances). */
function subjects(binding: { subjects?: { kind: string; name: string; namespace?: string }[] }) {
  return (binding.subjects ?? []).map(({ kind, name, namespace }) => ({ kind, name, namespace }));
}

const MINIMAL_VAULTSECRET = { vault: { auth: { kubernetes: { role: 'app' } } }, source: { kv: { mount: 'secret', path: 'team/app' } } };

test('install over kubectl-applied CRDs, upgrade with changed values, uninstall keeping CRDs and VaultSecrets', async (t) => {
  const { apps, core, rbac, kc } = kubeClients();
  const policy = kc.makeApiClient(PolicyV1Api);
  const ns = await testNamespace('chart', t);
  const teamA = await testNamespace('chart-team-a', t);
  const teamB = await testNamespace('chart-team-b', t);
  await installCrds();
  const name = release(t, ns);
  const fullname = `${name}-vault-sync-operator`;

  // Helm 4.1 refuses to adopt objects it did not create, so the takeover needs --take-ownership.
  const refused = await exec('HELM_BIN', ['install', name, CHART, '--namespace', ns]);
  assert.notEqual(refused.code, 0, 'helm adopted kubectl-applied CRDs without --take-ownership');
  assert.match(refused.stderr, /CustomResourceDefinition "vault\w+\.vaultsync\.dev" .*exists and cannot be imported into the current release: invalid ownership metadata/);

  await helm(['install', name, CHART, '--namespace', ns, ...TAKE_OVER_CRDS]);
  assert.deepEqual(await releaseStatus(name, ns), { status: 'deployed', revision: 1 });

  // Every object exists as the server stored it.
  const deployment = await apps.readNamespacedDeployment({ name: fullname, namespace: ns });
  assert.equal(deployment.spec!.replicas, 2);
  const container = deployment.spec!.template.spec!.containers[0]!;
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
  assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL']);
  assert.equal(deployment.spec!.template.spec!.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
  assert.equal(deployment.spec!.template.spec!.serviceAccountName, fullname);
  await core.readNamespacedServiceAccount({ name: fullname, namespace: ns });
  await core.readNamespacedService({ name: `${fullname}-metrics`, namespace: ns });
  const pdb = await policy.readNamespacedPodDisruptionBudget({ name: fullname, namespace: ns });
  assert.equal(pdb.spec!.minAvailable, 1);
  const clusterRole = await rbac.readClusterRole({ name: fullname });
  assert.ok(clusterRole.rules!.some((r) => r.resources!.includes('vaultsecrets') && r.verbs.includes('watch')));
  const clusterBinding = await rbac.readClusterRoleBinding({ name: fullname });
  assert.deepEqual(subjects(clusterBinding), [{ kind: 'ServiceAccount', name: fullname, namespace: ns }]);
  await rbac.readNamespacedRole({ name: `${fullname}-self`, namespace: ns });
  await rbac.readNamespacedRoleBinding({ name: `${fullname}-self`, namespace: ns });
  for (const crd of await readCrds()) {
    assert.ok(established(crd), `${crd.metadata!.name} is not established`);
    assert.equal(crd.metadata!.annotations?.['helm.sh/resource-policy'], 'keep');
    assert.equal(crd.metadata!.annotations?.['meta.helm.sh/release-name'], name, `${crd.metadata!.name} was not adopted by the release`);
    assert.ok(crd.metadata!.managedFields!.some((f) => f.manager === 'helm'), `helm manages no field of ${crd.metadata!.name}`);
  }

  // A user's VaultSecret, which must survive everything the chart does.
  await createVaultSecret(teamA, 'app', MINIMAL_VAULTSECRET);

  await helm(['upgrade', name, CHART, '--namespace', ns, ...setArgs({
    'rbac.mode': 'namespaces',
    'rbac.watchNamespaces': `{${teamA},${teamB}}`,
    replicaCount: '1',
    logLevel: 'debug',
    'vault.address': 'https://vault.vault.svc:8200',
  })]);
  assert.deepEqual(await releaseStatus(name, ns), { status: 'deployed', revision: 2 });
  const upgraded = await apps.readNamespacedDeployment({ name: fullname, namespace: ns });
  assert.equal(upgraded.spec!.replicas, 1);
  const env = Object.fromEntries(upgraded.spec!.template.spec!.containers[0]!.env!.map((e) => [e.name, e.value]));
  assert.equal(env.VSYNC_LOG_LEVEL, 'debug');
  assert.equal(env.VSYNC_VAULT_ADDRESS, 'https://vault.vault.svc:8200');
  for (const team of [teamA, teamB]) {
    const role = await rbac.readNamespacedRole({ name: fullname, namespace: team });
    assert.ok(role.rules!.some((r) => r.resources!.includes('secrets')), `the Role in ${team} cannot write Secrets`);
    const binding = await rbac.readNamespacedRoleBinding({ name: fullname, namespace: team });
    assert.deepEqual(subjects(binding), [{ kind: 'ServiceAccount', name: fullname, namespace: ns }]);
  }
  await notFound('the ClusterRole', () => rbac.readClusterRole({ name: fullname }));
  await notFound('the ClusterRoleBinding', () => rbac.readClusterRoleBinding({ name: fullname }));
  await notFound('the PodDisruptionBudget (one replica)', () => policy.readNamespacedPodDisruptionBudget({ name: fullname, namespace: ns }));

  const uninstalled = await helm(['uninstall', name, '--namespace', ns]);
  assert.match(uninstalled, /kept due to the resource policy/);
  await notFound('the Deployment', () => apps.readNamespacedDeployment({ name: fullname, namespace: ns }));
  await notFound(`the Role in ${teamA}`, () => rbac.readNamespacedRole({ name: fullname, namespace: teamA }));
  for (const crd of await readCrds()) assert.ok(established(crd), `${crd.metadata!.name} did not survive the uninstall`);
  const survivor = await getVaultSecret(teamA, 'app');
  assert.deepEqual(survivor.spec.source, MINIMAL_VAULTSECRET.source);
});

test('an upgrade with crds.install=false keeps the CRDs, and a reinstall adopts CRDs a removed release kept', async (t) => {
  const ns = await testNamespace('chart-keep', t);
  await installCrds();
  const first = release(t, ns);
  await helm(['install', first, CHART, '--namespace', ns, ...TAKE_OVER_CRDS]);
  await helm(['upgrade', first, CHART, '--namespace', ns, '--set', 'crds.install=false']);
  const manifest = await helm(['get', 'manifest', first, '--namespace', ns]);
  assert.doesNotMatch(manifest, /kind: CustomResourceDefinition/);
  for (const crd of await readCrds()) assert.ok(established(crd), `${crd.metadata!.name} was deleted by the upgrade`);
  await helm(['uninstall', first, '--namespace', ns]);

  // The kept CRDs still name the first release; without --take-ownership Helm refuses them.
  for (const crd of await readCrds()) assert.equal(crd.metadata!.annotations?.['meta.helm.sh/release-name'], first);
  const second = release(t, ns);
  const refused = await exec('HELM_BIN', ['install', second, CHART, '--namespace', ns]);
  assert.match(refused.stderr, /key "meta\.helm\.sh\/release-name" must equal "[^"]+": current value is "[^"]+"/);
  await helm(['install', second, CHART, '--namespace', ns, '--take-ownership']);
  for (const crd of await readCrds()) assert.equal(crd.metadata!.annotations?.['meta.helm.sh/release-name'], second);
  await helm(['uninstall', second, '--namespace', ns]);
  for (const crd of await readCrds()) assert.ok(established(crd));
});

test('the API server accepts every object of a render with every optional value set', async (t) => {
  const ns = await testNamespace('chart-full', t);
  const teamA = await testNamespace('chart-full-a', t);
  const teamB = await testNamespace('chart-full-b', t);
  const values = {
    'rbac.mode': 'namespaces',
    'rbac.watchNamespaces': `{${teamA},${teamB}}`,
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
    'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key': 'kubernetes.io/arch',
    'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator': 'In',
    'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]': 'amd64',
    priorityClassName: 'system-cluster-critical',
    'podAnnotations.example\\.com/owner': 'platform',
    'podLabels.team': 'platform',
    'serviceAccount.annotations.example\\.com/role': 'operator',
    'podDisruptionBudget.minAvailable': '50%',
    'resources.limits.cpu': '1',
  };
  const name = `vso-${uniqueSuffix()}`;
  const fullname = `${name}-vault-sync-operator`;
  const rendered = await helm(['template', name, CHART, '--namespace', ns, ...setArgs(values)]);
  // Server-side apply validates every field against the server's schema (unknown fields are errors), and the
  // dry run stores nothing. --force-conflicts: the CRDs may belong to a release of another test.
  const applied = await exec('KUBECTL_BIN', ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'], rendered);
  assert.equal(applied.code, 0, `the API server rejected the render:\n${applied.stderr}`);
  const lines = applied.stdout.trim().split('\n');
  for (const line of lines) assert.match(line, / serverside-applied \(server dry run\)$/);
  assert.deepEqual(lines.map((line) => line.split(' ')[0]).sort(), [
    `customresourcedefinition.apiextensions.k8s.io/vaultconnections.${GROUP}`,
    `customresourcedefinition.apiextensions.k8s.io/vaultsecrets.${GROUP}`,
    `deployment.apps/${fullname}`,
    `poddisruptionbudget.policy/${fullname}`,
    `role.rbac.authorization.k8s.io/${fullname}`, // in teamA
    `role.rbac.authorization.k8s.io/${fullname}`, // in teamB
    `role.rbac.authorization.k8s.io/${fullname}-self`,
    `rolebinding.rbac.authorization.k8s.io/${fullname}`,
    `rolebinding.rbac.authorization.k8s.io/${fullname}`,
    `rolebinding.rbac.authorization.k8s.io/${fullname}-self`,
    `service/${fullname}-metrics`,
    `serviceaccount/${fullname}`,
  ].sort());
});
