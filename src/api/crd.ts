// The CustomResourceDefinitions, built from the zod schemas (scripts/gen-crds.ts writes them to crds/).
import type { z } from 'zod';
import {
  GROUP, VAULTCONNECTION_KIND, VAULTCONNECTION_PLURAL, VAULTSECRET_KIND, VAULTSECRET_PLURAL, VERSION,
} from './constants.ts';
import { toStructuralSchema, type JSONSchemaProps } from './structural.ts';
import { VaultConnectionSpecSchema, VaultConnectionStatusSchema } from './vaultConnection.ts';
import { VaultSecretSpecSchema, VaultSecretStatusSchema } from './vaultSecret.ts';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    group: string;
    scope: 'Namespaced' | 'Cluster';
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[] };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: JSONSchemaProps };
    }[];
  };
}

interface KindDefinition {
  kind: string;
  plural: string;
  shortName: string;
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
}

const READY = '.status.conditions[?(@.type=="Ready")]';
const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

const KINDS: KindDefinition[] = [
  {
    kind: VAULTSECRET_KIND,
    plural: VAULTSECRET_PLURAL,
    shortName: 'vs',
    description: 'VaultSecret keeps a Kubernetes Secret filled with data read from HashiCorp Vault or OpenBao, ' +
      'logging in as an identity of its own namespace.',
    spec: VaultSecretSpecSchema,
    status: VaultSecretStatusSchema,
    columns: [
      { name: 'Ready', type: 'string', jsonPath: `${READY}.status` },
      { name: 'Reason', type: 'string', jsonPath: `${READY}.reason` },
      { name: 'Secret', type: 'string', jsonPath: '.status.secretName' },
      { name: 'Last sync', type: 'date', jsonPath: '.status.lastSyncTime' },
      AGE,
    ],
  },
  {
    kind: VAULTCONNECTION_KIND,
    plural: VAULTCONNECTION_PLURAL,
    shortName: 'vconn',
    description: 'VaultConnection says how to reach a Vault or OpenBao server (address, TLS, namespace) and which ' +
      'namespaces\' VaultSecrets may use it. It holds no credentials.',
    spec: VaultConnectionSpecSchema,
    status: VaultConnectionStatusSchema,
    columns: [
      { name: 'Address', type: 'string', jsonPath: '.spec.address' },
      { name: 'Ready', type: 'string', jsonPath: `${READY}.status` },
      { name: 'Reason', type: 'string', jsonPath: `${READY}.reason` },
      AGE,
    ],
  },
];

export function buildCrds(): CustomResourceDefinition[] {
  return KINDS.map(buildCrd);
}

function buildCrd(def: KindDefinition): CustomResourceDefinition {
  const openAPIV3Schema: JSONSchemaProps = {
    description: def.description,
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: { description: 'APIVersion of this object: vaultsync.dev/v1alpha1.', type: 'string' },
      kind: { description: `Kind of this object: ${def.kind}.`, type: 'string' },
      metadata: { type: 'object' },
      spec: toStructuralSchema(def.spec),
      status: toStructuralSchema(def.status),
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.kind.toLowerCase(),
        shortNames: [def.shortName],
      },
      versions: [{
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: def.columns,
        schema: { openAPIV3Schema },
      }],
    },
  };
}
