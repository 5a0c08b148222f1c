/** How the meshwork CLI shows an escalated dispute to a voter (`gov escalations`). */
import type { Escalation } from "../../sdk/src/governance.js";

/**
 * The lines for one escalated dispute: its deadline (or that it passed), the parties, where the
 * provider's outputs are, and for each disputed position of the sample the chunk and the leaves each
 * side gave. `latency` is the fastest a proposal executes (seconds).
 */
export function describeEscalation(e: Escalation, latency: bigint): string[] {
  const deadline = new Date(Number(e.deadline) * 1000).toISOString();
  const lines = [
    `${e.jobId}  ${e.expired ? `deadline passed ${deadline}: ends as no fault (enforceDeadline)` : `decide before ${deadline} (a proposal takes ${latency} s at least)`}`,
    `  provider ${e.provider}, auditor ${e.auditor}, tie-breaker ${e.tieBreaker ?? "none answered"}${e.challenger ? `, challenger ${e.challenger}` : ""}`,
  ];
  const evidence = e.evidence;
  if (!evidence) return [...lines, "  evidence: not in this RPC's logs (it may prune old ones): ask another with --rpc"];
  lines.push(`  outputs ${evidence.result.outputURI} (root ${evidence.result.resultRoot})`);
  e.disputed.forEach((k, j) => {
    const t = evidence.tieBreakerLeaves?.[j];
    lines.push(`  sampled chunk ${e.sample[k]} (position ${k}): provider ${evidence.result.leaves[k]}, auditor ${evidence.auditorLeaves[k]}${t ? `, tie-breaker ${t}` : ""}`);
  });
  return lines;
}
