/**
 * One etcd v3 watch over its JSON gateway (POST /v3/watch, a stream of JSON lines): calls
 * `onValue` with each new value of `key`, and `onReady` once etcd confirmed the watch. Shared
 * by the central-store baseline's watchers (bench/etcd.ts) and its agent processes
 * (bench/etcd-agent.ts). `onEnd` runs once the watch ended (aborted, or etcd went away).
 * Returns a controller that ends the watch.
 */
export function watchKey(base: string, key: string, onValue: (value: Uint8Array) => void | Promise<void>, onReady: () => void = () => undefined, onEnd: () => void = () => undefined): AbortController {
  const ctl = new AbortController();
  void (async () => {
    const res = await fetch(`${base}/v3/watch`, { method: 'POST', body: JSON.stringify({ create_request: { key: Buffer.from(key).toString('base64') } }), signal: ctl.signal });
    const reader = res.body!.getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buf += Buffer.from(value!).toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
        const msg = JSON.parse(line) as { result?: { created?: boolean; events?: { kv: { value: string } }[] } };
        if (msg.result?.created) onReady();
        for (const ev of msg.result?.events ?? []) await onValue(new Uint8Array(Buffer.from(ev.kv.value, 'base64')));
      }
    }
  })().catch(() => undefined).finally(onEnd);
  return ctl;
}
