// Reconcile one VaultSecret: decide (pure, decide.ts), act (read Vault, write the Secret), report (status,
// events). A refresh that finds nothing new writes nothing to Kubernetes.
import type { V1Secret } from '@kubernetes/client-node';
import {
  GROUP, VERSION, VAULTSECRET_KIND, parseDuration, parseVaultSecretSpec, type VaultSecretSpec, type VaultSecretStatus,
} from '../api/index.ts';
import type { CustomObjectStore } from '../kube/customObjects.ts';
import { classifyKubeError } from '../kube/errors.ts';
import type { EventSink } from '../kube/events.ts';
import { objectKey, type KubeObject, type WatchCache, type ObjectMeta } from '../kube/listWatch.ts';
import {
  FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, VAULTSECRET_LABEL, secretData, type SecretStore,
} from '../kube/secrets.ts';
import { dataHmac, invalidSecretKeys, sameData, toBytes, type SourceData } from '../render/secretData.ts';
import { renderTemplates, TemplateError } from '../render/template.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import { sameJson, setReadyAndSynced } from './conditions.ts';
import { vaultSecretEventTarget as eventTarget, vaultSecretRef as ref } from './vaultSecretObject.ts';
import { decideSync, nextRefreshAt, stableJitter, type SecretState, type SyncReason } from './decide.ts';
import { SyncError } from './syncError.ts';
import { DynamicSecretSync, type DynamicSource, type UntrackedCause } from './dynamicSync.ts';
import type { IssueReason } from './leasePlan.ts';
import { isDynamicSpec } from './vaultSource.ts';
import type { WorkloadRestarter } from './workloads.ts';

export const FORCE_SYNC_ANNOTATION = 'vaultsync.dev/force-sync';
export const CLEANUP_FINALIZER = 'vaultsync.dev/cleanup';

export type { VaultSecretStatus };

export interface VaultSecretObject extends KubeObject {
  spec?: unknown;
  status?: VaultSecretStatus;
}

export interface SourceResult {
  data: SourceData;
  kv: { mount: string; path: string; version?: number }[];
}

/** Reads a VaultSecret's source from Vault as the VaultSecret's own namespace identity. */
export interface SecretSource {
  read(target: { namespace: string; name: string; uid: string }, spec: VaultSecretSpec): Promise<SourceResult>;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface ReconcilerDeps {
  clock: Clock;
  log: Logger;
  vaultSecrets: WatchCache<VaultSecretObject>;
  /** Metadata-only cache of the Secrets the operator writes (label-selected). */
  secretMeta: WatchCache<KubeObject>;
  secrets: SecretStore;
  objects: CustomObjectStore;
  events: EventSink;
  source: SecretSource;
  hmacKey: Buffer;
  /** Issues, renews and revokes leases for database and dynamic sources. */
  dynamic?: DynamicSource;
  restarter?: WorkloadRestarter;
  onRotation?: () => void;
  onRevocation?: (result: 'revoked' | 'failed') => void;
  onRestart?: (kind: string) => void;
  /** A Vault lease may exist that no status records (LeaseMayBeUntracked). */
  onUntrackedLease?: (cause: UntrackedCause) => void;
  leaseLimiter?: { take(): Promise<void> };
  /** Outcome hook for metrics. */
  onSync?: (outcome: { reason: string; result: 'written' | 'unchanged' | 'failed'; failure?: string }) => void;
}

interface Memory {
  lastSyncAt?: number;
  /**
   * resourceVersion of our last status write. Until the watch cache shows it, the cached status is older
   * than what we know, and acting on it could issue credentials twice (the controller-runtime
   * "expectations" pattern).
   */
  expectRv?: string;
  /** resourceVersion of the Secret as last written or verified by us. */
  secretRv?: string;
  failed: boolean;
}

export class VaultSecretReconciler {
  private readonly deps: ReconcilerDeps;
  private readonly memory = new Map<string, Memory>();

