/**
 * The rollout record (the version in force across a restart) on the accept path: a version
 * without a staged rollout is enforced at once, and re-recording "the newest is in force"
 * after every accept was a store write between persist and apply that changed nothing a
 * restart does. It is written only when it says something: a version held back, a halt, or
 * the first inert record after one of those. Real engine, LevelDB store, memory backend.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/node/engine.js';
import { Store } from '../../src/store/store.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { MemoryBackend } from '../../src/enforce/backend.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/runtime/logger.js';
import { encodeEnvelope } from '../../src/trust/envelope.js';
import type { Policy } from '../../src/policy/model.js';
import { tempDir } from '../helpers/cli.js';
import { DAY, keys, NOW, PEER, policy, rootDoc, signPolicy, signRoot, trusted } from '../helpers/trust.js';

const t = tempDir('picket-rollout-record-');
const [r1, A] = keys(2) as [ReturnType<typeof keys>[0], ReturnType<typeof keys>[0]];
const root = rootDoc([r1], 1, [A], 1, 1, NOW + 365 * DAY);
const MIN = 60_000;

/** Node PEER(1) (web-1), with its store's 'rollout' writes counted. */
async function startNode(dir: string) {
  const clock = new ManualClock(NOW);
  /** Messages logged at info and above. */
  const logged: string[] = [];
  const log = createLogger({ level: 'info', pretty: false, destination: new Writable({ write(chunk: Buffer, _e, cb) { logged.push((JSON.parse(chunk.toString()) as { msg: string }).msg); cb(); } }) });
  const store = await Store.open(dir, 10);
  const writes = { rollout: 0 };
  const put = store.putJson.bind(store);
  store.putJson = (key: string, value: unknown) => { if (key === 'rollout') writes.rollout++; return put(key, value); };
  const backend = new MemoryBackend();
  const enforcer = new Enforcer({ backend, clock, log, peerId: PEER(1), meshPorts: [7946], bootstrapAddrs: [], sshFrom: [], sshPort: 22 });
  const engine = new Engine({ store, clock, log, meshId: 'prod', pinned: trusted(root, [r1]), pinnedEnvelope: signRoot(root, [r1]), enforcer, mirrorPath: `${dir}/trust-state.json`, self: PEER(1) });
  await engine.start();
  const accept = async (p: Policy) => {
    expect((await engine.offer(encodeEnvelope(signPolicy(p, [A])), { kind: 'sync', peer: PEER(2) })).outcome).toBe('accepted');
    await engine.settled();
  };
  return { engine, store, enforcer, writes, logged, accept, stop: async () => { await engine.stop(); await store.close(); } };
}

/** The version a node started again on `dir` holds, and the one it enforces. */
async function afterRestart(dir: string): Promise<{ holds: number | undefined; enforces: number | null }> {
  const m = await startNode(dir);
  await m.engine.settled();
  const seen = { holds: m.engine.current?.policy.version, enforces: m.enforcer.status.policyVersion };
  await m.stop();
  return seen;
}

/** Staged: db-1 first, web-1 (this node) ten minutes later. */
const staged = (v: number): Policy => policy(v, { rollout: { stages: [{ select: 'node:db-1' }, { select: 'any', after: 10 * MIN }] } });

describe('the rollout record on the accept path', () => {
  it('versions without a rollout, one after another: the record is written at most once, each is enforced', async () => {
    const n = await startNode(t.path('plain'));
    for (let v = 1; v <= 6; v++) {
      await n.accept(policy(v));
      expect(n.enforcer.status.policyVersion).toBe(v);
    }
    expect(n.writes.rollout).toBeLessThanOrEqual(1);
    expect(n.logged).not.toContain('rollout: enforcing the newest version'); // no rollout involved: debug
    await n.stop();
  });

  it('a held version, then one without a rollout: the held record is replaced, and a restart enforces the newest', async () => {
    const dir = t.path('held-then-plain');
    const n = await startNode(dir);
    await n.accept(policy(1));
    await n.accept(staged(2));
    expect(n.enforcer.status.policyVersion).toBe(1); // held: its stage waits ten minutes
    expect((await n.store.getJson<{ active: { envelope?: string } }>('rollout'))?.active.envelope).toBeTruthy(); // v1, held in force
    expect(n.logged).not.toContain('rollout: enforcing the newest version');
    await n.accept(policy(3));
    expect(n.enforcer.status.policyVersion).toBe(3);
    expect(n.logged).toContain('rollout: enforcing the newest version'); // the hold ended: news
    // The held record is replaced (a restart would otherwise read v1 as held in force).
    expect(await n.store.getJson('rollout')).toMatchObject({ active: { version: 3 } });
    expect((await n.store.getJson<{ active: { envelope?: string } }>('rollout'))?.active.envelope).toBeUndefined();
    await n.accept(policy(4));
    await n.stop();
    expect(await afterRestart(dir)).toEqual({ holds: 4, enforces: 4 });
  });

  it('a held version across a restart: the node still enforces the previous one (the record said so)', async () => {
    const dir = t.path('held-restart');
    const n = await startNode(dir);
    for (let v = 1; v <= 3; v++) await n.accept(policy(v)); // inert records, mostly not written
    await n.accept(staged(4));
    expect(n.enforcer.status.policyVersion).toBe(3);
    await n.stop();
    expect(await afterRestart(dir)).toEqual({ holds: 4, enforces: 3 });
  });
});
