// Helpers for VaultSecret integration tests: install the CRDs as a user would (kubectl apply), give a
// namespace its own Vault role and policy (KV or dynamic database credentials), create VaultSecrets and
// workloads, wait for and read what a user would check (Secrets, logins, Vault leases, database roles).
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { V1Secret } from '@kubernetes/client-node';
import { DATABASE_MOUNT, KUBERNETES_AUTH_MOUNT, KV1_MOUNT, KV2_MOUNT, putDatabaseRole } from '../../devstack/configure.ts';
import { eventually, kubeClients, pgAdmin, pgLogin, stackEnv, vaultAdmin } from './stack.ts';

const run = promisify(execFile);
export const GROUP = 'vaultsync.dev';
export const VERSION = 'v1alpha1';
const CRDS = fileURLToPath(new URL('../../crds/', import.meta.url));

export async function installCrds(): Promise<void> {
  const kubectl = process.env.KUBECTL_BIN;
  if (!kubectl) throw new Error('KUBECTL_BIN is not set: run the tests with `npm test`, which fetches kubectl');
  await run(kubectl, ['apply', '--server-side', '--force-conflicts', '-f', CRDS], { env: { ...process.env, KUBECONFIG: stackEnv().KUBECONFIG } });
  const { apiext } = kubeClients();
  for (const name of [`vaultsecrets.${GROUP}`, `vaultconnections.${GROUP}`]) {
    await eventually(`CRD ${name} established`, async () => {
      const crd = await apiext.readCustomResourceDefinition({ name });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  }
}

/**
 * Gives namespace `ns` a Vault role (bound to its `default` ServiceAccount) whose policy reads only
 * secret/<ns>/* (KV v2) and kv1/<ns>/* (KV v1): the per-team isolation a platform team would set up.
 */
export async function tenantRole(ns: string): Promise<string> {
  const vault = vaultAdmin();
  const role = `tenant-${ns}`;
  await vault.putPolicy(role, [
    `path "${KV2_MOUNT}/data/${ns}/*" { capabilities = ["read"] }`,
    `path "${KV1_MOUNT}/${ns}/*" { capabilities = ["read"] }`,
  ].join('\n'));
  await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/role/${role}`, {
    bound_service_account_names: ['default'],
    bound_service_account_namespaces: [ns],
    audience: 'vault',
    token_policies: [role],
    token_ttl: '20m',
    token_max_ttl: '1h',
  });
  // The ServiceAccount controller creates `default` shortly after the namespace.
  const { core } = kubeClients();
  await eventually(`ServiceAccount ${ns}/default`, () => core.readNamespacedServiceAccount({ name: 'default', namespace: ns }));
  return role;
}

export async function putKv2(path: string, data: Record<string, unknown>): Promise<number> {
  const res = await vaultAdmin().write(`${KV2_MOUNT}/data/${path}`, { data });
  return res.data.version as number;
}

export async function putKv1(path: string, data: Record<string, unknown>): Promise<void> {
  await vaultAdmin().write(`${KV1_MOUNT}/${path}`, data);
}

export function kubernetesAuth(role: string) {
  return { auth: { kubernetes: { role } } };
}

export async function createVaultSecret(ns: string, name: string, spec: Record<string, unknown>, annotations?: Record<string, string>) {
  const { custom } = kubeClients();
  return custom.createNamespacedCustomObject({
    group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'VaultSecret', metadata: { name, annotations }, spec },
  });
}

export async function getVaultSecret(ns: string, name: string): Promise<any> {
  const { custom } = kubeClients();
  return custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'vaultsecrets', name });
}

export function condition(vs: any, type: string): { status: string; reason: string; message: string } | undefined {
  return vs?.status?.conditions?.find((c: any) => c.type === type);
}

export async function waitForCondition(ns: string, name: string, type: string, status: string, reason?: string, timeoutMs = 30_000) {
  return eventually(`VaultSecret ${ns}/${name} ${type}=${status}${reason ? ` (${reason})` : ''}`, async () => {
    const vs = await getVaultSecret(ns, name);
    const c = condition(vs, type);
    return c && c.status === status && (!reason || c.reason === reason) && vs.status.observedGeneration === vs.metadata.generation ? vs : undefined;
  }, timeoutMs);
}

export async function readSecret(ns: string, name: string): Promise<V1Secret | undefined> {
  const { core } = kubeClients();
  try {
    return await core.readNamespacedSecret({ name, namespace: ns });
  } catch (err: any) {
    if (err.code === 404) return undefined;
    throw err;
  }
}

export function decoded(secret: V1Secret | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

export async function waitForSecretData(ns: string, name: string, want: Record<string, string>, timeoutMs = 30_000) {
  return eventually(`Secret ${ns}/${name} to hold ${JSON.stringify(Object.keys(want))}`, async () => {
    const secret = await readSecret(ns, name);
    const data = decoded(secret);
    return Object.entries(want).every(([k, v]) => data[k] === v) ? secret : undefined;
  }, timeoutMs);
}

export async function eventsFor(ns: string, name: string) {
  const { core } = kubeClients();
  const list = await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
  return list.items;
}

/**
 * A dynamic PostgreSQL role with the given TTLs and a Vault role for namespace `ns` allowed to use it (and to
 * renew and revoke its leases). The database role's name starts with the namespace's random suffix: Vault's
 * default username template keeps only the first 8 characters of the role name, and those must tell this
 * test's PostgreSQL users apart from every other test's (see pgRolesFor).
 */
export async function databaseTenant(ns: string, ttl: { defaultTtl: string; maxTtl: string }): Promise<{ dbRole: string; vaultRole: string }> {
  const vault = vaultAdmin();
  const dbRole = `${ns.slice(-6)}-${ns}`;
  await putDatabaseRole(vault, dbRole, ttl);
  const vaultRole = `dbtenant-${ns}`;
  await vault.putPolicy(vaultRole, [
    `path "${DATABASE_MOUNT}/creds/${dbRole}" { capabilities = ["read"] }`,
    'path "sys/leases/renew" { capabilities = ["update"] }',
    'path "sys/leases/revoke" { capabilities = ["update"] }',
  ].join('\n'));
  await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/role/${vaultRole}`, {
    bound_service_account_names: ['default'], bound_service_account_namespaces: [ns], audience: 'vault',
    token_policies: [vaultRole], token_ttl: '1h', token_max_ttl: '2h',
  });
  const { core } = kubeClients();
  await eventually(`ServiceAccount ${ns}/default`, () => core.readNamespacedServiceAccount({ name: 'default', namespace: ns }));
  return { dbRole, vaultRole };
}

/** A VaultSecret spec for database credentials from `dbRole`, logging in with `vaultRole`. */
export function dbSpec(vaultRole: string, dbRole: string, extra: Record<string, unknown> = {}) {
  return { vault: { auth: { kubernetes: { role: vaultRole } } }, source: { database: { role: dbRole } }, ...extra };
}

export async function credentials(ns: string, name: string): Promise<{ username: string; password: string }> {
  const data = decoded(await readSecret(ns, name));
  return { username: data.username!, password: data.password! };
}

export async function canLogin(creds: { username: string; password: string }): Promise<boolean> {
  try {
    const session = await pgLogin(creds.username, creds.password);
    await session.end();
    return true;
  } catch {
    return false;
  }
}

/**
 * PostgreSQL users Vault created for a database role. Vault's default username template is
 * v-<display name, 8 chars>-<role name, 8 chars>-<random>-<unix time>.
 */
export async function pgRolesFor(dbRole: string): Promise<string[]> {
  const admin = await pgAdmin();
  try {
    const res = await admin.query('select rolname from pg_roles where rolname like $1 order by rolname', [`v-%-${dbRole.slice(0, 8)}-%`]);
    return res.rows.map((r) => r.rolname as string);
  } finally {
    await admin.end();
  }
}

/** The IDs (last path segment) of the leases Vault holds for a database role. */
export async function vaultLeases(dbRole: string): Promise<string[]> {
  try {
    const res = await vaultAdmin().list(`sys/leases/lookup/${DATABASE_MOUNT}/creds/${dbRole}/`);
    return (res.data.keys as string[]).slice().sort();
  } catch {
    return [];
  }
}

/** A Deployment (no scheduler runs, so no pods: what counts is its pod template). */
export async function createDeployment(ns: string, name: string, labels: Record<string, string> = { app: name }): Promise<void> {
  await kubeClients().apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name, labels },
      spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
    },
  });
}

