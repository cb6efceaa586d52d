/**
 * The composition root of `picket agent`: wires config, identity, store, engine, enforcer,
 * mesh, control API and the policy-file watcher. Order on start is the safety argument:
 * state is loaded and the last good ruleset (or the baseline) enforced before the network
 * opens. Order on stop: stop accepting, drain in-flight work, close the network, close the store.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { formatInstant, systemClock, type Clock, type Timer } from '../runtime/clock.js';
import { systemRandom, type Random } from '../runtime/random.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { InputError } from '../errors.js';
import { Store } from '../store/store.js';
import { loadEnvelope } from '../trust/files.js';
import { generateNodeKey, loadNodeKey } from '../trust/node-key.js';
import { envelopeToJson, parseEnvelopeAny } from '../trust/envelope.js';
import { trustPinnedRoot } from '../trust/verify.js';
import { findNode } from '../policy/model.js';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { FileBackend, MemoryBackend, type Backend } from '../enforce/backend.js';
import { NftBackend } from '../enforce/nft.js';
import { IptablesBackend } from '../enforce/iptables.js';
import { Enforcer, type EnforcerOptions } from '../enforce/enforcer.js';
import type { Mesh, MeshOptions } from '../mesh/mesh.js';
import { Engine } from '../node/engine.js';
import { ControlServer } from './control.js';
import { liveExplain } from './live-explain.js';
import { Metrics } from './metrics.js';
import { DropReader } from './drops.js';
import type { DropTotalsView } from '../enforce/drop-totals.js';
import { DROP_REASONS } from '../enforce/nft-tables.js';
import type { DropLogging } from '../policy/compile.js';
import { AlertManager } from '../alerts/alerts.js';
import type { Auditor } from '../audit/auditor.js';
import type { Listener } from '../audit/listeners.js';
import type { FleetNode } from '../audit/status.js';
import { changedFields, reloadable, RESTART_FIELDS, type AgentConfig } from './config.js';
import { PolicyFileWatcher } from './policy-file.js';
import { writeNew } from '../runtime/files.js';
import { bindTest, dirProblem, identityProblem, reasonOf, rootProblem, StartError, tcpAddr } from './preflight.js';
import { baselineMeshFrom } from './baseline.js';

export interface AgentDeps {
  clock?: Clock;
  random?: Random;
  log?: Logger;
  /** Overrides the configured backend (tests inject a shared MemoryBackend). */
  backend?: Backend;
  memoryLatency?: number;
  /** Benchmarks only: gossipsub without IDONTWANT (how v1.1 peers behave). */
  noIdontwant?: boolean;
  syncTimeout?: number;
  /** Skip the control socket (in-process clusters). */
  noControl?: boolean;
  /** Test hook: where the self-audit reads listening sockets from. */
  listeners?: () => Listener[];
  /** Test hook: wraps the mesh's connection gater (simulated partitions). */
  wrapGater?: MeshOptions['wrapGater'];
}

export interface StatusJson {
  peerId: string;
  meshId: string;
  node: { name: string; roles: string[] } | null;
  policy: { version: number; digest: string; issuedAt: string; expires: string; expired: boolean } | null;
  root: { version: number; expires: string; expired: boolean };
  /** The version floor: the highest policy version this node ever accepted. */
  floor: { version: number; digest: string } | null;
  enforcement: { backend: string; state: string; rulesetHash: string | null; lastApplyAt: string | null; reason?: string };
  peers: { peerId: string; name: string | null }[];
  listen: string[];
  alerts: { key: string; class: string; severity: string; summary: string; since: string }[];
  metrics: string | null;
  /**
   * Kernel drop counters since the agent started, by reason (default-deny, blocked, invalid,
   * would-drop); null when the backend counts nothing (file, memory). Absent from status().
   */
  drops?: DropTotalsView | null;
  /** What runs in monitor mode: the policy (settings.mode) and the rules in monitor mode. */
  monitor?: { policy: boolean; rules: string[] };
  /** Where this node stands in the newest version's staged rollout (null: nothing staged for it). */
  rollout: RolloutJson | null;
}

