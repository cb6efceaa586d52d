import { describe, expect, it } from 'vitest';
import { parsePolicyYaml } from '../../src/policy/authoring.js';
import { NOW, PEER } from '../helpers/trust.js';

const base = (rules: string, extra = '') => `meshId: prod
version: 3
expires: 2027-01-31T00:00:00Z
nodes:
  - { name: web-1, peerId: ${PEER(1)}, addresses: [10.0.1.5], roles: [web] }
  - { name: db-1, peerId: ${PEER(2)}, addresses: [10.0.2.7, "2001:db8::7"], roles: [db] }
rules:
${rules}
${extra}`;

const ok = `  - { name: https, to: role:web, from: any, proto: tcp, ports: [443] }
  - { name: app-db, to: role:db, from: role:web, proto: tcp, ports: [5432, "6000-6010"] }`;

function errors(text: string) {
  const r = parsePolicyYaml(text, NOW);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
}

describe('policy authoring', () => {
  it('parses the design example format', () => {
    const r = parsePolicyYaml(base(ok, `exceptions:
  - { name: debug, to: node:web-1, from: cidr:198.51.100.7/32, proto: tcp, ports: [8080], reason: "INC-1", expires: 2026-12-01 }
settings: { onExpiry: baseline }`), NOW);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.policy.version).toBe(3);
    expect(r.policy.issuedAt).toBe(NOW);
    expect(r.policy.rules[1]!.ports).toEqual([{ first: 5432, last: 5432 }, { first: 6000, last: 6010 }]);
    expect(r.policy.exceptions[0]!.expires).toBe(Date.parse('2026-12-01T00:00:00Z'));
    expect(r.policy.settings.onExpiry).toBe('baseline');
  });

  const cases: [string, string, RegExp, number?][] = [
    ['names the field and line of a bad port', base(`${ok}\n  - { name: x, to: any, from: any, proto: tcp, ports: [70000] }`), /rules\[2\]\.ports\[0\]: 70000 is not a port/, 10],
    ['rejects an empty port range', base(`  - { name: x, to: any, from: any, proto: tcp, ports: ["90-80"] }`), /90-80 is an empty range/],
    ['rejects an unknown protocol', base(`  - { name: x, to: any, from: any, proto: sctp, ports: [1] }`), /rules\[0\]\.proto: "sctp" is not tcp, udp or icmp/],
    ['rejects a reference to an undefined role', base(`  - { name: x, to: role:cache, from: any, proto: tcp, ports: [1] }`), /rules\[0\]\.to: role cache is not held by any node/, 8],
    ['rejects a reference to an undefined node', base(`  - { name: x, to: node:web-9, from: any, proto: tcp, ports: [1] }`), /node web-9 is not in nodes/],
    ['rejects a CIDR with host bits set', base(`  - { name: x, to: any, from: cidr:10.0.0.1/8, proto: tcp, ports: [1] }`), /host bits set \(did you mean 10\.0\.0\.0\/8\?\)/],
    ['rejects an invalid CIDR', base(`  - { name: x, to: any, from: cidr:10.0.0.256/32, proto: tcp, ports: [1] }`), /is not an address or CIDR/],
    ['rejects duplicate rule names', base(`${ok}\n  - { name: https, to: any, from: any, proto: udp, ports: [53] }`), /duplicate rule name https/],
    ['rejects an exception without expiry', base(ok, 'exceptions:\n  - { name: e, to: any, from: any, proto: tcp, ports: [1], reason: "r" }'), /exceptions\[0\]: an exception must carry expires/],
    ['rejects an exception without a reason', base(ok, 'exceptions:\n  - { name: e, to: any, from: any, proto: tcp, ports: [1], expires: 2026-12-01 }'), /exceptions\[0\]\.reason: an exception must carry a reason/],
    ['rejects unknown fields', base(ok, 'colour: blue'), /unknown field colour/],
    ['rejects a missing meshId', base(ok).replace('meshId: prod\n', ''), /meshId: is required/],
    ['reports YAML syntax errors with a line', 'meshId: prod\nversion: [1,\n', /YAML syntax error/],
    ['rejects a document that is not a mapping', '- a\n- b\n', /a policy is a YAML mapping/],
    ['rejects a bad date', base(ok).replace('2027-01-31T00:00:00Z', 'next tuesday'), /expires: "next tuesday" is not a date/],
    ['rejects an expiry before the year 2000', base(ok).replace('2027-01-31T00:00:00Z', '1999-12-31'), /expires: 1999-12-31T00:00:00\.000Z is outside years 2000–9999/, 3],
    ['rejects an issuedAt before the year 2000', base(ok, 'issuedAt: 0999-01-01'), /issuedAt: .* is outside years 2000–9999/],
    ['rejects an exception expiring before the year 2000', base(ok, 'exceptions:\n  - { name: e, to: any, from: any, proto: tcp, ports: [1], reason: "r", expires: 1970-01-02 }'), /exceptions\[0\]\.expires: 1970-01-02T00:00:00\.000Z is outside years 2000–9999/],
    ['rejects icmp with ports', base(`  - { name: x, to: any, from: any, proto: icmp, ports: [1] }`), /icmp has no ports/],
    ['rejects duplicate peer ids', base(ok).replace(PEER(2), PEER(1)), /duplicate PeerId/],
    ['rejects an invalid node address', base(ok).replace('10.0.1.5', '10.0.1'), /"10.0.1" is not an IP address/],
    // Wrong types are wrong types, not missing fields.
    ['a quoted version is a wrong type, not a missing field', base(ok).replace('version: 3', 'version: "2"'), /^version: must be an integer, got the string "2"$/, 2],
    ['a fractional version must be an integer', base(ok).replace('version: 3', 'version: 2.5'), /^version: must be an integer, got 2\.5$/, 2],
    ['a meshId that is a number must be a string', base(ok).replace('meshId: prod', 'meshId: 7'), /^meshId: must be a string, got 7$/, 1],
    ['nodes written as a mapping must be a list', base(ok).replace(/nodes:\n(  - .*\n)+/, 'nodes: { web-1: x }\n'), /^nodes: must be a list, got a mapping$/, 4],
    ['settings written as a list must be a mapping', base(ok, 'settings: [keep]'), /^settings: must be a mapping, got a list$/],
    ['a date that is a number is not a date', base(ok).replace('2027-01-31T00:00:00Z', '12'), /^expires: 12 is not a date/, 3],
    // Unknown keys point at their own line, not at the mapping that holds them.
    ['an unknown top-level key points at its own line', base(ok, 'rule:\n  - x'), /^: unknown field rule$/, 10],
    ['an unknown nested key points at its own line', base(ok, 'settings:\n  onExpiry: keep\n  onExpire: baseline'), /^settings: unknown field onExpire$/, 12],
  ];
  for (const [name, text, re, line] of cases) {
    it(name, () => {
      const errs = errors(text);
      const hit = errs.find((e) => re.test(`${e.path}: ${e.message}`));
      expect(hit, JSON.stringify(errs)).toBeDefined();
      if (line !== undefined) expect(hit!.line).toBe(line);
    });
  }

  it('warns about a rule shadowed by an earlier one', () => {
    const r = parsePolicyYaml(base(`  - { name: all, to: any, from: any, proto: tcp, ports: ["1-1000"] }\n  - { name: https, to: role:web, from: role:db, proto: tcp, ports: [443] }`), NOW);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.warnings.map((w) => w.message)).toEqual(['rule https is shadowed by rule all: it allows nothing more']);
  });
});
