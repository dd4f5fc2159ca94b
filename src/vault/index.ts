// The Vault/OpenBao layer: an HTTP client per connection, logins with a shared token cache, KV reads and
// dynamic secrets with their leases. Failures are VaultErrors classified once (see errors.ts).
export {
  VaultError, classifyVaultFailure, isRetryable, isRetryableKind, isVaultError,
  type VaultErrorInit, type VaultErrorKind, type VaultFailure, type VaultRequestContext,
} from './errors.ts';
export {
  DEFAULT_RETRY_POLICY, VaultClient, backoffDelayMs, operationForPath, parseVaultResponse, vaultConnectionSchema,
  type RetryPolicy, type VaultClientOptions, type VaultConnection, type VaultMethod, type VaultRequest,
  type VaultRequestInfo, type VaultResponse,
} from './client.ts';
export { detectKvVersion, forgetKvVersions, readKv, type KvMetadata, type KvReadOptions, type KvSecret, type KvVersion } from './kv.ts';
export {
  VaultTokenManager, unrefTimers,
  type AppRoleLogin, type JwtLogin, type KubernetesLogin, type RenewalOutcome, type Timers, type TokenInfo, type TokenLogin,
  type VaultLogin, type VaultTokenManagerOptions,
} from './auth.ts';
export { mayHaveIssued, readDynamic, renewLease, revokeLease, type DynamicReadOptions, type DynamicSecret, type LeaseRenewal } from './leases.ts';
export { silentVaultLogger, type VaultLogFn, type VaultLogger } from './logger.ts';
