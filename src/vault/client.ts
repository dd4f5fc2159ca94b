// The HTTP client for one Vault/OpenBao connection: one undici Agent (keep-alive, TLS with the connection's
// CA, optional mTLS), Vault's headers, retries with backoff for failures a later attempt can fix, and one
// observer call per HTTP exchange for metrics. It knows nothing about KV, auth or leases.
import { setTimeout as sleepFor } from 'node:timers/promises';
import { Agent } from 'undici';
import { z } from 'zod';
import { systemClock, type Clock, type Random } from '../util/clock.ts';
import { classifyVaultFailure, VaultError, type VaultRequestContext } from './errors.ts';
import { silentVaultLogger, type VaultLogger } from './logger.ts';

const RESERVED_HEADERS = new Set(['x-vault-token', 'x-vault-namespace', 'x-vault-request', 'host', 'content-type', 'content-length']);

const pem = z.string().min(1).refine((s) => s.includes('-----BEGIN '), 'expected PEM text');

export const vaultConnectionSchema = z
  .object({
    address: z.url({ protocol: /^https?$/ }),
    caCertPem: pem.optional(),
    tlsServerName: z.string().min(1).optional(),
    clientCertPem: pem.optional(),
    clientKeyPem: pem.optional(),
    namespace: z.string().optional(),
    headers: z
      .record(
        z.string()
          .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'not an HTTP header name')
          .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), 'set by the client (use namespace; tokens come from logins)'),
        z.string(),
      )
      .optional(),
    timeoutMs: z.number().int().positive(),
  })
  .refine((c) => (c.clientCertPem === undefined) === (c.clientKeyPem === undefined), {
    message: 'clientCertPem and clientKeyPem must be given together',
    path: ['clientKeyPem'],
  });

/** How to reach one Vault/OpenBao server. */
export type VaultConnection = z.infer<typeof vaultConnectionSchema>;

export interface RetryPolicy {
  /** Attempts per request, the first included. */
  maxAttempts: number;
  /** First backoff; doubles per attempt, with jitter between half and the full value. */
  baseDelayMs: number;
  /** Cap of one backoff. A Retry-After longer than this ends the retries (the caller requeues). */
  maxDelayMs: number;
  /** Time budget of one request across all attempts and backoffs. */
  deadlineMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 5_000, deadlineMs: 60_000 };

export interface VaultRequestInfo {
  /** Low-cardinality label, e.g. 'kv-read', 'login', 'lease-renew', 'token-renew', 'other'. */
  operation: string;
  status: number | 'error';
  durationMs: number;
}

export interface VaultClientOptions {
  logger?: VaultLogger;
  clock?: Clock;
  random?: Random;
  /** Waits between attempts; rejects when `signal` aborts (on close). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  retry?: Partial<RetryPolicy>;
  /** Called once per HTTP exchange (so a retried request reports each attempt). Must not throw. */
  onRequest?: (info: VaultRequestInfo) => void;
  /** Sockets kept per origin. Default 16. */
  maxConnections?: number;
}

export type VaultMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';

export interface VaultRequest {
  method: VaultMethod;
  /** API path without `/v1/`, e.g. `secret/data/app`. Segments are URL-encoded here; `.`/`..` are refused. */
  path: string;
  token?: string;
  /** Sent as JSON. Never logged and never part of an error. */
  body?: unknown;
  /** Overrides the connection's namespace for this request; '' sends no namespace (root). */
  namespace?: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** Metrics/log label; must be low-cardinality. Derived from the path when absent. */
  operation?: string;
  /** false: one attempt only (e.g. for a request whose repetition would have side effects). */
  retry?: boolean;
  /** Retries only failures this accepts (and that are retryable), e.g. those Vault certainly did not act on. */
  retryIf?: (error: VaultError) => boolean;
  /**
   * Values Vault must not echo into an error (cut out of its error strings). The token always is; by default
   * so is every string in `body`. Callers that know which fields are secret name them, keeping the rest
   * (a role name, say) readable in errors.
   */
  sensitive?: readonly string[];
  /** Non-2xx statuses returned as a response instead of thrown (e.g. 404 to read KV v2's deletion metadata). */
  acceptStatus?: readonly number[];
}

export interface VaultResponse {
  status: number;
  /** Parsed JSON, or undefined for an empty body (204). */
  body: unknown;
}

/** Maps a path to a metrics label without mount names, roles or secret paths in it. */
export function operationForPath(path: string): string {
  const p = normalizePath(path);
  if (p === 'auth/token/renew-self' || p === 'auth/token/renew') return 'token-renew';
  if (p === 'auth/token/lookup-self') return 'token-lookup';
  if (p === 'auth/token/revoke-self') return 'token-revoke';
  if (/^auth\/.+\/login(\/|$)/.test(p)) return 'login';
  if (p === 'sys/leases/renew' || p === 'sys/renew' || p.startsWith('sys/leases/renew/')) return 'lease-renew';
  if (p === 'sys/leases/revoke' || p === 'sys/revoke' || p.startsWith('sys/leases/revoke/')) return 'lease-revoke';
  if (p.startsWith('sys/internal/ui/mounts/')) return 'mount-lookup';
  if (p === 'sys/health') return 'health';
  return 'other';
}

