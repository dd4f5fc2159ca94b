// Wiring between the stack's parts: a TokenReview identity for Vault in Kubernetes, and in Vault the
// kubernetes auth method, KV v1 and v2 mounts and the database engine connected to PostgreSQL.
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { StackEnv } from './stack.ts';
import { VaultAdmin } from './vaultAdmin.ts';

export const REVIEWER_NAMESPACE = 'kube-system';
export const REVIEWER_SERVICE_ACCOUNT = 'vault-token-reviewer';
export const KV2_MOUNT = 'secret';
export const KV1_MOUNT = 'kv1';
export const DATABASE_MOUNT = 'database';
export const DATABASE_CONNECTION = 'devstack-postgres';
export const KUBERNETES_AUTH_MOUNT = 'kubernetes';

export interface ReviewerIdentity {
  kubernetesHost: string;
  kubernetesCaPem: string;
  reviewerJwt: string;
}

function isAlreadyExists(err: unknown): boolean {
  return (err as { code?: number }).code === 409;
}

/** A ServiceAccount that Vault uses for TokenReview, so tenants' ServiceAccounts need no extra rights. */
export async function configureKubeForVault(env: Pick<StackEnv, 'KUBECONFIG'>): Promise<ReviewerIdentity> {
  const kc = new KubeConfig();
  kc.loadFromFile(env.KUBECONFIG);
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({
    namespace: REVIEWER_NAMESPACE,
    body: { metadata: { name: REVIEWER_SERVICE_ACCOUNT } },
  }).catch((e) => { if (!isAlreadyExists(e)) throw e; });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `${REVIEWER_SERVICE_ACCOUNT}-auth-delegator` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: REVIEWER_SERVICE_ACCOUNT, namespace: REVIEWER_NAMESPACE }],
    },
  }).catch((e) => { if (!isAlreadyExists(e)) throw e; });
  const token = await core.createNamespacedServiceAccountToken({
    name: REVIEWER_SERVICE_ACCOUNT,
    namespace: REVIEWER_NAMESPACE,
    body: { spec: { audiences: [], expirationSeconds: 7 * 24 * 3600 } },
  });
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`${env.KUBECONFIG} has no current cluster`);
  const caPem = cluster.caData
    ? Buffer.from(cluster.caData, 'base64').toString('utf8')
    : cluster.caFile ? (await import('node:fs')).readFileSync(cluster.caFile, 'utf8') : '';
  return { kubernetesHost: cluster.server, kubernetesCaPem: caPem, reviewerJwt: token.status?.token ?? '' };
}

export async function configureVault(env: StackEnv, reviewer: ReviewerIdentity): Promise<void> {
  const vault = new VaultAdmin(env.VAULT_ADDR, env.VAULT_TOKEN);
  await vault.ensureMount('auth', KUBERNETES_AUTH_MOUNT, { type: 'kubernetes' });
  await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/config`, {
    kubernetes_host: reviewer.kubernetesHost,
    kubernetes_ca_cert: reviewer.kubernetesCaPem,
    token_reviewer_jwt: reviewer.reviewerJwt,
    disable_local_ca_jwt: true,
  });
  await vault.ensureMount('secrets', KV2_MOUNT, { type: 'kv', options: { version: '2' } });
  await vault.ensureMount('secrets', KV1_MOUNT, { type: 'kv', options: { version: '1' } });
  await vault.ensureMount('secrets', DATABASE_MOUNT, { type: 'database' });
  await vault.write(`${DATABASE_MOUNT}/config/${DATABASE_CONNECTION}`, {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@${env.VSYNC_PG_HOST}:${env.VSYNC_PG_PORT}/${env.VSYNC_PG_DATABASE}?sslmode=disable`,
    username: env.VSYNC_PG_ADMIN_USER,
    password: env.VSYNC_PG_ADMIN_PASSWORD,
    allowed_roles: '*',
    verify_connection: true,
  });
  await putDatabaseRole(vault, 'app', { defaultTtl: '1h', maxTtl: '24h' });
}

/** A dynamic PostgreSQL role; tests make their own with short TTLs. */
export async function putDatabaseRole(vault: VaultAdmin, name: string, ttl: { defaultTtl: string; maxTtl: string }): Promise<void> {
  await vault.write(`${DATABASE_MOUNT}/roles/${name}`, {
    db_name: DATABASE_CONNECTION,
    creation_statements: [
      `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
      `GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
    ],
    revocation_statements: [
      `REASSIGN OWNED BY "{{name}}" TO CURRENT_USER; DROP OWNED BY "{{name}}"; DROP ROLE IF EXISTS "{{name}}";`,
    ],
    default_ttl: ttl.defaultTtl,
    max_ttl: ttl.maxTtl,
  });
}
