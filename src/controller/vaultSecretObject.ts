// How the controller names a VaultSecret to the API: for status patches and for events.
import { GROUP, VAULTSECRET_KIND, VAULTSECRET_PLURAL, VERSION } from '../api/index.ts';
import type { ResourceRef } from '../kube/customObjects.ts';
import type { EventTarget } from '../kube/events.ts';
import type { KubeObject } from '../kube/listWatch.ts';

export function vaultSecretRef(obj: KubeObject): ResourceRef {
  return { group: GROUP, version: VERSION, plural: VAULTSECRET_PLURAL, namespace: obj.metadata.namespace!, name: obj.metadata.name };
}

export function vaultSecretEventTarget(obj: KubeObject): EventTarget {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: VAULTSECRET_KIND, namespace: obj.metadata.namespace!, name: obj.metadata.name, uid: obj.metadata.uid };
}
