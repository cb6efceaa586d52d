import { describe, expect, it } from 'vitest';
import { NO_POLICY_ROUND_MS, roundDelay } from '../../src/mesh/sync-plan.js';

describe('the anti-entropy round delay', () => {
  it('a node without a policy exchanges every few seconds whatever its sync interval; one that holds a policy waits its interval', () => {
    for (const r of [0, 0.5, 0.999]) {
      const bare = roundDelay(3_600_000, false, r);
      expect(bare).toBeGreaterThanOrEqual(0.8 * NO_POLICY_ROUND_MS);
      expect(bare).toBeLessThan(1.2 * NO_POLICY_ROUND_MS);
      const held = roundDelay(3_600_000, true, r);
      expect(held).toBeGreaterThanOrEqual(0.8 * 3_600_000);
      expect(held).toBeLessThan(1.2 * 3_600_000);
      // A sync interval shorter than the no-policy pace is never slowed down.
      expect(roundDelay(1000, false, r)).toBe(roundDelay(1000, true, r));
    }
  });
});
