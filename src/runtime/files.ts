/**
 * File helpers shared by the CLI, the trust loader, the agent and the file backend: bounded
 * reads with one clear error line, and writes that never leave a partial file.
 */
import { constants, existsSync, readFileSync, renameSync, writeFileSync, openSync, closeSync, unlinkSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError } from '../errors.js';
import { LIMITS } from '../wire/limits.js';

export function readInput(path: string, what = 'file', maxBytes: number = LIMITS.maxEnvelopeJsonBytes): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`${path}: cannot read ${what}${code === 'ENOENT' ? ' (no such file)' : code === 'EACCES' ? ' (permission denied)' : code === 'EISDIR' ? ' (is a directory)' : ''}`);
  }
  if (data.length > maxBytes) throw new InputError(`${path}: ${what} is ${data.length} bytes (limit ${maxBytes})`);
  return data;
}

export function readText(path: string, what = 'file', maxBytes?: number): string {
  const data = readInput(path, what, maxBytes);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new InputError(`${path}: ${what} is not UTF-8 text`);
  }
}

/** Writes via a temp file and rename: readers see the old file or the new one, never half. */
export function writeAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, data, { mode });
    renameSync(tmp, path);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw new InputError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * writeAtomic that also survives power loss: the data is fsynced before the rename and the
 * directory after it, so after a crash the file holds the old content or the new, and the
 * new once this resolves. Asynchronous: an fsync on a busy disk must not stall the event
 * loop. For small records that guard trust (the trust-state mirror).
 */
export async function writeDurable(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dir = await open(dirname(path), constants.O_RDONLY);
    try { await dir.sync(); } finally { await dir.close(); }
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new InputError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Creates a new file exclusively (O_EXCL) unless `force`: keys are never overwritten by accident. */
export function writeNew(path: string, data: string, mode: number, force: boolean): void {
  if (force) return writeAtomic(path, data, mode);
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new InputError(`${path} already exists (use --force to overwrite)`);
    throw new InputError(`${path}: cannot write (${code ?? (e as Error).message})`);
  }
  try {
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

export function assertAbsent(path: string, force: boolean): void {
  if (!force && existsSync(path)) throw new InputError(`${path} already exists (use --force to overwrite)`);
}
