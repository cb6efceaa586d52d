/**
 * Turns "the policy this node holds" into "the ruleset in force": compile (pure), check
 * (lock-out guard), then hand the complete ruleset to the backend. Build, then swap: if
 * compiling, checking or applying fails, the previous ruleset stays and the state says
 * `failed` with the reason. A node without a policy, whose policy expired with
 * onExpiry: baseline, or that is not listed in its policy (state `revoked`), enforces the
 * baseline — never "open". After each apply the ruleset is read back; drift is repaired and reported.
 */
import { EventEmitter } from 'node:events';
import type { Clock, Timer } from '../runtime/clock.js';
import { crashpoint } from '../runtime/faults.js';
import type { Logger } from '../runtime/logger.js';
import { compile, compileBaseline, exemptFromRevocation, type DropLogging, lockoutProblem, revokedAddresses, rulesetHash, type NodeRuleset } from '../policy/compile.js';
import { formatPrefix, parsePrefix } from '../policy/ip.js';
import { compiledSize, overBudget, rulesetSize } from '../policy/budget.js';
import { findNode, staleAt, type Policy } from '../policy/model.js';
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
  /**
   * Addresses or CIDRs that may reach the mesh port under the baseline (no policy yet, or
   * onExpiry: baseline): the agent's mesh.allowFrom, by default the bootstrap peers and the
   * host's own subnets. A held policy replaces them with its nodes' addresses.
   */
  bootstrapAddrs: string[];
  sshFrom: string[];
  sshPort: number;
  /** Window after a narrowing apply in which losing every peer restores mesh allowances. */
  confirmWindow?: number;
  /**
   * How long after losing every peer (inside the confirm window) the guard waits for one to
   * come back before it acts. A restarting peer is back within seconds; without the wait the
   * restart of the only peer of a two-node mesh looked exactly like a lock-out. 0 acts at once.
   */
  lostGrace?: number;
  /** Addresses still blocked from before a restart (persisted by the agent). */
  blocked?: string[];
  /** Kernel logging of drops (agent config enforcement.logDrops); absent: would-drops only. */
  dropLog?: DropLogging;
}

/** Long enough for a restarted agent to be dialled back (systemd restarts it after 2 s). */
export const DEFAULT_LOST_GRACE = 30_000;

