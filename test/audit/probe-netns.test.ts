/** Peer probes against a real peer in a namespace: a port left open by a wrong rule is found. */
import { afterAll, describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { canUseNetns, NetLab, PROBE } from '../helpers/netns.js';
import { NftBackend } from '../../src/enforce/nft.js';
import { compile } from '../../src/policy/compile.js';
import { planProbes } from '../../src/audit/probe.js';
import { seededRandom } from '../../src/runtime/random.js';
import { PEER, policy } from '../helpers/trust.js';

const lab = canUseNetns() ? new NetLab() : null;
afterAll(() => lab?.destroy());

describe.runIf(lab)('peer probes', () => {
  it('report a port that a deliberately wrong rule leaves open, and nothing for correctly closed ones', async () => {
    const me = lab!.ns('me'), peer = lab!.ns('peer');
    lab!.link(me, '10.90.0.1/24', peer, '10.90.0.2/24');
    const srv = lab!.spawn(peer, [process.execPath, PROBE, 'serve', '5432,6379,22']);
    await srv.line(/serving/);
    const p = policy(1, {
      nodes: [
        { name: 'me', peerId: PEER(1), addresses: ['10.90.0.1'], roles: ['web'] },
        { name: 'db', peerId: PEER(2), addresses: ['10.90.0.2'], roles: ['db'] },
        { name: 'app', peerId: PEER(3), addresses: ['10.90.0.3'], roles: ['app'] },
      ],
      rules: [{ name: 'app-db', to: ['role:db'], from: ['role:app'], proto: 'tcp', ports: [{ first: 5432, last: 5432 }] }],
    });
    const nft = new NftBackend({ wrap: ['ip', 'netns', 'exec', peer] });
    await nft.apply(compile(p, PEER(2), { now: Date.now() }));
    lab!.exec(peer, ['nft', 'insert', 'rule', 'inet', 'picket', 'input', 'tcp', 'dport', '6379', 'accept']); // the mistake (inserted: the chain ends in its counted default drop)

    const targets = planProbes(p, PEER(1), Date.now(), seededRandom(1), { peers: 3, ports: 16, meshPorts: [7946] });
    expect(targets.every((t) => ['10.90.0.2', '10.90.0.3'].includes(t.address))).toBe(true); // only policy addresses
    const toDb = targets.filter((t) => t.peerId === PEER(2)).map((t) => t.port);
    expect(toDb).toEqual(expect.arrayContaining([5432, 6379, 22]));
    const out = lab!.exec(me, [process.execPath, resolve(import.meta.dirname, '../helpers/run-probe.mjs'), JSON.stringify(targets.filter((t) => t.peerId === PEER(2)))]);
    const findings = JSON.parse(out) as { port: number; target: string; kind: string }[];
    expect(findings.map((f) => f.port)).toEqual([6379]);
    expect(findings[0]).toMatchObject({ kind: 'exposed-port', target: PEER(2) });
  });
});
