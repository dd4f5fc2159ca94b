// A list-then-watch cache for one resource type, written for the failure modes operators meet in practice:
// a watch that ends (re-watch from the last resourceVersion), 410 Gone (relist), errors (back off and retry,
// never give up), and a watch that silently stalls (bookmarks and an inactivity deadline, plus a periodic
// full relist as a last resort). Handlers receive typed events and must only enqueue keys.
//
// It speaks HTTP itself instead of using client-node's informer so it can ask for metadata only
// (PartialObjectMetadata): the operator watches the Secrets it owns without caching their data.
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { fetch } from 'undici';
import { KubeHttpError } from './errors.ts';
import type { Logger } from '../util/logger.ts';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  finalizers?: string[];
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export type WatchEventType = 'add' | 'update' | 'delete';
export type WatchHandler<T> = (type: WatchEventType, obj: T, old?: T) => void;

export interface ListWatchOptions {
  kc: KubeConfig;
  /** e.g. /apis/vaultsync.dev/v1alpha1/vaultsecrets or /api/v1/secrets */
  path: string;
  labelSelector?: string;
  metadataOnly?: boolean;
  log: Logger;
  /** Full relist period: the last defence against a watch that stalls without an error. */
  relistIntervalMs?: number;
  /** Server-side watch timeout; the watch is re-opened after it. */
  watchTimeoutSeconds?: number;
  pageSize?: number;
}

const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA_WATCH_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * What the cache keeps of an object: everything but managedFields and kubectl's last-applied copy, which
 * nothing here reads and which are often larger than the rest of the object (controller-runtime's
 * TransformStripManagedFields does the same). At 10,000 VaultSecrets this is tens of MiB.
 */
export function slimForCache<T extends KubeObject>(obj: T): T {
  const meta = obj.metadata as ObjectMeta & { managedFields?: unknown };
  delete meta.managedFields;
  if (meta.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _dropped, ...rest } = meta.annotations;
    meta.annotations = rest;
  }
  return obj;
}

export function objectKey(meta: { namespace?: string; name: string }): string {
  return meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
}

/** What controllers use of a watch cache; one ListWatch, or one per namespace in restricted mode. */
export interface WatchCache<T extends KubeObject> {
  on(handler: WatchHandler<T>): void;
  get(key: string): T | undefined;
  list(): T[];
  readonly synced: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The union of per-namespace caches, for an operator restricted to chosen namespaces. */
export class NamespacedWatches<T extends KubeObject> implements WatchCache<T> {
  private readonly byNamespace: Map<string, ListWatch<T>>;
  constructor(namespaces: string[], make: (namespace: string) => ListWatch<T>) {
    this.byNamespace = new Map(namespaces.map((ns) => [ns, make(ns)]));
  }
  on(handler: WatchHandler<T>): void {
    for (const w of this.byNamespace.values()) w.on(handler);
  }
  get(key: string): T | undefined {
    return this.byNamespace.get(key.split('/')[0]!)?.get(key);
  }
  list(): T[] {
    return [...this.byNamespace.values()].flatMap((w) => w.list());
  }
  get synced(): boolean {
    return [...this.byNamespace.values()].every((w) => w.synced);
  }
  async start(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((w) => w.start()));
  }
  async stop(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((w) => w.stop()));
  }
}

export class ListWatch<T extends KubeObject> implements WatchCache<T> {
  private readonly opts: Required<Omit<ListWatchOptions, 'labelSelector'>> & { labelSelector?: string };
  private readonly cache = new Map<string, T>();
  private readonly handlers: WatchHandler<T>[] = [];
  private resourceVersion: string | undefined;
  private stopped = false;
  private abort: AbortController | undefined;
  private syncedOnce = false;
  private loop: Promise<void> | undefined;
  private lastRelist = 0;

  constructor(opts: ListWatchOptions) {
    this.opts = { relistIntervalMs: 10 * 60_000, watchTimeoutSeconds: 300, pageSize: 500, metadataOnly: false, ...opts };
  }

  on(handler: WatchHandler<T>): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get size(): number {
    return this.cache.size;
  }

  /** True once the first full list has been delivered. */
  get synced(): boolean {
    return this.syncedOnce;
  }

  /** Resolves after the first list; watching goes on in the background until stop(). */
  async start(): Promise<void> {
    let firstList: (() => void) | undefined;
    const listed = new Promise<void>((resolve) => (firstList = resolve));
    this.loop = this.run(() => firstList?.());
    await listed;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    await this.loop;
  }

  private emit(type: WatchEventType, obj: T, old?: T): void {
    for (const handler of this.handlers) {
      try {
        handler(type, obj, old);
      } catch (err) {
        this.opts.log.error({ err, path: this.opts.path }, 'watch handler threw; handlers must only enqueue');
      }
    }
  }

