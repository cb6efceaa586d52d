/** The NODE_OPTIONS the shipped systemd unit runs the agent with: agent-process benchmarks use them too. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const unit = readFileSync(resolve(import.meta.dirname, '..', 'deploy', 'systemd', 'picket.service'), 'utf8');
export const DEPLOYED_NODE_OPTIONS = /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1] ?? '';
