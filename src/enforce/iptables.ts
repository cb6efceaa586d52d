/**
 * The iptables backend, for hosts without nftables: iptables-restore / ip6tables-restore
 * --noflush into a dedicated PICKET-INPUT chain (flushed and refilled in one restore
 * commit), jumped to from the top of INPUT. Same semantics as nft, sets expanded rule by
 * rule. IPv4 and IPv6 are two commits: a failure in the second leaves the first applied and
 * is reported as a failed apply.
 */
import { createHash } from 'node:crypto';
import type { NodeRuleset } from '../policy/compile.js';
import type { Backend, ReadBack } from './backend.js';
import { run, type Runner } from './exec.js';
import { IPT_CHAIN, IPT_FORWARD_CHAIN, IPT_OUTPUT_CHAIN, renderIptables } from './render-iptables.js';

const tools = { 4: { restore: 'iptables-restore', save: 'iptables-save', cmd: 'iptables' }, 6: { restore: 'ip6tables-restore', save: 'ip6tables-save', cmd: 'ip6tables' } } as const;

export class IptablesBackend implements Backend {
  readonly name = 'iptables';
  constructor(private readonly o: Runner = {}) {}

  async apply(rs: NodeRuleset): Promise<void> {
    for (const fam of [4, 6] as const) {
      const t = tools[fam];
      // One restore commit per family, fed over a pipe: a bad line anywhere aborts the
      // commit and leaves the family's previous chain in force (no separate --test pass).
      await run(this.o, [t.restore, '--noflush'], { input: renderIptables(rs, fam) });
      const hooked = await run(this.o, [t.cmd, '-C', 'INPUT', '-j', IPT_CHAIN]).then(() => true, () => false);
      if (!hooked) await run(this.o, [t.cmd, '-I', 'INPUT', '1', '-j', IPT_CHAIN]);
      // Output and forward chains are jumped to only while the policy asks for them.
      await this.#hook(fam, 'OUTPUT', IPT_OUTPUT_CHAIN, rs.output !== undefined);
      await this.#hook(fam, 'FORWARD', IPT_FORWARD_CHAIN, rs.forward === true);
    }
  }

  async #hook(fam: 4 | 6, builtin: string, chain: string, wanted: boolean): Promise<void> {
    const cmd = tools[fam].cmd;
    const hooked = await run(this.o, [cmd, '-C', builtin, '-j', chain]).then(() => true, () => false);
    if (wanted && !hooked) await run(this.o, [cmd, '-I', builtin, '1', '-j', chain]);
    if (!wanted && hooked) await run(this.o, [cmd, '-D', builtin, '-j', chain]);
  }

  async readBack(): Promise<ReadBack | null> {
    const detail: Record<string, string[]> = {};
    for (const fam of [4, 6] as const) {
      const text = await run(this.o, [tools[fam].save, '-t', 'filter']);
      const lines = text.split('\n');
      if (!lines.some((l) => l.startsWith(`:${IPT_CHAIN} `))) return null;
      detail[`v${fam} ${IPT_CHAIN}`] = lines.filter((l) => l.startsWith(`-A ${IPT_CHAIN} `));
      detail[`v${fam} INPUT hook`] = lines.filter((l) => l === `-A INPUT -j ${IPT_CHAIN}`);
      // Only when in use: read-backs of policies without egress or forward filtering are unchanged.
      for (const [builtin, chain] of [['OUTPUT', IPT_OUTPUT_CHAIN], ['FORWARD', IPT_FORWARD_CHAIN]] as const) {
        const rules = lines.filter((l) => l.startsWith(`-A ${chain} `));
        const hook = lines.filter((l) => l === `-A ${builtin} -j ${chain}`);
        if (rules.length || hook.length) { detail[`v${fam} ${chain}`] = rules; detail[`v${fam} ${builtin} hook`] = hook; }
      }
    }
    const hash = createHash('sha256').update(JSON.stringify(detail)).digest('hex');
    return { hash, detail };
  }

  async remove(): Promise<void> {
    for (const fam of [4, 6] as const) {
      const t = tools[fam];
      for (const [builtin, chain] of [['INPUT', IPT_CHAIN], ['OUTPUT', IPT_OUTPUT_CHAIN], ['FORWARD', IPT_FORWARD_CHAIN]] as const) {
        await run(this.o, [t.cmd, '-D', builtin, '-j', chain]).catch(() => undefined);
        await run(this.o, [t.cmd, '-F', chain]).catch(() => undefined);
        await run(this.o, [t.cmd, '-X', chain]).catch(() => undefined);
      }
    }
  }
}
