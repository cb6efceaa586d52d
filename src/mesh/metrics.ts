/** The mesh's counters (read by the agent's metrics and by tests and benchmarks). */
export interface MeshCounters {
  gossipIn: Record<string, number>;
  syncRuns: number;
  syncFailures: number;
  syncBytesIn: number;
  syncBytesOut: number;
  gossipBytesIn: number;
  announcementsIn: Record<string, number>;
  announcementsOut: number;
  pulls: number;
  /** Policy envelopes received through sync (pulled or pushed). */
  syncPoliciesIn: number;
  penalised: number;
}

export function newCounters(): MeshCounters {
  return { gossipIn: {}, syncRuns: 0, syncFailures: 0, syncBytesIn: 0, syncBytesOut: 0, gossipBytesIn: 0, announcementsIn: {}, announcementsOut: 0, pulls: 0, syncPoliciesIn: 0, penalised: 0 };
}
