// Rolling restarts of the workloads that consume a rotated Secret, the way `kubectl rollout restart` does
// it: a changed pod-template annotation makes the workload controller replace its pods gradually.
import { PatchStrategy, setHeaderOptions, type AppsV1Api } from '@kubernetes/client-node';
import type { RolloutRestartTarget } from '../api/index.ts';
import type { KubeWriteObserver } from '../kube/secrets.ts';

export const RESTARTED_AT_ANNOTATION = 'vaultsync.dev/restartedAt';

export class WorkloadRestarter {
  private readonly apps: AppsV1Api;
  private readonly onWrite: KubeWriteObserver;
  constructor(apps: AppsV1Api, onWrite: KubeWriteObserver = () => undefined) {
    this.apps = apps;
    this.onWrite = onWrite;
  }

  /** Restarts every target; returns "Kind/name" of each workload restarted. */
  async restart(namespace: string, targets: RolloutRestartTarget[], at: Date): Promise<string[]> {
    const restarted: string[] = [];
    for (const target of targets) {
      for (const name of await this.resolve(namespace, target)) {
        const body = { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: at.toISOString() } } } } };
        const options = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
        this.onWrite('patch', target.kind.toLowerCase() + 's');
        if (target.kind === 'Deployment') await this.apps.patchNamespacedDeployment({ name, namespace, body }, options);
        else if (target.kind === 'StatefulSet') await this.apps.patchNamespacedStatefulSet({ name, namespace, body }, options);
        else await this.apps.patchNamespacedDaemonSet({ name, namespace, body }, options);
        restarted.push(`${target.kind}/${name}`);
      }
    }
    return restarted;
  }

  private async resolve(namespace: string, target: RolloutRestartTarget): Promise<string[]> {
    if (target.name) return [target.name];
    const labelSelector = Object.entries(target.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
    const list = target.kind === 'Deployment'
      ? await this.apps.listNamespacedDeployment({ namespace, labelSelector })
      : target.kind === 'StatefulSet'
        ? await this.apps.listNamespacedStatefulSet({ namespace, labelSelector })
        : await this.apps.listNamespacedDaemonSet({ namespace, labelSelector });
    return list.items.map((w) => w.metadata?.name ?? '').filter(Boolean);
  }
}
