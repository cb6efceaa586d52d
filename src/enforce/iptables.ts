/**
 * The iptables backend, for hosts without nftables: iptables-restore / ip6tables-restore
 * --noflush into a dedicated PICKET-INPUT chain (flushed and refilled in one restore
 * commit), jumped to from the top of INPUT. Same semantics as nft, sets expanded rule by
 * rule. IPv4 and IPv6 are two commits: a failure in the second leaves the first applied and
 * is reported as a failed apply.
 */
import { createHash } from 'node:crypto';
import type { NodeRuleset } from '../policy/compile.js';
import { backendInstance, type Backend, type DropCount, type DropReading, type ReadBack } from './backend.js';
import { run, type Runner } from './exec.js';
import { IPT_CHAIN, IPT_DROP_CHAINS, IPT_FORWARD_CHAIN, IPT_OUTPUT_CHAIN, renderIptables, renderIptablesDropChains } from './render-iptables.js';
import type { DropReason } from './nft-tables.js';

const DROP_CHAIN_NAMES = Object.values(IPT_DROP_CHAINS);
const REASON_OF = new Map<string, DropReason>(Object.entries(IPT_DROP_CHAINS).map(([reason, chain]) => [chain, reason as DropReason]));

const tools = { 4: { restore: 'iptables-restore', save: 'iptables-save', cmd: 'iptables' }, 6: { restore: 'ip6tables-restore', save: 'ip6tables-save', cmd: 'ip6tables' } } as const;

export class IptablesBackend implements Backend {
  readonly name = 'iptables';
  readonly #instance = backendInstance();
  /** Bumped whenever the drop chains are (re)written: their counters start again from zero. */
  #resets = 0;
  /** What the drop chains hold now, per family (undefined: not known to be there). */
  #dropChains: Partial<Record<4 | 6, string>> = {};

  constructor(private readonly o: Runner = {}) {}

  async apply(rs: NodeRuleset): Promise<void> {
    const drops = renderIptablesDropChains(rs);
    for (const fam of [4, 6] as const) {
      const t = tools[fam];
      // The drop chains go in first (PICKET-INPUT jumps to them) and only when what they do
      // changed: rewriting them resets their counters.
      if (this.#dropChains[fam] !== drops) {
        this.#resets++;
        delete this.#dropChains[fam];
        await run(this.o, [t.restore, '--noflush'], { input: drops });
        this.#dropChains[fam] = drops;
      }
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
      for (const c of DROP_CHAIN_NAMES) detail[`v${fam} ${c}`] = lines.filter((l) => l.startsWith(`-A ${c} `));
    }
    const hash = createHash('sha256').update(JSON.stringify(detail)).digest('hex');
    return { hash, detail };
  }

  /** Forgets what the drop chains hold: the next apply rewrites them (after drift). */
  invalidate(): void {
    this.#dropChains = {};
  }

  async remove(): Promise<void> {
    for (const fam of [4, 6] as const) {
      const t = tools[fam];
      for (const [builtin, chain] of [['INPUT', IPT_CHAIN], ['OUTPUT', IPT_OUTPUT_CHAIN], ['FORWARD', IPT_FORWARD_CHAIN]] as const) {
        await run(this.o, [t.cmd, '-D', builtin, '-j', chain]).catch(() => undefined);
        await run(this.o, [t.cmd, '-F', chain]).catch(() => undefined);
        await run(this.o, [t.cmd, '-X', chain]).catch(() => undefined);
      }
      // The drop chains last: the chains above jump to them.
      for (const c of DROP_CHAIN_NAMES) {
        await run(this.o, [t.cmd, '-F', c]).catch(() => undefined);
        await run(this.o, [t.cmd, '-X', c]).catch(() => undefined);
      }
    }
    this.#dropChains = {};
  }

  /** Counters of each drop chain's final rule, both families summed: one iptables-save -c each. */
  async readDrops(): Promise<DropReading | null> {
    const epoch = `${this.#instance}:${this.#resets}`;
    const counts: Partial<Record<DropReason, DropCount>> = {};
    for (const fam of [4, 6] as const) {
      let text: string;
      try {
        text = await run(this.o, [tools[fam].save, '-c', '-t', 'filter'], { timeoutMs: 5000 });
      } catch {
        return null;
      }
      for (const [reason, c] of Object.entries(parseIptablesDrops(text)) as [DropReason, DropCount][]) {
        const sum = counts[reason] ?? { packets: 0, bytes: 0 };
        counts[reason] = { packets: sum.packets + c.packets, bytes: sum.bytes + c.bytes };
      }
    }
    if (epoch !== `${this.#instance}:${this.#resets}`) return null;
    return { epoch, counts };
  }
}

/** `iptables-save -c` output → the counter of each drop chain's terminal rule, by reason. */
export function parseIptablesDrops(text: string): Partial<Record<DropReason, DropCount>> {
  const out: Partial<Record<DropReason, DropCount>> = {};
  for (const line of text.split('\n')) {
    const m = /^\[(\d+):(\d+)\] -A (PICKET-[A-Z-]+) .*-j (DROP|ACCEPT)$/.exec(line);
    const reason = m ? REASON_OF.get(m[3]!) : undefined;
    if (!m || !reason) continue;
    out[reason] = { packets: Number(m[1]), bytes: Number(m[2]) };
  }
  return out;
}
