/**
 * What the mesh does with a verdict, shared by gossip and anti-entropy (so neither room imports
 * the other): a verification outcome becomes accept / ignore / reject for gossipsub (a reject
 * strikes the sender), and a budget overrun is reported through one callback type.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { OfferResult } from '../node/engine.js';
import type { Charge } from './budgets.js';

export { TopicValidatorResult };

/** Maps a verification outcome to what gossipsub does with the message. */
export function gossipVerdict(outcome: OfferResult['outcome']): TopicValidatorResult {
  switch (outcome) {
    case 'accepted':
      return TopicValidatorResult.Accept;
    // Honest peers can send these: a lagging relay, a race, a peer that saw the other side of an equivocation.
    case 'duplicate':
    case 'stale':
    case 'equivocation':
    case 'expired':
    case 'gap':
    // An honest peer that has not yet seen a root rotation, or whose root expired, sends these.
    case 'stale-root-signature':
    case 'root-expired':
      return TopicValidatorResult.Ignore;
    // Only a forger or a broken peer sends these: gossipsub penalises the sender.
    default:
      return TopicValidatorResult.Reject;
  }
}

/** Reports a budget overrun by `peer` (counted; struck or aggregated by the mesh). */
export type Overrun = (peer: string, charge: Extract<Charge, { ok: false }>) => void;
