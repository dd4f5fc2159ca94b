// VaultSecret: which Vault data goes into which Kubernetes Secret, read with which identity. The zod
// schemas below are the single source of the runtime validation, the TypeScript types and the CRD schema.
import { z } from 'zod';
import {
  conditions, duration, namespaceName, nonEmpty, objectName, secretKeyRef, stringMap, stringSet, vaultPath,
} from './fields.ts';
import { exactlyOneOf, withRules } from './rules.ts';

// ---- vault: where and as whom ----------------------------------------------------------------------

export const ConnectionRefSchema = z.object({
  name: objectName().describe('Name of the VaultConnection.'),
  namespace: namespaceName().optional().describe(
    'Namespace of the VaultConnection. Default: the VaultSecret\'s namespace. Another namespace is allowed only ' +
    'if that VaultConnection lists this VaultSecret\'s namespace (or \'*\') in spec.allowedNamespaces; the ' +
    'operator checks this and reports Ready=False otherwise.'),
});

export const KubernetesAuthSchema = z.object({
  role: nonEmpty().describe('Vault role of the Kubernetes auth method to log in with.'),
  serviceAccountName: objectName().default('default').describe(
    'ServiceAccount whose token is presented to Vault. It is always in the VaultSecret\'s own namespace, so a ' +
    'namespace can only log in as itself. Default: default.'),
  audiences: stringSet(nonEmpty()).min(1).max(16).default(['vault']).describe(
    'Audiences requested for the ServiceAccount token; must match the role\'s audience. Default: [vault].'),
  mount: vaultPath('auth mount').default('kubernetes').describe('Path the Kubernetes auth method is mounted at. Default: kubernetes.'),
  tokenExpirationSeconds: z.int().min(600).max(86400).default(600).describe(
    'Lifetime of the requested ServiceAccount token in seconds (600 to 86400). Default: 600.'),
}).describe('Log in with a token of a ServiceAccount of this namespace (Vault Kubernetes auth).');

export const JwtAuthSchema = withRules(z.object({
  role: nonEmpty().describe('Vault role of the JWT/OIDC auth method to log in with.'),
  mount: vaultPath('auth mount').default('jwt').describe('Path the JWT auth method is mounted at. Default: jwt.'),
  serviceAccountName: objectName().optional().describe(
    'Present a token of this ServiceAccount (in the VaultSecret\'s namespace). Exactly one of serviceAccountName or secretRef.'),
  audiences: stringSet(nonEmpty()).min(1).max(16).optional().describe(
    'Audiences requested for the ServiceAccount token; only with serviceAccountName.'),
  secretRef: secretKeyRef().optional().describe(
    'Present the JWT stored in this Secret key. Exactly one of serviceAccountName or secretRef.'),
}), [
  exactlyOneOf(['serviceAccountName', 'secretRef']),
  {
    rule: '!has(self.audiences) || has(self.serviceAccountName)',
    message: 'audiences applies only with serviceAccountName; a JWT from secretRef carries its own audience',
    holds: (self) => self.audiences === undefined || self.serviceAccountName !== undefined,
  },
]).describe('Log in with a JWT (Vault JWT/OIDC auth): a ServiceAccount token or one stored in a Secret.');

export const AppRoleAuthSchema = z.object({
  mount: vaultPath('auth mount').default('approle').describe('Path the AppRole auth method is mounted at. Default: approle.'),
  roleId: nonEmpty().describe('RoleID of the AppRole.'),
  secretIdRef: secretKeyRef().describe('Secret key holding the SecretID.'),
}).describe('Log in with an AppRole RoleID and a SecretID stored in a Secret.');

export const TokenAuthSchema = z.object({
  secretRef: secretKeyRef('token').describe('Secret key holding the Vault token.'),
}).describe('Use a static Vault token stored in a Secret. Meant for development: the token is not rotated.');

export const VaultAuthSchema = withRules(z.object({
  kubernetes: KubernetesAuthSchema.optional(),
  jwt: JwtAuthSchema.optional(),
  appRole: AppRoleAuthSchema.optional(),
  token: TokenAuthSchema.optional(),
}), [exactlyOneOf(['kubernetes', 'jwt', 'appRole', 'token'])])
  .describe('How the operator logs in to Vault for this VaultSecret. Exactly one of kubernetes, jwt, appRole or token.');

