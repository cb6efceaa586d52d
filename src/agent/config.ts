/**
 * The agent's configuration: one typed, validated, frozen object. Every field says its
 * default and what it trades off. Relative paths are resolved against the config file.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { parseDuration } from '../runtime/duration.js';
import { isValidMeshId } from '../policy/model.js';
import { parsePrefix } from '../policy/ip.js';
import { formatLocated, typeError, type Located } from '../policy/authoring.js';
import { LIMITS } from '../wire/limits.js';
import { defaultSocket } from './defaults.js';

const duration = (def: string) =>
  z.union([z.string(), z.number()]).default(def).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v : parseDuration(v);
    if (ms === undefined || ms < 0) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration (500ms, 2s, 5m, 1h)` });
      return z.NEVER;
    }
    return ms;
  });

const cidr = z.string().refine((s) => parsePrefix(s).ok, { message: 'is not an address or CIDR without host bits' });

const loopbackHostPort = z.string().superRefine((v, ctx) => {
  const m = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a loopback host:port (metrics are never exposed beyond loopback)` });
});

const multiaddr = z.string().regex(/^\/(ip4|ip6|dns|dns4|dns6|memory)\//, 'is not a multiaddr (/ip4/10.0.0.5/tcp/7946/p2p/12D3KooW…)');

const alertSink = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('log') }),
  z.strictObject({ type: z.literal('webhook'), url: z.url(), headers: z.record(z.string(), z.string()).default({}) }),
  z.strictObject({
    type: z.literal('pagerduty'),
    url: z.url().default('https://events.pagerduty.com/v2/enqueue'),
    routingKey: z.string().optional(),
    routingKeyFile: z.string().optional(),
  }),
]);

export const AgentConfigSchema = z.strictObject({
  meshId: z.string().refine(isValidMeshId, 'is not a valid mesh id').describe('The mesh this agent belongs to; policies for other meshes are rejected.'),
  dataDir: z.string().describe('LevelDB state: roots, policies, peer cache, applied state. Must survive reboots.'),
  identityKey: z.string().optional().describe('Node identity from `picket keygen --node`; its PeerId must be listed in the policy. Default: <dataDir>/node.key.'),
  identity: z.strictObject({
    generate: z.boolean().default(false).describe('Create identityKey (0600) on first start when it does not exist, and log its PeerId for enrolment. Off: a missing key is a start-up failure (pre-provisioned fleets).'),
  }).prefault({}),
  trustedRoot: z.string().describe('The pinned root of trust (root.json), provisioned out of band.'),
  listen: z.array(multiaddr).default(['/ip4/0.0.0.0/tcp/7946']).describe('Mesh listen addresses. The TCP ports are opened to mesh peers only.'),
  bootstrap: z.array(multiaddr).default([]).describe('Peers dialled at start (with /p2p/<PeerId>). Their addresses may reach the mesh port before any policy exists.'),
  policyFile: z.string().optional().describe('A signed policy (JSON as `policy sign` writes it, or protobuf) that config management drops in place; watched and offered like a gossiped one. A file that cannot be used raises policy-file-rejected and changes nothing.'),
  syncInterval: duration('30s').describe('Anti-entropy with a random peer. Shorter heals faster after partitions; longer sends less. A node that holds no policy yet runs its exchange every 4–6 s when this is longer.'),
  mesh: z.strictObject({
    minPeers: z.number().int().min(1).max(100).default(6).describe('Connections the agent keeps dialling towards. More: faster spread and more resilience; fewer: less traffic.'),
    redialMin: duration('500ms').describe('First backoff after a failed dial.'),
    redialMax: duration('30s').describe('Largest backoff between dials of one peer: bounds how long a healed partition stays apart.'),
    penaltyThreshold: z.number().int().min(1).default(5).describe('Rejected messages from one peer before it is disconnected and banned for a while.'),
    banFor: duration('10m').describe('How long a penalised peer is refused.'),
    peerAddressCidrs: z.array(cidr).max(64).default([]).describe('Where peer exchange and identify may place a listed node besides its policy addresses (e.g. the fleet subnets, for nodes whose mesh address is not in the policy). Empty: only the policy addresses. Anything outside is never dialled: no peer can point this node at arbitrary hosts.'),
    allowFrom: z.array(cidr).optional().describe("Sources that may reach the mesh port while this node holds no policy (the baseline). Default: the bootstrap peers' addresses and the subnets of this host's interfaces (not loopback or link-local), read at start and on reload. Once a policy is held, its nodes' addresses replace this list."),
    announceAbove: z.number().int().min(0).max(LIMITS.maxEnvelopeBytes).nullable().default(16 * 1024).describe('Policy envelopes larger than this (bytes) are announced and pulled once per node through sync instead of pushed whole to every gossip peer; null always pushes.'),
  }).prefault({}),
  enforcement: z.strictObject({
    backend: z.enum(['nft', 'iptables', 'file', 'memory']).default('nft').describe('nft (default), iptables (hosts without nft), file (writes the ruleset; unprivileged runs), memory (tests).'),
    file: z.string().optional().describe('file backend: where the rendered ruleset is written (default: <dataDir>/ruleset.nft).'),
    failsafe: z.strictObject({
      sshFrom: z.array(cidr).default([]).describe('Sources that always reach SSH, whatever the policy says: the lock-out guard.'),
      sshPort: z.number().int().min(1).max(65535).default(22),
    }).prefault({}),
    driftInterval: duration('30s').describe('How often the kernel ruleset is read back and compared.'),
    confirmWindow: duration('60s').describe('After an apply that narrowed mesh access, losing every peer within this window restores the previous mesh allowances.'),
    lockoutGrace: duration('30s').describe('After losing every peer inside the confirm window, how long the lock-out guard waits for a peer to come back before restoring mesh allowances (a restarting peer is not a lock-out). 0 acts at once.'),
    logDrops: z.strictObject({
      rate: z.string().regex(/^[1-9]\d{0,5}\/(second|minute|hour|day)$/, 'must be N/second, N/minute, N/hour or N/day (N from 1 to 999999)').default('10/second').describe('Kernel log lines per second (minute, hour, day) at most, for drops and for would-drops alike.'),
    }).nullable().default(null).describe('Kernel log lines (prefix "picket-drop ") for default-deny drops, rate-limited; null (default): drops are counted, not logged. Would-drops of monitor mode are always logged (prefix "picket-would-drop "), at this rate or 10/second.'),
  }).prefault({}),
  audit: z.strictObject({
    interval: duration('60s').describe('Listening-socket self-audit period.'),
    statusInterval: duration('30s').describe('Status period: a fresh signed claim (liveness) to direct neighbours; with statusPlane full, the full signed status flooded to every node (also sent on every change).'),
    statusPlane: z.enum(['digest', 'full']).default('digest').describe('How status changes travel. digest: compact signed claims to direct neighbours, merged and verified only when used, and a fleet-wide change as one tally bit per node (a change costs a node no signature check and O(N/8) bytes; a verified read asks for the claims behind the bits); the full signed status goes out every 4th statusInterval. full: every node floods its full signed status on every change and verifies everyone else\'s (N checks per node per change; for comparison). Restart to change.'),
    silentAfter: duration('2m').describe('A node not heard from for this long is shown as silent (and alerted).'),
    probeInterval: duration('5m').describe('Peer probes: how often a few peers are checked from outside; 0 disables.'),
    probePeers: z.number().int().min(0).max(32).default(3).describe('Peers probed per round (small: probes are traffic).'),
    probePorts: z.number().int().min(0).max(32).default(4).describe('Policy-closed ports probed per peer and round.'),
    probeTimeout: duration('500ms').describe('Connect timeout per probe.'),
    expiryWarning: duration('7d').describe('Alert this long before the policy expires.'),
    rootExpiryWarning: duration('7d').describe('Warn (root-expiring) this long before the trusted root expires; once it has expired no new policy is accepted (root-expired, critical).'),
    lagAfter: duration('5m').describe('A node whose peers report a newer policy version (signed statuses) than the one it enforces for this long raises node-lagging. Shorter: earlier warning of a stuck node; too short: alerts during normal propagation.'),
  }).prefault({}),
  control: z.strictObject({
    socket: z.string().optional().describe('Operator API (HTTP over a Unix socket, mode 0600). Default: <dataDir>/control.sock. The picket command finds it by reading this same file (--config, $PICKET_CONFIG, /etc/picket/agent.yaml).'),
    metrics: loopbackHostPort.nullable().default(null).describe('Prometheus metrics on a loopback host:port, e.g. 127.0.0.1:9464; null disables.'),
  }).prefault({}),
  alerts: z.array(alertSink).default([{ type: 'log' }]).describe('Alert sinks: log, webhook, pagerduty (Events API v2).'),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    pretty: z.boolean().optional().describe('Human-readable logs; default: when stdout is a TTY.'),
  }).prefault({}),
});

type Parsed = z.infer<typeof AgentConfigSchema>;
export type AgentConfig = Readonly<Omit<Parsed, 'enforcement' | 'control' | 'identityKey'> & {
  identityKey: string;
  enforcement: Parsed['enforcement'] & { file: string };
  control: Parsed['control'] & { socket: string };
  configPath?: string;
}>;

function locate(doc: ReturnType<typeof parseDocument>, lc: LineCounter, path: PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as (string | number)[], true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return lc.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Validates a parsed config object; paths resolve against `baseDir`. */
export function buildConfig(raw: unknown, baseDir: string, configPath?: string, lineOf?: (path: PropertyKey[]) => number | undefined): AgentConfig {
  const parsed = AgentConfigSchema.safeParse(raw, { error: typeError });
  if (!parsed.success) {
    const errors: Located[] = parsed.error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k]) : [i.path]).map((at) => ({
      line: lineOf?.(at),
      path: i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, ''),
      message: i.code === 'unrecognized_keys' ? `unknown field ${String(at.at(-1))}` : i.message,
    })));
    throw new InputError(errors.map((e) => formatLocated(configPath ?? 'config', e)).join('\n'));
  }
  const c = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const dataDir = abs(c.dataDir);
  const cfg: AgentConfig = {
    ...c,
    dataDir,
    identityKey: abs(c.identityKey ?? resolve(dataDir, 'node.key')),
    trustedRoot: abs(c.trustedRoot),
    ...(c.policyFile ? { policyFile: abs(c.policyFile) } : {}),
    enforcement: { ...c.enforcement, file: abs(c.enforcement.file ?? resolve(dataDir, 'ruleset.nft')) },
    control: { ...c.control, socket: c.control.socket ? abs(c.control.socket) : defaultSocket(dataDir) },
    alerts: c.alerts.map((a) => (a.type === 'pagerduty' && a.routingKeyFile ? { ...a, routingKeyFile: abs(a.routingKeyFile) } : a)),
    ...(configPath ? { configPath } : {}),
  };
  for (const a of cfg.alerts) {
    if (a.type === 'pagerduty' && !a.routingKey && !a.routingKeyFile) throw new InputError(`${configPath ?? 'config'}: alerts: pagerduty needs routingKey or routingKeyFile`);
  }
  return deepFreeze(cfg);
}

