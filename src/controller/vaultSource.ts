// Reads a VaultSecret's source from Vault as the VaultSecret's own namespace: resolves the connection
// (a VaultConnection, or the operator's default), logs in with credentials from that namespace only
// (TokenRequest for its ServiceAccount, or its Secrets), and maps Vault failures to condition reasons.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CoreV1Api } from '@kubernetes/client-node';
import { VaultConnectionSpecSchema, parseDuration, type VaultSecretSpec } from '../api/index.ts';
import type { Config } from '../config.ts';
import { classifyKubeError } from '../kube/errors.ts';
import type { ServiceAccountTokens } from '../kube/identity.ts';
import type { KubeObject, WatchCache } from '../kube/listWatch.ts';
import { mergeSources, selectKeys, type SourceData } from '../render/secretData.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import {
  VaultClient, VaultTokenManager, isVaultError, mayHaveIssued, readDynamic, readKv, renewLease, revokeLease, unrefTimers,
  type VaultConnection, type VaultLogin, type VaultRequestInfo, type RenewalOutcome,
} from '../vault/index.ts';
import type { SecretSource, SourceResult } from './reconciler.ts';
import { SyncError } from './syncError.ts';

export interface VaultSourceDeps {
  log: Logger;
  clock: Clock;
  config: Config;
  connections: WatchCache<KubeObject & { spec?: unknown }>;
  core: CoreV1Api;
  tokens: ServiceAccountTokens;
  onVaultRequest?: (info: VaultRequestInfo) => void;
  onTokenRenewal?: (identityKey: string, outcome: RenewalOutcome) => void;
}

interface ConnectionEntry {
  fingerprint: string;
  client: VaultClient;
  tokens: VaultTokenManager;
}

type KvSourceSpec = { mount: string; path: string; version?: number; kvVersion?: 1 | 2; keys?: string[] };

const DEFAULT_CONNECTION = '<operator default>';
const SECRET_CACHE_MS = 30_000;

export class VaultSecretSource implements SecretSource {
  private readonly deps: VaultSourceDeps;
  private readonly entries = new Map<string, ConnectionEntry>();
  private readonly secretCache = new Map<string, { at: number; data: Record<string, string> | undefined }>();
  private defaultCaPem: string | undefined;

  constructor(deps: VaultSourceDeps) {
    this.deps = deps;
    if (deps.config.vaultCaFile) this.defaultCaPem = readFileSync(deps.config.vaultCaFile, 'utf8');
  }

  async read(target: { namespace: string; name: string; uid: string }, spec: VaultSecretSpec): Promise<SourceResult> {
    const { entry, token, tokenKey, vaultNamespace, describe } = await this.session(target, spec);
    const sources = kvSources(spec);
    const results: SourceData[] = [];
    const versions: SourceResult['kv'] = [];
    for (const source of sources) {
      try {
        const secret = await readKv(entry.client, token, {
          mount: source.mount, path: source.path, version: source.version, kvVersion: source.kvVersion, namespace: vaultNamespace,
        });
        const { data, missing } = selectKeys(secret.data, source.keys);
        if (missing.length > 0) {
          throw new SyncError('KeyNotFound',
            `${source.mount}/${source.path} has no key(s) ${missing.map((k) => JSON.stringify(k)).join(', ')}; fix spec.source keys or add them in Vault`, false);
        }
        results.push(data);
        versions.push({ mount: source.mount, path: source.path, ...(secret.version !== undefined ? { version: secret.version } : {}) });
      } catch (err) {
        if (err instanceof SyncError) throw err;
        if (isVaultError(err) && err.kind === 'Denied') {
          // A revoked or expired token looks like a policy denial; the next attempt logs in afresh.
          entry.tokens.invalidate(tokenKey, token);
        }
        throw this.readFailure(err, `${source.mount}/${source.path}`, describe);
      }
    }
    return { data: mergeSources(results), kv: versions };
  }

