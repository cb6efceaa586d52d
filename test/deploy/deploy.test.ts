/**
 * What can be checked here of the deployment recipes: units parsed and run through
 * `systemd-analyze verify` (when installed), the image's context and tags, the DaemonSet's
 * identity, state and writable paths, the cookbook's rendered config and notifications.
 * No Docker daemon, Kubernetes or Chef runs on this machine.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/agent/config.js';

const root = resolve(import.meta.dirname, '../..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

function unit(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) { section = new Map(); out.set(s[1]!, section); continue; }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !section) throw new Error(`not a unit line: ${line}`);
    section.set(kv[1]!, [...(section.get(kv[1]!) ?? []), kv[2]!]);
  }
  return out;
}

const UNITS = ['picket.service', 'picket-enforce.service'] as const;
const PREFIX_BIN = '/opt/picket/bin/picket';
const version = JSON.parse(read('package.json')).version as string;

describe('systemd units', () => {
  const agent = unit(read('deploy/systemd/picket.service'));
  const early = unit(read('deploy/systemd/picket-enforce.service'));
  it.each(UNITS)('%s parses and is hardened', (name) => {
    const u = unit(read(`deploy/systemd/${name}`));
    const svc = u.get('Service')!;
    expect([...u.keys()]).toEqual(['Unit', 'Service', 'Install']);
    for (const [k, v] of [
      ['CapabilityBoundingSet', 'CAP_NET_ADMIN'], ['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['StateDirectory', 'picket'],
      ['SystemCallFilter', '@system-service'], ['UMask', '0077'], ['ProtectKernelLogs', 'yes'], ['SystemCallArchitectures', 'native'],
    ] as const) expect(svc.get(k), `${name} ${k}`).toEqual([v]);
    // Real pointers: shipped docs (file:, inside the installed package) or man pages.
    const docs = u.get('Unit')!.get('Documentation')!;
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) {
      const m = /^file:\/opt\/picket\/lib\/node_modules\/picket\/(.+)$/.exec(d);
      if (m) expect(existsSync(join(root, m[1]!)), d).toBe(true);
      else expect(d).toMatch(/^man:[\w.-]+\(\d\)$/);
      if (m) expect(JSON.parse(read('package.json')).files).toContain(`${m[1]!.split('/')[0]}/`);
    }
  });
  it('the early unit enforces once before the network, with the command the agent package provides', () => {
    const u = early.get('Unit')!, svc = early.get('Service')!;
    expect(svc.get('Type')).toEqual(['oneshot']);
    expect(u.get('DefaultDependencies')).toEqual(['no']);
    expect(u.get('Before')![0]!.split(' ')).toContain('network-pre.target');
    expect(u.get('Wants')![0]!.split(' ')).toContain('network-pre.target');
    // After the distribution's nftables.service, which flushes the whole ruleset.
    expect(u.get('After')![0]!.split(' ')).toContain('nftables.service');
    expect(svc.get('ExecStart')).toEqual([`${PREFIX_BIN} enforce --config /etc/picket/agent.yaml`]);
    expect(early.get('Install')!.get('WantedBy')).toEqual(['sysinit.target']);
  });
  it('the agent unit runs the packaged command after the early unit, and reloads with SIGHUP', () => {
    const u = agent.get('Unit')!, svc = agent.get('Service')!;
    expect(u.get('After')![0]!.split(' ')).toContain('picket-enforce.service');
    expect(u.get('Wants')![0]!.split(' ')).toContain('picket-enforce.service');
    expect(svc.get('ExecStart')).toEqual([`${PREFIX_BIN} agent --config /etc/picket/agent.yaml`]);
    expect(svc.get('ExecStartPre')).toEqual([`${PREFIX_BIN} agent --config /etc/picket/agent.yaml --check`]);
    expect(svc.get('ExecReload')![0]).toContain('-HUP');
    expect(svc.get('Restart')).toEqual(['always']);
    expect(JSON.parse(read('package.json')).bin.picket).toBe('bin/picket.js');
    expect(read('deploy/systemd/picket.service')).not.toContain('/usr/lib/node_modules');
  });
  it('systemd-analyze verify accepts both units (with the command pointed at this checkout)', (ctx) => {
    const which = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (which.error) {
      console.warn(`skipping systemd-analyze verify: ${which.error.message} (install systemd to run it)`);
      ctx.skip();
      return;
    }
    // verify also checks that ExecStart exists: point it at this checkout's executable.
    const dir = mkdtempSync(join(tmpdir(), 'picket-units-'));
    try {
      for (const name of UNITS) writeFileSync(join(dir, name), read(`deploy/systemd/${name}`).replaceAll(PREFIX_BIN, join(root, 'bin/picket.js')));
      const r = spawnSync('systemd-analyze', ['verify', ...UNITS.map((n) => join(dir, n))], { encoding: 'utf8', cwd: dir });
      expect(r.stderr + r.stdout).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('runs node with memory options node accepts, the same as the container image', () => {
    const opts = agent.get('Service')!.get('Environment')!.map((e) => /^NODE_OPTIONS=(.*)$/.exec(e)?.[1]).find(Boolean)!;
    expect(opts).toContain('--max-semi-space-size=');
    const r = spawnSync(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS: opts }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(read('deploy/container/Dockerfile')).toContain(`NODE_OPTIONS=${opts}`);
  });
  it.each(UNITS)('%s is the same file the Chef cookbook installs', (name) => {
    expect(read(`deploy/chef/picket/files/default/${name}`)).toBe(read(`deploy/systemd/${name}`));
  });
});

/** Which paths a `.dockerignore` lets into the build context (the `*` + `!path` allow-list form). */
function dockerContext(ignore: string, paths: string[]): string[] {
  const rules = ignore.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const glob = (g: string) => new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
  return paths.filter((p) => {
    let included = true;
    for (const r of rules) {
      if (r.startsWith('!')) { if (glob(r.slice(1)).test(p)) included = true; } else if (glob(r).test(p)) included = false;
    }
    return included;
  });
}

