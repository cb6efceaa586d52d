import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { coalesceWrites } from '../../src/runtime/socket-writes.js';

/** A connection shaped like @libp2p/tcp's: every chunk of a send is its own socket.write. */
function tcpLike(socket: Socket) {
  return {
    socket,
    sendData(data: Iterable<Uint8Array>) {
      let sentBytes = 0, canSendMore = true;
      for (const b of data) { sentBytes += b.byteLength; canSendMore = socket.write(b); }
      return { sentBytes, canSendMore };
    },
  };
}

let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function pair(): Promise<{ client: Socket; received: () => Buffer }> {
  const chunks: Buffer[] = [];
  server = createServer((s) => { sockets.push(s); s.on('data', (d: Buffer) => chunks.push(d)); });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  sockets.push(client);
  await new Promise<void>((r) => client.once('connect', r));
  return { client, received: () => Buffer.concat(chunks) };
}

/** Counts the socket's trips to the kernel: one _write per chunk, or one _writev per batch. */
function countTrips(s: Socket) {
  const trips = { write: 0, writev: 0 };
  const raw = s as unknown as { _write: (...a: unknown[]) => unknown; _writev: (...a: unknown[]) => unknown };
  const w = raw._write.bind(s), wv = raw._writev.bind(s);
  raw._write = (...a) => { trips.write++; return w(...a); };
  raw._writev = (...a) => { trips.writev++; return wv(...a); };
  return trips;
}

const frames = Array.from({ length: 12 }, (_, i) => [Buffer.from([0, 28]), Buffer.alloc(28, i)]);

describe('coalesceWrites', () => {
  it('sends what a tick writes in one trip, in order', async () => {
    const { client, received } = await pair();
    const conn = tcpLike(client);
    const trips = countTrips(client);
    expect(coalesceWrites(conn)).toBe(true);
    for (const f of frames) conn.sendData(f);
    await new Promise((r) => setImmediate(r));
    expect(trips).toEqual({ write: 0, writev: 1 });
    const want = Buffer.concat(frames.flat());
    await expect.poll(() => received().length).toBe(want.length);
    expect(received().equals(want)).toBe(true);
  });

  it('an unwrapped connection makes one trip per chunk (what it fixes)', async () => {
    const { client } = await pair();
    const conn = tcpLike(client);
    const trips = countTrips(client);
    for (const f of frames) conn.sendData(f);
    await new Promise((r) => setImmediate(r));
    // The first write goes straight out; the rest queue behind it and leave as a batch.
    expect(trips.write + trips.writev).toBeGreaterThan(1);
  });

  it('writes of a later tick still leave (nothing waits for more data)', async () => {
    const { client, received } = await pair();
    const conn = tcpLike(client);
    coalesceWrites(conn);
    conn.sendData([Buffer.from('a')]);
    await new Promise((r) => setImmediate(r));
    conn.sendData([Buffer.from('b')]);
    await expect.poll(() => received().toString()).toBe('ab');
  });

  it('leaves alone what is not a socket connection, and wraps once', async () => {
    expect(coalesceWrites(undefined)).toBe(false);
    expect(coalesceWrites({ socket: {}, sendData: () => ({ sentBytes: 0, canSendMore: true }) })).toBe(false);
    const { client } = await pair();
    const conn = tcpLike(client);
    const before = conn.sendData;
    expect(coalesceWrites(conn)).toBe(true);
    const once = conn.sendData;
    expect(once).not.toBe(before);
    expect(coalesceWrites(conn)).toBe(true);
    expect(conn.sendData).toBe(once);
  });
});
