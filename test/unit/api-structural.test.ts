// The zod → structural schema conversion: what it rewrites, and that it refuses what a CRD cannot hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { StructuralSchemaError, toStructuralSchema } from '../../src/api/structural.ts';
import { exactlyOneOf, withRules } from '../../src/api/rules.ts';

test('zod output is rewritten into the structural form', () => {
  const schema = z.strictObject({
    count: z.int().describe('n'),
    ratio: z.number().positive().describe('r'),
    kvVersion: z.literal([1, 2]).optional().describe('v'),
    labels: z.record(z.string(), z.string()).optional().describe('l'),
    name: z.string().default('x').describe('d'),
  });
  assert.deepEqual(toStructuralSchema(schema), {
    type: 'object',
    required: ['count', 'ratio'],
    properties: {
      count: { description: 'n', type: 'integer' }, // no ±MAX_SAFE_INTEGER bounds
      ratio: { description: 'r', type: 'number', minimum: 0, exclusiveMinimum: true },
      kvVersion: { description: 'v', type: 'integer', enum: [1, 2] },
      labels: { description: 'l', type: 'object', additionalProperties: { type: 'string' } },
      name: { description: 'd', type: 'string', default: 'x' }, // input side: optional, with its default
    },
    // no additionalProperties: false from the strict object; the API server prunes unknown fields
  });
});

test('rules become x-kubernetes-validations and zod refinements with one message', () => {
  const schema = withRules(z.object({ a: z.string().optional(), b: z.string().optional() }), [exactlyOneOf(['a', 'b'])]);
  assert.deepEqual(toStructuralSchema(schema)['x-kubernetes-validations'], [
    { rule: '[has(self.a), has(self.b)].filter(x, x).size() == 1', message: 'exactly one of a or b must be set' },
  ]);
  assert.equal(schema.safeParse({ a: 'x', b: 'y' }).error?.issues[0]?.message, 'exactly one of a or b must be set');
  assert.equal(schema.safeParse({ a: 'x' }).success, true);
  // Rules added later keep the earlier ones.
  const more = withRules(schema, [{ rule: 'has(self.a)', message: 'a is needed', holds: (s) => s.a !== undefined }]);
  assert.equal(toStructuralSchema(more)['x-kubernetes-validations']?.length, 2);
});

test('what a structural schema cannot hold fails generation, naming the field', () => {
  const cases: [string, z.ZodType, RegExp][] = [
    ['union', z.object({ x: z.union([z.string(), z.int()]) }), /^x: "anyOf"/],
    ['discriminated union', z.object({ s: z.discriminatedUnion('k', [z.object({ k: z.literal('a') }), z.object({ k: z.literal('b') })]) }), /^s: "oneOf"|^s: "anyOf"/],
    ['intersection of a string and an object', z.object({ i: z.string().and(z.object({ b: z.string() })) }), /^i: /],
    ['nullable', z.object({ n: z.string().nullable() }), /^n: "nullable"/],
    ['lookahead pattern', z.object({ p: z.string().regex(/^(?!x)/) }), /^p: pattern .*RE2/],
    ['tuple', z.object({ t: z.tuple([z.string(), z.int()]) }), /^t\.\[\]: "anyOf"/],
    ['catch-all object', z.object({ o: z.looseObject({}) }), /^o: an object with arbitrary fields/],
    ['record of unknown', z.object({ r: z.record(z.string(), z.unknown()) }), /^r: an object with arbitrary fields/],
  ];
  for (const [name, schema, message] of cases) {
    assert.throws(() => toStructuralSchema(schema), (err: unknown) => err instanceof StructuralSchemaError && message.test(err.message), name);
  }
  // Unrepresentable types (dates, transforms' outputs) already fail in zod.
  assert.throws(() => toStructuralSchema(z.object({ d: z.date() })));
});
