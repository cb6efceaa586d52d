/**
 * The status plane in the simulator, behind one small interface (StatusPlaneSim) so that
 * another plane (compact mergeable digests) can replace the current one without touching the
 * driver. CurrentStatusPlane runs the product's status code: signStatus, intakeStatus (the
 * auditor's validator: verifyStatus + the per-node budget), statusDelay, fleetView and
 * newerClaim, over gossipsub (modelled) on the status topic.
 */
import type { PrivateKey } from '@libp2p/interface';
import type { Clock } from '../../src/runtime/clock.js';
import { seededRandom, type Random } from '../../src/runtime/random.js';
import type { Budgets } from '../../src/mesh/budgets.js';
import type { Penalise } from '../../src/mesh/admission.js';
import { fleetView, intakeStatus, newerClaim, signStatus, statusDelay, type NodeStatus } from '../../src/audit/status.js';
import type { Verdict } from './gossipsub.js';
import type { Meter } from './net.js';

/** What one node holds and enforces, as its status reports it. */
export interface NodeState {
  policyVersion: number;
  digest: string;
  enforcement: string;
  rulesetHash: string;
  lastApplyAt: number;
}

/** What the simulator gives a status plane: the fleet, its transport, time, and each node's budgets. */
export interface StatusFleet {
  readonly n: number;
  readonly meshId: string;
  /** Node i's PeerId. */
  readonly peerIds: readonly string[];
  readonly clock: Clock;
  readonly random: Random;
  /** Status traffic only: bytes and messages per node (sent / received). */
  readonly meter: Meter;
  /** Node i's identity key (made on first use). */
  key(i: number): Promise<PrivateKey>;
  /** Node i's state now. */
  state(i: number): NodeState;
  /** Node i's real per-peer budgets (Budgets.status is the status budget). */
  budgets(i: number): Budgets;
  /** Node i strikes a peer (the mesh's penalise at that node). */
  penalise(i: number): Penalise;
  /** Gossipsub on the status topic: `validate(to, from)` runs at each node on its first copy. */
  publish(origin: number, data: Uint8Array, validate: (to: number, from: number) => Verdict | Promise<Verdict>): void;
  /** A direct message on a stream (for planes that exchange or pull): `deliver` runs at `to`. */
  send(from: number, to: number, data: Uint8Array, deliver: () => void | Promise<unknown>): void;
  /** Node i's current connections. */
  connections(i: number): ReadonlySet<number>;
}

export interface StatusPlaneSim {
  readonly name: string;
  /**
   * Messages from different origins never interact (one signed status per node): the driver
   * may then run only a sample of origins and scale per-node figures by n / sample.
   */
  readonly perOrigin: boolean;
  start(fleet: StatusFleet): void | Promise<void>;
  /** Node i's state changed (it applied a policy): the plane reacts as the agent would. */
  changed(i: number): void;
  /** How many of `origins` node i's fleet view shows at `version`. */
  seenAt(i: number, version: number, origins: readonly number[]): number;
  /** Signature verifications node i ran so far (status plane only). */
  verifications(i: number): number;
  /**
   * The operator's verified read at node i (planes whose views are hearsay until read): starts
   * it; `readDone` says when every row of `origins` verifies on `version`.
   */
  read?(i: number, origins: readonly number[]): void;
  readDone?(i: number, version: number, origins: readonly number[]): boolean;
  /** Checks at one node through the product's own reading of its view (fleet view, lag). */
  observe(i: number, origins: readonly number[]): { summary: string; lagging: boolean };
}

/** The agent's defaults (src/agent/config.ts): audit.statusInterval, audit.silentAfter. */
export const STATUS_INTERVAL = 30_000, SILENT_AFTER = 120_000;

/**
 * The auditor's periodic task: `fn` every statusInterval, jittered 0.9–1.1 with `jitter` (a
 * node's own generator, so the shared stream is the same whether or not it fires in a run).
 * The next tick is armed before `fn` runs; its promise is returned to the simulated clock.
 */
export function everyStatusInterval(clock: Clock, jitter: Random, fn: () => Promise<void>): void {
  const every = (): void => { clock.setTimeout(() => { every(); return fn(); }, STATUS_INTERVAL * (0.9 + jitter.next() * 0.2)); };
  every();
}

