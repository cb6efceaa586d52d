/**
 * The operator API: HTTP over a Unix socket (mode 0600, so only the agent's user and root
 * can talk to it). Thin: every route calls into the agent; bodies are size-limited.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, existsSync, unlinkSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:net';
import { LIMITS } from '../wire/limits.js';
import { InputError } from '../errors.js';

/** True if something accepts a connection on the unix socket at `path`. */
export function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export interface ControlHandlers {
  status(): unknown | Promise<unknown>;
  mesh(): unknown;
  policy(): unknown | null;
  publish(body: Uint8Array): Promise<{ code: number; body: unknown }>;
  explain(q: URLSearchParams): { code: number; body: unknown };
  /** The policy accept log, newest first (`picket policy history`). */
  history(): Promise<unknown>;
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) return null;
    chunks.push(c as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

export class ControlServer {
  #server: Server;

  constructor(private readonly path: string, h: ControlHandlers) {
    this.#server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://picket');
        const route = `${req.method} ${url.pathname}`;
        try {
          switch (route) {
            case 'GET /v1/status': return send(res, 200, await h.status());
            case 'GET /v1/mesh': return send(res, 200, h.mesh());
            case 'GET /v1/policy': {
              const p = h.policy();
              return p === null ? send(res, 404, { error: 'no policy yet' }) : send(res, 200, p);
            }
            case 'POST /v1/policy': {
              const body = await readBody(req, LIMITS.maxEnvelopeJsonBytes);
              if (!body) return send(res, 413, { outcome: 'too-large', reason: `body over ${LIMITS.maxEnvelopeJsonBytes} bytes` });
              const r = await h.publish(body);
              return send(res, r.code, r.body);
            }
            case 'GET /v1/explain': {
              const r = h.explain(url.searchParams);
              return send(res, r.code, r.body);
            }
            case 'GET /v1/history': return send(res, 200, await h.history());
            default:
              return send(res, 404, { error: `no route ${route}` });
          }
        } catch (e) {
          return send(res, 500, { error: (e as Error).message });
        }
      })();
    });
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    if (existsSync(this.path)) {
      // A socket file with a live process behind it is another agent's handle: never steal it.
      if (await answers(this.path)) throw new InputError(`control.socket ${this.path}: another process already answers there (is another agent running with this socket?)`);
      unlinkSync(this.path); // a stale socket from a crash
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o600);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections?.();
    try { unlinkSync(this.path); } catch { /* already gone */ }
  }
}
