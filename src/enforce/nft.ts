/**
 * The nftables backend. Every apply is one nft transaction fed over a pipe (nothing written
 * to disk): full applies replace the contents of `table inet picket` through `nft -f -`;
 * changes that only move addresses or ports are set-element operations, sent as one line to
 * a long-lived `nft -i` (nft-session.ts: no process start, no wait for the kernel's release
 * of deleted elements) and through `nft -f -` when the session cannot take them. nft commits a script as one
 * netlink batch, so an error anywhere in it — the last line included — leaves the previous
 * ruleset in force; a separate `nft -c` pass would only parse the script a second time
 * (docs/enforcement.md, decisions.md). Read-back lists the table as JSON, normalises it
 * (handles dropped, elements sorted) and hashes it.
 */
import { createHash } from 'node:crypto';
import type { NodeRuleset } from '../policy/compile.js';
import { ApplyError, backendInstance, type Backend, type DropCount, type DropReading, type ReadBack } from './backend.js';
import { NFT_COUNTERS, type DropReason } from './nft-tables.js';
import { run, type Runner } from './exec.js';
import { NftSession } from './nft-session.js';
import { NFT_FAMILY, NFT_TABLE, nftChainNames, nftSetNames, renderNft, renderNftDelta, renderNftInPlace, sameShape } from './render-nft.js';

export type NftOptions = Runner;

type Json = Record<string, unknown>;

/** Normalised view of the table: set → sorted elements, chain → rule expressions in order. */
export function normaliseNftJson(text: string): Record<string, string[]> {
  const doc = JSON.parse(text) as { nftables?: Json[] };
  const out: Record<string, string[]> = {};
  for (const item of doc.nftables ?? []) {
    if ('set' in item || 'map' in item) {
      // Verdict maps (host classes) are sets to the table's shape: one key space, and an
      // element jumping to another class is drift like any other.
      const s = (item.set ?? item.map) as Json;
      out[`set ${String(s.name)}`] = ((s.elem as unknown[]) ?? []).map((e) => JSON.stringify(e)).sort();
    } else if ('chain' in item) {
      const c = item.chain as Json;
      out[`chain ${String(c.name)}`] ??= [];
      out[`policy ${String(c.name)}`] = [String(c.hook ?? ''), String(c.policy ?? ''), String(c.prio ?? '')];
    } else if ('rule' in item) {
      const r = item.rule as Json;
      (out[`chain ${String(r.chain)}`] ??= []).push(JSON.stringify(r.expr) + (r.comment ? ` # ${String(r.comment)}` : ''));
    }
  }
  return out;
}

export function hashNormalised(n: Record<string, string[]>): string {
  const keys = Object.keys(n).sort();
  return createHash('sha256').update(JSON.stringify(keys.map((k) => [k, n[k]]))).digest('hex');
}

export class NftBackend implements Backend {
  readonly name = 'nft';
  #last: NodeRuleset | null = null;
  /** Counts of apply kinds, for metrics and benchmarks. */
  readonly applies = { full: 0, incremental: 0, noop: 0, recreated: 0 };

  readonly #instance = backendInstance();
  /** Bumped whenever the table is recreated (its named counters start again from zero). */
  #resets = 0;

  /** Element-only changes go through one long-lived `nft -i`. */
  readonly #session: NftSession;

  constructor(private readonly o: NftOptions = {}) {
    this.#session = new NftSession(o);
  }