describe('container image', () => {
  const d = read('deploy/container/Dockerfile');
  it('is built on a supported Node LTS with nftables, and enforces before it runs the agent', () => {
    const from = /^FROM node:(\d+)-(\w+)-slim$/m.exec(d);
    expect(from, 'FROM node:<major>-<debian>-slim').not.toBeNull();
    expect(Number(from![1])).toBeGreaterThanOrEqual(22); // Node 20 is past end of life
    expect(d).toMatch(/apt-get install .*nftables/);
    expect(d).toMatch(/ENTRYPOINT \["\/usr\/local\/bin\/picket-entrypoint"\]/);
    const entry = read('deploy/container/entrypoint.sh');
    const enforce = entry.indexOf('picket enforce --config "$config"');
    const agentAt = entry.indexOf('exec picket agent --config "$config"');
    expect(enforce).toBeGreaterThan(0);
    expect(agentAt).toBeGreaterThan(enforce);
    expect(spawnSync('sh', ['-n', join(root, 'deploy/container/entrypoint.sh')]).status).toBe(0);
  });
  it('the documented build command and every manifest use the same tag: the package version', () => {
    const tags = new Set<string>();
    for (const f of ['deploy/container/Dockerfile', 'docs/operations.md']) {
      for (const m of read(f).matchAll(/docker build [^\n]*-t (\S+)/g)) tags.add(m[1]!);
    }
    for (const doc of parseAllDocuments(read('deploy/kubernetes/daemonset.yaml')).map((x) => x.toJS())) {
      for (const c of [...(doc.spec?.template?.spec?.initContainers ?? []), ...(doc.spec?.template?.spec?.containers ?? [])]) tags.add(c.image);
    }
    expect([...tags]).toEqual([`picket:${version}`]);
  });
  it('.dockerignore sends only what the Dockerfile copies: no node_modules, .git, dist, keys or reports', () => {
    const ignore = read('.dockerignore');
    const tree = ['picket-0.1.0.tgz', 'deploy/container/entrypoint.sh', 'deploy/container/Dockerfile', 'node_modules/level/package.json', '.git/HEAD', 'dist/cli/main.js',
      'bench-out/run.json', 'chaos-report/index.html', 'src/agent/agent.ts', 'admin.key', 'test/deploy/deploy.test.ts'];
    expect(dockerContext(ignore, tree)).toEqual(['picket-0.1.0.tgz', 'deploy/container/entrypoint.sh']);
    for (const m of d.matchAll(/^COPY (\S+)/gm)) expect(dockerContext(ignore, [m[1]!.replace('*', '0.1.0')]), m[1]).toHaveLength(1);
  });
});

