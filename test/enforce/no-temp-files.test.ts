/**
 * The kernel apply path writes nothing outside the data dir, and a failed transaction
 * leaves the old ruleset in force (there is no separate `nft -c` pass to catch errors first).
 * Real nftables inside network namespaces this test creates; the agent runs in its own mount
 * namespace whose temp dir is a read-only tmpfs, as under readOnlyRootFilesystem.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NftBackend } from '../../src/enforce/nft.js';
import { IptablesBackend } from '../../src/enforce/iptables.js';
import { run } from '../../src/enforce/exec.js';
import { NFT_FAMILY, NFT_TABLE, nftSetNames, renderNftInPlace } from '../../src/enforce/render-nft.js';
import { compile, type NodeRuleset } from '../../src/policy/compile.js';
import { canUseNetns, NetLab, PROBE } from '../helpers/netns.js';
import { BIN, picket, tempDir } from '../helpers/cli.js';
import { until } from '../helpers/cluster.js';
import { PEER, policy } from '../helpers/trust.js';

const lab = canUseNetns() ? new NetLab() : null;
const DIST = resolve(import.meta.dirname, '../../dist');
const t = tempDir('picket-rofs-');
const cli = (...a: string[]) => picket(t.dir, ...a);

/**
 * Runs `cmd` in `ns` inside a private mount namespace whose TMPDIR is a read-only tmpfs; the
 * wrapper refuses to start the command if the temp dir is writable after all, so the test
 * cannot pass without the condition it claims.
 */
function readOnlyTmp(ns: string, roDir: string, cmd: string[]) {
  const script = 'mount -t tmpfs -o ro tmpfs "$1" && export TMPDIR="$1" TMP="$1" TEMP="$1" && shift || exit 4; ' +
    'if touch "$TMPDIR/probe" 2>/dev/null; then echo "temp dir is writable"; exit 3; fi; exec "$@"';
  return lab!.spawn(ns, ['unshare', '--mount', 'sh', '-c', script, 'sh', roDir, ...cmd]);
}

describe.runIf(lab)('no temp files: applies go over a pipe', () => {
  let a = '', out = '', peer = '';
  const status = () => JSON.parse(cli('status', '--socket', join(t.dir, 'a', 'control.sock'), '--json').stdout) as { policy: { version: number } | null; enforcement: { state: string; backend: string; reason?: string } };

  beforeAll(async () => {
    a = lab!.ns('a');
    out = lab!.ns('out');
    lab!.link(out, '10.90.0.2/24', a, '10.90.0.1/24');
    cli('keygen', '--out', 'admin.key');
    cli('root', 'create', '--key', 'admin.key', '--out', 'root.json');
    peer = cli('keygen', '--node', '--out', 'a.key').stdout.trim();
    writeFileSync(join(t.dir, 'a.yaml'), `meshId: rofs
dataDir: ./a
identityKey: ./a.key
trustedRoot: ./root.json
listen: [/ip4/10.90.0.1/tcp/7946]
enforcement: { backend: nft, failsafe: { sshFrom: [10.90.9.0/24] } }
log: { level: info, pretty: false }
`);
    for (const [v, from] of [[1, '10.90.0.0/24'], [2, '10.90.0.2/32']] as const) {
      writeFileSync(join(t.dir, `p${v}.yaml`), `meshId: rofs
version: ${v}
expires: 2099-01-01
nodes:
  - { name: a, peerId: ${peer}, addresses: [10.90.0.1], roles: [db] }
rules:
  - { name: app, to: role:db, from: cidr:${from}, proto: tcp, ports: [5432] }
`);
      expect(cli('policy', 'sign', `p${v}.yaml`, '--root', 'root.json', '--key', 'admin.key', '--out', `p${v}.signed`).code).toBe(0);
    }
    const srv = lab!.spawn(a, [process.execPath, PROBE, 'serve', '5432']);
    await srv.line(/serving/);
  });
  afterAll(() => { lab?.destroy(); t.cleanup(); });

  it('an agent whose temp dir is read-only enforces the baseline and every published policy', async () => {
    const roDir = join(t.dir, 'ro-tmp');
    mkdirSync(roDir);
    const agent = readOnlyTmp(a, roDir, [process.execPath, BIN, 'agent', '--config', join(t.dir, 'a.yaml')]);
    await agent.line(/control API listening/);
    expect(agent.output()).not.toMatch(/temp dir is writable/);
    expect(status().enforcement).toMatchObject({ backend: 'nft', state: 'baseline' });
    expect(lab!.exec(a, ['nft', 'list', 'table', NFT_FAMILY, NFT_TABLE])).toMatch(/policy drop/);
    expect(lab!.probe(out, '10.90.0.1', 5432)).toBe('closed');
    for (const v of [1, 2]) {
      const r = cli('publish', `p${v}.signed`, '--socket', join(t.dir, 'a', 'control.sock'));
      expect(r.code, r.stderr).toBe(0);
      await until(() => status().policy?.version === v, 20_000);
      expect(status().enforcement.state, status().enforcement.reason).toBe('ok');
    }
    expect(lab!.probe(out, '10.90.0.1', 5432)).toBe('open');
    expect(agent.output()).not.toMatch(/EROFS|enforcement failed/);
  }, 120_000); // a real agent and a dozen CLI runs: slow on a shared CPU, not a bound

  it('the iptables backend applies with a read-only temp dir too', async () => {
    const roDir = join(t.dir, 'ro-tmp-ipt');
    mkdirSync(roDir);
    // A small program in the same mount namespace: apply through the built IptablesBackend
    // (dist/, as the agent runs it), print the outcome.
    const prog = join(t.dir, 'ipt-apply.mjs');
    writeFileSync(prog, `import { IptablesBackend } from ${JSON.stringify(join(DIST, 'enforce/iptables.js'))};
import { compile } from ${JSON.stringify(join(DIST, 'policy/compile.js'))};
const p = JSON.parse(process.argv[2]);
const b = new IptablesBackend();
try { await b.apply(compile(p, p.nodes[0].peerId, { now: Date.now() })); console.log('applied', (await b.readBack())?.hash ?? 'none'); await b.remove(); }
catch (e) { console.log('failed', e.message); }
`);
    const pol = policy(1, { nodes: [{ name: 'a', peerId: PEER(1), addresses: ['10.90.0.1'], roles: ['db'] }], rules: [] });
    const child = readOnlyTmp(a, roDir, [process.execPath, prog, JSON.stringify(pol)]);
    const line = await child.line(/(applied [0-9a-f]{64}|failed .*|temp dir is writable)/, 30_000);
    expect(line).toMatch(/^applied /);
  });
});

