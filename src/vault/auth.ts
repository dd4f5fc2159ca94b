// Logging in to Vault and keeping the tokens alive. One VaultTokenManager per VaultClient (connection):
// one login per identity, shared by every caller, renewed in the background; never a login per reconcile.
import { z } from 'zod';
import { systemClock, type Clock, type Random } from '../util/clock.ts';
import { VaultError, type VaultRequestContext } from './errors.ts';
import { parseVaultResponse, type VaultClient } from './client.ts';
import { silentVaultLogger, type VaultLogger } from './logger.ts';

/** Kubernetes auth with a ServiceAccount token the caller mints (TokenRequest) on each call of `jwt`. */
export interface KubernetesLogin {
  method: 'kubernetes';
  /** Default 'kubernetes'. */
  mount?: string;
  role: string;
  jwt: () => Promise<string>;
  /** Vault namespace of the auth mount; the token lives there. */
  namespace?: string;
}

export interface JwtLogin {
  method: 'jwt';
  /** Default 'jwt'. */
  mount?: string;
  role: string;
  jwt: () => Promise<string>;
  namespace?: string;
}

export interface AppRoleLogin {
  method: 'appRole';
  /** Default 'approle'. */
  mount?: string;
  roleId: string;
  secretId: () => Promise<string>;
  namespace?: string;
}

/** A static token (e.g. from a Kubernetes Secret); lookup-self tells its TTL and renewability. */
export interface TokenLogin {
  method: 'token';
  token: () => Promise<string>;
  namespace?: string;
}

export type VaultLogin = KubernetesLogin | JwtLogin | AppRoleLogin | TokenLogin;

export interface TokenInfo {
  /** Epoch ms; Infinity for a token without expiry (e.g. a root token). */
  expiresAt: number;
  renewable: boolean;
  accessor?: string;
  /** TTL granted by the last login or renewal. */
  ttlSeconds: number;
  /** When the current token was obtained (epoch ms); changes on every fresh login. */
  obtainedAt: number;
}

/** 'renewed': renew-self extended the token; 'relogin': a background login replaced it; 'failed': either failed. */
export type RenewalOutcome = 'renewed' | 'relogin' | 'failed';

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers that do not keep the process alive. */
export const unrefTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface VaultTokenManagerOptions {
  client: VaultClient;
  clock?: Clock;
  random?: Random;
  timers?: Timers;
  logger?: VaultLogger;
  onRenewal?: (identityKey: string, outcome: RenewalOutcome) => void;
  /** Share of the TTL after which to renew (or log in again). Default 2/3. */
  renewAtFraction?: number;
  /** Random extra delay, as a share of the TTL. Default 0.1. */
  jitterFraction?: number;
  /** A cached token this close to expiry (at most a tenth of its TTL) is replaced before use. Default 10 s. */
  expiryMarginMs?: number;
  /** Longest wait before retrying a failed background renewal or login. Default 30 s. */
  maxRetryDelayMs?: number;
}

interface HeldToken {
  clientToken: string;
  accessor: string | undefined;
  renewable: boolean;
  ttlMs: number;
  obtainedAt: number;
  expiresAt: number;
  /** The TTL to ask for on renewal: what the login granted. */
  incrementSeconds: number;
  /** The last renewal granted less than asked: the token is near its max TTL. */
  truncated: boolean;
  namespace: string | undefined;
}

interface Entry {
  login: VaultLogin;
  token: HeldToken | undefined;
  inflight: Promise<HeldToken> | undefined;
  timer: unknown;
  dueAt: number;
  action: 'renew' | 'relogin';
}

const authResponse = z.object({
  auth: z.object({
    client_token: z.string().min(1),
    accessor: z.string().optional(),
    lease_duration: z.number().int().nonnegative(),
    renewable: z.boolean(),
  }),
});

const lookupSelfResponse = z.object({
  data: z.object({
    ttl: z.number().int().nonnegative(),
    creation_ttl: z.number().int().nonnegative().optional(),
    renewable: z.boolean().optional(),
    accessor: z.string().optional(),
  }),
});

// setTimeout cannot wait longer than this; longer delays re-arm when they fire early.
const MAX_TIMER_MS = 2 ** 31 - 1;

