/** Where the CLI looks for the agent: one default, shared with the agent's config. */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveSocket } from '../../src/cli/client.js';
import { buildConfig } from '../../src/agent/config.js';
import { DEFAULT_CONFIG_PATH } from '../../src/agent/defaults.js';
import { tempDir } from '../helpers/cli.js';

const t = tempDir('picket-socket-');
afterAll(() => t.cleanup());
const minimal = 'meshId: m\ndataDir: ./state\nidentityKey: ./node.key\ntrustedRoot: ./root.json\n';

describe('control socket default', async () => {
  it('the agent and the CLI agree on the socket of a config that does not name one', async () => {
    writeFileSync(t.path('agent.yaml'), minimal);
    const agentSide = buildConfig({ meshId: 'm', dataDir: './state', identityKey: './node.key', trustedRoot: './root.json' }, t.dir).control.socket;
    expect(agentSide).toBe(join(t.dir, 'state', 'control.sock'));
    expect(await resolveSocket({ config: t.path('agent.yaml') }, {})).toBe(agentSide);
    expect(await resolveSocket({}, { PICKET_CONFIG: t.path('agent.yaml') })).toBe(agentSide);
  });

  it('precedence: --socket, then --config, then $PICKET_SOCKET, then $PICKET_CONFIG', async () => {
    writeFileSync(t.path('other.yaml'), `${minimal}control: { socket: /run/x/other.sock }\n`);
    const env = { PICKET_SOCKET: '/env.sock', PICKET_CONFIG: t.path('agent.yaml') };
    expect(await resolveSocket({ socket: '/flag.sock', config: t.path('other.yaml') }, env)).toBe('/flag.sock');
    expect(await resolveSocket({ config: t.path('other.yaml') }, env)).toBe('/run/x/other.sock');
    expect(await resolveSocket({}, env)).toBe('/env.sock');
  });

  it('an unreadable or invalid config is one clear error naming the file', async () => {
    await expect(resolveSocket({ config: t.path('missing.yaml') }, {})).rejects.toThrow(/missing\.yaml: cannot read agent config \(no such file\)/);
    writeFileSync(t.path('bad.yaml'), 'meshId: m\n');
    await expect(resolveSocket({ config: t.path('bad.yaml') }, {})).rejects.toThrow(/bad\.yaml.*dataDir/);
  });

  it('with nothing to go on, it reads the default config path or says how to point at the agent', async () => {
    if (existsSync(DEFAULT_CONFIG_PATH)) expect(typeof (await resolveSocket({}, {}))).toBe('string');
    else await expect(resolveSocket({}, {})).rejects.toThrow(new RegExp(`no agent config at ${DEFAULT_CONFIG_PATH}: .*--config agent.yaml or --socket`));
  });
});
