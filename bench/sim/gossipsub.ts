/**
 * The gossipsub library's behaviour, modelled (it is a dependency, not picket's protocol):
 * a symmetric mesh of degree D per node among its connections, eager push of a message to
 * the mesh once the topic validator accepts it (never to the peer it came from or its
 * origin; flood publish from the origin to every connection), a seen cache so each message is
 * validated once per node, and heartbeat gossip — every 700 ms (picket's setting), IHAVE
 * with the ids accepted in the last 3 heartbeats to max(6, ¼) of the non-mesh connections,
 * answered by IWANT and the message. Validation is picket's code, called through
 * `validate`; a reject is picket's strike (the caller's penalise), not gossipsub scoring.
 */
import type { Meter, SimNet } from './net.js';

export type Verdict = 'accept' | 'ignore' | 'reject';

export const HEARTBEAT_MS = 700;
const HISTORY_GOSSIP = 3, HISTORY_LENGTH = 5, D_LAZY = 6, GOSSIP_FACTOR = 0.25;
/** RPC framing around one message (topic, protobuf fields) and per id in IHAVE/IWANT. */
const RPC_OVERHEAD = 48, ID_BYTES = 34, CONTROL_OVERHEAD = 16;

export interface Message {
  id: number;
  origin: number;
  data: Uint8Array;
  /** Which meter counts its bytes (policy traffic vs status traffic). */
  meter: Meter;
  /** The topic validator at node `to`, for this message forwarded by `from`. */
  validate(to: number, from: number): Verdict | Promise<Verdict>;
  /** Per node: 0 unseen, 1 seen (validating or judged). */
  seen: Uint8Array;
  /** Per node: when it accepted the message (-1: not). */
  acceptedAt: Float64Array;
}

export class GossipsubModel {
  readonly mesh: number[][];
  readonly #messages: Message[] = [];
  #nextId = 0;

  constructor(private readonly net: SimNet, readonly conns: Set<number>[], degree: number) {
    const n = conns.length;
    const r = net.random;
    // Symmetric mesh (GRAFT both ways), up to D per node, at most D_hi = 2D from others' grafts.
    this.mesh = Array.from({ length: n }, () => []);
    const inMesh = Array.from({ length: n }, () => new Set<number>());
    for (let i = 0; i < n; i++) {
      const cands = [...conns[i]!];
      for (let k = 0; k < cands.length * 2 && inMesh[i]!.size < degree; k++) {
        const j = cands[r.int(cands.length)]!;
        if (inMesh[i]!.has(j) || inMesh[j]!.size >= 2 * degree) continue;
        inMesh[i]!.add(j); inMesh[j]!.add(i);
      }
    }
    for (let i = 0; i < n; i++) this.mesh[i] = [...inMesh[i]!];
  }

  /** A connection closed (a ban): it leaves the mesh too. */
  disconnect(a: number, b: number): void {
    this.conns[a]!.delete(b); this.conns[b]!.delete(a);
    this.mesh[a] = this.mesh[a]!.filter((x) => x !== b);
    this.mesh[b] = this.mesh[b]!.filter((x) => x !== a);
  }

  /** Starts every node's heartbeat (random phase) until `until` ms. */
  startHeartbeats(until: number): void {
    for (let i = 0; i < this.conns.length; i++) {
      const beat = () => {
        this.#heartbeat(i);
        if (this.net.t + HEARTBEAT_MS <= until) this.net.at(this.net.t + HEARTBEAT_MS, beat);
      };
      this.net.at(this.net.random.next() * HEARTBEAT_MS, beat);
    }
  }

  /** `origin` publishes `data` (already accepted by itself): flood publish to every connection. */
  publish(origin: number, data: Uint8Array, meter: Meter, validate: Message['validate']): Message {
    const n = this.conns.length;
    const m: Message = { id: this.#nextId++, origin, data, meter, validate, seen: new Uint8Array(n), acceptedAt: new Float64Array(n).fill(-1) };
    this.#messages.push(m);
    m.seen[origin] = 1;
    m.acceptedAt[origin] = this.net.t;
    for (const p of this.conns[origin]!) this.#sendData(m, origin, p);
    return m;
  }

  #sendData(m: Message, from: number, to: number): void {
    this.net.send(m.meter, from, to, m.data.length + RPC_OVERHEAD, () => this.#receive(m, from, to));
  }

  #receive(m: Message, from: number, to: number): void | Promise<unknown> {
    if (m.seen[to] || !this.conns[to]!.has(from)) return;
    m.seen[to] = 1;
    const v = m.validate(to, from);
    const after = (verdict: Verdict) => {
      if (verdict !== 'accept') return;
      m.acceptedAt[to] = this.net.t;
      for (const p of this.mesh[to]!) if (p !== from && p !== m.origin) this.#sendData(m, to, p);
    };
    if (v instanceof Promise) {
      // Picket's validators may wait (a pull): the message is forwarded once they return.
      void this.net.track(v.then(after));
      return;
    }
    after(v);
  }

  #heartbeat(i: number): void {
    const t = this.net.t;
    const recent = this.#messages.filter((m) => m.acceptedAt[i]! >= 0 && t - m.acceptedAt[i]! < HISTORY_GOSSIP * HEARTBEAT_MS);
    if (!recent.length) return;
    const inMesh = new Set(this.mesh[i]);
    const others = [...this.conns[i]!].filter((p) => !inMesh.has(p));
    const k = Math.min(others.length, Math.max(D_LAZY, Math.ceil(GOSSIP_FACTOR * others.length)));
    for (let c = 0; c < k; c++) {
      const j = others.splice(this.net.random.int(others.length), 1)[0]!;
      // One IHAVE per meter (policy and status traffic are counted apart).
      for (const group of groupByMeter(recent)) {
        this.net.send(group[0]!.meter, i, j, CONTROL_OVERHEAD + ID_BYTES * group.length, () => this.#ihave(group, i, j));
      }
    }
  }

  #ihave(ms: Message[], from: number, to: number): void {
    const want = ms.filter((m) => !m.seen[to]);
    if (!want.length || !this.conns[to]!.has(from)) return;
    this.net.send(want[0]!.meter, to, from, CONTROL_OVERHEAD + ID_BYTES * want.length, () => {
      // Served from the message cache while it still holds them.
      for (const m of want) if (m.acceptedAt[from]! >= 0 && this.net.t - m.acceptedAt[from]! < HISTORY_LENGTH * HEARTBEAT_MS) this.#sendData(m, from, to);
    });
  }
}

function groupByMeter(ms: Message[]): Message[][] {
  const by = new Map<Meter, Message[]>();
  for (const m of ms) by.set(m.meter, [...(by.get(m.meter) ?? []), m]);
  return [...by.values()];
}
