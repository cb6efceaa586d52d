/** Times in policies and flags mean the same instant on every host, whatever its time zone. */
import { afterEach, describe, expect, it } from 'vitest';
import { parseInstant } from '../../src/runtime/clock.js';

const saved = process.env.TZ;
afterEach(() => {
  if (saved === undefined) delete process.env.TZ;
  else process.env.TZ = saved;
});

describe('parseInstant', () => {
  it('a date-time without a zone is UTC on a host whose local zone is not (signer and fleet agree)', () => {
    process.env.TZ = 'America/New_York';
    expect(parseInstant('2027-01-31T10:00')).toBe(Date.UTC(2027, 0, 31, 10, 0));
    expect(parseInstant('2027-01-31 10:00:30')).toBe(Date.UTC(2027, 0, 31, 10, 0, 30));
    process.env.TZ = 'Asia/Kolkata';
    expect(parseInstant('2027-01-31T10:00:00.5')).toBe(Date.UTC(2027, 0, 31, 10, 0, 0, 500));
  });

  it('keeps an explicit zone and a bare date as given', () => {
    process.env.TZ = 'Asia/Kolkata';
    expect(parseInstant('2027-01-31')).toBe(Date.UTC(2027, 0, 31));
    expect(parseInstant('2027-01-31T10:00:00+02:00')).toBe(Date.UTC(2027, 0, 31, 8, 0));
    expect(parseInstant('2027-01-31T10:00:00Z')).toBe(Date.UTC(2027, 0, 31, 10, 0));
  });

  it('rejects an impossible date rather than rolling it over', () => {
    expect(parseInstant('2027-02-30')).toBeUndefined();
    expect(parseInstant('2027-13-01')).toBeUndefined();
    expect(parseInstant('tomorrow')).toBeUndefined();
  });
});
