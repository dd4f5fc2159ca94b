// One classifier for Kubernetes API failures. Retry and terminal decisions branch on `kind`, never on
// message text.
import { ApiException } from '@kubernetes/client-node';

export type KubeErrorKind = 'NotFound' | 'Conflict' | 'Gone' | 'Throttled' | 'Invalid' | 'Forbidden' | 'Transient';

export interface KubeErrorInfo {
  kind: KubeErrorKind;
  status?: number;
  /** The API server's Status message; it names objects and fields, never Secret data. */
  message: string;
  retryAfterSeconds?: number;
}

function kindForStatus(status: number): KubeErrorKind {
  switch (status) {
    case 404: return 'NotFound';
    case 409: return 'Conflict';
    case 410: return 'Gone';
    case 429: return 'Throttled';
    case 400: case 422: return 'Invalid';
    case 401: case 403: return 'Forbidden';
    default: return 'Transient';
  }
}

function parseStatusBody(body: unknown): { message?: string; retryAfterSeconds?: number } {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return {};
    }
  }
  if (value && typeof value === 'object') {
    const status = value as { message?: unknown; details?: { retryAfterSeconds?: unknown } };
    return {
      message: typeof status.message === 'string' ? status.message : undefined,
      retryAfterSeconds: typeof status.details?.retryAfterSeconds === 'number' ? status.details.retryAfterSeconds : undefined,
    };
  }
  return {};
}

export function classifyKubeError(err: unknown): KubeErrorInfo {
  if (err instanceof KubeHttpError) return { kind: kindForStatus(err.status), status: err.status, message: err.message };
  if (err instanceof ApiException) {
    const { message, retryAfterSeconds } = parseStatusBody(err.body);
    return { kind: kindForStatus(err.code), status: err.code, message: message ?? `HTTP ${err.code}`, retryAfterSeconds };
  }
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'number') return { kind: kindForStatus(code), status: code, message: String((err as Error).message ?? code) };
  return { kind: 'Transient', message: err instanceof Error ? err.message : String(err) };
}

export function isKubeNotFound(err: unknown): boolean {
  return classifyKubeError(err).kind === 'NotFound';
}

/** Raised by the raw HTTP helper (list/watch with custom Accept headers). */
export class KubeHttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}
