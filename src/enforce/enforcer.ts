/**
 * Turns "the policy this node holds" into "the ruleset in force": compile (pure), then
 * hand the complete ruleset to the backend. Build, then swap: if compiling or applying
 * fails, the previous ruleset stays and the state says `failed` with the reason.
 * A node without a policy, or whose policy expired with onExpiry: baseline, or that is not
 * listed in its policy, enforces the baseline — never "open".
 */
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { compile, compileBaseline, revokedAddresses, rulesetHash, type NodeRuleset } from '../policy/compile.js';
import { findNode, type Policy } from '../policy/model.js';
import type { Backend } from './backend.js';

export type EnforcementState = 'ok' | 'baseline' | 'failed' | 'drift-repaired' | 'pending';

export interface EnforcementStatus {
  backend: string;
  state: EnforcementState;
  rulesetHash: string | null;
  lastApplyAt: number | null;
  policyVersion: number | null;
  reason?: string;
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
}

export class Enforcer {
  #opts: EnforcerOptions;
  #status: EnforcementStatus;
  #current: NodeRuleset | null = null;
  #previousPolicy: Policy | null = null;
  #blocked = new Set<string>();

  constructor(opts: EnforcerOptions) {
    this.#opts = opts;
    this.#status = { backend: opts.backend.name, state: 'pending', rulesetHash: null, lastApplyAt: null, policyVersion: null };
  }

  get status(): EnforcementStatus {
    return { ...this.#status };
  }

  get ruleset(): NodeRuleset | null {
    return this.#current;
  }

  get backend(): Backend {
    return this.#opts.backend;
  }

  /** Failsafe sources can change on SIGHUP; takes effect at the next enforce(). */
  setFailsafe(sshFrom: string[], sshPort: number): void {
    this.#opts = { ...this.#opts, sshFrom, sshPort };
  }

  /** Compiles what this node should enforce under `policy` at `now`. Pure apart from the blocked-set memory. */
  plan(policy: Policy | null, now: number): { rs: NodeRuleset; state: EnforcementState; reason?: string } {
    const o = this.#opts;
    const base = { now, meshPorts: o.meshPorts, sshFrom: o.sshFrom, sshPort: o.sshPort };
    if (!policy) return { rs: compileBaseline({ ...base, meshPeers: o.bootstrapAddrs }), state: 'baseline', reason: 'no policy yet' };
    if (policy.expires <= now && policy.settings.onExpiry === 'baseline') {
      return { rs: compileBaseline({ ...base, meshPeers: o.bootstrapAddrs }), state: 'baseline', reason: `policy v${policy.version} expired (onExpiry: baseline)` };
    }
    if (!findNode(policy, o.peerId)) {
      const peers = policy.nodes.flatMap((n) => n.addresses);
      return { rs: compileBaseline({ ...base, meshPeers: peers }), state: 'baseline', reason: `this node is not listed in policy v${policy.version}` };
    }
    // Addresses of nodes removed since the previous policy stay blocked until they come back.
    const still = new Set(policy.nodes.flatMap((n) => n.addresses));
    for (const a of revokedAddresses(this.#previousPolicy ?? undefined, policy)) this.#blocked.add(a);
    for (const a of [...this.#blocked]) if (still.has(a)) this.#blocked.delete(a);
    return { rs: compile(policy, o.peerId, { ...base, blocked: [...this.#blocked] }), state: 'ok' };
  }

  async enforce(policy: Policy | null, now: number): Promise<EnforcementStatus> {
    const o = this.#opts;
    let planned: ReturnType<Enforcer['plan']>;
    try {
      planned = this.plan(policy, now);
    } catch (e) {
      return this.#fail(`compile failed: ${(e as Error).message}`, policy);
    }
    const hash = rulesetHash(planned.rs);
    const t0 = o.clock.monotonic();
    try {
      await o.backend.apply(planned.rs);
    } catch (e) {
      return this.#fail(`apply failed: ${(e as Error).message}`, policy);
    }
    this.#current = planned.rs;
    if (policy) this.#previousPolicy = policy;
    this.#status = {
      backend: o.backend.name,
      state: planned.state,
      rulesetHash: hash,
      lastApplyAt: o.clock.now(),
      policyVersion: policy?.version ?? null,
      ...(planned.reason ? { reason: planned.reason } : {}),
    };
    o.log.info({ version: policy?.version ?? null, state: planned.state, rulesetHash: hash.slice(0, 16), rules: planned.rs.rules.length, ms: Math.round(o.clock.monotonic() - t0) }, 'ruleset applied');
    return this.status;
  }

  #fail(reason: string, policy: Policy | null): EnforcementStatus {
    // The previous ruleset is still in force: keep its hash, say why the new one is not.
    this.#status = { ...this.#status, state: 'failed', reason, policyVersion: this.#status.policyVersion };
    this.#opts.log.error({ version: policy?.version ?? null, reason }, 'enforcement failed; previous ruleset kept');
    return this.status;
  }
}