  /**
   * Issues new credentials from a database or dynamic source. Returns the lease and the expiry of the
   * token that issued it, because the lease dies with that token.
   */
  async issue(target: { namespace: string; name: string; uid: string }, spec: VaultSecretSpec, opts: { freshToken?: boolean } = {}): Promise<IssuedSecret> {
    const session = await this.session(target, spec, opts.freshToken);
    const request = dynamicRequest(spec);
    try {
      const secret = await readDynamic(session.entry.client, session.token, { ...request, namespace: session.vaultNamespace });
      const parent = session.entry.tokens.tokenInfo(session.tokenKey);
      const parentTokenExpiresAt = parent?.expiresAt;
      const now = this.deps.clock.now();
      return {
        data: secret.data,
        lease: secret.leaseId
          ? { leaseId: secret.leaseId, leaseDurationSeconds: secret.leaseDurationSeconds, renewable: secret.renewable, issuedAt: now }
          : undefined,
        // Static database roles answer with the time until Vault rotates the password.
        ttlSeconds: typeof secret.data.ttl === 'number' ? secret.data.ttl : secret.leaseDurationSeconds,
        parentTokenExpiresAt: parentTokenExpiresAt !== undefined && Number.isFinite(parentTokenExpiresAt) ? parentTokenExpiresAt : undefined,
        parentTokenObtainedAt: parent?.obtainedAt,
      };
    } catch (err) {
      if (isVaultError(err) && err.kind === 'Denied') session.entry.tokens.invalidate(session.tokenKey, session.token);
      const failure = this.readFailure(err, request.path, session.describe);
      // Anything but a Vault error we can classify is treated as a lost answer: better a warning too many.
      const unknown = isVaultError(err) ? mayHaveIssued(err) : true;
      throw unknown ? new SyncError(failure.reason, failure.message, failure.transient, { issueOutcomeUnknown: true }) : failure;
    }
  }

  async renew(target: { namespace: string; name: string; uid: string }, spec: VaultSecretSpec, leaseId: string, incrementSeconds: number) {
    const session = await this.session(target, spec);
    try {
      return await renewLease(session.entry.client, session.token, leaseId, incrementSeconds, { namespace: session.vaultNamespace });
    } catch (err) {
      throw this.readFailure(err, `lease ${leaseId} (renew)`, session.describe);
    }
  }

  async revoke(target: { namespace: string; name: string; uid: string }, spec: VaultSecretSpec, leaseId: string): Promise<void> {
    const session = await this.session(target, spec);
    try {
      await revokeLease(session.entry.client, session.token, leaseId, { namespace: session.vaultNamespace });
    } catch (err) {
      throw this.readFailure(err, `lease ${leaseId} (revoke)`, session.describe);
    }
  }

  /** The token this VaultSecret's identity uses now: when it was obtained (its identity) and when it expires. */
  async currentToken(target: { namespace: string; name: string; uid: string }, spec: VaultSecretSpec): Promise<{ obtainedAt: number; expiresAt: number } | undefined> {
    const session = await this.session(target, spec);
    const info = session.entry.tokens.tokenInfo(session.tokenKey);
    return info && Number.isFinite(info.expiresAt) ? { obtainedAt: info.obtainedAt, expiresAt: info.expiresAt } : undefined;
  }

  /** `freshToken`: log in anew first (the current token is about to expire and would take new leases with it). */
  private async session(target: { namespace: string; name: string; uid: string }, spec: VaultSecretSpec, freshToken = false) {
    const { key, connection } = await this.resolveConnection(target.namespace, spec);
    const entry = this.entryFor(key, connection);
    const vaultNamespace = spec.vault?.namespace ?? connection.namespace;
    const { identityKey, login, describe } = this.loginFor(target.namespace, spec, vaultNamespace);
    const tokenKey = `${key}|${identityKey}`;
    if (freshToken) entry.tokens.invalidate(tokenKey);
    try {
      const token = await entry.tokens.getToken(tokenKey, login);
      return { entry, token, tokenKey, vaultNamespace, describe };
    } catch (err) {
      if (err instanceof SyncError) throw err;
      throw this.loginFailure(err, describe, connection.address);
    }
  }

  async close(): Promise<void> {
    for (const entry of this.entries.values()) {
      entry.tokens.stop();
      await entry.client.close();
    }
    this.entries.clear();
  }