  private readonly dynamicSync: DynamicSecretSync | undefined;

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
    this.dynamicSync = deps.dynamic && deps.restarter ? new DynamicSecretSync({
      clock: deps.clock,
      log: deps.log,
      source: deps.dynamic,
      secrets: deps.secrets,
      events: deps.events,
      restarter: deps.restarter,
      hmacKey: deps.hmacKey,
      writeStatus: (obj, status) => this.writeStatus(obj, status),
      patchStatus: (obj, fields) => this.patchStatus(obj, fields),
      writeSecret: (obj, spec, raw) => this.writeIssued(obj, spec, raw),
      onUntrackedLease: deps.onUntrackedLease,
      onRotation: deps.onRotation,
      onRevocation: deps.onRevocation,
      onRestart: deps.onRestart,
      leaseLimiter: deps.leaseLimiter,
    }) : undefined;
  }

  private async writeIssued(obj: VaultSecretObject, spec: VaultSecretSpec, raw: Record<string, unknown>): Promise<Record<string, Buffer>> {
    const meta = obj.metadata;
    const destination = spec.destination?.name ?? meta.name;
    const data = await renderData(spec, raw, { namespace: meta.namespace!, name: meta.name });
    const memory = this.memory.get(objectKey(meta)) ?? { failed: false };
    this.memory.set(objectKey(meta), memory);
    await this.writeDestination(obj, spec, destination, data, dataHmac(this.deps.hmacKey, data), memory);
    return data;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const obj = this.deps.vaultSecrets.get(key);
    if (!obj) {
      this.memory.delete(key);
      return {};
    }
    const meta = obj.metadata;
    const log = this.deps.log.child({ vaultSecret: key });
    const parsed = parseVaultSecretSpec(obj.spec);

    if (meta.deletionTimestamp) {
      await this.finalize(obj, parsed.ok ? parsed.spec : undefined, log);
      this.memory.delete(key);
      return {};
    }
    if (!parsed.ok) {
      await this.reportFailure(obj, new SyncError('InvalidSpec', `spec is invalid: ${parsed.message}`, false));
      return {};
    }
    const spec = parsed.spec;
    if (await this.ensureFinalizer(obj, spec)) return {};

    const now = this.deps.clock.now();
    const memory = this.memory.get(key) ?? { failed: false };
    this.memory.set(key, memory);
    if (memory.expectRv !== undefined) {
      if (olderThan(meta.resourceVersion, memory.expectRv)) return { requeueAfterMs: 200 };
      memory.expectRv = undefined;
    }
    const destination = spec.destination?.name ?? meta.name;
    const refreshIntervalMs = parseDuration(spec.refresh?.interval ?? '1h');
    const status = obj.status ?? {};
    const syncedOk = status.conditions?.some((c) => c.type === 'Synced' && c.status === 'True');
    const statusSyncAt = status.lastSyncTime ? Date.parse(status.lastSyncTime) : undefined;
    const lastSyncAt = maxDefined(statusSyncAt, memory.lastSyncAt);
    const secretState = await this.secretState(meta.namespace!, destination, status, memory);

    if (isDynamicSpec(spec)) return this.reconcileDynamic(obj, spec, {
      memory, now, secretState, syncedOk: syncedOk === true, key,
    });

    const decision = decideSync({
      now,
      generation: meta.generation ?? 0,
      syncedGeneration: syncedOk ? status.observedGeneration : undefined,
      lastSyncAt: syncedOk ? lastSyncAt : undefined,
      refreshIntervalMs,
      forceSyncRequested: meta.annotations?.[FORCE_SYNC_ANNOTATION],
      forceSyncHandled: status.lastForceSync,
      secret: secretState,
      lastAttemptFailed: memory.failed,
      jitter: stableJitter(meta.uid ?? key),
    });
    if (!decision.sync) return { requeueAfterMs: Math.max(1000, decision.nextAt - now) };

    try {
      const written = await this.sync(obj, spec, destination, decision.reason, memory, now);
      memory.failed = false;
      memory.lastSyncAt = now;
      this.deps.onSync?.({ reason: decision.reason, result: written ? 'written' : 'unchanged' });
      return { requeueAfterMs: Math.max(1000, nextRefreshAt(now, refreshIntervalMs, stableJitter(meta.uid ?? key)) - now) };
    } catch (err) {
      return this.failSync(obj, memory, decision.reason, toSyncError(err, destination), refreshIntervalMs, log);
    }
  }

