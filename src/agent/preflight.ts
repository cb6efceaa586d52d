/**
 * Agent room: what can be checked about a configuration without starting the agent, and the
 * words for what went wrong when starting failed. `agent --check` runs every check and lists
 * all problems; `Agent.start` runs the cheap ones first, so a bad file or directory fails
 * before anything is opened, and names its cause (field, path, port, permission).
 */
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { PicketError } from '../errors.js';
import { loadEnvelope } from '../trust/files.js';
import { loadNodeKey } from '../trust/node-key.js';
import { trustPinnedRoot } from '../trust/verify.js';
import { parseEnvelopeAny } from '../trust/envelope.js';
import { readInput } from '../runtime/files.js';
import type { AgentConfig } from './config.js';

/** The agent could not start: one line naming what (field, path, address) and why. */
export class StartError extends PicketError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_START', message, options);
    this.name = 'StartError';
  }
}

const ERRNO: Record<string, string> = {
  EADDRINUSE: 'address already in use (another process listens there)',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EADDRNOTAVAIL: 'address not available on this host',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ENOENT: 'no such file or directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  ENOTFOUND: 'host name not found',
};

/** The errno behind an error, looking through causes (libp2p and level wrap them). */
export function errnoOf(e: unknown): string | undefined {
  for (let x = e, depth = 0; x && depth < 6; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && ERRNO[code]) return code;
    const m = /\b(EADDRINUSE|EACCES|EPERM|EADDRNOTAVAIL|ENOTDIR|EISDIR|ENOENT|EROFS|ENOSPC)\b/.exec(String((x as Error).message ?? ''));
    if (m) return m[1];
  }
  return undefined;
}

/** One line saying why, from the errno when there is one, else the innermost message. */
export function reasonOf(e: unknown): string {
  const code = errnoOf(e);
  if (code) return ERRNO[code]!;
  let x = e as { message?: string; cause?: unknown };
  for (let depth = 0; x?.cause && depth < 6; depth++) x = x.cause as typeof x;
  return String(x?.message ?? e).split('\n')[0]!;
}

/** host and port of a TCP multiaddr (/ip4/…/tcp/N, /ip6/…/tcp/N); null for others. */
export function tcpAddr(ma: string): { host: string; port: number } | null {
  const m = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)(\/|$)/.exec(ma);
  return m ? { host: m[2]!, port: Number(m[3]) } : null;
}

/** host and port of a host:port (127.0.0.1:9464, [::1]:9464, localhost:9464). */
export function hostPort(s: string): { host: string; port: number } | null {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) return null;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** Listens on host:port and closes at once: null when it could bind, else why not. */
export function bindTest(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e) => resolve(reasonOf(e)));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(null)));
  });
}

/**
 * Whether the agent can keep its state in `dir`. With `create`, makes it (0700) as start-up
 * does; without, checks the nearest existing ancestor instead (--check creates nothing).
 * Writes and removes a probe file: mode bits say little when running as root, and a
 * read-only mount or a file in the way only shows on a real write.
 */
export function dirProblem(dir: string, create: boolean): string | null {
  let target = dir;
  if (create) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      return `cannot create (${reasonOf(e)})`;
    }
  } else {
    while (!existsSync(target) && dirname(target) !== target) target = dirname(target);
  }
  try {
    if (!statSync(target).isDirectory()) return target === dir ? 'not a directory' : `${target} is not a directory`;
  } catch (e) {
    return reasonOf(e);
  }
  if (target !== dir) {
    try {
      accessSync(target, constants.W_OK);
      return null;
    } catch (e) {
      return `cannot be created in ${target} (${reasonOf(e)})`;
    }
  }
  const probe = join(dir, `.picket-write-test-${process.pid}`);
  try {
    const fd = openSync(probe, 'wx', 0o600);
    try { writeSync(fd, 'x'); } finally { closeSync(fd); }
    unlinkSync(probe);
  } catch (e) {
    return `not writable (${reasonOf(e)})`;
  }
  for (const sub of ['state']) {
    const p = join(dir, sub);
    if (existsSync(p) && !statSync(p).isDirectory()) return `${p} is not a directory (the state store lives there)`;
  }
  return null;
}

