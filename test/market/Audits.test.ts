import { expect } from "chai";
import { network } from "hardhat";
import { auditorCommitment, sampleIndices } from "../../sdk/src/merkle.js";
import { hashJob, packVerification } from "../../sdk/src/params.js";
import { AuditAnswer, claimAudit, disputedChunks, Result } from "../helpers/audits.js";
import { expectConservation } from "../helpers/conservation.js";
import {
  HOUR,
  DAY,
  JAIL_PERIOD,
  JobState,
  MIN_STAKE,
  USD,
  createJob,
  fund,
  marketWithProviders,
  onboardProvider,
  setDraw,
  type Job,
  type System,
} from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

const P = 100n * USD;
const S = 200n * USD; // collateralBps 20000
const A = 100n * USD; // auditCollateralBps 10000
const REWARD = 2n * USD; // auditRewardBps 200
const FEE = 2_500_000n;
const BOND = 10n * USD; // challengeBondBps 1000
const N = 16;
const M = 4;

enum Phase {
  None,
  AwaitingAuditor,
  AuditorCommitted,
  AwaitingAuditorReveal,
  AwaitingTieBreaker,
  TieBreakerClaimed,
  Escalated,
}
enum Verdict {
  ProviderFraud,
  AuditorFraud,
  NoFault,
}

