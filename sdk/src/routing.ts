/**
 * Smart routing (PROTOCOL.md §4, matching by signed offer): rank providers' signed offers, or their
 * posted prices, within the consumer's caps. Pure functions; `Jobs.route` gathers the candidates.
 *
 * The order is lexicographic and predictable: the lowest price first; between equal prices the more
 * reliable provider (settled / finished jobs), then the shorter queue (jobs it is computing now), then a
 * provider in the preferred region, then renewable energy. Caps filter before ranking: a maximum price,
 * a required region, renewable-only, and on-chain eligibility (stake, jail, hardware, posted price).
 */
import { Energy } from "./providers.js";

export interface RoutingCandidate {
  provider: string;
  /** What the job would cost with this provider (the offer's price, or posted price × work units). */
  price: bigint;
  region: string;
  energy: Energy;
  /** 0..1, from {@link reputationOf}. */
  reliability: number;
  /** Jobs the provider is computing now (claimed, not yet committed); 0, not read, for an ineligible candidate or an invalid offer. */
  queue: number;
  /** The registry's verdict for this job (0 = eligible). */
  eligibility: number;
}

export interface RoutingCaps {
  /** Never pay more than this for the job. */
  maxPrice: bigint;
  /** Only providers in this ISO-3166 region. */
  region?: string;
  /** Prefer (rank first among equals) providers in this region. */
  preferRegion?: string;
  renewableOnly?: boolean;
  /** Skip providers below this reliability. */
  minReliability?: number;
  /** Skip providers holding more jobs than this. */
  maxQueue?: number;
}

/** Why a candidate was left out (for UIs and logs). */
export interface Rejection<T extends RoutingCandidate> {
  candidate: T;
  reason: "ineligible" | "over-price-cap" | "region" | "not-renewable" | "reliability" | "queue";
}

/**
 * Filters `candidates` by the caps and sorts the rest, best first.
 * @example
 * ```ts
 * const { ranked } = rankCandidates(candidates, { maxPrice: 50_000_000n, renewableOnly: true });
 * const best = ranked[0];
 * ```
 */
export function rankCandidates<T extends RoutingCandidate>(
  candidates: T[],
  caps: RoutingCaps,
): { ranked: T[]; rejected: Rejection<T>[] } {
  const ranked: T[] = [];
  const rejected: Rejection<T>[] = [];
  for (const candidate of candidates) {
    const reason = rejectionOf(candidate, caps);
    if (reason) rejected.push({ candidate, reason });
    else ranked.push(candidate);
  }
  ranked.sort((a, b) => compare(a, b, caps));
  return { ranked, rejected };
}

function rejectionOf(c: RoutingCandidate, caps: RoutingCaps): Rejection<RoutingCandidate>["reason"] | undefined {
  if (c.eligibility !== 0) return "ineligible";
  if (c.price > caps.maxPrice) return "over-price-cap";
  if (caps.region && c.region !== caps.region) return "region";
  if (caps.renewableOnly && c.energy !== Energy.Renewable) return "not-renewable";
  if (caps.minReliability !== undefined && c.reliability < caps.minReliability) return "reliability";
  if (caps.maxQueue !== undefined && c.queue > caps.maxQueue) return "queue";
  return undefined;
}

function compare(a: RoutingCandidate, b: RoutingCandidate, caps: RoutingCaps): number {
  if (a.price !== b.price) return a.price < b.price ? -1 : 1;
  if (a.reliability !== b.reliability) return b.reliability - a.reliability;
  if (a.queue !== b.queue) return a.queue - b.queue;
  if (caps.preferRegion) {
    const ra = a.region === caps.preferRegion ? 0 : 1;
    const rb = b.region === caps.preferRegion ? 0 : 1;
    if (ra !== rb) return ra - rb;
  }
  const ea = a.energy === Energy.Renewable ? 0 : 1;
  const eb = b.energy === Energy.Renewable ? 0 : 1;
  if (ea !== eb) return ea - eb;
  return a.provider.toLowerCase() < b.provider.toLowerCase() ? -1 : 1;
}
