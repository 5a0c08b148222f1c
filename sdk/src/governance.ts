/**
 * Governance, for MESH holders: delegate votes, propose (with typed helpers for every governed
 * parameter), vote with a reason, queue and execute through the timelock, list proposals with their
 * state and tallies, and find the escalated disputes only governance can decide, with their evidence.
 */
import { ZeroAddress, id as keccakText } from "ethers";
import type { ContractTransactionReceipt, Log } from "ethers";
import type { TypedEventLog } from "../../types/ethers-contracts/common.js";
import type { ProposalCreatedEvent } from "../../types/ethers-contracts/governance/MeshGovernor.js";
import type { MeshworkContext } from "./context.js";
import { MeshworkError } from "./errors.js";
import { JOB_STATES } from "./jobs.js";
import { jobFromResult, type JobStruct } from "./params.js";
import { VERDICTS, type Verdict } from "./stats.js";

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

/**
 * An escalated dispute waiting for governance's verdict (`resolveEscalation`), with the evidence a voter
 * needs to decide it: the sampled chunks, the provider's and the auditor's leaves for them, the
 * tie-breaker's answer, and where the provider's outputs are. Re-running the disputed chunks of the
 * job's spec (`mw.jobs.get(jobId)`, its `specURI` in `JobCreated`) and hashing them as leaves shows who
 * is right: `ProviderFraud` when the auditor's leaves are, `AuditorFraud` when the provider's are.
 */
export interface Escalation {
  jobId: string;
  /** The job itself, for {@link Governance.resolveEscalation}. */
  job: JobStruct;
  /**
   * Until when governance may decide (unix seconds); after it anyone ends the dispute as no fault. A
   * verdict proposed now executes no earlier than the voting delay, voting period and timelock delay
   * from now ({@link Governance.latency}).
   */
  deadline: bigint;
  /** Whether `deadline` has passed (by the chain's latest block): only `enforceDeadline` ends it now. */
  expired: boolean;
  provider: string;
  auditor: string;
  /** The tie-breaker whose answer escalated; undefined when none answered (none claimed, or it stalled). */
  tieBreaker?: string;
  /** A consumer's challenge forced the audit: who bonded it. */
  challenger?: string;
  /** The output chunks sampled for the audit, in sample order (a chunk may be sampled twice). */
  sample: number[];
  /** The positions in `sample` where the auditor's leaf differs from the provider's, in order. */
  disputed: number[];
  /**
   * The evidence, from the job's logs: the provider's opened commitment (result root, output URI, its
   * leaves in sample order), the auditor's leaves in sample order, and the tie-breaker's leaves for the
   * `disputed` positions, in that order (when it answered). Undefined when the RPC no longer has those
   * logs (a node that prunes old ones): ask another.
   */
  evidence?: {
    result: { resultRoot: string; outputURI: string; leaves: string[] };
    auditorLeaves: string[];
    tieBreakerLeaves?: string[];
  };
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

