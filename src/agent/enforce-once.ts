/**
 * `picket enforce`: put the last good policy (or the baseline) into the kernel once and exit.
 * It runs before the network comes up (an early systemd unit, the container entrypoint), so a
 * host is never unfirewalled in the seconds before the agent starts. It loads the trusted state
 * exactly as the agent does (the same engine, store recovery and version floor) and fails
 * closed: whatever cannot be read, the baseline still goes in.
 */
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { formatInstant, systemClock, type Clock } from '../runtime/clock.js';
import { silentLogger, type Logger } from '../runtime/logger.js';
import { Store, StoreLockedError } from '../store/store.js';
import { loadEnvelope } from '../trust/files.js';
import { loadNodeKey } from '../trust/node-key.js';
import { trustPinnedRoot } from '../trust/verify.js';
import { Engine } from '../node/engine.js';
import { Enforcer } from '../enforce/enforcer.js';
import type { Backend } from '../enforce/backend.js';
import type { AgentConfig } from './config.js';
import { enforcerOptions, makeBackend, trustMirrorPath } from './agent.js';

export interface EnforceOutcome {
  /** A ruleset was applied (the policy or, failing closed, the baseline). */
  ok: boolean;
  /** One line for the operator: what is in force now, or why not. */
  line: string;
}

export async function enforceOnce(config: AgentConfig, deps: { clock?: Clock; log?: Logger; backend?: Backend } = {}): Promise<EnforceOutcome> {
  const clock = deps.clock ?? systemClock;
  const log = deps.log ?? silentLogger;
  const backend = deps.backend ?? makeBackend(config);
  const problems: string[] = [];
  let peerId = '';
  try {
    peerId = peerIdFromPrivateKey(loadNodeKey(config.identityKey)).toString();
  } catch (e) {
    problems.push((e as Error).message);
  }
  const enforcer = new Enforcer(enforcerOptions(config, { backend, clock, log, peerId }));
  const describe = () => {
    const st = enforcer.status;
    const what = st.policyVersion !== null ? `policy v${st.policyVersion}` : 'the baseline';
    return st.state === 'failed' ? `apply failed, nothing changed: ${st.reason ?? 'unknown reason'}` : `enforced ${what} (${st.backend}, ruleset ${st.rulesetHash?.slice(0, 12) ?? '?'})`;
  };
  const baselineOnly = async (): Promise<EnforceOutcome> => {
    await enforcer.enforce(null, clock.now());
    return { ok: enforcer.status.state !== 'failed', line: [...problems, describe()].join('; ') };
  };

  let pinned;
  try {
    pinned = trustPinnedRoot(loadEnvelope(config.trustedRoot));
  } catch (e) {
    problems.push((e as Error).message);
    return baselineOnly();
  }
  if (!('ok' in pinned)) {
    problems.push(`${config.trustedRoot}: ${pinned.outcome}: ${pinned.reason}`);
    return baselineOnly();
  }
  let store: Store;
  try {
    store = await Store.open(config.dataDir, 10, { stamp: formatInstant(clock.now()).replace(/[:.]/g, '-') });
  } catch (e) {
    // A running agent holds the store and enforces by itself: applying beside it would race it.
    if (e instanceof StoreLockedError) return { ok: false, line: `${e.message}; it enforces by itself, nothing done` };
    problems.push((e as Error).message);
    return baselineOnly();
  }
  try {
    const engine = new Engine({ store, clock, log, meshId: config.meshId, pinned: pinned.trusted, pinnedEnvelope: pinned.envelope, enforcer, mirrorPath: trustMirrorPath(config.dataDir) });
    await engine.start();
    await engine.stop();
    if (store.recovered) problems.push(`store could not be opened and was moved aside to ${store.recovered.movedTo}`);
    if (engine.startReport.policyLost) problems.push(engine.startReport.policyLost);
  } finally {
    await store.close();
  }
  return { ok: enforcer.status.state !== 'failed', line: [...problems, describe()].join('; ') };
}
