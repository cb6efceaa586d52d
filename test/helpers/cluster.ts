/**
 * An in-process cluster of real agents (real libp2p, real LevelDB, memory backend) for
 * tests: memory transport with latency or loopback TCP, partitions, crash and restart from
 * the same data dir. Waits are on conditions re-checked on agent events, never fixed sleeps.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { Agent, type AgentDeps } from '../../src/agent/agent.js';
import { buildConfig, type AgentConfig } from '../../src/agent/config.js';
import { MemoryBackend } from '../../src/enforce/backend.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { envelopeToText, encodeEnvelope, PAYLOAD_TYPE, signEnvelope, type Envelope } from '../../src/trust/envelope.js';
import { encodePolicy, type Policy } from '../../src/policy/model.js';
import { encodeRoot } from '../../src/trust/root.js';
import { generateSigningKey, type SigningKey } from '../../src/trust/keys.js';
import { rootDoc } from './trust.js';
import { LinkFilter } from './link-filter.js';
import type { MeshCounters } from '../../src/mesh/metrics.js';

let clusterSeq = 0;

export interface NodeSpec {
  name: string;
  key: PrivateKey;
  peerId: string;
  dir: string;
  listen: string;
  backend: MemoryBackend;
  agent: Agent | null;
  /** Every policy version this node accepted, in order (survives restarts). */
  history: number[];
  /** Simulated partitions: wraps this node's connection gater (survives restarts). */
  links: LinkFilter;
}

export interface ClusterOptions {
  transport?: 'memory' | 'tcp';
  latency?: number;
  syncInterval?: string;
  minPeers?: number;
  /** How many peers each node bootstraps from: the first N nodes (default 1). */
  bootstrapCount?: number;
  /** 'first': the first bootstrapCount nodes; 'previous': the bootstrapCount nodes started just before (large clusters). */
  bootstrapMode?: 'first' | 'previous';
  /** Extra config sections (audit, alerts…), merged over the test defaults. */
  overrides?: Record<string, unknown>;
  /** mesh.announceAbove (bytes; null: always push whole envelopes). */
  announceAbove?: number | null;
  /**
   * TCP only (0: off): node i listens on 127.0.1.(i+1) at this one port, and policies list that address,
   * as a real fleet runs the agent on one port everywhere (policy addresses are dialable).
   */
  sharedPort?: number;
}

export class Cluster {
  readonly dir: string;
  readonly admin: SigningKey = generateSigningKey();
  /** The key policies are signed with (changes after a root rotation). */
  signer: SigningKey = this.admin;
  readonly nodes: NodeSpec[] = [];
  readonly rootEnvelope: Envelope;
  readonly opts: Required<ClusterOptions>;
  #id = ++clusterSeq;

  private constructor(opts: ClusterOptions) {
    this.opts = { transport: 'memory', latency: 2, syncInterval: '1s', minPeers: 4, bootstrapCount: 1, bootstrapMode: 'first', overrides: {}, announceAbove: 16 * 1024, sharedPort: 0, ...opts };
    this.dir = mkdtempSync(join(tmpdir(), 'picket-cluster-'));
    const now = Date.now();
    this.rootEnvelope = signEnvelope(PAYLOAD_TYPE.root, encodeRoot(rootDoc([this.admin], 1, [this.admin], 1, 1, now + 365 * 86400e3)), [this.admin]);
    writeFileSync(join(this.dir, 'root.json'), envelopeToText(this.rootEnvelope));
  }

  static async create(n: number, opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(opts);
    for (let i = 0; i < n; i++) await c.addNode();
    return c;
  }

  async addNode(): Promise<NodeSpec> {
    const i = this.nodes.length;
    const key = await generateKeyPair('Ed25519');
    const dir = join(this.dir, `n${i}`);
    const keyFile = join(this.dir, `n${i}.key`);
    writeFileSync(keyFile, Buffer.from(privateKeyToProtobuf(key)).toString('base64'));
    const listen = this.opts.transport === 'memory' ? `/memory/c${this.#id}-n${i}-${process.pid}` : this.opts.sharedPort ? `/ip4/127.0.1.${i + 1}/tcp/${this.opts.sharedPort}` : '/ip4/127.0.0.1/tcp/0';
    const spec: NodeSpec = { name: `n${i}`, key, peerId: peerIdFromPrivateKey(key).toString(), dir, listen, backend: new MemoryBackend(), agent: null, history: [], links: new LinkFilter() };
    this.nodes.push(spec);
    return spec;
  }

  config(spec: NodeSpec, bootstrap: string[]): AgentConfig {
    return buildConfig({
      meshId: 'test',
      dataDir: spec.dir,
      identityKey: join(this.dir, `${spec.name}.key`),
      trustedRoot: join(this.dir, 'root.json'),
      listen: [spec.listen],
      bootstrap,
      syncInterval: this.opts.syncInterval,
      mesh: {
        minPeers: this.opts.minPeers, redialMin: '100ms', redialMax: '1s', penaltyThreshold: 3, banFor: '1m', announceAbove: this.opts.announceAbove,
        // Every node of a loopback cluster listens on 127.0.0.1, not on its policy address.
        ...(this.opts.transport === 'tcp' ? { peerAddressCidrs: ['127.0.0.0/8'] } : {}),
      },
      enforcement: { backend: 'memory' },
      audit: { probeInterval: 0 },
      alerts: [],
      log: { level: 'silent' },
      ...this.opts.overrides,
    }, this.dir);
  }

