/**
 * The enforcement backend contract. A backend applies a complete compiled ruleset
 * atomically: when apply() throws, whatever was enforced before is still enforced.
 * readBack() returns a hash of what is actually in force (for drift detection), computed
 * the same way as expectedHash() so the two can be compared.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeAtomic } from '../cli/io.js';
import type { NodeRuleset } from '../policy/compile.js';
import { renderNft } from './render-nft.js';

export class ApplyError extends Error {
  override readonly name = 'ApplyError';
  readonly code = 'ERR_APPLY';
}

export interface Backend {
  readonly name: string;
  apply(rs: NodeRuleset): Promise<void>;
  /** Hash of what is in force now, or null when nothing of ours is there. */
  readBack(): Promise<string | null>;
  /** Hash that readBack() returns right after apply(rs). */
  expectedHash(rs: NodeRuleset): string;
  close?(): Promise<void>;
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

  async readBack(): Promise<string | null> {
    try {
      return sha256(await readFile(this.path));
    } catch {
      return null;
    }
  }

  expectedHash(rs: NodeRuleset): string {
    return sha256(renderNft(rs));
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
    this.applied.push(rs);
  }

  async readBack(): Promise<string | null> {
    return this.current ? this.expectedHash(this.current) : null;
  }

  expectedHash(rs: NodeRuleset): string {
    return sha256(renderNft(rs));
  }
}
