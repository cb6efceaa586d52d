/** What can be checked here of the deployment recipes (no systemd, Docker, Kubernetes or Chef on this machine). */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

describe('systemd unit', () => {
  const u = unit(read('deploy/systemd/picket.service'));
  const svc = u.get('Service')!;
  it('parses and is hardened', () => {
    expect([...u.keys()]).toEqual(['Unit', 'Service', 'Install']);
    expect(svc.get('CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN']);
    expect(svc.get('NoNewPrivileges')).toEqual(['yes']);
    expect(svc.get('ProtectSystem')).toEqual(['strict']);
    expect(svc.get('Restart')).toEqual(['always']);
    expect(svc.get('StateDirectory')).toEqual(['picket']);
    expect(svc.get('RuntimeDirectory')).toEqual(['picket']);
  });
  it('runs the packaged binary with a config the agent can check', () => {
    const exec = svc.get('ExecStart')![0]!;
    const m = /\/usr\/lib\/node_modules\/picket\/(\S+) agent --config (\S+)/.exec(exec);
    expect(m).not.toBeNull();
    expect(existsSync(join(root, m![1]!))).toBe(true); // bin/picket.js, as the package ships it
    expect(JSON.parse(read('package.json')).bin.picket).toBe(m![1]);
    expect(svc.get('ExecReload')![0]).toContain('-HUP');
  });
  it('runs node with memory options node accepts, the same as the container image', () => {
    const opts = svc.get('Environment')!.map((e) => /^NODE_OPTIONS=(.*)$/.exec(e)?.[1]).find(Boolean)!;
    expect(opts).toContain('--max-semi-space-size=');
    const r = spawnSync(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS: opts }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(read('deploy/container/Dockerfile')).toContain(`NODE_OPTIONS=${opts}`);
  });
  it('is the same file the Chef cookbook installs', () => {
    expect(read('deploy/chef/picket/files/default/picket.service')).toBe(read('deploy/systemd/picket.service'));
  });
});

describe('container and Kubernetes', () => {
  it('the Dockerfile installs nftables and runs the agent', () => {
    const d = read('deploy/container/Dockerfile');
    expect(d).toMatch(/apt-get install .*nftables/);
    expect(d).toMatch(/ENTRYPOINT \["picket", "agent"\]/);
  });
  it('the DaemonSet is valid YAML: host network, NET_ADMIN only, host-path state', () => {
    const docs = parseAllDocuments(read('deploy/kubernetes/daemonset.yaml')).map((d) => d.toJS());
    const ds = docs[0];
    expect(ds).toMatchObject({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'picket' } });
    const spec = ds.spec.template.spec;
    expect(spec.hostNetwork).toBe(true);
    expect(spec.containers[0].securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN'] });
    expect(spec.volumes.find((v: { name: string }) => v.name === 'state').hostPath.path).toBe('/var/lib/picket');
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
  });
});

describe('Chef cookbook', () => {
  /** Reads `default['picket']['x'] = <ruby literal>` attributes (strings and arrays of strings). */
  function attributes(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const m of read('deploy/chef/picket/attributes/default.rb').matchAll(/^default\['picket'\]\['(\w+)'\] = (.+)$/gm)) {
      out[m[1]!] = JSON.parse(m[2]!.replace(/'/g, '"'));
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
  it('renders a config that the agent accepts, from the default attributes', () => {
    const attrs = attributes();
    const recipe = read('deploy/chef/picket/recipes/default.rb');
    const passed = [...recipe.matchAll(/^\s+(\w+): node\['picket'\]\['(\w+)'\]/gm)].map((m) => [m[1]!, attrs[m[2]!]] as const);
    const text = render(read('deploy/chef/picket/templates/default/agent.yaml.erb'), Object.fromEntries(passed));
    const cfg = parseConfigText(text, 'agent.yaml');
    expect(cfg).toMatchObject({ meshId: 'prod', dataDir: '/var/lib/picket', enforcement: { backend: 'nft', failsafe: { sshFrom: ['10.0.0.0/8'] } }, control: { socket: '/run/picket/control.sock', metrics: '127.0.0.1:9464' } });
    expect(cfg.alerts).toContainEqual(expect.objectContaining({ type: 'pagerduty', routingKeyFile: '/etc/picket/pd.key' }));
    expect(parse(text)).toBeTruthy();
  });
});

describe('packaging', () => {
  it('npm pack ships the built CLI, the protos and the deploy recipes', async () => {
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
    const files = new Set((JSON.parse(out) as [{ files: { path: string }[] }])[0].files.map((f) => f.path));
    for (const f of ['bin/picket.js', 'dist/cli/main.js', 'dist/gen/proto.js', 'proto/picket/policy/v1/policy.proto', 'deploy/systemd/picket.service', 'package.json']) {
      expect(files.has(f), f).toBe(true);
    }
    expect([...files].some((f) => f.startsWith('test/') || f.startsWith('src/'))).toBe(false);
  });
});
