/**
 * Simulated partitions for in-process clusters: a connection gater wrapper the test owns.
 * While a filter is set, links it refuses are denied in every direction and cut at once;
 * the production gater inside carries no test hook.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface';
import type { Mesh } from '../../src/mesh/mesh.js';

export class LinkFilter {
  #allow: ((peerId: string) => boolean) | null = null;

  /** The gater the agent runs with: this filter first, then the production gater. */
  wrap(inner: ConnectionGater): ConnectionGater {
    const cut = (peerId: PeerId) => this.#allow !== null && !this.#allow(peerId.toString());
    const byPeer = <K extends 'denyDialPeer' | 'denyInboundEncryptedConnection' | 'denyOutboundEncryptedConnection' | 'denyInboundUpgradedConnection' | 'denyOutboundUpgradedConnection'>(k: K) =>
      (async (peerId: PeerId, ...rest: unknown[]) => cut(peerId) || Boolean(await (inner[k] as ((...a: unknown[]) => unknown) | undefined)?.(peerId, ...rest))) as NonNullable<ConnectionGater[K]>;
    return {
      ...inner,
      denyDialPeer: byPeer('denyDialPeer'),
      denyInboundEncryptedConnection: byPeer('denyInboundEncryptedConnection'),
      denyOutboundEncryptedConnection: byPeer('denyOutboundEncryptedConnection'),
      denyInboundUpgradedConnection: byPeer('denyInboundUpgradedConnection'),
      denyOutboundUpgradedConnection: byPeer('denyOutboundUpgradedConnection'),
    };
  }

  /** Cuts every link `allow` refuses (closing open ones), or restores all links (null). */
  async set(mesh: Mesh, allow: ((peerId: string) => boolean) | null): Promise<void> {
    this.#allow = allow;
    if (allow) {
      await Promise.all(mesh.libp2p.getConnections().filter((c) => !allow(c.remotePeer.toString())).map((c) => c.close().catch(() => c.abort(new Error('link cut')))));
    } else {
      mesh.resetBackoff();
    }
  }
}
