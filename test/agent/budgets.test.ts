/** The budget rules on an injected clock: what each peer may cost, and who pays with a strike. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/runtime/clock.js';
import { Budgets, DEFAULT_BUDGETS } from '../../src/mesh/budgets.js';

const listed = new Set(['L1', 'L2']);
const make = () => { const clock = new ManualClock(1_000_000); return { clock, b: new Budgets(clock, (p) => listed.has(p)) }; };

describe('per-peer budgets', () => {
  it('a flood of statuses from their own signer is cut at the burst, refills with time, and is struck; a relay is not', () => {
    const { clock, b } = make();
    let ok = 0;
    for (let i = 0; i < 1000; i++) if (b.status('L1', 'L1').ok) ok++;
    expect(ok).toBe(DEFAULT_BUDGETS.statusBurst);
    expect(b.status('L1', 'L1')).toEqual({ ok: false, kind: 'statuses', strike: true });
    // The same origin relayed by an honest peer: dropped, but the relay pays nothing.
    expect(b.status('L1', 'L2')).toEqual({ ok: false, kind: 'statuses', strike: false });
    clock.advance(60_000);
    ok = 0;
    for (let i = 0; i < 1000; i++) if (b.status('L1', 'L1').ok) ok++;
    expect(ok).toBe(DEFAULT_BUDGETS.statusBurst); // refilled to the burst, never beyond it
    expect(b.status('L2', 'L2').ok).toBe(true); // one node's flood does not spend another's budget
  });

  it('a peer holds at most its connections; strangers together at most theirs; a stranger is never struck', () => {
    const { b } = make();
    for (let i = 0; i < DEFAULT_BUDGETS.connectionsPerPeer; i++) { expect(b.admitConnection('L1').ok).toBe(true); b.opened('L1'); }
    // Past the budget: refused; free while the peer may be a node back from a partition whose
    // old connections we still hold, struck once it has retried more than that explains.
    for (let i = 0; i < DEFAULT_BUDGETS.refusedConnectionBurst; i++) expect(b.admitConnection('L1')).toEqual({ ok: false, kind: 'connections', strike: false });
    expect(b.admitConnection('L1')).toEqual({ ok: false, kind: 'connections', strike: true });
    expect(b.opened('L1')).toEqual({ ok: false, kind: 'connections', strike: true }); // the backstop draws on the same allowance
    expect(b.opened('L1', 'outbound')).toEqual({ ok: false, kind: 'connections', strike: false }); // our own dial: refused, not the peer's to pay
    b.closed('L1');
    for (let i = 0; i < DEFAULT_BUDGETS.unadmittedConnections; i++) expect(b.opened(`S${i}`).ok).toBe(true);
    expect(b.admitConnection('S-new')).toEqual({ ok: false, kind: 'unadmitted-connections', strike: false });
    expect(b.opened('S-race')).toEqual({ ok: false, kind: 'unadmitted-connections', strike: false });
    expect(b.admitConnection('L2').ok).toBe(true); // strangers never take a listed peer's slot
    b.closed('S0');
    b.closed('S-race');
    b.closed('L1');
    expect(b.admitConnection('S-new').ok).toBe(true);
  });

  it('a listed peer dialling in a loop past its connection budget is struck; the free refusals refill with time, per peer', () => {
    const { clock, b } = make();
    for (let i = 0; i < DEFAULT_BUDGETS.connectionsPerPeer; i++) b.opened('L1');
    const loop = Array.from({ length: 100 }, () => b.admitConnection('L1'));
    expect(loop.every((c) => !c.ok)).toBe(true);
    expect(loop.filter((c) => !c.ok && !c.strike)).toHaveLength(DEFAULT_BUDGETS.refusedConnectionBurst);
    clock.advance(60_000);
    const strikes = Array.from({ length: 20 }, () => b.admitConnection('L1')).filter((c) => !c.ok && c.strike).length;
    expect(strikes).toBe(20 - DEFAULT_BUDGETS.refusedConnectionsPerMinute); // refilled at its rate, never beyond the burst
    for (let i = 0; i < DEFAULT_BUDGETS.connectionsPerPeer; i++) b.opened('L2');
    expect(b.admitConnection('L2')).toEqual({ ok: false, kind: 'connections', strike: false }); // one peer's loop does not spend another's
  });

  it('inbound streams are bounded per peer and protocol, and for strangers together; release frees exactly one', () => {
    const { b } = make();
    const held = Array.from({ length: DEFAULT_BUDGETS.inboundStreamsPerProtocol }, () => b.openStream('/p', 'L1'));
    expect(held.every((h) => h.charge.ok)).toBe(true);
    expect(b.openStream('/p', 'L1').charge).toEqual({ ok: false, kind: 'streams', strike: true });
    expect(b.openStream('/other', 'L1').charge.ok).toBe(true);
    held[0]!.release();
    held[0]!.release(); // twice: still one slot
    expect(b.openStream('/p', 'L1').charge.ok).toBe(true);
    expect(b.openStream('/p', 'L1').charge.ok).toBe(false);
    const strangers = Array.from({ length: DEFAULT_BUDGETS.unadmittedStreams }, (_, i) => b.openStream('/p', `S${i}`));
    expect(strangers.every((h) => h.charge.ok)).toBe(true);
    expect(b.openStream('/p', 'S-new').charge).toEqual({ ok: false, kind: 'unadmitted-streams', strike: false });
  });

  it('announcements are charged per forwarder', () => {
    const { b } = make();
    let ok = 0;
    for (let i = 0; i < 100; i++) if (b.announcement('L1').ok) ok++;
    expect(ok).toBe(DEFAULT_BUDGETS.announcementBurst);
    expect(b.announcement('L1')).toEqual({ ok: false, kind: 'announcements', strike: true });
    expect(b.announcement('L2').ok).toBe(true);
  });
});
