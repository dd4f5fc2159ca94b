// A minimal administrative Vault/OpenBao HTTP client for setting up the stack and tests (mounts, policies,
// roles, seeding secrets). The operator has its own client in src/vault; this one deliberately shares
// nothing with it, so tests do not verify the product with the product.
import { fetch } from 'undici';

export class VaultAdminError extends Error {
  readonly status: number;
  readonly errors: string[];
  constructor(status: number, method: string, path: string, errors: string[]) {
    super(`${method} ${path} -> HTTP ${status}: ${errors.join('; ')}`);
    this.status = status;
    this.errors = errors;
  }
}

export class VaultAdmin {
  readonly addr: string;
  private readonly token: string | undefined;
  constructor(addr: string, token: string | undefined) {
    this.addr = addr;
    this.token = token;
  }

  withToken(token: string): VaultAdmin {
    return new VaultAdmin(this.addr, token);
  }

  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers['x-vault-token'] = this.token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${this.addr}/v1/${path.replace(/^\//, '')}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new VaultAdminError(res.status, method, path, json?.errors ?? [text]);
    return json as T;
  }

  read<T = any>(path: string) {
    return this.request<T>('GET', path);
  }
  write<T = any>(path: string, body: unknown = {}) {
    return this.request<T>('POST', path, body);
  }
  delete(path: string) {
    return this.request('DELETE', path);
  }
  list<T = any>(path: string) {
    return this.request<T>('LIST', path);
  }

  /** Enables a mount unless one is already at that path (an existing Vault may have it). */
  async ensureMount(kind: 'auth' | 'secrets', path: string, body: Record<string, unknown>): Promise<void> {
    const mounts = await this.read<any>(kind === 'auth' ? 'sys/auth' : 'sys/mounts');
    const table = mounts.data ?? mounts;
    if (table[`${path}/`]) return;
    await this.write(kind === 'auth' ? `sys/auth/${path}` : `sys/mounts/${path}`, body);
  }

  async putPolicy(name: string, hcl: string): Promise<void> {
    await this.request('PUT', `sys/policies/acl/${name}`, { policy: hcl });
  }
}