describe('Kubernetes DaemonSet', () => {
  const docs = parseAllDocuments(read('deploy/kubernetes/daemonset.yaml')).map((x) => x.toJS());
  const ds = docs.find((x) => x.kind === 'DaemonSet');
  const spec = ds.spec.template.spec;
  const agentC = spec.containers.find((c: { name: string }) => c.name === 'agent');
  const cm = docs.find((x) => x.kind === 'ConfigMap');
  const cfg = parseConfigText(cm.data['agent.yaml'], 'agent.yaml');
  type Mount = { name: string; mountPath: string; readOnly?: boolean };
  const volume = (name: string) => spec.volumes.find((v: { name: string }) => v.name === name);
  const mountFor = (c: { volumeMounts: Mount[] }, path: string) => c.volumeMounts.filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];

  it('host network, NET_ADMIN only, selector matches', () => {
    expect(ds).toMatchObject({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'picket' } });
    expect(spec.hostNetwork).toBe(true);
    expect(agentC.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN'] });
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
  });
  it('each node keeps its own identity and state on a hostPath: no Secret carries a node key', () => {
    const keyMount = mountFor(agentC, cfg.identityKey)!;
    expect(volume(keyMount.name).hostPath, 'identityKey lives on the node').toBeDefined();
    expect(mountFor(agentC, cfg.dataDir)!.name).toBe(keyMount.name);
    expect(volume(mountFor(agentC, cfg.dataDir)!.name).hostPath.path).toBe(cfg.dataDir);
    // The init container creates the key once per node, in the same host directory.
    const init = spec.initContainers.find((c: { name: string }) => c.name === 'identity');
    expect(init.args.join(' ')).toContain(`picket keygen --node --out ${cfg.identityKey}`);
    expect(volume(mountFor(init, cfg.identityKey)!.name).hostPath.path).toBe(cfg.dataDir);
    for (const v of spec.volumes) if (v.secret) expect(JSON.stringify(v)).not.toMatch(/node\.key|identity/);
  });
  it('the root filesystem is read-only and the data dir is the only writable path', () => {
    for (const c of [...spec.initContainers, ...spec.containers]) {
      expect(c.securityContext.readOnlyRootFilesystem, c.name).toBe(true);
      const writable = (c.volumeMounts as Mount[]).filter((m) => !m.readOnly).map((m) => m.mountPath);
      expect(writable, c.name).toEqual([cfg.dataDir]);
    }
    // Everything the agent writes resolves inside the data dir.
    expect(cfg.control.socket.startsWith(`${cfg.dataDir}/`)).toBe(true);
    const tmp = (agentC.env as { name: string; value: string }[]).find((e) => e.name === 'TMPDIR')!.value;
    expect(tmp.startsWith(`${cfg.dataDir}/`)).toBe(true);
    expect(spec.initContainers[0].args.join(' ')).toContain(`mkdir -p ${tmp}`);
  });
  it('the agent config in the ConfigMap is one the agent accepts, and names the config path the image reads', () => {
    expect(cfg.meshId).toBe('prod');
    expect(mountFor(agentC, cfg.trustedRoot)!.readOnly).toBe(true);
    expect(agentC.env).toContainEqual({ name: 'PICKET_CONFIG', value: '/etc/picket/agent.yaml' });
    expect(mountFor(agentC, '/etc/picket/agent.yaml')!.name).toBe('config');
  });
});

