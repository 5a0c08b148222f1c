/**
 * PROTOCOL.md §7 in practice. With the default parameters (pMin 50%, S = 2P, three probation jobs,
 * m = 4 sampled chunks of N = 256), a worker that fabricates a fraction f of each job's chunks to save
 * that share of its compute ends with less money than an honest worker, over 1,000 jobs each, paid by
 * the deployed contracts through real transactions: every job is created, claimed, committed and then
 * settled, or audited by an honest auditor and, on a mismatch, decided by an honest tie-breaker.
 *
 * Money is measured in the payment token: earnings minus compute spent (the honest compute cost is half
 * the price) minus slashed MESH valued at 0.10 tUSD. A caught worker serves its jail and restakes; the
 * jail lasts an hour here instead of 30 days (time in jail is not counted as money, and a thousand
 * 30-day jails would run the simulated clock past the year 2106).
 */
import { expect } from "chai";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { packVerification } from "../../sdk/src/params.js";
import { AuditAnswer, Result } from "../helpers/audits.js";
import { MESH, MIN_STAKE, USD, createdEvent, fund, jobFromEvent, jobRequest, marketWithProviders, onboardProvider, revertName, type System } from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

const JOBS = Number(process.env.ECONOMICS_JOBS ?? 1_000);
const N = 256;
const M = 4;
const PRICE = 100n * USD;
const COST = 50n * USD;
const MESH_PRICE = USD / 10n; // tUSD per MESH

interface Outcome {
  f: string;
  profit: bigint;
  audited: number;
  caught: number;
  meshSlashed: bigint;
}

/** Deterministic choice of which chunks a cheater fabricates. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

async function simulate(fakePer256: number): Promise<Outcome> {
  const sys: System = await marketWithProviders(ethers);
  const { market, usd, registry, mesh } = sys;
  const [worker] = sys.providers;
  const [auditor, tieBreaker] = sys.others;
  for (const a of [auditor, tieBreaker]) {
    await onboardProvider(sys, a);
    await fund(sys, a, 10_000n * USD);
  }
  await market.setParameter(6, 3); // ProbationJobs: the default of a live deployment
  await registry.setParameter(2, 3600); // JailPeriod: see above
  await fund(sys, sys.consumer, BigInt(JOBS) * 2n * PRICE);
  await fund(sys, worker, 1_000_000n * USD); // enough collateral to keep working after every slash
  await mesh.transfer(worker.address, 1_000_000n * MESH);
  await mesh.connect(worker).approve(registry, ethers.MaxUint256);
  await sys.randomness.set(1, ethers.id(`economics ${fakePer256}`)); // each job's draw still differs: it hashes the job id
  const start = await market.balanceOf(usd, worker.address);
  const random = rng(fakePer256 + 1);
  const fakes = (N * fakePer256) / 256;
  let spent = 0n;
  let audited = 0;
  let caught = 0;

  for (let j = 0; j < JOBS; j++) {
    const request = await jobRequest(sys, {
      price: PRICE,
      workUnits: 1n,
      verification: packVerification({ chunks: N, auditChunks: M, auditBps: 0 }),
      nonce: BigInt(j),
      // Deterministic job ids (no clock, no random spec hash): the same draws on every run.
      specHash: ethers.id(`spec ${fakePer256} ${j}`),
      claimBy: 4_000_000_000n,
    });
    const receipt = await (await market.connect(sys.consumer).createJob(request, "")).wait();
    const { jobId, job } = jobFromEvent(createdEvent(sys, receipt!));
    await market.connect(worker).claim(job);
    const fabricated = new Set<number>();
    while (fabricated.size < fakes) fabricated.add(Math.floor(random() * N));
    const result = Result.of(jobId, worker.address, N, fabricated);
    spent += (COST * BigInt(N - fakes)) / BigInt(N);
    await market.connect(worker).commit(jobId, result.commitment);
    await networkHelpers.time.increase(3600);

    const drawnForAudit = await market.settle.staticCall(job, worker.address, result.tree.root, result.salt, "out").then(
      () => false,
      (error: unknown) => {
        if (revertName(sys, error) === "JobMarketAuditRequired") return true;
        throw error;
      },
    );
    if (!drawnForAudit) {
      await market.settle(job, worker.address, result.tree.root, result.salt, "out");
      continue;
    }
    audited++;
    if (await audit(sys, job, jobId, result, worker, auditor, tieBreaker)) {
      caught++;
      const { jailedUntil } = await registry.stakeOf(worker.address);
      await networkHelpers.time.increaseTo(jailedUntil + 1n);
      const { active } = await registry.stakeOf(worker.address);
      if (active < MIN_STAKE) await registry.connect(worker).stake(worker.address, MIN_STAKE - active);
    }
  }
  const earned = (await market.balanceOf(usd, worker.address)) - start;
  const meshSlashed = await registry.slashedStake();
  return { f: `${fakePer256}/256`, profit: earned - spent - (meshSlashed * MESH_PRICE) / MESH, audited, caught, meshSlashed };
}

/** The honest auditor re-runs the sample; a mismatch goes to the honest tie-breaker. Returns "caught". */
async function audit(
  sys: System,
  job: Awaited<ReturnType<typeof jobFromEvent>>["job"],
  jobId: string,
  result: Result,
  worker: HardhatEthersSigner,
  auditor: HardhatEthersSigner,
  tieBreaker: HardhatEthersSigner,
): Promise<boolean> {
  const { market } = sys;
  const sample = (await market.sampleOf(job)).map(Number);
  const answer = AuditAnswer.of(jobId, auditor.address, sample);
  await market.connect(auditor).audit(job, answer.commitment);
  const revealed = result.leavesAt(sample);
  await market.connect(worker).revealResult(job, worker.address, result.tree.root, result.salt, "out", revealed, result.proofsAt(sample));
  if (Number(await market.jobState(jobId)) === 9) return false; // Settled: the leaves matched
  await market.connect(auditor).revealAudit(job, answer.leaves, revealed);
  const view = await market.auditOf(job);
  const disputed = sample.filter((_, k) => (view.disputed >> BigInt(k)) & 1n);
  const tie = AuditAnswer.of(jobId, tieBreaker.address, disputed);
  await market.connect(tieBreaker).tieBreak(job);
  await market.connect(tieBreaker).revealTieBreak(job, tie.leaves, revealed, answer.leaves);
  return Number(await market.jobState(jobId)) === 10; // Slashed
}

describe(`economics: cheating does not pay (${JOBS} jobs per worker)`, function () {
  this.timeout(30 * 60_000);

  it("a worker fabricating 1/256, 1/16, 1/2 or all chunks ends with less money than an honest one", async () => {
    const honest = await simulate(0);
    expect(honest.caught).to.equal(0);
    const rows: Outcome[] = [honest];
    for (const fakePer256 of [1, 16, 128, 256]) {
      const cheat = await simulate(fakePer256);
      rows.push(cheat);
      expect(cheat.profit < honest.profit, `f = ${cheat.f}: cheater ${cheat.profit} vs honest ${honest.profit}`).to.equal(true);
    }
    const usd = (v: bigint) => (Number(v) / 1e6).toFixed(2).padStart(12);
    console.log("\n      f (fabricated)   profit tUSD   audited   caught   MESH slashed");
    for (const r of rows) {
      console.log(`      ${r.f.padEnd(15)} ${usd(r.profit)} ${String(r.audited).padStart(9)} ${String(r.caught).padStart(8)} ${String(r.meshSlashed / MESH).padStart(14)}`);
    }
  });
});
