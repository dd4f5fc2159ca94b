// The vaultsync.dev/v1alpha1 API: zod schemas (runtime validation), the TypeScript types inferred from
// them, and the CRDs generated from the same schemas (crd.ts, scripts/gen-crds.ts).
import type { VaultConnectionSpec, VaultConnectionStatus } from './vaultConnection.ts';
import type { VaultSecretSpec, VaultSecretStatus } from './vaultSecret.ts';

export * from './constants.ts';
export { parseDuration, isDuration, DURATION_PATTERN } from './duration.ts';
export { ConditionSchema, type Condition } from './fields.ts';
export {
  ConnectionRefSchema, KubernetesAuthSchema, JwtAuthSchema, AppRoleAuthSchema, TokenAuthSchema, VaultAuthSchema,
  VaultSecretVaultSchema, KvSourceSchema, KvMergeSourceSchema, VaultSecretSourceSchema, DestinationSchema,
  TemplateSchema, RefreshSchema, VaultSecretSpecSchema, SyncedKvSchema, VaultSecretStatusSchema,
  CREATION_POLICIES, DELETION_POLICIES, DatabaseSourceSchema, DynamicSourceSchema, LeasePolicySchema,
  RolloutRestartTargetSchema, LeaseStatusSchema, PendingIssueSchema, WORKLOAD_KINDS, DYNAMIC_METHODS, LEASE_STATES,
  type DatabaseSource, type DynamicSource, type LeasePolicy, type RolloutRestartTarget, type LeaseStatus, type PendingIssue,
  type ConnectionRef, type KubernetesAuth, type JwtAuth, type AppRoleAuth, type TokenAuth, type VaultAuth,
  type KvSource, type KvMergeSource, type VaultSecretSource, type Destination, type CreationPolicy,
  type DeletionPolicy, type VaultSecretSpec, type VaultSecretSpecInput, type VaultSecretStatus,
} from './vaultSecret.ts';
export {
  VaultConnectionSpecSchema, VaultConnectionStatusSchema,
  type VaultConnectionSpec, type VaultConnectionSpecInput, type VaultConnectionStatus,
} from './vaultConnection.ts';
export { parseVaultSecretSpec, parseVaultConnectionSpec, fieldPath, type ParseResult } from './parse.ts';
export { buildCrds, type CustomResourceDefinition } from './crd.ts';

/** The part of ObjectMeta the operator reads; the API server sends more. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
}

/** A VaultSecret as validated by the operator: spec parsed (defaults applied), status as last written. */
export interface VaultSecret {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: VaultSecretSpec;
  status?: VaultSecretStatus;
}

export interface VaultConnection {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: VaultConnectionSpec;
  status?: VaultConnectionStatus;
}
