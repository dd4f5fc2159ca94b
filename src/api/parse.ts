// Runtime validation of objects read from the API server. Admission normally rejects invalid objects
// already; these catch the ones that slipped past (created before a CRD upgrade, or with the CRD's
// validation off) and say which field to fix, in the same words as the CRD's CEL rules.
import type { z } from 'zod';
import { VaultConnectionSpecSchema, type VaultConnectionSpec } from './vaultConnection.ts';
import { VaultSecretSpecSchema, type VaultSecretSpec } from './vaultSecret.ts';

export type ParseResult<T> = { ok: true; spec: T } | { ok: false; message: string };

export function parseVaultSecretSpec(raw: unknown): ParseResult<VaultSecretSpec> {
  return parseSpec(VaultSecretSpecSchema, raw);
}

export function parseVaultConnectionSpec(raw: unknown): ParseResult<VaultConnectionSpec> {
  return parseSpec(VaultConnectionSpecSchema, raw);
}

function parseSpec<S extends z.ZodType>(schema: S, raw: unknown): ParseResult<z.output<S>> {
  const result = schema.safeParse(raw, { error: plainMessage });
  if (result.success) return { ok: true, spec: result.data };
  return { ok: false, message: result.error.issues.map((issue) => `${fieldPath(['spec', ...issue.path])}: ${issue.message}`).join('; ') };
}

/**
 * zod's generic messages in the words of a field reference ("must be at least 1", "is required"); messages
 * written in the schema take precedence. Input values are never quoted: a secret pasted into the wrong
 * field must not end up in a status message or an event.
 */
const plainMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'is required' : `must be ${article(issue.expected)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      if (issue.origin === 'array') return `must have at least ${issue.minimum} entries`;
      if (issue.origin === 'string') return Number(issue.minimum) === 1 ? 'must not be empty' : `must be at least ${issue.minimum} characters long`;
      return `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${issue.maximum} entries`;
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters long`;
      return `must be at most ${issue.maximum}`;
    default:
      return undefined;
  }
};

function article(type: string): string {
  if (type === 'int') return 'an integer';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** spec.source.kvMerge.sources[1].path: the form kubectl and the API server use. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}
