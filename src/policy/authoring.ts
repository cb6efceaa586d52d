/**
 * The YAML authoring format ↔ the policy model. Schema-validated (zod) and then
 * semantically checked; every problem names the field and the line it came from.
 */
import { parseDuration } from '../runtime/duration.js';
import { isMap, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { parseInstant } from '../runtime/clock.js';
import { checkPolicy, formatPath, type Issue, type Path, type Policy, type PortRange, type Rule } from './model.js';

const instant = z.union([z.string(), z.date()]).transform((v, ctx) => {
  const ms = v instanceof Date ? v.getTime() : parseInstant(v);
  if (ms === undefined || !Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a date (use 2027-01-31 or 2027-01-31T00:00:00Z)` });
    return z.NEVER;
  }
  return ms;
});

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
});

const selectors = z.union([z.string(), z.array(z.string()).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));
const name = z.string().min(1);

const ruleShape = {
  name,
  to: selectors,
  from: selectors,
  proto: z.enum(['tcp', 'udp', 'icmp'], { error: (i) => `${JSON.stringify(i.input)} is not tcp, udp or icmp` }),
  ports: z.array(port).optional().default([]),
};

export const PolicyAuthoringSchema = z.strictObject({
  meshId: z.string().min(1).describe('Mesh this policy is for; agents of other meshes reject it.'),
  version: z.number().int().positive().describe('Strictly increasing: nodes never accept a lower or equal version with other content.'),
  issuedAt: instant.optional().describe('Defaults to the signing time. Every time in a policy lies in years 2000–9999.'),
  expires: instant.describe('After this the policy is expired: nodes keep enforcing it (or fall back to the baseline) and alert. Years 2000–9999.'),
  nodes: z.array(z.strictObject({
    name,
    peerId: z.string().min(1),
    addresses: z.array(z.string()).default([]),
    roles: z.array(z.string()).default([]),
  })).default([]),
  rules: z.array(z.strictObject(ruleShape)).default([]),
  exceptions: z.array(z.strictObject({
    ...ruleShape,
    reason: z.string({ error: 'an exception must carry a reason' }).min(1, 'an exception must carry a reason'),
    expires: instant.optional(),
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
  }).default({ onExpiry: 'keep', maxAge: undefined }),
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
  | { ok: true; policy: Policy; warnings: Located[] }
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
  const parsed = PolicyAuthoringSchema.safeParse(doc.toJS({ maxAliasCount: 100 }));
  const locate = (i: Issue): Located => ({ line: lineOf(doc, lc, i.path), path: formatPath(i.path), message: i.message });
  if (!parsed.success) {
    return {
      ok: false,
      errors: parsed.error.issues.map((i) => locate({ path: i.path as Path, message: issueMessage(i) })),
    };
  }
  const d = parsed.data;
  const exceptionsWithoutExpiry = d.exceptions.flatMap((e, i) => (e.expires === undefined ? [i] : []));
  if (exceptionsWithoutExpiry.length) {
    return { ok: false, errors: exceptionsWithoutExpiry.map((i) => locate({ path: ['exceptions', i], message: 'an exception must carry expires: a temporary hole closes by itself' })) };
  }
  const toRule = (r: (typeof d.rules)[number]): Rule => ({ name: r.name, to: r.to, from: r.from, proto: r.proto, ports: r.ports });
  const policy: Policy = {
    meshId: d.meshId,
    version: d.version,
    issuedAt: d.issuedAt ?? now,
    expires: d.expires,
    nodes: d.nodes,
    rules: d.rules.map(toRule),
    exceptions: d.exceptions.map((e) => ({ ...toRule(e), reason: e.reason, expires: e.expires ?? 0 })),
    settings: { onExpiry: d.settings.onExpiry, ...(d.settings.maxAge !== undefined ? { maxAge: d.settings.maxAge } : {}) },
  };
  const { errors, warnings } = checkPolicy(policy, { warnings: true });
  if (errors.length) return { ok: false, errors: errors.map(locate) };
  return { ok: true, policy, warnings: warnings.map(locate) };
}

function issueMessage(i: z.core.$ZodIssue): string {
  if (i.code === 'unrecognized_keys') return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')}`;
  if (i.code === 'invalid_type' && i.input === undefined) {
    return i.path[0] === 'exceptions' && i.path.at(-1) === 'reason' ? 'an exception must carry a reason' : 'is required';
  }
  if (i.code === 'invalid_type') return `expected ${i.expected}, got ${i.input === null ? 'null' : Array.isArray(i.input) ? 'a list' : typeof i.input}`;
  return i.message;
}

/** The authoring form of a policy, for `policy show` and round trips. */
export function policyToAuthoring(p: Policy): Record<string, unknown> {
  const ports = (r: Rule) => r.ports.map((pr) => (pr.first === pr.last ? pr.first : `${pr.first}-${pr.last}`));
  const sel = (s: string[]) => (s.length === 1 ? s[0] : s);
  const rule = (r: Rule) => ({ name: r.name, to: sel(r.to), from: sel(r.from), proto: r.proto, ...(r.proto === 'icmp' ? {} : { ports: ports(r) }) });
  return {
    meshId: p.meshId,
    version: p.version,
    issuedAt: new Date(p.issuedAt).toISOString(),
    expires: new Date(p.expires).toISOString(),
    nodes: p.nodes,
    rules: p.rules.map(rule),
    exceptions: p.exceptions.map((e) => ({ ...rule(e), reason: e.reason, expires: new Date(e.expires).toISOString() })),
    settings: { onExpiry: p.settings.onExpiry, ...(p.settings.maxAge ? { maxAge: exactDuration(p.settings.maxAge) } : {}) },
  };
}

/** The largest unit that states `ms` exactly (14d, 36h, 90m, 1500ms): round trips through parseDuration. */
function exactDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