  /** Reports a failed sync; transient failures go back to the queue, which backs off per key. */
  private async failSync(obj: VaultSecretObject, memory: Memory, syncReason: string, failure: SyncError, retryPermanentAfterMs: number, log: Logger): Promise<ReconcileResult> {
    memory.failed = true;
    this.deps.onSync?.({ reason: syncReason, result: 'failed', failure: failure.reason });
    log.warn({ reason: failure.reason, syncReason, message: failure.message }, 'sync failed');
    await this.reportFailure(obj, failure);
    if (failure.transient) throw failure;
    return { requeueAfterMs: retryPermanentAfterMs };
  }

  private async reconcileDynamic(obj: VaultSecretObject, spec: VaultSecretSpec, ctx: { memory: Memory; now: number; secretState: SecretState; syncedOk: boolean; key: string }): Promise<ReconcileResult> {
    if (!this.dynamicSync) throw new Error('dynamic sources are not wired');
    const meta = obj.metadata;
    const status = obj.status ?? {};
    const force = meta.annotations?.[FORCE_SYNC_ANNOTATION];
    let issueNow: IssueReason | undefined;
    if ((status.leases?.length ?? 0) > 0 || status.dataHmac) {
      if (ctx.syncedOk && status.observedGeneration !== meta.generation) issueNow = 'SpecChanged';
      else if (force !== undefined && force !== status.lastForceSync) issueNow = 'ForceSync';
      else if (ctx.secretState === 'missing') issueNow = 'SecretMissing';
      else if (ctx.secretState === 'changed') issueNow = 'SecretChanged';
    }
    try {
      const target: VaultSecretObject = force !== undefined && force !== status.lastForceSync
        ? { ...obj, status: { ...status, lastForceSync: force } } : obj;
      const { nextAt, issued } = await this.dynamicSync.sync(target, spec, stableJitter(meta.uid ?? ctx.key), issueNow);
      ctx.memory.failed = false;
      ctx.memory.lastSyncAt = ctx.now;
      this.deps.onSync?.({ reason: issueNow ?? 'LeaseSchedule', result: issued ? 'written' : 'unchanged' });
      return { requeueAfterMs: Math.max(500, nextAt - this.deps.clock.now()) };
    } catch (err) {
      const failure = toSyncError(err, spec.destination?.name ?? meta.name);
      return this.failSync(obj, ctx.memory, issueNow ?? 'LeaseSchedule', failure, 60_000, this.deps.log.child({ vaultSecret: ctx.key }));
    }
  }

  /** Is the destination as we left it? Decided from the metadata cache; one GET after a restart. */
  private async secretState(namespace: string, name: string, status: VaultSecretStatus, memory: Memory): Promise<SecretState> {
    if (!this.deps.secretMeta.synced) return 'unknown';
    const cached = this.deps.secretMeta.get(`${namespace}/${name}`);
    if (!cached) return status.dataHmac ? 'missing' : 'unknown';
    const rv = cached.metadata.resourceVersion;
    if (memory.secretRv !== undefined) return memory.secretRv === rv ? 'unchanged' : 'changed';
    // First look since the operator started: compare the Secret's bytes with the fingerprint in status.
    if (!status.dataHmac) return 'unknown';
    const secret = await this.deps.secrets.get(namespace, name);
    if (!secret) return 'missing';
    const ours = pickKeys(secretData(secret), appliedDataKeys(secret));
    if (dataHmac(this.deps.hmacKey, ours) !== status.dataHmac) return 'changed';
    memory.secretRv = secret.metadata?.resourceVersion;
    return 'unchanged';
  }