function authPath(login: Exclude<VaultLogin, TokenLogin>): string {
  const fallback = login.method === 'appRole' ? 'approle' : login.method;
  const mount = (login.mount ?? fallback).replace(/^\/+|\/+$/g, '');
  return `auth/${mount}/login`;
}

function heldToken(
  clientToken: string, accessor: string | undefined, ttlSeconds: number, renewable: boolean, incrementSeconds: number,
  since: number, namespace: string | undefined,
): HeldToken {
  return {
    clientToken, accessor, renewable, ttlMs: ttlSeconds * 1000, obtainedAt: since,
    expiresAt: ttlSeconds === 0 ? Number.POSITIVE_INFINITY : since + ttlSeconds * 1000,
    incrementSeconds, truncated: false, namespace,
  };
}

/** One login; the credentials come from the callbacks and go nowhere but the request body. */
async function performLogin(client: VaultClient, login: VaultLogin, clock: Clock): Promise<HeldToken> {
  const since = clock.now(); // measured before the request: the token cannot outlive since + TTL
  if (login.method === 'token') {
    const token = (await login.token()).trim();
    const context: VaultRequestContext = { operation: 'token-lookup', method: 'GET', path: 'auth/token/lookup-self' };
    const body = await client.request({ method: 'GET', path: context.path, token, namespace: login.namespace, operation: context.operation });
    const { data } = parseVaultResponse(lookupSelfResponse, body, context);
    return heldToken(token, data.accessor, data.ttl, data.renewable ?? false, data.creation_ttl || data.ttl, since, login.namespace);
  }
  const path = authPath(login);
  const secret = login.method === 'appRole' ? await login.secretId() : await login.jwt();
  const credentials = login.method === 'appRole' ? { role_id: login.roleId, secret_id: secret } : { role: login.role, jwt: secret };
  const context: VaultRequestContext = { operation: 'login', method: 'POST', path };
  const body = await client.request({ method: 'POST', path, body: credentials, namespace: login.namespace, operation: 'login', sensitive: [secret] });
  const { auth } = parseVaultResponse(authResponse, body, context);
  return heldToken(auth.client_token, auth.accessor, auth.lease_duration, auth.renewable, auth.lease_duration, since, login.namespace);
}

export class VaultTokenManager {
  private readonly client: VaultClient;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly timers: Timers;
  private readonly log: VaultLogger;
  private readonly onRenewal: VaultTokenManagerOptions['onRenewal'];
  private readonly renewAtFraction: number;
  private readonly jitterFraction: number;
  private readonly expiryMarginMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly entries = new Map<string, Entry>();
  private stopped = false;

  constructor(options: VaultTokenManagerOptions) {
    this.client = options.client;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.timers = options.timers ?? unrefTimers;
    this.log = options.logger ?? silentVaultLogger;
    this.onRenewal = options.onRenewal;
    this.renewAtFraction = options.renewAtFraction ?? 2 / 3;
    this.jitterFraction = options.jitterFraction ?? 0.1;
    this.expiryMarginMs = options.expiryMarginMs ?? 10_000;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
  }

  /**
   * A valid token for `identityKey` (a name safe to log, e.g. 'team-a/kubernetes/team-a-role'). Logs in only
   * when there is no usable token; concurrent callers share one login. `login` is remembered for background
   * re-logins, the latest call's wins.
   */
  async getToken(identityKey: string, login: VaultLogin): Promise<string> {
    if (this.stopped) throw new Error('the Vault token manager is stopped');
    let entry = this.entries.get(identityKey);
    if (!entry) {
      entry = { login, token: undefined, inflight: undefined, timer: undefined, dueAt: 0, action: 'renew' };
      this.entries.set(identityKey, entry);
    }
    entry.login = login;
    if (entry.token && this.usable(entry.token)) return entry.token.clientToken;
    return (await this.loginFor(identityKey, entry)).clientToken;
  }

  /**
   * Runs `fn` with the identity's token. When Vault denies it and lookup-self shows the token itself is no
   * longer valid (revoked, expired), logs in again once and retries; a policy denial is thrown as is.
   */
  async withToken<T>(identityKey: string, login: VaultLogin, fn: (token: string) => Promise<T>): Promise<T> {
    const token = await this.getToken(identityKey, login);
    try {
      return await fn(token);
    } catch (err) {
      if (!(err instanceof VaultError) || err.kind !== 'Denied' || (await this.tokenStillValid(token, login.namespace))) throw err;
      this.log.info({ identity: identityKey }, 'Vault no longer accepts the token; logging in again');
      this.invalidate(identityKey, token);
      return fn(await this.getToken(identityKey, login));
    }
  }

