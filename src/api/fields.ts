// Building blocks shared by the VaultSecret and VaultConnection schemas. Every schema here converts to a
// Kubernetes structural schema (see structural.ts): plain objects, strings with RE2-compatible patterns,
// integers, enums, string maps and arrays; cross-field rules only through rules.ts.
import { z } from 'zod';
import { DURATION_HINT, DURATION_MAX_LENGTH, DURATION_PATTERN, isDuration, parseDuration } from './duration.ts';
import { withRules } from './rules.ts';

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const SECRET_KEY = '^[-._a-zA-Z0-9]+$';
/** Vault mounts and paths are written without leading or trailing slashes; the client joins them. */
const VAULT_PATH = '^[^/](.*[^/])?$';

/** A Kubernetes object name (Secret, ServiceAccount, VaultConnection). */
export function objectName(): z.ZodString {
  return z.string().max(253).regex(new RegExp(DNS_SUBDOMAIN),
    "must be a DNS subdomain name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit");
}

/** A namespace name, or '*' for every namespace. */
export function namespaceOrAll(): z.ZodString {
  return z.string().max(63).regex(new RegExp(`^(\\*|${DNS_LABEL.slice(1, -1)})$`),
    "must be a namespace name (lowercase letters, digits and '-') or '*'");
}

export function namespaceName(): z.ZodString {
  return z.string().max(63).regex(new RegExp(DNS_LABEL),
    "must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit");
}

/** A key of a Secret's data. */
export function secretKey(): z.ZodString {
  return z.string().max(253).regex(new RegExp(SECRET_KEY), "must be a Secret data key: letters, digits, '-', '_' and '.'");
}

export function vaultPath(what: string): z.ZodString {
  return z.string().min(1).max(512).regex(new RegExp(VAULT_PATH), `must be a Vault ${what} without leading or trailing '/'`);
}

export function nonEmpty(max = 253): z.ZodString {
  return z.string().min(1, 'must not be empty').max(max);
}

/** A Go-style duration of at least `min`: the format by pattern, the minimum by a CEL rule. */
export function duration(min: string) {
  const minMs = parseDuration(min);
  return withRules(z.string().max(DURATION_MAX_LENGTH).regex(new RegExp(DURATION_PATTERN), `must be ${DURATION_HINT}`), [{
    // The API server skips CEL rules once the pattern has failed; the guard keeps a malformed value from
    // turning into a CEL evaluation error should it ever be evaluated anyway (e.g. validation ratcheting).
    rule: `!self.matches('${DURATION_PATTERN}') || duration(self) >= duration('${min}')`,
    message: `must be at least ${min}`,
    holds: (self) => !isDuration(self) || parseDuration(self) >= minMs,
  }]);
}

/** A string→string map (labels, annotations, headers, templates). */
export function stringMap() {
  return z.record(z.string(), z.string());
}

/** Strings without repeats, stored as a Kubernetes set list (the API server rejects duplicates too). */
export function stringSet(item: z.ZodString) {
  return z.array(item)
    .refine((list) => new Set(list).size === list.length, 'must not contain the same entry twice')
    .meta({ 'x-kubernetes-list-type': 'set' });
}

/** A key in a Secret of the VaultSecret's (or VaultConnection's) own namespace. */
export function secretKeyRef(defaultKey?: string) {
  const key = defaultKey === undefined
    ? secretKey().describe('Key in the Secret\'s data.')
    : secretKey().default(defaultKey).describe(`Key in the Secret's data. Default: ${defaultKey}.`);
  return z.object({
    name: objectName().describe('Name of a Secret in the same namespace as this object.'),
    key,
  });
}

export const ConditionSchema = z.object({
  type: z.string().min(1).max(316).describe('Kind of condition, e.g. Ready.'),
  status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition: True, False or Unknown.'),
  reason: z.string().max(1024).describe('Machine-readable reason in CamelCase, e.g. Synced or VaultPermissionDenied.'),
  message: z.string().max(32768).describe('Human-readable explanation; names resources and Vault paths, never secret values.'),
  lastTransitionTime: z.string().meta({ format: 'date-time' }).describe('When the status last changed.'),
  observedGeneration: z.int().min(0).optional().describe('metadata.generation the condition was set for.'),
});

export type Condition = z.output<typeof ConditionSchema>;

/** Conditions keyed by type, merged per entry by server-side apply. `types` says what each type means. */
export function conditions(types: string) {
  return z.array(ConditionSchema)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
    .describe(`Current state in Kubernetes condition form, one entry per type. ${types}`);
}