function normalizePath(path: string): string {
  return path.replace(/^\/+/, '');
}

function encodePath(path: string, context: VaultRequestContext): string {
  const segments = normalizePath(path).split('/');
  if (segments.some((s) => s === '.' || s === '..')) {
    throw new VaultError({ ...context, kind: 'Invalid', detail: 'Invalid (path segments "." and ".." are not allowed)' });
  }
  return segments.map(encodeURIComponent).join('/');
}

function queryString(query: VaultRequest['query'], list: boolean): string {
  const params = new URLSearchParams();
  if (list) params.set('list', 'true');
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) params.set(key, String(value));
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** A header value a token can be sent in; anything else is refused before it reaches undici's messages. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

/**
 * Parses a Vault response with `schema`; a mismatch names the fields and codes, never the values. `status`:
 * the (2xx) status the body came with, kept on the error because Vault did act on that request.
 */
export function parseVaultResponse<S extends z.ZodType>(schema: S, body: unknown, context: VaultRequestContext, status?: number): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.code}`)
    .join(', ');
  throw new VaultError({ ...context, kind: 'Invalid', status, detail: `Invalid (unexpected response: ${issues})` });
}

export class VaultClient {
  readonly address: string;
  /** The connection's default namespace ('' for none). */
  readonly namespace: string;
  private readonly origin: string;
  private readonly basePath: string;
  private readonly timeoutMs: number;
  private readonly extraHeaders: Record<string, string>;
  private readonly agent: Agent;
  private readonly log: VaultLogger;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly retryPolicy: RetryPolicy;
  private readonly onRequest: ((info: VaultRequestInfo) => void) | undefined;
  private readonly closing = new AbortController();

  constructor(connection: VaultConnection, options: VaultClientOptions = {}) {
    const parsed = vaultConnectionSchema.safeParse(connection);
    if (!parsed.success) {
      // Field names only: a PEM key or a header value must not end up in an error message.
      const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'} (${i.message})`).join(', ');
      throw new Error(`invalid Vault connection: ${fields}`);
    }
    const conn = parsed.data;
    const url = new URL(conn.address);
    this.address = conn.address;
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.namespace = normalizeNamespace(conn.namespace);
    this.timeoutMs = conn.timeoutMs;
    this.extraHeaders = Object.fromEntries(Object.entries(conn.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    this.log = options.logger ?? silentVaultLogger;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal }));
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.onRequest = options.onRequest;
    this.agent = new Agent({
      connections: options.maxConnections ?? 16,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      headersTimeout: conn.timeoutMs,
      bodyTimeout: conn.timeoutMs,
      connect: {
        timeout: conn.timeoutMs,
        rejectUnauthorized: true,
        ...(conn.caCertPem !== undefined && { ca: conn.caCertPem }),
        ...(conn.tlsServerName !== undefined && { servername: conn.tlsServerName }),
        ...(conn.clientCertPem !== undefined && { cert: conn.clientCertPem, key: conn.clientKeyPem }),
      },
    });
  }

  /** Sends a request and returns the parsed JSON body (undefined for 204); failures throw a VaultError. */
  async request(req: Omit<VaultRequest, 'acceptStatus'>): Promise<unknown> {
    return (await this.send(req)).body;
  }

  read(path: string, token: string, options: Pick<VaultRequest, 'namespace' | 'operation' | 'query'> = {}): Promise<unknown> {
    return this.request({ ...options, method: 'GET', path, token });
  }

  write(path: string, body: unknown, token: string, options: Pick<VaultRequest, 'namespace' | 'operation' | 'retry'> = {}): Promise<unknown> {
    return this.request({ ...options, method: 'POST', path, body, token });
  }

  list(path: string, token: string, options: Pick<VaultRequest, 'namespace' | 'operation'> = {}): Promise<unknown> {
    return this.request({ ...options, method: 'LIST', path, token });
  }

  delete(path: string, token: string, options: Pick<VaultRequest, 'namespace' | 'operation'> = {}): Promise<unknown> {
    return this.request({ ...options, method: 'DELETE', path, token });
  }

  /** Like request, but returns the status too and lets `acceptStatus` through without throwing. */
  async send(req: VaultRequest): Promise<VaultResponse> {
    const context: VaultRequestContext = {
      operation: req.operation ?? operationForPath(req.path),
      method: req.method,
      path: normalizePath(req.path),
    };
    if (this.closing.signal.aborted) throw new VaultError({ ...context, kind: 'Unreachable', detail: 'Unreachable (client closed)' });
    if (req.token !== undefined && req.token !== '' && !HEADER_SAFE.test(req.token)) {
      throw new VaultError({ ...context, kind: 'Invalid', detail: 'Invalid (the token is not a valid header value)' });
    }
    const target = `${this.basePath}/v1/${encodePath(req.path, context)}${queryString(req.query, req.method === 'LIST')}`;
    const policy = this.retryPolicy;
    const maxAttempts = req.retry === false ? 1 : Math.max(1, policy.maxAttempts);
    const started = this.clock.now();
    for (let attempt = 1; ; attempt++) {
      const remaining = policy.deadlineMs - (this.clock.now() - started);
      try {
        return await this.exchange(req, target, context, Math.max(1, Math.min(this.timeoutMs, remaining)));
      } catch (err) {
        const error = classifyVaultFailure({ error: err }, context);
        if (!error.retryable || attempt >= maxAttempts || (req.retryIf && !req.retryIf(error))) throw error;
        const delayMs = Math.max(backoffDelayMs(attempt, policy, this.random), error.retryAfterMs ?? 0);
        if ((error.retryAfterMs ?? 0) > policy.maxDelayMs) throw error;
        if (this.clock.now() - started + delayMs >= policy.deadlineMs) throw error;
        this.log.debug(
          { operation: context.operation, method: context.method, path: context.path, kind: error.kind, status: error.status, attempt, delayMs },
          'Vault request failed; retrying',
        );
        try {
          await this.sleep(delayMs, this.closing.signal);
        } catch {
          throw error; // closed while waiting
        }
      }
    }
  }

  private async exchange(req: VaultRequest, target: string, context: VaultRequestContext, timeoutMs: number): Promise<VaultResponse> {
    const headers: Record<string, string> = { ...this.extraHeaders, accept: 'application/json', 'x-vault-request': 'true' };
    if (req.token !== undefined && req.token !== '') headers['x-vault-token'] = req.token;
    const namespace = req.namespace !== undefined ? normalizeNamespace(req.namespace) : this.namespace;
    if (namespace !== '') headers['x-vault-namespace'] = namespace;
    else delete headers['x-vault-namespace'];
    let payload: string | undefined;
    if (req.body !== undefined) {
      payload = JSON.stringify(req.body);
      headers['content-type'] = 'application/json';
    }
    const started = this.clock.now();
    let status: number | 'error' = 'error';
    try {
      const res = await this.agent.request({
        origin: this.origin,
        path: target,
        method: req.method === 'LIST' ? 'GET' : req.method,
        headers,
        body: payload ?? null,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      status = res.statusCode;
      const text = await res.body.text();
      const body = parseJson(text);
      if (status >= 200 && status < 300) {
        if (body === NOT_JSON) throw new VaultError({ ...context, kind: 'Invalid', status, detail: `Invalid (HTTP ${status} with a body that is not JSON)` });
        return { status, body };
      }
      if (req.acceptStatus?.includes(status)) return { status, body: body === NOT_JSON ? undefined : body };
      const retryAfter = res.headers['retry-after'];
      throw classifyVaultFailure(
        {
          status,
          body: body === NOT_JSON ? undefined : body,
          retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
          nowMs: this.clock.now(),
          sensitive: sentValues(req),
        },
        context,
      );
    } catch (err) {
      throw classifyVaultFailure({ error: err }, context);
    } finally {
      this.observe({ operation: context.operation, status, durationMs: this.clock.now() - started });
    }
  }

  private observe(info: VaultRequestInfo): void {
    if (!this.onRequest) return;
    try {
      this.onRequest(info);
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Vault request observer threw');
    }
  }

  /** Stops pending retries and closes the connection pool once in-flight requests finish. */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    await this.agent.close();
  }
}

const NOT_JSON: unique symbol = Symbol('not JSON');

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return NOT_JSON;
  }
}

/** What Vault must not echo into an error we keep: the token, and `sensitive` or else every body string. */
function sentValues(req: VaultRequest): string[] {
  const values: string[] = req.token ? [req.token] : [];
  if (req.sensitive) return [...values, ...req.sensitive];
  const visit = (v: unknown, depth: number): void => {
    if (typeof v === 'string') values.push(v);
    else if (v && typeof v === 'object' && depth < 5) for (const x of Object.values(v)) visit(x, depth + 1);
  };
  visit(req.body, 0);
  return values;
}

function normalizeNamespace(namespace: string | undefined): string {
  return (namespace ?? '').replace(/^\/+|\/+$/g, '');
}

/** Exponential backoff with "equal jitter": between half and all of min(max, base·2^(attempt-1)). */
export function backoffDelayMs(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: Random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