export interface RolloutJson {
  /** The newest version held, and the one in force (they differ while the rollout holds it back). */
  version: number;
  enforcing: number | null;
  stage: number | null;
  state: 'enforcing' | 'waiting' | 'unhealthy' | 'halted';
  /** waiting: when the stage's after has passed. */
  until?: string;
  summary: string;
}

/** The fsynced mirror of the trusted state, beside the store (see src/node/trusted-state.ts). */
export function trustMirrorPath(dataDir: string): string {
  return `${dataDir}/trust-state.json`;
}

/** The enforcer as configured: shared by the agent and `picket enforce`. */
export function enforcerOptions(config: AgentConfig, parts: { backend: Backend; clock: Clock; log: Logger; peerId: string }): EnforcerOptions {
  return {
    ...parts,
    meshPorts: meshPorts(config.listen),
    bootstrapAddrs: baselineMeshFrom(config),
    sshFrom: [...config.enforcement.failsafe.sshFrom],
    sshPort: config.enforcement.failsafe.sshPort,
    confirmWindow: config.enforcement.confirmWindow,
    lostGrace: config.enforcement.lockoutGrace,
    ...(config.enforcement.logDrops ? { dropLog: dropLogging(config) } : {}),
  };
}

/** enforcement.logDrops as the compiler takes it (null: would-drops only, at the default rate). */
function dropLogging(config: AgentConfig): DropLogging | undefined {
  return config.enforcement.logDrops ? { drops: true, rate: config.enforcement.logDrops.rate } : undefined;
}

export function makeBackend(config: AgentConfig): Backend {
  switch (config.enforcement.backend) {
    case 'file': return new FileBackend(config.enforcement.file);
    case 'memory': return new MemoryBackend();
    case 'iptables': return new IptablesBackend();
    case 'nft': return new NftBackend();
  }
}

function meshPorts(listen: readonly string[]): number[] {
  return [...new Set(listen.flatMap((a) => { const m = /\/tcp\/(\d+)/.exec(a); return m && m[1] !== '0' ? [Number(m[1])] : []; }))];
}

/** Names the listen address that could not be bound (bind-tested one by one after the mesh let go of its own). */
async function listenFailure(listen: readonly string[], e: unknown): Promise<string> {
  for (const l of listen) {
    const t = tcpAddr(l);
    if (!t) continue;
    const why = await bindTest(t.host, t.port);
    if (why) return `listen ${l}: ${why}`;
  }
  return `listen ${listen.join(', ')}: ${reasonOf(e)}`;
}

/** The node key, created on first start when identity.generate allows it (0600, never overwritten). */
async function loadIdentity(config: AgentConfig): Promise<{ privateKey: PrivateKey; generated: boolean }> {
  if (config.identity.generate && !existsSync(config.identityKey)) {
    const { text } = await generateNodeKey();
    try {
      mkdirSync(dirname(config.identityKey), { recursive: true, mode: 0o700 });
      writeNew(config.identityKey, text, 0o600, false);
    } catch (e) {
      throw new StartError(`identityKey ${config.identityKey}: cannot create (${e instanceof InputError ? e.message.replace(/^.*?: /, '') : reasonOf(e)})`);
    }
    return { privateKey: loadNodeKey(config.identityKey), generated: true };
  }
  const why = identityProblem(config);
  if (why) throw new StartError(why);
  return { privateKey: loadNodeKey(config.identityKey), generated: false };
}

/** What a reload did: fields applied, fields that need a restart, fields it could not apply. */
export interface ReloadReport {
  applied: string[];
  restart: string[];
  failed: { field: string; reason: string }[];
}

export interface MeshJson {
  summary: string;
  /** This node's own view of the newest version's staged rollout (a halt shows here). */
  rollout?: RolloutJson | null;
  nodes: (FleetNode & { connected: boolean; self: boolean })[];
}

