/** Agent config errors say what is wrong where: wrong types are not "missing", unknown keys are on their line. */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/agent/config.js';

const base = 'meshId: m\ndataDir: ./d\nidentityKey: ./n.key\ntrustedRoot: ./root.json\n';
const error = (text: string) => {
  try {
    parseConfigText(text, 'agent.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
};

describe('agent config errors', () => {
  it('a field of the wrong type is reported as a wrong type, not as missing', () => {
    expect(error(`${base}listen: /ip4/0.0.0.0/tcp/7946\n`)).toBe('agent.yaml:5: listen: must be a list, got the string "/ip4/0.0.0.0/tcp/7946"');
    expect(error(`${base}mesh: { minPeers: "6" }\n`)).toBe('agent.yaml:5: mesh.minPeers: must be an integer, got the string "6"');
    expect(error('meshId: m\n')).toMatch(/^agent\.yaml:1: dataDir: is required$/m);
  });
  it('each unknown key is reported on its own line', () => {
    expect(error(`${base}bootstrapp: []\ncontrol:\n  metrics: null\n  sockett: /x\n`).split('\n').sort()).toEqual([
      'agent.yaml:5: unknown field bootstrapp',
      'agent.yaml:8: control: unknown field sockett',
    ]);
  });
});