export const VaultSecretVaultSchema = z.object({
  connectionRef: ConnectionRefSchema.optional().describe(
    'VaultConnection to use (address, TLS, headers). Omitted: the operator\'s default connection.'),
  namespace: nonEmpty().optional().describe(
    'Vault Enterprise / OpenBao namespace to log in and read in; overrides the connection\'s namespace.'),
  auth: VaultAuthSchema,
}).describe('Which Vault to read from and how to log in.');

// ---- source: what to read ----------------------------------------------------------------------------

export const KvSourceSchema = withRules(z.object({
  mount: vaultPath('mount').describe('Path the KV secrets engine is mounted at, e.g. secret.'),
  path: vaultPath('path').describe('Path of the secret within the mount, e.g. team-a/database (without data/ for KV v2).'),
  version: z.int().min(1).optional().describe('KV v2 only: pin this version instead of following the latest.'),
  kvVersion: z.literal([1, 2]).optional().describe('KV engine version, 1 or 2. Omitted: detected from the mount.'),
  keys: stringSet(nonEmpty()).min(1).max(256).optional().describe(
    'Take only these keys of the secret. Omitted: all keys. A listed key missing in Vault fails the sync.'),
}), [{
  rule: '!has(self.version) || !has(self.kvVersion) || self.kvVersion == 2',
  message: 'version pins a KV v2 secret version and cannot be used with kvVersion: 1',
  holds: (self) => self.version === undefined || self.kvVersion !== 1,
}]);

export const KvMergeSourceSchema = z.object({
  sources: z.array(KvSourceSchema).min(2).max(16).describe(
    'KV secrets to read and merge, 2 to 16. Later entries win on key conflicts.'),
});

export const DatabaseSourceSchema = z.object({
  mount: vaultPath('mount').default('database').describe('Path the database secrets engine is mounted at. Default: database.'),
  role: nonEmpty().describe('Database role. A dynamic role issues new credentials with a lease; a static role (static: true) has one account whose password Vault rotates.'),
  static: z.boolean().default(false).describe(
    'Read a static role (static-creds/<role>): the operator re-reads it right after Vault\'s next rotation. Default: false (dynamic role, creds/<role>).'),
}).describe('Database credentials from Vault\'s database secrets engine, e.g. a PostgreSQL login per VaultSecret.');

export const DYNAMIC_METHODS = ['GET', 'POST', 'PUT'] as const;

export const DynamicSourceSchema = z.object({
  path: vaultPath('path').describe('Vault API path that returns a secret with a lease, e.g. pki/issue/web or aws/creds/deploy.'),
  method: z.enum(DYNAMIC_METHODS).default('GET').describe('HTTP method: GET for reads such as creds/<role>, POST or PUT for issue endpoints. Default: GET.'),
  params: stringMap().optional().describe('Request body fields for POST/PUT (e.g. common_name, ttl); not secret, they are stored in the spec.'),
}).describe('Any Vault endpoint that returns a leased secret (PKI certificates, cloud credentials, ...).');

export const VaultSecretSourceSchema = withRules(z.object({
  kv: KvSourceSchema.optional().describe('One secret of a KV secrets engine (v1 or v2).'),
  kvMerge: KvMergeSourceSchema.optional().describe(
    'Several KV secrets merged into one set of keys; on a key present in more than one, the later entry wins.'),
  database: DatabaseSourceSchema.optional(),
  dynamic: DynamicSourceSchema.optional(),
}), [exactlyOneOf(['kv', 'kvMerge', 'database', 'dynamic'])])
  .describe('What to read from Vault. Exactly one of kv, kvMerge, database or dynamic.');

export const LeasePolicySchema = z.object({
  renewFraction: z.number().min(0.1).max(0.9).default(0.67).describe(
    'Renew a lease when this share of its TTL has passed (plus up to 10 % jitter). Default: 0.67.'),
  revokeGracePeriod: duration('1s').default('5m').describe(
    'How long superseded credentials stay valid after new ones were written, so consumers can pick them up; then they are revoked. Default: 5m.'),
  revokeOnDelete: z.boolean().default(true).describe('Revoke the leases when the VaultSecret is deleted. Default: true.'),
}).describe('How leases of dynamic sources (database, dynamic) are renewed, rotated and revoked.');

export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;

