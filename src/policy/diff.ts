/** Diff (pure): what changed between two policies, by name, for reviewers and `policy diff`. */
import type { Policy, PolicyException, PolicyNode, Rollout, Rule } from './model.js';

export interface Change<T> {
  added: T[];
  removed: T[];
  changed: { before: T; after: T }[];
}

export interface PolicyDiff {
  version: { before: number; after: number };
  expires: { before: number; after: number } | null;
  settings: { before: Policy['settings']; after: Policy['settings'] } | null;
  nodes: Change<PolicyNode>;
  rules: Change<Rule>;
  exceptions: Change<PolicyException>;
  /** The new version's staged rollout when it has one (how it will go out), or when one was dropped. */
  rollout?: { before: Rollout | null; after: Rollout | null } | null;
}

function byName<T extends { name: string }>(before: T[], after: T[]): Change<T> {
  const a = new Map(before.map((x) => [x.name, x]));
  const b = new Map(after.map((x) => [x.name, x]));
  const same = (x: T, y: T) => JSON.stringify(x) === JSON.stringify(y);
  return {
    added: after.filter((x) => !a.has(x.name)),
    removed: before.filter((x) => !b.has(x.name)),
    changed: after.flatMap((y) => {
      const x = a.get(y.name);
      return x && !same(x, y) ? [{ before: x, after: y }] : [];
    }),
  };
}

export function diffPolicies(before: Policy, after: Policy): PolicyDiff {
  return {
    version: { before: before.version, after: after.version },
    expires: before.expires === after.expires ? null : { before: before.expires, after: after.expires },
    settings: JSON.stringify(before.settings) === JSON.stringify(after.settings) ? null : { before: before.settings, after: after.settings },
    nodes: byName(before.nodes, after.nodes),
    rules: byName(before.rules, after.rules),
    exceptions: byName(before.exceptions, after.exceptions),
    rollout: after.rollout || before.rollout ? { before: before.rollout ?? null, after: after.rollout ?? null } : null,
  };
}

export function isEmptyDiff(d: PolicyDiff): boolean {
  const empty = (c: Change<unknown>) => !c.added.length && !c.removed.length && !c.changed.length;
  return !d.expires && !d.settings && !d.rollout && empty(d.nodes) && empty(d.rules) && empty(d.exceptions);
}

const ports = (r: Rule) => (r.proto === 'icmp' ? 'icmp' : `${r.proto}/${r.ports.map((p) => (p.first === p.last ? p.first : `${p.first}-${p.last}`)).join(',')}`);
const ruleText = (r: Rule) => `${r.name}: ${r.direction === 'egress' ? 'egress ' : ''}${r.from.join(',')} -> ${r.to.join(',')} ${ports(r)}`;
const nodeText = (n: PolicyNode) => `${n.name} ${n.peerId} [${n.addresses.join(', ')}] roles=${n.roles.join(',') || '-'}`;
const excText = (e: PolicyException) => `${ruleText(e)} until ${new Date(e.expires).toISOString()} (${e.reason})`;

const minutes = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`);
/** "1: role:canary; 2: any after 10m, 100% healthy". */
export function rolloutText(r: Rollout): string {
  return r.stages.map((s, i) => `${i + 1}: ${s.select}${i ? `${s.after ? ` after ${minutes(s.after)}` : ''}, ${s.healthy ?? 100}% healthy` : ''}`).join('; ');
}

export function formatDiff(d: PolicyDiff): string {
  const lines = [`version ${d.version.before} -> ${d.version.after}`];
  if (d.expires) lines.push(`expires ${new Date(d.expires.before).toISOString()} -> ${new Date(d.expires.after).toISOString()}`);
  if (d.settings) lines.push(`settings ${JSON.stringify(d.settings.before)} -> ${JSON.stringify(d.settings.after)}`);
  const section = <T>(title: string, c: Change<T>, text: (x: T) => string) => {
    if (!c.added.length && !c.removed.length && !c.changed.length) return;
    lines.push(`${title}:`);
    for (const x of c.removed) lines.push(`  - ${text(x)}`);
    for (const x of c.added) lines.push(`  + ${text(x)}`);
    for (const x of c.changed) lines.push(`  ~ ${text(x.before)}`, `    ${text(x.after)}`);
  };
  section('nodes', d.nodes, nodeText);
  section('rules', d.rules, ruleText);
  section('exceptions', d.exceptions, excText);
  if (d.rollout) lines.push(d.rollout.after ? `rollout (staged): ${rolloutText(d.rollout.after)}` : 'rollout: none (every node enforces the new version at once)');
  if (isEmptyDiff(d)) lines.push('no changes to nodes, rules, exceptions or settings');
  return lines.join('\n') + '\n';
}
