// The decision half of a reconcile: given what is known about a VaultSecret, its Secret and the time,
// should the operator read Vault now, and if not, when next? Pure, so it is tested table by table.

export type SyncReason =
  | 'Initial'          // never synced
  | 'SpecChanged'      // generation moved since the last sync
  | 'ForceSync'        // the force-sync annotation changed
  | 'SecretMissing'    // the destination Secret is gone
  | 'SecretChanged'    // someone edited the destination Secret
  | 'Retry'            // the last attempt failed
  | 'Refresh';         // the refresh interval has passed

export type SecretState = 'missing' | 'unchanged' | 'changed' | 'unknown';

export interface SyncFacts {
  now: number;
  generation: number;
  /** Generation of the last successful sync (status.observedGeneration when Synced=True). */
  syncedGeneration?: number;
  /** Last time Vault was read successfully (status or memory, whichever is later). */
  lastSyncAt?: number;
  refreshIntervalMs: number;
  /** Value of the force-sync annotation now, and the value handled last (recorded in status). */
  forceSyncRequested?: string;
  forceSyncHandled?: string;
  secret: SecretState;
  lastAttemptFailed: boolean;
  /** 0 ≤ jitter < 1, stable per resource, spreads refreshes of many resources with equal intervals. */
  jitter: number;
}

export type SyncDecision =
  | { sync: true; reason: SyncReason }
  | { sync: false; nextAt: number };

/** Refreshes come at 90–100 % of the interval, so equal intervals do not line up into one burst. */
export function nextRefreshAt(lastSyncAt: number, refreshIntervalMs: number, jitter: number): number {
  return lastSyncAt + Math.round(refreshIntervalMs * (1 - 0.1 * jitter));
}

export function decideSync(f: SyncFacts): SyncDecision {
  if (f.lastSyncAt === undefined || f.syncedGeneration === undefined) return { sync: true, reason: 'Initial' };
  if (f.syncedGeneration !== f.generation) return { sync: true, reason: 'SpecChanged' };
  if (f.forceSyncRequested !== undefined && f.forceSyncRequested !== f.forceSyncHandled) return { sync: true, reason: 'ForceSync' };
  if (f.secret === 'missing') return { sync: true, reason: 'SecretMissing' };
  if (f.secret === 'changed') return { sync: true, reason: 'SecretChanged' };
  if (f.lastAttemptFailed) return { sync: true, reason: 'Retry' };
  const due = nextRefreshAt(f.lastSyncAt, f.refreshIntervalMs, f.jitter);
  if (f.now >= due) return { sync: true, reason: 'Refresh' };
  return { sync: false, nextAt: due };
}

/** A stable number in [0, 1) from a string (the resource's UID), for jitter that survives restarts. */
export function stableJitter(seed: string): number {
  let h = 2166136261;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) / 2 ** 32;
}
