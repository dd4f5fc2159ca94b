// Request counting from the audit logs the local stack writes with `audit: true`: the API server logs
// every request when it is received (watches included), Vault logs every request. Counting on the
// server side measures every subject the same way, whatever client library it uses.
import { readFileSync, existsSync } from 'node:fs';

export interface Window {
  fromMs: number;
  toMs: number;
}

export interface KubeRequest {
  atMs: number;
  verb: string;
  resource: string;
  user: string;
}

export interface VaultRequest {
  atMs: number;
  path: string;
  operation: string;
  /** Policies of the calling token; empty for unauthenticated requests such as logins. */
  policies: string[];
}

function jsonLines(file: string): unknown[] {
  if (!existsSync(file)) throw new Error(`audit log ${file} does not exist: was the stack started with audit: true?`);
  const out: unknown[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // The batch writer may be mid-line at the end of the file.
    }
  }
  return out;
}

export function readKubeAudit(file: string): KubeRequest[] {
  return jsonLines(file).flatMap((e: any) => e?.stage === 'RequestReceived' ? [{
    atMs: Date.parse(e.requestReceivedTimestamp),
    verb: String(e.verb),
    resource: [e.objectRef?.apiGroup, e.objectRef?.resource, e.objectRef?.subresource].filter(Boolean).join('/') || 'nonResource',
    user: String(e.user?.username ?? ''),
  }] : []);
}

export function readVaultAudit(file: string): VaultRequest[] {
  return jsonLines(file).flatMap((e: any) => e?.type === 'request' ? [{
    atMs: Date.parse(e.time),
    path: String(e.request?.path ?? ''),
    operation: String(e.request?.operation ?? ''),
    policies: Array.isArray(e.auth?.policies) ? e.auth.policies.map(String) : [],
  }] : []);
}

/** Collapses per-object path segments so that counts group by kind of request, not by object. */
export function vaultPathPattern(path: string): string {
  return path
    .replace(/bench-\d+/g, 'bench-*')
    .replace(/\/s-\d+$/, '/s-*')
    .replace(/\/probe-\d+$/, '/probe-*');
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

export interface RequestCounts {
  total: number;
  /** Kubernetes: verb → count; Vault: "operation path-pattern" → count. */
  byKey: Record<string, number>;
  /** Kubernetes only: create, update, patch and delete requests. */
  writes?: number;
}

function tally(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
}

export function countKube(requests: KubeRequest[], user: string, w: Window): RequestCounts {
  const mine = requests.filter((r) => r.user === user && r.atMs >= w.fromMs && r.atMs < w.toMs);
  return {
    total: mine.length,
    byKey: tally(mine.map((r) => `${r.verb} ${r.resource}`)),
    writes: mine.filter((r) => WRITE_VERBS.has(r.verb)).length,
  };
}

/** The subject's Vault requests: everything but the harness's root token and the server's own audit test. */
export function subjectVaultRequests(requests: VaultRequest[], w: Window): VaultRequest[] {
  return requests.filter((r) => !r.policies.includes('root') && !r.path.startsWith('sys/audit/') && r.atMs >= w.fromMs && r.atMs < w.toMs);
}

export function countVault(requests: VaultRequest[], w: Window): RequestCounts {
  const mine = subjectVaultRequests(requests, w);
  return { total: mine.length, byKey: tally(mine.map((r) => `${r.operation} ${vaultPathPattern(r.path)}`)) };
}

/**
 * Lease renewals bucketed per second: the peak second against the mean over the span from the first to
 * the last renewal. Equal TTLs renewed in one burst give a peak far above the mean; jitter flattens it.
 */
export function renewalRate(requests: VaultRequest[], w: Window): { renewals: number; peakPerSecond: number; meanPerSecond: number; spanSeconds: number } {
  const renewals = subjectVaultRequests(requests, w).filter((r) => /(^|\/)renew(-self)?$/.test(r.path) && r.path.startsWith('sys/'));
  if (renewals.length === 0) return { renewals: 0, peakPerSecond: 0, meanPerSecond: 0, spanSeconds: 0 };
  const buckets = new Map<number, number>();
  for (const r of renewals) {
    const s = Math.floor(r.atMs / 1000);
    buckets.set(s, (buckets.get(s) ?? 0) + 1);
  }
  const seconds = [...buckets.keys()];
  const span = Math.max(...seconds) - Math.min(...seconds) + 1;
  return {
    renewals: renewals.length,
    peakPerSecond: Math.max(...buckets.values()),
    meanPerSecond: renewals.length / span,
    spanSeconds: span,
  };
}
