/**
 * Agent room: who may reach the mesh port before this node holds a policy. A fresh node
 * must be reachable by whoever brings its first policy — any node of the fleet, not only
 * the ones it dials — without opening the mesh port to the world: by default the
 * bootstrap peers' addresses and the subnets this host is attached to (a fleet's nodes
 * usually share them). `mesh.allowFrom` replaces the default when the network is wider.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { formatPrefix, parseIp, parsePrefix, bits, type Prefix } from '../policy/ip.js';
import type { AgentConfig } from './config.js';

/** IP addresses of the bootstrap multiaddrs (/ip4/…, /ip6/…; DNS names are not addresses). */
export function bootstrapIps(bootstrap: readonly string[]): string[] {
  return bootstrap.flatMap((a) => { const m = /^\/ip[46]\/([^/]+)/.exec(a); return m && parseIp(m[1]!) ? [m[1]!] : []; });
}

/** The network prefix of an interface address (10.0.1.5/24 → 10.0.1.0/24). */
function networkOf(address: string, len: number): string | undefined {
  const ip = parseIp(address.replace(/%.*$/, ''));
  if (!ip) return undefined;
  const width = bits(ip.family);
  const mask = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(width - len);
  const p: Prefix = { family: ip.family, addr: ip.addr & mask, len };
  return formatPrefix(p);
}

/**
 * This host's subnets from its interfaces: not loopback (`iif lo` is accepted anyway), not
 * IPv6 link-local (fe80::/10, not routable between nodes), not a /0 that would open everything.
 */
export function hostSubnets(ifaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string[] {
  const out = new Set<string>();
  for (const list of Object.values(ifaces)) {
    for (const i of list ?? []) {
      if (i.internal) continue;
      const len = Number(i.cidr?.split('/')[1]);
      if (!Number.isInteger(len) || len === 0) continue;
      if (i.family === 'IPv6' && /^fe[89ab]/i.test(i.address)) continue;
      const n = networkOf(i.address, len);
      if (n && parsePrefix(n).ok) out.add(n);
    }
  }
  return [...out].sort();
}

/** The baseline's mesh sources: mesh.allowFrom when set, else bootstrap peers + own subnets. */
export function baselineMeshFrom(config: AgentConfig, subnets: () => string[] = hostSubnets): string[] {
  if (config.mesh.allowFrom) return [...config.mesh.allowFrom];
  return [...new Set([...bootstrapIps(config.bootstrap), ...subnets()])];
}
