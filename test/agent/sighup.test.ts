/** SIGHUP to a real agent process: reloads what it can, names what needs a restart, survives a bad file. */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { picket, tempDir } from '../helpers/cli.js';
import { spawnAgent, waitForSocket, type AgentProcess } from '../helpers/agent-process.js';
import { until } from '../helpers/cluster.js';

const t = tempDir('picket-hup-');
let proc: AgentProcess | null = null;
afterAll(() => {
  if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
  t.cleanup();
});

const config = (sshFrom: string, listen: string) => `meshId: hup
dataDir: ./data
identity: { generate: true }
trustedRoot: ./root.json
listen: [${listen}]
enforcement: { backend: file, failsafe: { sshFrom: [${sshFrom}] } }
log: { level: info, pretty: false }
`;

describe('agent SIGHUP', () => {
  it('reloads the failsafe, names listen as needing a restart, and keeps running on a bad config', { timeout: 90_000 }, async () => {
    picket(t.dir, 'keygen', '--out', 'admin.key');
    picket(t.dir, 'root', 'create', '--key', 'admin.key', '--out', 'root.json');
    const cfg = join(t.dir, 'agent.yaml');
    writeFileSync(cfg, config('10.1.0.0/16', '/ip4/127.0.0.1/tcp/0'));
    proc = spawnAgent(cfg, {}, t.dir);
    await waitForSocket(join(t.dir, 'data', 'control.sock'), proc, 30_000);
    const ruleset = join(t.dir, 'data', 'ruleset.nft');
    expect(readFileSync(ruleset, 'utf8')).toContain('10.1.0.0/16');

    writeFileSync(cfg, config('10.2.0.0/16', '/ip4/127.0.0.1/tcp/1'));
    proc.child.kill('SIGHUP');
    await until(() => readFileSync(ruleset, 'utf8').includes('10.2.0.0/16'), 30_000, () => proc!.output());
    await until(() => /configuration reloaded/.test(proc!.output()), 30_000, () => proc!.output());
    const restartLine = proc.output().split('\n').find((l) => /need a restart/.test(l));
    expect(JSON.parse(restartLine!)).toMatchObject({ fields: ['listen'] });

    writeFileSync(cfg, 'meshId: hup\nsyncInterval: soon\n');
    proc.child.kill('SIGHUP');
    await until(() => /reload refused/.test(proc!.output()), 30_000, () => proc!.output());
    expect(proc.child.exitCode).toBeNull();
    expect(readFileSync(ruleset, 'utf8')).toContain('10.2.0.0/16');
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
  });
});
