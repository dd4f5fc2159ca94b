// ServiceAccount tokens from the TokenRequest API: the namespace's own identity, used to log in to Vault.
// Nothing is cached here; the Vault token manager logs in once per identity and reuses the Vault token.
import type { CoreV1Api } from '@kubernetes/client-node';

export class ServiceAccountTokens {
  private readonly core: CoreV1Api;
  constructor(core: CoreV1Api) {
    this.core = core;
  }

  async request(namespace: string, serviceAccount: string, audiences: string[], expirationSeconds: number): Promise<string> {
    const res = await this.core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: { spec: { audiences, expirationSeconds } },
    });
    const token = res.status?.token;
    if (!token) throw new Error(`TokenRequest for ServiceAccount ${namespace}/${serviceAccount} returned no token`);
    return token;
  }
}
