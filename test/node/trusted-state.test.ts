/**
 * Attacks on the node's trusted state across its whole life: restarts, expired roots, damaged
 * and lost stores. Each test is named after the attack (go-tuf style) and runs the real engine
 * with a real LevelDB store and the real enforcer (memory backend), on a manual clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { Level } from 'level';
import { Engine } from '../../src/node/engine.js';
import { Store } from '../../src/store/store.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { MemoryBackend } from '../../src/enforce/backend.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { encodeEnvelope, type Envelope } from '../../src/trust/envelope.js';
import { decodeTrust } from '../../src/node/trusted-state.js';
import { tempDir } from '../helpers/cli.js';
import { DAY, keys, NOW, PEER, policy, rootDoc, signPolicy, signRoot, trusted } from '../helpers/trust.js';

const t = tempDir('picket-trust-state-');
afterEach(() => undefined);

// Root v1: root keys r1,r2 (2-of-2), policy key A. Root v2: same root keys, policy key B (A rotated out).
const [r1, r2, A, B, C] = keys(5) as [ReturnType<typeof keys>[0], ReturnType<typeof keys>[0], ReturnType<typeof keys>[0], ReturnType<typeof keys>[0], ReturnType<typeof keys>[0]];
const root1 = rootDoc([r1, r2], 2, [A], 1, 1, NOW + 365 * DAY);
const pinned = trusted(root1, [r1, r2]);
const pinnedEnv = signRoot(root1, [r1, r2]);
const root2Expiring = rootDoc([r1, r2], 2, [B], 1, 2, NOW + 10 * DAY);
const root2Env = signRoot(root2Expiring, [r1, r2]);

interface Node {
  engine: Engine;
  store: Store;
  backend: MemoryBackend;
  clock: ManualClock;
  dir: string;
}

let seq = 0;

async function startNode(dir: string, at: number, opts: { storeRecover?: boolean } = {}): Promise<Node> {
  const clock = new ManualClock(at);
  const store = await Store.open(dir, 10, opts.storeRecover ? { stamp: `t${++seq}` } : undefined);
  const backend = new MemoryBackend();
  const enforcer = new Enforcer({ backend, clock, log: silentLogger, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: [], sshPort: 22 });
  const engine = new Engine({ store, clock, log: silentLogger, meshId: 'prod', pinned, pinnedEnvelope: pinnedEnv, enforcer, mirrorPath: `${dir}/trust-state.json` });
  await engine.start();
  return { engine, store, backend, clock, dir };
}

async function stopNode(n: Node): Promise<void> {
  await n.engine.stop();
  await n.store.close();
}

const offer = (n: Node, env: Envelope, peer = PEER(2)) => n.engine.offer(encodeEnvelope(env), { kind: 'sync', peer });

/** v3 under root v1 (key A), then root v2 (key B), then v4 under v2. */
async function rotatedNode(name: string): Promise<Node> {
  const n = await startNode(t.path(name), NOW);
  expect((await offer(n, signPolicy(policy(3), [A]))).outcome).toBe('accepted');
  expect((await offer(n, root2Env)).outcome).toBe('accepted');
  expect((await offer(n, signPolicy(policy(4), [B]))).outcome).toBe('accepted');
  await n.engine.enforceNow();
  return n;
}

