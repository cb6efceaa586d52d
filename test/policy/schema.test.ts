/**
 * The exported JSON Schema says what the validator enforces: for each constrained field, a
 * value the schema accepts is one `policy sign` accepts, and the usual mistakes are refused
 * by both. (The validator stays the authority: it also checks references, duplicates and
 * host bits, which a schema cannot.)
 */
import { describe, expect, it } from 'vitest';
import { jsonSchema } from '../../scripts/gen-docs.js';
import { parsePolicyYaml, PolicyAuthoringSchema } from '../../src/policy/authoring.js';
import { NOW, PEER } from '../helpers/trust.js';

type Json = Record<string, unknown>;
const schema = jsonSchema(PolicyAuthoringSchema, 'policy');
const prop = (...path: string[]): Json => path.reduce<Json>((s, k) => (k === '[]' ? (s.items as Json) : ((s.properties as Record<string, Json>)[k]!)), schema);

/** The subset of JSON Schema these fields use: type, pattern, minimum, maximum, anyOf, oneOf, items. */
function accepts(s: Json, v: unknown): boolean {
  if (s.type === 'string' && typeof v !== 'string') return false;
  if (s.type === 'integer' && !Number.isInteger(v)) return false;
  if (s.type === 'array') return Array.isArray(v) && v.every((x) => accepts(s.items as Json, x));
  if (typeof s.pattern === 'string' && !(typeof v === 'string' && new RegExp(s.pattern, 'u').test(v))) return false;
  if (typeof s.minimum === 'number' && !(typeof v === 'number' && v >= s.minimum)) return false;
  if (typeof s.maximum === 'number' && !(typeof v === 'number' && v <= s.maximum)) return false;
  if (Array.isArray(s.anyOf) && !(s.anyOf as Json[]).some((b) => accepts(b, v))) return false;
  if (Array.isArray(s.oneOf) && (s.oneOf as Json[]).filter((b) => accepts(b, v)).length !== 1) return false;
  return true;
}

const policy = (o: { from?: string; port?: unknown; expires?: string; role?: string }) => `meshId: prod
version: 1
expires: ${JSON.stringify(o.expires ?? '2099-01-01')}
nodes:
  - { name: web-1, peerId: ${PEER(1)}, addresses: [10.0.0.1], roles: [${o.role ?? 'web'}] }
rules:
  - { name: r, to: any, from: ${JSON.stringify(o.from ?? 'any')}, proto: tcp, ports: [${JSON.stringify(o.port ?? 443)}] }
`;
const signs = (text: string) => parsePolicyYaml(text, NOW).ok;

describe('exported policy JSON Schema agrees with the validator', () => {
  const table: { field: string; schema: Json; make: (v: never) => string; good: unknown[]; bad: unknown[] }[] = [
    {
      field: 'rules[].from', schema: prop('rules', '[]', 'from'), make: (v: string) => policy({ from: v }),
      good: ['any', 'role:web', 'node:web-1', `node:${PEER(1)}`, 'cidr:10.0.0.0/8', 'cidr:192.0.2.7/32', 'cidr:192.0.2.7', 'cidr:2001:db8::/32'],
      bad: ['web', 'role:', 'host:web-1', 'cidr:10.0.0.256/32', 'cidr:10.0.0.0/33', 'cidr:10.0.0/8', 'any ', 'cidr:2001:db8::/129'],
    },
    {
      field: 'rules[].ports[]', schema: prop('rules', '[]', 'ports', '[]'), make: (v: unknown) => policy({ port: v }),
      good: [1, 443, 65535, '80', '6000-6010'],
      bad: [0, 65536, 70000, -1, 1.5, 'http', '80-', '-80', '123456'],
    },
    {
      field: 'expires', schema: prop('expires'), make: (v: string) => policy({ expires: v }),
      good: ['2099-01-31', '2099-01-31T00:00:00Z', '2099-01-31T10:30:00+02:00', '2099-01-31T10:30:00.5Z'],
      bad: ['next tuesday', '31/01/2099', '2099-1-31', '2099-01-31Z', '', '1999-12-31'],
    },
    {
      field: 'nodes[].roles[]', schema: prop('nodes', '[]', 'roles', '[]'), make: (v: string) => policy({ role: v }).replace('role:web', 'any'),
      good: ['web', 'db_2', 'a.b-c'],
      bad: ['-web', 'we b', 'x'.repeat(64), 'wéb'],
    },
  ];
  for (const { field, schema: s, make, good, bad } of table) {
    it(`${field}: the schema accepts what sign accepts and refuses the usual mistakes`, () => {
      for (const v of good) {
        expect(signs(make(v as never)), `sign ${JSON.stringify(v)}`).toBe(true);
        expect(accepts(s, v), `schema ${JSON.stringify(v)}`).toBe(true);
      }
      for (const v of bad) {
        expect(signs(make(v as never)), `sign ${JSON.stringify(v)}`).toBe(false);
        expect(accepts(s, v), `schema ${JSON.stringify(v)}`).toBe(false);
      }
    });
  }

  it('version is an integer, names and PeerIds carry their patterns', () => {
    expect(prop('version')).toMatchObject({ type: 'integer', exclusiveMinimum: 0 });
    expect(accepts(prop('nodes', '[]', 'name'), 'web-1')).toBe(true);
    expect(accepts(prop('nodes', '[]', 'name'), 'web 1')).toBe(false);
    expect(accepts(prop('nodes', '[]', 'peerId'), PEER(1))).toBe(true);
    expect(accepts(prop('nodes', '[]', 'peerId'), 'not-a-peer-id')).toBe(false);
    expect(prop('nodes', '[]', 'addresses', '[]')).toMatchObject({ type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] });
  });
});
