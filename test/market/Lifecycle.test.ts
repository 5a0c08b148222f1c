import { expect } from "chai";
import { network } from "hardhat";
import { collateralOf, hashJob, storedCommitment, packRequirements, packVerification } from "../../sdk/src/params.js";
import { expectConservation } from "../helpers/conservation.js";
import {
  DAY,
  DEFAULT_REQUIREMENTS,
  Eligibility,
  HOUR,
  JAIL_PERIOD,
  JobState,
  MESH,
  MIN_STAKE,
  USD,
  createJob,
  jobRequest,
  makeReveal,
  marketWithProviders,
  setDraw,
  type Job,
  type System,
} from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

const PRICE = 100n * USD;
const COLLATERAL = 200n * USD; // collateralBps 20000
const FEE = 2_500_000n; // feeBps 250

describe("JobMarket lifecycle", () => {
  const fixture = () => marketWithProviders(ethers);

  async function balances(sys: System, ...accounts: string[]) {
    return Promise.all(accounts.map((a) => sys.market.balanceOf(sys.usd, a)));
  }

  async function claimed() {
    const sys = await marketWithProviders(ethers);
    const { jobId, job } = await createJob(sys, sys.consumer);
    await sys.market.connect(sys.providers[0]).claim(job);
    return { sys, jobId, job };
  }

  async function committed() {
    const { sys, jobId, job } = await claimed();
    const p1 = sys.providers[0];
    const reveal = makeReveal(ethers, jobId, p1.address);
    await sys.market.connect(p1).commit(jobId, reveal.commitment);
    await setDraw(sys, jobId, false); // these tests are about the unaudited path
    return { sys, jobId, job, reveal };
  }

  describe("createJob", () => {
    it("escrows the price from the internal balance and announces the whole job", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const { market, consumer, usd } = sys;
      const request = await jobRequest(sys);
      const job: Job = { consumer: consumer.address, request, terms: await market.currentTerms() };
      const jobId = hashJob(job);
      await expect(market.connect(consumer).createJob(request, "http://spec"))
        .to.emit(market, "JobCreated")
        .withArgs(jobId, consumer.address, (j: any) => hashJob({ consumer: j[0], request: job.request, terms: j[2] }) === jobId, "http://spec");
      expect(await market.balanceOf(usd, consumer.address)).to.equal(10_000n * USD - PRICE);
      expect(await market.jobState(jobId)).to.equal(JobState.Open);
      expect(await market.hashJob(job)).to.equal(jobId);
      await expectConservation(sys, [job]);
    });

    it("pulls the missing part of the escrow by transfer", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const { market, usd, others } = sys;
      const poor = others[0];
      await usd.mint(poor.address, 100n * USD);
      await usd.connect(poor).approve(market, 40n * USD);
      await market.connect(poor).deposit(usd, poor.address, 40n * USD); // 40 inside, 60 in the wallet
      await usd.connect(poor).approve(market, 60n * USD);
      const { job } = await createJob(sys, poor);
      expect(await market.balanceOf(usd, poor.address)).to.equal(0n);
      expect(await usd.balanceOf(poor.address)).to.equal(0n);
      await expectConservation(sys, [job]);
    });

    it("refuses to create the same job twice", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const request = await jobRequest(sys);
      await sys.market.connect(sys.consumer).createJob(request, "");
      const jobId = hashJob({ consumer: sys.consumer.address, request, terms: await sys.market.currentTerms() });
      await expect(sys.market.connect(sys.consumer).createJob(request, ""))
        .to.be.revertedWithCustomError(sys.market, "JobMarketJobExists")
        .withArgs(jobId);
    });

    it("rejects a payment token that is not allowlisted", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const request = await jobRequest(sys, { paymentToken: await sys.mesh.getAddress() });
      await expect(sys.market.connect(sys.consumer).createJob(request, ""))
        .to.be.revertedWithCustomError(sys.market, "JobMarketTokenNotAllowed")
        .withArgs(await sys.mesh.getAddress());
    });

    const invalid: [string, (s: System) => Promise<object>][] = [
      ["price", async () => ({ price: 0n })],
      ["workUnits", async () => ({ workUnits: 0n })],
      ["specHash", async () => ({ specHash: ethers.ZeroHash })],
      ["requirements", async () => ({ requirements: packRequirements(DEFAULT_REQUIREMENTS) | (1n << 81n) })],
      ["requirements", async () => ({ requirements: packRequirements({ ...DEFAULT_REQUIREMENTS, runtime: 16 }) })],
      ["verification", async () => ({ verification: packVerification({ chunks: 0, auditChunks: 1, auditBps: 0 }) })],
      ["verification", async () => ({ verification: packVerification({ chunks: 4, auditChunks: 0, auditBps: 0 }) })],
      ["verification", async () => ({ verification: packVerification({ chunks: 4, auditChunks: 5, auditBps: 0 }) })],
      ["verification", async () => ({ verification: packVerification({ chunks: 4, auditChunks: 1, auditBps: 10_001 }) })],
      ["verification", async () => ({ verification: 1n << 64n })],
      ["claimBy", async () => ({ claimBy: BigInt(await networkHelpers.time.latest()) })],
    ];
    for (const [field, patch] of invalid) {
      it(`rejects an invalid ${field}`, async () => {
        const sys = await networkHelpers.loadFixture(fixture);
        const request = await jobRequest(sys, await patch(sys));
        await expect(sys.market.connect(sys.consumer).createJob(request, ""))
          .to.be.revertedWithCustomError(sys.market, "JobMarketInvalidRequest")
          .withArgs(field);
      });
    }

    it("rejects a compute window outside the governed bounds", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      for (const computeWindow of [59n, 7n * DAY + 1n]) {
        await expect(sys.market.connect(sys.consumer).createJob(await jobRequest(sys, { computeWindow }), ""))
          .to.be.revertedWithCustomError(sys.market, "JobMarketComputeWindowOutOfBounds")
          .withArgs(computeWindow, 60, 7n * DAY);
      }
    });
  });

  describe("claim", () => {
    it("locks the claimant's collateral and records the claim", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const { market, providers } = sys;
      const { jobId, job } = await createJob(sys, sys.consumer);
      await expect(market.connect(providers[0]).claim(job)).to.emit(market, "JobClaimed").withArgs(jobId, providers[0].address);
      expect(await market.balanceOf(sys.usd, providers[0].address)).to.equal(1_000n * USD - COLLATERAL);
      expect(await market.collateralOf(job)).to.equal(COLLATERAL);
      const record = await market.jobRecord(jobId);
      expect(record.state).to.equal(JobState.Claimed);
      expect(record.provider).to.equal(providers[0].address);
      expect(record.providerId).to.equal(1n);
      expect(record.commitDeadline).to.equal(BigInt(await networkHelpers.time.latest()) + HOUR);
      await expectConservation(sys, [job]);
    });

    it("pulls missing collateral by transfer", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const p = sys.providers[1];
      await sys.market.connect(p).withdraw(sys.usd, 1_000n * USD, p.address); // nothing inside any more
      await sys.usd.connect(p).approve(sys.market, COLLATERAL);
      const { job } = await createJob(sys, sys.consumer);
      const tx = sys.market.connect(p).claim(job);
      await expect(tx).to.changeTokenBalances(ethers, sys.usd, [p, sys.market], [-COLLATERAL, COLLATERAL]);
      await expectConservation(sys, [job]);
    });

    it("is first come, first served", async () => {
      const { sys, jobId, job } = await networkHelpers.loadFixture(claimed);
      await expect(sys.market.connect(sys.providers[1]).claim(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnexpectedState")
        .withArgs(jobId, JobState.Claimed, JobState.Open);
    });

    it("rejects a job that does not hash to an existing one", async () => {
      const { sys, job } = await networkHelpers.loadFixture(claimed);
      const forged: Job = { ...job, request: { ...job.request, price: 1n } };
      await expect(sys.market.connect(sys.providers[1]).claim(forged))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnknownJob")
        .withArgs(hashJob(forged));
    });

    it("closes at claimBy", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const { jobId, job } = await createJob(sys, sys.consumer);
      await networkHelpers.time.increaseTo(BigInt(job.request.claimBy) + 1n);
      await expect(sys.market.connect(sys.providers[0]).claim(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketClaimByPassed")
        .withArgs(jobId, job.request.claimBy);
    });

    const cases: [string, Eligibility, number, object][] = [
      ["runtime", Eligibility.Runtime, 2, { req: { runtime: 1 } }], // p3 supports runtime 0 only
      ["VRAM", Eligibility.Vram, 0, { req: { minVramGB: 48 } }],
      ["GPU count", Eligibility.GpuCount, 0, { req: { minGpuCount: 4 } }],
      ["GPU class", Eligibility.GpuClass, 0, { req: { gpuClass: 7 } }],
      ["region", Eligibility.Region, 1, { req: { region: "DE" } }],
      ["renewable energy", Eligibility.NotRenewable, 1, { req: { renewableOnly: true } }],
      ["posted price", Eligibility.PriceBelowPosted, 0, { price: 9n * USD }],
    ];
    for (const [what, reason, who, overrides] of cases) {
      it(`rejects a provider whose ${what} does not meet the job`, async () => {
        const sys = await networkHelpers.loadFixture(fixture);
        const { jobId, job } = await createJob(sys, sys.consumer, overrides);
        const provider = sys.providers[who];
        await expect(sys.market.connect(provider).claim(job))
          .to.be.revertedWithCustomError(sys.market, "JobMarketIneligible")
          .withArgs(jobId, provider.address, reason);
      });
    }

    it("matches a region, GPU class and renewable requirement a provider meets", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const { job } = await createJob(sys, sys.consumer, { req: { region: "BR", gpuClass: 7, minVramGB: 80, minGpuCount: 8 } });
      await sys.market.connect(sys.providers[1]).claim(job);
      const { job: green } = await createJob(sys, sys.consumer, { req: { region: "DE", renewableOnly: true } });
      await sys.market.connect(sys.providers[0]).claim(green);
    });

    it("rejects unregistered, unstaked, jailed, untargeted and self-dealing claimants", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const { market, registry, consumer, others, providers } = sys;
      const { jobId, job } = await createJob(sys, consumer);
      await expect(market.connect(others[0]).claim(job))
        .to.be.revertedWithCustomError(market, "JobMarketIneligible")
        .withArgs(jobId, others[0].address, Eligibility.NotRegistered);
      await registry.connect(providers[2]).requestUnstake(1n);
      await expect(market.connect(providers[2]).claim(job))
        .to.be.revertedWithCustomError(market, "JobMarketIneligible")
        .withArgs(jobId, providers[2].address, Eligibility.NotActive);
      const { jobId: targeted, job: targetedJob } = await createJob(sys, consumer, { targetProvider: providers[1].address });
      await expect(market.connect(providers[0]).claim(targetedJob))
        .to.be.revertedWithCustomError(market, "JobMarketIneligible")
        .withArgs(targeted, providers[0].address, Eligibility.NotTargetProvider);
      await market.connect(providers[1]).claim(targetedJob);
      const { jobId: own, job: ownJob } = await createJob(sys, providers[0]);
      await expect(market.connect(providers[0]).claim(ownJob))
        .to.be.revertedWithCustomError(market, "JobMarketIneligible")
        .withArgs(own, providers[0].address, Eligibility.IsConsumer);
    });
  });

  describe("commit", () => {
    it("stores the commitment in the job's word and starts the challenge window", async () => {
      const { sys, jobId } = await networkHelpers.loadFixture(claimed);
      const p1 = sys.providers[0];
      const r = makeReveal(ethers, jobId, p1.address);
      await expect(sys.market.connect(p1).commit(jobId, r.commitment)).to.emit(sys.market, "JobCommitted").withArgs(jobId);
      const record = await sys.market.jobRecord(jobId);
      expect(record.state).to.equal(JobState.Committed);
      expect(record.provider).to.equal(p1.address);
      expect(record.committedAt).to.equal(BigInt(await networkHelpers.time.latest()));
      expect(record.commitBlock).to.equal(BigInt(await ethers.provider.getBlockNumber()));
      expect(record.commitment).to.equal(storedCommitment(r.commitment, p1.address));
    });

    it("accepts a commitment only from the claimant, in time, and non-zero", async () => {
      const { sys, jobId } = await networkHelpers.loadFixture(claimed);
      const [p1, p2] = sys.providers;
      const r = makeReveal(ethers, jobId, p1.address);
      await expect(sys.market.connect(p2).commit(jobId, r.commitment))
        .to.be.revertedWithCustomError(sys.market, "JobMarketNotProvider")
        .withArgs(jobId, p2.address);
      await expect(sys.market.connect(p1).commit(jobId, ethers.ZeroHash))
        .to.be.revertedWithCustomError(sys.market, "JobMarketZeroCommitment")
        .withArgs(jobId);
      const deadline = (await sys.market.jobRecord(jobId)).commitDeadline;
      await networkHelpers.time.increaseTo(deadline + 1n);
      await expect(sys.market.connect(p1).commit(jobId, r.commitment))
        .to.be.revertedWithCustomError(sys.market, "JobMarketDeadlinePassed")
        .withArgs(jobId, deadline);
    });

    it("rejects a commit for an unknown or unclaimed job, or a second commit", async () => {
      const { sys, jobId, reveal } = await networkHelpers.loadFixture(committed);
      const p1 = sys.providers[0];
      await expect(sys.market.connect(p1).commit(jobId, reveal.commitment))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnexpectedState")
        .withArgs(jobId, JobState.Committed, JobState.Claimed);
      await expect(sys.market.connect(p1).commit(ethers.ZeroHash, reveal.commitment))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnknownJob")
        .withArgs(ethers.ZeroHash);
    });
  });

  describe("settle", () => {
    it("pays the provider P - fee + S after the challenge window, and the fee is owed to the treasury", async () => {
      const { sys, jobId, job, reveal } = await networkHelpers.loadFixture(committed);
      const { market, consumer, providers } = sys;
      const [consumerBefore, providerBefore] = await balances(sys, consumer.address, providers[0].address);
      await networkHelpers.time.increase(HOUR);
      await expect(market.connect(providers[0]).settle(job, providers[0].address, reveal.resultRoot, reveal.salt, reveal.outputURI))
        .to.emit(market, "JobSettled")
        .withArgs(jobId, providers[0].address, reveal.resultRoot, reveal.outputURI);
      const [consumerAfter, providerAfter] = await balances(sys, consumer.address, providers[0].address);
      expect(consumerAfter).to.equal(consumerBefore);
      expect(providerAfter - providerBefore).to.equal(PRICE - FEE + COLLATERAL);
      expect(await market.feesDue(sys.usd, providers[0].address)).to.equal(FEE);
      expect(await market.completedJobs(sys.usd, providers[0].address)).to.equal(1n);
      expect(await market.jobState(jobId)).to.equal(JobState.Settled);
      await expectConservation(sys, [job]);
    });

    it("can be sent by a keeper holding the reveal", async () => {
      const { sys, job, reveal } = await networkHelpers.loadFixture(committed);
      await networkHelpers.time.increase(HOUR);
      await sys.market.connect(sys.others[0]).settle(job, sys.providers[0].address, reveal.resultRoot, reveal.salt, reveal.outputURI);
      expect(await sys.market.balanceOf(sys.usd, sys.others[0].address)).to.equal(0n);
      expect(await sys.market.completedJobs(sys.usd, sys.providers[0].address)).to.equal(1n);
    });

    it("waits for the end of the challenge window", async () => {
      const { sys, jobId, job, reveal } = await networkHelpers.loadFixture(committed);
      const windowEnd = (await sys.market.jobRecord(jobId)).committedAt + HOUR;
      await expect(sys.market.settle(job, sys.providers[0].address, reveal.resultRoot, reveal.salt, reveal.outputURI))
        .to.be.revertedWithCustomError(sys.market, "JobMarketDeadlineNotReached")
        .withArgs(jobId, windowEnd);
    });

    it("rejects a reveal that does not open the commitment: wrong salt, root or provider", async () => {
      const { sys, jobId, job, reveal } = await networkHelpers.loadFixture(committed);
      await networkHelpers.time.increase(HOUR);
      const [p1, p2] = sys.providers;
      for (const [provider, root, salt] of [
        [p1.address, reveal.resultRoot, ethers.ZeroHash],
        [p1.address, ethers.ZeroHash, reveal.salt],
        [p2.address, reveal.resultRoot, reveal.salt],
      ]) {
        await expect(sys.market.settle(job, provider, root, salt, ""))
          .to.be.revertedWithCustomError(sys.market, "JobMarketCommitmentMismatch")
          .withArgs(jobId);
      }
    });

    it("closes at the end of the reveal window", async () => {
      const { sys, jobId, job, reveal } = await networkHelpers.loadFixture(committed);
      const revealBy = (await sys.market.jobRecord(jobId)).committedAt + 2n * HOUR;
      await networkHelpers.time.increaseTo(revealBy + 1n);
      await expect(sys.market.settle(job, sys.providers[0].address, reveal.resultRoot, reveal.salt, reveal.outputURI))
        .to.be.revertedWithCustomError(sys.market, "JobMarketDeadlinePassed")
        .withArgs(jobId, revealBy);
    });

    it("keeps the terms a job was created with when governance changes them", async () => {
      const { sys, jobId, job, reveal } = await networkHelpers.loadFixture(committed);
      await sys.market.setParameter(0, 1_000); // FeeBps: 2.5% -> 10% for new jobs
      await networkHelpers.time.increase(HOUR);
      await sys.market.settle(job, sys.providers[0].address, reveal.resultRoot, reveal.salt, reveal.outputURI);
      expect(await sys.market.feesDue(sys.usd, sys.providers[0].address)).to.equal(FEE);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Settled);
    });
  });

  describe("cancel", () => {
    it("gives an unclaimed job's escrow back to its consumer", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const { jobId, job } = await createJob(sys, sys.consumer);
      await expect(sys.market.connect(sys.consumer).cancel(job)).to.emit(sys.market, "JobCancelled").withArgs(jobId, sys.consumer.address, PRICE);
      expect(await sys.market.balanceOf(sys.usd, sys.consumer.address)).to.equal(10_000n * USD);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Cancelled);
      await expectConservation(sys, [job]);
    });

    it("is for the consumer only, and only before a claim", async () => {
      const { sys, jobId, job } = await networkHelpers.loadFixture(claimed);
      await expect(sys.market.connect(sys.consumer).cancel(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnexpectedState")
        .withArgs(jobId, JobState.Claimed, JobState.Open);
      const { jobId: open, job: openJob } = await createJob(sys, sys.consumer);
      await expect(sys.market.connect(sys.others[0]).cancel(openJob))
        .to.be.revertedWithCustomError(sys.market, "JobMarketNotConsumer")
        .withArgs(open, sys.others[0].address);
    });
  });

  describe("deadlines", () => {
    it("refunds a job nobody claimed before claimBy", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const { jobId, job } = await createJob(sys, sys.consumer);
      await expect(sys.market.enforceDeadline(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketDeadlineNotReached")
        .withArgs(jobId, job.request.claimBy);
      await networkHelpers.time.increaseTo(BigInt(job.request.claimBy) + 1n);
      await expect(sys.market.connect(sys.others[0]).enforceDeadline(job))
        .to.emit(sys.market, "JobRefunded")
        .withArgs(jobId, sys.consumer.address, PRICE);
      expect(await sys.market.balanceOf(sys.usd, sys.consumer.address)).to.equal(10_000n * USD);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Refunded);
      await expectConservation(sys, [job]);
    });

    it("times out a claimant that did not commit and reopens the job for another provider", async () => {
      const { sys, jobId, job } = await networkHelpers.loadFixture(claimed);
      const { market, consumer, providers, registry } = sys;
      const [p1, p2] = providers;
      const slash = (COLLATERAL * 2_000n) / 10_000n;
      const deadline = (await market.jobRecord(jobId)).commitDeadline;
      await expect(market.enforceDeadline(job)).to.be.revertedWithCustomError(market, "JobMarketDeadlineNotReached").withArgs(jobId, deadline);
      await networkHelpers.time.increaseTo(deadline + 1n);
      const [c0, p0] = await balances(sys, consumer.address, p1.address);
      const tx = market.enforceDeadline(job);
      await expect(tx).to.emit(market, "JobTimedOut").withArgs(jobId, p1.address, slash, COLLATERAL - slash);
      await expect(tx).to.emit(market, "JobReopened").withArgs(jobId);
      const [c1, p1After] = await balances(sys, consumer.address, p1.address);
      expect(c1 - c0).to.equal(slash);
      expect(p1After - p0).to.equal(COLLATERAL - slash);
      expect((await registry.countersOf(p1.address)).timedOut).to.equal(1n);
      expect(await market.jobState(jobId)).to.equal(JobState.Open);

      // The same job, followed through to settlement by another provider.
      await market.connect(p2).claim(job);
      const r = makeReveal(ethers, jobId, p2.address);
      await market.connect(p2).commit(jobId, r.commitment);
      await setDraw(sys, jobId, false);
      await networkHelpers.time.increase(HOUR);
      await market.settle(job, p2.address, r.resultRoot, r.salt, r.outputURI);
      expect(await market.jobState(jobId)).to.equal(JobState.Settled);
      await expectConservation(sys, [job]);
    });

    it("lets the next claimant take over from one that missed its commit deadline, in one transaction", async () => {
      const { sys, jobId, job } = await networkHelpers.loadFixture(claimed);
      const [p1, p2] = sys.providers;
      await networkHelpers.time.increase(HOUR + 1n);
      const tx = sys.market.connect(p2).claim(job);
      await expect(tx).to.emit(sys.market, "JobTimedOut");
      await expect(tx).to.emit(sys.market, "JobClaimed").withArgs(jobId, p2.address);
      expect((await sys.market.jobRecord(jobId)).provider).to.equal(p2.address);
      expect(await sys.market.balanceOf(sys.usd, p1.address)).to.equal(1_000n * USD - (COLLATERAL * 2_000n) / 10_000n);
      await expectConservation(sys, [job]);
    });

    it("refunds instead of reopening when the timeout comes after claimBy", async () => {
      const sys = await networkHelpers.loadFixture(fixture);
      const claimBy = BigInt(await networkHelpers.time.latest()) + 600n;
      const { jobId, job } = await createJob(sys, sys.consumer, { claimBy });
      await sys.market.connect(sys.providers[0]).claim(job);
      await networkHelpers.time.increase(HOUR + 1n);
      const tx = sys.market.enforceDeadline(job);
      await expect(tx).to.emit(sys.market, "JobTimedOut");
      await expect(tx).to.emit(sys.market, "JobRefunded").withArgs(jobId, sys.consumer.address, PRICE);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Refunded);
      expect(await sys.market.balanceOf(sys.usd, sys.consumer.address)).to.equal(
        10_000n * USD + (COLLATERAL * 2_000n) / 10_000n,
      );
      await expectConservation(sys, [job]);
    });

    it("treats a provider that never reveals as a fraud: P back, S forfeited, stake slashed, jailed", async () => {
      const { sys, jobId, job } = await networkHelpers.loadFixture(committed);
      const { market, registry, consumer, providers } = sys;
      const p1 = providers[0];
      const revealBy = (await market.jobRecord(jobId)).committedAt + 2n * HOUR;
      await expect(market.enforceDeadline(job)).to.be.revertedWithCustomError(market, "JobMarketDeadlineNotReached").withArgs(jobId, revealBy);
      await networkHelpers.time.increaseTo(revealBy + 1n);
      const [c0, p0] = await balances(sys, consumer.address, p1.address);
      const toTreasury = (COLLATERAL * 2_000n) / 10_000n;
      const stakeSlash = (MIN_STAKE * 1_000n) / 10_000n;
      await expect(market.enforceDeadline(job))
        .to.emit(market, "JobRevealMissed")
        .withArgs(jobId, p1.address, COLLATERAL - toTreasury, toTreasury, stakeSlash);
      const [c1, p1After] = await balances(sys, consumer.address, p1.address);
      expect(c1 - c0).to.equal(PRICE + COLLATERAL - toTreasury);
      expect(p1After).to.equal(p0);
      expect(await market.treasuryAccrual(sys.usd)).to.equal(toTreasury);
      const stake = await registry.stakeOf(p1.address);
      expect(stake.active).to.equal(MIN_STAKE - stakeSlash);
      expect(stake.jailedUntil).to.equal(BigInt(await networkHelpers.time.latest()) + JAIL_PERIOD);
      expect(await registry.isActive(p1.address)).to.equal(false);
      expect(await market.jobState(jobId)).to.equal(JobState.Slashed);
      expect(await sys.mesh.balanceOf(await registry.getAddress())).to.equal((await registry.totalStaked()) + (await registry.slashedStake()));
      await expectConservation(sys, [job]);
    });

    it("voids, slashing nobody, a job whose draw was never possible: the randomness source stayed Pending past the reveal window", async () => {
      const { sys, jobId, job, reveal } = await networkHelpers.loadFixture(committed);
      const { market, registry, consumer, providers } = sys;
      const p1 = providers[0];
      const record = await market.jobRecord(jobId);
      const revealBy = record.committedAt + 2n * HOUR;
      await sys.randomness.set(0, ethers.ZeroHash); // Pending: the governed source never answers
      await networkHelpers.time.increase(HOUR);
      // The provider tries to settle within its window and cannot.
      await expect(market.settle(job, p1.address, reveal.resultRoot, reveal.salt, reveal.outputURI))
        .to.be.revertedWithCustomError(market, "JobMarketRandomnessNotReady")
        .withArgs(jobId, record.commitBlock);
      await networkHelpers.time.increaseTo(revealBy + 1n);
      const [c0, p0] = await balances(sys, consumer.address, p1.address);
      const stakeBefore = await registry.stakeOf(p1.address);
      await expect(market.enforceDeadline(job))
        .to.emit(market, "JobVoided")
        .withArgs(jobId, p1.address, COLLATERAL)
        .and.to.emit(market, "JobRefunded")
        .withArgs(jobId, consumer.address, PRICE)
        .and.not.to.emit(market, "JobRevealMissed");
      const [c1, p1After] = await balances(sys, consumer.address, p1.address);
      expect(c1 - c0).to.equal(PRICE);
      expect(p1After - p0).to.equal(COLLATERAL);
      expect(await market.treasuryAccrual(sys.usd)).to.equal(0n);
      const stake = await registry.stakeOf(p1.address);
      expect(stake.active).to.equal(stakeBefore.active);
      expect(stake.jailedUntil).to.equal(0n);
      expect(await registry.isActive(p1.address)).to.equal(true);
      expect(await market.completedJobs(sys.usd, p1.address)).to.equal(0n);
      expect(await market.jobState(jobId)).to.equal(JobState.Refunded);
      await expectConservation(sys, [job]);
      // Randomness that arrives afterwards changes nothing: the job is final.
      await sys.randomness.set(1, ethers.ZeroHash);
      await expect(market.enforceDeadline(job)).to.be.revertedWithCustomError(market, "JobMarketNothingToEnforce").withArgs(jobId, JobState.Refunded);
    });

    it("voids too when the source fails (reverts) or was replaced after the commit: the provider faced another source than the one deciding now", async () => {
      for (const how of ["replaced", "failing"] as const) {
        const { sys, jobId, job } = await networkHelpers.loadFixture(committed);
        const { market, registry, providers } = sys;
        const p1 = providers[0];
        const revealBy = (await market.jobRecord(jobId)).committedAt + 2n * HOUR;
        if (how === "replaced") {
          // Stuck Pending through the window, then replaced (governance too late) by a source that answers.
          await sys.randomness.set(0, ethers.ZeroHash);
          await networkHelpers.time.increaseTo(revealBy + 1n);
          const working = await ethers.deployContract("MockRandomness");
          await market.setRandomnessSource(await working.getAddress());
          // Nobody can draw it now (which would turn the void into a slash): the window is over.
          await expect(market.draw(job)).to.be.revertedWithCustomError(market, "JobMarketDeadlinePassed").withArgs(jobId, revealBy);
        } else {
          // A source without `randomness` (here the payment token): every call to it reverts.
          await market.setRandomnessSource(await sys.usd.getAddress());
          await networkHelpers.time.increaseTo(revealBy + 1n);
        }
        await expect(market.enforceDeadline(job)).to.emit(market, "JobVoided").withArgs(jobId, p1.address, COLLATERAL);
        expect(await market.jobState(jobId)).to.equal(JobState.Refunded, how);
        expect((await registry.countersOf(p1.address)).slashes).to.equal(0n, how);
        await expectConservation(sys, [job]);
      }
    });

    it("still slashes a missed reveal after the draw (Challengeable), whatever the source answers later", async () => {
      const { sys, jobId, job } = await networkHelpers.loadFixture(committed);
      await sys.market.draw(job); // not audited (setDraw in the fixture): Challengeable
      await sys.randomness.set(0, ethers.ZeroHash);
      await networkHelpers.time.increase(2n * HOUR + 1n);
      await expect(sys.market.enforceDeadline(job)).to.emit(sys.market, "JobRevealMissed").and.not.to.emit(sys.market, "JobVoided");
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Slashed);
    });

    it("with the built-in source, refuses to judge in the block after the commit (not drawable yet), and slashes the missed reveal a block later", async () => {
      const sys = await marketWithProviders(ethers);
      await sys.market.setRandomnessSource(ethers.ZeroAddress); // the built-in block-hash source
      const { jobId, job } = await createJob(sys, sys.consumer);
      const p1 = sys.providers[0];
      await sys.market.connect(p1).claim(job);
      await sys.market.connect(p1).commit(jobId, makeReveal(ethers, jobId, p1.address).commitment);
      const record = await sys.market.jobRecord(jobId);
      // The next block comes long after the reveal window, and is the first after the commit block.
      await networkHelpers.time.setNextBlockTimestamp(record.committedAt + 2n * HOUR + 1n);
      await expect(sys.market.enforceDeadline(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketRandomnessNotReady")
        .withArgs(jobId, record.commitBlock);
      await networkHelpers.mine(1);
      await expect(sys.market.enforceDeadline(job)).to.emit(sys.market, "JobRevealMissed");
      expect(await sys.market.jobState(jobId)).to.equal(JobState.Slashed);
    });

    it("has nothing to enforce on a finished or unknown job", async () => {
      const { sys, jobId, job, reveal } = await networkHelpers.loadFixture(committed);
      await networkHelpers.time.increase(HOUR);
      await sys.market.settle(job, sys.providers[0].address, reveal.resultRoot, reveal.salt, reveal.outputURI);
      await expect(sys.market.enforceDeadline(job))
        .to.be.revertedWithCustomError(sys.market, "JobMarketNothingToEnforce")
        .withArgs(jobId, JobState.Settled);
      const unknown: Job = { ...job, request: { ...job.request, nonce: 1n } };
      await expect(sys.market.enforceDeadline(unknown))
        .to.be.revertedWithCustomError(sys.market, "JobMarketUnknownJob")
        .withArgs(hashJob(unknown));
    });
  });

  it("keeps every token accounted for across many jobs in every final state", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const jobs: Job[] = [];
    const [p1, p2, p3] = sys.providers;
    for (let i = 0; i < 6; i++) {
      const { jobId, job } = await createJob(sys, sys.consumer, { price: BigInt(10 + i) * USD, workUnits: 1n });
      jobs.push(job);
      if (i === 0) await sys.market.connect(sys.consumer).cancel(job);
      if (i >= 2) await sys.market.connect([p1, p2, p3][i % 3]).claim(job);
      if (i >= 3) {
        const who = [p1, p2, p3][i % 3];
        const r = makeReveal(ethers, jobId, who.address);
        await sys.market.connect(who).commit(jobId, r.commitment);
        if (i === 5) {
          await setDraw(sys, jobId, false);
          await networkHelpers.time.increase(HOUR);
          await sys.market.settle(job, who.address, r.resultRoot, r.salt, "");
        }
      }
      await expectConservation(sys, jobs);
    }
    expect(collateralOf(jobs[2])).to.equal(24n * USD);
    // Past every deadline: the open job is refunded, the claimed one timed out, the committed ones slashed.
    await networkHelpers.time.increase(2n * DAY);
    for (const job of jobs.slice(1, 5)) await sys.market.enforceDeadline(job);
    const states = await Promise.all(jobs.map(async (j) => Number(await sys.market.jobState(hashJob(j)))));
    expect(states).to.deep.equal([
      JobState.Cancelled,
      JobState.Refunded,
      JobState.Refunded,
      JobState.Slashed,
      JobState.Slashed,
      JobState.Settled,
    ]);
    await expectConservation(sys, jobs);
    const registry = await sys.registry.getAddress();
    expect(await sys.mesh.balanceOf(registry)).to.equal((await sys.registry.totalStaked()) + (await sys.registry.slashedStake()));
    expect(await sys.registry.slashedStake()).to.equal((2n * MIN_STAKE * 1_000n) / 10_000n);
  });
});
