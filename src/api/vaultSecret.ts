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

export const VaultSecretSourceSchema = withRules(z.object({
  kv: KvSourceSchema.optional().describe('One secret of a KV secrets engine (v1 or v2).'),
  kvMerge: KvMergeSourceSchema.optional().describe(
    'Several KV secrets merged into one set of keys; on a key present in more than one, the later entry wins.'),
}), [exactlyOneOf(['kv', 'kvMerge'])])
  .describe('What to read from Vault. Exactly one of kv or kvMerge.');

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
}).describe('Desired state: read source from Vault (logging in as vault.auth says) and write it to destination.');

// ---- status ------------------------------------------------------------------------------------------

export const SyncedKvSchema = z.object({
  mount: z.string().describe('KV mount read.'),
  path: z.string().describe('Path read.'),
  version: z.int().optional().describe('KV v2 version read; absent for KV v1.'),
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
export type CreationPolicy = (typeof CREATION_POLICIES)[number];
export type DeletionPolicy = (typeof DELETION_POLICIES)[number];
export type VaultSecretSpec = z.output<typeof VaultSecretSpecSchema>;
/** What a user writes: fields with defaults may be omitted. */
export type VaultSecretSpecInput = z.input<typeof VaultSecretSpecSchema>;
export type VaultSecretStatus = z.output<typeof VaultSecretStatusSchema>;

