/**
 * The compute commons: programmes of funded capacity for newcomers. Grantees pay jobs from their
 * grant; everyone can read programmes, grants and spending. (Creating and funding programmes is
 * governance's: build those actions with {@link Commons.createProgrammeAction}.)
 */
import type { ContractTransactionReceipt } from "ethers";
import type { MeshworkContext } from "./context.js";
import { MeshworkError } from "./errors.js";
import { JobHandle, type PreparedJob } from "./jobs.js";
import { jobFromResult } from "./params.js";
import type { ProposalAction } from "./governance.js";

export interface Programme {
  id: bigint;
  name: string;
  token: string;
  budget: bigint;
  spent: bigint;
  start: bigint;
  end: bigint;
  jobs: number;
}

export class Commons {
  constructor(private readonly ctx: MeshworkContext) {}

  /**
   * Every programme, with budget and spend.
   * @example
   * ```ts
   * for (const p of await mw.commons.programmes()) console.log(p.name, p.budget - p.spent);
   * ```
   */
  async programmes(): Promise<Programme[]> {
    const { commons } = this.ctx.contracts;
    const count = Number(await this.ctx.call("programmeCount", () => commons.programmeCount()));
    const out: Programme[] = [];
    for (let id = 1n; id <= BigInt(count); id++) out.push(await this.programme(id));
    return out;
  }

  /** One programme. @throws {MeshworkContractError} `CommonsUnknownProgramme(programmeId)`. */
  async programme(id: bigint): Promise<Programme> {
    const p = await this.ctx.call("programme", () => this.ctx.contracts.commons.programme(id));
    return { id, name: p.name, token: p.token, budget: p.budget, spent: p.spent, start: p.start, end: p.end, jobs: Number(p.jobs) };
  }

  /** A grantee's remaining allowance in a programme (the caller's by default). */
  async grant(programmeId: bigint, grantee?: string): Promise<bigint> {
    const who = grantee ?? (await this.ctx.account("grant"));
    return this.ctx.call("allowanceOf", () => this.ctx.contracts.commons.allowanceOf(programmeId, who));
  }

  /**
   * Pays a prepared job from the caller's grant: the commons is the job's consumer, providers' commons
   * prices apply. The handle follows the job like any other.
   * @throws {MeshworkContractError} `CommonsAllowanceExceeded`, `CommonsBudgetExceeded`,
   * `CommonsOutsidePeriod`, `CommonsWrongToken`, `CommonsTargetedJob` (a commons job is open to every
   * provider: prepare it without `targetProvider`).
   * @example
   * ```ts
   * const prepared = await mw.jobs.prepare(spec, { token: "tUSD", price: 5_000_000n, workUnits: 5n });
   * const job = await mw.commons.createJob(1n, prepared);
   * ```
   */
  async createJob(programmeId: bigint, prepared: PreparedJob): Promise<JobHandle> {
    const { commons, market } = this.ctx.contracts;
    const receipt = await this.ctx.send("commons.createJob", () => commons.createJob(programmeId, prepared.request, prepared.specURI));
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== this.ctx.book.contracts.market.toLowerCase()) continue;
      const parsed = market.interface.parseLog(log);
      if (parsed?.name === "JobCreated") {
        const handle = new JobHandle(this.ctx, parsed.args.jobId, jobFromResult(parsed.args.job), receipt.blockNumber);
        handle.track(receipt);
        handle.spec = prepared.spec;
        return handle;
      }
    }
    throw new MeshworkError("commons.createJob: no JobCreated event");
  }

  /**
   * The grantee cancels its unclaimed commons job; the price returns to the programme and its grant
   * (unless governance set the grant since the job was posted).
   * @throws {MeshworkContractError} `CommonsNotGrantee`, `JobMarketUnexpectedState`.
   */
  async cancelJob(job: JobHandle): Promise<ContractTransactionReceipt> {
    return this.ctx.send("commons.cancelJob", () => this.ctx.contracts.commons.cancelJob(job.job));
  }

  /**
   * Closes a finished commons job (anyone): a refunded price goes back to its programme and grant.
   * @throws {MeshworkContractError} `CommonsJobNotFinished`, `CommonsJobAlreadyClosed`.
   */
  async closeJob(job: JobHandle): Promise<ContractTransactionReceipt> {
    return this.ctx.send("commons.closeJob", () => this.ctx.contracts.commons.closeJob(job.job));
  }

  /**
   * Proposal actions creating a programme funded from the treasury (withdraw into the commons, create).
   * @example
   * ```ts
   * const actions = mw.commons.createProgrammeAction("Students 2027", "tUSD", 5_000_000_000n, start, end);
   * await mw.governance.propose(actions, "Compute commons: Students 2027");
   * ```
   */
  createProgrammeAction(name: string, token: string, budget: bigint, start: bigint, end: bigint): ProposalAction[] {
    const { market, commons } = this.ctx.contracts;
    const address = this.ctx.token(token);
    return [
      { target: this.ctx.book.contracts.market, data: market.interface.encodeFunctionData("withdrawTreasury", [address, this.ctx.book.contracts.commons, budget]) },
      { target: this.ctx.book.contracts.commons, data: commons.interface.encodeFunctionData("createProgramme", [name, address, budget, start, end]) },
    ];
  }

  /**
   * A proposal action approving a grantee with an allowance (0 revokes). The allowance is then exactly
   * `allowance`: refunds of the grantee's older jobs return to the programme, not to the grantee.
   */
  approveGranteeAction(programmeId: bigint, grantee: string, allowance: bigint): ProposalAction {
    return this.#action(this.ctx.contracts.commons.interface.encodeFunctionData("approveGrantee", [programmeId, grantee, allowance]));
  }

  /**
   * A proposal action taking `amount` of a programme's unspent budget (budget − spent) back into the
   * commons' unallocated funds, e.g. what an ended programme left; follow it with a
   * `withdrawUnallocated` action to move the funds, or a `fundProgramme` one to reuse them.
   */
  reclaimBudgetAction(programmeId: bigint, amount: bigint): ProposalAction {
    return this.#action(this.ctx.contracts.commons.interface.encodeFunctionData("reclaimBudget", [programmeId, amount]));
  }

  /** A proposal action cancelling an unclaimed commons job (a revoked grantee's, say): its price returns to the programme. */
  cancelJobAction(job: JobHandle): ProposalAction {
    return this.#action(this.ctx.contracts.commons.interface.encodeFunctionData("cancelJob", [job.job]));
  }

  #action(data: string): ProposalAction {
    return { target: this.ctx.book.contracts.commons, data };
  }
}