export const RolloutRestartTargetSchema = withRules(z.object({
  kind: z.enum(WORKLOAD_KINDS).describe('Deployment, StatefulSet or DaemonSet.'),
  name: objectName().optional().describe('Restart this workload. Exactly one of name or selector.'),
  selector: z.object({
    matchLabels: stringMap().describe('Restart every workload of the kind whose labels match all of these.'),
  }).optional().describe('Restart workloads selected by label. Exactly one of name or selector.'),
}), [exactlyOneOf(['name', 'selector'])])
  .describe('A workload in this namespace restarted (rolling) after the Secret\'s credentials rotated.');

// ---- destination, template, refresh ------------------------------------------------------------------

export const CREATION_POLICIES = ['Owner', 'Merge', 'Orphan'] as const;
export const DELETION_POLICIES = ['Delete', 'Retain'] as const;

export const DestinationSchema = z.object({
  name: objectName().optional().describe('Name of the Secret to write, in the VaultSecret\'s namespace. Default: the VaultSecret\'s name.'),
  type: nonEmpty().default('Opaque').describe(
    'Type of the Secret, e.g. Opaque or kubernetes.io/dockerconfigjson; the data must fit the type. Default: Opaque.'),
  labels: stringMap().optional().describe('Labels to set on the Secret, next to the operator\'s own.'),
  annotations: stringMap().optional().describe('Annotations to set on the Secret.'),
  creationPolicy: z.enum(CREATION_POLICIES).default('Owner').describe(
    'Owner (default): create the Secret and own it (ownerReference); an existing Secret the operator does not own ' +
    'is left alone and reported. Merge: write the synced keys into an existing Secret owned by someone else; the ' +
    'Secret itself is never deleted. Orphan: create the Secret without ownerReference, so it outlives the VaultSecret.'),
  deletionPolicy: z.enum(DELETION_POLICIES).default('Delete').describe(
    'What happens to the synced data when the VaultSecret is deleted. Delete (default): with Owner the Secret is ' +
    'garbage-collected, with Merge the synced keys are removed from it. Retain: the Secret and its data stay.'),
}).describe('The Kubernetes Secret the data is written to.');

export const TemplateSchema = z.object({
  data: stringMap().describe(
    'Secret key → template. Templates are Liquid, rendered in a sandbox (no file or network access); the source ' +
    'keys are variables under secret (e.g. {{ secret.password | url_encode }}, {{ secret["db-host"] }}), and ' +
    'vaultSecret.name / vaultSecret.namespace name this object.'),
  includeSourceKeys: z.boolean().default(false).describe(
    'Also write the source keys as they are, next to the templated ones. Default: false (only the templated keys).'),
}).describe('Compute the Secret\'s keys from the source data with templates.');

export const RefreshSchema = z.object({
  interval: duration('10s').default('1h').describe(
    'How often Vault is read again, as a Go-style duration (30s, 5m, 1h, 1h30m); at least 10s. Default: 1h.'),
}).describe('When the data is read from Vault again. A spec change, a changed or deleted Secret, or the ' +
  'vaultsync.dev/force-sync annotation trigger a sync at once.');

export const VaultSecretSpecSchema = z.object({
  vault: VaultSecretVaultSchema.optional(),
  source: VaultSecretSourceSchema,
  destination: DestinationSchema.optional(),
  template: TemplateSchema.optional(),
  refresh: RefreshSchema.optional(),
  leases: LeasePolicySchema.optional(),
  rolloutRestartTargets: z.array(RolloutRestartTargetSchema).max(16).optional().describe(
    'Workloads to restart after a rotation has been written (never on the first sync). Several rotations within a ' +
    'minute cause one restart.'),
}).describe('Desired state: read source from Vault (logging in as vault.auth says) and write it to destination.');

// ---- status ------------------------------------------------------------------------------------------

export const SyncedKvSchema = z.object({
  mount: z.string().describe('KV mount read.'),
  path: z.string().describe('Path read.'),
  version: z.int().optional().describe('KV v2 version read; absent for KV v1.'),
});

export const LEASE_STATES = ['active', 'superseded'] as const;

