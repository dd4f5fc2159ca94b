// Status conditions, merged the way Kubernetes' meta.SetStatusCondition does: lastTransitionTime only
// moves when the status flips, so a resource that keeps failing the same way does not churn its status.
import { isDeepStrictEqual } from 'node:util';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: number,
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === next.type);
  const previous = index >= 0 ? list[index] : undefined;
  const merged: Condition = {
    ...next,
    lastTransitionTime: previous && previous.status === next.status ? previous.lastTransitionTime : new Date(now).toISOString(),
  };
  if (index >= 0) list[index] = merged;
  else list.push(merged);
  return list;
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Ready and Synced move together: both say whether the Secret holds what the current spec asks for. */
export function setReadyAndSynced(
  conditions: readonly Condition[] | undefined,
  status: ConditionStatus,
  reason: string,
  message: string,
  observedGeneration: number | undefined,
  now: number,
): Condition[] {
  const ready = setCondition(conditions, { type: 'Ready', status, reason, message, observedGeneration }, now);
  return setCondition(ready, { type: 'Synced', status, reason, message, observedGeneration }, now);
}

/**
 * Equality of JSON values as the API server stores them: key order does not matter (the server returns
 * keys sorted) and undefined fields do not exist.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  const normal = (v: unknown) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
  return isDeepStrictEqual(normal(a), normal(b));
}