  /** Returns true when the Secret was written. */
  private async sync(obj: VaultSecretObject, spec: VaultSecretSpec, destination: string, reason: SyncReason, memory: Memory, now: number): Promise<boolean> {
    const meta = obj.metadata;
    const namespace = meta.namespace!;
    const source = await this.deps.source.read({ namespace, name: meta.name, uid: meta.uid ?? '' }, spec);
    const data = await renderData(spec, source.data, { namespace, name: meta.name });
    const hmac = dataHmac(this.deps.hmacKey, data);

    const written = await this.writeDestination(obj, spec, destination, data, hmac, memory);

    const nowIso = new Date(now).toISOString();
    const ready = `Secret ${destination} holds ${Object.keys(data).length} key(s) from ${describeSource(spec)}`;
    const status: VaultSecretStatus = {
      ...obj.status,
      observedGeneration: meta.generation,
      secretName: destination,
      dataHmac: hmac,
      kv: source.kv,
      lastForceSync: meta.annotations?.[FORCE_SYNC_ANNOTATION] ?? obj.status?.lastForceSync,
      conditions: setReadyAndSynced(obj.status?.conditions, 'True', 'Synced', ready, meta.generation, now),
    };
    // lastSyncTime and nextSyncTime move only with a write that happens anyway: a refresh that finds nothing
    // new must not cost a status write.
    const changed = written || !sameStatus(obj.status, status);
    if (changed || !obj.status?.lastSyncTime) {
      status.lastSyncTime = nowIso;
      const refresh = parseDuration(spec.refresh?.interval ?? '1h');
      status.nextSyncTime = new Date(nextRefreshAt(now, refresh, stableJitter(meta.uid ?? meta.name))).toISOString();
      await this.writeStatus(obj, status);
    }
    if (written) {
      this.deps.events.emit(eventTarget(obj), 'Normal', 'SecretSynced',
        `wrote ${Object.keys(data).length} key(s) to Secret ${destination} from ${describeSource(spec)} (${reason})`);
    }
    return written;
  }

