// The operator's KubeConfig. @kubernetes/client-node 2.0.1 builds a new undici Agent for every API call
// (applySecurityAuthentication → createDispatcher, uncached), so each request opened its own TLS
// connection: a handshake per request and sockets left open until their keep-alive ran out. Measured on
// 200 VaultSecrets (bench/): most of the operator's CPU went to TLS setup. Here one Agent per
// cluster+user is kept and reused, as client-go reuses its transport.
import { KubeConfig, type RequestContext } from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

export class PooledKubeConfig extends KubeConfig {
  #dispatcher: Dispatcher | undefined;
  #dispatcherKey: string | undefined;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const created = context.getDispatcher();
    if (!created) return; // plain connection settings: undici's global pool already reuses sockets
    // The TLS material depends only on the current cluster and user (the bearer token is a header).
    const key = JSON.stringify([this.getCurrentCluster()?.name, this.getCurrentUser()?.name]);
    if (this.#dispatcher && this.#dispatcherKey === key) {
      void created.close(); // never used: holds no connection
      context.setDispatcher(this.#dispatcher);
      return;
    }
    const previous = this.#dispatcher;
    this.#dispatcher = created;
    this.#dispatcherKey = key;
    void previous?.close();
  }
}
