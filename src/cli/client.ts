/** A tiny client for the agent's control API (HTTP over its Unix socket). */
import { request } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { DEFAULT_CONFIG_PATH } from '../agent/defaults.js';

/** The help text of --socket and --config, shared by every command that talks to the agent. */
export const SOCKET_HELP = 'agent control socket (default: the one named by the agent config)';
export const CONFIG_HELP = `agent config to find the socket in (default: $PICKET_CONFIG, else ${DEFAULT_CONFIG_PATH})`;

async function socketOfConfig(path: string): Promise<string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`${path}: cannot read agent config${code === 'EACCES' ? ' (permission denied: run as the agent user or root)' : code === 'ENOENT' ? ' (no such file)' : ''}`);
  }
  const { parseConfigText } = await import('../agent/config.js'); // zod and YAML: only when a config is read
  return parseConfigText(text, path).control.socket;
}

/**
 * --socket, else the socket of --config, else $PICKET_SOCKET, else the socket of the config
 * in $PICKET_CONFIG or at DEFAULT_CONFIG_PATH: the command reads the file the agent reads, so
 * the two can never disagree about where the socket is.
 */
export async function resolveSocket(opts: { socket?: string; config?: string }, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (opts.socket) return opts.socket;
  if (opts.config) return socketOfConfig(opts.config);
  if (env.PICKET_SOCKET) return env.PICKET_SOCKET;
  if (env.PICKET_CONFIG) return socketOfConfig(env.PICKET_CONFIG);
  if (existsSync(DEFAULT_CONFIG_PATH)) return socketOfConfig(DEFAULT_CONFIG_PATH);
  throw new InputError(`no agent config at ${DEFAULT_CONFIG_PATH}: say where the agent is with --config agent.yaml or --socket PATH`);
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
      const why = e.code === 'ENOENT' ? 'no agent socket there (is `picket agent` running? use --config or --socket)' : e.code === 'EACCES' ? 'permission denied (run as the agent user or root)' : e.code === 'ECONNREFUSED' ? 'connection refused (agent not running?)' : e.message;
      reject(new InputError(`${socket}: ${why}`));
    });
    if (body) req.write(body);
    req.end();
  });
}
