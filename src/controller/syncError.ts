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
  /** A request for new credentials failed in a way that leaves open whether Vault issued them. */
  readonly issueOutcomeUnknown: boolean;
  constructor(reason: SyncFailureReason, message: string, transient: boolean, options: { issueOutcomeUnknown?: boolean } = {}) {
    super(message);
    this.reason = reason;
    this.transient = transient;
    this.issueOutcomeUnknown = options.issueOutcomeUnknown ?? false;
  }
}
