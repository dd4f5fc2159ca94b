// A tiny HTTP server for the Prometheus scrape endpoint. node:http only: the scrape is one GET, and a
// framework would add more attack surface than it saves code.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServer {
  /** The bound address as `host:port` (the real port when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

/** Splits `host:port`; an empty host means all interfaces, `[::1]:9090` is accepted for IPv6. */
export function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon < 0) throw new Error(`metrics address "${address}" is not host:port`);
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) throw new Error(`metrics address "${address}" has an invalid port`);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host: host === '' ? undefined : host, port: Number(portText) };
}

function formatAddress(info: AddressInfo): string {
  return info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
}

/**
 * Serves `GET /metrics` from `source` on `address` until `close()` is called. `onError` hears about collectors
 * that failed during a scrape (the scraper only sees a 500).
 */
export async function serveMetrics(source: MetricsSource, address: string, onError?: (err: unknown) => void): Promise<MetricsServer> {
  const { host, port } = parseListenAddress(address);
  const server = createServer((req, res) => void handle(source, req, res, onError));
  // Tracked so close() does not wait for a scraper's idle keep-alive connection.
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await listen(server, host, port);
  const bound = server.address() as AddressInfo;
  return {
    address: formatAddress(bound),
    close: () => new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      for (const socket of sockets) socket.destroy();
    }),
  };
}

function listen(server: Server, host: string | undefined, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

async function handle(source: MetricsSource, req: IncomingMessage, res: ServerResponse, onError?: (err: unknown) => void): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://scrape').pathname;
  if (path !== '/metrics') {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
    return;
  }
  try {
    const body = await source.metrics();
    res.writeHead(200, { 'Content-Type': source.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (err) {
    onError?.(err);
    // Said without echoing the error, which a scraper may store.
    res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('collecting metrics failed\n');
  }
}