  /** Bootstrap addresses: the first bootstrapCount running nodes, with their real ports. */
  bootstrapFor(spec: NodeSpec): string[] {
    const i = this.nodes.indexOf(spec);
    const pool = this.opts.bootstrapMode === 'previous' ? this.nodes.slice(Math.max(0, i - this.opts.bootstrapCount), i) : this.nodes.slice(0, this.opts.bootstrapCount);
    return pool.filter((n) => n !== spec && n.agent).map((n) => n.agent!.mesh.listenAddrs()[0]!).filter(Boolean);
  }

  /** Per-node dependency overrides (clock, randomness, latency) — the chaos harness sets these. */
  deps: (spec: NodeSpec) => Partial<AgentDeps> = () => ({});
  /** Called with every agent right after it starts (before it is returned). */
  onStart: (spec: NodeSpec, agent: Agent) => void = () => undefined;

  async start(spec: NodeSpec, bootstrap?: string[]): Promise<Agent> {
    const agent = await Agent.start(this.config(spec, bootstrap ?? this.bootstrapFor(spec)), {
      backend: spec.backend, log: silentLogger, noControl: true, memoryLatency: this.opts.latency, syncTimeout: 5000,
      wrapGater: (g) => spec.links.wrap(g), ...this.deps(spec),
    });
    agent.engine.on('policy', (cur) => spec.history.push(cur.policy.version));
    this.onStart(spec, agent);
    spec.agent = agent;
    return agent;
  }

  async startAll(): Promise<void> {
    if (this.opts.bootstrapMode === 'previous') {
      for (const n of this.nodes) await this.start(n);
      return;
    }
    // The first nodes (bootstrap) go first so the others can dial them.
    for (const n of this.nodes.slice(0, this.opts.bootstrapCount)) await this.start(n);
    await Promise.all(this.nodes.slice(this.opts.bootstrapCount).map((n) => this.start(n)));
  }

  async stop(spec: NodeSpec): Promise<void> {
    const a = spec.agent;
    spec.agent = null;
    await a?.stop();
  }

  running(): NodeSpec[] {
    return this.nodes.filter((n) => n.agent);
  }

  policy(version: number, opts: { nodes?: NodeSpec[]; extra?: Partial<Policy> } = {}): Policy {
    const nodes = opts.nodes ?? this.nodes;
    return {
      meshId: 'test', version, issuedAt: Date.now() - 1000, expires: Date.now() + 86400e3,
      // Addresses follow the node, not its position in this policy (removing one shifts nothing).
      nodes: nodes.map((n) => { const i = this.nodes.indexOf(n); return { name: n.name, peerId: n.peerId, addresses: [this.opts.sharedPort ? `127.0.1.${i + 1}` : `10.99.${i >> 8}.${(i & 255) + 1}`], roles: [i % 2 ? 'db' : 'web'] }; }),
      rules: [{ name: 'https', to: ['role:web'], from: ['any'], proto: 'tcp', ports: [{ first: 443, last: 443 }] }, { name: `v${version}`, to: ['any'], from: ['role:web'], proto: 'tcp', ports: [{ first: 1000 + version, last: 1000 + version }] }],
      exceptions: [], settings: { onExpiry: 'keep' },
      ...opts.extra,
    };
  }

  /** `count` extra rules with distinct sources: about 45 bytes each on the wire. */
  static bulkRules(count: number, salt = 0): Policy['rules'] {
    return Array.from({ length: count }, (_, i) => ({
      name: `bulk-${i}`, to: ['role:db'], from: [`cidr:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`], proto: 'tcp' as const,
      ports: [{ first: 2000 + ((i + salt) % 60000), last: 2000 + ((i + salt) % 60000) }],
    }));
  }

  signed(p: Policy): Uint8Array {
    return encodeEnvelope(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(p), [this.signer]));
  }

  async publish(via: NodeSpec, p: Policy): Promise<void> {
    const r = await via.agent!.engine.offer(this.signed(p), { kind: 'control' });
    if (r.outcome !== 'accepted') throw new Error(`publish refused: ${r.outcome} ${'reason' in r ? r.reason : ''}`);
  }

  /** Every mesh counter of a running node, now. */
  static counters(spec: NodeSpec): Promise<MeshCounters> {
    return spec.agent!.mesh.metrics.snapshot();
  }

  versionOf(spec: NodeSpec): number {
    return spec.agent?.engine.current?.policy.version ?? 0;
  }

  /** Resolves when every running node holds `version` and has enforced it. */
  async converged(version: number, timeoutMs = 20_000, nodes = this.running()): Promise<number> {
    const t0 = performance.now();
    await until(() => nodes.every((n) => this.versionOf(n) >= version && n.agent!.enforcer.status.policyVersion === version), timeoutMs, () => `versions: ${nodes.map((n) => `${n.name}=${this.versionOf(n)}`).join(' ')}`);
    return performance.now() - t0;
  }

  async partition(...groups: NodeSpec[][]): Promise<void> {
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => g.forEach((n) => groupOf.set(n.peerId, i)));
    await Promise.all(this.running().map((n) => {
      const mine = groupOf.get(n.peerId);
      return n.links.set(n.agent!.mesh, (peer) => groupOf.get(peer) === mine);
    }));
  }

  async heal(): Promise<void> {
    await Promise.all(this.running().map((n) => n.links.set(n.agent!.mesh, null)));
  }

  async destroy(): Promise<void> {
    await Promise.all(this.running().map((n) => this.stop(n)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Waits until `cond` holds, re-checking every 20 ms; fails with `describe()` on timeout. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string | Promise<string> = () => ''): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms ${await describe()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
