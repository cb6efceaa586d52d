/**
 * Issue 15 items 2 and 3 with real packets, for nft and for iptables: every drop path counts
 * in the kernel under its reason, monitor mode accepts what enforcement would drop while
 * counting it as would-drop (a removed node stays dropped), the totals stay monotonic when an
 * apply resets the kernel's counters, and the metrics endpoint shows them. Addresses exist
 * only inside namespaces this test creates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftBackend } from '../../src/enforce/nft.js';
import { IptablesBackend } from '../../src/enforce/iptables.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { DropTotals, type DropTotalsView } from '../../src/enforce/drop-totals.js';
import type { Backend } from '../../src/enforce/backend.js';
import { DropReader } from '../../src/agent/drops.js';
import { Metrics } from '../../src/agent/metrics.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { systemClock } from '../../src/runtime/clock.js';
import type { Policy, Rule } from '../../src/policy/model.js';
import { canUseNetns, NetLab, PROBE } from '../helpers/netns.js';
import { PEER, policy } from '../helpers/trust.js';

const tcp = (name: string, from: string[], ports: number[], mode?: 'monitor'): Rule => ({
  name, to: ['role:db'], from, proto: 'tcp', ports: ports.map((p) => ({ first: p, last: p })), ...(mode ? { mode } : {}),
});

for (const [kind, net] of [['nft', '10.91'], ['iptables', '10.92']] as const) {
  const lab = canUseNetns() ? new NetLab() : null;
  describe.runIf(lab)(`drop counters and monitor mode in the kernel (${kind})`, () => {
    let srv = '', web = '', out = '';
    let backend: Backend & { readDrops(): ReturnType<NonNullable<Backend['readDrops']>> };
    let enforcer: Enforcer;
    const totals = new DropTotals();
    const db = { name: 'db', peerId: PEER(1), addresses: [`${net}.0.2`, `${net}.1.2`], roles: ['db'] };
    const webNode = { name: 'web', peerId: PEER(2), addresses: [`${net}.0.1`], roles: ['web'] };
    const app = tcp('app', ['role:web'], [5432]);
    let version = 0;
    const enforce = async (o: Partial<Policy>) => {
      const st = await enforcer.enforce(policy(++version, { nodes: [db, webNode], rules: [app], ...o }), Date.now());
      expect(st.state, st.reason).toBe('ok');
    };
    const read = async (): Promise<DropTotalsView> => {
      const r = await backend.readDrops();
      expect(r).not.toBeNull();
      return totals.observe(r!);
    };
    const dbAddr = (side: 0 | 1) => `${net}.${side}.2`;

    beforeAll(async () => {
      srv = lab!.ns('srv');
      web = lab!.ns('web');
      out = lab!.ns('out');
      lab!.link(web, `${net}.0.1/24`, srv, `${net}.0.2/24`);
      lab!.link(out, `${net}.1.1/24`, srv, `${net}.1.2/24`);
      const server = lab!.spawn(srv, [process.execPath, PROBE, 'serve', '5432,7946,9998,9999']);
      await server.line(/serving/);
      const wrap = { wrap: ['ip', 'netns', 'exec', srv] };
      backend = kind === 'nft' ? new NftBackend(wrap) : new IptablesBackend(wrap);
      enforcer = new Enforcer({ backend, clock: systemClock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: [], sshPort: 22 });
      await enforce({});
    });
    afterAll(() => lab?.destroy());

    it('counts default-deny drops of real packets under their reason, and nothing else', async () => {
      const before = await read();
      expect(lab!.probe(out, dbAddr(1), 9999)).toBe('closed');
      expect(lab!.probe(web, dbAddr(0), 5432)).toBe('open');
      const after = await read();
      expect(after['default-deny'].packets).toBeGreaterThan(before['default-deny'].packets);
      expect(after['default-deny'].bytes).toBeGreaterThan(before['default-deny'].bytes);
      expect(after.blocked.packets).toBe(before.blocked.packets);
      expect(after['would-drop'].packets).toBe(before['would-drop'].packets);
    });

    it("counts a removed node's packets as blocked, not as default deny", async () => {
      await enforce({ nodes: [db] });
      const before = await read();
      expect(lab!.probe(web, dbAddr(0), 5432)).toBe('closed');
      const after = await read();
      expect(after.blocked.packets).toBeGreaterThan(before.blocked.packets);
      expect(after['default-deny'].packets).toBe(before['default-deny'].packets);
    });

    it('policy monitor mode accepts what the default would drop and counts it, while a removed node stays dropped', async () => {
      await enforce({ nodes: [db], settings: { onExpiry: 'keep', mode: 'monitor' } });
      const before = await read();
      expect(lab!.probe(out, dbAddr(1), 9999)).toBe('open');
      const mid = await read();
      expect(mid['would-drop'].packets).toBeGreaterThan(before['would-drop'].packets);
      expect(mid['default-deny'].packets).toBe(before['default-deny'].packets);
      expect(lab!.probe(web, dbAddr(0), 5432)).toBe('closed');
      const after = await read();
      expect(after.blocked.packets).toBeGreaterThan(mid.blocked.packets);
    });

    it('a rule in monitor mode accepts only what no enforced rule admits, counting that as would-drop', async () => {
      await enforce({ rules: [app, tcp('legacy', ['any'], [5432, 9998], 'monitor')] });
      const t0 = await read();
      // The enforced rule admits web: not a would-drop.
      expect(lab!.probe(web, dbAddr(0), 5432)).toBe('open');
      const t1 = await read();
      expect(t1['would-drop'].packets).toBe(t0['would-drop'].packets);
      // Only the monitor rule admits out: accepted, counted.
      expect(lab!.probe(out, dbAddr(1), 5432)).toBe('open');
      expect(lab!.probe(out, dbAddr(1), 9998)).toBe('open');
      const t2 = await read();
      expect(t2['would-drop'].packets).toBeGreaterThanOrEqual(t1['would-drop'].packets + 2);
      // Nothing admits 9999: still dropped (the policy itself is enforced).
      expect(lab!.probe(out, dbAddr(1), 9999)).toBe('closed');
      const t3 = await read();
      expect(t3['default-deny'].packets).toBeGreaterThan(t2['default-deny'].packets);
    });

    it('keeps the totals monotonic across re-applies, one of which resets the kernel counters', async () => {
      expect(lab!.probe(out, dbAddr(1), 9999)).toBe('closed');
      const t0 = await read();
      const raw0 = (await backend.readDrops())!.counts['default-deny']!.packets;
      expect(raw0).toBeGreaterThan(0);
      // An ordinary apply of another version keeps the kernel counters.
      await enforce({ rules: [app, tcp('extra', ['role:web'], [9998])] });
      const raw1 = (await backend.readDrops())!.counts['default-deny']!.packets;
      expect(raw1).toBeGreaterThanOrEqual(raw0);
      // Now make the backend reset them: nft recreates the table it finds deleted, iptables
      // rewrites its drop chains when the log settings change.
      if (kind === 'nft') {
        lab!.exec(srv, ['nft', 'delete', 'table', 'inet', 'picket']);
        backend.invalidate?.();
      } else {
        enforcer.reconfigure({ dropLog: { drops: true, rate: '5/second' } });
      }
      await enforce({});
      const raw2 = (await backend.readDrops())!.counts['default-deny']?.packets ?? 0;
      expect(raw2).toBeLessThan(raw0);
      const t1 = await read();
      expect(t1['default-deny'].packets).toBeGreaterThanOrEqual(t0['default-deny'].packets);
      expect(lab!.probe(out, dbAddr(1), 9999)).toBe('closed');
      const t2 = await read();
      expect(t2['default-deny'].packets).toBeGreaterThan(t0['default-deny'].packets);
      for (const r of ['blocked', 'invalid', 'would-drop'] as const) expect(t2[r].packets).toBeGreaterThanOrEqual(t0[r].packets);
    });

    it('serves the totals on the metrics endpoint, by reason', async () => {
      expect(lab!.probe(out, dbAddr(1), 9999)).toBe('closed');
      const metrics = new Metrics();
      const reader = new DropReader(() => backend, systemClock, 0);
      metrics.refreshAsync = async () => { const t = await reader.read(); if (t) metrics.setDrops(t); };
      const addr = await metrics.listen('127.0.0.1:0');
      try {
        const scrape = async () => (await fetch(`http://${addr}/metrics`)).text();
        const value = (text: string, name: string, reason: string) => Number(new RegExp(`^${name}\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
        const first = await scrape();
        expect(value(first, 'picket_dropped_packets_total', 'default-deny')).toBeGreaterThan(0);
        expect(value(first, 'picket_dropped_bytes_total', 'default-deny')).toBeGreaterThan(0);
        for (const r of ['blocked', 'invalid', 'would-drop']) expect(value(first, 'picket_dropped_packets_total', r)).toBeGreaterThanOrEqual(0);
        expect(lab!.probe(out, dbAddr(1), 9999)).toBe('closed');
        const second = await scrape();
        expect(value(second, 'picket_dropped_packets_total', 'default-deny')).toBeGreaterThan(value(first, 'picket_dropped_packets_total', 'default-deny'));
      } finally {
        await metrics.close();
      }
    });
  });
}