describe("JobMarket audits, disputes and challenges", () => {
  /** Three providers plus an auditor and a tie-breaker, and a funded audit pool. */
  async function world(fundPool = true) {
    const sys = await marketWithProviders(ethers);
    const [auditor, tieBreaker, stranger] = sys.others;
    for (const a of [auditor, tieBreaker]) {
      await onboardProvider(sys, a);
      await fund(sys, a, 1_000n * USD);
    }
    await fund(sys, stranger, 1_000n * USD);
    if (fundPool) {
      await expect(sys.market.connect(stranger).fundAuditPool(sys.usd, 100n * USD))
        .to.emit(sys.market, "AuditPoolFunded")
        .withArgs(await sys.usd.getAddress(), stranger.address, 100n * USD);
    }
    return { sys, auditor, tieBreaker, stranger };
  }

  /** A job of N chunks (audits re-run M) claimed and committed by provider 1 with `result`. */
  async function committedWith(fabricated: number[] = [], fundPool = true) {
    const w = await world(fundPool);
    const { sys } = w;
    const provider = sys.providers[0];
    const { jobId, job } = await createJob(sys, sys.consumer, {
      verification: packVerification({ chunks: N, auditChunks: M, auditBps: 0 }),
    });
    await sys.market.connect(provider).claim(job);
    const result = Result.of(jobId, provider.address, N, fabricated);
    await sys.market.connect(provider).commit(jobId, result.commitment);
    return { ...w, provider, jobId, job, result };
  }

  type Ctx = Awaited<ReturnType<typeof committedWith>>;

  // Named fixtures (loadFixture snapshots by function identity).
  const honestJob = () => committedWith();
  const honestJobSmallPool = () => committedWith([], false);
  const everyChunkFabricated = () => committedWith(Array.from({ length: N }, (_, i) => i));
  async function unaudited(fabricated: number[]) {
    const c = await committedWith(fabricated);
    await setDraw(c.sys, c.jobId, false);
    await c.sys.market.draw(c.job);
    return c;
  }
  const unauditedHonest = () => unaudited([]);
  const unauditedWithChunk5Fabricated = () => unaudited([5]);

  /** Balances of every party, the treasury and the pool, for before/after comparisons. */
  async function snapshot(c: Ctx) {
    const { sys } = c;
    const b = async (a: string) => sys.market.balanceOf(sys.usd, a);
    return {
      consumer: await b(sys.consumer.address),
      provider: await b(c.provider.address),
      auditor: await b(c.auditor.address),
      tieBreaker: await b(c.tieBreaker.address),
      stranger: await b(c.stranger.address),
      treasury: await sys.market.treasuryAccrual(sys.usd),
      pool: await sys.market.auditPool(sys.usd),
      providerStake: (await sys.registry.stakeOf(c.provider.address)).active,
      auditorStake: (await sys.registry.stakeOf(c.auditor.address)).active,
    };
  }

  function delta(before: Awaited<ReturnType<typeof snapshot>>, after: typeof before) {
    return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
  }

  /** The provider opens its commitment with the sampled leaves and their proofs (returns the transaction). */
  function revealResult(c: Ctx, sample: number[]) {
    return c.sys.market
      .connect(c.provider)
      .revealResult(c.job, c.provider.address, c.result.tree.root, c.result.salt, "http://out", c.result.leavesAt(sample), c.result.proofsAt(sample));
  }

  /** Draws the job for audit, the auditor claims and commits, the provider reveals (settling a match). */
  async function toProviderRevealed(c: Ctx, auditorLiesAt: number[] = []) {
    await setDraw(c.sys, c.jobId, true);
    const { sample, answer } = await claimAudit(c.sys, c.job, c.auditor, auditorLiesAt);
    const reveal = revealResult(c, sample);
    await reveal;
    return { sample, answer, reveal };
  }

  async function revealAudit(c: Ctx, sample: number[], answer: AuditAnswer) {
    return c.sys.market.connect(c.auditor).revealAudit(c.job, answer.leaves, c.result.leavesAt(sample));
  }

  /** From a dispute: a tie-breaker claims, re-runs the disputed chunks (a third answer if asked) and answers. */
  async function tieBreak(c: Ctx, sample: number[], answer: AuditAnswer, mode: "honest" | "third") {
    const mask = (await c.sys.market.auditOf(c.job)).disputed;
    const chunks = disputedChunks(sample, mask);
    const tb = AuditAnswer.of(c.jobId, c.tieBreaker.address, chunks, mode === "third" ? chunks.map((_, k) => k) : []);
    await c.sys.market.connect(c.tieBreaker).tieBreak(c.job);
    return c.sys.market.connect(c.tieBreaker).revealTieBreak(c.job, tb.leaves, c.result.leavesAt(sample), answer.leaves);
  }

  const worldFixture = () => world();

  /**
   * With ProbationJobs = 1: `provider`'s first job, drawn for audit with probability 1 (probation), the
   * audit left unclaimed, then settled: the provider has one completed job and is past probation.
   */
  async function leaveProbation(sys: System, provider: System["providers"][number], verification: bigint) {
    const first = await createJob(sys, sys.consumer, { verification });
    await sys.market.connect(provider).claim(first.job);
    const r1 = Result.of(first.jobId, provider.address, N);
    await sys.market.connect(provider).commit(first.jobId, r1.commitment);
    await sys.randomness.set(1, ethers.ZeroHash);
    await expect(sys.market.draw(first.job)).to.emit(sys.market, "AuditDrawn").withArgs(first.jobId, true, 10_000, false);
    await networkHelpers.time.increase(HOUR + 1n);
    await sys.market.enforceDeadline(first.job);
    await sys.market.settle(first.job, provider.address, r1.tree.root, r1.salt, "");
    expect(await sys.market.completedJobs(sys.usd, provider.address)).to.equal(1n);
  }

  describe("the draw", () => {
    it("audits with probability 1 during probation, then at the floor pMin", async () => {
      const { sys } = await networkHelpers.loadFixture(worldFixture);
      await sys.market.setParameter(6, 1); // ProbationJobs = 1, in the terms of jobs created from now on
      const provider = sys.providers[0];
      const v = packVerification({ chunks: N, auditChunks: M, auditBps: 0 });
      await leaveProbation(sys, provider, v);

      const second = await createJob(sys, sys.consumer, { verification: v });
      await sys.market.connect(provider).claim(second.job);
      await sys.market.connect(provider).commit(second.jobId, Result.of(second.jobId, provider.address, N).commitment);
      await setDraw(sys, second.jobId, false);
      await expect(sys.market.draw(second.job)).to.emit(sys.market, "AuditDrawn").withArgs(second.jobId, false, 5_000, false);
      expect(await sys.market.jobState(second.jobId)).to.equal(JobState.Challengeable);
    });

    it("binds a commitment to its claimant: a newcomer cannot settle or reveal in the name of its own address past probation", async () => {
      const { sys, auditor } = await networkHelpers.loadFixture(worldFixture);
      await sys.market.setParameter(6, 1); // ProbationJobs = 1
      const [newcomer, veteran] = sys.providers;
      const v = packVerification({ chunks: N, auditChunks: M, auditBps: 0 });
      await leaveProbation(sys, veteran, v);

      // The newcomer claims and commits a result that names the veteran as provider.
      const { jobId, job } = await createJob(sys, sys.consumer, { verification: v });
      await sys.market.connect(newcomer).claim(job);
      const named = Result.of(jobId, veteran.address, N);
      await sys.market.connect(newcomer).commit(jobId, named.commitment);
      // A draw at the veteran's count (pMin) would skip the audit; the commitment does not open for it.
      await setDraw(sys, jobId, false);
      await networkHelpers.time.increase(HOUR);
      await expect(sys.market.connect(veteran).settle(job, veteran.address, named.tree.root, named.salt, ""))
        .to.be.revertedWithCustomError(sys.market, "JobMarketCommitmentMismatch")
        .withArgs(jobId);
      // The draw is the newcomer's: in probation, so audited; and the reveal to the auditor fails too.
      await expect(sys.market.draw(job)).to.emit(sys.market, "AuditDrawn").withArgs(jobId, true, 10_000, false);
      const { sample } = await claimAudit(sys, job, auditor);
      await expect(
        sys.market
          .connect(veteran)
          .revealResult(job, veteran.address, named.tree.root, named.salt, "", named.leavesAt(sample), named.proofsAt(sample)),
      )
        .to.be.revertedWithCustomError(sys.market, "JobMarketCommitmentMismatch")
        .withArgs(jobId);
      expect(await sys.market.completedJobs(sys.usd, veteran.address)).to.equal(1n);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Revealing);
    });

    it("uses the consumer's requested probability when it is above the floor", async () => {
      const { sys } = await networkHelpers.loadFixture(worldFixture);
      const { jobId, job } = await createJob(sys, sys.consumer, { verification: packVerification({ chunks: N, auditChunks: M, auditBps: 9_000 }) });
      await sys.market.connect(sys.providers[0]).claim(job);
      await sys.market.connect(sys.providers[0]).commit(jobId, Result.of(jobId, sys.providers[0].address, N).commitment);
      await setDraw(sys, jobId, true, 9_000);
      await expect(sys.market.draw(job)).to.emit(sys.market, "AuditDrawn").withArgs(jobId, true, 9_000, false);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Audited);
      const a = await sys.market.auditOf(job);
      expect(a.phase).to.equal(Phase.AwaitingAuditor);
      expect(a.sample.length).to.equal(M);
    });

    it("counts a job as audited when its randomness has expired (fail-safe)", async () => {
      const { sys, jobId, job } = await networkHelpers.loadFixture(honestJob);
      await sys.randomness.set(2, ethers.ZeroHash); // Expired
      await expect(sys.market.draw(job)).to.emit(sys.market, "AuditDrawn").withArgs(jobId, true, 5_000, true);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Audited);
    });

    it("once the randomness has expired, seeds the sample from the last block numbered a multiple of 256: the same in every block until the next", async () => {
      const { sys, job } = await networkHelpers.loadFixture(honestJob);
      await sys.randomness.set(2, ethers.ZeroHash); // Expired
      // Start one block past a multiple of 256 (whether a call sees the latest block or the next), so
      // that the next 200 blocks share it.
      const start = await ethers.provider.getBlockNumber();
      await networkHelpers.mine(256 - (start % 256) + 1);
      const samples = new Set<string>();
      for (let i = 0; i < 200; i += 20) {
        samples.add(String(await sys.market.sampleOf(job)));
        await networkHelpers.mine(20); // a provider trying again a block later gets the same sample
      }
      expect(samples.size).to.equal(1);
      const seedBlock = (await ethers.provider.getBlockNumber()) & ~255;
      await networkHelpers.mine(256); // the next multiple of 256 is another block, with another hash
      const later = String(await sys.market.sampleOf(job));
      expect((await ethers.provider.getBlockNumber()) & ~255).to.equal(seedBlock + 256);
      expect(later).to.not.equal([...samples][0]);
      await sys.market.draw(job);
      expect(String((await sys.market.auditOf(job)).sample)).to.equal(String(await sys.market.sampleOf(job)));
    });

    it("waits for the block after the commit, and refuses to settle a job drawn for audit", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, jobId, job, result, provider } = c;
      await sys.randomness.set(0, ethers.ZeroHash); // Pending
      const commitBlock = (await sys.market.jobRecord(jobId)).commitBlock;
      await expect(sys.market.draw(job)).to.be.revertedWithCustomError(sys.market, "JobMarketRandomnessNotReady").withArgs(jobId, commitBlock);
      await setDraw(sys, jobId, true);
      await networkHelpers.time.increase(HOUR);
      await expect(sys.market.settle(job, provider.address, result.tree.root, result.salt, ""))
        .to.be.revertedWithCustomError(sys.market, "JobMarketAuditRequired")
        .withArgs(jobId);
    });

    it("works with the built-in block-hash source: not before the next block, still past 256 blocks", async () => {
      const { sys } = await networkHelpers.loadFixture(worldFixture);
      await sys.market.setRandomnessSource(ethers.ZeroAddress);
      const provider = sys.providers[0];
      const { jobId, job } = await createJob(sys, sys.consumer);
      await sys.market.connect(provider).claim(job);
      await sys.market.connect(provider).commit(jobId, Result.of(jobId, provider.address, 256).commitment);
      const commitBlock = (await sys.market.jobRecord(jobId)).commitBlock;
      await expect(sys.market.draw(job)).to.be.revertedWithCustomError(sys.market, "JobMarketRandomnessNotReady").withArgs(jobId, commitBlock);
      await networkHelpers.mine(300);
      // Where the chain keeps EIP-2935 history the hash of the block after the commit is still there;
      // where it does not (EDR here keeps none), the draw fails safe.
      const probe = ethers.AbiCoder.defaultAbiCoder().encode(["uint256"], [commitBlock + 1n]);
      const failSafe = await ethers.provider
        .call({ to: "0x0000F90827F1C53a10cb7A02335B175320002935", data: probe })
        .then(() => false, () => true);
      const tx = sys.market.draw(job);
      await expect(tx).to.emit(sys.market, "AuditDrawn").withArgs(jobId, (a: boolean) => failSafe ? a : typeof a === "boolean", 5_000, failSafe);
    });

    it("reads the block-hash history (EIP-2935) for a block older than 256: no fail-safe while it remembers", async () => {
      const { sys } = await networkHelpers.loadFixture(worldFixture);
      const history = await ethers.deployContract("BlockHashHistoryMock");
      await networkHelpers.setCode("0x0000F90827F1C53a10cb7A02335B175320002935", await ethers.provider.getCode(history));
      await sys.market.setRandomnessSource(ethers.ZeroAddress);
      const provider = sys.providers[0];
      const { jobId, job } = await createJob(sys, sys.consumer);
      await sys.market.connect(provider).claim(job);
      await sys.market.connect(provider).commit(jobId, Result.of(jobId, provider.address, 256).commitment);
      await networkHelpers.mine(300); // blockhash() has forgotten the block after the commit
      await expect(sys.market.draw(job)).to.emit(sys.market, "AuditDrawn").withArgs(jobId, (a: boolean) => typeof a === "boolean", 5_000, false);
    });

    it("fails safe with the built-in source once even the block-hash history has forgotten the block", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      await c.sys.market.setRandomnessSource(ethers.ZeroAddress);
      await networkHelpers.mine(8_300, { interval: 0 }); // within the reveal window (a draw after it is refused)
      await expect(c.sys.market.draw(c.job)).to.emit(c.sys.market, "AuditDrawn").withArgs(c.jobId, true, 5_000, true);
    });
  });

  describe("an audit that matches", () => {
    it("settles the job in the provider's reveal: provider paid, auditor's collateral back plus its reward", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, jobId, job, auditor, provider } = c;
      const before = await snapshot(c);
      await setDraw(sys, jobId, true);
      const { sample } = await claimAudit(sys, job, auditor);
      const view = await sys.market.auditOf(job);
      expect(view.phase).to.equal(Phase.AuditorCommitted);
      expect(sample).to.deep.equal(sampleIndices(view.seed, N, M)); // the SDK samples the same chunks
      const tx = revealResult(c, sample);
      await expect(tx).to.emit(sys.market, "ResultRevealed").withArgs(jobId, provider.address, c.result.tree.root, "http://out", c.result.leavesAt(sample));
      await expect(tx).to.emit(sys.market, "AuditPassed").withArgs(jobId, provider.address, auditor.address, REWARD);
      await expect(tx).to.emit(sys.market, "JobSettled").withArgs(jobId, provider.address, ethers.ZeroHash, "");
      const d = delta(before, await snapshot(c));
      expect(d.provider).to.equal(P - FEE + S);
      expect(d.auditor).to.equal(REWARD); // collateral locked and returned
      expect(d.pool).to.equal(-REWARD);
      expect(d.consumer).to.equal(0n);
      expect(await sys.market.feesDue(sys.usd, provider.address)).to.equal(FEE);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Settled);
      const counters = await sys.registry.countersOf(provider.address);
      expect([counters.audited, counters.failedAudits]).to.deep.equal([1n, 0n]);
      await expectConservation(sys, [job]);
    });

    it("pays what the pool holds when it holds less than the reward", async () => {
      const c = await networkHelpers.loadFixture(honestJobSmallPool);
      const { sys, auditor, jobId } = c;
      // Fees of one earlier job, swept: 40% of 2.5 tUSD.
      const earlier = await createJob(sys, sys.consumer);
      await sys.market.connect(sys.providers[1]).claim(earlier.job);
      const r = Result.of(earlier.jobId, sys.providers[1].address, 256);
      await sys.market.connect(sys.providers[1]).commit(earlier.jobId, r.commitment);
      await setDraw(sys, earlier.jobId, false);
      await networkHelpers.time.increase(HOUR);
      await sys.market.settle(earlier.job, sys.providers[1].address, r.tree.root, r.salt, "");
      await sys.market.sweepFees(sys.usd, [sys.providers[1].address]);
      expect(await sys.market.auditPool(sys.usd)).to.equal(1n * USD);
      await setDraw(sys, jobId, true);
      const { sample } = await claimAudit(sys, c.job, auditor);
      await expect(revealResult(c, sample)).to.emit(sys.market, "AuditPassed").withArgs(jobId, c.provider.address, auditor.address, 1n * USD);
      expect(await sys.market.auditPool(sys.usd)).to.equal(0n);
      await expectConservation(sys, [c.job]);
    });
  });

  describe("disputes", () => {
    it("catches a worker's fabricated chunk: tie-breaker sides with the auditor, S split, P back, stake slashed", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const { sys } = w;
      const provider = sys.providers[0];
      const { jobId, job } = await createJob(sys, sys.consumer, { verification: packVerification({ chunks: N, auditChunks: M, auditBps: 0 }) });
      await sys.market.connect(provider).claim(job);
      // The worker will fabricate every chunk the audit samples (it cannot know them; the test does).
      await setDraw(sys, jobId, true);
      const cheat = Result.of(jobId, provider.address, N, Array.from({ length: N }, (_, i) => i));
      await sys.market.connect(provider).commit(jobId, cheat.commitment);
      const c = { ...w, provider, jobId, job, result: cheat };
      const before = await snapshot(c);
      const { sample, answer } = await claimAuditAndReveal(c);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Disputed);
      expect((await sys.market.auditOf(job)).phase).to.equal(Phase.AwaitingAuditorReveal);
      await expect(revealAudit(c, sample, answer))
        .to.emit(sys.market, "AuditRevealed")
        .withArgs(jobId, c.auditor.address, answer.leaves, 0b1111);
      await expectConservation(sys, [job]);

      const tx = tieBreak(c, sample, answer, "honest");
      const stakeSlash = (MIN_STAKE * 1_000n) / 10_000n;
      await expect(tx)
        .to.emit(sys.market, "FraudProven")
        .withArgs(jobId, provider.address, (S * 3_000n) / 10_000n, (S * 5_000n) / 10_000n, (S * 2_000n) / 10_000n, stakeSlash);
      const d = delta(before, await snapshot(c));
      expect(d.consumer).to.equal(P + (S * 3_000n) / 10_000n);
      expect(d.auditor).to.equal((S * 2_500n) / 10_000n + REWARD);
      expect(d.tieBreaker).to.equal((S * 2_500n) / 10_000n + REWARD);
      expect(d.treasury).to.equal((S * 2_000n) / 10_000n);
      expect(d.provider).to.equal(0n);
      expect(d.pool).to.equal(-2n * REWARD);
      expect(d.providerStake).to.equal(-stakeSlash);
      expect((await sys.registry.stakeOf(provider.address)).jailedUntil).to.equal(BigInt(await networkHelpers.time.latest()) + JAIL_PERIOD);
      expect((await sys.registry.countersOf(provider.address)).failedAudits).to.equal(1n);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Slashed);
      await expectConservation(sys, [job]);
    });

    async function claimAuditAndReveal(c: Ctx, auditorLiesAt: number[] = []) {
      const { sample, answer } = await claimAudit(c.sys, c.job, c.auditor, auditorLiesAt);
      await revealResult(c, sample);
      return { sample, answer };
    }

    it("outvotes a lying auditor: its collateral split and stake slashed, the provider paid", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, jobId, job, auditor, provider } = c;
      const before = await snapshot(c);
      const { sample, answer } = await toProviderRevealed(c, [1]);
      await revealAudit(c, sample, answer);
      const tx = tieBreak(c, sample, answer, "honest");
      const stakeSlash = (MIN_STAKE * 1_000n) / 10_000n;
      await expect(tx).to.emit(sys.market, "AuditorSlashed").withArgs(jobId, auditor.address, A, stakeSlash);
      await expect(tx).to.emit(sys.market, "JobSettled").withArgs(jobId, provider.address, ethers.ZeroHash, "");
      const d = delta(before, await snapshot(c));
      expect(d.provider).to.equal(P - FEE + S);
      expect(d.auditor).to.equal(-A);
      expect(d.consumer).to.equal((A * 3_000n) / 10_000n);
      expect(d.tieBreaker).to.equal((A * 5_000n) / 10_000n + REWARD);
      expect(d.treasury).to.equal((A * 2_000n) / 10_000n);
      expect(d.auditorStake).to.equal(-stakeSlash);
      expect(await sys.registry.isActive(auditor.address)).to.equal(false);
      await expectConservation(sys, [job]);
    });

    it("escalates a three-way disagreement; only governance resolves it, and no one is slashed automatically", async () => {
      const c = await networkHelpers.loadFixture(everyChunkFabricated);
      const { sys, jobId, job, provider, others } = { ...c, others: c.sys.others };
      const { sample, answer } = await toProviderRevealed(c);
      await revealAudit(c, sample, answer);
      await expect(tieBreak(c, sample, answer, "third")).to.emit(sys.market, "DisputeEscalated");
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Escalated);
      const stakeBefore = (await sys.registry.stakeOf(provider.address)).active;
      await expect(sys.market.connect(others[2]).resolveEscalation(job, Verdict.ProviderFraud))
        .to.be.revertedWithCustomError(sys.market, "OwnableUnauthorizedAccount")
        .withArgs(others[2].address);
      const before = await snapshot(c);
      await expect(sys.market.resolveEscalation(job, Verdict.ProviderFraud))
        .to.emit(sys.market, "EscalationResolved")
        .withArgs(jobId, Verdict.ProviderFraud, true);
      const d = delta(before, await snapshot(c));
      expect(d.consumer).to.equal(P + (S * 3_000n) / 10_000n);
      // The auditor is the honest side alone: it takes the auditors' share and its reward; the tie-breaker
      // whose third answer escalated gets its collateral back and nothing more.
      expect(d.auditor).to.equal(A + (S * 5_000n) / 10_000n + REWARD);
      expect(d.tieBreaker).to.equal(A);
      expect((await sys.registry.stakeOf(provider.address)).active).to.equal(stakeBefore - (MIN_STAKE * 1_000n) / 10_000n);
      await expectConservation(sys, [job]);
    });

    it("resolves an escalation nobody decides as no-fault: refund, every collateral back, no reward from the pool", async () => {
      const c = await networkHelpers.loadFixture(everyChunkFabricated);
      const { sys, jobId, job } = c;
      const before = await snapshot(c);
      const { sample, answer } = await toProviderRevealed(c);
      await revealAudit(c, sample, answer);
      await tieBreak(c, sample, answer, "third");
      await expect(sys.market.enforceDeadline(job)).to.be.revertedWithCustomError(sys.market, "JobMarketDeadlineNotReached");
      await networkHelpers.time.increase(7n * DAY + 1n);
      await expect(sys.market.enforceDeadline(job)).to.emit(sys.market, "EscalationResolved").withArgs(jobId, Verdict.NoFault, false);
      const d = delta(before, await snapshot(c));
      expect(d.consumer).to.equal(P);
      expect(d.provider).to.equal(S);
      // Collateral back, no reward: addresses of one owner answering three ways cannot draw on the pool.
      expect(d.auditor).to.equal(0n);
      expect(d.tieBreaker).to.equal(0n);
      expect(d.pool).to.equal(0n);
      expect(d.treasury).to.equal(0n);
      expect(d.providerStake).to.equal(0n);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Refunded);
      await expectConservation(sys, [job]);
    });

    it("accepts a governance verdict against the auditor, or of no fault (which pays both auditors' rewards)", async () => {
      for (const verdict of [Verdict.AuditorFraud, Verdict.NoFault]) {
        const c = await networkHelpers.loadFixture(everyChunkFabricated);
        const before = await snapshot(c);
        const { sample, answer } = await toProviderRevealed(c);
        await revealAudit(c, sample, answer);
        await tieBreak(c, sample, answer, "third");
        const answered = await snapshot(c);
        await c.sys.market.resolveEscalation(c.job, verdict);
        expect(await c.sys.market.jobState(c.jobId)).to.equal(verdict === Verdict.AuditorFraud ? JobState.Settled : JobState.Refunded);
        if (verdict === Verdict.AuditorFraud) {
          // The provider is the honest side alone: the auditor's collateral goes to consumer and treasury;
          // the tie-breaker gets its own back, no share of it and no reward.
          const d = delta(answered, await snapshot(c));
          expect(d.tieBreaker).to.equal(A);
          expect(d.consumer).to.equal((A * 8_000n) / 10_000n);
          expect(d.provider).to.equal(P - FEE + S);
        }
        if (verdict === Verdict.NoFault) {
          const d = delta(before, await snapshot(c));
          expect(d.auditor).to.equal(REWARD);
          expect(d.tieBreaker).to.equal(REWARD);
          expect(d.pool).to.equal(-2n * REWARD);
        }
        await expectConservation(c.sys, [c.job]);
      }
    });
  });

  describe("consumer challenges", () => {
    it("right: a named fabricated chunk is audited, bond back plus the consumer's share of S", async () => {
      const c = await networkHelpers.loadFixture(unauditedWithChunk5Fabricated);
      const { sys, jobId, job, stranger } = c;
      const before = await snapshot(c);
      await expect(sys.market.connect(stranger).challenge(job, true, 5))
        .to.emit(sys.market, "JobChallenged")
        .withArgs(jobId, stranger.address, BOND, true, 5);
      expect((await sys.market.auditOf(job)).sample[0]).to.equal(5n);
      await expectConservation(sys, [job]);
      const { sample, answer } = await claimAudit(sys, job, c.auditor);
      await revealResult(c, sample);
      await revealAudit(c, sample, answer);
      await tieBreak(c, sample, answer, "honest");
      const d = delta(before, await snapshot(c));
      expect(d.stranger).to.equal((S * 3_000n) / 10_000n); // bond back + consumer side of S
      expect(d.consumer).to.equal(P);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Slashed);
      await expectConservation(sys, [job]);
    });

    it("undecided: a challenged job whose dispute ends in no fault is refunded, and the bond comes back", async () => {
      const c = await networkHelpers.loadFixture(unauditedWithChunk5Fabricated);
      const { sys, jobId, job, stranger } = c;
      const before = await snapshot(c);
      await sys.market.connect(stranger).challenge(job, true, 5);
      const { sample, answer } = await claimAudit(sys, job, c.auditor);
      await revealResult(c, sample);
      await revealAudit(c, sample, answer);
      await expect(tieBreak(c, sample, answer, "third")).to.emit(sys.market, "DisputeEscalated");
      await expect(sys.market.resolveEscalation(job, Verdict.NoFault))
        .to.emit(sys.market, "JobRefunded")
        .withArgs(jobId, sys.consumer.address, P);
      const d = delta(before, await snapshot(c));
      expect(d.stranger).to.equal(0n); // bond paid, then returned
      expect(d.consumer).to.equal(P);
      expect(d.provider).to.equal(S);
      expect(d.providerStake).to.equal(0n);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Refunded);
      await expectConservation(sys, [job]);
    });

    it("wrong: the audit matches and the bond goes to the provider", async () => {
      const c = await networkHelpers.loadFixture(unauditedHonest);
      const { sys, job, stranger } = c;
      const before = await snapshot(c);
      await sys.market.connect(stranger).challenge(job, false, 0);
      const { sample } = await claimAudit(sys, job, c.auditor);
      await revealResult(c, sample);
      const d = delta(before, await snapshot(c));
      expect(d.stranger).to.equal(-BOND);
      expect(d.provider).to.equal(P - FEE + S + BOND);
      await expectConservation(sys, [job]);
    });

    it("is refused for a committed job the draw selects for audit: nothing bonded, the drawn sample stands", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, job, jobId, stranger } = c;
      await setDraw(sys, jobId, true);
      const drawn = (await sys.market.sampleOf(job)).map(Number);
      const before = await snapshot(c);
      const named = (drawn[0] + 1) % N;
      await expect(sys.market.connect(stranger).challenge(job, true, named))
        .to.be.revertedWithCustomError(sys.market, "JobMarketAuditRequired")
        .withArgs(jobId);
      expect(delta(before, await snapshot(c)).stranger).to.equal(0n);
      await sys.market.draw(job);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Audited);
      expect((await sys.market.sampleOf(job)).map(Number)).to.deep.equal(drawn);

      // A committed job the draw passes over may be challenged before anyone draws it.
      const other = await networkHelpers.loadFixture(honestJob);
      await setDraw(other.sys, other.jobId, false);
      await expect(other.sys.market.connect(other.stranger).challenge(other.job, true, 7))
        .to.emit(other.sys.market, "JobChallenged")
        .withArgs(other.jobId, other.stranger.address, BOND, true, 7);
      expect(await other.sys.market.jobState(other.jobId)).to.equal(JobState.Audited);
      expect((await other.sys.market.sampleOf(other.job))[0]).to.equal(7n);
    });

    it("is open only during the challenge window, to anyone but the provider, and for an existing chunk", async () => {
      const c = await networkHelpers.loadFixture(unauditedHonest);
      const { sys, job, jobId, provider, stranger } = c;
      await expect(sys.market.connect(provider).challenge(job, false, 0))
        .to.be.revertedWithCustomError(sys.market, "JobMarketConflictOfInterest")
        .withArgs(jobId, provider.address);
      await expect(sys.market.connect(stranger).challenge(job, true, N))
        .to.be.revertedWithCustomError(sys.market, "JobMarketChunkOutOfRange")
        .withArgs(jobId, N, N);
      const windowEnd = (await sys.market.jobRecord(jobId)).committedAt;
      await networkHelpers.time.increaseTo(windowEnd);
      await expect(sys.market.connect(stranger).challenge(job, false, 0))
        .to.be.revertedWithCustomError(sys.market, "JobMarketChallengeWindowClosed")
        .withArgs(jobId, windowEnd);
    });
  });

  describe("copied commitments and results", () => {
    it("a worker copying another job's commitment cannot open it and is slashed for the missed reveal", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const { sys } = w;
      const [honest, copier] = sys.providers;
      const a = await createJob(sys, sys.consumer);
      const b = await createJob(sys, sys.consumer);
      await sys.market.connect(honest).claim(a.job);
      await sys.market.connect(copier).claim(b.job);
      const original = Result.of(a.jobId, honest.address, 256);
      await sys.market.connect(honest).commit(a.jobId, original.commitment);
      await sys.market.connect(copier).commit(b.jobId, original.commitment); // copied
      await setDraw(sys, b.jobId, false);
      await networkHelpers.time.increase(HOUR);
      for (const [provider, jobId] of [[copier.address, b.jobId], [honest.address, b.jobId]]) {
        await expect(sys.market.settle(b.job, provider, original.tree.root, original.salt, ""))
          .to.be.revertedWithCustomError(sys.market, "JobMarketCommitmentMismatch")
          .withArgs(jobId);
      }
      await networkHelpers.time.increase(HOUR + 1n);
      await expect(sys.market.enforceDeadline(b.job)).to.emit(sys.market, "JobRevealMissed");
      expect(await sys.market.jobState(b.jobId)).to.equal(JobState.Slashed);
    });

    it("a worker reusing another job's result is caught by the audit: leaves bind the job id", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const { sys } = w;
      const provider = sys.providers[0];
      const v = packVerification({ chunks: N, auditChunks: M, auditBps: 0 });
      const a = await createJob(sys, sys.consumer, { verification: v });
      const b = await createJob(sys, sys.consumer, { verification: v });
      await sys.market.connect(provider).claim(b.job);
      // Job a's honest leaves, committed for job b.
      const copied = new Result(b.jobId, provider.address, Result.of(a.jobId, provider.address, N).leaves);
      await sys.market.connect(provider).commit(b.jobId, copied.commitment);
      const c = { ...w, provider, jobId: b.jobId, job: b.job, result: copied };
      await setDraw(sys, b.jobId, true);
      const { sample, answer } = await claimAudit(sys, b.job, w.auditor);
      await revealResult(c, sample);
      await revealAudit(c, sample, answer);
      await expect(tieBreak(c, sample, answer, "honest")).to.emit(sys.market, "FraudProven");
      expect(a.jobId).to.not.equal(b.jobId);
    });
  });

  describe("deadlines", () => {
    it("no auditor claims in time: the job goes on unaudited and its provider settles", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, job, jobId, provider, result } = c;
      await setDraw(sys, jobId, true);
      await sys.market.draw(job);
      await networkHelpers.time.increase(HOUR + 1n);
      await expect(sys.market.enforceDeadline(job)).to.emit(sys.market, "AuditUnclaimed").withArgs(jobId);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Challengeable);
      await sys.market.settle(job, provider.address, result.tree.root, result.salt, "out");
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Settled);
      await expectConservation(sys, [job]);
    });

    it("the provider does not reveal to its auditor: fraud, the auditor gets the auditors' share", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, job, jobId, auditor } = c;
      await setDraw(sys, jobId, true);
      await claimAudit(sys, job, auditor);
      const before = await snapshot(c);
      await networkHelpers.time.increase(HOUR + 1n);
      await expect(sys.market.enforceDeadline(job)).to.emit(sys.market, "FraudProven");
      const d = delta(before, await snapshot(c));
      expect(d.auditor).to.equal(A + (S * 5_000n) / 10_000n + REWARD);
      expect(d.consumer).to.equal(P + (S * 3_000n) / 10_000n);
      await expectConservation(sys, [job]);
    });

    it("in a dispute the auditor does not reveal: the provider is paid, the auditor forfeits its collateral", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, job, jobId, auditor } = c;
      const before = await snapshot(c);
      await toProviderRevealed(c, [0]); // the auditor committed to a wrong leaf, then goes silent
      expect((await sys.market.auditOf(job)).phase).to.equal(Phase.AwaitingAuditorReveal);
      await networkHelpers.time.increase(HOUR + 1n);
      await expect(sys.market.enforceDeadline(job)).to.emit(sys.market, "AuditorStalled").withArgs(jobId, auditor.address, A);
      const d = delta(before, await snapshot(c));
      expect(d.provider).to.equal(P - FEE + S);
      expect(d.auditor).to.equal(-A);
      expect(d.consumer).to.equal((A * 8_000n) / 10_000n);
      expect(d.treasury).to.equal((A * 2_000n) / 10_000n);
      await expectConservation(sys, [job]);
    });

    it("nobody breaks the tie: escalated", async () => {
      const c = await networkHelpers.loadFixture(everyChunkFabricated);
      const { sys, job, jobId } = c;
      const { sample, answer } = await toProviderRevealed(c);
      await revealAudit(c, sample, answer);
      expect((await sys.market.auditOf(job)).phase).to.equal(Phase.AwaitingTieBreaker);
      await networkHelpers.time.increase(HOUR + 1n);
      await expect(sys.market.enforceDeadline(job)).to.emit(sys.market, "DisputeEscalated");
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Escalated);
      await expectConservation(sys, [job]);
    });

    it("a tie-breaker that stalls forfeits its collateral and the dispute goes to governance, never to another tie-break", async () => {
      // Reopening the tie-break let the provider's own sybil stall again and again, for one collateral
      // each, until the provider's unbonding stake was released and the fraud slash found nothing.
      const c = await networkHelpers.loadFixture(everyChunkFabricated);
      const { sys, job, jobId, tieBreaker, stranger, provider } = c;
      const { sample, answer } = await toProviderRevealed(c);
      await revealAudit(c, sample, answer);
      const before = await snapshot(c);
      await expect(sys.market.connect(tieBreaker).tieBreak(job)).to.emit(sys.market, "TieBreakClaimed").withArgs(jobId, tieBreaker.address);
      expect((await sys.market.auditOf(job)).phase).to.equal(Phase.TieBreakerClaimed);
      await networkHelpers.time.increase(HOUR + 1n);
      const stalled = sys.market.enforceDeadline(job);
      await expect(stalled).to.emit(sys.market, "AuditorStalled").withArgs(jobId, tieBreaker.address, A);
      await expect(stalled).to.emit(sys.market, "DisputeEscalated");
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Escalated);
      const audit = await sys.market.auditOf(job);
      expect(audit.phase).to.equal(Phase.Escalated);
      expect(audit.tieBreaker).to.equal(ethers.ZeroAddress);
      expect(delta(before, await snapshot(c)).tieBreaker).to.equal(-A);
      expect(delta(before, await snapshot(c)).consumer).to.equal((A * 8_000n) / 10_000n);
      await expect(sys.market.connect(stranger).tieBreak(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnexpectedState")
        .withArgs(jobId, JobState.Escalated, JobState.Disputed);
      // Governance finds the fraud: the auditor is the honest party; the stalled tie-breaker gets nothing back.
      const stakeBefore = (await sys.registry.stakeOf(provider.address)).active;
      const verdict = await snapshot(c);
      await expect(sys.market.resolveEscalation(job, Verdict.ProviderFraud)).to.emit(sys.market, "FraudProven");
      const d = delta(verdict, await snapshot(c));
      expect(d.tieBreaker).to.equal(0n);
      expect(d.consumer).to.equal(P + (S * 3_000n) / 10_000n);
      expect(d.auditor).to.be.greaterThan(A);
      expect((await sys.registry.stakeOf(provider.address)).active).to.equal(stakeBefore - (MIN_STAKE * 1_000n) / 10_000n);
      await expectConservation(sys, [job]);
    });

    it("refuses an audit claimed past the reveal window: a provider's second address cannot rescue a withheld reveal", async () => {
      const c = await networkHelpers.loadFixture(everyChunkFabricated);
      const { sys, job, jobId, auditor, provider } = c;
      await setDraw(sys, jobId, true);
      const record = await sys.market.jobRecord(jobId);
      const revealBy = record.committedAt + 2n * HOUR; // the challenge window, then the reveal window
      await networkHelpers.time.increaseTo(revealBy + 1n);
      const answer = AuditAnswer.of(jobId, auditor.address, (await sys.market.sampleOf(job)).map(Number));
      await expect(sys.market.connect(auditor).audit(job, answer.commitment))
        .to.be.revertedWithCustomError(sys.market, "JobMarketDeadlinePassed")
        .withArgs(jobId, revealBy);
      await expect(sys.market.enforceDeadline(job)).to.emit(sys.market, "JobRevealMissed");
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Slashed);
      expect((await sys.registry.stakeOf(provider.address)).jailedUntil).to.be.greaterThan(0n);
    });
  });

  describe("rejections", () => {
    it("refuses auditors with another role in the job or not eligible for it", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, job, jobId, provider, stranger } = c;
      await setDraw(sys, jobId, true);
      await sys.market.draw(job);
      await expect(sys.market.connect(provider).audit(job, ethers.ZeroHash))
        .to.be.revertedWithCustomError(sys.market, "JobMarketConflictOfInterest")
        .withArgs(jobId, provider.address);
      await expect(sys.market.connect(sys.consumer).audit(job, ethers.ZeroHash))
        .to.be.revertedWithCustomError(sys.market, "JobMarketConflictOfInterest")
        .withArgs(jobId, sys.consumer.address);
      await expect(sys.market.connect(stranger).audit(job, ethers.ZeroHash))
        .to.be.revertedWithCustomError(sys.market, "JobMarketIneligible")
        .withArgs(jobId, stranger.address, 1);
    });

    it("an auditor that committed to more leaves than the sample cannot reveal them: it stalls and the provider is paid", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, job, jobId, auditor, result } = c;
      await setDraw(sys, jobId, true);
      const sample = (await sys.market.sampleOf(job)).map(Number);
      // Honest leaves for the sample plus one more: the provider's honest reveal cannot open it.
      const padded = new AuditAnswer(jobId, auditor.address, [...AuditAnswer.of(jobId, auditor.address, sample).leaves, ethers.ZeroHash]);
      await sys.market.connect(auditor).audit(job, padded.commitment);
      const before = await snapshot(c);
      await revealResult(c, sample);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Disputed);
      await expect(sys.market.connect(auditor).revealAudit(job, padded.leaves, result.leavesAt(sample)))
        .to.be.revertedWithCustomError(sys.market, "JobMarketWrongLeafCount")
        .withArgs(jobId, M + 1, M);
      await networkHelpers.time.increase(Number((await sys.market.auditOf(job)).deadline) - (await networkHelpers.time.latest()) + 1);
      await expect(sys.market.enforceDeadline(job)).to.emit(sys.market, "AuditorStalled");
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Settled);
      const d = delta(before, await snapshot(c));
      expect(d.provider).to.equal(P - FEE + S);
      expect(d.auditor).to.equal(0n); // its collateral forfeited
      await expectConservation(sys, [job]);
    });

    it("refuses to audit a job the draw did not select, and out-of-order or forged steps", async () => {
      const c = await networkHelpers.loadFixture(honestJob);
      const { sys, job, jobId, auditor, result, provider, tieBreaker, stranger } = c;
      await setDraw(sys, jobId, false);
      await expect(sys.market.connect(auditor).audit(job, ethers.ZeroHash))
        .to.be.revertedWithCustomError(sys.market, "JobMarketNotDrawnForAudit")
        .withArgs(jobId);
      await setDraw(sys, jobId, true);
      const { sample, answer } = await claimAudit(sys, job, auditor, [3]);
      await expect(sys.market.connect(auditor).revealAudit(job, answer.leaves, answer.leaves))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnexpectedState")
        .withArgs(jobId, JobState.Revealing, JobState.Disputed);
      await expect(sys.market.connect(tieBreaker).tieBreak(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnexpectedState")
        .withArgs(jobId, JobState.Revealing, JobState.Disputed);
      const leaves = result.leavesAt(sample);
      const proofs = result.proofsAt(sample);
      await expect(sys.market.revealResult(job, provider.address, result.tree.root, ethers.ZeroHash, "", leaves, proofs))
        .to.be.revertedWithCustomError(sys.market, "JobMarketCommitmentMismatch")
        .withArgs(jobId);
      await expect(sys.market.revealResult(job, provider.address, result.tree.root, result.salt, "", leaves.slice(1), proofs))
        .to.be.revertedWithCustomError(sys.market, "JobMarketWrongLeafCount")
        .withArgs(jobId, M - 1, M);
      const tampered = [...leaves];
      tampered[2] = ethers.ZeroHash;
      await expect(sys.market.revealResult(job, provider.address, result.tree.root, result.salt, "", tampered, proofs))
        .to.be.revertedWithCustomError(sys.market, "JobMarketInvalidProof")
        .withArgs(jobId, 2);
      await sys.market.revealResult(job, provider.address, result.tree.root, result.salt, "", leaves, proofs);
      // Disputed (the auditor lied at position 3): it can only open its own commitment.
      await expect(sys.market.connect(auditor).revealAudit(job, leaves, leaves))
        .to.be.revertedWithCustomError(sys.market, "JobMarketAuditCommitmentMismatch")
        .withArgs(jobId);
      await expect(sys.market.connect(auditor).revealAudit(job, answer.leaves, tampered))
        .to.be.revertedWithCustomError(sys.market, "JobMarketRevealedLeavesMismatch")
        .withArgs(jobId);
      await expect(sys.market.connect(tieBreaker).tieBreak(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnexpectedPhase")
        .withArgs(jobId, Phase.AwaitingAuditorReveal, Phase.AwaitingTieBreaker);
      await sys.market.connect(auditor).revealAudit(job, answer.leaves, leaves);
      await expect(sys.market.connect(auditor).tieBreak(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketConflictOfInterest")
        .withArgs(jobId, auditor.address);
      await sys.market.connect(tieBreaker).tieBreak(job);
      await expect(sys.market.connect(stranger).revealTieBreak(job, [leaves[3]], leaves, answer.leaves))
        .to.be.revertedWithCustomError(sys.market, "JobMarketNotTieBreaker")
        .withArgs(jobId, stranger.address);
      expect(auditorCommitment(jobId, auditor.address, answer.leaves)).to.equal(
        await sys.market.auditorCommitmentHash(jobId, auditor.address, answer.leaves),
      );
    });

    it("the audit module cannot be called directly, only through the market", async () => {
      const { sys } = await networkHelpers.loadFixture(worldFixture);
      const module = await ethers.getContractAt("IJobMarket", await sys.market.auditModule());
      await expect(module.auditPool(sys.usd)).to.be.revertedWithCustomError(sys.market, "JobMarketDirectModuleCall");
    });

    it("rejects an audit request with more than 64 sampled chunks", async () => {
      const { sys } = await networkHelpers.loadFixture(worldFixture);
      await expect(createJob(sys, sys.consumer, { verification: packVerification({ chunks: 1_000, auditChunks: 65, auditBps: 0 }) }))
        .to.be.revertedWithCustomError(sys.market, "JobMarketInvalidRequest")
        .withArgs("verification");
      expect(hashJob).to.be.a("function");
    });
  });
});
