/**
 * The control socket is the operator's handle on a running agent: a second agent (or anything
 * else) started with the same socket path must not silently take it over from a live one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { ControlServer } from '../../src/agent/control.js';
import { tempDir } from '../helpers/cli.js';

const t = tempDir('picket-control-');
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

const handlers = { status: () => ({}), mesh: () => ({}), policy: () => null, publish: async () => ({ code: 200, body: {} }), explain: () => ({ code: 200, body: {} }) };

describe('control socket', () => {
  it('refuses to take over a socket a live process still answers on (socket theft)', async () => {
    const path = t.path('live.sock');
    const live = createServer((c) => c.end());
    servers.push(live);
    await new Promise<void>((r) => live.listen(path, r));
    const second = new ControlServer(path, handlers as never);
    await expect(second.listen()).rejects.toThrow(/already answers/);
    expect(existsSync(path)).toBe(true); // the live one keeps its socket
  });

  it('replaces a stale socket file left by a crash', async () => {
    const path = t.path('stale.sock');
    writeFileSync(path, '');
    const s = new ControlServer(path, handlers as never);
    await s.listen();
    await s.close();
  });
});
