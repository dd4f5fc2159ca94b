// Writing destination Secrets: server-side apply with one field manager, bytes in `data` (never
// `stringData`, which leaves removed keys behind under apply). Under apply the operator owns exactly the
// keys it sends, so a merge into someone else's Secret leaves their keys alone, and applying an empty key
// set removes ours again.
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { classifyKubeError, isKubeNotFound } from './errors.ts';

export const FIELD_MANAGER = 'vault-sync-operator';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'vault-sync-operator';
/** Names the VaultSecret that writes into a Secret; the metadata watch maps Secret events back through it. */
export const VAULTSECRET_LABEL = 'vaultsync.dev/vaultsecret';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export interface DesiredSecret {
  namespace: string;
  name: string;
  type: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  data: Record<string, Buffer>;
  owner?: OwnerReference;
}

/** Counts writes for metrics: a refresh that changes nothing must show none. */
export type KubeWriteObserver = (verb: 'create' | 'patch' | 'apply' | 'delete', resource: string) => void;

export class SecretStore {
  private readonly core: CoreV1Api;
  private readonly onWrite: KubeWriteObserver;
  constructor(core: CoreV1Api, onWrite: KubeWriteObserver = () => undefined) {
    this.core = core;
    this.onWrite = onWrite;
  }

  /**
   * Whether the namespace is being deleted (or is gone): no Secret can be created there any more. Without
   * the right to read it (403), false: the caller goes on as if it were not.
   */
  async namespaceTerminating(namespace: string): Promise<boolean> {
    try {
      const ns = await this.core.readNamespace({ name: namespace });
      return ns.status?.phase === 'Terminating' || ns.metadata?.deletionTimestamp !== undefined;
    } catch (err) {
      const kind = classifyKubeError(err).kind;
      if (kind === 'NotFound') return true;
      if (kind === 'Forbidden') return false;
      throw err;
    }
  }

  async get(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ name, namespace });
    } catch (err) {
      if (isKubeNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Applies the desired Secret; returns the resourceVersion the server gave it. */
  async apply(desired: DesiredSecret): Promise<string | undefined> {
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: desired.name,
        namespace: desired.namespace,
        labels: desired.labels,
        annotations: desired.annotations,
        ownerReferences: desired.owner
          ? [{ ...desired.owner, controller: true, blockOwnerDeletion: true }]
          : undefined,
      },
      type: desired.type,
      data: Object.fromEntries(Object.entries(desired.data).map(([k, v]) => [k, v.toString('base64')])),
    };
    this.onWrite('apply', 'secrets');
    const res = await this.core.patchNamespacedSecret(
      { name: desired.name, namespace: desired.namespace, body, fieldManager: FIELD_MANAGER, force: true },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    return res.metadata?.resourceVersion;
  }

  /** Removes everything this operator applied to a Secret it does not own (merge mode cleanup). */
  async withdraw(namespace: string, name: string, type: string): Promise<void> {
    try {
      this.onWrite('apply', 'secrets');
      await this.core.patchNamespacedSecret(
        { name, namespace, body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type }, fieldManager: FIELD_MANAGER, force: true },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
    } catch (err) {
      if (!isKubeNotFound(err)) throw err;
    }
  }

  async delete(namespace: string, name: string): Promise<void> {
    try {
      this.onWrite('delete', 'secrets');
      await this.core.deleteNamespacedSecret({ name, namespace });
    } catch (err) {
      if (!isKubeNotFound(err)) throw err;
    }
  }
}

/** The Secret's data as bytes, for comparison with what the operator would write. */
export function secretData(secret: V1Secret | undefined): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
}
