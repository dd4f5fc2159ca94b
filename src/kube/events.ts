// Kubernetes Events for VaultSecrets. Messages name resources, paths and reasons, never data. Repeats of
// the same event within a short window are counted on the existing Event instead of creating new ones,
// so a failing resource that retries does not flood the API server.
import { PatchStrategy, setHeaderOptions, type CoreV1Api } from '@kubernetes/client-node';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { KubeWriteObserver } from './secrets.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

export interface EventSink {
  emit(target: EventTarget, type: EventType, reason: string, message: string): void;
}

interface Recent {
  name: string;
  count: number;
  firstTimestamp: Date;
  at: number;
}

export class KubeEventRecorder implements EventSink {
  private readonly core: CoreV1Api;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly recent = new Map<string, Recent>();
  private readonly component: string;
  private readonly dedupWindowMs = 10 * 60_000;

  private readonly onWrite: KubeWriteObserver;

  constructor(core: CoreV1Api, clock: Clock, log: Logger, onWrite: KubeWriteObserver = () => undefined, component = 'vault-sync-operator') {
    this.core = core;
    this.onWrite = onWrite;
    this.clock = clock;
    this.log = log;
    this.component = component;
  }

  emit(target: EventTarget, type: EventType, reason: string, message: string): void {
    // Events are best effort: a failure to record one must not fail a reconcile.
    void this.record(target, type, reason, message).catch((err) =>
      this.log.warn({ err: String(err), reason, target: `${target.namespace}/${target.name}` }, 'could not record event'));
  }

  private async record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    const now = this.clock.now();
    const key = `${target.namespace}/${target.name}/${type}/${reason}/${message}`;
    const seen = this.recent.get(key);
    if (seen && now - seen.at < this.dedupWindowMs) {
      seen.count++;
      seen.at = now;
      this.onWrite('patch', 'events');
      await this.core.patchNamespacedEvent({
        name: seen.name,
        namespace: target.namespace,
        body: { count: seen.count, lastTimestamp: new Date(now).toISOString() },
      }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)).catch(() => undefined);
      return;
    }
    this.onWrite('create', 'events');
    const name = `${target.name}.${now.toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`;
    await this.core.createNamespacedEvent({
      namespace: target.namespace,
      body: {
        metadata: { name, namespace: target.namespace },
        involvedObject: { apiVersion: target.apiVersion, kind: target.kind, name: target.name, namespace: target.namespace, uid: target.uid },
        type,
        reason,
        message,
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: this.component,
        count: 1,
        firstTimestamp: new Date(now),
        lastTimestamp: new Date(now),
      },
    });
    this.recent.set(key, { name, count: 1, firstTimestamp: new Date(now), at: now });
    if (this.recent.size > 10_000) this.recent.clear();
  }
}
