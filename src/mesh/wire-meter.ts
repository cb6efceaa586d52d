/**
 * Bytes on the wire, per agent: a minimal libp2p Metrics implementation that reads the
 * TCP socket counters of every connection (what the kernel actually carried: Noise, yamux,
 * gossipsub framing, duplicates and all). It never listens to stream data, so it cannot
 * change how libp2p delivers it. Everything else libp2p would record is discarded.
 */
import type { Socket } from 'node:net';
import type { Metrics, MultiaddrConnection } from '@libp2p/interface';

export interface WireBytes {
  received: number;
  sent: number;
}

const noop = () => undefined;
const metric = { update: noop, increment: noop, decrement: noop, reset: noop, timer: () => noop, observe: noop };

export class WireMeter {
  #open = new Set<Socket>();
  #closed: WireBytes = { received: 0, sent: 0 };

  /** Totals since the agent started: closed connections plus the live ones. */
  bytes(): WireBytes {
    let { received, sent } = this.#closed;
    for (const s of this.#open) {
      received += s.bytesRead;
      sent += s.bytesWritten;
    }
    return { received, sent };
  }

  #track(maConn: MultiaddrConnection): void {
    const socket = (maConn as unknown as { socket?: Socket }).socket;
    if (!socket || typeof socket.bytesRead !== 'number' || this.#open.has(socket)) return;
    this.#open.add(socket);
    socket.once('close', () => {
      if (!this.#open.delete(socket)) return;
      this.#closed.received += socket.bytesRead;
      this.#closed.sent += socket.bytesWritten;
    });
  }

  /** The libp2p `metrics` factory. */
  metrics(): Metrics {
    const register = ((_name: string, opts?: { calculate?: unknown }) => (opts?.calculate ? undefined : metric)) as never;
    return {
      trackMultiaddrConnection: (c: MultiaddrConnection) => this.#track(c),
      trackProtocolStream: noop,
      registerMetric: register,
      registerMetricGroup: register,
      registerCounter: register,
      registerCounterGroup: register,
      registerHistogram: register,
      registerHistogramGroup: register,
      registerSummary: register,
      registerSummaryGroup: register,
      traceFunction: ((_name: string, fn: unknown) => fn) as never,
      createTrace: () => undefined,
    };
  }
}
