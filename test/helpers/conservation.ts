/**
 * The money invariant of PROTOCOL.md §2, checked after every scenario:
 *   token.balanceOf(market) == what is held for jobs (escrows, collaterals, bonds)
 *                              + Σ internal balances + Σ fees due + treasury accrual + audit pool
 * What is held for each job comes from the market's `heldFor` view, checked against an independent
 * recomputation from the job's state; balances are summed over every account the tests use.
 */
import { expect } from "chai";
import { collateralOf, type JobStruct } from "../../sdk/src/params.js";
import { JobState, type System } from "./system.js";

export async function liabilities(sys: System, jobs: JobStruct[], extraAccounts: string[] = []): Promise<bigint> {
  const { market, ethers } = sys;
  const token = await sys.usd.getAddress();
  const signers = await ethers.getSigners();
  const accounts = new Set([...signers.map((s) => s.address), ...extraAccounts]);
  let total = (await market.treasuryAccrual(token)) + (await market.auditPool(token));
  for (const account of accounts) {
    total += await market.balanceOf(token, account);
    total += await market.feesDue(token, account);
  }
  for (const job of jobs) {
    if (job.request.paymentToken !== token) continue;
    const held = await market.heldFor(job);
    const state = Number(await market.jobState(await market.hashJob(job)));
    if (state === JobState.Open) expect(held).to.equal(BigInt(job.request.price));
    if ([JobState.Claimed, JobState.Committed, JobState.Challengeable].includes(state)) {
      expect(held).to.equal(BigInt(job.request.price) + collateralOf(job));
    }
    if (state >= JobState.Settled) expect(held).to.equal(0n);
    total += held;
  }
  return total;
}

export async function expectConservation(sys: System, jobs: JobStruct[], extraAccounts: string[] = []) {
  const held = await sys.usd.balanceOf(await sys.market.getAddress());
  expect(held).to.equal(await liabilities(sys, jobs, extraAccounts), "market token balance != its liabilities");
}
