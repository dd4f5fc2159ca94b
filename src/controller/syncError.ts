// What a failed sync tells the user: a condition reason (CamelCase, stable, for alerts), a message that names
// the resource, the Vault path and what to do (never data), and whether retrying soon can help.

export type SyncFailureReason =
  | 'InvalidSpec'
  | 'ConnectionNotFound'
  | 'ConnectionNotAllowed'
  | 'CredentialsNotFound'
  | 'ServiceAccountNotFound'
  | 'VaultLoginFailed'
  | 'VaultPermissionDenied'
  | 'VaultPathNotFound'
  | 'VaultSealed'
  | 'VaultThrottled'
  | 'VaultUnreachable'
  | 'VaultRequestInvalid'
  | 'KeyNotFound'
  | 'InvalidSecretKey'
  | 'TemplateError'
  | 'SecretNotOwned'
  | 'KubernetesError';

export class SyncError extends Error {
  readonly reason: SyncFailureReason;
  /** Transient failures back off quickly; the others wait for a change or the next refresh. */
  readonly transient: boolean;
  constructor(reason: SyncFailureReason, message: string, transient: boolean) {
    super(message);
    this.reason = reason;
    this.transient = transient;
  }
}
