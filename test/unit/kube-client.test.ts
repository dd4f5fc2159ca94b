// The operator's Kubernetes client plumbing: one connection pool for all API calls, and watch caches that
// keep only what the controllers read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpMethod, RequestContext } from '@kubernetes/client-node';
import { PooledKubeConfig } from '../../src/kube/kubeConfig.ts';
import { slimForCache } from '../../src/kube/listWatch.ts';

const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n').toString('base64');

function kubeConfig(user = 'admin'): PooledKubeConfig {
  const kc = new PooledKubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: CA }],
    users: [{ name: 'admin', token: 'not-a-real-token' }, { name: 'other', token: 'another-token' }],
    contexts: [{ name: 'ctx', cluster: 'c', user }],
    currentContext: 'ctx',
  });
  return kc;
}

async function dispatcherFor(kc: PooledKubeConfig) {
  const ctx = new RequestContext('https://127.0.0.1:6443/api/v1/secrets', HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return { dispatcher: ctx.getDispatcher(), authorization: ctx.getHeaders().Authorization };
}

test('every API call of one kubeconfig goes through the same connection pool, with its credentials', async () => {
  const kc = kubeConfig();
  const first = await dispatcherFor(kc);
  const second = await dispatcherFor(kc);
  assert.ok(first.dispatcher, 'a CA in the kubeconfig needs a dispatcher of its own');
  assert.equal(second.dispatcher, first.dispatcher, 'a new pool per call means a TLS handshake per request');
  assert.equal(second.authorization, 'Bearer not-a-real-token');
});

test('switching to another user gets another pool', async () => {
  const kc = kubeConfig();
  const before = await dispatcherFor(kc);
  kc.setCurrentContext('ctx');
  kc.contexts = [{ name: 'ctx', cluster: 'c', user: 'other' }];
  const after = await dispatcherFor(kc);
  assert.notEqual(after.dispatcher, before.dispatcher);
  assert.equal(after.authorization, 'Bearer another-token');
});

test('cached objects lose managedFields and the last-applied copy, and keep everything else', () => {
  const obj = slimForCache({
    metadata: {
      name: 'db', namespace: 'team-a', resourceVersion: '7',
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"spec":{}}', 'vaultsync.dev/force-sync': '1' },
      managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
    } as never,
    spec: { source: { kv: { path: 'a' } } },
  } as { metadata: { name: string; namespace?: string; annotations?: Record<string, string> }; spec: unknown });
  assert.deepEqual(obj, {
    metadata: { name: 'db', namespace: 'team-a', resourceVersion: '7', annotations: { 'vaultsync.dev/force-sync': '1' } },
    spec: { source: { kv: { path: 'a' } } },
  });
});
