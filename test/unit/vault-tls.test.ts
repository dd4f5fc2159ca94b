// TLS as a user configures it: the server's CA, a TLS server name, a client certificate. Throwaway CAs and
// certificates are made with openssl for this file only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { VaultError } from '../../src/vault/errors.ts';
import { rejection, startFakeVault, testClient, type FakeVault } from './vault-fakes.ts';

const run = promisify(execFile);

interface Pki {
  caCert: string;
  otherCaCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

let dir = '';
let pki: Pki;
let server: FakeVault;
let strictServer: FakeVault;
const closers: Array<() => Promise<void>> = [];

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(name: string): Promise<void> {
  await openssl('req', '-x509', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

async function makeLeaf(name: string, ca: string, extensions: string): Promise<void> {
  await writeFile(join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\n${extensions}\n`);
  await openssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-tls-test-'));
  await makeCa('test-ca');
  await makeCa('other-ca');
  // The server certificate names only vault.test, so reaching it by IP needs tlsServerName.
  await makeLeaf('vault-server', 'test-ca', 'subjectAltName=DNS:vault.test\nextendedKeyUsage=serverAuth');
  await makeLeaf('vault-sync-operator', 'test-ca', 'extendedKeyUsage=clientAuth');
  const read = (f: string) => readFile(join(dir, f), 'utf8');
  pki = {
    caCert: await read('test-ca.crt'),
    otherCaCert: await read('other-ca.crt'),
    serverCert: await read('vault-server.crt'),
    serverKey: await read('vault-server.key'),
    clientCert: await read('vault-sync-operator.crt'),
    clientKey: await read('vault-sync-operator.key'),
  };
  const ok = () => ({ status: 200, body: { data: { ok: true } } });
  // Asks for a client certificate but also serves clients without one (to observe what was presented).
  server = await startFakeVault(ok, { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: false });
  // Requires a client certificate signed by the CA, as Vault's tls_require_and_verify_client_cert does.
  strictServer = await startFakeVault(ok, { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: true });
  closers.push(() => server.close(), () => strictServer.close());
});

after(async () => {
  for (const close of closers) await close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function client(target: FakeVault, connection: Parameters<typeof testClient>[1] = {}) {
  const t = testClient(target.address, { tlsServerName: 'vault.test', caCertPem: pki.caCert, ...connection }, { retry: { maxAttempts: 1 } });
  closers.push(() => t.client.close());
  return t.client;
}

test('verifies the server with the given CA and TLS server name', async () => {
  assert.deepEqual(await client(server).read('secret/x', 't'), { data: { ok: true } });
});

test('a server certificate from another CA is Unreachable', async () => {
  const err = await rejection(client(server, { caCertPem: pki.otherCaCert }).read('secret/x', 't'));
  assert.ok(err instanceof VaultError);
  assert.equal(err.kind, 'Unreachable');
  assert.match(err.code ?? '', /CERT|SIGNATURE|ISSUER/);
});

test('a certificate that does not name the host is Unreachable', async () => {
  const t = testClient(server.address, { caCertPem: pki.caCert }, { retry: { maxAttempts: 1 } });
  closers.push(() => t.client.close());
  const err = await rejection(t.client.read('secret/x', 't'));
  assert.ok(err instanceof VaultError);
  assert.equal(err.kind, 'Unreachable');
  assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
});

test('presents the client certificate for mTLS', async () => {
  const before = server.requests.length;
  await client(server, { clientCertPem: pki.clientCert, clientKeyPem: pki.clientKey }).read('secret/x', 't');
  await client(server).read('secret/x', 't');
  assert.deepEqual(server.requests.slice(before).map((r) => r.clientCertCn), ['vault-sync-operator', undefined]);
});

test('a server that requires a client certificate accepts ours and refuses a client without one', async () => {
  assert.deepEqual(await client(strictServer, { clientCertPem: pki.clientCert, clientKeyPem: pki.clientKey }).read('secret/x', 't'), { data: { ok: true } });
  const err = await rejection(client(strictServer).read('secret/x', 't'));
  assert.ok(err instanceof VaultError);
  // Under TLS 1.3 the server refuses after the client has finished its side of the handshake, so the client
  // sees only a closed socket (Transient); under TLS 1.2 it would see the handshake alert (Unreachable).
  assert.ok(err.kind === 'Transient' || err.kind === 'Unreachable', `${err.kind} ${err.code}`);
  assert.ok(err.retryable);
});