  /** Writes the rendered data unless the Secret already holds it; returns true when it wrote. */
  private async writeDestination(obj: VaultSecretObject, spec: VaultSecretSpec, destination: string, data: Record<string, Buffer>, hmac: string, memory: Memory): Promise<boolean> {
    const meta = obj.metadata;
    const namespace = meta.namespace!;
    const creationPolicy = spec.destination?.creationPolicy ?? 'Owner';
    const deletionPolicy = spec.destination?.deletionPolicy ?? 'Delete';
    const existing = this.deps.secretMeta.get(`${namespace}/${destination}`)?.metadata
      ?? (await this.deps.secrets.get(namespace, destination))?.metadata as ObjectMeta | undefined;
    if (existing && creationPolicy !== 'Merge' && !isOurs(existing, meta)) {
      throw new SyncError('SecretNotOwned',
        `Secret ${namespace}/${destination} exists and was not created by this VaultSecret; it is left untouched. ` +
        'Set spec.destination.creationPolicy: Merge to write into it, or choose another spec.destination.name', false);
    }
    const labels = { ...(spec.destination?.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [VAULTSECRET_LABEL]: meta.name };
    const annotations = { ...(spec.destination?.annotations ?? {}) };
    const type = spec.destination?.type ?? 'Opaque';
    const owner = creationPolicy === 'Owner' && deletionPolicy === 'Delete' && meta.uid
      ? { apiVersion: `${GROUP}/${VERSION}`, kind: VAULTSECRET_KIND, name: meta.name, uid: meta.uid }
      : undefined;

    let written = false;
    const unchangedSinceWrite = hmac === obj.status?.dataHmac && memory.secretRv !== undefined
      && this.deps.secretMeta.get(`${namespace}/${destination}`)?.metadata.resourceVersion === memory.secretRv;
    if (!unchangedSinceWrite) {
      const current = existing ? await this.deps.secrets.get(namespace, destination) : undefined;
      if (current && secretMatches(current, { data, labels, annotations, type, owner })) {
        memory.secretRv = current.metadata?.resourceVersion;
      } else {
        memory.secretRv = await this.deps.secrets.apply({ namespace, name: destination, type, labels, annotations, data, owner });
        written = true;
      }
    }

    return written;
  }

  private async reportFailure(obj: VaultSecretObject, failure: SyncError): Promise<void> {
    const now = this.deps.clock.now();
    const meta = obj.metadata;
    const conditions = setReadyAndSynced(obj.status?.conditions, 'False', failure.reason, failure.message, meta.generation, now);
    // observedGeneration says which spec the conditions judge; the sync bookkeeping (dataHmac, lastSyncTime)
    // still describes the last good sync.
    const status: VaultSecretStatus = { ...obj.status, conditions, observedGeneration: meta.generation };
    const alreadyReported = sameStatus(obj.status, status);
    // Only the fields that change: the cached rest may be older than a write of the failed pass (a lease
    // recorded after a failed Secret write, say), and a merge patch of it would undo that write.
    if (!alreadyReported) await this.patchStatus(obj, { conditions, observedGeneration: meta.generation });
    // The recorder folds repeats into one Event with a count.
    this.deps.events.emit(eventTarget(obj), 'Warning', failure.reason, failure.message);
  }

  private async writeStatus(obj: VaultSecretObject, status: VaultSecretStatus): Promise<void> {
    // A JSON merge patch keeps keys it does not mention: fields dropped from the status are sent as null.
    const patch: Record<string, unknown> = { ...status };
    for (const key of Object.keys(obj.status ?? {})) if (patch[key] === undefined) patch[key] = null;
    await this.patchStatus(obj, patch);
  }

  /** A JSON merge patch of the given status fields; null removes one. */
  private async patchStatus(obj: VaultSecretObject, fields: Record<string, unknown>): Promise<void> {
    const rv = await this.deps.objects.patchStatus(ref(obj), fields);
    const memory = this.memory.get(objectKey(obj.metadata));
    if (memory && rv) memory.expectRv = rv;
  }

  /** Adds the cleanup finalizer where deletion needs work the garbage collector cannot do. */
  private async ensureFinalizer(obj: VaultSecretObject, spec: VaultSecretSpec): Promise<boolean> {
    const needs = needsCleanup(spec);
    const has = obj.metadata.finalizers?.includes(CLEANUP_FINALIZER) ?? false;
    if (needs === has) return false;
    const others = (obj.metadata.finalizers ?? []).filter((f) => f !== CLEANUP_FINALIZER);
    await this.deps.objects.setFinalizers(ref(obj), obj.metadata.resourceVersion ?? '', needs ? [...others, CLEANUP_FINALIZER] : others);
    return true; // the update event brings the object back with the new resourceVersion
  }

  private async finalize(obj: VaultSecretObject, spec: VaultSecretSpec | undefined, log: Logger): Promise<void> {
    if (!obj.metadata.finalizers?.includes(CLEANUP_FINALIZER)) return;
    if (spec && isDynamicSpec(spec) && this.dynamicSync) {
      // Leases first: if Vault cannot be reached the finalizer stays and deletion waits, so no lease is lost.
      await this.dynamicSync.revokeAll(obj, spec);
      log.info({ leases: obj.status?.leases?.length ?? 0 }, 'revoked the leases of a deleted VaultSecret');
    }
    if (spec && mergedKeysToWithdraw(spec)) {
      const destination = spec.destination?.name ?? obj.metadata.name;
      // Merge mode: take back exactly the keys this operator applied; the Secret and its other keys stay.
      await this.deps.secrets.withdraw(obj.metadata.namespace!, destination, spec.destination?.type ?? 'Opaque');
      log.info({ secret: destination }, 'removed synced keys from merged Secret');
    }
    const others = obj.metadata.finalizers.filter((f) => f !== CLEANUP_FINALIZER);
    await this.deps.objects.setFinalizers(ref(obj), obj.metadata.resourceVersion ?? '', others);
  }
}

function needsCleanup(spec: VaultSecretSpec): boolean {
  return mergedKeysToWithdraw(spec) || (isDynamicSpec(spec) && spec.leases?.revokeOnDelete !== false);
}

function mergedKeysToWithdraw(spec: VaultSecretSpec): boolean {
  return (spec.destination?.creationPolicy ?? 'Owner') === 'Merge' && (spec.destination?.deletionPolicy ?? 'Delete') === 'Delete';
}

async function renderData(spec: VaultSecretSpec, source: SourceData, who: { namespace: string; name: string }): Promise<Record<string, Buffer>> {
  const templates = spec.template?.data;
  const hasTemplates = templates !== undefined && Object.keys(templates).length > 0;
  const includeSource = hasTemplates ? (spec.template?.includeSourceKeys ?? false) : true;
  const out: Record<string, Buffer> = {};
  if (includeSource) for (const [k, v] of Object.entries(source)) out[k] = toBytes(v);
  if (hasTemplates) Object.assign(out, await renderTemplates(templates, { secret: source, vaultSecret: who }));
  const invalid = invalidSecretKeys(Object.keys(out));
  if (invalid.length > 0) {
    throw new SyncError('InvalidSecretKey',
      `key(s) ${invalid.map((k) => JSON.stringify(k)).join(', ')} cannot be Secret keys (allowed: letters, digits, '-', '_', '.'); ` +
      'rename them with spec.template.data', false);
  }
  return out;
}

function toSyncError(err: unknown, destination: string): SyncError {
  if (err instanceof SyncError) return err;
  if (err instanceof TemplateError) return new SyncError('TemplateError', `${err.message}; fix spec.template.data`, false);
  const kube = classifyKubeError(err);
  return new SyncError('KubernetesError', `writing Secret ${destination} failed: ${kube.kind}: ${kube.message}`, kube.kind !== 'Invalid' && kube.kind !== 'Forbidden');
}

function isOurs(secret: ObjectMeta, vs: ObjectMeta): boolean {
  if (secret.ownerReferences?.some((o) => o.uid === vs.uid)) return true;
  return secret.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && secret.labels?.[VAULTSECRET_LABEL] === vs.name;
}

function secretMatches(current: V1Secret, want: { data: Record<string, Buffer>; labels: Record<string, string>; annotations: Record<string, string>; type: string; owner?: { uid: string } }): boolean {
  const applied = appliedDataKeys(current);
  const ours = pickKeys(secretData(current), applied ?? Object.keys(want.data));
  if (!sameData(ours, want.data)) return false;
  if ((current.type ?? 'Opaque') !== want.type) return false;
  for (const [k, v] of Object.entries(want.labels)) if (current.metadata?.labels?.[k] !== v) return false;
  for (const [k, v] of Object.entries(want.annotations)) if (current.metadata?.annotations?.[k] !== v) return false;
  if (want.owner && !current.metadata?.ownerReferences?.some((o) => o.uid === want.owner!.uid)) return false;
  return true;
}

/** The data keys our field manager owns, from managedFields; undefined when we never applied. */
function appliedDataKeys(secret: V1Secret): string[] | undefined {
  const entry = secret.metadata?.managedFields?.find((m) => m.manager === FIELD_MANAGER && m.operation === 'Apply');
  const data = (entry?.fieldsV1 as Record<string, Record<string, unknown>> | undefined)?.['f:data'];
  if (!entry) return undefined;
  return Object.keys(data ?? {}).filter((k) => k.startsWith('f:')).map((k) => k.slice(2));
}

function pickKeys(data: Record<string, Buffer>, keys: string[] | undefined): Record<string, Buffer> {
  if (!keys) return data;
  return Object.fromEntries(keys.filter((k) => data[k] !== undefined).map((k) => [k, data[k]!]));
}

/** Equal apart from the sync timestamps. */
function sameStatus(a: VaultSecretStatus | undefined, b: VaultSecretStatus): boolean {
  return sameJson({ ...a, lastSyncTime: undefined, nextSyncTime: undefined }, { ...b, lastSyncTime: undefined, nextSyncTime: undefined });
}

/** resourceVersions are etcd revisions: numeric in every API server this operator supports. */
function olderThan(rv: string | undefined, expected: string): boolean {
  if (rv === undefined || !/^\d+$/.test(rv) || !/^\d+$/.test(expected)) return false;
  return BigInt(rv) < BigInt(expected);
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

function describeSource(spec: VaultSecretSpec): string {
  const s = spec.source as { kv?: { mount: string; path: string }; kvMerge?: { sources: { mount: string; path: string }[] } };
  if (s.kv) return `${s.kv.mount}/${s.kv.path}`;
  if (s.kvMerge) return s.kvMerge.sources.map((x) => `${x.mount}/${x.path}`).join(' + ');
  return 'Vault';
}
