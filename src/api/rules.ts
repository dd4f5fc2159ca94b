// Cross-field rules written once and enforced twice: as a CEL `x-kubernetes-validations` rule in the CRD
// (the API server rejects the object) and as a zod refinement with the same message (for objects that
// reached the operator without that check, e.g. created before a CRD upgrade).
import type { z } from 'zod';

export interface CelRule<T> {
  /** CEL, evaluated by the API server after defaulting, with `self` bound to the value. */
  rule: string;
  /** Shown by both the API server and parseVaultSecretSpec: say what to change. */
  message: string;
  /** The same rule in TypeScript, evaluated on zod's output (defaults applied, like the server). */
  holds: (self: T) => boolean;
}

export interface KubernetesValidation {
  rule: string;
  message: string;
}

const VALIDATIONS = 'x-kubernetes-validations';

/** Adds the rules to the schema as zod refinements and as CRD validations (merged with earlier ones). */
export function withRules<S extends z.ZodType>(schema: S, rules: CelRule<z.output<S>>[]): S {
  const earlier = (schema.meta()?.[VALIDATIONS] as KubernetesValidation[] | undefined) ?? [];
  const refined = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      if (!r.holds(value as z.output<S>)) ctx.addIssue({ code: 'custom', message: r.message });
    }
  });
  return refined.meta({ [VALIDATIONS]: [...earlier, ...rules.map(({ rule, message }) => ({ rule, message }))] }) as S;
}

/**
 * Exactly one of the named optional fields must be set: a one-of without `oneOf`, which a structural
 * schema cannot hold in the form zod emits. Adding a sibling (e.g. a new source kind) means adding its
 * name here and its field to the object.
 */
export function exactlyOneOf<T extends object>(fields: readonly (keyof T & string)[]): CelRule<T> {
  const list = fields.length === 2 ? `${fields[0]} or ${fields[1]}` : `${fields.slice(0, -1).join(', ')} or ${fields.at(-1)}`;
  return {
    rule: `[${fields.map((f) => `has(self.${f})`).join(', ')}].filter(x, x).size() == 1`,
    message: `exactly one of ${list} must be set`,
    holds: (self) => fields.filter((f) => (self as Record<string, unknown>)[f] !== undefined).length === 1,
  };
}
