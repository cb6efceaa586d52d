/** `policy sign` against issue 13: it refuses a poison policy with the figure, and warns about revoked failsafe hosts. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { expectOneLineError, picket, tempDir } from '../helpers/cli.js';
import { policyToAuthoring } from '../../src/policy/authoring.js';
import { poisonPolicy } from '../helpers/poison.js';

const t = tempDir();
const run = (...args: string[]) => picket(t.dir, ...args);
let peer1 = '', peer2 = '';
const yaml = (version: number, nodes: string) => `meshId: prod
version: ${version}
expires: 2099-01-31T00:00:00Z
nodes:
${nodes}rules:
  - { name: app, to: role:db, from: role:web, proto: tcp, ports: [5432] }
`;

beforeAll(() => {
  expect(run('keygen', '--out', 'a.key').code).toBe(0);
  peer1 = run('keygen', '--node', '--out', 'n1.key').stdout.trim();
  peer2 = run('keygen', '--node', '--out', 'n2.key').stdout.trim();
  expect(run('root', 'create', '--key', 'a.key', '--policy-key', 'a.pub', '--out', 'root.json').code).toBe(0);
});
afterAll(() => t.cleanup());

describe('policy sign', () => {
  it('refuses a poison policy (120 nodes × 32 addresses, 64 port ranges of 30) as too-large, with the figure', () => {
    const p = poisonPolicy(3, { meshId: 'prod', now: Date.parse('2099-01-01T00:00:00Z') - 86400e3 * 365 * 50 });
    const doc = policyToAuthoring({ ...p, expires: Date.parse('2099-01-31T00:00:00Z') });
    delete (doc as { issuedAt?: string }).issuedAt;
    writeFileSync(t.path('poison.yaml'), stringify(doc));
    const r = run('policy', 'sign', 'poison.yaml', '--root', 'root.json', '--key', 'a.key', '--out', 'poison.signed');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/too-large: v3 compiles to [\d,]+ set elements on its largest node \(limit [\d,]+\)/);
  });

  it('--previous warns when a removed node keeps access because its address is an exact failsafe host', () => {
    writeFileSync(t.path('v1.yaml'), yaml(1, `  - { name: db-1, peerId: ${peer1}, addresses: [10.0.2.7], roles: [db] }\n  - { name: web-1, peerId: ${peer2}, addresses: [10.0.1.5], roles: [web] }\n`));
    expect(run('policy', 'sign', 'v1.yaml', '--root', 'root.json', '--key', 'a.key', '--out', 'v1.signed').code).toBe(0);
    writeFileSync(t.path('v2.yaml'), yaml(2, `  - { name: db-1, peerId: ${peer1}, addresses: [10.0.2.7], roles: [db, web] }\n`));
    const exempt = run('policy', 'sign', 'v2.yaml', '--root', 'root.json', '--key', 'a.key', '--out', 'v2.signed', '--previous', 'v1.signed', '--ssh-from', '10.0.1.5', '--ssh-from', '10.0.0.0/8');
    expect(exempt.code, exempt.stderr).toBe(0);
    expect(exempt.stderr).toMatch(/warning: .*node web-1 is removed but its address 10\.0\.1\.5 is a failsafe host/);
    // Inside a failsafe prefix only: agents block it, nothing to warn about.
    const prefix = run('policy', 'sign', 'v2.yaml', '--root', 'root.json', '--key', 'a.key', '--out', 'v2.signed', '--previous', 'v1.signed', '--ssh-from', '10.0.0.0/8');
    expect(prefix.code).toBe(0);
    expect(prefix.stderr).not.toMatch(/failsafe host/);
  });
});
