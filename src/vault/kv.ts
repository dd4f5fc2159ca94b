// Reads from the KV secrets engine, v1 or v2. The engine version of a mount is looked up once per
// (connection, namespace, mount) and remembered for the life of the client.
import { z } from 'zod';
import { classifyVaultFailure, VaultError, type VaultRequestContext } from './errors.ts';
import { parseVaultResponse, type VaultClient } from './client.ts';

export type KvVersion = 1 | 2;

export interface KvReadOptions {
  /** Mount path, e.g. 'secret' or 'team-a/kv'. */
  mount: string;
  /** Secret path inside the mount, e.g. 'app/db'. */
  path: string;
  /** KV v2 only: read this version instead of the latest. */
  version?: number;
  /** Skips the detection when known. */
  kvVersion?: KvVersion;
  /** Overrides the connection's namespace. */
  namespace?: string;
}

export interface KvMetadata {
  createdTime?: string;
  version?: number;
  customMetadata?: Record<string, string>;
}

export interface KvSecret {
  data: Record<string, unknown>;
  /** The version read (KV v2). */
  version?: number;
  kvVersion: KvVersion;
  metadata?: KvMetadata;
}

const kvData = z.record(z.string(), z.unknown());

const kv1Response = z.object({ data: kvData });

const kv2VersionMetadata = z.object({
  created_time: z.string().optional(),
  custom_metadata: z.record(z.string(), z.string()).nullable().optional(),
  deletion_time: z.string().optional(),
  destroyed: z.boolean().optional(),
  version: z.number().int().optional(),
});

const kv2Response = z.object({
  data: z.object({ data: kvData.nullable(), metadata: kv2VersionMetadata.nullable().optional() }),
});

const mountResponse = z.object({
  data: z.object({
    type: z.string(),
    options: z.object({ version: z.string().optional() }).nullable().optional(),
  }),
});

/** Detected versions per client; a WeakMap so the cache lives and dies with the connection's client. */
const detected = new WeakMap<VaultClient, Map<string, Promise<KvVersion>>>();

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, '');
}

export async function readKv(client: VaultClient, token: string, options: KvReadOptions): Promise<KvSecret> {
  const mount = trimSlashes(options.mount);
  const path = trimSlashes(options.path);
  const context: VaultRequestContext = { operation: 'kv-read', method: 'GET', path: `${mount}/${path}` };
  if (mount === '' || path === '') throw new VaultError({ ...context, kind: 'Invalid', detail: 'Invalid (mount and path must not be empty)' });
  if (options.version !== undefined && !(Number.isInteger(options.version) && options.version > 0)) {
    throw new VaultError({ ...context, kind: 'Invalid', detail: 'Invalid (version must be a positive integer)' });
  }
  const kvVersion = options.kvVersion ?? (await detectKvVersion(client, token, mount, options.namespace));
  if (kvVersion === 1) {
    if (options.version !== undefined) {
      throw new VaultError({ ...context, kind: 'Invalid', detail: `Invalid (mount "${mount}" is KV v1, which has no versions to pin)` });
    }
    const body = await client.request({ method: 'GET', path: context.path, token, namespace: options.namespace, operation: 'kv-read' });
    return { data: parseVaultResponse(kv1Response, body, context).data, kvVersion: 1 };
  }
  return readKv2(client, token, mount, path, options);
}

async function readKv2(client: VaultClient, token: string, mount: string, path: string, options: KvReadOptions): Promise<KvSecret> {
  const context: VaultRequestContext = { operation: 'kv-read', method: 'GET', path: `${mount}/data/${path}` };
  // KV v2 answers a deleted or destroyed version with 404 *and* the version's metadata; accept the 404 to
  // tell "deleted" from "never existed".
  const res = await client.send({
    method: 'GET', path: context.path, token, namespace: options.namespace, operation: 'kv-read',
    query: { version: options.version }, acceptStatus: [404],
  });
  const which = options.version !== undefined ? `version ${options.version}` : 'the latest version';
  if (res.status === 404) {
    const deleted = kv2Response.safeParse(res.body);
    const metadata = deleted.success ? deleted.data.data.metadata : undefined;
    if (metadata && (metadata.destroyed || metadata.deletion_time)) throw goneError(context, res.status, which, metadata);
    throw classifyVaultFailure({ status: 404, body: res.body }, context);
  }
  const parsed = parseVaultResponse(kv2Response, res.body, context);
  const metadata = parsed.data.metadata ?? undefined;
  if (parsed.data.data === null) {
    if (metadata && (metadata.destroyed || metadata.deletion_time)) throw goneError(context, res.status, which, metadata);
    throw new VaultError({ ...context, kind: 'NotFound', status: res.status, detail: `NotFound (${which} has no data)` });
  }
  return {
    data: parsed.data.data,
    version: metadata?.version,
    kvVersion: 2,
    metadata: metadata
      ? { createdTime: metadata.created_time, version: metadata.version, customMetadata: metadata.custom_metadata ?? undefined }
      : undefined,
  };
}

function goneError(context: VaultRequestContext, status: number, which: string, metadata: z.infer<typeof kv2VersionMetadata>): VaultError {
  const label = metadata.version !== undefined ? `version ${metadata.version}` : which;
  const detail = metadata.destroyed
    ? `NotFound (${label} is destroyed; pin another version or write a new one)`
    : `NotFound (${label} was deleted at ${metadata.deletion_time}; undelete it, pin another version or write a new one)`;
  return new VaultError({ ...context, kind: 'NotFound', status, detail });
}

/**
 * The KV version of `mount`, asked once per (client, namespace, mount) through sys/internal/ui/mounts, which
 * any token with a capability on the mount may call. Concurrent callers share one lookup; a failed lookup is
 * not remembered.
 */
export function detectKvVersion(client: VaultClient, token: string, mount: string, namespace?: string): Promise<KvVersion> {
  const m = trimSlashes(mount);
  const ns = namespace !== undefined ? trimSlashes(namespace) : client.namespace;
  const key = `${ns}\u0000${m}`;
  let perClient = detected.get(client);
  if (!perClient) {
    perClient = new Map();
    detected.set(client, perClient);
  }
  const known = perClient.get(key);
  if (known) return known;
  const lookup = lookupKvVersion(client, token, m, namespace);
  perClient.set(key, lookup);
  const cache = perClient;
  lookup.catch(() => {
    if (cache.get(key) === lookup) cache.delete(key);
  });
  return lookup;
}

/** Forgets detected versions, e.g. after a mount was re-enabled with another version. */
export function forgetKvVersions(client: VaultClient): void {
  detected.delete(client);
}

async function lookupKvVersion(client: VaultClient, token: string, mount: string, namespace: string | undefined): Promise<KvVersion> {
  const context: VaultRequestContext = { operation: 'mount-lookup', method: 'GET', path: `sys/internal/ui/mounts/${mount}` };
  const body = await client.request({ method: 'GET', path: context.path, token, namespace, operation: context.operation });
  const { data } = parseVaultResponse(mountResponse, body, context);
  if (data.type !== 'kv' && data.type !== 'generic') {
    throw new VaultError({ ...context, kind: 'Invalid', detail: `Invalid (mount "${mount}" is a ${data.type} mount, not KV)` });
  }
  return data.options?.version === '2' ? 2 : 1;
}
