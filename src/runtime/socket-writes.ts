/**
 * One write syscall per tick per connection, not one per chunk.
 *
 * libp2p's TCP connection (@libp2p/tcp 11, `TCPSocketMultiaddrConnection.sendData`) writes
 * every chunk of what the layers above hand it with its own `socket.write`: Noise sends each
 * frame as a 2-byte length and its ciphertext, and yamux sends a frame's 12-byte header as a
 * Noise frame of its own. Measured on 30 agents (strace, one agent, 12 s around an update):
 * 1,714 write syscalls, median 12 bytes, 831 of them 2 bytes. On loopback every write also runs
 * the receiver's TCP path, so small writes were the largest single CPU cost of an update.
 *
 * `coalesceWrites` corks the connection's socket for the rest of the current tick on its
 * first write: whatever the stack writes in that tick leaves as one `writev` (Node flushes a
 * corked socket's queue in one call on uncork). Nothing is delayed beyond the tick, and order
 * is kept (one socket). A connection that is not a Node socket connection is left alone.
 */
import { Socket } from 'node:net';

interface SendResult { sentBytes: number; canSendMore: boolean }
interface SocketConnection { socket?: unknown; sendData?: (data: Iterable<Uint8Array>) => SendResult }

const wrapped = new WeakSet<object>();

/** True when coalesceWrites wrapped this connection. */
export function isCoalesced(maConn: unknown): boolean {
  return typeof maConn === 'object' && maConn !== null && wrapped.has(maConn);
}

/** Returns true when the connection's writes are (now) coalesced. */
export function coalesceWrites(maConn: unknown): boolean {
  if (typeof maConn !== 'object' || maConn === null) return false;
  const c = maConn as SocketConnection;
  if (wrapped.has(c)) return true;
  const socket = c.socket;
  const send = c.sendData;
  if (!(socket instanceof Socket) || typeof send !== 'function') return false;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  c.sendData = function (this: unknown, data: Iterable<Uint8Array>): SendResult {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return send.call(c, data);
  };
  wrapped.add(c);
  return true;
}