  /**
   * Forgets the identity's token so the next getToken logs in. With `token`, only if that is still the current
   * token: many callers failing with the same revoked token cause one new login, not one each.
   * Without `token`, forgets the identity altogether.
   */
  invalidate(identityKey: string, token?: string): void {
    const entry = this.entries.get(identityKey);
    if (!entry) return;
    if (token === undefined) {
      this.clearTimer(entry);
      this.entries.delete(identityKey);
      return;
    }
    if (entry.token?.clientToken !== token) return;
    this.clearTimer(entry);
    entry.token = undefined;
  }

  /** The current token's expiry: dynamic leases die with the token that created them. */
  tokenInfo(identityKey: string): TokenInfo | undefined {
    const held = this.entries.get(identityKey)?.token;
    if (!held) return undefined;
    return {
      expiresAt: held.expiresAt, renewable: held.renewable, accessor: held.accessor,
      ttlSeconds: held.ttlMs / 1000, obtainedAt: held.obtainedAt,
    };
  }

  /** Clears every timer; tokens are left to expire (revoking them would revoke their leases too). */
  stop(): void {
    this.stopped = true;
    for (const entry of this.entries.values()) this.clearTimer(entry);
    this.entries.clear();
  }

  private usable(held: HeldToken): boolean {
    return held.expiresAt - this.clock.now() > Math.min(this.expiryMarginMs, held.ttlMs / 10);
  }

  private loginFor(identityKey: string, entry: Entry): Promise<HeldToken> {
    if (entry.inflight) return entry.inflight;
    const attempt = (async () => {
      const held = await performLogin(this.client, entry.login, this.clock);
      // An identity forgotten or a manager stopped meanwhile: the waiting callers get the token, nobody keeps it.
      if (!this.stopped && this.entries.get(identityKey) === entry) {
        entry.token = held;
        this.schedule(identityKey, entry);
        this.log.info(
          { identity: identityKey, ttlSeconds: held.ttlMs / 1000, renewable: held.renewable },
          'logged in to Vault',
        );
      }
      return held;
    })();
    entry.inflight = attempt;
    const settled = (): void => {
      if (entry.inflight === attempt) entry.inflight = undefined;
    };
    attempt.then(settled, settled);
    return attempt;
  }

  /** Plans the next renewal (or login, when renewing cannot help) at a share of the remaining lifetime. */
  private schedule(identityKey: string, entry: Entry): void {
    this.clearTimer(entry);
    const held = entry.token;
    if (!held || !Number.isFinite(held.expiresAt)) return;
    const lifetime = Math.max(0, held.expiresAt - this.clock.now());
    const delay = lifetime * this.renewAtFraction + this.random() * lifetime * this.jitterFraction;
    this.arm(identityKey, entry, held.renewable && !held.truncated ? 'renew' : 'relogin', delay);
  }

  private arm(identityKey: string, entry: Entry, action: Entry['action'], delayMs: number): void {
    this.clearTimer(entry);
    entry.action = action;
    entry.dueAt = this.clock.now() + delayMs;
    this.setTimer(identityKey, entry);
  }

