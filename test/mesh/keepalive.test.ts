/**
 * Dead connections: a peer that stops answering (a hung process, a host gone without a FIN)
 * is found by a ping at the muxer and its connection aborted; a live one is left alone. A
 * muxer without ping falls back to libp2p's ping protocol on a stream.
 */
import { Socket } from 'node:net';
import type { Connection } from '@libp2p/interface';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, until } from '../helpers/cluster.js';
import { KeepAlive, muxerPinger } from '../../src/mesh/keepalive.js';
import { systemClock } from '../../src/runtime/clock.js';

let cluster: Cluster | undefined;
let keepAlive: KeepAlive | undefined;
afterEach(async () => {
  keepAlive?.stop();
  await cluster?.destroy();
  cluster = keepAlive = undefined;
});

/** Two agents over loopback TCP, and A's connection to B with B's end of it. */
async function pair(): Promise<{ a: NonNullable<Cluster['nodes'][number]['agent']>; conn: Connection; far: Connection }> {
  cluster = await Cluster.create(2, { transport: 'tcp', minPeers: 1, syncInterval: '1h' });
  await cluster.startAll();
  const [na, nb] = cluster.nodes;
  const a = na!.agent!, b = nb!.agent!;
  await until(() => a.mesh.libp2p.getConnections(b.mesh.libp2p.peerId).length > 0 && b.mesh.libp2p.getConnections(a.mesh.libp2p.peerId).length > 0, 10_000);
  const conn = a.mesh.libp2p.getConnections(b.mesh.libp2p.peerId)[0]!;
  const far = b.mesh.libp2p.getConnections(a.mesh.libp2p.peerId).find((c) => c.id !== undefined)!;
  return { a, conn, far };
}

/** B stops reading its end of the connection: it is still there for TCP, but answers nothing (a hung process). */
function hang(far: Connection): void {
  const socket = (far as unknown as { maConn?: { socket?: unknown } }).maConn?.socket;
  expect(socket).toBeInstanceOf(Socket);
  (socket as Socket).pause();
}

describe('keep-alive', () => {
  it('a peer that stops answering has its connection aborted; one that answers keeps it', async () => {
    const { a, conn, far } = await pair();
    expect(muxerPinger(conn)).toBeDefined();
    keepAlive = new KeepAlive(a.mesh.libp2p, { clock: systemClock, interval: 200, timeout: 1500 });
    expect(await keepAlive.check(conn)).toBe(true);
    keepAlive.start();
    await new Promise((r) => setTimeout(r, 1000)); // several pings, all answered
    expect(conn.status).toBe('open');
    expect(keepAlive.streamPings).toBe(0);
    hang(far);
    await until(() => conn.status !== 'open', 15_000);
  });

  it('a muxer without ping: the ping goes over a stream, and a peer that stops answering it is cut off too', async () => {
    const { a, conn, far } = await pair();
    (conn as unknown as { muxer: { ping?: unknown } }).muxer.ping = undefined;
    expect(muxerPinger(conn)).toBeUndefined();
    keepAlive = new KeepAlive(a.mesh.libp2p, { clock: systemClock, interval: 60_000, timeout: 1500 });
    expect(await keepAlive.check(conn)).toBe(true);
    expect(keepAlive.streamPings).toBe(1);
    hang(far);
    expect(await keepAlive.check(conn)).toBe(false);
    expect(conn.status).not.toBe('open');
  });
});