  async apply(rs: NodeRuleset): Promise<void> {
    const last = this.#last;
    if (last && sameShape(last, rs)) {
      const delta = renderNftDelta(last, rs);
      if (delta === '') {
        this.applies.noop++;
        this.#last = rs;
        return;
      }
      try {
        const line = this.#session.closed ? null : NftSession.line(delta);
        await (line ? this.#session.transaction(line) : this.#transaction(delta));
        this.applies.incremental++;
        this.#last = rs;
        return;
      } catch {
        // The table may have drifted under us: fall through to a full replace.
      }
    }
    // Prefer replacing the contents in place (the hook never goes away); fall back to
    // recreating the table when it is missing or holds something we cannot redefine.
    const existing = last ? { sets: nftSetNames(last), chains: nftChainNames(last) } : await this.#existing();
    const scripts = existing ? [renderNftInPlace(rs, existing), renderNft(rs)] : [renderNft(rs)];
    let lastError: unknown;
    for (const [i, script] of scripts.entries()) {
      const recreate = i === scripts.length - 1;
      if (recreate && existing) this.applies.recreated++;
      // Counted before the transaction: a read racing it sees another epoch and is dropped.
      if (recreate) this.#resets++;
      try {
        await this.#transaction(script);
        this.applies.full++;
        this.#last = rs;
        return;
      } catch (e) {
        lastError = e;
      }
    }
    throw lastError;
  }

  /** One script, one kernel transaction: all of it is in force afterwards, or none of it. */
  #transaction(script: string): Promise<string> {
    return run(this.o, ['nft', '-f', '-'], { input: script });
  }

  /** Sets and chains the picket table holds now, or null when there is no table. */
  async #existing(): Promise<{ sets: string[]; chains: string[] } | null> {
    const rb = await this.readBack().catch(() => null);
    if (!rb) return null;
    const keys = Object.keys(rb.detail);
    return {
      sets: keys.filter((k) => k.startsWith('set ')).map((k) => k.slice(4)),
      chains: keys.filter((k) => k.startsWith('chain ')).map((k) => k.slice(6)),
    };
  }

  /** Forgets what was applied, so the next apply is a full replace (after drift). */
  invalidate(): void {
    this.#last = null;
  }

  async readBack(): Promise<ReadBack | null> {
    let text: string;
    try {
      text = await run(this.o, ['nft', '-j', 'list', 'table', NFT_FAMILY, NFT_TABLE]);
    } catch (e) {
      if (/No such file|does not exist/i.test((e as Error).message)) return null;
      throw e instanceof ApplyError ? e : new ApplyError((e as Error).message);
    }
    const detail = normaliseNftJson(text);
    return { hash: hashNormalised(detail), detail };
  }

  /** The table's named drop counters: one `nft -j list counters table …`. */
  async readDrops(): Promise<DropReading | null> {
    const epoch = `${this.#instance}:${this.#resets}`;
    let text: string;
    try {
      text = await run(this.o, ['nft', '-j', 'list', 'counters', 'table', NFT_FAMILY, NFT_TABLE], { timeoutMs: 5000 });
    } catch {
      return null; // no table (yet): nothing counted
    }
    if (epoch !== `${this.#instance}:${this.#resets}`) return null;
    return { epoch, counts: parseNftCounters(text) };
  }

  /** Ends the long-lived `nft -i` (agent shutdown); later applies spawn `nft -f -`. */
  close(): void {
    this.#session.close();
  }

  /** Processes the element-change session has started (1 unless one died or timed out). */
  get sessionsStarted(): number {
    return this.#session.started;
  }

  /** Removes the picket table (uninstall, tests). */
  async remove(): Promise<void> {
    await run(this.o, ['nft', 'delete', 'table', NFT_FAMILY, NFT_TABLE]).catch(() => undefined);
  }
}

const REASON_OF = new Map<string, DropReason>(Object.entries(NFT_COUNTERS).map(([reason, name]) => [name, reason as DropReason]));

/** `nft -j list counters` output → counts by drop reason (unknown counters ignored). */
export function parseNftCounters(text: string): Partial<Record<DropReason, DropCount>> {
  const doc = JSON.parse(text) as { nftables?: Json[] };
  const out: Partial<Record<DropReason, DropCount>> = {};
  for (const item of doc.nftables ?? []) {
    const c = item.counter as Json | undefined;
    if (!c || c.table !== NFT_TABLE) continue;
    const reason = REASON_OF.get(String(c.name));
    const packets = Number(c.packets), bytes = Number(c.bytes);
    if (reason && Number.isSafeInteger(packets) && Number.isSafeInteger(bytes)) out[reason] = { packets, bytes };
  }
  return out;
}
