// Templates for destination keys (e.g. DATABASE_URL from username and password), rendered with LiquidJS:
// a template language made for untrusted authors. No code execution, no file system (an empty in-memory
// template map serves includes), own properties only, and limits on parse size, render time and memory.
import { Liquid } from 'liquidjs';

export interface TemplateContext {
  /** The source data: `{{ secret.username }}` or `{{ secret["db-host"] }}`. */
  secret: Record<string, unknown>;
  /** Where it came from: `{{ vaultSecret.namespace }}`, `{{ vaultSecret.name }}`. */
  vaultSecret: { namespace: string; name: string };
}

export class TemplateError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`template for key "${key}": ${message}`);
    this.key = key;
  }
}

const engine = new Liquid({
  templates: {},
  ownPropertyOnly: true,
  strictVariables: true,
  strictFilters: true,
  parseLimit: 64 * 1024,
  renderLimit: 1000,
  memoryLimit: 16 * 1024 * 1024,
});

/**
 * Renders each template; throws a TemplateError naming the key and the problem. Error texts from the
 * engine quote the template source (written by the user, not secret) but never the data.
 */
export async function renderTemplates(templates: Record<string, string>, ctx: TemplateContext): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const [key, source] of Object.entries(templates)) {
    let parsed;
    try {
      parsed = engine.parse(source);
    } catch (err) {
      throw new TemplateError(key, `does not parse: ${firstLine(err)}`);
    }
    try {
      out[key] = Buffer.from(await engine.render(parsed, ctx), 'utf8');
    } catch (err) {
      throw new TemplateError(key, `does not render: ${scrub(firstLine(err), ctx.secret)}`);
    }
  }
  return out;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.slice(0, 300);
}

/** Engine messages may quote a value they choked on; no secret value may reach a status or an event. */
function scrub(message: string, secret: Record<string, unknown>): string {
  let out = message;
  for (const value of Object.values(secret)) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (text && text.length >= 3) out = out.split(text).join('[redacted]');
  }
  return out;
}