export const LeaseStatusSchema = z.object({
  leaseId: z.string().describe('Vault lease ID.'),
  issuedAt: z.string().meta({ format: 'date-time' }).describe('When the credentials were issued.'),
  expiresAt: z.string().meta({ format: 'date-time' }).describe('When the lease expires unless renewed.'),
  renewable: z.boolean().describe('Whether Vault allows renewing the lease.'),
  ttlSeconds: z.int().min(0).describe('TTL granted by the last issue or renewal.'),
  state: z.enum(LEASE_STATES).describe('active: its credentials are in the Secret; superseded: replaced, revoked after the grace period.'),
  supersededAt: z.string().meta({ format: 'date-time' }).optional().describe('When newer credentials replaced it.'),
  parentTokenExpiresAt: z.string().meta({ format: 'date-time' }).optional().describe(
    'Expiry of the Vault token that issued the lease (as last known): the lease dies with it, so it is rotated before.'),
});

export const PendingIssueSchema = z.object({
  since: z.string().meta({ format: 'date-time' }).describe('When the request for new credentials was about to be sent.'),
  path: z.string().describe('The Vault path asked; its leases are listed under sys/leases/lookup/<path>/.'),
});

export const VaultSecretStatusSchema = z.object({
  observedGeneration: z.int().min(0).optional().describe('metadata.generation the status was last computed for.'),
  conditions: conditions('Ready: the Secret holds the data of the current spec; Synced: the last sync attempt succeeded.').optional(),
  secretName: z.string().optional().describe('Name of the Secret written.'),
  lastSyncTime: z.string().meta({ format: 'date-time' }).optional().describe('When the data was last read from Vault and written.'),
  nextSyncTime: z.string().meta({ format: 'date-time' }).optional().describe('When the data is due to be read again.'),
  dataHmac: z.string().optional().describe(
    'Keyed HMAC-SHA256 of the written data (the key is the operator\'s own): detects edits to the Secret without storing values.'),
  kv: z.array(SyncedKvSchema).optional().describe('The KV secrets and versions the current data came from.'),
  lastForceSync: z.string().optional().describe('Value of the vaultsync.dev/force-sync annotation handled last.'),
  leases: z.array(LeaseStatusSchema).optional().describe(
    'Every lease the operator holds for this VaultSecret: the active one and superseded ones awaiting revocation. A restarted operator resumes from here.'),
  lastRotationTime: z.string().meta({ format: 'date-time' }).optional().describe('When new credentials were last written.'),
  lastRestartTime: z.string().meta({ format: 'date-time' }).optional().describe('When rolloutRestartTargets were last restarted.'),
  pendingRestartSince: z.string().meta({ format: 'date-time' }).optional().describe('A rotation awaits the debounced restart of rolloutRestartTargets since then.'),
  pendingIssue: PendingIssueSchema.optional().describe(
    'Set just before new credentials are requested from Vault and cleared by the status write that records their lease. ' +
    'Found set by an operator process that did not write it, it means a lease may exist that status.leases does not ' +
    'record: the operator emits a LeaseMayBeUntracked Warning event and clears it.'),
}).describe('Observed state, written by the operator.');

export type ConnectionRef = z.output<typeof ConnectionRefSchema>;
export type KubernetesAuth = z.output<typeof KubernetesAuthSchema>;
export type JwtAuth = z.output<typeof JwtAuthSchema>;
export type AppRoleAuth = z.output<typeof AppRoleAuthSchema>;
export type TokenAuth = z.output<typeof TokenAuthSchema>;
export type VaultAuth = z.output<typeof VaultAuthSchema>;
export type KvSource = z.output<typeof KvSourceSchema>;
export type KvMergeSource = z.output<typeof KvMergeSourceSchema>;
export type VaultSecretSource = z.output<typeof VaultSecretSourceSchema>;
export type Destination = z.output<typeof DestinationSchema>;
export type DatabaseSource = z.output<typeof DatabaseSourceSchema>;
export type DynamicSource = z.output<typeof DynamicSourceSchema>;
export type LeasePolicy = z.output<typeof LeasePolicySchema>;
export type RolloutRestartTarget = z.output<typeof RolloutRestartTargetSchema>;
export type LeaseStatus = z.output<typeof LeaseStatusSchema>;
export type PendingIssue = z.output<typeof PendingIssueSchema>;
export type CreationPolicy = (typeof CREATION_POLICIES)[number];
export type DeletionPolicy = (typeof DELETION_POLICIES)[number];
export type VaultSecretSpec = z.output<typeof VaultSecretSpecSchema>;
/** What a user writes: fields with defaults may be omitted. */
export type VaultSecretSpecInput = z.input<typeof VaultSecretSpecSchema>;
export type VaultSecretStatus = z.output<typeof VaultSecretStatusSchema>;

