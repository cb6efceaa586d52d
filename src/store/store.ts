/**
 * The node's durable state in LevelDB: roots (all versions), the current policy and a
 * bounded history, the peer cache, the applied-ruleset record and small queues. Every
 * change that must be all-or-nothing is one atomic batch: a crash leaves either the old
 * state or the new one, never a mix.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { Level } from 'level';
import { InputError } from '../errors.js';

type Batch = ({ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string })[];

export interface StoredPolicy {
  envelope: Uint8Array;
  version: number;
  digest: string;
  acceptedAt: number;
}

/** One policy accept, as `picket policy history` lists it (newest last in the store). */
export interface AcceptRecord {
  version: number;
  digest: string;
  /** Key ids whose signatures verified against the trusted root's policy role. */
  signers: string[];
  acceptedAt: number;
  /** How the envelope arrived: gossip, sync, control (publish) or file. */
  source: string;
  /** The peer it came from (gossip, sync). */
  peer?: string;
}

/** Accept events kept (oldest dropped first): enough to read a month of daily publishes and then some. */
export const ACCEPT_LOG_LIMIT = 100;

export interface StoredRoot {
  envelope: Uint8Array;
  version: number;
  digest: string;
}

export interface AppliedRecord {
  backend: string;
  state: string;
  rulesetHash: string;
  lastApplyAt: number;
  policyVersion: number | null;
  reason?: string;
}

export interface PeerRecord {
  addrs: string[];
  lastSeen: number;
}

const pad = (n: number) => String(n).padStart(16, '0');
const enc = new TextEncoder();
const dec = new TextDecoder();
const json = (v: unknown) => enc.encode(JSON.stringify(v));

/** A record that does not parse is damage, not a reason to refuse start: it reads as absent. */
class DamagedRecord extends Error {
  override name = 'DamagedRecord';
}
const unjson = <T>(b: Uint8Array): T => {
  try {
    return JSON.parse(dec.decode(b)) as T;
  } catch {
    throw new DamagedRecord('record is not valid JSON');
  }
};

/** How the store came to be open: as it was, or rebuilt after it could not be opened. */
export interface StoreRecovery {
  /** Where the damaged database was moved (kept for forensics). */
  movedTo: string;
  error: string;
}

/** The store is held by another process: almost always a running agent. */
export class StoreLockedError extends InputError {
  override name = 'StoreLockedError';
}

export class Store {
  readonly #db: Level<string, Uint8Array>;
  readonly historyLimit: number;
  /** Set when the database could not be opened and was moved aside (fail closed, keep going). */
  readonly recovered: StoreRecovery | null;
  /** Keys whose value was unreadable since open: each read as absent. */
  readonly damaged = new Set<string>();

  private constructor(db: Level<string, Uint8Array>, historyLimit: number, recovered: StoreRecovery | null) {
    this.#db = db;
    this.historyLimit = historyLimit;
    this.recovered = recovered;
  }

  /**
   * Opens the store. A database held by another process is an error (StoreLockedError). A
   * database that cannot be opened for any other reason (a damaged CURRENT or manifest, a
   * truncated table) is moved aside to `state.corrupt-<stamp>` and a fresh one is opened when
   * `recover` gives the stamp: the node must still come up and enforce, and the trust floor
   * lives on in the mirror file. Without `recover` the open error is thrown.
   */
  static async open(dir: string, historyLimit = 10, recover?: { stamp: string }): Promise<Store> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = `${dir}/state`;
    const make = () => new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
    const db = make();
    try {
      await db.open();
      return new Store(db, historyLimit, null);
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED') throw new StoreLockedError(`${path}: the store is in use by another process (is picket agent running?)`);
      const error = cause?.message ?? (e as Error).message;
      if (!recover || !existsSync(path)) throw new InputError(`${path}: cannot open the store: ${error}`);
      const movedTo = `${path}.corrupt-${recover.stamp}`;
      renameSync(path, movedTo);
      const fresh = make();
      await fresh.open();
      // Remembered in the fresh store until an agent raises the alert for it: `picket enforce`
      // at boot may be the process that recovered, and it has no alert sinks.
      const recovered = { movedTo, error };
      await fresh.put('kv/store-recovered', json(recovered));
      return new Store(fresh, historyLimit, recovered);
    }
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  async #get(key: string): Promise<Uint8Array | undefined> {
    return (await this.#db.get(key)) ?? undefined;
  }

