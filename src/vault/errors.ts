// The one classifier for Vault failures. Every retry or terminal decision branches on `kind`, never on
// message text; the only text inspected is here (to tell a sealed Vault from any other 503).
//
// What an error may carry: the operation label, method, Vault path (without the query string), the HTTP
// status, a network error code, and Vault's own `errors` strings. Never request bodies, tokens or response
// data: the messages end up in logs, Kubernetes events and status conditions.
import { z } from 'zod';

export type VaultErrorKind = 'Denied' | 'NotFound' | 'Sealed' | 'Throttled' | 'Transient' | 'Invalid' | 'Unreachable';

const RETRYABLE_KINDS: ReadonlySet<VaultErrorKind> = new Set(['Sealed', 'Throttled', 'Transient', 'Unreachable']);

/** Whether a later attempt of the same request may succeed without anyone changing anything. */
export function isRetryableKind(kind: VaultErrorKind): boolean {
  return RETRYABLE_KINDS.has(kind);
}

/** Where a failure happened; all of it is safe to log. */
export interface VaultRequestContext {
  /** Low-cardinality label, e.g. 'kv-read', 'login'. */
  operation: string;
  method: string;
  /** The Vault API path without `/v1/` and without the query string. */
  path: string;
}

export interface VaultErrorInit extends VaultRequestContext {
  kind: VaultErrorKind;
  status?: number;
  /** Vault's `errors` array, already bounded. */
  vaultErrors?: readonly string[];
  /** A network error code such as ECONNREFUSED or UND_ERR_HEADERS_TIMEOUT. */
  code?: string;
  /** From a Retry-After header on 429/503. */
  retryAfterMs?: number;
  /** Replaces the generated description (the part after "Vault <operation> <METHOD> <path>: "). */
  detail?: string;
}

export class VaultError extends Error {
  readonly kind: VaultErrorKind;
  readonly status: number | undefined;
  readonly operation: string;
  readonly method: string;
  readonly path: string;
  readonly vaultErrors: readonly string[];
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(init: VaultErrorInit) {
    super(`Vault ${init.operation} ${init.method} ${init.path}: ${init.detail ?? describe(init)}`);
    this.kind = init.kind;
    this.status = init.status;
    this.operation = init.operation;
    this.method = init.method;
    this.path = init.path;
    this.vaultErrors = init.vaultErrors ?? [];
    this.code = init.code;
    this.retryAfterMs = init.retryAfterMs;
  }

  get retryable(): boolean {
    return isRetryableKind(this.kind);
  }

