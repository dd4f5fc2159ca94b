// VaultSecret and VaultConnection writes: status through the /status subresource and finalizers with
// optimistic concurrency (the patch carries the resourceVersion it was computed from).
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
import type { KubeWriteObserver } from './secrets.ts';

export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  namespace: string;
  name: string;
}

export class CustomObjectStore {
  private readonly api: CustomObjectsApi;
  private readonly onWrite: KubeWriteObserver;
  constructor(api: CustomObjectsApi, onWrite: KubeWriteObserver = () => undefined) {
    this.api = api;
    this.onWrite = onWrite;
  }

  /** Replaces the status with a JSON merge patch; null values remove fields. */
  /** Returns the resourceVersion the object has after the write. */
  async patchStatus(ref: ResourceRef, status: Record<string, unknown>): Promise<string | undefined> {
    this.onWrite('patch', `${ref.plural}/status`);
    const updated = await this.api.patchNamespacedCustomObjectStatus(
      { ...ref, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    return (updated as { metadata?: { resourceVersion?: string } })?.metadata?.resourceVersion;
  }

  async setFinalizers(ref: ResourceRef, resourceVersion: string, finalizers: string[]): Promise<void> {
    this.onWrite('patch', ref.plural);
    await this.api.patchNamespacedCustomObject(
      { ...ref, body: { metadata: { resourceVersion, finalizers } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  async get(ref: ResourceRef): Promise<unknown> {
    return this.api.getNamespacedCustomObject(ref);
  }
}
