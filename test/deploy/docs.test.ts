import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generate } from '../../scripts/gen-docs.js';

const root = resolve(import.meta.dirname, '../..');

describe('generated docs', () => {
  it('the references and JSON Schemas match the schemas in the code (run `npm run docs`)', () => {
    for (const [path, text] of Object.entries(generate())) {
      expect(existsSync(join(root, path)), path).toBe(true);
      expect(readFileSync(join(root, path), 'utf8'), `${path} is stale: run npm run docs`).toBe(text);
    }
  });
  it('every doc the README links to exists', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const m of readme.matchAll(/\]\((docs\/[^)#]+)\)/g)) expect(existsSync(join(root, m[1]!)), m[1]).toBe(true);
  });
});