  /** A JSON record, or undefined when absent or damaged (damage is remembered in `damaged`). */
  async #getJson<T>(key: string): Promise<T | undefined> {
    const v = await this.#get(key);
    return v ? this.#parse<T>(key, v) : undefined;
  }

  async #range(prefix: string): Promise<[string, Uint8Array][]> {
    const out: [string, Uint8Array][] = [];
    for await (const [k, v] of this.#db.iterator({ gte: prefix, lt: `${prefix}\xff` })) out.push([k, v]);
    return out;
  }

  /** Parses a value already read; a damaged one reads as absent and is remembered. */
  #parse<T>(key: string, v: Uint8Array): T | undefined {
    try {
      return unjson<T>(v);
    } catch (e) {
      if (!(e instanceof DamagedRecord)) throw e;
      this.damaged.add(key);
      return undefined;
    }
  }

  /** Roots in ascending version order (the pinned root is not necessarily among them). */
  async roots(): Promise<StoredRoot[]> {
    const metas = await this.#range('root/meta/');
    const out: StoredRoot[] = [];
    for (const [k, v] of metas) {
      const meta = this.#parse<{ version: number; digest: string }>(k, v);
      const envelope = await this.#get(`root/env/${k.slice('root/meta/'.length)}`);
      if (meta && envelope) out.push({ envelope, ...meta });
    }
    return out;
  }

  /** One atomic batch: the root and (when given) the trusted-state record that names it. */
  async saveRoot(r: StoredRoot, trust?: string): Promise<void> {
    await this.#db.batch([
      { type: 'put', key: `root/env/${pad(r.version)}`, value: r.envelope },
      { type: 'put', key: `root/meta/${pad(r.version)}`, value: json({ version: r.version, digest: r.digest }) },
      ...(trust !== undefined ? [{ type: 'put' as const, key: 'trust/state', value: enc.encode(trust) }] : []),
    ]);
  }

  /** The trusted-state record's text (see src/node/trusted-state.ts), if any. */
  async trust(): Promise<string | undefined> {
    const v = await this.#get('trust/state');
    return v ? dec.decode(v) : undefined;
  }

  async saveTrust(trust: string): Promise<void> {
    await this.#db.put('trust/state', enc.encode(trust));
  }

  async policy(): Promise<StoredPolicy | undefined> {
    const meta = await this.#getJson<Omit<StoredPolicy, 'envelope'>>('policy/meta');
    const envelope = await this.#get('policy/current');
    if (!meta || !envelope) return undefined;
    return { envelope, ...meta };
  }

  /** Highest version ever accepted: survives even if the current policy is replaced by a baseline. */
  async highest(): Promise<{ version: number; digest: string } | undefined> {
    return this.#getJson('policy/highest');
  }

  /**
   * One atomic batch: current policy, its history entry, the highest-seen mark, trimmed
   * history and (when given) the trusted-state record with the new floor.
   */
  async savePolicy(p: StoredPolicy, trust?: string, accept?: AcceptRecord): Promise<void> {
    const meta = { version: p.version, digest: p.digest, acceptedAt: p.acceptedAt };
    const ops: Batch = [
      ...(trust !== undefined ? [{ type: 'put' as const, key: 'trust/state', value: enc.encode(trust) }] : []),
      { type: 'put', key: 'policy/current', value: p.envelope },
      { type: 'put', key: 'policy/meta', value: json(meta) },
      { type: 'put', key: 'policy/highest', value: json({ version: p.version, digest: p.digest }) },
      { type: 'put', key: `policy/hist/${pad(p.version)}`, value: p.envelope },
    ];
    // Keys only: the values are whole envelopes (up to 100 × the envelope limit), and trimming
    // needs none of them. Read once, then kept here: this process is the store's only writer,
    // and an accept is then one LevelDB batch, not two scans before it (on a saturated event
    // loop each scan waited whole turns: seconds per accept after a healed partition).
    const histKey = `policy/hist/${pad(p.version)}`;
    const hist = (this.#histKeys ??= await this.#keys('policy/hist/')).filter((k) => k !== histKey);
    const excess = hist.length + 1 - this.historyLimit;
    const histDel = hist.slice(0, Math.max(0, excess));
    for (const key of histDel) ops.push({ type: 'del', key });
    let logAfter: string[] | undefined;
    if (accept) {
      // Keyed by a sequence, not the version: the same version can be accepted again (after
      // its record was lost and it came back), and that is an event worth listing.
      const log = (this.#logKeys ??= await this.#keys('policy/log/'));
      const last = log.at(-1);
      const seq = last ? Number(last.slice('policy/log/'.length)) + 1 : 1;
      const logKey = `policy/log/${pad(seq)}`;
      ops.push({ type: 'put', key: logKey, value: json(accept) });
      const logDel = log.slice(0, Math.max(0, log.length + 1 - ACCEPT_LOG_LIMIT));
      for (const key of logDel) ops.push({ type: 'del', key });
      logAfter = [...log.slice(logDel.length), logKey];
    }
    try {
      await this.#db.batch(ops);
    } catch (e) {
      this.#histKeys = this.#logKeys = undefined; // unknown what landed: read them again next time
      throw e;
    }
    this.#histKeys = [...hist.slice(histDel.length), histKey].sort();
    if (logAfter) this.#logKeys = logAfter;
  }

  /** History and accept-log keys, oldest first, once read (savePolicy keeps them). */
  #histKeys: string[] | undefined;
  #logKeys: string[] | undefined;

  async #keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const k of this.#db.keys({ gte: prefix, lt: `${prefix}\xff` })) out.push(k);
    return out;
  }

  /** The accept log, oldest first (damaged entries read as absent). */
  async acceptLog(): Promise<AcceptRecord[]> {
    return (await this.#range('policy/log/')).flatMap(([k, v]) => {
      const r = this.#parse<AcceptRecord>(k, v);
      return r && typeof r.version === 'number' ? [r] : [];
    });
  }

  async policyHistory(): Promise<Uint8Array[]> {
    return (await this.#range('policy/hist/')).map(([, v]) => v);
  }

  async peers(): Promise<Map<string, PeerRecord>> {
    const out = new Map<string, PeerRecord>();
    for (const [k, v] of await this.#range('peer/')) {
      const rec = this.#parse<PeerRecord>(k, v);
      if (rec && Array.isArray(rec.addrs)) out.set(k.slice(5), rec);
    }
    return out;
  }

  async savePeers(peers: Map<string, PeerRecord>, remove: string[] = []): Promise<void> {
    const ops: Batch = [...peers].map(([id, rec]) => ({ type: 'put' as const, key: `peer/${id}`, value: json(rec) }));
    for (const id of remove) ops.push({ type: 'del', key: `peer/${id}` });
    if (ops.length) await this.#db.batch(ops);
  }

  async applied(): Promise<AppliedRecord | undefined> {
    return this.#getJson('applied');
  }

  async saveApplied(a: AppliedRecord): Promise<void> {
    await this.#db.put('applied', json(a));
  }

  /** Small JSON documents under a namespace (alert queue, statuses, events). */
  async getJson<T>(key: string): Promise<T | undefined> {
    return this.#getJson<T>(`kv/${key}`);
  }

  async putJson(key: string, value: unknown): Promise<void> {
    await this.#db.put(`kv/${key}`, json(value));
  }

  /** Several small documents in one atomic batch. */
  async putJsonBatch(entries: [string, unknown][]): Promise<void> {
    if (entries.length) await this.#db.batch(entries.map(([k, v]) => ({ type: 'put' as const, key: `kv/${k}`, value: json(v) })));
  }

  async delJson(key: string): Promise<void> {
    await this.#db.del(`kv/${key}`);
  }

  async listJson<T>(prefix: string): Promise<[string, T][]> {
    const out: [string, T][] = [];
    for (const [k, raw] of await this.#range(`kv/${prefix}`)) {
      const v = this.#parse<T>(k, raw);
      if (v !== undefined) out.push([k.slice(3), v]);
    }
    return out;
  }

  /**
   * `picket state reset`: forgets the trusted state — roots, policy, floor, history, blocked
   * set — so the node starts again from its pinned root. Peers, alerts and statuses stay.
   */
  async resetTrust(): Promise<string[]> {
    const keys: string[] = [];
    for (const prefix of ['root/', 'policy/', 'trust/']) for (const [k] of await this.#range(prefix)) keys.push(k);
    if (await this.#get('kv/blocked')) keys.push('kv/blocked');
    this.#histKeys = this.#logKeys = undefined;
    if (keys.length) await this.#db.batch(keys.map((key) => ({ type: 'del' as const, key })));
    return keys;
  }
}