describe.runIf(lab)('a failed nft transaction leaves the old ruleset in force', () => {
  let ns = '';
  let backend: NftBackend;
  const nodes = [
    { name: 'db', peerId: PEER(1), addresses: ['10.91.0.2'], roles: ['db'] },
    { name: 'web', peerId: PEER(2), addresses: ['10.91.0.1'], roles: ['web'] },
  ];
  const rs = (v: number, port: number): NodeRuleset => compile(policy(v, {
    nodes, rules: [{ name: 'app', to: ['role:db'], from: ['role:web'], proto: 'tcp', ports: [{ first: port, last: port }] }],
  }), PEER(1), { now: Date.now(), meshPorts: [7946], sshFrom: ['10.91.9.0/24'] });

  beforeAll(async () => {
    ns = lab!.ns('atomic');
    backend = new NftBackend({ wrap: ['ip', 'netns', 'exec', ns] });
    await backend.apply(rs(1, 5432));
  });

  // Each bad last line fails at a different stage: the parser, nft's evaluation, and the
  // kernel itself (EEXIST while processing the batch, after every earlier command was sent).
  const badLastLines: [string, (r: NodeRuleset) => string][] = [
    ['a syntax error', () => `add rule ${NFT_FAMILY} ${NFT_TABLE} input tcp dport 5432 acept`],
    ['a port out of range', () => `add rule ${NFT_FAMILY} ${NFT_TABLE} input tcp dport 70000 accept`],
    ['an element the kernel refuses (already present)', () => `create element ${NFT_FAMILY} ${NFT_TABLE} hosts_v4 { 10.91.0.1 . tcp . 6543 }`],
  ];
  for (const [what, bad] of badLastLines) {
    it(`rejects a full replace whose last line has ${what}, and the old ruleset stays`, async () => {
      const before = await backend.readBack();
      const next = rs(2, 6543);
      const good = renderNftInPlace(next, { sets: nftSetNames(rs(1, 5432)), chains: ['input'] });
      await expect(run({ wrap: ['ip', 'netns', 'exec', ns] }, ['nft', '-f', '-'], { input: `${good}${bad(next)}\n` })).rejects.toThrow(/nft -f -/);
      expect((await backend.readBack())?.hash).toBe(before?.hash);
      // The same script without its last line is valid and would have changed the ruleset.
      await run({ wrap: ['ip', 'netns', 'exec', ns] }, ['nft', '-f', '-'], { input: good });
      expect((await backend.readBack())?.hash).not.toBe(before?.hash);
      backend.invalidate();
      await backend.apply(rs(1, 5432));
      expect((await backend.readBack())?.hash).toBe(before?.hash);
    });
  }

  it('a ruleset nft refuses leaves the applied one in force, and the backend applies the next one', async () => {
    const before = await backend.readBack();
    const good = rs(3, 6543);
    // An impossible port, rendered as the last rule of the script.
    const bad: NodeRuleset = { ...good, rules: [...good.rules, { kind: 'rule', name: 'bad', proto: 'tcp', ports: [{ first: 0, last: 99999 }] }] };
    await expect(backend.apply(bad)).rejects.toThrow(/nft/);
    expect((await backend.readBack())?.hash).toBe(before?.hash);
    await backend.apply(good);
    expect((await backend.readBack())?.hash).not.toBe(before?.hash);
  });

  it('an iptables-restore script with an error in its last line changes nothing', async () => {
    const ipt = new IptablesBackend({ wrap: ['ip', 'netns', 'exec', ns] });
    await ipt.apply(rs(4, 5432));
    const before = await ipt.readBack();
    const script = ['*filter', ':PICKET-INPUT - [0:0]', '-F PICKET-INPUT', '-A PICKET-INPUT -p tcp --dport 1 -j ACCEPT', '-A PICKET-INPUT -p tcp --dport 99999 -j ACCEPT', 'COMMIT', ''].join('\n');
    await expect(run({ wrap: ['ip', 'netns', 'exec', ns] }, ['iptables-restore', '--noflush'], { input: script })).rejects.toThrow(/iptables-restore/);
    expect((await ipt.readBack())?.hash).toBe(before?.hash);
    await ipt.remove();
  });
});
