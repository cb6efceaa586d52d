/**
 * What the kernel shows an operator about the ruleset in force (`nft list table inet picket`)
 * must follow every apply: a full recreate, an in-place replace and an element-only delta.
 * nftables never updates a table's comment on an existing table, so the origin lives in an
 * element comment that each apply form rewrites.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NftBackend } from '../../src/enforce/nft.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { renderNftDelta, renderNftInPlace, nftSetNames } from '../../src/enforce/render-nft.js';
import { compile, compileBaseline } from '../../src/policy/compile.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { systemClock } from '../../src/runtime/clock.js';
import { canUseNetns, NetLab } from '../helpers/netns.js';
import { NOW, PEER, policy } from '../helpers/trust.js';

const nodes = [
  { name: 'db', peerId: PEER(1), addresses: ['10.0.0.1'], roles: ['db'] },
  { name: 'web', peerId: PEER(2), addresses: ['10.0.0.2'], roles: ['web'] },
];
const base = { now: NOW, meshPorts: [7946], sshFrom: ['10.9.0.0/16'], sshPort: 22 };
const p1 = policy(1, { nodes });
// Same shape, other addresses: the backend applies it as element operations only.
const p2 = policy(2, { nodes: nodes.map((n) => (n.name === 'web' ? { ...n, addresses: ['10.0.0.3'] } : n)) });

describe('the ruleset names the policy in force', () => {
  it('an element-only delta between two versions rewrites the origin', () => {
    const delta = renderNftDelta(compile(p1, PEER(1), base), compile(p2, PEER(1), base));
    expect(delta).toContain('picket: policy v2 for db');
  });
  it('an in-place replace from the baseline rewrites the origin', () => {
    const from = compileBaseline({ ...base, meshPeers: [] });
    const script = renderNftInPlace(compile(p1, PEER(1), base), { sets: nftSetNames(from), chains: ['input'] });
    expect(script).toContain('picket: policy v1 for db');
  });
});

const lab = canUseNetns() ? new NetLab() : null;
afterAll(() => lab?.destroy());

describe.runIf(lab)('the ruleset names the policy in force (kernel)', () => {
  it('after baseline → v1 (in place) → v2 (elements only), nft list shows v2, not the baseline', async () => {
    const ns = lab!.ns('origin');
    const backend = new NftBackend({ wrap: ['ip', 'netns', 'exec', ns] });
    const e = new Enforcer({ backend, clock: systemClock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: ['10.9.0.0/16'], sshPort: 22 });
    const list = () => lab!.exec(ns, ['nft', 'list', 'table', 'inet', 'picket']);
    await e.enforce(null, NOW);
    expect(list()).toContain('picket: baseline (no policy)');
    await e.enforce(p1, NOW);
    expect(list()).toContain('picket: policy v1 for db');
    expect(list()).not.toContain('baseline (no policy)');
    const incremental = backend.applies.incremental;
    await e.enforce(p2, NOW);
    expect(backend.applies.incremental).toBe(incremental + 1);
    expect(list()).toContain('picket: policy v2 for db');
    expect(list()).not.toContain('policy v1 for db');
    // The origin is part of what is read back: the state stays clean (no false drift).
    expect(await e.checkDrift()).toBeNull();
  });
});

describe('the origin comment is inert', () => {
  it('a node name cannot break out of the comment, even from a policy that skipped validation', () => {
    const evil = 'db"; flush ruleset; add element inet picket origin { 1 comment "x';
    const p = policy(1, { nodes: [{ ...nodes[0]!, name: evil }, nodes[1]!] });
    const script = renderNftInPlace(compile(p, PEER(1), base), { sets: [], chains: ['input'] });
    const line = script.split('\n').find((l) => l.includes('set origin'))!;
    expect(line).not.toContain('flush ruleset');
    expect(line.match(/"/g)).toHaveLength(2);
    expect(line).toMatch(/picket: policy v1 for db_+flush_ruleset_/);
  });
});