/** An executable on PATH, as the backends spawn it. */
export function onPath(tool: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).filter(Boolean).some((d) => {
    try {
      accessSync(join(d, tool), constants.X_OK);
      return statSync(join(d, tool)).isFile();
    } catch {
      return false;
    }
  });
}

export const BACKEND_TOOLS: Record<AgentConfig['enforcement']['backend'], string[]> = {
  nft: ['nft'],
  iptables: ['iptables-restore', 'iptables-save', 'ip6tables-restore', 'ip6tables-save'],
  file: [],
  memory: [],
};

/** The identity key problem, or null. A missing key is fine when the agent may create it. */
export function identityProblem(config: AgentConfig): string | null {
  if (config.identity.generate && !existsSync(config.identityKey)) {
    const p = dirProblem(dirname(config.identityKey), false);
    return p ? `identityKey ${config.identityKey}: cannot be generated: ${dirname(config.identityKey)}: ${p}` : null;
  }
  try {
    loadNodeKey(config.identityKey);
    return null;
  } catch (e) {
    const hint = /no such file/.test((e as Error).message) ? ' (create it with `picket keygen --node`, or set identity.generate: true)' : '';
    return `identityKey: ${(e as Error).message}${hint}`;
  }
}

export function rootProblem(config: AgentConfig): string | null {
  try {
    const r = trustPinnedRoot(loadEnvelope(config.trustedRoot));
    return 'ok' in r ? null : `trustedRoot: ${config.trustedRoot}: ${r.outcome}: ${r.reason}`;
  } catch (e) {
    return `trustedRoot: ${(e as Error).message}`;
  }
}

/**
 * Every problem `agent --check` can find without starting: files readable and well-formed,
 * the root verifying, directories writable, addresses free to bind (bound, then closed at
 * once), backend tools on PATH. All of them, so one run shows everything to fix.
 */
export async function checkConfig(config: AgentConfig, env: { path?: string } = {}): Promise<string[]> {
  const problems: string[] = [];
  const add = (p: string | null) => { if (p) problems.push(p); };
  add(identityProblem(config));
  add(rootProblem(config));
  const d = dirProblem(config.dataDir, false);
  if (d) add(`dataDir ${config.dataDir}: ${d}`);
  const sockDir = dirname(config.control.socket);
  if (sockDir !== config.dataDir) {
    const s = dirProblem(sockDir, false);
    if (s) add(`control.socket ${config.control.socket}: ${s}`);
  }
  if (config.enforcement.backend === 'file') {
    const fdir = dirname(config.enforcement.file);
    const f = fdir === config.dataDir ? null : dirProblem(fdir, false);
    if (f) add(`enforcement.file ${config.enforcement.file}: ${f}`);
  }
  const missing = BACKEND_TOOLS[config.enforcement.backend].filter((t) => !onPath(t, env.path));
  if (missing.length) add(`enforcement.backend ${config.enforcement.backend}: ${missing.join(', ')} not found on PATH`);
  if (config.policyFile && existsSync(config.policyFile)) {
    try {
      const r = parseEnvelopeAny(readInput(config.policyFile, 'policy file'));
      if (!r.ok) add(`policyFile: ${config.policyFile}: ${r.outcome}: ${r.reason}`);
    } catch (e) {
      add(`policyFile: ${(e as Error).message}`);
    }
  }
  for (const a of config.alerts) {
    if (a.type === 'pagerduty' && a.routingKeyFile) {
      try { readInput(a.routingKeyFile, 'routing key file', 4096); } catch (e) { add(`alerts: pagerduty routingKeyFile: ${(e as Error).message}`); }
    }
  }
  for (const b of config.bootstrap) if (!/\/p2p\/[1-9A-HJ-NP-Za-km-z]+$/.test(b)) add(`bootstrap ${b}: no /p2p/<PeerId> at the end (the agent would ignore it)`);
  const binds: Promise<void>[] = [];
  for (const l of config.listen) {
    const t = tcpAddr(l);
    if (t && t.port !== 0) binds.push(bindTest(t.host, t.port).then((why) => add(why ? `listen ${l}: ${why}` : null)));
  }
  if (config.control.metrics) {
    const hp = hostPort(config.control.metrics);
    if (hp) binds.push(bindTest(hp.host, hp.port).then((why) => add(why ? `control.metrics ${config.control.metrics}: ${why}` : null)));
  }
  await Promise.all(binds);
  return problems;
}
