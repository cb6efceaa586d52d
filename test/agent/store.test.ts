import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../src/store/store.js';
import { tempDir } from '../helpers/cli.js';

const t = tempDir('picket-store-');
afterEach(() => undefined);

describe('store', () => {
  it('keeps a bounded policy history and the highest version across reopen', async () => {
    const s = await Store.open(t.path('a'), 3);
    for (let v = 1; v <= 5; v++) await s.savePolicy({ envelope: new Uint8Array([v]), version: v, digest: `d${v}`, acceptedAt: v });
    expect((await s.policyHistory()).map((b) => b[0])).toEqual([3, 4, 5]);
    await s.close();
    const r = await Store.open(t.path('a'), 3);
    expect(await r.policy()).toMatchObject({ version: 5, digest: 'd5' });
    expect(await r.highest()).toEqual({ version: 5, digest: 'd5' });
    await r.savePeers(new Map([['p1', { addrs: ['/memory/x'], lastSeen: 1 }]]));
    expect([...(await r.peers()).keys()]).toEqual(['p1']);
    await r.close();
    t.cleanup();
  });
});

describe('policy accept log', () => {
  it('records each accept in the savePolicy batch, keeps the last 100, and survives reopen', async () => {
    const s = await Store.open(t.path('log'), 3);
    for (let v = 1; v <= 105; v++) {
      await s.savePolicy({ envelope: new Uint8Array([v]), version: v, digest: `d${v}`, acceptedAt: v }, undefined, { version: v, digest: `d${v}`, signers: ['k1'], acceptedAt: v, source: 'control' });
    }
    // The same version accepted again (its record was lost, it came back) is its own event.
    await s.savePolicy({ envelope: new Uint8Array([105]), version: 105, digest: 'd105', acceptedAt: 200 }, undefined, { version: 105, digest: 'd105', signers: [], acceptedAt: 200, source: 'gossip', peer: 'p' });
    await s.close();
    const r = await Store.open(t.path('log'), 3);
    const log = await r.acceptLog();
    expect(log).toHaveLength(100);
    expect(log[0]!.version).toBe(7);
    expect(log.at(-1)).toEqual({ version: 105, digest: 'd105', signers: [], acceptedAt: 200, source: 'gossip', peer: 'p' });
    // savePolicy without a record (older callers) leaves the log alone.
    await r.savePolicy({ envelope: new Uint8Array([1]), version: 106, digest: 'd106', acceptedAt: 300 });
    expect(await r.acceptLog()).toHaveLength(100);
    await r.close();
    t.cleanup();
  });
});

describe('policy history keys kept in memory (one batch per accept)', () => {
  it('stay true to the disk: the same version saved again, a reset, then more accepts, and a reopen', async () => {
    const s = await Store.open(t.path('keys'), 3);
    for (const v of [1, 2, 2, 3, 4]) await s.savePolicy({ envelope: new Uint8Array([v]), version: v, digest: `d${v}`, acceptedAt: v }, undefined, { version: v, digest: `d${v}`, signers: [], acceptedAt: v, source: 'control' });
    expect((await s.policyHistory()).map((b) => b[0])).toEqual([2, 3, 4]);
    await s.resetTrust();
    expect(await s.policyHistory()).toEqual([]);
    for (const v of [7, 8, 9, 10]) await s.savePolicy({ envelope: new Uint8Array([v]), version: v, digest: `d${v}`, acceptedAt: v }, undefined, { version: v, digest: `d${v}`, signers: [], acceptedAt: v, source: 'control' });
    expect((await s.policyHistory()).map((b) => b[0])).toEqual([8, 9, 10]);
    await s.close();
    const r = await Store.open(t.path('keys'), 3);
    expect((await r.policyHistory()).map((b) => b[0])).toEqual([8, 9, 10]);
    expect((await r.acceptLog()).map((a) => a.version)).toEqual([7, 8, 9, 10]);
    await r.close();
    t.cleanup();
  });
});
