/**
 * The long-lived `nft -i` that takes element-only changes (src/enforce/nft-session.ts).
 * Hostile first: a script that would split or cut the batch, an nft that hangs, floods its
 * output or dies, each must end in a rejected transaction (the backend then does a full
 * replace through `nft -f -`), never a hang, unbounded memory or a half-applied change.
 * Then real nftables inside a network namespace this test creates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftSession, SESSION_MAX_SCRIPT } from '../../src/enforce/nft-session.js';
import { NftBackend } from '../../src/enforce/nft.js';
import { run } from '../../src/enforce/exec.js';
import { NFT_FAMILY, NFT_TABLE } from '../../src/enforce/render-nft.js';
import { compile, type NodeRuleset } from '../../src/policy/compile.js';
import { canUseNetns, NetLab } from '../helpers/netns.js';
import { PEER, policy } from '../helpers/trust.js';

/** A wrap that replaces the nft the session starts with `script` (sh ignores the rest). */
const fake = (script: string) => ({ wrap: ['sh', '-c', script, '--'] });
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('nft session: hostile scripts never reach nft as more than one batch', () => {
  it('a script with a newline inside a line cannot split into two transactions: it is joined into one line', () => {
    expect(NftSession.line('delete element inet picket s { 10.0.0.1 }\nadd element inet picket s { 10.0.0.2 }\n'))
      .toBe('delete element inet picket s { 10.0.0.1 }; add element inet picket s { 10.0.0.2 }');
  });
  it('a script with "#" (a comment that would cut the rest of the batch) goes to nft -f - instead', () => {
    expect(NftSession.line('add element inet picket s { 10.0.0.1 } # ; flush ruleset\n')).toBeNull();
  });
  it('a script with a carriage return, a NUL or non-ASCII bytes goes to nft -f - instead', () => {
    for (const bad of ['add element inet picket s { 10.0.0.1 }\r; flush ruleset', 'add element \0', 'add element inet picket s { 10.0.0.1 } comment "ü"']) {
      expect(NftSession.line(bad)).toBeNull();
    }
  });
  it('a script that prints the end-of-transaction marker itself goes to nft -f - instead', () => {
    expect(NftSession.line('add element inet picket s { 0 comment "datatype mark (packet mark)" }')).toBeNull();
  });
  it('a script larger than the session limit goes to nft -f - instead', () => {
    expect(NftSession.line(`add element inet picket s { ${'10.0.0.1, '.repeat(SESSION_MAX_SCRIPT / 10)} }`)).toBeNull();
  });
  it('an unsafe line handed to transaction() directly is refused before anything is written', async () => {
    const s = new NftSession(fake('cat > /dev/null'));
    await expect(s.transaction('add element x\nflush ruleset')).rejects.toThrow(/one plain line/);
    expect(s.started).toBe(0);
  });
});

describe('nft session: a hostile or broken nft ends in a rejected transaction', () => {
  it('an nft that never answers times out, is killed, and the next transaction starts a new one', async () => {
    const s = new NftSession(fake('echo $$ > /dev/stderr; exec sleep 100'), 300);
    await expect(s.transaction('add element inet picket s { 10.0.0.1 }')).rejects.toThrow(/no answer within 300 ms/);
    await expect(s.transaction('add element inet picket s { 10.0.0.1 }')).rejects.toThrow(/no answer/);
    expect(s.started).toBe(2);
    s.close();
  });
  it('an nft that floods its output without the marker is cut: memory stays bounded and the transaction times out', async () => {
    const s = new NftSession(fake('exec yes Error: flood'), 500);
    const before = process.memoryUsage().heapUsed;
    await expect(s.transaction('add element inet picket s { 10.0.0.1 }')).rejects.toThrow(/no answer/);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * 1024 * 1024);
  });
  it('an nft that dies mid-transaction rejects it at once', async () => {
    const s = new NftSession(fake('read line; exit 3'), 10_000);
    await expect(s.transaction('add element inet picket s { 10.0.0.1 }')).rejects.toThrow(/ended \(exit code 3\)/);
  });
  it('a missing nft binary rejects the transaction with one line', async () => {
    const s = new NftSession({ wrap: ['/nonexistent/picket-no-such-binary'] }, 10_000);
    await expect(s.transaction('add element inet picket s { 10.0.0.1 }')).rejects.toThrow(/^nft -i: .*ENOENT/);
  });
  it('an error answer before the marker rejects the transaction with nft\'s first lines', async () => {
    const s = new NftSession(fake('while read line; do case "$line" in describe*) echo "meta expression, datatype mark (packet mark) (basetype integer), 32 bits";; *) echo "Error: Could not process rule: No such file or directory"; echo "$line";; esac; done'));
    await expect(s.transaction('delete element inet picket s { 10.0.0.9 }')).rejects.toThrow(/Error: Could not process rule.*delete element/);
    // The same process answers the next transaction: an error does not end the session.
    await expect(s.transaction('delete element inet picket s { 10.0.0.9 }')).rejects.toThrow(/Error/);
    expect(s.started).toBe(1);
    s.close();
  });
  it('close() ends the process and refuses later transactions', async () => {
    const s = new NftSession(fake('echo $$ >&2; while read line; do case "$line" in describe*) echo "datatype mark (packet mark)";; esac; done'));
    await s.transaction('add element inet picket s { 10.0.0.1 }');
    s.close();
    await expect(s.transaction('add element inet picket s { 10.0.0.1 }')).rejects.toThrow(/closed/);
    expect(s.started).toBe(1);
  });
});

