/**
 * The YAML authoring format ↔ the policy model. Schema-validated (zod) and then
 * semantically checked; every problem names the field and the line it came from.
 */
import { parseDuration } from '../runtime/duration.js';
import { isMap, isScalar, LineCounter, parseDocument, stringify, type Document, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { INSTANT_PATTERN, parseInstant } from '../runtime/clock.js';
import { checkPolicy, formatPath, PATTERNS, type Issue, type Path, type Policy, type PortRange, type Rule } from './model.js';
import { PolicyTestsSchema, type PolicyTest } from './tests.js';

const PORT_TEXT = '^\\s*\\d{1,5}(-\\d{1,5})?\\s*$';

/** A value as an error message shows it: `the string "2"`, `2.5`, `a list`. */
function shown(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (v instanceof Date) return `the date ${v.toISOString()}`;
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

const KINDS: Record<string, string> = { number: 'a number', int: 'an integer', string: 'a string', array: 'a list', object: 'a mapping', boolean: 'true or false' };

/**
 * Per-parse error map: a missing field "is required", a present one of the wrong type "must
 * be an integer, got the string "2"" (zod's own issues carry no input, so both looked missing).
 */
export function typeError(iss: z.core.$ZodRawIssue): string | undefined {
  if (iss.code !== 'invalid_type') return undefined;
  if (iss.input === undefined) return 'is required';
  const expected = (iss.inst as { isInt?: boolean } | undefined)?.isInt ? 'int' : String(iss.expected);
  return `must be ${KINDS[expected] ?? expected}, got ${shown(iss.input)}`;
}

const DATE_HELP = 'Written as a date (2027-01-31, midnight UTC) or a date and time (2027-01-31T00:00:00Z; without a zone it is UTC, never the host local time)';

const instant = z.unknown().transform((v, ctx) => {
  const ms = v instanceof Date ? v.getTime() : typeof v === 'string' ? parseInstant(v) : undefined;
  if (ms === undefined || !Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: `${typeof v === 'string' ? JSON.stringify(v) : shown(v)} is not a date (use 2027-01-31 or 2027-01-31T00:00:00Z)` });
    return z.NEVER;
  }
  return ms;
}).meta({ type: 'string', pattern: INSTANT_PATTERN.source.replace('^\\d{4}', '^[2-9]\\d{3}'), examples: ['2027-01-31', '2027-01-31T00:00:00Z'] }); // years 2000-9999, as checkPolicy

const port = z.unknown().transform((v, ctx): PortRange => {
  const bad = () => {
    ctx.addIssue({ code: 'custom', message: `${typeof v === 'string' ? v : JSON.stringify(v)} is not a port` });
    return z.NEVER;
  };
  const isPort = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (typeof v === 'number') return isPort(v) ? { first: v, last: v } : bad();
  if (typeof v === 'string') {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(v.trim());
    if (!m) return bad();
    const first = Number(m[1]), last = Number(m[2] ?? m[1]);
    if (!isPort(first) || !isPort(last)) return bad();
    if (first > last) {
      ctx.addIssue({ code: 'custom', message: `${v} is an empty range` });
      return z.NEVER;
    }
    return { first, last };
  }
  return bad();
}).meta({
  description: 'a port 1-65535, or a "first-last" range',
  oneOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { type: 'string', pattern: PORT_TEXT }],
});

// JSON Schema patterns for what checkPolicy enforces (the validator stays the authority: it
// also checks host bits, references to roles and nodes, duplicates).
const NAME_RE = PATTERNS.name.replace(/^\^|\$$/g, '');
const PEER_RE = PATTERNS.peerId.replace(/^\^|\$$/g, '');
const V4_OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const V4 = `${V4_OCTET}(\\.${V4_OCTET}){3}`;
const CIDR = `(${V4}(/(3[0-2]|[12]?\\d))?|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(/(12[0-8]|1[01]\\d|[1-9]?\\d))?)`;
// cidr:X is allowed on the side naming the other end: `from` of an ingress rule, `to` of an
// egress rule (checkPolicy refuses it on the other side, with the line).
const SELECTOR_PATTERN = `^(any|role:${NAME_RE}|node:(${NAME_RE}|${PEER_RE})|cidr:${CIDR})$`;

const selectors = (pattern: string, help: string) => {
  const one = z.string().meta({ pattern });
  return z.union([one, z.array(one).min(1)]).transform((v) => (Array.isArray(v) ? v : [v])).describe(help);
};
const name = z.string().min(1).meta({ pattern: PATTERNS.name });

