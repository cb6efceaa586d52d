/**
 * Prometheus metrics for one agent (its own registry, so in-process clusters do not collide).
 * The mesh registers its counters (sync, gossip, announcements, strikes, budget overruns) in
 * this registry itself: src/mesh/metrics.ts.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { InputError } from '../errors.js';
import type { DropTotalsView } from '../enforce/drop-totals.js';

export class Metrics {
  readonly registry = new Registry();
  readonly policyVersion = new Gauge({ name: 'picket_policy_version', help: 'Version of the policy this node holds (0: none)', registers: [this.registry] });
  readonly enforcedVersion = new Gauge({ name: 'picket_policy_enforced_version', help: 'Version of the policy in force (0: none, or the baseline); below picket_policy_version while a staged rollout holds the newest back', registers: [this.registry] });
  readonly rootVersion = new Gauge({ name: 'picket_root_version', help: 'Version of the trusted root', registers: [this.registry] });
  readonly verifications = new Counter({ name: 'picket_verifications_total', help: 'Envelopes verified, by outcome and source', labelNames: ['outcome', 'source'], registers: [this.registry] });
  readonly wireBytes = new Gauge({ name: 'picket_wire_bytes', help: 'TCP bytes over all mesh connections (everything libp2p carried)', labelNames: ['direction'], registers: [this.registry] });
  readonly applyDuration = new Histogram({ name: 'picket_apply_duration_seconds', help: 'Ruleset apply duration', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry] });
  readonly enforcementState = new Gauge({ name: 'picket_enforcement_state', help: '1 for the current enforcement state', labelNames: ['state'], registers: [this.registry] });
  readonly driftRepairs = new Counter({ name: 'picket_drift_repairs_total', help: 'Ruleset drift detected and repaired', registers: [this.registry] });
  readonly alerts = new Counter({ name: 'picket_alerts_total', help: 'Alert events, by class and action', labelNames: ['class', 'action'], registers: [this.registry] });
  readonly alertsDropped = new Counter({ name: 'picket_alerts_dropped_total', help: 'Alert events given up on because the receiver refused them (HTTP 4xx), by sink and reason', labelNames: ['sink', 'reason'], registers: [this.registry] });
  readonly peers = new Gauge({ name: 'picket_peers_connected', help: 'Mesh peers connected', registers: [this.registry] });
  readonly droppedPackets = new Counter({ name: 'picket_dropped_packets_total', help: 'Packets the kernel ruleset dropped, by reason (default-deny, blocked, invalid); would-drop: accepted only because of monitor mode', labelNames: ['reason'], registers: [this.registry] });
  readonly droppedBytes = new Counter({ name: 'picket_dropped_bytes_total', help: 'Bytes of the packets in picket_dropped_packets_total, by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly statusChecks = new Counter({ name: 'picket_status_signature_checks_total', help: 'Signature checks the status plane made: kind status (full signed statuses) or claim (digest-plane claims, checked when read or sampled)', labelNames: ['kind'], registers: [this.registry] });
  readonly claimsSigned = new Counter({ name: 'picket_status_claims_signed_total', help: 'Status claims this node signed, by reason: change (one a tally bit cannot say), periodic (liveness), wanted (a reader asked for it)', labelNames: ['reason'], registers: [this.registry] });
  #exportedDrops = new Map<string, { packets: number; bytes: number }>();
  #exportedChecks = { status: 0, claim: 0 };
  #exportedSigned = { change: 0, periodic: 0, wanted: 0 };

  /** Moves the status-plane check counters up to the auditor's running totals (which only grow). */
  setStatusChecks(t: { statuses: number; claims: number }): void {
    const next = { status: t.statuses, claim: t.claims };
    for (const kind of ['status', 'claim'] as const) {
      this.statusChecks.inc({ kind }, Math.max(0, next[kind] - this.#exportedChecks[kind]));
      this.#exportedChecks[kind] = Math.max(next[kind], this.#exportedChecks[kind]);
    }
  }

  /** Moves the signed-claim counters up to the auditor's running totals (which only grow). */
  setClaimsSigned(t: { change: number; periodic: number; wanted: number }): void {
    for (const reason of ['change', 'periodic', 'wanted'] as const) {
      this.claimsSigned.inc({ reason }, Math.max(0, t[reason] - this.#exportedSigned[reason]));
      this.#exportedSigned[reason] = Math.max(t[reason], this.#exportedSigned[reason]);
    }
  }
  #server: Server | null = null;
  /** Called before each scrape to refresh gauges from live state. */
  refresh: () => void = () => undefined;
  /** Awaited before each scrape (after refresh): live state that takes I/O, such as kernel counters. */
  refreshAsync: () => Promise<void> = async () => undefined;

  /** Moves the drop counters up to `totals` (which only grow: see DropTotals). */
  setDrops(totals: DropTotalsView): void {
    for (const [reason, t] of Object.entries(totals)) {
      const was = this.#exportedDrops.get(reason) ?? { packets: 0, bytes: 0 };
      if (t.packets > was.packets) this.droppedPackets.inc({ reason }, t.packets - was.packets);
      else if (!this.#exportedDrops.has(reason)) this.droppedPackets.inc({ reason }, 0);
      if (t.bytes > was.bytes) this.droppedBytes.inc({ reason }, t.bytes - was.bytes);
      else if (!this.#exportedDrops.has(reason)) this.droppedBytes.inc({ reason }, 0);
      this.#exportedDrops.set(reason, { packets: Math.max(t.packets, was.packets), bytes: Math.max(t.bytes, was.bytes) });
    }
  }

  /** Serves /metrics on a loopback address only (host:port). */
  async listen(hostPort: string): Promise<string> {
    const m = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):(\d+)$/.exec(hostPort);
    if (!m) throw new InputError(`control.metrics: ${hostPort} is not a loopback host:port (metrics are never exposed beyond loopback)`);
    const host = m[1]!.replace(/^\[|\]$/g, '');
    this.#server = createServer((req, res) => {
      if (req.url !== '/metrics') { res.writeHead(404).end(); return; }
      this.refresh();
      void this.refreshAsync().catch(() => undefined).then(() => this.registry.metrics()).then((text) => {
        res.writeHead(200, { 'content-type': this.registry.contentType });
        res.end(text);
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(Number(m[2]), host, () => resolve());
    });
    const a = this.#server.address();
    return typeof a === 'object' && a ? `${a.address}:${a.port}` : hostPort;
  }

  async close(): Promise<void> {
    if (!this.#server) return;
    this.#server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
  }
}
