/**
 * Drop totals that never go down, whatever the kernel counters do, and the parsers of what
 * nft and iptables-save print (hostile: a table someone else filled, numbers out of range).
 */
import { describe, expect, it } from 'vitest';
import { DropTotals } from '../../src/enforce/drop-totals.js';
import { parseNftCounters } from '../../src/enforce/nft.js';
import { parseIptablesDrops } from '../../src/enforce/iptables.js';
import type { Backend, DropReading } from '../../src/enforce/backend.js';
import { DropReader } from '../../src/agent/drops.js';
import { ManualClock } from '../../src/runtime/clock.js';

const reading = (epoch: string, packets: number, bytes = packets * 60): DropReading => ({ epoch, counts: { 'default-deny': { packets, bytes } } });

describe('drop totals', () => {
  it('never goes down when the kernel counters are reset behind the agent (same epoch)', () => {
    const t = new DropTotals();
    expect(t.observe(reading('1:0', 10))['default-deny'].packets).toBe(10);
    expect(t.observe(reading('1:0', 3))['default-deny'].packets).toBe(13);
    expect(t.observe(reading('1:0', 5))['default-deny']).toEqual({ packets: 15, bytes: 900 });
  });
  it('adds what the counters held before a reset the backend announced (new epoch), even if they grew past it', () => {
    const t = new DropTotals();
    t.observe(reading('1:0', 10));
    // Reset, then more drops than before: a decrease check alone would have missed it.
    expect(t.observe(reading('1:1', 12))['default-deny'].packets).toBe(22);
  });
  it('counts every reason, zero when a backend does not report it', () => {
    const v = new DropTotals().observe(reading('1:0', 1));
    expect(Object.keys(v).sort()).toEqual(['blocked', 'default-deny', 'egress-deny', 'forward-deny', 'invalid', 'would-drop']);
    expect(v.blocked).toEqual({ packets: 0, bytes: 0 });
  });
});

describe('counter parsers', () => {
  it('reads only picket counters of the picket table from nft, ignoring others and unsafe numbers', () => {
    const doc = {
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { counter: { family: 'inet', name: 'drop_default', table: 'picket', packets: 7, bytes: 420 } },
        { counter: { family: 'inet', name: 'drop_blocked', table: 'other', packets: 99, bytes: 99 } },
        { counter: { family: 'inet', name: 'mine', table: 'picket', packets: 5, bytes: 5 } },
        { counter: { family: 'inet', name: 'drop_invalid', table: 'picket', packets: 1e300, bytes: -1.5 } },
      ],
    };
    expect(parseNftCounters(JSON.stringify(doc))).toEqual({ 'default-deny': { packets: 7, bytes: 420 } });
  });
  it('reads the terminal rule of each drop chain from iptables-save -c, nothing else', () => {
    const text = [
      '*filter',
      ':PICKET-DROP - [0:0]',
      '[3:180] -A PICKET-DROP -m limit --limit 10/sec -j LOG --log-prefix "picket-drop "',
      '[9:540] -A PICKET-DROP -m comment --comment "picket-drop:default-deny" -j DROP',
      '[4:240] -A PICKET-WOULD-DROP -m comment --comment "picket-drop:would-drop" -j ACCEPT',
      '[8:8] -A PICKET-INPUT -j DROP',
      '[1:1] -A PICKET-EVIL -j DROP',
      'COMMIT',
    ].join('\n');
    expect(parseIptablesDrops(text)).toEqual({ 'default-deny': { packets: 9, bytes: 540 }, 'would-drop': { packets: 4, bytes: 240 } });
  });
});

describe('the agent drop reader', () => {
  const fake = (fn: () => Promise<DropReading | null>): Backend => ({ name: 'fake', apply: async () => undefined, readBack: async () => null, readDrops: fn });

  it('shares one kernel read between callers that ask at once, and reuses a fresh reading', async () => {
    let calls = 0;
    const clock = new ManualClock(0);
    const r = new DropReader(() => fake(async () => reading('1:0', ++calls)), clock, 1000);
    const [a, b] = await Promise.all([r.read(), r.read()]);
    expect(calls).toBe(1);
    expect(a).toEqual(b);
    await r.read();
    expect(calls).toBe(1);
    clock.advance(1000);
    expect((await r.read())!['default-deny'].packets).toBe(2);
  });
  it('keeps the last totals when the backend fails to read, without throwing', async () => {
    let fail = false;
    const r = new DropReader(() => fake(async () => { if (fail) throw new Error('nft: killed'); return reading('1:0', 4); }), new ManualClock(0), 0);
    expect((await r.read())!['default-deny'].packets).toBe(4);
    fail = true;
    expect((await r.read())!['default-deny'].packets).toBe(4);
  });
  it('stays monotonic when the backend is switched (another instance, another epoch)', async () => {
    let b = fake(async () => reading('1:0', 10));
    const r = new DropReader(() => b, new ManualClock(0), 0);
    await r.read();
    b = fake(async () => reading('2:0', 1));
    expect((await r.read())!['default-deny'].packets).toBe(11);
  });
  it('reports nothing for a backend that counts nothing', async () => {
    const r = new DropReader(() => ({ name: 'memory', apply: async () => undefined, readBack: async () => null }), new ManualClock(0), 0);
    expect(await r.read()).toBeNull();
  });
});
