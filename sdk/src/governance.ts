/**
 * Governance, for MESH holders: delegate votes, propose (with typed helpers for every governed
 * parameter), vote with a reason, queue and execute through the timelock, and list proposals with
 * their state and tallies.
 */
import { id as keccakText } from "ethers";
import type { ContractTransactionReceipt } from "ethers";
import type { TypedEventLog } from "../../types/ethers-contracts/common.js";
import type { ProposalCreatedEvent } from "../../types/ethers-contracts/governance/MeshGovernor.js";
import type { MeshworkContext } from "./context.js";
import { MeshworkError } from "./errors.js";

/** JobMarket parameters, in the contract's enum order (docs/governance.md gives the bounds). */
export const MARKET_PARAMETERS = [
  "FeeBps",
  "CollateralBps",
  "TimeoutSlashBps",
  "ChallengeWindow",
  "RevealWindow",
  "PMinBps",
  "ProbationJobs",
  "AuditPoolShareBps",
  "AuditRewardBps",
  "AuditCollateralBps",
  "MinComputeWindow",
  "MaxComputeWindow",
  "FraudStakeSlashBps",
  "FraudConsumerBps",
  "FraudAuditorBps",
  "ChallengeBondBps",
  "AssumedCollusionBps",
  "AuditClaimWindow",
  "AuditRevealWindow",
  "EscalationWindow",
  "MaxPauseDuration",
] as const;
export type MarketParameter = (typeof MARKET_PARAMETERS)[number];

/** ProviderRegistry parameters, in the contract's enum order. */
export const REGISTRY_PARAMETERS = ["MinStake", "UnbondingPeriod", "JailPeriod"] as const;
export type RegistryParameter = (typeof REGISTRY_PARAMETERS)[number];

/** Governor.ProposalState, by name. */
export const PROPOSAL_STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"] as const;
export type ProposalStateName = (typeof PROPOSAL_STATES)[number];

export type Support = "against" | "for" | "abstain";
const SUPPORT: Record<Support, number> = { against: 0, for: 1, abstain: 2 };

/** One call a proposal makes. */
export interface ProposalAction {
  target: string;
  value?: bigint;
  data: string;
}

/** What `propose` needs to queue and execute later. */
export interface Proposal {
  proposalId: bigint;
  actions: ProposalAction[];
  description: string;
}

export interface ProposalInfo extends Proposal {
  proposer: string;
  state: ProposalStateName;
  /** When voting opens (the snapshot), in the governor's clock (unix seconds). */
  voteStart: bigint;
  /** When voting ends: `proposalDeadline`, which counts a late-quorum extension. */
  voteEnd: bigint;
  votes: { against: bigint; for: bigint; abstain: bigint };
  /**
   * Votes needed at the snapshot (quorum); undefined while the snapshot is still ahead (a pending
   * proposal), when the supply it is taken over is not known yet.
   */
  quorum?: bigint;
}

export class Governance {
  constructor(private readonly ctx: MeshworkContext) {}

  /**
   * Delegates the caller's MESH votes (to itself by default: tokens vote only once delegated).
   * @example
   * ```ts
   * await mw.governance.delegate();
   * ```
   */
  async delegate(to?: string): Promise<ContractTransactionReceipt> {
    const delegatee = to ?? (await this.ctx.account("delegate"));
    return this.ctx.send("delegate", () => this.ctx.contracts.mesh.delegate(delegatee));
  }

  /** The caller's (or `account`'s) current voting power. */
  async votingPower(account?: string): Promise<bigint> {
    const who = account ?? (await this.ctx.account("votingPower"));
    return this.ctx.call("getVotes", () => this.ctx.contracts.mesh.getVotes(who));
  }

  /**
   * An action setting a governed parameter (validated against its bounds when executed).
   * @example
   * ```ts
   * const action = mw.governance.setParameter("market", "FeeBps", 200n);
   * ```
   */
  setParameter(contract: "market", parameter: MarketParameter, value: bigint): ProposalAction;
  setParameter(contract: "registry", parameter: RegistryParameter, value: bigint): ProposalAction;
  setParameter(contract: "market" | "registry", parameter: string, value: bigint): ProposalAction {
    const list: readonly string[] = contract === "market" ? MARKET_PARAMETERS : REGISTRY_PARAMETERS;
    const index = list.indexOf(parameter);
    if (index < 0) throw new MeshworkError(`unknown ${contract} parameter "${parameter}"`, { details: { known: list.join(", ") } });
    const target = contract === "market" ? this.ctx.contracts.market : this.ctx.contracts.registry;
    return {
      target: contract === "market" ? this.ctx.book.contracts.market : this.ctx.book.contracts.registry,
      data: target.interface.encodeFunctionData("setParameter", [index, value]),
    };
  }

  /**
   * Proposes `actions`; needs the proposal threshold in delegated votes.
   * @throws {MeshworkContractError} `GovernorInsufficientProposerVotes(proposer, votes, threshold)`,
   * `GovernorUnexpectedProposalState` (the same proposal exists).
   * @example
   * ```ts
   * const p = await mw.governance.propose([mw.governance.setParameter("market", "FeeBps", 200n)], "Lower the fee to 2%");
   * ```
   */
  async propose(actions: ProposalAction[], description: string): Promise<Proposal> {
    const { governor } = this.ctx.contracts;
    const [targets, values, calldatas] = split(actions);
    const receipt = await this.ctx.send("propose", () => governor.propose(targets, values, calldatas, description));
    for (const log of receipt.logs) {
      try {
        const parsed = governor.interface.parseLog(log);
        if (parsed?.name === "ProposalCreated") return { proposalId: parsed.args.proposalId, actions, description };
      } catch {
        /* another contract's log */
      }
    }
    throw new MeshworkError("propose: no ProposalCreated event");
  }

