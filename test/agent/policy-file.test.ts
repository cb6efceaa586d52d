/**
 * The policyFile drop-in on a real agent: every form `policy sign` writes is enforced, a bad
 * file is alerted and leaves the policy in force, and SIGHUP can add the file later.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Cluster, until, type NodeSpec } from '../helpers/cluster.js';
import { decodeEnvelope, envelopeToText, signEnvelope, PAYLOAD_TYPE } from '../../src/trust/envelope.js';
import { encodePolicy } from '../../src/policy/model.js';
import { generateSigningKey } from '../../src/trust/keys.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

/** Replaces the file by rename, as config management (and writeAtomic) do. */
function drop(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

function jsonOf(c: Cluster, version: number): string {
  const env = decodeEnvelope(c.signed(c.policy(version)));
  if (!env.ok) throw new Error('bad envelope');
  return envelopeToText(env.value);
}

async function single(policyFile?: string): Promise<{ c: Cluster; n: NodeSpec }> {
  cluster = await Cluster.create(1, { overrides: policyFile ? { policyFile } : {} });
  const n = cluster.nodes[0]!;
  await cluster.start(n);
  return { c: cluster, n };
}

const enforced = (n: NodeSpec, v: number) => n.agent!.engine.current?.policy.version === v && n.agent!.enforcer.status.policyVersion === v;

describe('policyFile drop-in', () => {
  it('a JSON envelope (what policy sign writes) and then a binary protobuf envelope are both enforced', async () => {
    const c = await Cluster.create(1);
    cluster = c;
    const dir = join(c.dir, 'drop');
    mkdirSync(dir);
    const file = join(dir, 'policy.signed');
    c.opts.overrides.policyFile = file;
    const n = c.nodes[0]!;
    await c.start(n);
    drop(file, jsonOf(c, 1));
    await until(() => enforced(n, 1), 10_000, () => `v${n.agent!.engine.current?.policy.version}`);
    drop(file, c.signed(c.policy(2)));
    await until(() => enforced(n, 2), 10_000, () => `v${n.agent!.engine.current?.policy.version}`);
    expect(n.agent!.alerts.isOpen('policy-file')).toBe(false);
  });

  it('a file present at start is enforced before start() returns', async () => {
    const c = await Cluster.create(1);
    cluster = c;
    const file = join(c.dir, 'policy.signed');
    writeFileSync(file, jsonOf(c, 4));
    c.opts.overrides.policyFile = file;
    await c.start(c.nodes[0]!);
    expect(c.nodes[0]!.agent!.engine.current?.policy.version).toBe(4);
  });

  it('a bad file (garbage, a policy YAML, a forged signature) raises an alert and keeps the policy in force; a good one resolves it', async () => {
    const c = await Cluster.create(1);
    cluster = c;
    const file = join(c.dir, 'policy.signed');
    const good = jsonOf(c, 1);
    writeFileSync(file, good);
    c.opts.overrides.policyFile = file;
    const n = c.nodes[0]!;
    await c.start(n);
    expect(enforced(n, 1), JSON.stringify({ cur: n.agent!.engine.current?.policy.version, en: n.agent!.enforcer.status })).toBe(true);
    const forged = envelopeToText(signEnvelope(PAYLOAD_TYPE.policy, encodePolicy(c.policy(5)), [generateSigningKey()]));
    const bad: [string | Buffer, RegExp][] = [
      [Buffer.from([0xff, 0x01, 0x02, 0x03, 0x04]), /malformed/],
      ['meshId: test\nversion: 9\nexpires: 2099-01-01\n', /policy YAML, sign it first/],
      [forged, /below-threshold/],
    ];
    for (const [content, why] of bad) {
      drop(file, content);
      await until(() => n.agent!.alerts.isOpen('policy-file'), 10_000);
      const alert = n.agent!.alerts.openAlerts().find((a) => a.key === 'policy-file')!;
      expect(alert).toMatchObject({ class: 'policy-file-rejected', severity: 'error' });
      expect(alert.summary).toMatch(why);
      expect(enforced(n, 1)).toBe(true);
      drop(file, good); // back to the good file: resolved, before the next bad one
      await until(() => !n.agent!.alerts.isOpen('policy-file'), 10_000);
    }
    drop(file, c.signed(c.policy(6)));
    await until(() => enforced(n, 6), 10_000);
    expect(n.agent!.alerts.isOpen('policy-file')).toBe(false);
  });

  it('a huge file or a FIFO named as the policy file is refused without being read, and alerted', async () => {
    const c = await Cluster.create(1);
    cluster = c;
    const file = join(c.dir, 'policy.signed');
    const good = jsonOf(c, 1);
    writeFileSync(file, good);
    c.opts.overrides.policyFile = file;
    const n = c.nodes[0]!;
    await c.start(n);
    // 2 GB, sparse: reading it whole would take the agent's memory.
    const big = join(c.dir, 'big.tmp');
    writeFileSync(big, '');
    truncateSync(big, 2 * 1024 ** 3);
    renameSync(big, file);
    await until(() => n.agent!.alerts.isOpen('policy-file'), 10_000);
    expect(n.agent!.alerts.openAlerts().find((a) => a.key === 'policy-file')!.summary).toMatch(/too-large: 2147483648 bytes/);
    drop(file, good);
    await until(() => !n.agent!.alerts.isOpen('policy-file'), 10_000);
    // A FIFO would block a plain read forever.
    rmSync(file);
    expect(spawnSync('mkfifo', [file]).status).toBe(0);
    await until(() => n.agent!.alerts.isOpen('policy-file'), 10_000);
    expect(n.agent!.alerts.openAlerts().find((a) => a.key === 'policy-file')!.summary).toMatch(/not a regular file/);
    expect(enforced(n, 1)).toBe(true);
  });

  it('a policyFile added to the config by SIGHUP (reload) is read and watched', async () => {
    const { c, n } = await single();
    const file = join(c.dir, 'added.signed');
    writeFileSync(file, jsonOf(c, 2));
    await n.agent!.reload({ ...n.agent!.config, policyFile: file });
    expect(enforced(n, 2)).toBe(true);
    drop(file, jsonOf(c, 3));
    await until(() => enforced(n, 3), 10_000);
  });
});
