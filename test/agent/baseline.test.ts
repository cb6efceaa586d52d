/** Who may reach the mesh port before a policy: mesh.allowFrom, or bootstrap peers + own subnets. */
import { describe, expect, it } from 'vitest';
import type { NetworkInterfaceInfo } from 'node:os';
import { baselineMeshFrom, hostSubnets } from '../../src/agent/baseline.js';
import { buildConfig } from '../../src/agent/config.js';

const iface = (address: string, cidr: string, family: 'IPv4' | 'IPv6', internal = false) =>
  ({ address, cidr, family, internal, netmask: '', mac: '00:00:00:00:00:00', ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as NetworkInterfaceInfo;

const ifaces = {
  lo: [iface('127.0.0.1', '127.0.0.1/8', 'IPv4', true), iface('::1', '::1/128', 'IPv6', true)],
  eth0: [iface('10.0.1.5', '10.0.1.5/24', 'IPv4'), iface('fe80::1', 'fe80::1/64', 'IPv6'), iface('2001:db8:1::5', '2001:db8:1::5/64', 'IPv6')],
  tun0: [iface('192.0.2.9', '192.0.2.9/0', 'IPv4')],
};

const cfg = (extra: Record<string, unknown>) => buildConfig({ meshId: 'm', dataDir: '/d', trustedRoot: '/r.json', ...extra }, '/');

describe('baseline mesh sources', () => {
  it('takes the subnets of the host interfaces, never loopback, link-local or a /0', () => {
    expect(hostSubnets(ifaces)).toEqual(['10.0.1.0/24', '2001:db8:1::/64']);
  });

  it('defaults to the bootstrap peers plus the host subnets', () => {
    const c = cfg({ bootstrap: ['/ip4/172.16.0.9/tcp/7946/p2p/12D3KooWabc', '/dns4/seed.example/tcp/7946/p2p/12D3KooWdef'] });
    expect(baselineMeshFrom(c, () => hostSubnets(ifaces))).toEqual(['172.16.0.9', '10.0.1.0/24', '2001:db8:1::/64']);
  });

  it('uses mesh.allowFrom alone when it is set (an empty list admits nobody before a policy)', () => {
    expect(baselineMeshFrom(cfg({ mesh: { allowFrom: ['10.9.0.0/16'] } }), () => hostSubnets(ifaces))).toEqual(['10.9.0.0/16']);
    expect(baselineMeshFrom(cfg({ mesh: { allowFrom: [] } }), () => hostSubnets(ifaces))).toEqual([]);
  });

  it('rejects a mesh.allowFrom entry with host bits set', () => {
    expect(() => cfg({ mesh: { allowFrom: ['10.9.0.1/16'] } })).toThrow(/mesh\.allowFrom\[0\]/);
  });
});
