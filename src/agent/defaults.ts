/**
 * Where the agent and the `picket` command meet by default, defined once. The control socket
 * lives in the agent's data directory (`<dataDir>/control.sock`) unless `control.socket` says
 * otherwise, and the command finds it by reading the same agent config the daemon reads
 * (`--config`, else $PICKET_CONFIG, else DEFAULT_CONFIG_PATH). See docs/decisions.md.
 */
import { resolve } from 'node:path';

/** The config every shipped recipe (systemd unit, image, DaemonSet, Chef) installs. */
export const DEFAULT_CONFIG_PATH = '/etc/picket/agent.yaml';

/** The control socket of an agent whose config does not set `control.socket`. */
export function defaultSocket(dataDir: string): string {
  return resolve(dataDir, 'control.sock');
}
