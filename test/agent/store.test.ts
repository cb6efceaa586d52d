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