const ruleShape = {
  name,
  to: selectors(SELECTOR_PATTERN, 'Ingress: the nodes the rule applies to (any, role:NAME, node:NAME|PEERID). Egress: the destinations (also cidr:PREFIX). One or a list.'),
  from: selectors(SELECTOR_PATTERN, 'Ingress: the sources (any, role:NAME, node:NAME|PEERID or cidr:PREFIX). Egress: the sending nodes the rule applies to (any, role:NAME, node:NAME|PEERID). One or a list.'),
  proto: z.enum(['tcp', 'udp', 'icmp'], { error: (i) => `${JSON.stringify(i.input)} is not tcp, udp or icmp` }),
  ports: z.array(port).optional().default([]),
  direction: z.enum(['ingress', 'egress'], { error: (i) => `${JSON.stringify(i.input)} is not ingress or egress` }).default('ingress')
    .describe('ingress (default): connections this node accepts. egress: connections this node opens; they are filtered only under settings.egress: deny.'),
};

const positiveDuration = (help: string) => z.string().optional().transform((v, ctx) => {
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) { ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration (30s, 10m, 12h, 2d)` }); return z.NEVER; }
  if (ms <= 0) { ctx.addIssue({ code: 'custom', message: 'must be a positive duration' }); return z.NEVER; }
  return ms;
}).describe(help);

const percent = z.unknown().optional().transform((v, ctx) => {
  if (v === undefined) return undefined;
  const m = typeof v === 'string' ? /^\s*(\d{1,3})\s*%\s*$/.exec(v) : null;
  if (!m) { ctx.addIssue({ code: 'custom', message: `${typeof v === 'string' ? JSON.stringify(v) : shown(v)} is not a percentage (write it as 100%)` }); return z.NEVER; }
  return Number(m[1]);
}).meta({ type: 'string', pattern: '^\\s*\\d{1,3}\\s*%\\s*$', examples: ['100%', '90%'] });

const SELECT_PATTERN = `^(any|role:${NAME_RE}|node:(${NAME_RE}|${PEER_RE}))$`;

export const PolicyAuthoringSchema = z.strictObject({
  meshId: z.string().min(1).meta({ pattern: PATTERNS.meshId }).describe('Mesh this policy is for; agents of other meshes reject it.'),
  version: z.int().positive().describe('Strictly increasing: nodes never accept a lower or equal version with other content.'),
  issuedAt: instant.optional().describe(`Defaults to the signing time. Every time in a policy lies in years 2000–9999. ${DATE_HELP}.`),
  expires: instant.describe(`After this the policy is expired: nodes keep enforcing it (or fall back to the baseline) and alert. Years 2000–9999. ${DATE_HELP}.`),
  nodes: z.array(z.strictObject({
    name,
    peerId: z.string().min(1).meta({ pattern: PATTERNS.peerId }),
    addresses: z.array(z.string().meta({ anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] })).default([]),
    roles: z.array(z.string().meta({ pattern: PATTERNS.name })).default([]),
  })).default([]),
  rules: z.array(z.strictObject({
    ...ruleShape,
    mode: z.enum(['enforce', 'monitor']).default('enforce').describe('monitor: the rule is on trial for removal or narrowing; what only it admits is accepted but counted and logged as would-drop (docs/operations.md, "Roll out in monitor mode").'),
  })).default([]),
  exceptions: z.array(z.strictObject({
    ...ruleShape,
    reason: z.string({ error: 'an exception must carry a reason' }).min(1, 'an exception must carry a reason'),
    expires: instant.optional().describe(`When the hole closes by itself (required). ${DATE_HELP}.`),
  })).default([]),
  settings: z.strictObject({
    onExpiry: z.enum(['keep', 'baseline']).default('keep').describe('keep: enforce the expired (or stale) policy (never fail open); baseline: fall back to the baseline'),
    maxAge: z.string().optional().transform((v, ctx) => {
      if (v === undefined) return undefined;
      const ms = parseDuration(v);
      if (ms === undefined) { ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration (12h, 14d)` }); return z.NEVER; }
      if (ms <= 0) { ctx.addIssue({ code: 'custom', message: 'must be a positive duration' }); return z.NEVER; }
      return ms;
    }).describe('Optional. A policy older than issuedAt + maxAge is stale: nodes alert (policy-stale) and apply onExpiry. Bounds how long an unrefreshed policy runs, independently of expires.'),
    egress: z.enum(['allow', 'deny'], { error: (i) => `${JSON.stringify(i.input)} is not allow or deny` }).default('allow')
      .describe('allow (default): outbound traffic is not filtered. deny: a node opens only connections an egress rule allows; replies, loopback, the mesh port to mesh peers and failsafe SSH replies always pass.'),
    forward: z.enum(['filter', 'ignore'], { error: (i) => `${JSON.stringify(i.input)} is not filter or ignore` }).default('ignore')
      .describe('ignore (default): forwarded traffic is not touched. filter: connections DNAT-ed to containers (Docker/Podman published ports) must be allowed by an ingress rule for the published (host) port; other forwarded traffic is untouched.'),
    mode: z.enum(['enforce', 'monitor']).default('enforce').describe('monitor: default-deny drops are counted and logged as would-drop, and accepted (roll a new policy out on trial). Removed nodes and invalid packets are still dropped.'),
  }).default({ onExpiry: 'keep', maxAge: undefined, egress: 'allow', forward: 'ignore', mode: 'enforce' }),
  tests: PolicyTestsSchema,
  rollout: z.strictObject({
    stages: z.array(z.strictObject({
      select: z.string().meta({ pattern: SELECT_PATTERN }).describe('Which nodes: any, role:NAME or node:NAME|PEERID. A node belongs to the first stage that selects it; a node no stage selects follows the last stage.'),
      after: positiveDuration('Not on the first stage. How long after a node first saw this version it may enforce it (30s, 10m, 12h, 2d; at most 30d; never shorter than an earlier stage\'s). Default: no delay, health alone decides.'),
      healthy: percent.describe('Not on the first stage. Which share of the earlier stages\' nodes (1%-100%, default 100%) must show, in their signed statuses, that they enforce this version healthily: no failed apply, no lock-out revert, no new unexpected-listener or exposed-port alert.'),
    })).describe('At most 8 stages, at least 2. The first enforces at once; a node of a later stage keeps enforcing its previous version until its after has passed and the earlier stages are healthy. A failure in an earlier stage halts the rollout on every node; the next version supersedes it.'),
  }).optional().describe('Optional. A staged rollout of this version. Every node still accepts, stores and forwards the version at once; only what it enforces waits. Removed nodes are blocked at once whatever the stage (a rollout never delays a revocation).'),
});

