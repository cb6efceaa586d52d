/**
 * Fault injection for crash tests: PICKET_CRASHPOINT=<name> makes the process kill itself
 * with SIGKILL (no cleanup, as a power cut would) when it reaches that point. Unset in
 * production; the only effect of an unknown name is nothing.
 */
export function crashpoint(name: string): void {
  if (process.env.PICKET_CRASHPOINT === name) process.kill(process.pid, 'SIGKILL');
}
