/**
 * The chaos harness: a Cluster of real agents with per-node skewable clocks, seeded
 * randomness, fault controls (partition, heal, flaky and slow links, crash/restart, clock
 * skew), byzantine peers, a recorded history per node, the safety/liveness checker, and a
 * per-scenario report. A failing run prints its seed; CHAOS_SEED=<seed> replays it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Cluster, until, type ClusterOptions, type NodeSpec } from '../helpers/cluster.js';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import { seededRandom, type Random } from '../../src/runtime/random.js';
import { decodeEnvelope, digestOf } from '../../src/trust/envelope.js';
import type { Policy } from '../../src/policy/model.js';

/** The system clock shifted by a per-node offset (clock skew, "a week later"). */
export class SkewedClock implements Clock {
  offset = 0;
  now(): number { return systemClock.now() + this.offset; }
  monotonic(): number { return systemClock.monotonic(); }
  setTimeout(fn: () => void, ms: number) { return systemClock.setTimeout(fn, ms); }
  sleep(ms: number): Promise<void> { return systemClock.sleep(ms); }
}

export interface HistoryEvent {
  t: number;
  node: string;
  kind: 'start' | 'accepted' | 'enforced' | 'stop';
  version?: number;
  digest?: string;
  rulesetHash?: string | null;
  state?: string;
}

export const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

export class Chaos {
  readonly history: HistoryEvent[] = [];
  /** Digests of every document the harness signed with the trusted key. */
  readonly legit = new Set<string>();
  readonly clocks = new Map<string, SkewedClock>();
  readonly random: Random;
  #flaky: ReturnType<typeof setInterval> | null = null;
  #t0 = performance.now();

  private constructor(readonly cluster: Cluster, readonly name: string, readonly seed: number) {
    this.random = seededRandom(seed);
    cluster.deps = (spec) => ({ clock: this.clockOf(spec), random: seededRandom(seed ^ hashName(spec.name)) });
    cluster.onStart = (spec, agent) => {
      // The engine enforced before start() returned: that apply is the first event of this life.
      this.#record({ node: spec.name, kind: 'start', state: agent.enforcer.status.state, rulesetHash: agent.enforcer.status.rulesetHash });
      agent.engine.on('policy', (cur) => this.#record({ node: spec.name, kind: 'accepted', version: cur.policy.version, digest: cur.digest }));
      agent.engine.on('enforced', (st) => this.#record({ node: spec.name, kind: 'enforced', version: st.policyVersion ?? 0, state: st.state, rulesetHash: st.rulesetHash }));
    };
  }

  static async create(name: string, n: number, opts: ClusterOptions = {}): Promise<Chaos> {
    const c = new Chaos(await Cluster.create(n, opts), name, SEED);
    return c;
  }

  #record(e: Omit<HistoryEvent, 't'>): void {
    this.history.push({ t: performance.now() - this.#t0, ...e });
  }

  clockOf(spec: NodeSpec): SkewedClock {
    let c = this.clocks.get(spec.name);
    if (!c) { c = new SkewedClock(); this.clocks.set(spec.name, c); }
    return c;
  }

  get nodes(): NodeSpec[] { return this.cluster.nodes; }

  signed(p: Policy): Uint8Array {
    const bytes = this.cluster.signed(p);
    const env = decodeEnvelope(bytes);
    if (env.ok) this.legit.add(digestOf(env.value));
    return bytes;
  }

  /** Publishes through `via`; returns the outcome (a node behind may refuse nothing, ahead may say stale). */
  async publish(via: NodeSpec, p: Policy): Promise<string> {
    return (await via.agent!.engine.offer(this.signed(p), { kind: 'control' })).outcome;
  }

  async crash(spec: NodeSpec): Promise<void> {
    this.#record({ node: spec.name, kind: 'stop' });
    await this.cluster.stop(spec);
  }

  async restart(spec: NodeSpec, bootstrap?: string[]): Promise<void> {
    await this.cluster.start(spec, bootstrap);
  }

  /** Cuts every live connection with probability `rate` every `everyMs` (seeded). */
  flaky(rate: number, everyMs = 200): void {
    this.#flaky = setInterval(() => {
      for (const n of this.cluster.running()) {
        for (const conn of n.agent!.mesh.libp2p.getConnections()) {
          if (this.random.next() < rate) void conn.close().catch(() => undefined);
        }
      }
    }, everyMs);
  }

  steady(): void {
    if (this.#flaky) clearInterval(this.#flaky);
    this.#flaky = null;
  }

  /** Time until every running node holds and enforces `version`. */
  async converge(version: number, boundMs: number, nodes = this.cluster.running()): Promise<number> {
    try {
      return await this.cluster.converged(version, boundMs, nodes);
    } catch (e) {
      throw new Error(`[seed ${this.seed}] ${this.name}: liveness: ${(e as Error).message}`);
    }
  }

  /** Safety properties over the whole recorded history; throws with the seed on violation. */
  checkSafety(): void {
    const fail = (msg: string) => { throw new Error(`[seed ${this.seed}] ${this.name}: safety: ${msg} (replay with CHAOS_SEED=${this.seed})`); };
    const byVersion = new Map<number, string>();
    const last = new Map<string, number>();
    for (const e of this.history) {
      if (e.kind === 'accepted') {
        if (!this.legit.has(e.digest!)) fail(`${e.node} accepted v${e.version} (${e.digest?.slice(0, 12)}) that the trusted key never signed`);
        const prev = last.get(e.node) ?? 0;
        if (e.version! <= prev) fail(`${e.node} went from v${prev} to v${e.version}`);
        last.set(e.node, e.version!);
        const seen = byVersion.get(e.version!);
        if (seen && seen !== e.digest) fail(`two different v${e.version} were accepted (equivocation)`);
        byVersion.set(e.version!, e.digest!);
      }
      if (e.kind === 'start' && !e.rulesetHash) fail(`${e.node} started without a ruleset (state ${e.state})`);
      if (e.kind === 'enforced' && !e.rulesetHash) fail(`${e.node} was left without a ruleset (state ${e.state})`);
    }
    for (const n of this.nodes) {
      if (n.agent && n.backend.current === null) fail(`${n.name} has no ruleset in force`);
    }
  }

  /** Writes the scenario's summary for the benchmark report. */
  async report(extra: { timeToConvergeMs: number; bound: number }): Promise<void> {
    const c = await Promise.all(this.cluster.running().map(Cluster.counters));
    const sum = (f: (x: (typeof c)[number]) => number) => c.reduce((a, x) => a + f(x), 0);
    const row = {
      scenario: this.name, seed: this.seed, nodes: this.nodes.length, ...extra,
      gossipMessages: sum((x) => Object.values(x.gossipIn).reduce((a, b) => a + b, 0)),
      gossipBytes: sum((x) => x.gossipBytesIn),
      syncRuns: sum((x) => x.syncRuns),
      syncBytes: sum((x) => x.syncBytesIn + x.syncBytesOut),
      strikes: sum((x) => Object.values(x.strikes).reduce((a, b) => a + b, 0)),
      budgetExceeded: sum((x) => Object.values(x.budgetExceeded).reduce((a, b) => a + b, 0)),
    };
    mkdirSync('chaos-report', { recursive: true });
    writeFileSync(`chaos-report/${this.name.replace(/[^a-z0-9]+/gi, '-')}.json`, JSON.stringify(row, null, 2) + '\n');
  }

  async destroy(): Promise<void> {
    this.steady();
    await this.cluster.destroy();
  }
}

function hashName(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0);
}

export { until };