  private entryFor(key: string, connection: VaultConnection): ConnectionEntry {
    const fingerprint = createHash('sha256').update(JSON.stringify(connection)).digest('hex');
    const existing = this.entries.get(key);
    if (existing && existing.fingerprint === fingerprint) return existing;
    if (existing) {
      existing.tokens.stop();
      void existing.client.close();
    }
    const log = this.deps.log.child({ connection: key });
    const client = new VaultClient(connection, { logger: log, clock: this.deps.clock, onRequest: this.deps.onVaultRequest });
    const tokens = new VaultTokenManager({ client, clock: this.deps.clock, timers: unrefTimers, logger: log, onRenewal: this.deps.onTokenRenewal });
    const entry = { fingerprint, client, tokens };
    this.entries.set(key, entry);
    return entry;
  }

  private async resolveConnection(namespace: string, spec: VaultSecretSpec): Promise<{ key: string; connection: VaultConnection }> {
    const ref = spec.vault?.connectionRef;
    const timeoutMs = parseDuration(this.deps.config.vaultTimeout);
    if (!ref) {
      if (!this.deps.config.vaultAddress) {
        throw new SyncError('ConnectionNotFound',
          'spec.vault.connectionRef is not set and the operator has no default Vault address (--vault-address / VSYNC_VAULT_ADDRESS); name a VaultConnection', false);
      }
      return {
        key: DEFAULT_CONNECTION,
        connection: {
          address: this.deps.config.vaultAddress,
          caCertPem: this.defaultCaPem,
          tlsServerName: this.deps.config.vaultTlsServerName,
          namespace: this.deps.config.vaultNamespace,
          timeoutMs,
        },
      };
    }
    const connNamespace = ref.namespace ?? namespace;
    const key = `${connNamespace}/${ref.name}`;
    const obj = this.deps.connections.get(key);
    if (!obj) throw new SyncError('ConnectionNotFound', `VaultConnection ${key} (spec.vault.connectionRef) does not exist`, false);
    const parsed = VaultConnectionSpecSchema.safeParse(obj.spec);
    if (!parsed.success) {
      throw new SyncError('ConnectionNotFound', `VaultConnection ${key} has an invalid spec: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, false);
    }
    const conn = parsed.data;
    if (connNamespace !== namespace) {
      const allowed = conn.allowedNamespaces ?? [];
      if (!allowed.includes('*') && !allowed.includes(namespace)) {
        throw new SyncError('ConnectionNotAllowed',
          `VaultConnection ${key} does not list namespace ${namespace} in spec.allowedNamespaces; ask its owners to add it, or create a VaultConnection in ${namespace}`, false);
      }
    }
    let caCertPem: string | undefined;
    if (conn.caBundleSecretRef) {
      caCertPem = await this.secretValue(connNamespace, conn.caBundleSecretRef.name, conn.caBundleSecretRef.key ?? 'ca.crt', `VaultConnection ${key} spec.caBundleSecretRef`);
    }
    let clientCertPem: string | undefined;
    let clientKeyPem: string | undefined;
    if (conn.clientCertSecretRef) {
      const what = `VaultConnection ${key} spec.clientCertSecretRef`;
      clientCertPem = await this.secretValue(connNamespace, conn.clientCertSecretRef.name, 'tls.crt', what);
      clientKeyPem = await this.secretValue(connNamespace, conn.clientCertSecretRef.name, 'tls.key', what);
    }
    return {
      key,
      connection: {
        address: conn.address,
        caCertPem,
        tlsServerName: conn.tlsServerName,
        clientCertPem,
        clientKeyPem,
        namespace: conn.namespace,
        headers: conn.headers,
        timeoutMs: conn.timeout ? parseDuration(conn.timeout) : timeoutMs,
      },
    };
  }

  private loginFor(namespace: string, spec: VaultSecretSpec, vaultNamespace: string | undefined): { identityKey: string; login: VaultLogin; describe: string } {
    const auth = spec.vault?.auth as Record<string, any> | undefined;
    if (auth?.kubernetes) {
      const k = auth.kubernetes as { role: string; serviceAccountName?: string; audiences?: string[]; mount?: string; tokenExpirationSeconds?: number };
      const sa = k.serviceAccountName ?? 'default';
      const audiences = k.audiences ?? ['vault'];
      const mount = k.mount ?? 'kubernetes';
      return {
        identityKey: `${vaultNamespace ?? ''}|${namespace}|kubernetes|${mount}|${k.role}|${sa}|${audiences.join(',')}`,
        describe: `Kubernetes auth (mount ${mount}, role ${k.role}) as ServiceAccount ${namespace}/${sa}`,
        login: {
          method: 'kubernetes', mount, role: k.role, namespace: vaultNamespace,
          jwt: () => this.serviceAccountJwt(namespace, sa, audiences, k.tokenExpirationSeconds ?? 600),
        },
      };
    }
    if (auth?.jwt) {
      const j = auth.jwt as { role: string; mount?: string; serviceAccountName?: string; audiences?: string[]; secretRef?: { name: string; key: string } };
      const mount = j.mount ?? 'jwt';
      const from = j.serviceAccountName ? `ServiceAccount ${namespace}/${j.serviceAccountName}` : `Secret ${namespace}/${j.secretRef?.name}`;
      return {
        identityKey: `${vaultNamespace ?? ''}|${namespace}|jwt|${mount}|${j.role}|${from}`,
        describe: `JWT auth (mount ${mount}, role ${j.role}) with ${from}`,
        login: {
          method: 'jwt', mount, role: j.role, namespace: vaultNamespace,
          jwt: () => j.serviceAccountName
            ? this.serviceAccountJwt(namespace, j.serviceAccountName, j.audiences ?? ['vault'], 600)
            : this.secretValue(namespace, j.secretRef!.name, j.secretRef!.key, 'spec.vault.auth.jwt.secretRef'),
        },
      };
    }
    if (auth?.appRole) {
      const a = auth.appRole as { mount?: string; roleId: string; secretIdRef: { name: string; key: string } };
      const mount = a.mount ?? 'approle';
      return {
        identityKey: `${vaultNamespace ?? ''}|${namespace}|approle|${mount}|${a.roleId}|${a.secretIdRef.name}`,
        describe: `AppRole auth (mount ${mount}) with the secret ID in Secret ${namespace}/${a.secretIdRef.name}`,
        login: {
          method: 'appRole', mount, roleId: a.roleId, namespace: vaultNamespace,
          secretId: () => this.secretValue(namespace, a.secretIdRef.name, a.secretIdRef.key, 'spec.vault.auth.appRole.secretIdRef'),
        },
      };
    }
    if (auth?.token) {
      const t = auth.token as { secretRef: { name: string; key?: string } };
      return {
        identityKey: `${vaultNamespace ?? ''}|${namespace}|token|${t.secretRef.name}`,
        describe: `the token in Secret ${namespace}/${t.secretRef.name}`,
        login: {
          method: 'token', namespace: vaultNamespace,
          token: () => this.secretValue(namespace, t.secretRef.name, t.secretRef.key ?? 'token', 'spec.vault.auth.token.secretRef'),
        },
      };
    }
    throw new SyncError('InvalidSpec', 'spec.vault.auth names no auth method', false);
  }

  private async serviceAccountJwt(namespace: string, serviceAccount: string, audiences: string[], expirationSeconds: number): Promise<string> {
    try {
      return await this.deps.tokens.request(namespace, serviceAccount, audiences, expirationSeconds);
    } catch (err) {
      const kube = classifyKubeError(err);
      if (kube.kind === 'NotFound') {
        throw new SyncError('ServiceAccountNotFound', `ServiceAccount ${namespace}/${serviceAccount} does not exist; create it or set spec.vault.auth.kubernetes.serviceAccountName`, false);
      }
      throw new SyncError('KubernetesError', `TokenRequest for ServiceAccount ${namespace}/${serviceAccount} failed: ${kube.kind}: ${kube.message}`, true);
    }
  }

  /** A value from a Secret of the VaultSecret's (or connection's) own namespace, cached briefly. */
  private async secretValue(namespace: string, name: string, key: string, what: string): Promise<string> {
    const cacheKey = `${namespace}/${name}`;
    const now = this.deps.clock.now();
    let cached = this.secretCache.get(cacheKey);
    if (!cached || now - cached.at > SECRET_CACHE_MS) {
      try {
        const secret = await this.deps.core.readNamespacedSecret({ name, namespace });
        cached = { at: now, data: secret.data ?? {} };
      } catch (err) {
        if (classifyKubeError(err).kind !== 'NotFound') throw err;
        cached = { at: now, data: undefined };
      }
      this.secretCache.set(cacheKey, cached);
    }
    if (!cached.data) throw new SyncError('CredentialsNotFound', `Secret ${namespace}/${name} (${what}) does not exist`, false);
    const value = cached.data[key];
    if (value === undefined) throw new SyncError('CredentialsNotFound', `Secret ${namespace}/${name} (${what}) has no key "${key}"`, false);
    return Buffer.from(value, 'base64').toString('utf8').trim();
  }

  private loginFailure(err: unknown, describe: string, address: string): SyncError {
    if (!isVaultError(err)) return new SyncError('VaultLoginFailed', `login to Vault at ${address} with ${describe} failed: ${String((err as Error)?.message ?? err)}`, true);
    if (err.kind === 'Unreachable' || err.kind === 'Transient') {
      return new SyncError('VaultUnreachable', `Vault at ${address} is unreachable (${err.code ?? err.status ?? err.kind}) while logging in with ${describe}; the Secret keeps its last data`, true);
    }
    if (err.kind === 'Sealed') return new SyncError('VaultSealed', `Vault at ${address} is sealed; the Secret keeps its last data`, true);
    if (err.kind === 'Throttled') return new SyncError('VaultThrottled', `Vault at ${address} throttled the login; retrying with backoff`, true);
    return new SyncError('VaultLoginFailed',
      `Vault refused the login with ${describe} (${err.vaultErrors.join('; ') || err.kind}); ` +
      (describe.startsWith('Kubernetes auth') ? 'check that the Vault role exists and is bound to this ServiceAccount and namespace'
        : 'check the credentials and that they may look themselves up (the default policy allows it)'), true);
  }

  private readFailure(err: unknown, where: string, describe: string): SyncError {
    if (!isVaultError(err)) return new SyncError('VaultUnreachable', `reading ${where} failed: ${String((err as Error)?.message ?? err)}`, true);
    switch (err.kind) {
      case 'Denied':
        return new SyncError('VaultPermissionDenied', `Vault denied reading ${where} to ${describe}; grant read on it in the role's policy, or fix spec.source`, true);
      case 'NotFound':
        return new SyncError('VaultPathNotFound', `${where} does not exist in Vault (or the pinned version is deleted); write it or fix spec.source`, true);
      case 'Sealed':
        return new SyncError('VaultSealed', `Vault is sealed; reading ${where} will be retried and the Secret keeps its last data`, true);
      case 'Throttled':
        return new SyncError('VaultThrottled', `Vault throttled reading ${where}; retrying with backoff`, true);
      case 'Invalid':
        return new SyncError('VaultRequestInvalid', `Vault rejected the request for ${where}: ${err.vaultErrors.join('; ') || err.message}`, false);
      default:
        return new SyncError('VaultUnreachable', `Vault is unreachable (${err.code ?? err.status ?? err.kind}) reading ${where}; the Secret keeps its last data`, true);
    }
  }
}

export interface IssuedSecret {
  data: Record<string, unknown>;
  lease?: { leaseId: string; leaseDurationSeconds: number; renewable: boolean; issuedAt: number };
  ttlSeconds: number;
  parentTokenExpiresAt?: number;
  /** Identifies the issuing token within this process (changes with every login). */
  parentTokenObtainedAt?: number;
}

function dynamicRequest(spec: VaultSecretSpec): { path: string; method: 'GET' | 'POST' | 'PUT'; params?: Record<string, string> } {
  const { database, dynamic } = spec.source;
  if (database) return { path: `${database.mount}/${database.static ? 'static-creds' : 'creds'}/${database.role}`, method: 'GET' };
  if (dynamic) return { path: dynamic.path, method: dynamic.method, params: dynamic.method === 'GET' ? undefined : dynamic.params };
  throw new SyncError('InvalidSpec', 'spec.source is not a database or dynamic source', false);
}

export function isDynamicSpec(spec: VaultSecretSpec): boolean {
  return spec.source.database !== undefined || spec.source.dynamic !== undefined;
}

function kvSources(spec: VaultSecretSpec): KvSourceSpec[] {
  const source = spec.source as { kv?: KvSourceSpec; kvMerge?: { sources: KvSourceSpec[] } };
  if (source.kv) return [source.kv];
  if (source.kvMerge) return source.kvMerge.sources;
  throw new SyncError('InvalidSpec', 'spec.source names no source kind this operator supports', false);
}