const canonical = (a: string): string => {
  const p = parsePrefix(a);
  return p.ok ? formatPrefix(p.prefix) : a;
};

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
  /** Every peer was lost inside the confirm window: the check that runs unless one returns. */
  #pendingLoss: { timer: Timer; policy: Policy | null; confirm: { until: number; previousMesh: string[] } } | null = null;
  /** Enforcer work runs one at a time: the engine's calls and the guard's own timer. */
  #serial: Promise<unknown> = Promise.resolve();
  #stopped = false;

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

  /** When the ruleset next changes by itself: an exception ends, or the policy turns stale. */
  get nextChangeAt(): number | undefined {
    const p = this.#lastPolicy;
    const stale = p && this.#status.state === 'ok' && p.settings.onExpiry === 'baseline' ? staleAt(p) : undefined;
    const times = [this.#current?.nextChangeAt, stale].filter((t): t is number => t !== undefined);
    return times.length ? Math.min(...times) : undefined;
  }

  restoreBlocked(addresses: readonly string[]): void {
    for (const a of addresses) this.#blocked.add(canonical(a));
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

  /**
   * What SIGHUP may change besides the failsafe; takes effect at the next enforce(). A new
   * backend starts from nothing known about what is in force (no read-back to compare yet).
   */
  reconfigure(o: Partial<Pick<EnforcerOptions, 'backend' | 'bootstrapAddrs' | 'confirmWindow' | 'lostGrace' | 'dropLog'>>): void {
    if (o.backend && o.backend !== this.#opts.backend) {
      this.#applied = null;
      this.#opts.backend.close?.();
    }
    this.#opts = { ...this.#opts, ...o };
  }

  /** The run-time settings in force (what reconfigure() and setFailsafe() change). */
  get settings(): Readonly<Pick<EnforcerOptions, 'bootstrapAddrs' | 'confirmWindow' | 'lostGrace' | 'sshFrom' | 'sshPort'>> {
    const o = this.#opts;
    return { bootstrapAddrs: o.bootstrapAddrs, confirmWindow: o.confirmWindow, lostGrace: o.lostGrace, sshFrom: o.sshFrom, sshPort: o.sshPort };
  }

  /** Compiles what this node should enforce under `policy` at `now`. */
  plan(policy: Policy | null, now: number): { rs: NodeRuleset; state: EnforcementState; reason?: string; blocked?: string[] } {
    const o = this.#opts;
    const base = { now, meshPorts: o.meshPorts, sshFrom: o.sshFrom, sshPort: o.sshPort, ...(o.dropLog ? { log: o.dropLog } : {}) };
    if (!policy) return { rs: compileBaseline({ ...base, meshPeers: o.bootstrapAddrs }), state: 'baseline', reason: 'no policy yet' };
    if (policy.expires <= now && policy.settings.onExpiry === 'baseline') {
      return { rs: compileBaseline({ ...base, meshPeers: o.bootstrapAddrs }), state: 'baseline', reason: `policy v${policy.version} expired (onExpiry: baseline)` };
    }
    const stale = staleAt(policy);
    if (stale !== undefined && stale <= now && policy.settings.onExpiry === 'baseline') {
      return { rs: compileBaseline({ ...base, meshPeers: o.bootstrapAddrs }), state: 'baseline', reason: `policy v${policy.version} is stale: issued more than settings.maxAge ago (onExpiry: baseline)` };
    }
    if (!findNode(policy, o.peerId)) {
      const peers = policy.nodes.flatMap((n) => n.addresses);
      return { rs: compileBaseline({ ...base, meshPeers: peers }), state: 'revoked', reason: `this node is not listed in policy v${policy.version} (removed from the fleet)` };
    }
    // Addresses of nodes removed since the previous policy stay blocked until they come back.
    const blocked = new Set(this.#blocked);
    // Only a new version can remove nodes; re-enforcing the same one keeps what is blocked.
    if (policy !== this.#lastPolicy) for (const a of revokedAddresses(this.#lastPolicy ?? undefined, policy)) blocked.add(canonical(a));
    if (blocked.size) {
      // Listed again: no longer blocked. (Nothing blocked, the usual case: no address to parse.)
      const still = new Set(policy.nodes.flatMap((n) => n.addresses).map(canonical));
      for (const a of [...blocked]) if (still.has(a)) blocked.delete(a);
    }
    // `blocked` is the memory (every revoked address not listed again); the compiled set
    // leaves out exact failsafe hosts only. The lock-out guard's meshExtra never re-admits one.
    return { rs: compile(policy, o.peerId, { ...base, blocked: [...blocked], meshExtra: this.#meshExtra }), state: 'ok', blocked: [...blocked] };
  }

  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#serial.then(fn);
    this.#serial = next.catch(() => undefined);
    return next;
  }

  enforce(policy: Policy | null, now: number): Promise<EnforcementStatus> {
    return this.#serialize(() => this.#enforce(policy, now));
  }

  async #enforce(policy: Policy | null, now: number): Promise<EnforcementStatus> {
    const o = this.#opts;
    if (policy !== this.#lastPolicy) this.#meshExtra = []; // a new policy gets its own confirm window
    let planned: ReturnType<Enforcer['plan']>;
    // Verification bounds what a policy compiles to, but a policy persisted by an older agent
    // never went through that check: bound it here too, before compiling (cheap, no expansion)
    // and after (what this node really holds). Over budget is a failed apply, never a crash.
    const before = policy ? overBudget(compiledSize(policy)) : undefined;
    if (before) return this.#refuse(`policy v${policy!.version} ${before}`, policy, now);
    try {
      planned = this.plan(policy, now);
    } catch (e) {
      return this.#refuse(`compile failed: ${(e as Error).message}`, policy, now);
    }
    const after = overBudget(rulesetSize(planned.rs));
    if (after) return this.#refuse(`the ruleset ${after}`, policy, now);
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
    // Removed nodes stay blocked across versions until they are listed again (the baseline
    // blocks nothing and forgets nothing). Exempt failsafe hosts are remembered too: taking
    // one out of the failsafe blocks it at the next enforce.
    if (planned.state === 'ok' && planned.blocked) {
      const newly = planned.blocked.filter((a) => !this.#blocked.has(a));
      this.#blocked = new Set(planned.blocked);
      const exempt = exemptFromRevocation(newly, o.sshFrom);
      if (exempt.length) o.log.warn({ addresses: exempt }, 'removed nodes keep access: their addresses are exact failsafe hosts (enforcement.failsafe.sshFrom)');
    }
    if (policy) this.#lastPolicy = policy;
    const nowMesh = new Set(meshSet(planned.rs));
    const narrowed = previousMesh.filter((a) => !nowMesh.has(a));
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
  checkDrift(): Promise<string | null> {
    return this.#serialize(() => this.#checkDrift());
  }

  async #checkDrift(): Promise<string | null> {
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
   * mesh sources, this may be a lock-out — or only a peer restarting (in a two-node mesh, the
   * only peer's restart loses "every" peer). So the guard waits `lostGrace` for a peer to come
   * back (peerConnected) and acts only if none did: it then restores the previous mesh
   * allowances (only those: ports the policy closed stay closed, revoked addresses stay
   * blocked) and reports it, as `commit confirmed` does on routers. Resolves true when it
   * restored at once (no grace).
   */
  async onAllPeersLost(policy: Policy | null): Promise<boolean> {
    const c = this.#confirm;
    const now = this.#opts.clock.now();
    if (!c || now > c.until || this.#stopped) return false;
    const grace = this.#opts.lostGrace ?? DEFAULT_LOST_GRACE;
    if (grace <= 0) return this.#serialize(() => this.#restoreMesh(c, policy));
    if (this.#pendingLoss) return false; // already waiting: the first loss sets the deadline
    this.#opts.log.warn({ graceMs: grace }, 'lost every mesh peer inside the confirm window; waiting for peers to return before acting');
    const timer = this.#opts.clock.setTimeout(() => {
      const p = this.#pendingLoss;
      this.#pendingLoss = null;
      if (p && !this.#stopped) void this.#serialize(() => this.#restoreMesh(p.confirm, p.policy));
    }, grace);
    this.#pendingLoss = { timer, policy, confirm: c };
    return false;
  }

  /** Every peer is gone inside a confirm window and the guard is waiting for one to return. */
  get lockoutPending(): boolean {
    return this.#pendingLoss !== null;
  }

  /** A mesh peer is connected again: whatever took the peers away, the mesh port is reachable. */
  peerConnected(): void {
    if (!this.#pendingLoss) return;
    this.#pendingLoss.timer.cancel();
    this.#pendingLoss = null;
    this.#opts.log.info('a mesh peer came back inside the grace window; the lock-out guard does not act');
  }

  /** Cancels the guard's pending check (agent shutdown): nothing is applied after stop. */
  stop(): void {
    this.#stopped = true;
    this.#opts.backend.close?.();
    this.#pendingLoss?.timer.cancel();
    this.#pendingLoss = null;
  }

  async #restoreMesh(c: { until: number; previousMesh: string[] }, policy: Policy | null): Promise<boolean> {
    // A policy applied since the loss has its own confirm window: this check is superseded.
    if (this.#stopped || (policy !== null && policy !== this.#lastPolicy)) return false;
    if (this.#confirm === null && this.#meshExtra.length) return false; // already restored
    this.#confirm = null;
    // Revoked addresses are never restored: a peer that cut our links must not get back in.
    this.#meshExtra = c.previousMesh.filter((a) => !this.#blocked.has(a));
    const reason = `lost every mesh peer within the confirm window after narrowing mesh access, and none returned; restored ${this.#meshExtra.length} previous mesh sources`;
    this.#opts.log.error({ reason }, 'lock-out guard: reverting mesh allowances');
    await this.#enforce(policy, this.#opts.clock.now());
    this.#status = { ...this.#status, reason };
    this.emit('lockout', reason);
    return true;
  }

  /**
   * A policy that cannot be compiled or is over budget: the previous ruleset stays. When
   * nothing is in force yet (a restart holding such a policy), the baseline goes in first,
   * its mesh port open to the policy's nodes so a corrected policy can still arrive: a
   * node never runs no ruleset, and never crash-loops before its mesh opens.
   */
  async #refuse(reason: string, policy: Policy | null, now: number): Promise<EnforcementStatus> {
    const o = this.#opts;
    if (!this.#current) {
      const peers = [...o.bootstrapAddrs, ...(policy?.nodes.flatMap((n) => n.addresses) ?? [])];
      const rs = compileBaseline({ now, meshPorts: o.meshPorts, sshFrom: o.sshFrom, sshPort: o.sshPort, meshPeers: peers, ...(o.dropLog ? { log: o.dropLog } : {}) });
      try {
        await o.backend.apply(rs);
        this.#current = rs;
        this.#applied = await o.backend.readBack().catch(() => null);
        const reasonBaseline = 'the policy held cannot be enforced; the baseline is in force';
        this.#status = { backend: o.backend.name, state: 'baseline', rulesetHash: rulesetHash(rs), lastApplyAt: o.clock.now(), policyVersion: null, reason: reasonBaseline };
        this.#steady = { state: 'baseline', reason: reasonBaseline };
      } catch (e) {
        return this.#fail(`${reason}; the baseline could not be applied either: ${(e as Error).message}`);
      }
    }
    return this.#fail(reason);
  }

  #fail(reason: string): EnforcementStatus {
    // The previous ruleset is still in force: keep its hash, say why the new one is not.
    this.#status = { ...this.#status, state: 'failed', reason };
    this.#opts.log.error({ reason }, 'enforcement failed; previous ruleset kept');
    this.emit('failed', reason);
    return this.status;
  }
}