export class Agent {
  readonly engine: Engine;
  readonly mesh: Mesh;
  readonly enforcer: Enforcer;
  readonly store: Store;
  readonly log: Logger;
  readonly alerts: AlertManager;
  readonly auditor: Auditor;
  readonly metrics: Metrics;
  /** Kernel drop counters of whatever backend is in force, as totals that never go down. */
  readonly drops: DropReader;
  #metricsAddr: string | null = null;
  #config: AgentConfig;
  #clock: Clock;
  #control: ControlServer | null = null;
  #policyFile: PolicyFileWatcher | null = null;
  #driftTimer: Timer | null = null;
  #dropTimer: Timer | null = null;
  #stopped = false;
  /** False when a test injected the backend: reload then leaves enforcement.backend alone. */
  #backendFromConfig = true;

  private constructor(config: AgentConfig, parts: { engine: Engine; mesh: Mesh; enforcer: Enforcer; store: Store; log: Logger; clock: Clock; alerts: AlertManager; auditor: Auditor; metrics: Metrics; drops: DropReader }) {
    this.#config = config;
    this.metrics = parts.metrics;
    this.engine = parts.engine;
    this.mesh = parts.mesh;
    this.enforcer = parts.enforcer;
    this.store = parts.store;
    this.log = parts.log;
    this.#clock = parts.clock;
    this.alerts = parts.alerts;
    this.auditor = parts.auditor;
    this.drops = parts.drops;
  }

  get config(): AgentConfig {
    return this.#config;
  }

