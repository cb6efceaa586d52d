/** A tiny client for the agent's control API (HTTP over its Unix socket). */
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { parseConfigText } from '../agent/config.js';

export const DEFAULT_SOCKET = '/run/picket/control.sock';

/** --socket, else the socket named by --config, else $PICKET_SOCKET, else the default. */
export function resolveSocket(opts: { socket?: string; config?: string }): string {
  if (opts.socket) return opts.socket;
  if (opts.config) {
    let text: string;
    try {
      text = readFileSync(opts.config, 'utf8');
    } catch {
      throw new InputError(`${opts.config}: cannot read config`);
    }
    return parseConfigText(text, opts.config).control.socket;
  }
  return process.env.PICKET_SOCKET || DEFAULT_SOCKET;
}

export interface Reply {
  status: number;
  body: unknown;
}

export function call(socket: string, method: 'GET' | 'POST', path: string, body?: Uint8Array, timeoutMs = 15_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, timeout: timeoutMs, headers: body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch {
          reject(new InputError(`agent at ${socket} answered with something that is not JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' ? 'no agent socket there (is `picket agent` running? use --socket)' : e.code === 'EACCES' ? 'permission denied (run as the agent user or root)' : e.code === 'ECONNREFUSED' ? 'connection refused (agent not running?)' : e.message;
      reject(new InputError(`${socket}: ${why}`));
    });
    if (body) req.write(body);
    req.end();
  });
}
