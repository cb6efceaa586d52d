/**
 * Address classes in the nft lowering (pure: no kernel). Host sources whose allowed
 * (proto, port) sets are identical share one class: a verdict map sends each address to its
 * class chain, which holds the ports once. These tests pin the element counts that make a
 * 10k-rule policy cheap to load and a one-address change a handful of element operations,
 * and the parts of the shape that keep default deny intact (classes-netns.test.ts checks the
 * meaning on a real kernel).
 */
import { describe, expect, it } from 'vitest';
import { buildNftTables, MAX_CLASSES } from '../../src/enforce/nft-tables.js';
import { nftChainNames, renderNftDelta, renderNftInPlace, nftSetNames, sameShape } from '../../src/enforce/render-nft.js';
import { compile } from '../../src/policy/compile.js';
import { rulesetSize } from '../../src/policy/budget.js';
import type { Policy, Rule } from '../../src/policy/model.js';
import { NOW, PEER, policy } from '../helpers/trust.js';
import { applyBenchPolicy } from '../../bench/apply-policy.js';

/** The 10,000-rule policy of bench/apply.ts: 50 nodes, one role each of 10. */
const benchPolicy = (rules: number, shift = 0): Policy => applyBenchPolicy(rules, NOW, shift);

const elements = (p: Policy) => buildNftTables(compile(p, 'n0', { now: NOW })).sets.reduce((n, s) => n + s.elements.length, 0);
/** Element operations in a delta script: every element of every add/delete line. */
const elementOps = (script: string) => script.split('\n').filter(Boolean).reduce((n, l) => n + (/\{ (.*) \}$/.exec(l)?.[1]?.split(', ').length ?? 0), 0);

const N = (name: string, i: number, addresses: string[], roles: string[]) => ({ name, peerId: PEER(i), addresses, roles });
const nodes = [
  N('srv', 0, ['10.77.0.1', 'fd77::1'], ['srv']),
  N('a1', 1, ['10.77.0.2', 'fd77::2'], ['ca']),
  N('a2', 2, ['10.77.0.3', 'fd77::3'], ['ca']),
  N('b1', 3, ['10.77.0.4', 'fd77::4'], ['cb']),
  N('b2', 4, ['10.77.0.9', 'fd77::9'], ['cb']),
  N('x', 5, ['10.77.0.5', 'fd77::5'], ['none']),
];
const rules: Rule[] = [
  { name: 'a-ports', to: ['role:srv'], from: ['role:ca'], proto: 'tcp', ports: [{ first: 7001, last: 7003 }] },
  { name: 'b-ports', to: ['role:srv'], from: ['role:cb'], proto: 'tcp', ports: [{ first: 8001, last: 8003 }] },
];
const rs = (p: Policy) => compile(p, PEER(0), { now: NOW, meshPorts: [7946] });