  static async start(config: AgentConfig, deps: AgentDeps = {}): Promise<Agent> {
    const clock = deps.clock ?? systemClock;
    const random = deps.random ?? systemRandom;
    // Files before anything opens: a bad directory, key or root fails here with its name.
    const dirWhy = dirProblem(config.dataDir, true);
    if (dirWhy) throw new StartError(`dataDir ${config.dataDir}: ${dirWhy}`);
    const identity = await loadIdentity(config);
    const privateKey = identity.privateKey;
    const peerId = peerIdFromPrivateKey(privateKey).toString();
    const log = (deps.log ?? createLogger({ level: config.log.level, ...(config.log.pretty !== undefined ? { pretty: config.log.pretty } : {}) })).child({ meshId: config.meshId, peerId });
    if (identity.generated) log.warn({ peerId, file: config.identityKey }, 'generated a new node identity; enrol this PeerId in the policy (nodes[].peerId)');
    const rootWhy = rootProblem(config);
    if (rootWhy) throw new StartError(rootWhy);
    const pinned = trustPinnedRoot(loadEnvelope(config.trustedRoot));
    if (!('ok' in pinned)) throw new StartError(`trustedRoot: ${config.trustedRoot}: ${pinned.outcome}: ${pinned.reason}`);
    const backend = deps.backend ?? makeBackend(config);
    // Everything opened is closed again, newest first, if a later step fails: a daemon that
    // cannot start must exit and free its ports, not linger half-alive (Restart= relies on it).
    const opened: (() => Promise<unknown>)[] = [];
    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (e) {
        throw e instanceof StartError ? e : new StartError(`${what}: ${reasonOf(e)}`, { cause: e });
      }
    };
    try {
      // A store that cannot be opened is moved aside and rebuilt: the node must come up and
      // enforce (fail closed), and the trust floor survives in the mirror file.
      const store = await step(`dataDir ${config.dataDir}: cannot open the state store`, () => Store.open(config.dataDir, 10, { stamp: formatInstant(clock.now()).replace(/[:.]/g, '-') }));
      opened.push(() => store.close());
      if (store.recovered) log.error({ movedTo: store.recovered.movedTo, err: store.recovered.error }, 'store could not be opened: moved aside, starting from the trust-state mirror');
      const enforcer = new Enforcer(enforcerOptions(config, { backend, clock, log, peerId }));
      // The blocked set is part of the trusted state the engine persists and restores.
      const engine = new Engine({ store, clock, log, meshId: config.meshId, pinned: pinned.trusted, pinnedEnvelope: pinned.envelope, enforcer, mirrorPath: trustMirrorPath(config.dataDir), self: peerId });
      // Enforce the last good policy (or the baseline) before the network opens. The network
      // stack is loaded only after that: the first ruleset does not wait for libp2p to load.
      opened.push(() => engine.stop());
      await step('loading state', () => engine.start());
      // Listen addresses are bind-tested before the network stack loads: a taken port fails
      // fast (the mesh start below names it too if it is taken in between).
      for (const l of config.listen) {
        const t = tcpAddr(l);
        const why = t && t.port !== 0 ? await bindTest(t.host, t.port) : null;
        if (why) throw new StartError(`listen ${l}: ${why}`);
      }
      // Metrics (loopback) bind before the network stack loads: a taken port fails fast.
      const metrics = new Metrics();
      let metricsAddr: string | null = null;
      if (config.control.metrics) {
        const addr = config.control.metrics;
        opened.push(() => metrics.close());
        metricsAddr = await step(`control.metrics ${addr}`, () => metrics.listen(addr));
      }
      const [{ Mesh }, { Auditor }] = await Promise.all([import('../mesh/mesh.js'), import('../audit/auditor.js')]);
      // One registry per agent (in-process clusters must not collide); the mesh registers its own counters in it.
      const mesh = new Mesh({
        meshId: config.meshId, privateKey, listen: [...config.listen], bootstrap: [...config.bootstrap],
        engine, store, clock, random, log, syncInterval: config.syncInterval,
        minPeers: config.mesh.minPeers, redialMin: config.mesh.redialMin, redialMax: config.mesh.redialMax,
        penaltyThreshold: config.mesh.penaltyThreshold, banFor: config.mesh.banFor, announceAbove: config.mesh.announceAbove, peerAddressCidrs: config.mesh.peerAddressCidrs,
        ...(deps.memoryLatency !== undefined ? { memoryLatency: deps.memoryLatency } : {}),
        ...(deps.noIdontwant ? { noIdontwant: true } : {}),
        ...(deps.syncTimeout !== undefined ? { syncTimeout: deps.syncTimeout } : {}),
        ...(deps.wrapGater ? { wrapGater: deps.wrapGater } : {}),
        registry: metrics.registry,
      });
      const alerts = new AlertManager({ store, clock, log, source: peerId, sinks: [...config.alerts] });
      opened.push(() => alerts.stop());
      await step('alerts', () => alerts.start());
      try {
        await mesh.start();
      } catch (e) {
        // Free what the mesh did bind, then find which address it could not have.
        await mesh.stop().catch(() => undefined);
        throw new StartError(await listenFailure(config.listen, e), { cause: e });
      }
      opened.push(() => mesh.stop());
      const a = config.audit;
      const dropReader = new DropReader(() => enforcer.backend, clock);
      const auditor = new Auditor({
        meshId: config.meshId, privateKey, peerId, store, clock, random, log, engine, enforcer, mesh, alerts,
        meshPorts: meshPorts(config.listen), statusInterval: a.statusInterval, auditInterval: a.interval, silentAfter: a.silentAfter,
        probeInterval: a.probeInterval, probePeers: a.probePeers, probePorts: a.probePorts, probeTimeout: a.probeTimeout, expiryWarning: a.expiryWarning, rootExpiryWarning: a.rootExpiryWarning, lagAfter: a.lagAfter, statusPlane: a.statusPlane,
        ...(deps.listeners ? { listeners: deps.listeners } : {}),
        drops: () => {
          const t = dropReader.totals;
          return t ? { dropped: DROP_REASONS.filter((r) => r !== 'would-drop').reduce((n, r) => n + t[r].packets, 0), wouldDrop: t['would-drop'].packets } : null;
        },
      });
      const agent = new Agent(config, { engine, mesh, enforcer, store, log, clock, alerts, auditor, metrics, drops: dropReader });
      agent.#metricsAddr = metricsAddr;
      agent.#backendFromConfig = !deps.backend;
      agent.#wireMetrics();
      opened.push(() => auditor.stop());
      await step('audit', () => auditor.start());
      if (!deps.noControl) {
        const control = new ControlServer(config.control.socket, agent.#handlers());
        agent.#control = control;
        await step(`control.socket ${config.control.socket}`, () => control.listen());
        opened.push(() => control.close());
        log.info({ socket: config.control.socket }, 'control API listening');
      }
      opened.push(async () => { agent.#stopped = true; agent.#policyFile?.stop(); agent.#driftTimer?.cancel(); agent.#dropTimer?.cancel(); });
      await agent.#watchPolicyFile(config.policyFile);
      // A policy file present at start is in force (not only accepted) when start() returns.
      await engine.settled();
      agent.#scheduleDrift();
      agent.#scheduleDropRead();
      mesh.libp2p.addEventListener('connection:close', () => {
        if (mesh.connectedPeers().length === 0) void engine.allPeersLost();
      });
      // A peer back inside the lock-out guard's grace window: it was a restart, not a lock-out.
      mesh.libp2p.addEventListener('connection:open', () => enforcer.peerConnected());
      return agent;
    } catch (e) {
      // Each close is bounded: a close that hangs must not keep a failed start alive.
      for (const close of opened.reverse()) {
        await new Promise<void>((resolve) => {
          const t = clock.setTimeout(resolve, 2000);
          void close().catch(() => undefined).finally(() => { t.cancel(); resolve(); });
        });
      }
      throw e instanceof StartError || e instanceof InputError ? e : new StartError(reasonOf(e), { cause: e });
    }
  }

  status(): StatusJson {
    const cur = this.engine.current;
    const now = this.#clock.now();
    const self = cur ? findNode(cur.policy, this.mesh.peerId) : undefined;
    const en = this.enforcer.status;
    const names = new Map(cur?.policy.nodes.map((n) => [n.peerId, n.name]) ?? []);
    return {
      peerId: this.mesh.peerId,
      meshId: this.#config.meshId,
      node: self ? { name: self.name, roles: self.roles } : null,
      policy: cur ? {
        version: cur.policy.version, digest: cur.digest,
        issuedAt: new Date(cur.policy.issuedAt).toISOString(), expires: new Date(cur.policy.expires).toISOString(),
        expired: cur.policy.expires <= now,
      } : null,
      root: { version: this.engine.root.root.version, expires: new Date(this.engine.root.root.expires).toISOString(), expired: this.engine.rootExpired(now) },
      floor: this.engine.floor,
      enforcement: {
        backend: en.backend, state: en.state, rulesetHash: en.rulesetHash,
        lastApplyAt: en.lastApplyAt ? new Date(en.lastApplyAt).toISOString() : null,
        ...(en.reason ? { reason: en.reason } : {}),
      },
      peers: this.mesh.connectedPeers().sort().map((p) => ({ peerId: p, name: names.get(p) ?? null })),
      listen: this.mesh.listenAddrs(),
      alerts: this.alerts.openAlerts().map((x) => ({ key: x.key, class: x.class, severity: x.severity, summary: x.summary, since: new Date(x.since).toISOString() })),
      metrics: this.#metricsAddr,
      rollout: this.#rolloutJson(),
    };
  }

  #rolloutJson(): RolloutJson | null {
    const v = this.engine.rollout;
    if (!v || v.version !== this.engine.current?.policy.version) return null;
    const d = v.decision;
    return {
      version: v.version, enforcing: v.enforcing, stage: d.stage,
      state: d.kind === 'enforce' ? 'enforcing' : d.kind === 'halted' ? 'halted' : d.why,
      ...(d.kind === 'hold' && d.why === 'waiting' ? { until: new Date(d.until).toISOString() } : {}),
      summary: v.summary,
    };
  }

  #wireMetrics(): void {
    const m = this.metrics;
    this.engine.on('rejected', (r, source) => m.verifications.inc({ outcome: r.outcome, source: source.kind }));
    this.engine.on('policy', (_c, source) => m.verifications.inc({ outcome: 'accepted', source: source.kind }));
    this.enforcer.on('applied', (_s, { ms }) => m.applyDuration.observe(ms / 1000));
    this.enforcer.on('drift', () => m.driftRepairs.inc());
    this.alerts.on('event', (e) => m.alerts.inc({ class: e.class, action: e.action }));
    this.alerts.on('dropped', (sink, _e, reason) => m.alertsDropped.inc({ sink, reason }));
    m.refreshAsync = async () => {
      const totals = await this.drops.read();
      if (totals) m.setDrops(totals);
    };
    m.refresh = () => {
      m.policyVersion.set(this.engine.current?.policy.version ?? 0);
      m.enforcedVersion.set(this.enforcer.status.policyVersion ?? 0);
      m.rootVersion.set(this.engine.root.root.version);
      m.peers.set(this.mesh.connectedPeers().length);
      const wire = this.mesh.wireBytes();
      m.wireBytes.set({ direction: 'in' }, wire.received);
      m.wireBytes.set({ direction: 'out' }, wire.sent);
      m.setStatusChecks(this.auditor.verifications);
      m.setClaimsSigned(this.auditor.claimsSigned);
      m.enforcementState.reset();
      m.enforcementState.set({ state: this.enforcer.status.state }, 1);
    };
  }