  /**
   * Votes on an active proposal, with an optional public reason.
   * @throws {MeshworkContractError} `GovernorUnexpectedProposalState`, `GovernorAlreadyCastVote(voter)`.
   * @example
   * ```ts
   * await mw.governance.vote(p.proposalId, "for", "cheaper compute for students");
   * ```
   */
  async vote(proposalId: bigint, support: Support, reason?: string): Promise<ContractTransactionReceipt> {
    const { governor } = this.ctx.contracts;
    return reason
      ? this.ctx.send("castVoteWithReason", () => governor.castVoteWithReason(proposalId, SUPPORT[support], reason))
      : this.ctx.send("castVote", () => governor.castVote(proposalId, SUPPORT[support]));
  }

  /**
   * Queues a succeeded proposal in the timelock.
   * @throws {MeshworkContractError} `GovernorUnexpectedProposalState`.
   * @example
   * ```ts
   * await mw.governance.queue(p);
   * ```
   */
  async queue(proposal: Proposal): Promise<ContractTransactionReceipt> {
    const [targets, values, calldatas] = split(proposal.actions);
    return this.ctx.send("queue", () => this.ctx.contracts.governor.queue(targets, values, calldatas, keccakText(proposal.description)));
  }

  /**
   * Executes a queued proposal once the timelock delay has passed.
   * @throws {MeshworkContractError} `TimelockUnexpectedOperationState`, the target's own errors.
   * @example
   * ```ts
   * await mw.governance.execute(p);
   * ```
   */
  async execute(proposal: Proposal): Promise<ContractTransactionReceipt> {
    const [targets, values, calldatas] = split(proposal.actions);
    const total = proposal.actions.reduce((s, a) => s + (a.value ?? 0n), 0n);
    return this.ctx.send("execute", () =>
      this.ctx.contracts.governor.execute(targets, values, calldatas, keccakText(proposal.description), { value: total }),
    );
  }

  /** A proposal's state by name. */
  async state(proposalId: bigint): Promise<ProposalStateName> {
    return PROPOSAL_STATES[Number(await this.ctx.call("state", () => this.ctx.contracts.governor.state(proposalId)))];
  }

  /**
   * Every proposal since the deployment block, newest last, with state and tallies (events read in
   * block ranges, so it works against public RPCs).
   * @throws {MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * for (const p of await mw.governance.list()) console.log(p.description, p.state, p.votes.for);
   * ```
   */
  async list(): Promise<ProposalInfo[]> {
    const clock = await this.ctx.call("clock", () => this.ctx.contracts.governor.clock());
    const out: ProposalInfo[] = [];
    for (const log of await this.#created()) out.push(await this.#info(log, clock));
    return out;
  }

  /**
   * One proposal by id, with state and tallies: what `queue` and `execute` need (its actions and
   * description, from its `ProposalCreated` event).
   * @throws {MeshworkError} when no such proposal was made since the deployment block.
   * @throws {MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * await mw.governance.queue(await mw.governance.get(proposalId));
   * ```
   */
  async get(proposalId: bigint): Promise<ProposalInfo> {
    const log = (await this.#created()).find((l) => l.args.proposalId === proposalId);
    if (!log) throw new MeshworkError(`no proposal ${proposalId}`, { details: { proposalId } });
    return this.#info(log, await this.ctx.call("clock", () => this.ctx.contracts.governor.clock()));
  }

  async #created(): Promise<TypedEventLog<ProposalCreatedEvent.Event>[]> {
    const { governor } = this.ctx.contracts;
    return this.ctx.logs("ProposalCreated", (from, to) => governor.queryFilter(governor.filters.ProposalCreated(), from, to));
  }

  async #info(log: TypedEventLog<ProposalCreatedEvent.Event>, clock: bigint): Promise<ProposalInfo> {
    const { governor } = this.ctx.contracts;
    const a = log.args;
    const [state, votes, voteEnd, quorum] = await this.ctx.call("proposal", () =>
      Promise.all([
        governor.state(a.proposalId),
        governor.proposalVotes(a.proposalId),
        governor.proposalDeadline(a.proposalId),
        // The supply at the snapshot is known only once the snapshot has passed (ERC-5805).
        a.voteStart < clock ? governor.quorum(a.voteStart) : undefined,
      ]),
    );
    return {
      proposalId: a.proposalId,
      proposer: a.proposer,
      description: a.description,
      // `a.values` is Array.prototype.values on an ethers Result: the argument is read by position.
      actions: a.targets.map((target: string, i: number) => ({ target, value: a[3][i], data: a.calldatas[i] })),
      state: PROPOSAL_STATES[Number(state)],
      voteStart: a.voteStart,
      voteEnd,
      votes: { against: votes.againstVotes, for: votes.forVotes, abstain: votes.abstainVotes },
      quorum,
    };
  }
}

function split(actions: ProposalAction[]): [string[], bigint[], string[]] {
  return [actions.map((a) => a.target), actions.map((a) => a.value ?? 0n), actions.map((a) => a.data)];
}
