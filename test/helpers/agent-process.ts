/** Runs `picket agent` as a real process, for crash, signal and control-API tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BIN } from './cli.js';
import { until } from './cluster.js';

export interface AgentProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnAgent(config: string, env: Record<string, string> = {}, cwd?: string): AgentProcess {
  const child = spawn(process.execPath, [BIN, 'agent', '--config', config], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

export async function waitForSocket(path: string, proc: AgentProcess, timeoutMs = 15_000): Promise<void> {
  await until(() => existsSync(path) || proc.child.exitCode !== null, timeoutMs, () => proc.output());
  if (proc.child.exitCode !== null) throw new Error(`agent exited: ${proc.output()}`);
}