  /** Fields for a structured log line; nothing secret. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name, kind: this.kind, status: this.status, operation: this.operation, method: this.method,
      path: this.path, code: this.code, message: this.message,
    };
  }
}

// On the prototype rather than as a field, so that the stack trace captured in the constructor names it.
Object.defineProperty(VaultError.prototype, 'name', { value: 'VaultError', enumerable: false, writable: true, configurable: true });

function describe(init: VaultErrorInit): string {
  const where = init.status !== undefined ? `HTTP ${init.status}` : init.code ?? 'no response';
  const said = init.vaultErrors && init.vaultErrors.length > 0 ? `: ${init.vaultErrors.join('; ')}` : '';
  return `${init.kind} (${where})${said}`;
}

export function isVaultError(err: unknown): err is VaultError {
  return err instanceof VaultError;
}

/** True when `err` is a retryable Vault failure; anything else (including non-Vault errors) is not. */
export function isRetryable(err: unknown): boolean {
  return err instanceof VaultError && err.retryable;
}

// Vault error strings are short ("permission denied", "1 error occurred:\n\t* ..."); bound them anyway so a
// misbehaving proxy cannot put a page of text into a status condition.
const MAX_ERRORS = 5;
const MAX_ERROR_LENGTH = 300;
const errorBody = z.object({ errors: z.array(z.unknown()) });

function vaultErrorStrings(body: unknown, sensitive: readonly string[]): string[] {
  const parsed = errorBody.safeParse(body);
  if (!parsed.success) return [];
  return parsed.data.errors
    .filter((e): e is string => typeof e === 'string')
    .map((e) => redact(e, sensitive).replace(/\s+/g, ' ').trim())
    .filter((e) => e.length > 0)
    .slice(0, MAX_ERRORS)
    .map((e) => (e.length > MAX_ERROR_LENGTH ? `${e.slice(0, MAX_ERROR_LENGTH)}…` : e));
}

// Vault sometimes echoes an input in an error ("invalid role ID ..."); the caller names what it sent.
function redact(text: string, sensitive: readonly string[]): string {
  let out = text;
  for (const secret of sensitive) if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  return out;
}

function kindForStatus(status: number, vaultErrors: readonly string[]): VaultErrorKind {
  if (status === 401 || status === 403) return 'Denied';
  if (status === 404) return 'NotFound';
  // 429: rate limited, or a standby answering sys/health; 472/473: DR secondary / performance standby;
  // 307: a standby redirecting to the active node (not followed: the token would go wherever Location says).
  if (status === 429 || status === 472 || status === 473 || status === 307) return 'Throttled';
  if (status === 503) return vaultErrors.some((e) => /\bsealed\b/i.test(e)) ? 'Sealed' : 'Transient';
  // 412: the node has not caught up with the index the client asked for (eventual consistency).
  if (status === 412 || status === 408 || status >= 500) return 'Transient';
  if (status >= 400) return 'Invalid';
  // A 1xx/3xx reaching us means a redirect we do not follow or a broken proxy; a retry will not fix it.
  return 'Invalid';
}

// Cannot connect at all: name resolution, refused or unroutable connections, and TLS failures.
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);
// Anything else (reset connections, header/body timeouts, sockets closed mid-exchange) is Transient.

function isTlsCode(code: string): boolean {
  return /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|HOSTNAME|EPROTO/.test(code);
}

/** The codes on an error and its causes (undici may wrap the socket error), outermost first. */
function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

function kindForCodes(codes: readonly string[]): VaultErrorKind {
  if (codes.includes('UND_ERR_INVALID_ARG')) return 'Invalid'; // undici refused the request before sending it
  return codes.some((c) => UNREACHABLE_CODES.has(c) || isTlsCode(c)) ? 'Unreachable' : 'Transient';
}

function retryAfterMs(header: string | undefined, nowMs: number | undefined): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) || nowMs === undefined ? undefined : Math.max(0, at - nowMs);
}

/** What went wrong with one HTTP exchange: Vault answered with an error status, or there was no answer. */
export type VaultFailure =
  | {
    status: number;
    body?: unknown;
    retryAfter?: string;
    /** Needed to read an HTTP-date Retry-After. */
    nowMs?: number;
    /** Values sent with the request (token, credentials, data) to cut out of Vault's error strings. */
    sensitive?: readonly string[];
  }
  | { error: unknown };

/**
 * Classifies a failed exchange with Vault. `body` is the parsed JSON body of the error response (only its
 * `errors` array is read); `error` is whatever the HTTP layer threw. An error that is already a VaultError
 * is returned unchanged.
 */
export function classifyVaultFailure(failure: VaultFailure, context: VaultRequestContext): VaultError {
  if ('status' in failure) {
    const vaultErrors = vaultErrorStrings(failure.body, failure.sensitive ?? []);
    return new VaultError({
      ...context,
      kind: kindForStatus(failure.status, vaultErrors),
      status: failure.status,
      vaultErrors,
      retryAfterMs: retryAfterMs(failure.retryAfter, failure.nowMs),
    });
  }
  if (failure.error instanceof VaultError) return failure.error;
  const codes = errorCodes(failure.error);
  const kind = kindForCodes(codes);
  const code = codes.find((c) => UNREACHABLE_CODES.has(c) || isTlsCode(c)) ?? codes[0];
  // Only the code goes into the message: a network error's message is harmless today, but a cause chain can
  // carry request details we do not control.
  return new VaultError({ ...context, kind, code: code ?? 'network error' });
}
