/**
 * The central-store baseline's agent: one process per node running the product's own node
 * state machine (src/node/engine.ts: verify, persist with its fsynced trust mirror, compile,
 * the lock-out guard, apply to the memory backend, read back, log "ruleset applied"), fed by
 * an etcd watch instead of the mesh. Each one is what a "central store + agents" design runs
 * on every host; bench/etcd.ts starts N of them beside N mesh agents' numbers, so the ratio
 * compares the transports with the same per-node work. Logs JSON lines (pino) to stdout,
 * then "watching" once etcd confirmed the watch. It stops when its watch ends, on SIGTERM, or
 * when its stdin (a pipe from the benchmark) closes.
 *   node --import tsx bench/etcd-agent.ts --data DIR --root FILE --peer PEERID --etcd URL --key KEY
 */
import '../src/runtime/polyfill.js';
import { mkdirSync } from 'node:fs';
import { Engine } from '../src/node/engine.js';
import { Enforcer } from '../src/enforce/enforcer.js';
import { MemoryBackend } from '../src/enforce/backend.js';
import { Store } from '../src/store/store.js';
import { systemClock } from '../src/runtime/clock.js';
import { createLogger } from '../src/runtime/logger.js';
import { trustPinnedRoot } from '../src/trust/verify.js';
import { loadEnvelope } from '../src/trust/files.js';
import { enforcerOptions, trustMirrorPath } from '../src/agent/agent.js';
import { buildConfig } from '../src/agent/config.js';
import { argValue } from './stats.js';
import { watchKey } from './etcd-watch.js';

const dataDir = argValue('--data', ''), root = argValue('--root', ''), peerId = argValue('--peer', '');
const base = argValue('--etcd', ''), key = argValue('--key', '');
if (!dataDir || !root || !peerId || !base || !key) {
  console.error('usage: etcd-agent --data DIR --root FILE --peer PEERID --etcd URL --key KEY');
  process.exit(2);
}
mkdirSync(dataDir, { recursive: true });
// The agent's defaults, as bench/procs.ts configures its agents (memory backend, no listen address).
const config = buildConfig({ meshId: 'test', dataDir, trustedRoot: root, enforcement: { backend: 'memory' }, alerts: [], log: { level: 'info', pretty: false } }, dataDir);
const log = createLogger({ level: 'info', pretty: false }).child({ meshId: config.meshId, peerId });
const pinned = trustPinnedRoot(loadEnvelope(root));
if (!('ok' in pinned)) { console.error(`trustedRoot: ${pinned.reason}`); process.exit(1); }
const store = await Store.open(dataDir, 10);
const enforcer = new Enforcer(enforcerOptions(config, { backend: new MemoryBackend(), clock: systemClock, log, peerId }));
const engine = new Engine({ store, clock: systemClock, log, meshId: config.meshId, pinned: pinned.trusted, pinnedEnvelope: pinned.envelope, enforcer, mirrorPath: trustMirrorPath(dataDir), self: peerId });
await engine.start();
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  watch.abort();
  await engine.stop();
  await store.close();
  process.exit(0);
};
const watch = watchKey(base, key, async (value) => {
  const r = await engine.offer(value, { kind: 'control' });
  if (r.outcome !== 'accepted') log.warn({ outcome: r.outcome }, 'etcd value refused');
}, () => log.info('watching'), () => void stop());
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
// The benchmark holds our stdin: when it goes away, however it ended, so do we.
process.stdin.on('end', () => void stop()).resume();