describe('trusted state: restart after the root expired', () => {
  it('keeps root v2 and policy v4 after a restart past root v2\'s expiry (no downgrade to the pinned root)', async () => {
    const n = await rotatedNode('downgrade');
    await stopNode(n);
    const later = NOW + 30 * DAY; // root v2 expired 20 days ago
    const m = await startNode(n.dir, later);
    expect(m.engine.root.root.version).toBe(2);
    expect(m.engine.current?.policy.version).toBe(4);
    expect(m.engine.rootExpired()).toBe(true);
    expect(m.backend.current?.policy?.version ?? null).toBe(4);
    await stopNode(m);
  });

  it('refuses a replay of old v3 and a new v100 signed only by the rotated-out key A after that restart', async () => {
    const n = await rotatedNode('replay');
    await stopNode(n);
    const m = await startNode(n.dir, NOW + 30 * DAY);
    const v3 = await offer(m, signPolicy(policy(3), [A]));
    expect(v3.outcome).not.toBe('accepted');
    const v100 = await offer(m, signPolicy(policy(100, { expires: NOW + 300 * DAY }), [A]));
    expect(v100.outcome).not.toBe('accepted');
    expect(m.engine.current?.policy.version).toBe(4);
    await stopNode(m);
  });

  it('refuses every new policy while the newest root is expired (root-expired) but keeps enforcing the last good one', async () => {
    const n = await rotatedNode('root-expired');
    n.clock.advance(11 * DAY);
    const r = await offer(n, signPolicy(policy(5, { expires: NOW + 60 * DAY }), [B]));
    expect(r.outcome).toBe('root-expired');
    expect(n.engine.current?.policy.version).toBe(4);
    expect(n.backend.current?.policy?.version ?? null).toBe(4);
    // A newer root, signed by the expired root's keys, ends it.
    const root3 = rootDoc([r1, r2], 2, [B], 1, 3, NOW + 400 * DAY);
    expect((await offer(n, signRoot(root3, [r1, r2]))).outcome).toBe('accepted');
    expect((await offer(n, signPolicy(policy(5, { expires: NOW + 60 * DAY }), [B]))).outcome).toBe('accepted');
    await stopNode(n);
  });

  it('accepts root v3 signed by the expired root v2\'s keys, and walks through an expired intermediate root', async () => {
    // A node that was offline across root v2's whole life: it sees v2 (expired) then v3.
    const n = await startNode(t.path('offline-walk'), NOW + 30 * DAY);
    const root3 = rootDoc([r1, C], 2, [B], 1, 3, NOW + 400 * DAY);
    expect((await offer(n, root2Env)).outcome).toBe('accepted');
    expect((await offer(n, signRoot(root3, [r1, r2, C]))).outcome).toBe('accepted');
    expect(n.engine.root.root.version).toBe(3);
    expect(n.engine.rootExpired()).toBe(false);
    await stopNode(n);
  });
});

