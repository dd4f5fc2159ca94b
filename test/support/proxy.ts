// A TCP proxy to a real server that a test can cut and restore: Vault becomes unreachable for the operator
// without losing its state (a dev server keeps everything in memory, so it cannot simply be restarted).
// It can also swallow answers: requests still reach Vault, which acts on them, but the operator never hears back.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { kubeClients, stackEnv } from './stack.ts';
import { GROUP, VERSION } from './vaultsync.ts';

export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
  /** From now until release(), Vault's answers are dropped; `answered` resolves when the first one is. */
  holdAnswers(): { answered: Promise<void> };
  release(): void;
}

export async function tcpProxy(target: URL): Promise<TcpProxy> {
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  let port = 0;
  let onAnswer: (() => void) | undefined;
  let holding = false;
  const listen = () => new Promise<void>((resolve) => {
    server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      sockets.add(client).add(upstream);
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (!holding) {
          client.write(chunk);
          return;
        }
        onAnswer?.();
      });
      upstream.on('end', () => client.end());
      const drop = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    // The same port again after a cut, so the VaultConnection's address stays valid.
    server.listen(port, '127.0.0.1', () => {
      port = (server!.address() as { port: number }).port;
      resolve();
    });
  });
  const cut = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  };
  await listen();
  return {
    port, cut, restore: listen, close: cut,
    holdAnswers: () => {
      holding = true;
      return { answered: new Promise<void>((resolve) => { onAnswer = resolve; }) };
    },
    release: () => {
      holding = false;
      onAnswer = undefined;
    },
  };
}

/** A VaultConnection in `ns` whose address is a cuttable proxy to the stack's Vault (2 s request timeout). */
export async function flakyVaultConnection(ns: string, name: string, t: { after(fn: () => Promise<void>): void }) {
  const proxy = await tcpProxy(new URL(stackEnv().VAULT_ADDR));
  t.after(() => proxy.close());
  await kubeClients().custom.createNamespacedCustomObject({
    group: GROUP, version: VERSION, namespace: ns, plural: 'vaultconnections',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'VaultConnection', metadata: { name }, spec: { address: `http://127.0.0.1:${proxy.port}`, timeout: '2s' } },
  });
  return proxy;
}
