/**
 * Self-audit of listening sockets from /proc/net/{tcp,tcp6,udp,udp6}. A socket bound to a
 * non-loopback address on a port the policy does not open for this node is exposure waiting
 * for a firewall mistake: report it, with the owning process where /proc says.
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { explainPortOpen } from './port-open.js';
import type { NodeRuleset } from '../policy/compile.js';

export interface Listener {
  proto: 'tcp' | 'udp';
  address: string;
  port: number;
  inode: string;
  process?: string;
}

function hexToV4(h: string): string {
  const n = parseInt(h, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
}

function hexToV6(h: string): string {
  // Four little-endian 32-bit words.
  const words = [0, 1, 2, 3].map((i) => h.slice(i * 8, i * 8 + 8));
  const bytes = words.flatMap((w) => [6, 4, 2, 0].map((j) => w.slice(j, j + 2)));
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(String(parseInt(bytes[i]! + bytes[i + 1]!, 16).toString(16)));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** Parses one /proc/net table (pure). TCP: state 0A (LISTEN); UDP: state 07 (unconnected). */
export function parseProcNet(text: string, proto: 'tcp' | 'udp', v6: boolean): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [addrHex, portHex] = (f[1] ?? '').split(':');
    const state = f[3];
    if (proto === 'tcp' ? state !== '0A' : state !== '07') continue;
    out.push({ proto, address: v6 ? hexToV6(addrHex!) : hexToV4(addrHex!), port: parseInt(portHex!, 16), inode: f[9]! });
  }
  return out;
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || /^::ffff:7f/.test(address) || address.startsWith('::ffff:127.');
}

/**
 * Maps socket inodes to process names by walking /proc/<pid>/fd. Costly (one readlink per
 * open file of every process), so it is asynchronous, bounded, and only called for new
 * findings; best effort: processes come and go while we look.
 */
export async function processesByInode(wanted: Set<string>, budget = 50_000): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!wanted.size) return out;
  let pids: string[] = [];
  try {
    pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p)).slice(0, 4096);
  } catch {
    return out;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = (await readdir(`/proc/${pid}/fd`)).slice(0, 8192);
    } catch {
      continue;
    }
    for (const fd of fds) {
      if (--budget < 0) return out;
      try {
        const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`));
        if (m && wanted.has(m[1]!)) out.set(m[1]!, `${(await readFile(`/proc/${pid}/comm`, 'utf8')).trim()}[${pid}]`);
      } catch {
        /* the process or the fd went away */
      }
    }
    if (out.size === wanted.size) break;
  }
  return out;
}

export function readListeners(procNet = '/proc/net'): Listener[] {
  const all: Listener[] = [];
  for (const [file, proto, v6] of [['tcp', 'tcp', false], ['tcp6', 'tcp', true], ['udp', 'udp', false], ['udp6', 'udp', true]] as const) {
    try {
      all.push(...parseProcNet(readFileSync(`${procNet}/${file}`, 'utf8'), proto, v6));
    } catch {
      /* no IPv6, or not Linux */
    }
  }
  return all;
}

/** Listeners exposed beyond loopback on ports the ruleset does not open to anyone (pure). */
export function unexpectedListeners(listeners: Listener[], rs: NodeRuleset): Listener[] {
  const seen = new Set<string>();
  return listeners.filter((l) => {
    const key = `${l.proto}/${l.port}`;
    if (isLoopback(l.address) || seen.has(key) || explainPortOpen(rs, l.proto, l.port)) return false;
    seen.add(key);
    return true;
  });
}
