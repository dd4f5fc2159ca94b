// zod schema → Kubernetes structural OpenAPI v3 schema (apiextensions.k8s.io/v1 JSONSchemaProps).
//
// zod's JSON Schema output (input side, OpenAPI 3.0 flavour) is close; this pass keeps only what a
// structural schema may hold and fails loudly, naming the path, on anything else (anyOf from a union,
// $ref from a recursive schema, a lookahead in a pattern, ...), so a schema change that cannot be expressed
// in the CRD is caught when the CRDs are generated rather than by the API server, or not at all.
import { z } from 'zod';

export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  additionalProperties?: JSONSchemaProps;
  default?: unknown;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  /** OpenAPI v3.0 form: a flag on minimum/maximum (zod's .positive() and .lt()). */
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  'x-kubernetes-validations'?: { rule: string; message: string }[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
}

/** Output key order, so the generated YAML reads top-down: what it is, then its constraints, then children. */
const KEY_ORDER: (keyof JSONSchemaProps)[] = [
  'description', 'type', 'format', 'default', 'enum', 'pattern',
  'minimum', 'exclusiveMinimum', 'maximum', 'exclusiveMaximum', 'minLength', 'maxLength',
  'minItems', 'maxItems', 'minProperties', 'maxProperties',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type',
  'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string', 'x-kubernetes-embedded-resource',
  'required', 'properties', 'additionalProperties', 'items', 'x-kubernetes-validations',
];

/** zod's defaults for an unbounded z.int(); not constraints anyone wrote. */
const SAFE_INT_BOUNDS = new Set([Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);

/** Go's RE2 (the API server's regexp engine) has no lookaround or backreferences. */
const NON_RE2 = /\(\?[=!<]|\\[1-9]|\\k</;

export class StructuralSchemaError extends Error {}

export function toStructuralSchema(schema: z.ZodType): JSONSchemaProps {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'openapi-3.0', unrepresentable: 'throw', cycles: 'throw', reused: 'inline' });
  return convert(json as Record<string, unknown>, []);
}

function convert(node: Record<string, unknown>, path: string[]): JSONSchemaProps {
  const where = path.length === 0 ? '(root)' : path.join('.');
  const fail = (why: string): never => {
    throw new StructuralSchemaError(`${where}: ${why}`);
  };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case '$schema':
        break;
      case 'type':
        if (!['object', 'array', 'string', 'integer', 'number', 'boolean'].includes(value as string)) fail(`type ${JSON.stringify(value)} is not allowed`);
        out.type = value;
        break;
      case 'properties': {
        const props: Record<string, JSONSchemaProps> = {};
        for (const [name, child] of Object.entries(value as Record<string, Record<string, unknown>>)) {
          props[name] = convert(child, [...path, name]);
        }
        out.properties = props;
        break;
      }
      case 'items':
        if (Array.isArray(value)) fail('tuple items are not allowed; use an array of one item type');
        out.items = convert(value as Record<string, unknown>, [...path, '[]']);
        break;
      case 'additionalProperties':
        // false comes from strict objects: the API server prunes unknown fields instead.
        if (value === false) break;
        if (value === true || Object.keys(value as object).length === 0) {
          fail('an object with arbitrary fields (looseObject, record of unknown) is not allowed; type its values');
        }
        out.additionalProperties = convert(value as Record<string, unknown>, [...path, '*']);
        break;
      case 'minimum':
      case 'maximum':
        if (!SAFE_INT_BOUNDS.has(value as number)) out[key] = value;
        break;
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        if (typeof value !== 'boolean') fail(`${key} must be the OpenAPI 3.0 boolean form`);
        out[key] = value;
        break;
      case 'const':
        out.enum = [value];
        break;
      case 'pattern':
        if (NON_RE2.test(value as string)) fail(`pattern ${JSON.stringify(value)} uses lookaround or backreferences, which the API server (RE2) rejects`);
        out.pattern = value;
        break;
      case 'description': case 'format': case 'default': case 'enum': case 'required':
      case 'minLength': case 'maxLength': case 'minItems': case 'maxItems': case 'minProperties': case 'maxProperties':
        out[key] = value;
        break;
      default:
        if (key.startsWith('x-kubernetes-')) {
          out[key] = value;
          break;
        }
        // anyOf/oneOf/allOf/not (unions, intersections), $ref/$defs (recursion, ids), propertyNames, tuples,
        // nullable, titles, examples ... have no place in a structural schema the way zod emits them.
        fail(`"${key}" cannot be expressed in a structural schema; use plain objects with optional fields and CEL rules (src/api/rules.ts)`);
    }
  }
  // z.literal([1, 2]) is emitted as a number enum; Kubernetes should see integers.
  if (out.type === 'number' && Array.isArray(out.enum) && out.enum.every(Number.isInteger)) out.type = 'integer';
  if (out.type === undefined && !out['x-kubernetes-preserve-unknown-fields'] && !out['x-kubernetes-int-or-string']) {
    fail('every node needs a type');
  }
  if (out.properties && out.additionalProperties) fail('properties and additionalProperties are mutually exclusive');
  if (Array.isArray(out.required) && out.required.length === 0) delete out.required;
  return ordered(out);
}

function ordered(node: Record<string, unknown>): JSONSchemaProps {
  const out: Record<string, unknown> = {};
  for (const key of KEY_ORDER) if (node[key] !== undefined) out[key] = node[key];
  return out as JSONSchemaProps;
}