/**
 * How often a Deployment's pod template changed (its generation counts spec changes; a rollout restart is one)
 * and the restart annotation the operator set last.
 */
export async function rollouts(ns: string, name: string): Promise<{ generation: number; restartedAt: string | undefined }> {
  const d = await kubeClients().apps.readNamespacedDeployment({ name, namespace: ns });
  return { generation: d.metadata?.generation ?? 0, restartedAt: d.spec?.template.metadata?.annotations?.['vaultsync.dev/restartedAt'] };
}

/**
 * Records, every 200 ms until stopped, each Vault lease and PostgreSQL user of `dbRole` that exists, and
 * whether a consumer can log in with whatever Secret `ns/name` holds (`label()` describes a failed login).
 */
export function watchDatabaseUse(ns: string, name: string, dbRole: string, label: () => string,
  initial: { leases?: string[]; roles?: string[] } = {}, t?: { after(fn: () => Promise<void>): void }) {
  const seen = { leases: new Set<string>(initial.leases), roles: new Set<string>(initial.roles) };
  const failures: string[] = [];
  let watching = true;
  const loop = (async () => {
    while (watching) {
      for (const id of await vaultLeases(dbRole)) seen.leases.add(id);
      for (const role of await pgRolesFor(dbRole)) seen.roles.add(role);
      if (!(await canLogin(await credentials(ns, name)))) failures.push(`login failed at ${label()}`);
      await sleep(200);
    }
  })();
  const stop = async () => { watching = false; await loop; };
  t?.after(stop);
  return { seen, failures, stop };
}
