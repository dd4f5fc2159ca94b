// What integration tests share: the running stack's coordinates (from the environment that
// `npm test` sets), admin clients for Kubernetes, Vault and PostgreSQL, and one namespace per test.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AppsV1Api, CoreV1Api, CustomObjectsApi, ApiextensionsV1Api, KubeConfig, RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import pg from 'pg';
import { VaultAdmin } from '../../devstack/vaultAdmin.ts';
import type { StackEnv } from '../../devstack/stack.ts';

const REQUIRED: (keyof StackEnv)[] = [
  'KUBECONFIG', 'VAULT_ADDR', 'VAULT_TOKEN', 'VSYNC_VAULT_FLAVOR',
  'VSYNC_PG_HOST', 'VSYNC_PG_PORT', 'VSYNC_PG_ADMIN_USER', 'VSYNC_PG_ADMIN_PASSWORD', 'VSYNC_PG_DATABASE',
];

/**
 * The stack's environment. A missing variable fails the test: integration tests never skip, because a
 * silently skipped test reads like a passing one.
 */
export function stackEnv(): StackEnv {
  const missing = REQUIRED.filter((k) => !process.env[k]);
  if (missing.length > 0) {
    throw new Error(`integration tests need the local stack, but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not set. ` +
      'Run them with `npm test` (it builds or reuses the components and starts etcd, kube-apiserver, ' +
      'kube-controller-manager, Vault/OpenBao and PostgreSQL), or `node scripts/stack.ts run -- node --test FILE`.');
  }
  return Object.fromEntries(REQUIRED.map((k) => [k, process.env[k]!])) as unknown as StackEnv;
}

export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(stackEnv().KUBECONFIG);
  return kc;
}

export function kubeClients() {
  const kc = kubeConfig();
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    apiext: kc.makeApiClient(ApiextensionsV1Api),
  };
}

export function vaultAdmin(): VaultAdmin {
  const env = stackEnv();
  return new VaultAdmin(env.VAULT_ADDR, env.VAULT_TOKEN);
}

/** A short random suffix for names that must be unique within the run. */
export function uniqueSuffix(): string {
  return randomBytes(3).toString('hex');
}

/**
 * Creates a namespace for one test and deletes it afterwards (kube-controller-manager finalizes it).
 * `t` is the test context, whose `after` hook does the cleanup.
 */
export async function testNamespace(prefix: string, t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const { core } = kubeClients();
  const name = `${prefix}-${uniqueSuffix()}`.toLowerCase().slice(0, 63);
  await core.createNamespace({ body: { metadata: { name, labels: { 'vaultsync.dev/test': 'true' } } } });
  t.after(async () => {
    await core.deleteNamespace({ name }).catch(() => undefined);
  });
  return name;
}

/** Polls until `check` returns a value other than undefined, or fails with `what` after the timeout. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `; last error: ${String(lastError)}` : ''}`);
}

/** Opens a PostgreSQL session as the given user; rejects when the login is refused. */
export async function pgLogin(user: string, password: string): Promise<pg.Client> {
  const env = stackEnv();
  const client = new pg.Client({
    host: env.VSYNC_PG_HOST,
    port: Number(env.VSYNC_PG_PORT),
    database: env.VSYNC_PG_DATABASE,
    user,
    password,
    connectionTimeoutMillis: 5000,
  });
  await client.connect();
  return client;
}

export async function pgAdmin(): Promise<pg.Client> {
  const env = stackEnv();
  return pgLogin(env.VSYNC_PG_ADMIN_USER, env.VSYNC_PG_ADMIN_PASSWORD);
}

/** Mints a ServiceAccount token with the TokenRequest API, as the operator does. */
export async function serviceAccountToken(namespace: string, serviceAccount: string, audiences: string[], expirationSeconds = 600): Promise<string> {
  const { core } = kubeClients();
  const res = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences, expirationSeconds } },
  });
  const token = res.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
  return token;
}