describe('Chef cookbook', () => {
  /** Reads `default['picket']['x'] = <ruby literal>` attributes (strings, numbers, nil, arrays of strings). */
  function attributes(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const m of read('deploy/chef/picket/attributes/default.rb').matchAll(/^default\['picket'\]\['(\w+)'\] = (.+)$/gm)) {
      out[m[1]!] = JSON.parse(m[2]!.replace(/'/g, '"').replace(/^nil$/, 'null'));
    }
    return out;
  }
  /** Renders the ERB subset the template uses: <%= @name %> and <%= @name.to_json %>. */
  function render(tpl: string, vars: Record<string, unknown>): string {
    return tpl.replace(/<%= @(\w+)(\.to_json)? %>/g, (_, name: string, json?: string) => {
      if (!(name in vars)) throw new Error(`template uses @${name}, which the recipe does not pass`);
      return json ? JSON.stringify(vars[name]) : String(vars[name]);
    });
  }
  const recipe = read('deploy/chef/picket/recipes/default.rb');
  /** The body of the resource `type 'name'` (up to its `end`). */
  const resource = (head: RegExp) => {
    const m = head.exec(recipe);
    expect(m, String(head)).not.toBeNull();
    const rest = recipe.slice(m!.index);
    return rest.slice(0, rest.search(/^end$/m) + 3);
  };

  it('renders a config that the agent accepts, from the default attributes', () => {
    const attrs: Record<string, unknown> = { ...attributes(), identity_key: '/etc/picket/node.key' };
    const passed = [...recipe.matchAll(/^\s+(\w+): (?:node\['picket'\]\['(\w+)'\]|(identity_key))/gm)].map((m) => [m[1]!, attrs[m[2] ?? m[3]!]] as const);
    const text = render(read('deploy/chef/picket/templates/default/agent.yaml.erb'), Object.fromEntries(passed));
    const cfg = parseConfigText(text, 'agent.yaml');
    expect(cfg).toMatchObject({ meshId: 'prod', dataDir: '/var/lib/picket', identityKey: '/etc/picket/node.key', enforcement: { backend: 'nft', failsafe: { sshFrom: ['10.0.0.0/8'] } }, control: { socket: '/run/picket/control.sock', metrics: '127.0.0.1:9464' } });
    expect(cfg.alerts).toContainEqual(expect.objectContaining({ type: 'pagerduty', routingKeyFile: '/etc/picket/pd.key' }));
    expect(parse(text)).toBeTruthy();
  });
  it('installs a supported Node from NodeSource, not the distribution nodejs (18.x on Debian 12)', () => {
    expect(Number(attributes().node_major)).toBeGreaterThanOrEqual(22);
    expect(resource(/^apt_repository 'nodesource' do$/m)).toMatch(/uri "https:\/\/deb\.nodesource\.com\/node_#\{node\['picket'\]\['node_major'\]\}\.x"/);
    expect(resource(/^apt_preference 'nodejs' do$/m)).toContain("pin 'origin deb.nodesource.com'");
    expect(recipe).not.toMatch(/package %w\([^)]*\bnpm\b/); // NodeSource's nodejs carries npm
    expect(recipe.indexOf("apt_repository 'nodesource'")).toBeLessThan(recipe.indexOf("package 'nodejs'"));
  });
  it('fetches the package with a checksum and installs it under the prefix the units name', () => {
    expect(resource(/^remote_file tarball do$/m)).toContain('checksum sha256');
    expect(recipe).toMatch(/raise .* if sha256\.nil\? \|\| sha256\.empty\?/);
    expect(recipe).toContain("prefix = '/opt/picket'");
    expect(resource(/^execute 'install picket' do$/m)).toContain('npm install -g --prefix #{prefix} #{tarball}');
    expect(recipe).not.toContain('/usr/lib/node_modules');
    // Every command the recipe runs is the prefixed binary, never whatever `picket` is on PATH.
    for (const m of recipe.matchAll(/"#\{picket\} ([^"]+)"/g)) expect(m[1]).toMatch(/^(agent|keygen|--version)/);
    expect(recipe).not.toMatch(/['"]picket (agent|keygen|enforce)/);
  });
  it('restarts for fields the agent cannot reload (listen, dataDir, identityKey, meshId) and reloads for the rest', () => {
    const restart = resource(/^file '\/etc\/picket\/\.restart-fields\.json' do$/m);
    expect(restart).toContain("notifies :restart, 'service[picket]'");
    const fields = [...recipe.slice(recipe.indexOf('restart_fields = {'), recipe.indexOf('}', recipe.indexOf('restart_fields = {'))).matchAll(/'(\w+)' =>/g)].map((m) => m[1]);
    expect(fields.sort()).toEqual(['dataDir', 'identityKey', 'listen', 'meshId']);
    const tpl = resource(/^template '\/etc\/picket\/agent\.yaml' do$/m);
    expect(tpl).toContain("notifies :reload, 'service[picket]'");
    expect(tpl).not.toContain(':restart');
    // The values behind the restart fields are the ones the template renders.
    expect(recipe).toMatch(/'meshId' => node\['picket'\]\['mesh_id'\]/);
    expect(tpl).toMatch(/mesh_id: node\['picket'\]\['mesh_id'\]/);
    expect(recipe).toMatch(/'listen' => node\['picket'\]\['listen'\]/);
    expect(tpl).toMatch(/listen: node\['picket'\]\['listen'\]/);
    expect(recipe).toMatch(/'dataDir' => node\['picket'\]\['data_dir'\]/);
    expect(tpl).toMatch(/data_dir: node\['picket'\]\['data_dir'\]/);
    expect(tpl).toMatch(/identity_key: identity_key/);
  });
  it('installs and enables the early enforce unit next to the agent unit', () => {
    expect(recipe).toContain('%w(picket-enforce.service picket.service).each');
    expect(resource(/^service 'picket-enforce' do$/m)).toContain('action :enable');
  });
});

describe('packaging', () => {
  it('npm pack ships the built CLI, the protos and the deploy recipes', async () => {
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
    const files = new Set((JSON.parse(out) as [{ files: { path: string }[] }])[0].files.map((f) => f.path));
    for (const f of ['bin/picket.js', 'dist/bundle/main.js', 'dist/cli/main.js', 'dist/gen/proto.js', 'proto/picket/policy/v1/policy.proto', 'deploy/systemd/picket.service', 'deploy/systemd/picket-enforce.service', 'deploy/container/entrypoint.sh', 'docs/operations.md', 'package.json']) {
      expect(files.has(f), f).toBe(true);
    }
    expect([...files].some((f) => f.startsWith('test/') || f.startsWith('src/'))).toBe(false);
  });
});