  private setTimer(identityKey: string, entry: Entry): void {
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, entry.dueAt - this.clock.now()));
    entry.timer = this.timers.setTimeout(() => {
      entry.timer = undefined;
      this.fire(identityKey, entry).catch((err: unknown) => {
        this.log.error({ identity: identityKey, err: describeError(err) }, 'Vault token maintenance failed unexpectedly');
      });
    }, wait);
  }

  private clearTimer(entry: Entry): void {
    if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
    entry.timer = undefined;
  }

  private current(identityKey: string, entry: Entry, held: HeldToken): boolean {
    return !this.stopped && this.entries.get(identityKey) === entry && entry.token === held;
  }

  private async fire(identityKey: string, entry: Entry): Promise<void> {
    const held = entry.token;
    if (!held || this.stopped || this.entries.get(identityKey) !== entry) return;
    if (this.clock.now() < entry.dueAt) return this.setTimer(identityKey, entry); // a clamped long timer
    if (entry.action === 'renew') return this.renew(identityKey, entry, held);
    return this.relogin(identityKey, entry, held);
  }

  private async renew(identityKey: string, entry: Entry, held: HeldToken): Promise<void> {
    const context: VaultRequestContext = { operation: 'token-renew', method: 'POST', path: 'auth/token/renew-self' };
    const since = this.clock.now();
    let granted: z.infer<typeof authResponse>['auth'];
    try {
      const body = await this.client.request({
        method: 'POST', path: context.path, token: held.clientToken, namespace: held.namespace,
        operation: context.operation, body: { increment: held.incrementSeconds },
      });
      granted = parseVaultResponse(authResponse, body, context).auth;
    } catch (err) {
      if (!this.current(identityKey, entry, held)) return;
      this.report(identityKey, 'failed');
      if (err instanceof VaultError && err.retryable) {
        // Vault is unreachable or busy: logging in would fail the same way; keep the token and try again.
        this.log.warn({ identity: identityKey, kind: err.kind }, 'Vault token renewal failed; will retry');
        return this.retryLater(identityKey, entry, held, 'renew');
      }
      this.log.warn({ identity: identityKey, err: describeError(err) }, 'Vault refused to renew the token; logging in again');
      return this.relogin(identityKey, entry, held);
    }
    if (!this.current(identityKey, entry, held)) return;
    held.ttlMs = granted.lease_duration * 1000;
    held.expiresAt = since + held.ttlMs;
    held.renewable = granted.renewable;
    held.truncated = granted.lease_duration < held.incrementSeconds;
    this.report(identityKey, 'renewed');
    this.log.debug(
      { identity: identityKey, ttlSeconds: granted.lease_duration, renewable: granted.renewable, nearMaxTtl: held.truncated },
      'renewed the Vault token',
    );
    this.schedule(identityKey, entry);
  }

  private async relogin(identityKey: string, entry: Entry, held: HeldToken): Promise<void> {
    try {
      await this.loginFor(identityKey, entry);
    } catch (err) {
      if (!this.current(identityKey, entry, held)) return;
      this.report(identityKey, 'failed');
      this.log.warn({ identity: identityKey, err: describeError(err) }, 'logging in to Vault again failed; will retry');
      return this.retryLater(identityKey, entry, held, 'relogin');
    }
    this.report(identityKey, 'relogin');
  }

  /** Retries while the token still has a useful life; after that, the next getToken logs in on demand. */
  private retryLater(identityKey: string, entry: Entry, held: HeldToken, action: Entry['action']): void {
    const remaining = held.expiresAt - this.clock.now();
    if (!this.usable(held)) {
      this.log.warn({ identity: identityKey }, 'the Vault token expires before it could be renewed; dropping it');
      this.clearTimer(entry);
      entry.token = undefined;
      return;
    }
    const delay = Math.min(this.maxRetryDelayMs, remaining / 3) * (0.5 + this.random() / 2);
    this.arm(identityKey, entry, action, Math.max(1_000, delay));
  }

  private report(identityKey: string, outcome: RenewalOutcome): void {
    if (!this.onRenewal) return;
    try {
      this.onRenewal(identityKey, outcome);
    } catch {
      // a metrics hook must not break token maintenance
    }
  }

  private async tokenStillValid(token: string, namespace: string | undefined): Promise<boolean> {
    try {
      await this.client.request({ method: 'GET', path: 'auth/token/lookup-self', token, namespace, operation: 'token-lookup' });
      return true;
    } catch (err) {
      return !(err instanceof VaultError && err.kind === 'Denied');
    }
  }
}

/**
 * Error text for logs: VaultErrors are built to be safe; other errors (from the caller's credential callbacks,
 * whose messages we do not control) are reduced to their type and code.
 */
function describeError(err: unknown): string {
  if (err instanceof VaultError) return err.message;
  const code = (err as { code?: unknown } | undefined)?.code;
  const suffix = typeof code === 'number' || typeof code === 'string' ? ` (code ${code})` : '';
  return err instanceof Error ? `${err.name}${suffix} from a credential callback` : 'unknown error';
}
