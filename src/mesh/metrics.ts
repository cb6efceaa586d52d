/**
 * The mesh's metrics: prom-client counters registered in the registry the agent injects
 * (the mesh never imports agent/). Tests and benchmarks read them through `value()`.
 */
import { Counter, Registry } from 'prom-client';

/** Every mesh counter at one moment, in one plain object (tests, benchmarks, reports). */
export interface MeshCounters {
  gossipIn: Record<string, number>;
  gossipBytesIn: number;
  syncRuns: number;
  syncFailures: number;
  syncBytesIn: number;
  syncBytesOut: number;
  syncPoliciesIn: number;
  announcementsIn: Record<string, number>;
  announcementsOut: number;
  pulls: number;
  strikes: Record<string, number>;
  budgetExceeded: Record<string, number>;
  /** Status-plane bytes received (first copies reaching the validator), by kind: status | digest. */
  statusBytesIn: Record<string, number>;
}

export class MeshMetrics {
  readonly registry: Registry;
  readonly strikes: Counter<'reason'>;
  readonly budgetExceeded: Counter<'kind'>;
  readonly gossipIn: Counter<'outcome'>;
  readonly gossipBytesIn: Counter;
  readonly syncRuns: Counter;
  readonly syncFailures: Counter;
  readonly syncBytes: Counter<'direction'>;
  /** Policy envelopes received through sync (pulled or pushed). */
  readonly syncPoliciesIn: Counter;
  readonly announcementsIn: Counter<'outcome'>;
  readonly announcementsOut: Counter;
  readonly pulls: Counter;
  readonly statusBytesIn: Counter<'kind'>;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.strikes = new Counter({ name: 'picket_peer_strikes_total', help: 'Strikes against peers, by reason (penaltyThreshold strikes within banFor ban the peer)', labelNames: ['reason'], registers });
    this.budgetExceeded = new Counter({ name: 'picket_budget_exceeded_total', help: 'Per-peer budget overruns refused, by budget (see src/mesh/budgets.ts)', labelNames: ['kind'], registers });
    this.gossipIn = new Counter({ name: 'picket_gossip_policies_total', help: 'Policy and root envelopes judged on gossip, by outcome', labelNames: ['outcome'], registers });
    this.gossipBytesIn = new Counter({ name: 'picket_gossip_bytes_received_total', help: 'Policy and announcement bytes received by gossip (first copies only)', registers });
    this.syncRuns = new Counter({ name: 'picket_sync_runs_total', help: 'Anti-entropy exchanges completed', registers });
    this.syncFailures = new Counter({ name: 'picket_sync_failures_total', help: 'Anti-entropy exchanges that failed', registers });
    this.syncBytes = new Counter({ name: 'picket_sync_bytes_total', help: 'Bytes exchanged by anti-entropy', labelNames: ['direction'], registers });
    this.syncPoliciesIn = new Counter({ name: 'picket_sync_policies_received_total', help: 'Policy envelopes received through sync (pulled or pushed)', registers });
    this.announcementsIn = new Counter({ name: 'picket_announcements_received_total', help: 'Large-policy announcements received, by what was done with them', labelNames: ['outcome'], registers });
    this.announcementsOut = new Counter({ name: 'picket_announcements_sent_total', help: 'Large-policy announcements this node published', registers });
    this.statusBytesIn = new Counter({ name: 'picket_status_bytes_received_total', help: 'Status-plane bytes received (first copies), by kind: status (full signed statuses) or digest (neighbour digests)', labelNames: ['kind'], registers });
    this.pulls = new Counter({ name: 'picket_policy_pulls_total', help: 'Policy bodies pulled after an announcement', registers });
  }

  async snapshot(): Promise<MeshCounters> {
    const byLabel = async (c: Counter<string>, label: string) => Object.fromEntries((await c.get()).values.map((v) => [String(v.labels[label]), v.value]));
    return {
      gossipIn: await byLabel(this.gossipIn, 'outcome'),
      gossipBytesIn: await this.value(this.gossipBytesIn),
      syncRuns: await this.value(this.syncRuns),
      syncFailures: await this.value(this.syncFailures),
      syncBytesIn: await this.value(this.syncBytes, { direction: 'in' }),
      syncBytesOut: await this.value(this.syncBytes, { direction: 'out' }),
      syncPoliciesIn: await this.value(this.syncPoliciesIn),
      announcementsIn: await byLabel(this.announcementsIn, 'outcome'),
      announcementsOut: await this.value(this.announcementsOut),
      pulls: await this.value(this.pulls),
      strikes: await byLabel(this.strikes, 'reason'),
      budgetExceeded: await byLabel(this.budgetExceeded, 'kind'),
      statusBytesIn: await byLabel(this.statusBytesIn, 'kind'),
    };
  }

  /** The current value of one counter (summed over labels, or for the labels given). */
  async value(c: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
    const m = await c.get();
    return m.values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
  }
}
