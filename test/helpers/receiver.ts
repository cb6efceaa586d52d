/** A local HTTP receiver playing the PagerDuty Events API v2 (127.0.0.1 only). */
import { createServer, type Server } from 'node:http';

export class EventsReceiver {
  readonly events: Record<string, unknown>[] = [];
  /** While true, every request is answered 503 (receiver down). */
  down = false;
  /** Dedup key → how many more trigger attempts for it are answered 503 (a flaky receiver). */
  readonly failTriggers = new Map<string, number>();
  /** When set, every event is refused with this status (PagerDuty answers 400 to a bad routing key). */
  refuseWith: number | null = null;
  attempts = 0;
  /** While true, requests are read and never answered (a receiver that hangs). */
  hang = false;
  #server: Server;
  url = '';

  constructor() {
    this.#server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        this.attempts++;
        if (this.hang) return;
        if (this.down) { res.writeHead(503).end(); return; }
        const event = JSON.parse(body) as Record<string, unknown>;
        if (this.refuseWith !== null) {
          res.writeHead(this.refuseWith, { 'content-type': 'application/json' }).end('{"status":"invalid event","message":"Event object is invalid","errors":["Length of \'routing_key\' is incorrect (should be 32 characters)"]}');
          return;
        }
        const failures = this.failTriggers.get(String(event.dedup_key)) ?? 0;
        if (event.event_action === 'trigger' && failures > 0) {
          this.failTriggers.set(String(event.dedup_key), failures - 1);
          res.writeHead(503).end();
          return;
        }
        this.events.push(event);
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"success"}');
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    const a = this.#server.address() as { port: number };
    this.url = `http://127.0.0.1:${a.port}/v2/enqueue`;
    return this;
  }

  of(dedupPrefix: string, action?: string): Record<string, unknown>[] {
    return this.events.filter((e) => String(e.dedup_key).startsWith(dedupPrefix) && (!action || e.event_action === action));
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