  /**
   * The caller's (or `account`'s) current voting power: the MESH delegated to it plus its own active
   * stake in the provider registry (0 for a stake slashed since it last changed: staking or requesting
   * an unstake of any amount counts it again). A vote counts both as they were when it opened.
   */
  async votingPower(account?: string): Promise<bigint> {
    const who = account ?? (await this.ctx.account("votingPower"));
    const [delegated, staked] = await Promise.all([
      this.ctx.call("getVotes", () => this.ctx.contracts.mesh.getVotes(who)),
      this.ctx.call("stakeVotes", () => this.ctx.contracts.registry.stakeVotes(who)),
    ]);
    return delegated + staked;
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
   * Proposes `actions`; needs the proposal threshold in votes (delegated MESH and own stake).
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

  /**
   * The disputes now escalated to governance, oldest first, each with its evidence. A verdict is
   * proposed with {@link resolveEscalation} and must execute before the escalation's `deadline`:
   * allow for {@link latency}.
   * @throws {MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * for (const e of await mw.governance.escalations()) console.log(e.jobId, e.disputed, e.evidence?.result.outputURI);
   * ```
   */
  async escalations(): Promise<Escalation[]> {
    const { market } = this.ctx.contracts;
    const latest = await this.ctx.call("blockNumber", () => this.ctx.provider.getBlockNumber());
    const escalatedAt = new Map<string, number>(); // job id -> block of its DisputeEscalated
    for (const log of await this.ctx.logs("DisputeEscalated", (from, to) => market.queryFilter(market.filters.DisputeEscalated(), from, to), undefined, latest)) {
      escalatedAt.set(String(log.args.jobId), log.blockNumber);
    }
    const ids = [...escalatedAt.keys()];
    const states = await this.ctx.call("jobState", () => Promise.all(ids.map((id) => market.jobState(id))));
    const open = ids.filter((_, i) => JOB_STATES[Number(states[i])] === "Escalated");
    if (open.length === 0) return [];
    // Every open dispute's job in one pass over the blocks up to the last escalation.
    const lastEscalation = Math.max(...open.map((id) => escalatedAt.get(id)!));
    const createdTopic = market.interface.getEvent("JobCreated")!.topicHash;
    const created = await this.ctx.logs(
      "find JobCreated",
      (from, to) => this.ctx.provider.getLogs({ address: this.ctx.book.contracts.market, topics: [createdTopic, open], fromBlock: from, toBlock: to }),
      undefined,
      lastEscalation,
    );
    const now = BigInt((await this.ctx.call("block", () => this.ctx.provider.getBlock(latest)))?.timestamp ?? 0);
    const out: Escalation[] = [];
    for (const log of created) {
      const parsed = market.interface.parseLog({ topics: [...log.topics], data: log.data });
      if (!parsed) continue;
      out.push(await this.#escalation(String(parsed.args.jobId), jobFromResult(parsed.args.job), log.blockNumber, escalatedAt.get(String(parsed.args.jobId))!, now));
    }
    return out;
  }

  /**
   * The fastest a proposal made now can execute (seconds): the voting delay, the voting period and the
   * timelock's delay (a late quorum can add the governor's extension).
   */
  async latency(): Promise<bigint> {
    const { governor, timelock } = this.ctx.contracts;
    const [delay, period, minDelay] = await this.ctx.call("latency", () => Promise.all([governor.votingDelay(), governor.votingPeriod(), timelock.getMinDelay()]));
    return delay + period + minDelay;
  }

  /**
   * A proposal action deciding an escalated dispute: `ProviderFraud` (the provider's result is wrong:
   * P back to the consumer, its collateral split, its stake slashed), `AuditorFraud` (the auditor lied:
   * the provider is paid, the auditor slashed) or `NoFault` (everyone's money back, the auditors' rewards
   * paid). The market refuses it once the dispute has ended (decided, or past its deadline), and a
   * timelock executes a proposal's actions all or nothing: propose a verdict on its own.
   * @throws {MeshworkError} for a verdict not in the list.
   * @example
   * ```ts
   * const [e] = await mw.governance.escalations();
   * await mw.governance.propose([mw.governance.resolveEscalation(e.job, "ProviderFraud")], `Dispute ${e.jobId}: the auditor is right`);
   * ```
   */
  resolveEscalation(job: JobStruct, verdict: Verdict): ProposalAction {
    const index = VERDICTS.indexOf(verdict);
    if (index < 0) throw new MeshworkError(`unknown verdict "${verdict}"`, { details: { known: VERDICTS.join(", ") } });
    return {
      target: this.ctx.book.contracts.market,
      data: this.ctx.contracts.market.interface.encodeFunctionData("resolveEscalation", [job, index]),
    };
  }

  async #escalation(jobId: string, job: JobStruct, createdAt: number, escalatedAt: number, now: bigint): Promise<Escalation> {
    const { market } = this.ctx.contracts;
    const audit = await this.ctx.call("auditOf", () => market.auditOf(job));
    // The job's own events from its creation to its escalation, in one query per range: its reveals.
    const logs = await this.ctx.logs(
      "escalation evidence",
      (from, to) => this.ctx.provider.getLogs({ address: this.ctx.book.contracts.market, topics: [null, jobId], fromBlock: from, toBlock: to }),
      createdAt,
      escalatedAt,
    );
    const parsed = logs.map((log: Log) => market.interface.parseLog({ topics: [...log.topics], data: log.data })).filter((p) => p !== null);
    const last = (name: string) => parsed.filter((p) => p.name === name).at(-1)?.args;
    const [revealed, audited, tieBroken] = [last("ResultRevealed"), last("AuditRevealed"), last("TieBreakRevealed")];
    const sample = audit.sample.map(Number);
    return {
      jobId,
      job,
      deadline: audit.deadline,
      expired: now > audit.deadline,
      provider: String(last("JobClaimed")?.provider ?? revealed?.provider ?? ZeroAddress),
      auditor: audit.auditor,
      tieBreaker: audit.tieBreaker === ZeroAddress ? undefined : audit.tieBreaker,
      challenger: audit.challenger === ZeroAddress ? undefined : audit.challenger,
      sample,
      disputed: sample.map((_, k) => k).filter((k) => (audit.disputed >> BigInt(k)) & 1n),
      evidence:
        revealed && audited
          ? {
              result: { resultRoot: String(revealed.resultRoot), outputURI: String(revealed.outputURI), leaves: [...revealed.leaves].map(String) },
              auditorLeaves: [...audited.leaves].map(String),
              tieBreakerLeaves: tieBroken && audit.tieBreaker !== ZeroAddress ? [...tieBroken.leaves].map(String) : undefined,
            }
          : undefined,
    };
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
