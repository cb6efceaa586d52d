/**
 * The enforcement backend contract. A backend applies a complete compiled ruleset
 * atomically: when apply() throws, whatever was enforced before is still enforced.
 * readBack() returns a hash of what is actually in force (for drift detection), computed
 * the same way as expectedHash() so the two can be compared.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeAtomic } from '../runtime/files.js';
import type { NodeRuleset } from '../policy/compile.js';
import { renderNft } from './render-nft.js';
import type { DropReason } from './nft-tables.js';

export class ApplyError extends Error {
  override readonly name = 'ApplyError';
  readonly code = 'ERR_APPLY';
}

/** Packets and bytes one kernel counter has seen. */
export interface DropCount {
  packets: number;
  bytes: number;
}

/**
 * The kernel's drop counters as read now. `epoch` names the counters' lifetime: it changes
 * whenever the backend did something that reset them (recreated the table, rewrote a drop
 * chain), so a reader can accumulate across resets (src/enforce/drop-totals.ts).
 */
export interface DropReading {
  epoch: string;
  counts: Partial<Record<DropReason, DropCount>>;
}

/** What is in force, normalised: a hash to compare and a keyed view to describe differences. */
export interface ReadBack {
  hash: string;
  detail: Record<string, string[]>;
}

export interface Backend {
  readonly name: string;
  apply(rs: NodeRuleset): Promise<void>;
  /** What is in force now, or null when nothing of ours is there. */
  readBack(): Promise<ReadBack | null>;
  /** Forget incremental state so the next apply replaces everything (after drift). */
  invalidate?(): void;
  /** Ends what the backend keeps running between applies (agent shutdown). */
  close?(): void;
  /** Removes what this backend put in place (a backend switched away from on reload). */
  remove?(): Promise<void>;
  /**
   * Reads the drop counters (one tool call; never waits for an apply). Null when nothing of
   * ours is in force, or when an apply reset the counters while they were being read.
   */
  readDrops?(): Promise<DropReading | null>;
}

let instances = 0;
/** A name unique to one backend instance in this process: the first half of an epoch. */
export const backendInstance = (): string => `${++instances}`;

/** Says, in a line, how two read-backs differ: which sets and chains gained or lost what. */
export function describeDrift(expected: ReadBack | null, actual: ReadBack | null): string {
  if (!actual) return 'the picket ruleset is gone';
  if (!expected) return 'a ruleset appeared that picket did not apply';
  const parts: string[] = [];
  const keys = new Set([...Object.keys(expected.detail), ...Object.keys(actual.detail)]);
  for (const k of [...keys].sort()) {
    const a = expected.detail[k], b = actual.detail[k];
    if (!b) { parts.push(`${k} deleted`); continue; }
    if (!a) { parts.push(`${k} added`); continue; }
    const added = b.filter((x) => !a.includes(x)), removed = a.filter((x) => !b.includes(x));
    if (added.length || removed.length) {
      parts.push(`${k}: ${added.length ? `+${added.length} (${added.slice(0, 2).join(', ').slice(0, 120)})` : ''}${added.length && removed.length ? ' ' : ''}${removed.length ? `-${removed.length} (${removed.slice(0, 2).join(', ').slice(0, 120)})` : ''}`);
    } else if (a.join('\n') !== b.join('\n')) {
      parts.push(`${k}: reordered`);
    }
  }
  return parts.join('; ') || 'contents differ';
}

const sha256 = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');

/** Writes the rendered nft script to a file, atomically: for unprivileged runs and the demo. */
export class FileBackend implements Backend {
  readonly name = 'file';
  constructor(readonly path: string) {}

  async apply(rs: NodeRuleset): Promise<void> {
    try {
      writeAtomic(this.path, renderNft(rs), 0o644);
    } catch (e) {
      throw new ApplyError((e as Error).message);
    }
  }

  async readBack(): Promise<ReadBack | null> {
    try {
      const text = await readFile(this.path, 'utf8');
      return { hash: sha256(text), detail: { [this.path]: text.split('\n') } };
    } catch {
      return null;
    }
  }
}

/** Holds the ruleset in memory: for tests and simulations. `failNext` injects apply failures. */
export class MemoryBackend implements Backend {
  readonly name = 'memory';
  current: NodeRuleset | null = null;
  readonly applied: NodeRuleset[] = [];
  failNext = 0;

  async apply(rs: NodeRuleset): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new ApplyError('injected apply failure');
    }
    this.current = rs;
    this.tampered = null;
    this.applied.push(rs);
  }

  /** Simulated drift: tests replace what is "in force" behind the agent's back. */
  tampered: string | null = null;

  async readBack(): Promise<ReadBack | null> {
    if (!this.current) return null;
    const text = this.tampered ?? renderNft(this.current);
    return { hash: sha256(text), detail: { memory: text.split('\n') } };
  }
}