/** Reads and validates an agent config file: one clear InputError line on any problem. */
export function loadConfigFile(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`${path}: cannot read config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, configPath: string): AgentConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new InputError(`${configPath}:${lc.linePos(e.pos[0]).line}: YAML syntax error: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(`${configPath}: the agent config is a YAML mapping (meshId, dataDir, identityKey, trustedRoot, …)`);
  return buildConfig(raw, dirname(resolve(configPath)), configPath, (path) => locate(doc, lc, path));
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Fields SIGHUP cannot change: identity, trust anchor, state location and what is bound at
 * start. A reload keeps their running values and says which ones differ. Everything else
 * takes effect on reload (see Agent.reload and docs/operations.md).
 */
export const RESTART_FIELDS = [
  'meshId', 'dataDir', 'identityKey', 'identity.generate', 'trustedRoot', 'listen',
  'control.socket', 'control.metrics', 'log.pretty', 'mesh.peerAddressCidrs', 'audit.statusPlane',
] as const;

/**
 * Fields SIGHUP applies (Agent.reload). Every field of the schema is in exactly one of the
 * two lists (a test checks it), so a new field cannot silently be "reloaded" without wiring.
 */
export const RELOAD_FIELDS = [
  'bootstrap', 'policyFile', 'syncInterval', 'alerts',
  'mesh.minPeers', 'mesh.redialMin', 'mesh.redialMax', 'mesh.penaltyThreshold', 'mesh.banFor', 'mesh.allowFrom', 'mesh.announceAbove',
  'enforcement.backend', 'enforcement.file', 'enforcement.failsafe', 'enforcement.driftInterval', 'enforcement.confirmWindow', 'enforcement.lockoutGrace', 'enforcement.logDrops',
  'audit.interval', 'audit.statusInterval', 'audit.silentAfter', 'audit.probeInterval', 'audit.probePeers', 'audit.probePorts', 'audit.probeTimeout',
  'audit.expiryWarning', 'audit.rootExpiryWarning', 'audit.lagAfter',
  'log.level',
] as const;

const GROUPS = ['identity', 'mesh', 'enforcement', 'audit', 'control', 'log'] as const;

/** Top-level fields and the fields of each settings group that differ between two configs. */
export function changedFields(a: AgentConfig, b: AgentConfig): string[] {
  const out: string[] = [];
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((k) => k !== 'configPath'));
  for (const k of [...keys].sort()) {
    const x = (a as Record<string, unknown>)[k], y = (b as Record<string, unknown>)[k];
    if ((GROUPS as readonly string[]).includes(k)) {
      const xs = (x ?? {}) as Record<string, unknown>, ys = (y ?? {}) as Record<string, unknown>;
      for (const f of [...new Set([...Object.keys(xs), ...Object.keys(ys)])].sort()) if (!same(xs[f], ys[f])) out.push(`${k}.${f}`);
    } else if (!same(x, y)) {
      out.push(k);
    }
  }
  return out;
}

/** `next` with the restart-only fields of `running` kept: what a reload actually runs with. */
export function reloadable(running: AgentConfig, next: AgentConfig): AgentConfig {
  const merged = structuredClone(next) as unknown as Record<string, Record<string, unknown>>;
  const from = running as unknown as Record<string, Record<string, unknown>>;
  for (const f of RESTART_FIELDS) {
    const [k, sub] = f.split('.') as [string, string | undefined];
    if (sub) merged[k] = { ...merged[k], [sub]: from[k]?.[sub] };
    else merged[k] = from[k]!;
    if (sub && from[k]?.[sub] === undefined) delete merged[k]![sub];
  }
  return deepFreeze(merged as unknown as AgentConfig);
}