describe('trusted state: the version floor survives loss', () => {
  it('a corrupted policy record keeps the floor: baseline is enforced, v3 stays refused, v4 itself is restored by sync', async () => {
    const n = await rotatedNode('corrupt-policy');
    await stopNode(n);
    const db = new Level<string, string>(`${n.dir}/state`);
    await db.put('policy/meta', '{not json');
    await db.close();
    const m = await startNode(n.dir, NOW + DAY);
    expect(m.engine.current).toBeNull();
    expect(m.engine.floor?.version).toBe(4);
    expect(m.engine.startReport.policyLost).toBeTruthy();
    expect(m.backend.current?.policy?.version ?? null).toBeNull(); // the baseline, never open
    expect((await offer(m, signPolicy(policy(3), [A]))).outcome).not.toBe('accepted');
    expect((await offer(m, signPolicy(policy(4), [B]))).outcome).toBe('accepted');
    expect(m.engine.current?.policy.version).toBe(4);
    // A different v4 is still an equivocation, not a restore.
    expect((await offer(m, signPolicy(policy(4, { expires: NOW + 31 * DAY }), [B]))).outcome).toBe('equivocation');
    await stopNode(m);
  });

  it('a lost store keeps the floor, the root chain and the blocked set from the mirror file', async () => {
    const n = await rotatedNode('lost-store');
    // v5 removes db-1: its address lands in the blocked set.
    const v5 = policy(5, { nodes: [policy(5).nodes[0]!], rules: [policy(5).rules[0]!] });
    expect((await offer(n, signPolicy(v5, [B]))).outcome).toBe('accepted');
    await n.engine.enforceNow();
    expect(n.engine.floor?.version).toBe(5);
    await stopNode(n);
    rmSync(`${n.dir}/state`, { recursive: true });
    const m = await startNode(n.dir, NOW + DAY);
    expect(m.engine.root.root.version).toBe(2);
    expect(m.engine.floor?.version).toBe(5);
    expect(m.engine.current).toBeNull();
    expect((await offer(m, signPolicy(policy(4), [B]))).outcome).toBe('stale');
    expect((await offer(m, signPolicy(policy(100), [A]))).outcome).not.toBe('accepted');
    const rec = decodeTrust((await m.store.trust())!);
    expect(rec.ok && rec.record.blocked).toContain('10.0.2.7');
    await stopNode(m);
  });

  it('a lost mirror file is rewritten from the store at start', async () => {
    const n = await rotatedNode('lost-mirror');
    await stopNode(n);
    rmSync(`${n.dir}/trust-state.json`);
    const m = await startNode(n.dir, NOW + DAY);
    expect(m.engine.floor?.version).toBe(4);
    expect(existsSync(`${n.dir}/trust-state.json`)).toBe(true);
    await stopNode(m);
  });

  it('a damaged mirror file is not trusted and does not lower anything', async () => {
    const n = await rotatedNode('damaged-mirror');
    await stopNode(n);
    writeFileSync(`${n.dir}/trust-state.json`, JSON.stringify({ format: 1, meshId: 'prod', roots: [], root: { version: 1, digest: 'x', expires: 0 }, policy: { version: 1, digest: 'y' }, blocked: [], seq: 999 }));
    const m = await startNode(n.dir, NOW + DAY);
    expect(m.engine.floor?.version).toBe(4);
    expect(m.engine.root.root.version).toBe(2);
    expect(m.engine.startReport.lostCopies).toEqual(['mirror']);
    await stopNode(m);
  });

  it('a store that cannot be opened (garbage CURRENT) is moved aside; the node starts from the mirror and enforces the baseline', async () => {
    const n = await rotatedNode('garbage-current');
    await stopNode(n);
    writeFileSync(`${n.dir}/state/CURRENT`, 'garbage\n');
    await expect(Store.open(n.dir)).rejects.toThrow(/cannot open the store/);
    const m = await startNode(n.dir, NOW + DAY, { storeRecover: true });
    expect(m.store.recovered?.movedTo).toMatch(/state\.corrupt-/);
    expect(existsSync(m.store.recovered!.movedTo)).toBe(true);
    expect(m.engine.floor?.version).toBe(4);
    expect(m.engine.root.root.version).toBe(2);
    expect(m.backend.current).not.toBeNull(); // a ruleset (the baseline) is in force
    expect((await offer(m, signPolicy(policy(3), [A]))).outcome).not.toBe('accepted');
    expect((await offer(m, signPolicy(policy(4), [B]))).outcome).toBe('accepted');
    await stopNode(m);
  });
});

describe('trusted state: rotation that changes the policy keys', () => {
  it('keeps enforcing v3 (signed under superseded root v1) after a restart before the new policy arrives, and does not blame a peer that syncs it', async () => {
    const n = await startNode(t.path('rotation-restart'), NOW);
    expect((await offer(n, signPolicy(policy(3), [A]))).outcome).toBe('accepted');
    expect((await offer(n, root2Env)).outcome).toBe('accepted');
    await stopNode(n);
    const m = await startNode(n.dir, NOW + DAY);
    expect(m.engine.current?.policy.version).toBe(3);
    expect(m.backend.current?.policy?.version ?? null).toBe(3);
    const r = await offer(m, signPolicy(policy(3), [A]));
    expect(['duplicate', 'stale-root-signature']).toContain(r.outcome);
    expect((await offer(m, signPolicy(policy(4), [B]))).outcome).toBe('accepted');
    await stopNode(m);
  });

  it('names a new policy signed under the superseded root stale-root-signature, not a forgery', async () => {
    const n = await startNode(t.path('stale-root'), NOW);
    expect((await offer(n, root2Env)).outcome).toBe('accepted');
    const r = await n.engine.offer(encodeEnvelope(signPolicy(policy(7), [A])), { kind: 'control' });
    expect(r.outcome).toBe('stale-root-signature');
    expect((await offer(n, signPolicy(policy(7), [C]))).outcome).toBe('below-threshold');
    await stopNode(n);
  });
});