const lab = canUseNetns() ? new NetLab() : null;

describe.runIf(lab)('nft session in the kernel: element changes through one long-lived nft -i', () => {
  let ns = '';
  let backend: NftBackend;
  const wrap = () => ({ wrap: ['ip', 'netns', 'exec', ns] });
  const rs = (v: number, webAddr: string): NodeRuleset => compile(policy(v, {
    nodes: [
      { name: 'db', peerId: PEER(1), addresses: ['10.92.0.2'], roles: ['db'] },
      { name: 'web', peerId: PEER(2), addresses: [webAddr], roles: ['web'] },
    ],
    rules: [{ name: 'app', to: ['role:db'], from: ['role:web'], proto: 'tcp', ports: [{ first: 5432, last: 5432 }] }],
  }), PEER(1), { now: Date.now(), meshPorts: [7946], sshFrom: ['10.92.9.0/24'] });
  const fresh = async (r: NodeRuleset) => {
    const b = new NftBackend(wrap());
    b.invalidate();
    await b.apply(r);
    return (await b.readBack())?.hash;
  };

  beforeAll(async () => {
    ns = lab!.ns('session');
    backend = new NftBackend(wrap());
    await backend.apply(rs(1, '10.92.0.1'));
  });
  afterAll(() => {
    backend?.close();
    lab?.destroy();
  });

  it('one-address changes go through one nft process and leave exactly what a full apply would', async () => {
    for (let i = 0; i < 6; i++) {
      const next = rs(2 + i, `10.92.0.${10 + i}`);
      await backend.apply(next);
      const want = await fresh(next);
      expect((await backend.readBack())?.hash).toBe(want);
      await backend.apply(next); // keep `backend`'s view in step after the fresh full apply
    }
    expect(backend.applies.incremental).toBeGreaterThanOrEqual(6);
    expect(backend.sessionsStarted).toBe(1);
  });

  it('a transaction nft refuses inside the session changes nothing (one batch), and the session answers the next', async () => {
    const before = await backend.readBack();
    const s = new NftSession(wrap());
    const good = `add element ${NFT_FAMILY} ${NFT_TABLE} blocked_v4 { 10.92.7.7 }`;
    const bad = `delete element ${NFT_FAMILY} ${NFT_TABLE} blocked_v4 { 10.92.8.8 }`;
    await expect(s.transaction(`${good}; ${bad}`)).rejects.toThrow(/nft -i: .*Error/);
    expect((await backend.readBack())?.hash).toBe(before?.hash);
    await s.transaction(good);
    expect((await backend.readBack())?.hash).not.toBe(before?.hash);
    await s.transaction(`delete element ${NFT_FAMILY} ${NFT_TABLE} blocked_v4 { 10.92.7.7 }`);
    expect((await backend.readBack())?.hash).toBe(before?.hash);
    expect(s.started).toBe(1);
    s.close();
  });

  it('the session\'s nft killed under the backend: the next change still lands, through a new process', async () => {
    // Only this process's own children: other test files run sessions of their own.
    const pids = (await run({}, ['pgrep', '-P', String(process.pid), '-x', 'nft']).catch(() => '')).split('\n').filter(Boolean).map(Number);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    const next = rs(20, '10.92.0.99');
    await backend.apply(next);
    expect((await backend.readBack())?.hash).toBe(await fresh(next));
  });

  it('drift under the session (the table deleted by hand) is repaired by a full replace on the next change', async () => {
    await run(wrap(), ['nft', 'delete', 'table', NFT_FAMILY, NFT_TABLE]);
    const next = rs(21, '10.92.0.98');
    await backend.apply(next);
    expect((await backend.readBack())?.hash).toBe(await fresh(next));
  });
});