export interface Located {
  line?: number;
  path: string;
  message: string;
}

export function formatLocated(file: string, l: Located): string {
  return `${file}${l.line ? `:${l.line}` : ''}: ${l.path ? `${l.path}: ` : ''}${l.message}`;
}

export type AuthoringResult =
  | {
    ok: true; policy: Policy; warnings: Located[];
    /** The `tests:` block: authoring-only, never part of the signed policy (src/policy/tests.ts). */
    tests: PolicyTest[];
    /** Puts a problem found later (tests, budgets) on its YAML line. */
    locate: (i: Issue) => Located;
  }
  | { ok: false; errors: Located[] };

function lineOf(doc: Document, lc: LineCounter, path: Path): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as YamlNode | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) return lc.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Parses and validates a policy YAML document; `now` fills issuedAt when absent. */
export function parsePolicyYaml(text: string, now: number): AuthoringResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.slice(0, 5).map((e) => ({ line: lc.linePos(e.pos[0]).line, path: '', message: `YAML syntax error: ${e.message.split('\n')[0]}` })),
    };
  }
  const root = doc.contents;
  if (!isMap(root)) return { ok: false, errors: [{ line: 1, path: '', message: 'a policy is a YAML mapping (meshId, version, expires, nodes, rules…)' }] };
  const parsed = PolicyAuthoringSchema.safeParse(doc.toJS({ maxAliasCount: 100 }), { error: typeError });
  const locate = (i: Issue): Located => ({ line: lineOf(doc, lc, i.path), path: formatPath(i.path), message: i.message });
  if (!parsed.success) {
    return {
      ok: false,
      errors: parsed.error.issues.flatMap((i) => (i.code === 'unrecognized_keys'
        ? unknownKeys(doc, lc, i.path as Path, i.keys)
        : [locate({ path: i.path as Path, message: issueMessage(i) })])),
    };
  }
  const d = parsed.data;
  const exceptionsWithoutExpiry = d.exceptions.flatMap((e, i) => (e.expires === undefined ? [i] : []));
  if (exceptionsWithoutExpiry.length) {
    return { ok: false, errors: exceptionsWithoutExpiry.map((i) => locate({ path: ['exceptions', i], message: 'an exception must carry expires: a temporary hole closes by itself' })) };
  }
  const toRule = (r: Pick<(typeof d.rules)[number], 'name' | 'to' | 'from' | 'proto' | 'ports' | 'direction'>): Rule => ({ name: r.name, to: r.to, from: r.from, proto: r.proto, ports: r.ports, ...(r.direction === 'egress' ? { direction: 'egress' as const } : {}) });
  const policy: Policy = {
    meshId: d.meshId,
    version: d.version,
    issuedAt: d.issuedAt ?? now,
    expires: d.expires,
    nodes: d.nodes,
    rules: d.rules.map((r) => ({ ...toRule(r), ...(r.mode === 'monitor' ? { mode: 'monitor' as const } : {}) })),
    exceptions: d.exceptions.map((e) => ({ ...toRule(e), reason: e.reason, expires: e.expires ?? 0 })),
    settings: {
      onExpiry: d.settings.onExpiry,
      ...(d.settings.maxAge !== undefined ? { maxAge: d.settings.maxAge } : {}),
      ...(d.settings.egress === 'deny' ? { egress: 'deny' as const } : {}),
      ...(d.settings.forward === 'filter' ? { forward: 'filter' as const } : {}),
      ...(d.settings.mode === 'monitor' ? { mode: 'monitor' as const } : {}),
    },
    ...(d.rollout ? { rollout: { stages: d.rollout.stages.map((st) => ({ select: st.select, ...(st.after !== undefined ? { after: st.after } : {}), ...(st.healthy !== undefined ? { healthy: st.healthy } : {}) })) } } : {}),
  };
  const { errors, warnings } = checkPolicy(policy, { warnings: true });
  if (errors.length) return { ok: false, errors: errors.map(locate) };
  return { ok: true, policy, warnings: warnings.map(locate), tests: d.tests, locate };
}

