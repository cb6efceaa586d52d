/**
 * Turns "the policy this node holds" into "the ruleset in force": compile (pure), check
 * (lock-out guard), then hand the complete ruleset to the backend. Build, then swap: if
 * compiling, checking or applying fails, the previous ruleset stays and the state says
 * `failed` with the reason. A node without a policy, whose policy expired with
 * onExpiry: baseline, or that is not listed in its policy (state `revoked`), enforces the
 * baseline — never "open". After each apply the ruleset is read back; drift is repaired and reported.
 */
import { EventEmitter } from 'node:events';
import type { Clock } from '../runtime/clock.js';
import { crashpoint } from '../runtime/faults.js';
import type { Logger } from '../runtime/logger.js';
import { compile, compileBaseline, lockoutProblem, revokedAddresses, rulesetHash, type NodeRuleset } from '../policy/compile.js';
import { formatPrefix } from '../policy/ip.js';
import { findNode, type Policy } from '../policy/model.js';
import { describeDrift, type Backend, type ReadBack } from './backend.js';
import type { EnforcementPort, EnforcementState, EnforcementStatus } from '../node/ports.js';

export type { EnforcementState, EnforcementStatus } from '../node/ports.js';

export interface EnforcerEvents {
  applied: [EnforcementStatus, { ms: number }];
  failed: [string];
  drift: [string];
  /** A clean read-back after a repaired drift: the state is back to what the apply left. */
  recovered: [EnforcementStatus];
  lockout: [string];
}

export interface EnforcerOptions {
  backend: Backend;
  clock: Clock;
  log: Logger;
  peerId: string;
  meshPorts: number[];
  /** IP addresses of the configured bootstrap peers (baseline mesh sources). */
  bootstrapAddrs: string[];
  sshFrom: string[];
  sshPort: number;
  /** Window after a narrowing apply in which losing every peer restores mesh allowances. */
  confirmWindow?: number;
  /** Addresses still blocked from before a restart (persisted by the agent). */
  blocked?: string[];
}

const meshSet = (rs: NodeRuleset | null) => {
  const m = rs?.sets.find((s) => s.name === 'mesh');
  return m ? [...m.v4, ...m.v6].map(formatPrefix) : [];
};

export class Enforcer extends EventEmitter<EnforcerEvents> implements EnforcementPort {
  #opts: EnforcerOptions;
  #status: EnforcementStatus;
  #current: NodeRuleset | null = null;
  #applied: ReadBack | null = null;
  #lastPolicy: Policy | null = null;
  #blocked = new Set<string>();
  #meshExtra: string[] = [];
  #confirm: { until: number; previousMesh: string[] } | null = null;
  /** The state and reason the last successful apply left: what a repaired drift returns to. */
  #steady: Pick<EnforcementStatus, 'state' | 'reason'> = { state: 'pending' };

  constructor(opts: EnforcerOptions) {
    super();
    this.#opts = opts;
    for (const a of opts.blocked ?? []) this.#blocked.add(a);
    this.#status = { backend: opts.backend.name, state: 'pending', rulesetHash: null, lastApplyAt: null, policyVersion: null };
  }

