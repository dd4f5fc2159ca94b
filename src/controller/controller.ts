// Wires watches to the work queue and the queue to the reconciler. Event handlers only enqueue keys:
// new and changed VaultSecrets go ahead of periodic refreshes, and a Secret event maps back to the
// VaultSecret that writes it.
import type { KubeObject, WatchCache } from '../kube/listWatch.ts';
import { objectKey } from '../kube/listWatch.ts';
import { VAULTSECRET_LABEL } from '../kube/secrets.ts';
import type { Logger } from '../util/logger.ts';
import type { WorkQueue } from './queue.ts';
import type { VaultSecretObject, VaultSecretReconciler } from './reconciler.ts';

export interface ControllerDeps {
  log: Logger;
  queue: WorkQueue;
  reconciler: VaultSecretReconciler;
  vaultSecrets: WatchCache<VaultSecretObject>;
  vaultConnections: WatchCache<KubeObject>;
  secretMeta: WatchCache<KubeObject>;
  concurrency: number;
  onReconciled?: (durationMs: number, result: 'success' | 'error') => void;
}

export class VaultSecretController {
  private readonly deps: ControllerDeps;
  constructor(deps: ControllerDeps) {
    this.deps = deps;
  }

  async start(): Promise<void> {
    const { queue, vaultSecrets, vaultConnections, secretMeta } = this.deps;
    vaultSecrets.on((type, obj, old) => {
      if (type === 'delete') return;
      // Status-only updates (our own writes) do not change generation, annotations or deletion state.
      const meaningful = !old
        || old.metadata.generation !== obj.metadata.generation
        || JSON.stringify(old.metadata.annotations) !== JSON.stringify(obj.metadata.annotations)
        || old.metadata.deletionTimestamp !== obj.metadata.deletionTimestamp
        || JSON.stringify(old.metadata.finalizers) !== JSON.stringify(obj.metadata.finalizers);
      if (meaningful) queue.add(objectKey(obj.metadata), { priority: 'high' });
    });
    secretMeta.on((_type, secret) => {
      const owner = secret.metadata.labels?.[VAULTSECRET_LABEL];
      if (owner && secret.metadata.namespace) queue.add(`${secret.metadata.namespace}/${owner}`, { priority: 'high' });
    });
    vaultConnections.on((_type, conn) => {
      // A changed connection affects every VaultSecret of that namespace that may use it.
      for (const vs of vaultSecrets.list()) {
        if (vs.metadata.namespace === conn.metadata.namespace) queue.add(objectKey(vs.metadata), { priority: 'high' });
      }
    });
    await Promise.all([secretMeta.start(), vaultConnections.start()]);
    await vaultSecrets.start();
  }

  /** Starts reconciling; called once this replica leads, so a standby keeps warm caches but writes nothing. */
  startProcessing(): void {
    const { queue, reconciler, onReconciled } = this.deps;
    queue.start(async (key) => {
      const started = Date.now();
      try {
        const result = await reconciler.reconcile(key);
        onReconciled?.(Date.now() - started, 'success');
        return result;
      } catch (err) {
        onReconciled?.(Date.now() - started, 'error');
        throw err;
      }
    }, this.deps.concurrency);
  }

  async stop(): Promise<void> {
    await this.deps.queue.shutdown();
    await Promise.all([this.deps.vaultSecrets.stop(), this.deps.vaultConnections.stop(), this.deps.secretMeta.stop()]);
  }

  get synced(): boolean {
    return this.deps.vaultSecrets.synced && this.deps.vaultConnections.synced && this.deps.secretMeta.synced;
  }
}
