// Test doubles for the Vault component tests: a local HTTP(S) server standing in for Vault (real sockets,
// real undici), timers driven by a ManualClock, and a client wired for fast, deterministic retries.
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ManualClock } from '../../src/util/clock.ts';
import { VaultClient, type VaultClientOptions, type VaultConnection, type VaultRequestInfo } from '../../src/vault/client.ts';
import type { Timers } from '../../src/vault/auth.ts';

export const T0 = Date.UTC(2026, 0, 1);

export interface Recorded {
  method: string;
  /** Without /v1/ and without the query string. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** CN of the client certificate, when one was presented over TLS. */
  clientCertCn?: string;
}

export type Reply = { status: number; body?: unknown; headers?: Record<string, string>; raw?: string } | 'hangup' | 'hold';
export type Handler = (req: Recorded) => Reply | Promise<Reply>;

export interface FakeVault {
  address: string;
  port: number;
  requests: Recorded[];
  handler: Handler;
  /** Requests whose path equals `path` (and method, when given). */
  count(path: string, method?: string): number;
  close(): Promise<void>;
}

export async function startFakeVault(handler: Handler, tls?: HttpsOptions): Promise<FakeVault> {
  const sockets = new Set<Socket>();
  const fake: FakeVault = {
    address: '',
    port: 0,
    requests: [],
    handler,
    count(path, method) {
      return this.requests.filter((r) => r.path === path && (method === undefined || r.method === method)).length;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://fake');
        const text = Buffer.concat(chunks).toString('utf8');
        const socket = req.socket as TLSSocket;
        const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
        const recorded: Recorded = {
          method: req.method ?? '',
          path: decodeURIComponent(url.pathname.replace(/^\/v1\//, '')),
          query: url.searchParams,
          headers: req.headers,
          body: text ? JSON.parse(text) : undefined,
          clientCertCn: peer && typeof peer.subject?.CN === 'string' ? peer.subject.CN : undefined,
        };
        fake.requests.push(recorded);
        const reply = await fake.handler(recorded);
        if (reply === 'hold') return;
        if (reply === 'hangup') {
          req.socket.destroy();
          return;
        }
        res.statusCode = reply.status;
        for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
        if (reply.raw !== undefined) {
          res.end(reply.raw);
        } else if (reply.body !== undefined) {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(reply.body));
        } else {
          res.end();
        }
      })();
    });
  };
  const server: Server = tls ? createHttpsServer(tls, onRequest) : createHttpServer(onRequest);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.port = (server.address() as AddressInfo).port;
  fake.address = `${tls ? 'https' : 'http'}://127.0.0.1:${fake.port}`;
  return fake;
}

/** Answers `routes[path]` (or `routes['METHOD path']`), 404 otherwise. */
export function routes(table: Record<string, Reply | ((req: Recorded) => Reply | Promise<Reply>)>): Handler {
  return (req) => {
    const route = table[`${req.method} ${req.path}`] ?? table[req.path];
    if (route === undefined) return { status: 404, body: { errors: [] } };
    return typeof route === 'function' ? route(req) : route;
  };
}

export interface TestClient {
  client: VaultClient;
  clock: ManualClock;
  /** Backoff delays the client slept, in order. */
  sleeps: number[];
  observed: VaultRequestInfo[];
}

/** A client whose backoff sleeps advance a ManualClock instantly, with a fixed jitter draw. */
export function testClient(address: string, connection: Partial<VaultConnection> = {}, options: VaultClientOptions = {}): TestClient {
  const clock = new ManualClock(T0);
  const sleeps: number[] = [];
  const observed: VaultRequestInfo[] = [];
  const client = new VaultClient(
    { address, timeoutMs: 5_000, ...connection },
    {
      clock,
      random: () => 0.5,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock.advance(ms);
      },
      onRequest: (info) => observed.push(info),
      ...options,
    },
  );
  return { client, clock, sleeps, observed };
}

/** Timers driven by a ManualClock. */
export class FakeTimers implements Timers {
  readonly clock: ManualClock;
  private readonly due = new Map<number, { at: number; callback: () => void }>();
  private nextId = 1;

  constructor(clock: ManualClock) {
    this.clock = clock;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.due.set(id, { at: this.clock.now() + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }

  get pending(): number {
    return this.due.size;
  }

  /** When the earliest pending timer fires (epoch ms), if any. */
  get nextAt(): number | undefined {
    let at: number | undefined;
    for (const t of this.due.values()) if (at === undefined || t.at < at) at = t.at;
    return at;
  }

  /** Moves time forward by `ms`, firing the timers that come due on the way, in order. */
  advance(ms: number): void {
    const target = this.clock.now() + ms;
    for (;;) {
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const timer of this.due) if (timer[1].at <= target && (!next || timer[1].at < next[1].at)) next = timer;
      if (!next) break;
      this.due.delete(next[0]);
      this.clock.set(Math.max(this.clock.now(), next[1].at));
      next[1].callback();
    }
    this.clock.set(target);
  }
}

/** Polls `check` on real time until it holds; for work that crosses real sockets. */
export async function eventually(what: string, check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Resolves with the rejection of `promise` (and fails when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
