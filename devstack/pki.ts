// Certificates for the local control plane, made with the system's openssl: a CA that clients verify,
// the apiserver's serving certificate for 127.0.0.1, and the ServiceAccount token signing key pair.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './process.ts';

export interface ControlPlanePki {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  saPublicKey: string;
  saPrivateKey: string;
}

export async function makeControlPlanePki(dir: string): Promise<ControlPlanePki> {
  const p = (f: string) => join(dir, f);
  const pki: ControlPlanePki = {
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    servingCert: p('apiserver.crt'),
    servingKey: p('apiserver.key'),
    saPublicKey: p('sa.pub'),
    saPrivateKey: p('sa.key'),
  };
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', pki.caKey, '-out', pki.caCert, '-days', '30', '-subj', '/CN=vault-sync-devstack-ca']);
  writeFileSync(p('serving.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
    '',
  ].join('\n'));
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', pki.servingKey, '-out', p('apiserver.csr'), '-subj', '/CN=kube-apiserver']);
  await run('openssl', ['x509', '-req', '-in', p('apiserver.csr'), '-CA', pki.caCert, '-CAkey', pki.caKey,
    '-CAcreateserial', '-out', pki.servingCert, '-days', '30', '-extfile', p('serving.ext')]);
  await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', pki.saPrivateKey]);
  await run('openssl', ['pkey', '-in', pki.saPrivateKey, '-pubout', '-out', pki.saPublicKey]);
  return pki;
}