function issueMessage(i: z.core.$ZodIssue): string {
  if (i.code === 'invalid_type' && i.message === 'is required' && i.path[0] === 'exceptions' && i.path.at(-1) === 'reason') return 'an exception must carry a reason';
  return i.message;
}

/**
 * One error per unknown key, on the key's own line (not the line of the mapping holding it):
 * a typo such as `rule:` for `rules:` is found where it was typed.
 */
export function unknownKeys(doc: Document, lc: LineCounter, path: Path, keys: string[]): Located[] {
  const map = path.length ? doc.getIn(path, true) : doc.contents;
  return keys.map((key) => {
    const pair = isMap(map) ? map.items.find((p) => isScalar(p.key) && String(p.key.value) === key) : undefined;
    const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
    return { line: range ? lc.linePos(range[0]).line : lineOf(doc, lc, path), path: formatPath(path), message: `unknown field ${key}` };
  });
}

/** A policy as the YAML an admin writes (`policy show`). */
export function authoringText(p: Policy): string {
  return stringify(policyToAuthoring(p), { lineWidth: 0 });
}

/** The authoring form of a policy, for `policy show` and round trips. */
export function policyToAuthoring(p: Policy): Record<string, unknown> {
  const ports = (r: Rule) => r.ports.map((pr) => (pr.first === pr.last ? pr.first : `${pr.first}-${pr.last}`));
  const sel = (s: string[]) => (s.length === 1 ? s[0] : s);
  const rule = (r: Rule) => ({ name: r.name, ...(r.direction ? { direction: r.direction } : {}), to: sel(r.to), from: sel(r.from), proto: r.proto, ...(r.proto === 'icmp' ? {} : { ports: ports(r) }), ...(r.mode ? { mode: r.mode } : {}) });
  return {
    meshId: p.meshId,
    version: p.version,
    issuedAt: new Date(p.issuedAt).toISOString(),
    expires: new Date(p.expires).toISOString(),
    nodes: p.nodes,
    rules: p.rules.map(rule),
    exceptions: p.exceptions.map((e) => ({ ...rule(e), reason: e.reason, expires: new Date(e.expires).toISOString() })),
    settings: {
      onExpiry: p.settings.onExpiry,
      ...(p.settings.maxAge ? { maxAge: exactDuration(p.settings.maxAge) } : {}),
      ...(p.settings.egress ? { egress: p.settings.egress } : {}),
      ...(p.settings.forward ? { forward: p.settings.forward } : {}),
      ...(p.settings.mode ? { mode: p.settings.mode } : {}),
    },
    ...(p.rollout ? { rollout: { stages: p.rollout.stages.map((s) => ({ select: s.select, ...(s.after ? { after: exactDuration(s.after) } : {}), ...(s.healthy ? { healthy: `${s.healthy}%` } : {}) })) } } : {}),
  };
}

/** The largest unit that states `ms` exactly (14d, 36h, 90m, 1500ms): round trips through parseDuration. */
function exactDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

