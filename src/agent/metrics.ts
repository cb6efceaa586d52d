/**
 * Prometheus metrics for one agent (its own registry, so in-process clusters do not collide).
 * The mesh registers its counters (sync, gossip, announcements, strikes, budget overruns) in
 * this registry itself: src/mesh/metrics.ts.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { InputError } from '../errors.js';

export class Metrics {
  readonly registry = new Registry();
  readonly policyVersion = new Gauge({ name: 'picket_policy_version', help: 'Version of the policy this node holds (0: none)', registers: [this.registry] });
  readonly rootVersion = new Gauge({ name: 'picket_root_version', help: 'Version of the trusted root', registers: [this.registry] });
  readonly verifications = new Counter({ name: 'picket_verifications_total', help: 'Envelopes verified, by outcome and source', labelNames: ['outcome', 'source'], registers: [this.registry] });
  readonly wireBytes = new Gauge({ name: 'picket_wire_bytes', help: 'TCP bytes over all mesh connections (everything libp2p carried)', labelNames: ['direction'], registers: [this.registry] });
  readonly applyDuration = new Histogram({ name: 'picket_apply_duration_seconds', help: 'Ruleset apply duration', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry] });
  readonly enforcementState = new Gauge({ name: 'picket_enforcement_state', help: '1 for the current enforcement state', labelNames: ['state'], registers: [this.registry] });
  readonly driftRepairs = new Counter({ name: 'picket_drift_repairs_total', help: 'Ruleset drift detected and repaired', registers: [this.registry] });
  readonly alerts = new Counter({ name: 'picket_alerts_total', help: 'Alert events, by class and action', labelNames: ['class', 'action'], registers: [this.registry] });
  readonly alertsDropped = new Counter({ name: 'picket_alerts_dropped_total', help: 'Alert events given up on because the receiver refused them (HTTP 4xx), by sink and reason', labelNames: ['sink', 'reason'], registers: [this.registry] });
  readonly peers = new Gauge({ name: 'picket_peers_connected', help: 'Mesh peers connected', registers: [this.registry] });
  #server: Server | null = null;
  /** Called before each scrape to refresh gauges from live state. */
  refresh: () => void = () => undefined;

  /** Serves /metrics on a loopback address only (host:port). */
  async listen(hostPort: string): Promise<string> {
    const m = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):(\d+)$/.exec(hostPort);
    if (!m) throw new InputError(`control.metrics: ${hostPort} is not a loopback host:port (metrics are never exposed beyond loopback)`);
    const host = m[1]!.replace(/^\[|\]$/g, '');
    this.#server = createServer((req, res) => {
      if (req.url !== '/metrics') { res.writeHead(404).end(); return; }
      this.refresh();
      void this.registry.metrics().then((text) => {
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
