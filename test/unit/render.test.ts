import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataHmac, mergeSources, sameData, selectKeys, toBytes, invalidSecretKeys } from '../../src/render/secretData.ts';
import { renderTemplates, TemplateError } from '../../src/render/template.ts';

const ctx = (secret: Record<string, unknown>) => ({ secret, vaultSecret: { namespace: 'team-a', name: 'db' } });

test('templates build destination keys from source keys, with URL encoding for passwords', async () => {
  const out = await renderTemplates(
    { DATABASE_URL: 'postgresql://{{ secret.username }}:{{ secret.password | url_encode }}@{{ secret["db-host"] }}/app' },
    ctx({ username: 'u1', password: 'p@ss/word', 'db-host': 'db.internal' }),
  );
  assert.equal(out.DATABASE_URL!.toString(), 'postgresql://u1:p%40ss%2Fword@db.internal/app');
});

test('templates see the VaultSecret name and namespace', async () => {
  const out = await renderTemplates({ who: '{{ vaultSecret.namespace }}/{{ vaultSecret.name }}' }, ctx({}));
  assert.equal(out.who!.toString(), 'team-a/db');
});

test('an undefined variable is an error naming the key, not an empty string', async () => {
  await assert.rejects(renderTemplates({ URL: '{{ secret.missing }}' }, ctx({ username: 'u' })), (err: unknown) =>
    err instanceof TemplateError && err.key === 'URL' && /undefined variable/i.test(err.message));
});

test('templates cannot read files or reach prototypes', async () => {
  await assert.rejects(renderTemplates({ f: '{% include "/etc/passwd" %}' }, ctx({})), TemplateError);
  await assert.rejects(renderTemplates({ f: '{% render "/etc/hostname" %}' }, ctx({})), TemplateError);
  await assert.rejects(renderTemplates({ p: '{{ secret.constructor }}' }, ctx({ a: 'b' })), TemplateError);
  await assert.rejects(renderTemplates({ p: '{{ secret.__proto__ }}' }, ctx({ a: 'b' })), TemplateError);
});

test('a syntax error is reported with the key', async () => {
  await assert.rejects(renderTemplates({ BROKEN: '{{ secret.a ' }, ctx({ a: 'x' })), (err: unknown) =>
    err instanceof TemplateError && /BROKEN/.test(err.message) && /does not parse/.test(err.message));
});

test('render errors never contain secret values', async () => {
  const password = 'hunter2-very-secret';
  try {
    await renderTemplates({ k: '{{ secret.password | nonexistent_filter }}' }, ctx({ password }));
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(!String((err as Error).message).includes(password));
  }
});

test('key selection reports missing keys; merge gives later sources precedence', () => {
  assert.deepEqual(selectKeys({ a: 1, b: 2, c: 3 }, ['a', 'c', 'z']), { data: { a: 1, c: 3 }, missing: ['z'] });
  assert.deepEqual(selectKeys({ a: 1 }, undefined), { data: { a: 1 }, missing: [] });
  assert.deepEqual(mergeSources([{ a: '1', b: '1' }, { b: '2' }, { c: '3' }]), { a: '1', b: '2', c: '3' });
});

test('values become bytes: strings verbatim, other JSON serialised', () => {
  assert.equal(toBytes('x').toString(), 'x');
  assert.equal(toBytes(42).toString(), '42');
  assert.equal(toBytes({ a: [1] }).toString(), '{"a":[1]}');
  assert.deepEqual(invalidSecretKeys(['ok-key_1.x', 'bad key', 'bad/key']), ['bad key', 'bad/key']);
});

test('the HMAC is keyed, order-independent and sensitive to boundaries and values', () => {
  const k1 = Buffer.from('key-one');
  const k2 = Buffer.from('key-two');
  const d = { a: Buffer.from('1'), b: Buffer.from('2') };
  assert.equal(dataHmac(k1, d), dataHmac(k1, { b: Buffer.from('2'), a: Buffer.from('1') }));
  assert.notEqual(dataHmac(k1, d), dataHmac(k2, d));
  assert.notEqual(dataHmac(k1, { ab: Buffer.from('c') }), dataHmac(k1, { a: Buffer.from('bc') }));
  assert.notEqual(dataHmac(k1, d), dataHmac(k1, { a: Buffer.from('1'), b: Buffer.from('3') }));
  assert.match(dataHmac(k1, d), /^sha256:[0-9a-f]{64}$/);
  assert.ok(sameData(d, { b: Buffer.from('2'), a: Buffer.from('1') }));
  assert.ok(!sameData(d, { a: Buffer.from('1') }));
});
