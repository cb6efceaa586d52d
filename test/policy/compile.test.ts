import { describe, expect, it } from 'vitest';
import { compile, compileBaseline, revokedAddresses, rulesetHash } from '../../src/policy/compile.js';
import { explain } from '../../src/policy/explain.js';
import { parsePrefix, formatPrefix, normalizePrefixes, parseIp, formatIp } from '../../src/policy/ip.js';
import { seededRandom } from '../../src/runtime/random.js';
import { renderNft } from '../../src/enforce/render-nft.js';
import { renderIptables } from '../../src/enforce/render-iptables.js';
import { DAY, NOW, PEER, policy } from '../helpers/trust.js';

const p = policy(3, {
  rules: [
    { name: 'https', to: ['role:web'], from: ['any'], proto: 'tcp', ports: [{ first: 443, last: 443 }] },
    { name: 'app-db', to: ['role:db'], from: ['role:web'], proto: 'tcp', ports: [{ first: 5432, last: 5432 }] },
    { name: 'ssh', to: ['any'], from: ['cidr:203.0.113.0/24', 'cidr:2001:db8:ff::/48'], proto: 'tcp', ports: [{ first: 22, last: 22 }] },
    { name: 'ping', to: ['any'], from: ['role:web'], proto: 'icmp', ports: [] },
  ],
  exceptions: [
    { name: 'debug', to: ['node:db-1'], from: ['cidr:198.51.100.7/32'], proto: 'tcp', ports: [{ first: 8080, last: 8080 }], reason: 'INC-1', expires: NOW + DAY },
    { name: 'old', to: ['node:db-1'], from: ['any'], proto: 'tcp', ports: [{ first: 9000, last: 9000 }], reason: 'INC-0', expires: NOW - 1 },
  ],
});
const db = compile(p, 'db-1', { now: NOW, sshFrom: ['10.9.0.0/16'] });

describe('explain over the compiled ruleset', () => {
  const cases: [string, string, number | undefined, 'tcp' | 'udp' | 'icmp', string, string?][] = [
    ['web may reach db on 5432', '10.0.1.5', 5432, 'tcp', 'ALLOW', 'app-db'],
    ['web over IPv6 may reach db on 5432', '2001:db8::5', 5432, 'tcp', 'ALLOW', 'app-db'],
    ['a stranger may not reach db on 5432', '10.0.1.6', 5432, 'tcp', 'DROP'],
    ['nobody reaches https on db (rule is for web)', '10.0.1.5', 443, 'tcp', 'DROP'],
    ['ssh from the admin range', '203.0.113.77', 22, 'tcp', 'ALLOW', 'ssh'],
    ['ssh from the IPv6 admin range', '2001:db8:ff::1', 22, 'tcp', 'ALLOW', 'ssh'],
    ['udp to an allowed tcp port is dropped', '10.0.1.5', 5432, 'udp', 'DROP'],
    ['an unexpired exception opens its port', '198.51.100.7', 8080, 'tcp', 'ALLOW', 'debug'],
    ['an expired exception is closed', '198.51.100.7', 9000, 'tcp', 'DROP'],
    ['the mesh port is open to mesh peers', '10.0.1.5', 7946, 'tcp', 'ALLOW', 'mesh'],
    ['the mesh port is closed to others', '192.0.2.1', 7946, 'tcp', 'DROP'],
    ['failsafe ssh is open', '10.9.3.4', 22, 'tcp', 'ALLOW', 'failsafe-ssh'],
    ['icmp from web', '10.0.1.5', undefined, 'icmp', 'ALLOW', 'ping'],
    ['icmp from elsewhere', '192.0.2.1', undefined, 'icmp', 'DROP'],
    ['loopback', '127.0.0.1', 5432, 'tcp', 'ALLOW'],
  ];
  for (const [name, from, port, proto, action, rule] of cases) {
    it(name, () => {
      const v = explain(db, { from, proto, ...(port !== undefined ? { port } : {}) });
      expect(v.action).toBe(action);
      if (rule) expect(v.reason === 'rule' && v.rule.name).toBe(rule);
    });
  }
  it('a removed node is blocked before anything else', () => {
    const next = policy(4, { nodes: p.nodes.filter((n) => n.name !== 'web-1'), rules: [{ name: 'all', to: ['any'], from: ['any'], proto: 'tcp', ports: [{ first: 1, last: 65535 }] }] });
    const blocked = revokedAddresses(p, next);
    expect(blocked).toEqual(['10.0.1.5', '2001:db8::5']);
    const rs = compile(next, 'db-1', { now: NOW, blocked });
    expect(explain(rs, { from: '10.0.1.5', port: 22, proto: 'tcp' })).toMatchObject({ action: 'DROP', reason: 'blocked' });
    expect(renderNft(rs)).toContain('set blocked_v4 { type ipv4_addr; flags interval; elements = { 10.0.1.5 } }');
  });
  it('records when the ruleset changes by itself (next exception expiry)', () => {
    expect(db.nextChangeAt).toBe(NOW + DAY);
  });
});