  /** Monitor mode in the ruleset in force. */
  monitorView(): { policy: boolean; rules: string[] } {
    const rs = this.enforcer.ruleset;
    return { policy: rs?.monitor === true, rules: [...new Set((rs?.rules ?? []).filter((r) => r.monitor).map((r) => r.name))] };
  }

  /** The fleet as this node sees it, from signed statuses: no central collector. */
  meshView(): MeshJson {
    const connected = new Set(this.mesh.connectedPeers());
    const f = this.auditor.fleet();
    return {
      summary: f.summary,
      rollout: this.#rolloutJson(),
      nodes: f.nodes.map((n) => ({ ...n, connected: connected.has(n.peerId), self: n.peerId === this.mesh.peerId })),
    };
  }

  #handlers() {
    return {
      status: async () => ({ ...this.status(), drops: await this.drops.read(), monitor: this.monitorView() }),
      mesh: () => this.meshView(),
      policy: () => (this.engine.current ? envelopeToJson(this.engine.current.envelope) : null),
      publish: async (body: Uint8Array) => {
        const parsed = parseEnvelopeAny(body);
        if (!parsed.ok) return { code: 422, body: { outcome: parsed.outcome, reason: parsed.reason } };
        const r = await this.engine.offer(parsed.value, { kind: 'control' });
        const ok = r.outcome === 'accepted' || r.outcome === 'duplicate';
        return { code: ok ? 200 : 422, body: r };
      },
      explain: (q: URLSearchParams) => liveExplain(q, this.enforcer.ruleset, this.enforcer.status),
      history: async () => {
        const log = await this.store.acceptLog();
        return { policies: log.reverse().map((r) => ({ ...r, acceptedAt: new Date(r.acceptedAt).toISOString() })) };
      },
    };
  }

  /** (Re)starts the drop-in watcher for `path` (none: stops it). Start and SIGHUP call this. */
  async #watchPolicyFile(path: string | undefined): Promise<void> {
    this.#policyFile?.stop();
    this.#policyFile = null;
    if (!path || this.#stopped) {
      await this.alerts.resolve('policy-file');
      return;
    }
    const w = new PolicyFileWatcher({
      path, clock: this.#clock, log: this.log,
      offer: (env) => this.engine.offer(env, { kind: 'file' }),
      onRejected: (reason) => this.alerts.raise('policy-file', 'policy-file-rejected', 'error', `policy file ${path} not used (${reason}); the policy in force stays`, { file: path, reason }),
      onUsable: () => this.alerts.resolve('policy-file'),
    });
    this.#policyFile = w;
    await w.start();
  }

  /**
   * Reads the drop counters every status interval, so the gossiped status carries fresh totals
   * and a table recreated between scrapes loses at most one interval of counts. The read is one
   * tool call off the enforcer's queue (DropReader): it never delays an apply.
   */
  #scheduleDropRead(): void {
    if (this.#stopped) return;
    this.#dropTimer = this.#clock.setTimeout(() => {
      void this.drops.read().finally(() => this.#scheduleDropRead());
    }, this.#config.audit.statusInterval);
  }

  #scheduleDrift(): void {
    if (this.#stopped || !this.#config.enforcement.driftInterval) return;
    this.#driftTimer = this.#clock.setTimeout(() => {
      void this.engine.checkDrift().then((d) => this.auditor.driftChecked(d))
        .catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'drift check failed'))
        .finally(() => this.#scheduleDrift());
    }, this.#config.enforcement.driftInterval);
  }

  /**
   * SIGHUP: applies every field that can change at run time and names the ones that need a
   * restart (their running values are kept). One enforce at the end puts the new backend,
   * failsafe and baseline sources in force; a backend that cannot apply is switched back.
   */
  async reload(nextRaw: AgentConfig): Promise<ReloadReport> {
    const prev = this.#config;
    const changed = changedFields(prev, nextRaw);
    const restart = changed.filter((f) => (RESTART_FIELDS as readonly string[]).includes(f));
    const applied = changed.filter((f) => !restart.includes(f));
    const failed: { field: string; reason: string }[] = [];
    const next = reloadable(prev, nextRaw);
    const has = (prefix: string) => applied.some((f) => f === prefix || f.startsWith(`${prefix}.`));
    this.#config = next;

    this.log.level = next.log.level;
    this.alerts.setSinks([...next.alerts]);
    this.enforcer.setFailsafe([...next.enforcement.failsafe.sshFrom], next.enforcement.failsafe.sshPort);
    this.enforcer.reconfigure({ bootstrapAddrs: baselineMeshFrom(next), confirmWindow: next.enforcement.confirmWindow, lostGrace: next.enforcement.lockoutGrace, dropLog: dropLogging(next) });
    const m = next.mesh;
    this.mesh.reconfigure({
      bootstrap: [...next.bootstrap], syncInterval: next.syncInterval, minPeers: m.minPeers, redialMin: m.redialMin, redialMax: m.redialMax,
      penaltyThreshold: m.penaltyThreshold, banFor: m.banFor, announceAbove: m.announceAbove,
    });
    const a = next.audit;
    if (has('audit')) {
      this.auditor.reconfigure({
        statusInterval: a.statusInterval, auditInterval: a.interval, silentAfter: a.silentAfter, probeInterval: a.probeInterval,
        probePeers: a.probePeers, probePorts: a.probePorts, probeTimeout: a.probeTimeout, expiryWarning: a.expiryWarning, rootExpiryWarning: a.rootExpiryWarning, lagAfter: a.lagAfter,
      });
    }
    if (has('enforcement.driftInterval')) {
      this.#driftTimer?.cancel();
      this.#scheduleDrift();
    }
    if (has('policyFile')) {
      // A new, changed or removed drop-in: restart the watcher (it may not have been running).
      await this.#watchPolicyFile(next.policyFile);
    }

    const oldBackend = this.enforcer.backend;
    const switching = this.#backendFromConfig && (has('enforcement.backend') || (next.enforcement.backend === 'file' && has('enforcement.file')));
    if (switching) this.enforcer.reconfigure({ backend: makeBackend(next) });
    await this.engine.enforceNow();
    if (switching) {
      const st = this.enforcer.status;
      if (st.state === 'failed') {
        failed.push({ field: 'enforcement.backend', reason: st.reason ?? 'apply failed' });
        this.enforcer.reconfigure({ backend: oldBackend });
        this.#config = { ...this.#config, enforcement: prev.enforcement };
        await this.engine.enforceNow();
      } else {
        await oldBackend.remove?.().catch((e: unknown) => this.log.warn({ err: (e as Error).message, backend: oldBackend.name }, 'could not remove the previous backend\'s ruleset'));
      }
    }
    if (restart.length) this.log.warn({ fields: restart }, `configuration fields need a restart to change (running values kept): ${restart.join(', ')}`);
    for (const f of failed) this.log.error({ field: f.field, reason: f.reason }, 'reload could not apply a field; previous value kept');
    this.log.info({ applied: applied.filter((f) => !failed.some((x) => x.field === f)) }, 'configuration reloaded');
    return { applied: applied.filter((f) => !failed.some((x) => x.field === f)), restart, failed };
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#policyFile?.stop();
    this.#driftTimer?.cancel();
    this.#dropTimer?.cancel();
    await this.#control?.close();
    await this.metrics.close();
    await this.auditor.stop();
    await this.alerts.stop();
    await this.engine.stop();
    this.enforcer.stop();
    await this.mesh.stop();
    await this.store.close();
    this.log.info('stopped');
  }
}
