/**
 * The node's durable state in LevelDB: roots (all versions), the current policy and a
 * bounded history, the peer cache, the applied-ruleset record and small queues. Every
 * change that must be all-or-nothing is one atomic batch: a crash leaves either the old
 * state or the new one, never a mix.
 */
import { mkdirSync } from 'node:fs';
import { Level } from 'level';

type Batch = ({ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string })[];

export interface StoredPolicy {
  envelope: Uint8Array;
  version: number;
  digest: string;
  acceptedAt: number;
}

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
const unjson = <T>(b: Uint8Array): T => JSON.parse(dec.decode(b)) as T;

export class Store {
  readonly #db: Level<string, Uint8Array>;
  readonly historyLimit: number;

  private constructor(db: Level<string, Uint8Array>, historyLimit: number) {
    this.#db = db;
    this.historyLimit = historyLimit;
  }

  static async open(dir: string, historyLimit = 10): Promise<Store> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = new Level<string, Uint8Array>(`${dir}/state`, { keyEncoding: 'utf8', valueEncoding: 'view' });
    await db.open();
    return new Store(db, historyLimit);
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  async #get(key: string): Promise<Uint8Array | undefined> {
    return (await this.#db.get(key)) ?? undefined;
  }

  async #range(prefix: string): Promise<[string, Uint8Array][]> {
    const out: [string, Uint8Array][] = [];
    for await (const [k, v] of this.#db.iterator({ gte: prefix, lt: `${prefix}\xff` })) out.push([k, v]);
    return out;
  }

  /** Roots in ascending version order (the pinned root is not necessarily among them). */
  async roots(): Promise<StoredRoot[]> {
    const metas = await this.#range('root/meta/');
    const out: StoredRoot[] = [];
    for (const [k, v] of metas) {
      const meta = unjson<{ version: number; digest: string }>(v);
      const envelope = await this.#get(`root/env/${k.slice('root/meta/'.length)}`);
      if (envelope) out.push({ envelope, ...meta });
    }
    return out;
  }

  async saveRoot(r: StoredRoot): Promise<void> {
    await this.#db.batch([
      { type: 'put', key: `root/env/${pad(r.version)}`, value: r.envelope },
      { type: 'put', key: `root/meta/${pad(r.version)}`, value: json({ version: r.version, digest: r.digest }) },
    ]);
  }

  async policy(): Promise<StoredPolicy | undefined> {
    const meta = await this.#get('policy/meta');
    const envelope = await this.#get('policy/current');
    if (!meta || !envelope) return undefined;
    return { envelope, ...unjson<Omit<StoredPolicy, 'envelope'>>(meta) };
  }

  /** Highest version ever accepted: survives even if the current policy is replaced by a baseline. */
  async highest(): Promise<{ version: number; digest: string } | undefined> {
    const v = await this.#get('policy/highest');
    return v ? unjson(v) : undefined;
  }

  /** One atomic batch: current policy, its history entry, the highest-seen mark, trimmed history. */
  async savePolicy(p: StoredPolicy): Promise<void> {
    const meta = { version: p.version, digest: p.digest, acceptedAt: p.acceptedAt };
    const ops: Batch = [
      { type: 'put', key: 'policy/current', value: p.envelope },
      { type: 'put', key: 'policy/meta', value: json(meta) },
      { type: 'put', key: 'policy/highest', value: json({ version: p.version, digest: p.digest }) },
      { type: 'put', key: `policy/hist/${pad(p.version)}`, value: p.envelope },
    ];
    const hist = await this.#range('policy/hist/');
    const excess = hist.length + 1 - this.historyLimit;
    for (let i = 0; i < excess; i++) ops.push({ type: 'del', key: hist[i]![0] });
    await this.#db.batch(ops);
  }

  async policyHistory(): Promise<Uint8Array[]> {
    return (await this.#range('policy/hist/')).map(([, v]) => v);
  }

  async peers(): Promise<Map<string, PeerRecord>> {
    return new Map((await this.#range('peer/')).map(([k, v]) => [k.slice(5), unjson<PeerRecord>(v)]));
  }

  async savePeers(peers: Map<string, PeerRecord>, remove: string[] = []): Promise<void> {
    const ops: Batch = [...peers].map(([id, rec]) => ({ type: 'put' as const, key: `peer/${id}`, value: json(rec) }));
    for (const id of remove) ops.push({ type: 'del', key: `peer/${id}` });
    if (ops.length) await this.#db.batch(ops);
  }

  async applied(): Promise<AppliedRecord | undefined> {
    const v = await this.#get('applied');
    return v ? unjson(v) : undefined;
  }

  async saveApplied(a: AppliedRecord): Promise<void> {
    await this.#db.put('applied', json(a));
  }

  /** Small JSON documents under a namespace (alert queue, statuses, events). */
  async getJson<T>(key: string): Promise<T | undefined> {
    const v = await this.#get(`kv/${key}`);
    return v ? unjson<T>(v) : undefined;
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
    return (await this.#range(`kv/${prefix}`)).map(([k, v]) => [k.slice(3), unjson<T>(v)]);
  }
}