  get status(): EnforcementStatus {
    return { ...this.#status };
  }

  get ruleset(): NodeRuleset | null {
    return this.#current;
  }

  get nextChangeAt(): number | undefined {
    return this.#current?.nextChangeAt;
  }

  restoreBlocked(addresses: readonly string[]): void {
    for (const a of addresses) this.#blocked.add(a);
  }

  /** Addresses of removed nodes that stay blocked (the engine persists them across restarts). */
  get blockedAddresses(): string[] {
    return [...this.#blocked].sort();
  }

  get backend(): Backend {
    return this.#opts.backend;
  }

  /** Failsafe sources can change on SIGHUP; takes effect at the next enforce(). */
  setFailsafe(sshFrom: string[], sshPort: number): void {
    this.#opts = { ...this.#opts, sshFrom, sshPort };
  }

  /** Compiles what this node should enforce under `policy` at `now`. */
  plan(policy: Policy | null, now: number): { rs: NodeRuleset; state: EnforcementState; reason?: string } {
    const o = this.#opts;
    const base = { now, meshPorts: o.meshPorts, sshFrom: o.sshFrom, sshPort: o.sshPort };
    if (!policy) return { rs: compileBaseline({ ...base, meshPeers: o.bootstrapAddrs }), state: 'baseline', reason: 'no policy yet' };
    if (policy.expires <= now && policy.settings.onExpiry === 'baseline') {
      return { rs: compileBaseline({ ...base, meshPeers: o.bootstrapAddrs }), state: 'baseline', reason: `policy v${policy.version} expired (onExpiry: baseline)` };
    }
    if (!findNode(policy, o.peerId)) {
      const peers = policy.nodes.flatMap((n) => n.addresses);
      return { rs: compileBaseline({ ...base, meshPeers: peers }), state: 'revoked', reason: `this node is not listed in policy v${policy.version} (removed from the fleet)` };
    }
    // Addresses of nodes removed since the previous policy stay blocked until they come back.
    const blocked = new Set(this.#blocked);
    const still = new Set(policy.nodes.flatMap((n) => n.addresses));
    // Only a new version can remove nodes; re-enforcing the same one keeps what is blocked.
    if (policy !== this.#lastPolicy) for (const a of revokedAddresses(this.#lastPolicy ?? undefined, policy)) blocked.add(a);
    for (const a of [...blocked]) if (still.has(a)) blocked.delete(a);
    return { rs: compile(policy, o.peerId, { ...base, blocked: [...blocked], meshExtra: this.#meshExtra }), state: 'ok' };
  }

  async enforce(policy: Policy | null, now: number): Promise<EnforcementStatus> {
    const o = this.#opts;
    if (policy !== this.#lastPolicy) this.#meshExtra = []; // a new policy gets its own confirm window
    let planned: ReturnType<Enforcer['plan']>;
    try {
      planned = this.plan(policy, now);
    } catch (e) {
      return this.#fail(`compile failed: ${(e as Error).message}`);
    }
    const guard = lockoutProblem(planned.rs, { meshPorts: o.meshPorts, sshFrom: o.sshFrom, sshPort: o.sshPort });
    if (guard) return this.#fail(`lock-out guard refused the ruleset: ${guard}`);
    const hash = rulesetHash(planned.rs);
    const t0 = o.clock.monotonic();
    try {
      await o.backend.apply(planned.rs);
    } catch (e) {
      return this.#fail(`apply failed: ${(e as Error).message}`);
    }
    const ms = o.clock.monotonic() - t0;
    crashpoint('mid-apply'); // the kernel holds the new rules, nothing else knows yet
    const previousMesh = meshSet(this.#current);
    this.#current = planned.rs;
    // The blocked set in force is the memory: removed nodes stay blocked across versions
    // until they are listed again (the baseline blocks nothing and forgets nothing).
    if (planned.state === 'ok') this.#blocked = new Set([...planned.rs.blocked.v4, ...planned.rs.blocked.v6].map(formatPrefix));
    if (policy) this.#lastPolicy = policy;
    const narrowed = previousMesh.filter((a) => !meshSet(planned.rs).includes(a));
    this.#confirm = narrowed.length && o.confirmWindow ? { until: o.clock.now() + o.confirmWindow, previousMesh } : null;
    this.#applied = await o.backend.readBack().catch(() => null);
    this.#status = {
      backend: o.backend.name,
      state: planned.state,
      rulesetHash: hash,
      lastApplyAt: o.clock.now(),
      policyVersion: policy?.version ?? null,
      ...(planned.reason ? { reason: planned.reason } : {}),
    };
    this.#steady = { state: planned.state, ...(planned.reason ? { reason: planned.reason } : {}) };
    o.log.info({ version: policy?.version ?? null, state: planned.state, rulesetHash: hash.slice(0, 16), rules: planned.rs.rules.length, ms: Math.round(ms) }, 'ruleset applied');
    this.emit('applied', this.status, { ms });
    return this.status;
  }

  /**
   * Reads back what is in force; if it is not what we applied (a table deleted, a rule
   * edited, an element added by hand), re-applies in full and reports what differed.
   */
  async checkDrift(): Promise<string | null> {
    const o = this.#opts;
    if (!this.#current) return null;
    let actual: ReadBack | null;
    try {
      actual = await o.backend.readBack();
    } catch (e) {
      o.log.warn({ err: (e as Error).message }, 'read-back failed');
      return null;
    }
    if (actual?.hash === this.#applied?.hash) {
      // "drift-repaired" describes the last check, not a lasting condition: once a read-back
      // is clean again the node is back to what it applied (a failed state stays: the ruleset
      // it wanted is still not in force).
      if (this.#status.state === 'drift-repaired') {
        const { reason: _gone, ...rest } = this.#status;
        this.#status = { ...rest, ...this.#steady };
        o.log.info({ state: this.#status.state }, 'read-back clean after drift repair');
        this.emit('recovered', this.status);
      }
      return null;
    }
    const what = describeDrift(this.#applied, actual);
    o.log.warn({ drift: what }, 'ruleset drift detected; repairing');
    o.backend.invalidate?.();
    try {
      await o.backend.apply(this.#current);
    } catch (e) {
      this.#fail(`drift repair failed: ${(e as Error).message}`);
      return what;
    }
    this.#applied = await o.backend.readBack().catch(() => null);
    this.#status = { ...this.#status, state: 'drift-repaired', lastApplyAt: o.clock.now(), reason: what };
    this.emit('drift', what);
    return what;
  }

  /**
   * The node lost every mesh peer. Inside the confirm window of an apply that narrowed the
   * mesh sources, restore the previous mesh allowances (only those: ports the policy closed
   * stay closed) and report it, as `commit confirmed` does on routers.
   */
  async onAllPeersLost(policy: Policy | null): Promise<boolean> {
    const c = this.#confirm;
    if (!c || this.#opts.clock.now() > c.until) return false;
    this.#confirm = null;
    this.#meshExtra = c.previousMesh;
    const reason = `lost every mesh peer within the confirm window after narrowing mesh access; restored ${c.previousMesh.length} previous mesh sources`;
    this.#opts.log.error({ reason }, 'lock-out guard: reverting mesh allowances');
    await this.enforce(policy, this.#opts.clock.now());
    this.#status = { ...this.#status, reason };
    this.emit('lockout', reason);
    return true;
  }

  #fail(reason: string): EnforcementStatus {
    // The previous ruleset is still in force: keep its hash, say why the new one is not.
    this.#status = { ...this.#status, state: 'failed', reason };
    this.#opts.log.error({ reason }, 'enforcement failed; previous ruleset kept');
    this.emit('failed', reason);
    return this.status;
  }
}