  private async run(onFirstList: () => void): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (this.resourceVersion === undefined || Date.now() - this.lastRelist > this.opts.relistIntervalMs) {
          await this.relist();
          if (!this.syncedOnce) {
            this.syncedOnce = true;
            onFirstList();
          }
        }
        await this.watchOnce();
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof KubeHttpError && err.status === 410) {
          this.opts.log.info({ path: this.opts.path }, 'watch resourceVersion expired (410 Gone); relisting');
          this.resourceVersion = undefined;
          continue;
        }
        failures++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.8 + Math.random() * 0.4);
        this.opts.log.warn({ path: this.opts.path, err: String(err), retryInMs: Math.round(delay) }, 'list/watch failed; retrying');
        await sleep(delay).catch(() => undefined);
      }
    }
  }

  private async request(url: URL, accept: string, signal: AbortSignal) {
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    await this.opts.kc.applySecurityAuthentication(ctx);
    const headers = { ...ctx.getHeaders(), accept };
    return fetch(url, { method: 'GET', headers, dispatcher: ctx.getDispatcher(), signal });
  }

  private url(params: Record<string, string | undefined>): URL {
    const cluster = this.opts.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + this.opts.path);
    if (this.opts.labelSelector) url.searchParams.set('labelSelector', this.opts.labelSelector);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
    return url;
  }

  private async relist(): Promise<void> {
    const fresh = new Map<string, T>();
    let continueToken: string | undefined;
    let listRv: string | undefined;
    do {
      const res = await this.request(
        this.url({ limit: String(this.opts.pageSize), continue: continueToken }),
        this.opts.metadataOnly ? METADATA_ACCEPT : 'application/json',
        AbortSignal.timeout(60_000),
      );
      if (!res.ok) throw new KubeHttpError(res.status, `list ${this.opts.path}: HTTP ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { metadata?: { resourceVersion?: string; continue?: string }; items?: T[] };
      for (const item of body.items ?? []) fresh.set(objectKey(item.metadata), slimForCache(item));
      listRv = body.metadata?.resourceVersion;
      continueToken = body.metadata?.continue || undefined;
    } while (continueToken);

    const previous = new Map(this.cache);
    this.cache.clear();
    for (const [key, obj] of fresh) this.cache.set(key, obj);
    for (const [key, obj] of fresh) {
      const old = previous.get(key);
      if (!old) this.emit('add', obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit('update', obj, old);
    }
    for (const [key, old] of previous) if (!fresh.has(key)) this.emit('delete', old);
    this.resourceVersion = listRv;
    this.lastRelist = Date.now();
  }

  private async watchOnce(): Promise<void> {
    this.abort = new AbortController();
    const { signal } = this.abort;
    // The server ends the watch after timeoutSeconds; no byte for longer than that plus a margin means a stall.
    const inactivityMs = (this.opts.watchTimeoutSeconds + 30) * 1000;
    let inactivity = setTimeout(() => this.abort?.abort(new Error('watch inactive')), inactivityMs);
    const touch = () => {
      clearTimeout(inactivity);
      inactivity = setTimeout(() => this.abort?.abort(new Error('watch inactive')), inactivityMs);
    };
    // Relist on schedule even when the watch stays healthy.
    const relistTimer = setTimeout(() => this.abort?.abort(new Error('scheduled relist')), Math.max(1000, this.opts.relistIntervalMs - (Date.now() - this.lastRelist)));
    try {
      const res = await this.request(
        this.url({
          watch: 'true',
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: 'true',
          timeoutSeconds: String(this.opts.watchTimeoutSeconds),
        }),
        this.opts.metadataOnly ? METADATA_WATCH_ACCEPT : 'application/json',
        signal,
      );
      if (!res.ok || !res.body) throw new KubeHttpError(res.status, `watch ${this.opts.path}: HTTP ${res.status} ${await res.text()}`);
      const lines = createInterface(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream));
      for await (const line of lines) {
        touch();
        if (!line.trim()) continue;
        const event = JSON.parse(line) as { type: string; object: T & { code?: number; message?: string } };
        if (event.type === 'ERROR') {
          const code = event.object.code ?? 500;
          throw new KubeHttpError(code, `watch ${this.opts.path}: ${event.object.message ?? code}`);
        }
        const obj = event.object;
        if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
        if (event.type === 'BOOKMARK') continue;
        slimForCache(obj);
        const key = objectKey(obj.metadata);
        const old = this.cache.get(key);
        if (event.type === 'DELETED') {
          this.cache.delete(key);
          this.emit('delete', obj);
        } else {
          this.cache.set(key, obj);
          this.emit(old ? 'update' : 'add', obj, old);
        }
      }
    } catch (err) {
      // Our own aborts (stop, inactivity, scheduled relist) are not failures.
      if (signal.aborted) {
        if (!this.stopped && String(signal.reason).includes('scheduled relist')) this.lastRelist = 0;
        return;
      }
      throw err;
    } finally {
      clearTimeout(inactivity);
      clearTimeout(relistTimer);
    }
  }
}
