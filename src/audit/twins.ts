/**
 * Audit room: two agents presenting one PeerId (a shared key) seen from a third node. Each
 * connection's identify says where its end listens; one agent reconnecting or dialling twice
 * gives the same listen addresses, two agents on different hosts (or ports) give disjoint
 * ones. Disjoint claims held at the same time are the signal. Pure bookkeeping: the auditor
 * feeds it libp2p's identify and close events.
 */
export interface TwinSighting {
  peer: string;
  /** The listen addresses each of the two connections claimed. */
  claims: [string[], string[]];
}

export class TwinWatch {
  /** Open connections by id: whose they are and what they said they listen on. */
  #byConnection = new Map<string, { peer: string; addrs: string[] }>();

  /** A connection identified; returns a sighting when it conflicts with another open one. */
  identified(connectionId: string, peer: string, listenAddrs: readonly string[]): TwinSighting | null {
    const addrs = [...new Set(listenAddrs.map((a) => a.replace(/\/p2p\/[^/]+$/, '')))].sort();
    if (!addrs.length) return null; // says nothing: cannot tell one agent from two
    this.#byConnection.set(connectionId, { peer, addrs });
    for (const [id, c] of this.#byConnection) {
      if (id === connectionId || c.peer !== peer) continue;
      if (!c.addrs.some((a) => addrs.includes(a))) return { peer, claims: [c.addrs, addrs] };
    }
    return null;
  }

  /** Every peer that has conflicting claims open right now. */
  current(): TwinSighting[] {
    const out: TwinSighting[] = [];
    const conns = [...this.#byConnection.values()];
    for (const peer of new Set(conns.map((c) => c.peer))) {
      const mine = conns.filter((c) => c.peer === peer);
      const pair = mine.flatMap((x, i) => mine.slice(i + 1).filter((y) => !y.addrs.some((a) => x.addrs.includes(a))).map((y) => [x.addrs, y.addrs] as [string[], string[]]))[0];
      if (pair) out.push({ peer, claims: pair });
    }
    return out;
  }

  closed(connectionId: string): void {
    this.#byConnection.delete(connectionId);
  }
}
