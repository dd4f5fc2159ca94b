// Dynamic secrets and their leases. A lease lives at most as long as the token that created it; callers
// plan renewals against both (see VaultTokenManager.tokenInfo).
import { z } from 'zod';
import { VaultError, type VaultRequestContext } from './errors.ts';
import { parseVaultResponse, type VaultClient } from './client.ts';

export interface LeaseRenewal {
  leaseId: string;
  leaseDurationSeconds: number;
  renewable: boolean;
}

export interface DynamicSecret {
  data: Record<string, unknown>;
  /** Absent when Vault issued no lease (e.g. a static role or a non-leased endpoint). */
  leaseId: string | undefined;
  leaseDurationSeconds: number;
  renewable: boolean;
  warnings: string[];
}

export interface DynamicReadOptions {
  /** e.g. 'database/creds/app' */
  path: string;
  method: 'GET' | 'POST' | 'PUT';
  /** Query parameters for GET (strings, numbers, booleans), a JSON body for POST/PUT. */
  params?: Record<string, unknown>;
  namespace?: string;
}

const renewResponse = z.object({
  lease_id: z.string().min(1),
  lease_duration: z.number().int().nonnegative(),
  renewable: z.boolean(),
});

const dynamicResponse = z.object({
  lease_id: z.string().nullable().optional(),
  lease_duration: z.number().int().nonnegative().nullable().optional(),
  renewable: z.boolean().nullable().optional(),
  data: z.record(z.string(), z.unknown()),
  warnings: z.array(z.string()).nullable().optional(),
});

export async function renewLease(
  client: VaultClient, token: string, leaseId: string, incrementSeconds: number, options: { namespace?: string } = {},
): Promise<LeaseRenewal> {
  const context: VaultRequestContext = { operation: 'lease-renew', method: 'PUT', path: 'sys/leases/renew' };
  if (!(Number.isInteger(incrementSeconds) && incrementSeconds >= 0)) {
    throw new VaultError({ ...context, kind: 'Invalid', detail: 'Invalid (increment must be a whole number of seconds)' });
  }
  const body = await client.request({
    method: 'PUT', path: context.path, operation: context.operation, token, namespace: options.namespace, body: { lease_id: leaseId, increment: incrementSeconds }, sensitive: [],
  });
  const parsed = parseVaultResponse(renewResponse, body, context);
  return { leaseId: parsed.lease_id, leaseDurationSeconds: parsed.lease_duration, renewable: parsed.renewable };
}

export async function revokeLease(client: VaultClient, token: string, leaseId: string, options: { namespace?: string } = {}): Promise<void> {
  await client.request({
    method: 'PUT', path: 'sys/leases/revoke', operation: 'lease-revoke', token, namespace: options.namespace, body: { lease_id: leaseId }, sensitive: [],
  });
}

/**
 * Whether Vault may have issued a secret despite this failure: it answered 2xx (with a body we could not
 * use), a server error (Vault or a proxy in front of it may have acted), or no answer came after the
 * connection was up (timeout, reset). Refused connections, 4xx and 503 (sealed, standby) issued nothing.
 */
export function mayHaveIssued(err: VaultError): boolean {
  if (err.status !== undefined) return err.status < 300 || (err.status >= 500 && err.status !== 503);
  return err.kind === 'Transient';
}

/**
 * Reads or generates a dynamic secret. Retried only after failures that certainly issued nothing: a repeat
 * after a lost answer could issue a second lease nobody holds. A failure for which mayHaveIssued() is true
 * reaches the caller, which must assume a lease it does not know may exist.
 */
export async function readDynamic(client: VaultClient, token: string, options: DynamicReadOptions): Promise<DynamicSecret> {
  const context: VaultRequestContext = { operation: 'dynamic-read', method: options.method, path: options.path.replace(/^\/+/, '') };
  let query: Record<string, string | number | boolean> | undefined;
  let body: Record<string, unknown> | undefined;
  if (options.method === 'GET') {
    query = {};
    for (const [key, value] of Object.entries(options.params ?? {})) {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw new VaultError({ ...context, kind: 'Invalid', detail: `Invalid (GET parameter "${key}" must be a string, number or boolean)` });
      }
      query[key] = value;
    }
  } else {
    body = options.params ?? {};
  }
  const res = await client.send({
    method: options.method, path: context.path, operation: context.operation, token, namespace: options.namespace, query, body,
    retryIf: (err) => !mayHaveIssued(err),
  });
  if (res.body === undefined) throw new VaultError({ ...context, kind: 'Invalid', status: res.status, detail: 'Invalid (Vault returned no data)' });
  const parsed = parseVaultResponse(dynamicResponse, res.body, context, res.status);
  return {
    data: parsed.data,
    leaseId: parsed.lease_id || undefined,
    leaseDurationSeconds: parsed.lease_duration ?? 0,
    renewable: parsed.renewable ?? false,
    warnings: parsed.warnings ?? [],
  };
}
