// The slice of pino's logger the Vault layer uses, so callers can pass a pino logger (or a child) and tests
// can pass anything with the same shape. Log lines from this layer carry identities, operations and Vault
// paths, never tokens, JWTs, secret IDs or secret data.

export interface VaultLogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface VaultLogger {
  debug: VaultLogFn;
  info: VaultLogFn;
  warn: VaultLogFn;
  error: VaultLogFn;
  child(bindings: Record<string, unknown>): VaultLogger;
}

const discard = (): void => {};

export const silentVaultLogger: VaultLogger = {
  debug: discard,
  info: discard,
  warn: discard,
  error: discard,
  child: () => silentVaultLogger,
};
