/** Running firewall tools: input over a pipe, one-line failures, and no hang on a stuck tool. */
import { describe, expect, it } from 'vitest';
import { run } from '../../src/enforce/exec.js';

describe('running a firewall tool', () => {
  it('feeds the script on stdin and returns what the tool prints', async () => {
    expect(await run({}, ['cat'], { input: 'table inet picket {}\n' })).toBe('table inet picket {}\n');
  });

  it('reports a missing tool as one ApplyError line', async () => {
    await expect(run({}, ['picket-no-such-tool', '-f', '-'], { input: 'x' })).rejects.toMatchObject({ code: 'ERR_APPLY', message: expect.stringMatching(/^picket-no-such-tool -f -: spawn .*ENOENT$/) });
  });

  it('keeps the first error lines and cuts a huge echoed line', async () => {
    const e = await run({}, ['sh', '-c', 'printf "Error: bad\\n%s\\n" "$(head -c 300000 /dev/zero | tr "\\0" x)" >&2; exit 1']).catch((x: Error) => x);
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).toMatch(/^sh -c .*: Error: bad \| x{200}…$/);
  });

  it('kills a hung tool at its timeout and fails, even when a child of it holds the pipes', async () => {
    // Without the kill the sleep would outlive the test's own timeout.
    await expect(run({}, ['sh', '-c', 'sleep 40 & sleep 40'], { timeoutMs: 200 })).rejects.toThrow(/killed by SIGKILL/);
  });
});