/** Today's plane: every node signs a full status on change and gossips it; every node verifies every one. */
export class CurrentStatusPlane implements StatusPlaneSim {
  readonly name = 'signed status per node (current)';
  readonly perOrigin = true;
  #f!: StatusFleet;
  #held: Map<string, { status: NodeStatus; receivedAt: number }>[] = [];
  #verifications!: Uint32Array;
  #seq!: Float64Array;
  #pending!: Uint8Array;
  #periodic!: Uint8Array;
  #jitter!: Random;

  start(fleet: StatusFleet): void {
    this.#f = fleet;
    this.#held = Array.from({ length: fleet.n }, () => new Map());
    this.#verifications = new Uint32Array(fleet.n);
    this.#seq = new Float64Array(fleet.n);
    this.#pending = new Uint8Array(fleet.n);
    this.#periodic = new Uint8Array(fleet.n);
    this.#jitter = seededRandom(fleet.n);
  }

  changed(i: number): void {
    const f = this.#f;
    if (!this.#periodic[i]) {
      // The auditor's periodic status (every statusInterval, jittered 0.9–1.1), from the node's
      // first change on; its own generator, so the shared stream (and every other figure) is
      // the same whether or not it ever fires within a run.
      this.#periodic[i] = 1;
      everyStatusInterval(f.clock, this.#jitter, () => this.#publish(i));
    }
    if (this.#pending[i]) return; // the auditor's #soon(): one publish per burst of changes
    this.#pending[i] = 1;
    // The simulated clock awaits a task's promise: return it, never `void` it.
    f.clock.setTimeout(() => {
      this.#pending[i] = 0;
      return this.#publish(i);
    }, statusDelay(f.random.next()));
  }

  async #publish(i: number): Promise<void> {
    const f = this.#f;
    const st = f.state(i);
    const now = f.clock.now();
    this.#seq[i] = Math.max(this.#seq[i]! + 1, now);
    const status: NodeStatus = {
      meshId: f.meshId, peerId: f.peerIds[i]!, policyVersion: st.policyVersion, digest: st.digest, rulesetHash: st.rulesetHash,
      enforcement: st.enforcement, lastApplyAt: st.lastApplyAt, alerts: [], seq: this.#seq[i]!, time: now, findings: [],
    };
    this.#held[i]!.set(status.peerId, { status, receivedAt: now });
    const bytes = await signStatus(status, await f.key(i));
    f.publish(i, bytes, (to, from) => this.#receive(to, from, bytes));
  }

  async #receive(to: number, from: number, bytes: Uint8Array): Promise<Verdict> {
    const f = this.#f;
    const held = this.#held[to]!;
    const fromId = f.peerIds[from]!;
    this.#verifications[to]!++;
    const v = await intakeStatus(bytes, f.meshId, f.peerIds[to]!, (p) => this.#members.has(p), held, (origin) => f.budgets(to).status(origin, fromId).ok);
    if (v.verdict === 'reject') f.penalise(to)(fromId, 'invalid-status', 'invalid status');
    if (v.verdict !== 'accept') return v.verdict === 'reject' ? 'reject' : 'ignore';
    held.set(v.status.peerId, { status: v.status, receivedAt: f.clock.now() });
    return 'accept';
  }

  get #members(): Set<string> {
    return (this.#memberSet ??= new Set(this.#f.peerIds));
  }
  #memberSet: Set<string> | undefined;

  seenAt(i: number, version: number, origins: readonly number[]): number {
    const held = this.#held[i]!;
    let c = 0;
    for (const o of origins) if (held.get(this.#f.peerIds[o]!)?.status.policyVersion === version) c++;
    return c;
  }

  verifications(i: number): number {
    return this.#verifications[i]!;
  }

  observe(i: number, origins: readonly number[]): { summary: string; lagging: boolean } {
    const f = this.#f;
    const nodes = origins.map((o) => ({ peerId: f.peerIds[o]!, name: `n${o}` }));
    const view = fleetView(nodes, this.#held[i]!, f.clock.now(), SILENT_AFTER);
    const claim = newerClaim(f.state(i).policyVersion, this.#held[i]!, nodes.map((n) => n.peerId), f.peerIds[i]!);
    return { summary: view.summary, lagging: claim !== null };
  }
}