describe('compile and render', () => {
  it('the baseline opens only the mesh port to bootstrap peers and the failsafe', () => {
    const rs = compileBaseline({ now: NOW, meshPeers: ['10.0.0.5'], meshPorts: [7000], sshFrom: ['10.0.0.0/8'] });
    expect(rs.rules.map((r) => r.kind)).toEqual(['mesh', 'failsafe']);
    expect(explain(rs, { from: '10.0.0.5', port: 7000, proto: 'tcp' }).action).toBe('ALLOW');
    expect(explain(rs, { from: '10.0.0.6', port: 7000, proto: 'tcp' }).action).toBe('DROP');
    const text = renderNft(rs);
    expect(text).toContain('policy drop;');
    expect(text).toContain('comment "picket: baseline (no policy)"');
  });
  it('renders a default-drop table with the blocked set before established', () => {
    const text = renderNft(db);
    expect(text.startsWith('table inet picket\ndelete table inet picket\ntable inet picket {')).toBe(true);
    expect(text.indexOf('@blocked_v4 drop')).toBeLessThan(text.indexOf('ct state established,related accept'));
    expect(text).not.toContain('9000');
  });
  it('renders iptables with the same rules, one source at a time', () => {
    const v4 = renderIptables(db, 4);
    expect(v4).toContain('-A PICKET-INPUT -s 10.0.1.5 -p tcp -m multiport --dports 5432 -m comment --comment "rule:app-db" -j ACCEPT');
    // The input chain ends in its default drop (the output and forward chains follow, empty unless the policy asks).
    const input = v4.split('\n').filter((l) => l.startsWith('-A PICKET-INPUT '));
    expect(input.at(-1)).toBe('-A PICKET-INPUT -j PICKET-DROP');
    expect(v4.trim().endsWith('COMMIT')).toBe(true);
    expect(v4).not.toMatch(/-A PICKET-(OUTPUT|FORWARD) /);
    expect(renderIptables(db, 6)).toContain('-s 2001:db8::5 -p tcp');
  });
  it('hashes equal rulesets equally and different ones differently', () => {
    expect(rulesetHash(compile(p, 'db-1', { now: NOW, sshFrom: ['10.9.0.0/16'] }))).toBe(rulesetHash(db));
    expect(rulesetHash(compile(p, 'web-1', { now: NOW }))).not.toBe(rulesetHash(db));
  });
  it('refuses to compile for a node that is not in the policy', () => {
    expect(() => compile(p, PEER(9), { now: NOW })).toThrow(/not in policy/);
  });
});

describe('ip', () => {
  it('parses and formats IPv4 and IPv6', () => {
    expect(formatIp(6, parseIp('2001:0db8:0000:0000:0000:0000:0000:0001')!.addr)).toBe('2001:db8::1');
    // The parser against the grammar it replaced (four octets matching /^(0|[1-9]\d{0,2})$/, each ≤ 255).
    const reference = (t: string) => { const p = t.split('.'); return p.length === 4 && p.every((o) => /^(0|[1-9]\d{0,2})$/.test(o) && Number(o) <= 255); };
    const tricky = ['1.2.3.4', '0.0.0.0', '255.255.255.255', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1.2.3.', '.1.2.3', '1..2.3', '1.2.3.4.5', '1.2.3', '', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.+4', '1.2.3.-4', '1.2.3.1e2', '１.2.3.4', '1.2.3.4/8', '00.0.0.0', '0.0.0.00', '999.1.1.1', '1.2.3.255', '1.2.3.256', '100.200.250.25'];
    const rnd = seededRandom(11), chars = '0123456789.';
    for (let i = 0; i < 3000; i++) tricky.push(Array.from({ length: 5 + Math.floor(rnd.next() * 12) }, () => chars[Math.floor(rnd.next() * chars.length)]).join(''));
    for (const t of tricky) {
      expect(parseIp(t)?.family === 4, t).toBe(reference(t));
      if (reference(t)) expect(parseIp(t)!.addr, t).toBe(BigInt(t.split('.').reduce((v, o) => v * 256 + Number(o), 0)));
    }
    // IPv4 at the edges of each octet and of the 32-bit range (the top bit set: no sign slips in).
    for (const a of ['0.0.0.0', '255.255.255.255', '128.0.0.1', '1.2.3.4', '10.255.0.254', '192.168.100.7', '127.0.1.30']) expect(formatIp(4, parseIp(a)!.addr)).toBe(a);
    expect(formatIp(6, parseIp('::ffff:10.0.0.1')!.addr)).toBe('::ffff:a00:1');
    expect(parseIp('1.2.3')).toBeUndefined();
    expect(parseIp('01.2.3.4')).toBeUndefined();
    expect(parseIp('1::2::3')).toBeUndefined();
  });
  it('normalizes overlapping prefixes (nft interval sets refuse overlaps)', () => {
    const list = ['10.0.0.0/8', '10.1.0.0/16', '192.168.1.1'].map((s) => (parsePrefix(s) as { ok: true; prefix: never }).prefix);
    expect(normalizePrefixes(list).map(formatPrefix)).toEqual(['10.0.0.0/8', '192.168.1.1']);
  });
});
