/**
 * Room: dead-connection detection. Every `interval`, each open connection is pinged once at
 * the muxer (a yamux PING frame, answered by the peer's muxer); one unanswered within
 * `timeout` means the peer is gone without a FIN (a vanished host, a hung process) and the
 * connection is aborted, so the redial loop and gossipsub move on.
 *
 * It replaces libp2p's connection monitor, which opened a new stream for every ping (a
 * multistream-select negotiation both ways, and on the answering side a peer-store write
 * under its lock): 7–8% of an idle agent's CPU. yamux's own keep-alive pings at the muxer
 * but never acts on a missing answer. A connection whose muxer has no `ping` (another muxer,
 * or a libp2p that moved it) falls back to libp2p's ping protocol on a stream, so detection
 * never silently stops.
 */
import type { Connection } from '@libp2p/interface';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { MeshNode } from './node.js';

export interface KeepAliveInit {
  clock: Clock;
  /** Between two pings of one connection (ms). */
  interval: number;
  /** How long a ping may go unanswered before the connection is aborted (ms). */
  timeout: number;
  log?: Logger;
}

interface Pinger { ping(options?: { signal?: AbortSignal }): Promise<unknown> }
interface StreamPing { ping(peer: Connection['remotePeer'], options?: { signal?: AbortSignal }): Promise<unknown> }

/** The connection's muxer when it can ping (@chainsafe/libp2p-yamux 8 under libp2p 3: `Connection.muxer`). */
export function muxerPinger(conn: Connection): Pinger | undefined {
  const m = (conn as unknown as { muxer?: Partial<Pinger> }).muxer;
  return m && typeof m.ping === 'function' ? (m as Pinger) : undefined;
}

export class KeepAlive {
  #o: KeepAliveInit;
  #node: MeshNode;
  #timer: Timer | null = null;
  #stopped = false;
  /** Connections with a ping out: one at a time each. */
  #pinging = new WeakSet<Connection>();
  /** How many pings went over a stream because the muxer had none (tests read it). */
  streamPings = 0;

  constructor(node: MeshNode, o: KeepAliveInit) {
    this.#node = node;
    this.#o = o;
  }

  start(): void {
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      for (const conn of this.#node.getConnections()) void this.check(conn);
      this.#schedule();
    }, this.#o.interval);
  }

  /** One ping of one connection; aborts it when the ping fails. Resolves true when it was answered. */
  async check(conn: Connection): Promise<boolean> {
    if (this.#pinging.has(conn) || conn.status !== 'open') return true;
    this.#pinging.add(conn);
    const signal = AbortSignal.timeout(this.#o.timeout);
    try {
      const muxer = muxerPinger(conn);
      if (muxer) await muxer.ping({ signal });
      else {
        this.streamPings++;
        const service = (this.#node.services as unknown as { ping?: StreamPing }).ping;
        if (!service) return true; // nothing to ping with: leave the connection as it is
        await service.ping(conn.remotePeer, { signal });
      }
      return true;
    } catch (e) {
      // A peer without the ping protocol answered the negotiation: it is there.
      if ((e as Error).name === 'UnsupportedProtocolError') return true;
      if (this.#stopped || conn.status !== 'open') return false;
      this.#o.log?.info({ peer: conn.remotePeer.toString(), timeoutMs: this.#o.timeout, err: (e as Error).message }, 'connection dropped: keep-alive ping unanswered');
      conn.abort(new Error(`keep-alive ping unanswered for ${this.#o.timeout} ms (${(e as Error).message})`));
      return false;
    } finally {
      this.#pinging.delete(conn);
    }
  }
}