describe('address classes', () => {
  it('lowers the 10k-rule bench policy to fewer than 12,000 elements (one per host and per class port, not host × port)', () => {
    expect(elements(benchPolicy(10000))).toBeLessThan(12_000);
  });

  it('renders the bench one-address change as an element delta of a few elements', () => {
    const a = compile(benchPolicy(10000), 'n0', { now: NOW }), b = compile(benchPolicy(10000, 1), 'n0', { now: NOW });
    expect(sameShape(a, b)).toBe(true);
    const delta = renderNftDelta(a, b);
    expect(delta).not.toMatch(/chain|flush|rule/);
    // The address leaves the verdict map and comes back under its new key; the mesh set moves it too.
    expect(elementOps(delta)).toBeLessThanOrEqual(4);
  });

  it('hosts with different ports are in different classes; a host alone in its ports stays as plain elements', () => {
    const lone = N('c1', 6, ['10.77.0.6'], ['cc']);
    const cRule: Rule = { name: 'c-ports', to: ['role:srv'], from: ['role:cc'], proto: 'tcp', ports: [{ first: 6001, last: 6003 }] };
    const t = buildNftTables(rs(policy(1, { nodes: [...nodes, lone], rules: [...rules, cRule] })));
    const classes = (t.chains ?? []).filter((c) => /^class_\d+$/.test(c.name));
    expect(classes).toHaveLength(2);
    const ports = (n: string) => t.sets.find((s) => s.name === `${n}_ports`)!.elements;
    const [ca, cb] = classes.map((c) => ports(c.name));
    expect(ca).toEqual(['tcp . 7001', 'tcp . 7002', 'tcp . 7003']);
    expect(cb).toEqual(['tcp . 8001', 'tcp . 8002', 'tcp . 8003']);
    expect(t.sets.find((s) => s.name === 'hosts_v4')!.elements).toEqual(['10.77.0.6 . tcp . 6001', '10.77.0.6 . tcp . 6002', '10.77.0.6 . tcp . 6003']);
    // x is in no rule: in no map and no allow set (only the mesh set knows its address).
    expect(JSON.stringify(t.sets.filter((s) => !s.name.startsWith('mesh_')))).not.toContain('10.77.0.5');
  });

  it('a class chain is entered by jump, never goto, so a class without a match falls through to the CIDR rules and default deny', () => {
    const t = buildNftTables(rs(policy(1, { nodes, rules })));
    const maps = t.sets.filter((s) => s.type.endsWith(': verdict'));
    expect(maps.length).toBeGreaterThan(0);
    for (const m of maps) for (const e of m.elements) expect(e).toMatch(/ : jump (mon_|fwd_)?class_\d+$/);
    const vmapAt = t.rules.findIndex((r) => r.includes('vmap @classes_v4'));
    expect(vmapAt).toBeGreaterThanOrEqual(0);
    expect(t.rules[t.rules.length - 1]).toMatch(/drop comment "default deny"/);
    for (const c of t.chains ?? []) for (const r of c.rules) expect(r).not.toMatch(/\bgoto\b|\bdrop\b/);
  });

  it('class names do not depend on addresses: moving a host keeps every class and its ports (same shape, elements only)', () => {
    const moved = nodes.map((n) => n.name === 'a1' ? { ...n, addresses: ['10.77.0.5', 'fd77::5'] } : n.name === 'x' ? { ...n, addresses: ['10.77.0.2', 'fd77::2'] } : n);
    const a = rs(policy(1, { nodes, rules })), b = rs(policy(2, { nodes: moved, rules }));
    expect(sameShape(a, b)).toBe(true);
    expect(nftChainNames(a)).toEqual(nftChainNames(b));
    const delta = renderNftDelta(a, b);
    expect(delta).toMatch(/delete element inet picket classes_v4 \{ 10\.77\.0\.2 \}/);
    expect(delta).toMatch(/add element inet picket classes_v4 \{ 10\.77\.0\.5 : jump class_\d \}/);
    expect(elementOps(delta.replace(/^.* origin .*$/gm, ''))).toBeLessThanOrEqual(4);
  });

  it('a new port for a class is an element change of its port set, not a new class', () => {
    const wider: Rule[] = [{ ...rules[0]!, ports: [{ first: 7001, last: 7004 }] }, rules[1]!];
    const a = rs(policy(1, { nodes, rules })), b = rs(policy(2, { nodes, rules: wider }));
    expect(sameShape(a, b)).toBe(true);
    expect(renderNftDelta(a, b)).toMatch(/add element inet picket class_\d_ports \{ tcp \. 7004 \}/);
  });

  it('a class appearing is a new shape, and the in-place replace flushes and removes the old class chains', () => {
    const a = rs(policy(1, { nodes, rules })), b = rs(policy(2, { nodes, rules: [rules[0]!] }));
    expect(sameShape(a, b)).toBe(false);
    const script = renderNftInPlace(b, { sets: nftSetNames(a), chains: nftChainNames(a) });
    const lines = script.split('\n');
    const del = (what: string) => lines.findIndex((l) => l.startsWith(`delete ${what}`));
    // The maps that jump to a chain go before the chain does (the kernel refuses a chain in use).
    expect(del('set inet picket classes_v4')).toBeLessThan(del('chain inet picket class_1'));
    expect(lines).toContain('flush chain inet picket class_1');
  });

  it('monitor rules get classes of their own, whose chains send to would_drop', () => {
    const mon = rules.map((r) => ({ ...r, mode: 'monitor' as const }));
    const t = buildNftTables(rs(policy(1, { nodes, rules: mon })));
    const chains = (t.chains ?? []).filter((c) => c.name.startsWith('mon_class_'));
    expect(chains).toHaveLength(2);
    for (const c of chains) expect(c.rules.join('\n')).toMatch(/@mon_class_\d+_ports jump would_drop/);
    expect(t.rules.some((r) => r.includes('vmap @mon_classes_v4'))).toBe(true);
  });

  it('the forward chain matches class ports on the published port (ct original proto-dst), never the container port', () => {
    const t = buildNftTables(rs(policy(1, { nodes, rules, settings: { onExpiry: 'keep', forward: 'filter' } })));
    const fwd = (t.chains ?? []).filter((c) => c.name.startsWith('fwd_class_'));
    expect(fwd.length).toBeGreaterThan(0);
    for (const c of fwd) for (const r of c.rules) expect(r).toMatch(/ct original proto-dst @class_\d+_ports accept/);
    expect(t.forward!.some((r) => r.includes('vmap @fwd_classes_v4'))).toBe(true);
  });

  it('a policy crafted for one class per pair of hosts gets at most MAX_CLASSES class chains; the other hosts stay plain elements', () => {
    // 3,000 pairs of hosts, each pair with three ports of its own: every pair would be a class.
    const pairs = 3000;
    const many: Policy = policy(1, {
      nodes: [nodes[0]!, ...Array.from({ length: pairs * 2 }, (_, i) => N(`h${i}`, 10 + i, [`10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`], [`pair${i >> 1}`]))]
        .map((n, i) => (i === 0 ? n : { ...n, peerId: `12D3KooW${String(i).padStart(44, 'C')}` })),
      rules: Array.from({ length: pairs }, (_, j) => ({ name: `pair${j}`, to: ['role:srv'], from: [`role:pair${j}`], proto: 'tcp' as const, ports: [{ first: 10000 + 3 * j, last: 10002 + 3 * j }] })),
    });
    const t = buildNftTables(rs(many));
    expect(t.chains.length).toBe(MAX_CLASSES);
    expect(t.sets.filter((s) => s.name.endsWith('_ports'))).toHaveLength(MAX_CLASSES);
    // Nothing is lost: every host is in a class or has its three plain elements.
    const mapped = t.sets.filter((s) => s.name.startsWith('classes_')).reduce((n, s) => n + s.elements.length, 0);
    const plain = t.sets.filter((s) => s.name.startsWith('hosts_')).reduce((n, s) => n + s.elements.length, 0);
    expect(mapped + plain / 3).toBe(pairs * 2);
  });

  it('classes never emit more elements than host × port would, so the compile budget still bounds the lowering', () => {
    for (const p of [policy(1, { nodes, rules }), benchPolicy(2000)]) {
      const r = compile(p, p.nodes[0]!.peerId, { now: NOW });
      const real = buildNftTables(r).sets.filter((s) => !/^(blocked|failsafe)_/.test(s.name)).reduce((n, s) => n + s.elements.length, 0);
      expect(rulesetSize(r).elements).toBeGreaterThanOrEqual(real);
    }
  });
});
