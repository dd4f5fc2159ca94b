// VaultConnection: how to reach a Vault server (address, TLS, namespace, headers) and which namespaces'
// VaultSecrets may use it. Credentials never live here: each VaultSecret logs in as its own identity.
import { z } from 'zod';
import { conditions, duration, namespaceOrAll, nonEmpty, objectName, secretKeyRef, stringMap, stringSet } from './fields.ts';
import { withRules } from './rules.ts';

/** Headers that carry credentials; a VaultConnection is readable by more people than a Secret. */
const CREDENTIAL_HEADERS = ['authorization', 'x-vault-token'];

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

export const VaultConnectionSpecSchema = z.object({
  address: withRules(z.string().max(2048), [{
    rule: "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",
    message: 'must be an http or https URL, e.g. https://vault.example.com:8200',
    holds: isHttpUrl,
  }]).describe('URL of the Vault server, http or https, e.g. https://vault.vault.svc:8200.'),
  caBundleSecretRef: secretKeyRef('ca.crt').optional().describe(
    'PEM CA certificates to verify the server with, from a Secret in this namespace. Omitted: the system CAs.'),
  tlsServerName: nonEmpty().optional().describe('Server name to verify the certificate against (SNI). Default: the host of address.'),
  clientCertSecretRef: z.object({
    name: objectName().describe('Name of a kubernetes.io/tls Secret in this namespace (keys tls.crt and tls.key).'),
  }).optional().describe('Client certificate and key for mutual TLS.'),
  namespace: nonEmpty().optional().describe('Vault Enterprise / OpenBao namespace; a VaultSecret may override it.'),
  headers: withRules(stringMap(), [{
    rule: `!self.exists(k, k.lowerAscii() in [${CREDENTIAL_HEADERS.map((h) => `'${h}'`).join(', ')}])`,
    message: 'must not set Authorization or X-Vault-Token: credentials belong in a VaultSecret\'s auth, not here',
    holds: (self) => !Object.keys(self).some((k) => CREDENTIAL_HEADERS.includes(k.toLowerCase())),
  }]).optional().describe(
    'Extra HTTP headers sent with every request, e.g. for a proxy in front of Vault. Not for credentials: ' +
    'VaultConnections are readable by anyone who may read them in this namespace, and are stored unencrypted.'),
  timeout: duration('1s').default('30s').describe('Timeout of each request to Vault, as a Go-style duration (e.g. 10s); at least 1s. Default: 30s.'),
  allowedNamespaces: stringSet(namespaceOrAll()).optional().describe(
    'Other namespaces whose VaultSecrets may use this connection; \'*\' allows all. Its own namespace is always allowed.'),
}).describe('How to reach the Vault server.');

export const VaultConnectionStatusSchema = z.object({
  observedGeneration: z.int().min(0).optional().describe('metadata.generation the status was last computed for.'),
  conditions: conditions('Ready: VaultSecrets can use this connection.').optional(),
}).describe('Observed state, written by the operator.');

export type VaultConnectionSpec = z.output<typeof VaultConnectionSpecSchema>;
export type VaultConnectionSpecInput = z.input<typeof VaultConnectionSpecSchema>;
export type VaultConnectionStatus = z.output<typeof VaultConnectionStatusSchema>;
