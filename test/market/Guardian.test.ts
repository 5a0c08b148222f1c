/**
 * The guardian pause (IMarketAdmin): an optional guardian, appointed and removed by the owner (the DAO's
 * timelock), may stop *new* jobs and claims for at most `maxPauseDuration`, then must wait as long again.
 * It can never touch funds: deposits, withdrawals, cancellations, commits, settlements, audits and
 * deadlines keep working while paused, and the pause lapses on its own.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { hashJob, packVerification } from "../../sdk/src/params.js";
import { claimAudit, Result } from "../helpers/audits.js";
import { ProposalState, deployDao, passProposal } from "../helpers/dao.js";
import {
  DAY,
  Eligibility,
  HOUR,
  JobState,
  USD,
  createJob,
  fund,
  jobRequest,
  makeReveal,
  marketWithProviders,
  onboardProvider,
  predictJob,
  setDraw,
  signOffer,
  type System,
} from "../helpers/system.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;

const MAX_PAUSE_DURATION = 20; // IJobMarketTypes.Parameter.MaxPauseDuration
const DEFAULT_MAX_PAUSE = 3n * DAY;
const PRICE = 100n * USD;
const COLLATERAL = 200n * USD; // collateralBps 20000
const FEE = 2_500_000n; // feeBps 250
const CLAIMS_PAUSED = Eligibility.ClaimsPaused;

/** The market of the shared kit (the deployer is its owner) with `others[0]` as guardian. */
async function guarded() {
  const sys = await marketWithProviders(ethers);
  const [guardian, stranger] = sys.others;
  await sys.market.setGuardian(guardian.address);
  return { sys, guardian, stranger };
}

/** Pauses for `duration` in the next block, at a known time; returns the end of the pause. */
async function pauseAt(sys: System, guardian: { address: string }, duration: bigint, at?: bigint): Promise<bigint> {
  const t = at ?? BigInt(await time.latest()) + 1n;
  await time.setNextBlockTimestamp(t);
  await sys.market.connect(guardian as any).pause(duration);
  return t + duration;
}

/**
 * Jobs in every stage the pause must leave alone, then a one-day pause:
 * - `open`: open, claimable for two days (past the pause); `expiring`: open, claimable for one hour only;
 * - `claimed`: claimed by provider 1 (one hour to commit); `late`: claimed by provider 2 with one minute;
 * - `drawn`: committed by provider 3 and drawn for audit, nobody has claimed the audit yet;
 * - `audited`: committed by provider 3, its audit claimed by the auditor before the pause.
 */
async function pausedWithJobs() {
  const { sys, guardian, stranger } = await guarded();
  const { market, consumer } = sys;
  const [p1, p2, p3] = sys.providers;
  const auditor = sys.others[2];
  await onboardProvider(sys, auditor);
  await fund(sys, auditor, 1_000n * USD);

  const open = await createJob(sys, consumer, { claimBy: BigInt(await time.latest()) + 2n * DAY });
  const expiring = await createJob(sys, consumer, { claimBy: BigInt(await time.latest()) + HOUR });
  const claimed = await createJob(sys, consumer);
  await market.connect(p1).claim(claimed.job);
  const late = await createJob(sys, consumer, { computeWindow: 60n });
  await market.connect(p2).claim(late.job);

  const chunks = { verification: packVerification({ chunks: 16, auditChunks: 4, auditBps: 0 }) };
  const drawn = await createJob(sys, consumer, chunks);
  await market.connect(p3).claim(drawn.job);
  const drawnResult = Result.of(drawn.jobId, p3.address, 16);
  await market.connect(p3).commit(drawn.jobId, drawnResult.commitment);
  await setDraw(sys, drawn.jobId, true);
  await market.draw(drawn.job); // Audited, waiting for an auditor

  const audited = await createJob(sys, consumer, chunks);
  await market.connect(p3).claim(audited.job);
  const auditedResult = Result.of(audited.jobId, p3.address, 16);
  await market.connect(p3).commit(audited.jobId, auditedResult.commitment);
  await setDraw(sys, audited.jobId, true);
  const { sample } = await claimAudit(sys, audited.job, auditor);

  const until = await pauseAt(sys, guardian, DAY);
  return {
    sys,
    guardian,
    stranger,
    auditor,
    until,
    open,
    expiring,
    claimed,
    late,
    drawn: { ...drawn, result: drawnResult },
    audited: { ...audited, result: auditedResult, sample },
  };
}

describe("JobMarket guardian pause", () => {
  describe("setGuardian", () => {
    it("is the owner's: it appoints, replaces and removes the guardian, announcing each change", async () => {
      const sys = await networkHelpers.loadFixture(marketWithProvidersFixture);
      const [g1, g2] = sys.others;
      expect(await sys.market.guardian()).to.equal(ethers.ZeroAddress);
      await expect(sys.market.setGuardian(g1.address)).to.emit(sys.market, "GuardianSet").withArgs(ethers.ZeroAddress, g1.address);
      expect(await sys.market.guardian()).to.equal(g1.address);
      await expect(sys.market.setGuardian(g2.address)).to.emit(sys.market, "GuardianSet").withArgs(g1.address, g2.address);
      expect(await sys.market.guardian()).to.equal(g2.address);
      await expect(sys.market.setGuardian(ethers.ZeroAddress)).to.emit(sys.market, "GuardianSet").withArgs(g2.address, ethers.ZeroAddress);
      expect(await sys.market.guardian()).to.equal(ethers.ZeroAddress);
    });

    it("refuses anyone but the owner, the guardian itself included", async () => {
      const { sys, guardian, stranger } = await networkHelpers.loadFixture(guarded);
      for (const caller of [stranger, guardian]) {
        await expect(sys.market.connect(caller).setGuardian(caller.address))
          .to.be.revertedWithCustomError(sys.market, "OwnableUnauthorizedAccount")
          .withArgs(caller.address);
      }
      expect(await sys.market.guardian()).to.equal(guardian.address);
    });
  });

  describe("pause", () => {
    it("is the guardian's alone: without a guardian nobody can pause, not even the owner", async () => {
      const sys = await networkHelpers.loadFixture(marketWithProvidersFixture);
      const [, stranger] = sys.others;
      for (const caller of [sys.deployer, stranger]) {
        await expect(sys.market.connect(caller).pause(HOUR))
          .to.be.revertedWithCustomError(sys.market, "JobMarketNotGuardian")
          .withArgs(caller.address);
      }
      await sys.market.setGuardian(sys.others[0].address);
      for (const caller of [sys.deployer, stranger]) {
        await expect(sys.market.connect(caller).pause(HOUR))
          .to.be.revertedWithCustomError(sys.market, "JobMarketNotGuardian")
          .withArgs(caller.address);
      }
      expect(await sys.market.pausedUntil()).to.equal(0n);
    });

    it("pauses job creation and claims until block time + duration, in the market and the registry", async () => {
      const { sys, guardian } = await networkHelpers.loadFixture(guarded);
      const t = BigInt(await time.latest()) + 10n;
      await time.setNextBlockTimestamp(t);
      const tx = sys.market.connect(guardian).pause(2n * HOUR);
      await expect(tx).to.emit(sys.market, "Paused").withArgs(guardian.address, t + 2n * HOUR);
      await expect(tx).to.emit(sys.registry, "ClaimsPaused").withArgs(t + 2n * HOUR);
      expect(await sys.market.pausedUntil()).to.equal(t + 2n * HOUR);
      expect(await sys.registry.claimsPausedUntil()).to.equal(t + 2n * HOUR);
    });

    it("refuses a pause longer than maxPauseDuration (3 days by default) and accepts exactly the maximum", async () => {
      const { sys, guardian } = await networkHelpers.loadFixture(guarded);
      expect(await sys.market.parameter(MAX_PAUSE_DURATION)).to.equal(DEFAULT_MAX_PAUSE);
      await expect(sys.market.connect(guardian).pause(DEFAULT_MAX_PAUSE + 1n))
        .to.be.revertedWithCustomError(sys.market, "JobMarketPauseTooLong")
        .withArgs(DEFAULT_MAX_PAUSE + 1n, DEFAULT_MAX_PAUSE);
      const until = await pauseAt(sys, guardian, DEFAULT_MAX_PAUSE);
      expect(await sys.market.pausedUntil()).to.equal(until);
    });

    it("cannot pause again until maxPauseDuration after the previous pause ended", async () => {
      const { sys, guardian } = await networkHelpers.loadFixture(guarded);
      const until = await pauseAt(sys, guardian, HOUR);
      const availableAt = until + DEFAULT_MAX_PAUSE;
      // Neither during the pause (to extend it) nor during the cooldown after it.
      await expect(sys.market.connect(guardian).pause(HOUR))
        .to.be.revertedWithCustomError(sys.market, "JobMarketPauseCooldown")
        .withArgs(availableAt);
      await time.setNextBlockTimestamp(availableAt - 1n);
      await expect(sys.market.connect(guardian).pause(HOUR))
        .to.be.revertedWithCustomError(sys.market, "JobMarketPauseCooldown")
        .withArgs(availableAt);
      await time.setNextBlockTimestamp(availableAt);
      await expect(sys.market.connect(guardian).pause(HOUR)).to.emit(sys.market, "Paused").withArgs(guardian.address, availableAt + HOUR);
    });

    it("counts the cooldown from an early unpause", async () => {
      const { sys, guardian } = await networkHelpers.loadFixture(guarded);
      await pauseAt(sys, guardian, DAY);
      const liftedAt = BigInt(await time.latest()) + HOUR;
      await time.setNextBlockTimestamp(liftedAt);
      await sys.market.unpause();
      expect(await sys.market.pausedUntil()).to.equal(liftedAt);
      await time.setNextBlockTimestamp(liftedAt + DEFAULT_MAX_PAUSE - 1n);
      await expect(sys.market.connect(guardian).pause(HOUR))
        .to.be.revertedWithCustomError(sys.market, "JobMarketPauseCooldown")
        .withArgs(liftedAt + DEFAULT_MAX_PAUSE);
      await time.setNextBlockTimestamp(liftedAt + DEFAULT_MAX_PAUSE);
      await expect(sys.market.connect(guardian).pause(HOUR)).to.emit(sys.market, "Paused");
    });
  });

  describe("while paused", () => {
    it("rejects new jobs with JobMarketPaused(until)", async () => {
      const { sys, until } = await networkHelpers.loadFixture(pausedWithJobs);
      const before = await sys.market.balanceOf(sys.usd, sys.consumer.address);
      await expect(sys.market.connect(sys.consumer).createJob(await jobRequest(sys), ""))
        .to.be.revertedWithCustomError(sys.market, "JobMarketPaused")
        .withArgs(until);
      expect(await sys.market.balanceOf(sys.usd, sys.consumer.address)).to.equal(before);
    });

    it("rejects claims of open jobs with JobMarketPaused(until)", async () => {
      const { sys, until, open } = await networkHelpers.loadFixture(pausedWithJobs);
      for (const p of sys.providers) {
        await expect(sys.market.connect(p).claim(open.job)).to.be.revertedWithCustomError(sys.market, "JobMarketPaused").withArgs(until);
      }
      expect(await sys.market.jobState(open.jobId)).to.equal(JobState.Open);
      // The registry says why to anyone who asks.
      const [eligibility] = await sys.registry.checkEligibility(
        sys.providers[0].address,
        sys.usd,
        open.job.request.requirements,
        open.job.request.price,
        open.job.request.workUnits,
        true,
      );
      expect(eligibility).to.equal(CLAIMS_PAUSED);
    });

    it("rejects jobs with a signed offer (create and claim at once) with JobMarketPaused(until)", async () => {
      const { sys, until } = await networkHelpers.loadFixture(pausedWithJobs);
      const provider = sys.providers[0];
      const request = await jobRequest(sys, { targetProvider: provider.address });
      const jobId = hashJob(await predictJob(sys, sys.consumer.address, request));
      const expiry = BigInt(await time.latest()) + 300n;
      const signature = await signOffer(sys, provider, jobId, expiry);
      await expect(sys.market.connect(sys.consumer).createJobWithOffer(request, "", expiry, signature))
        .to.be.revertedWithCustomError(sys.market, "JobMarketPaused")
        .withArgs(until);
      expect(await sys.market.jobState(jobId)).to.equal(JobState.None);
    });

    it("still takes deposits and pays withdrawals", async () => {
      const { sys, stranger } = await networkHelpers.loadFixture(pausedWithJobs);
      const { market, usd, consumer } = sys;
      await usd.mint(stranger.address, 50n * USD);
      await usd.connect(stranger).approve(market, 50n * USD);
      const deposit = market.connect(stranger).deposit(usd, stranger.address, 50n * USD);
      await expect(deposit).to.emit(market, "Deposited").withArgs(await usd.getAddress(), stranger.address, stranger.address, 50n * USD);
      await expect(deposit).to.changeTokenBalances(ethers, usd, [stranger, market], [-50n * USD, 50n * USD]);
      expect(await market.balanceOf(usd, stranger.address)).to.equal(50n * USD);

      const inside = await market.balanceOf(usd, consumer.address);
      const withdrawal = market.connect(consumer).withdraw(usd, inside, consumer.address);
      await expect(withdrawal).to.emit(market, "Withdrawn").withArgs(await usd.getAddress(), consumer.address, consumer.address, inside);
      await expect(withdrawal).to.changeTokenBalances(ethers, usd, [market, consumer], [-inside, inside]);
      expect(await market.balanceOf(usd, consumer.address)).to.equal(0n);
    });

    it("still lets a consumer cancel an open job and get its price back", async () => {
      const { sys, open } = await networkHelpers.loadFixture(pausedWithJobs);
      const before = await sys.market.balanceOf(sys.usd, sys.consumer.address);
      await expect(sys.market.connect(sys.consumer).cancel(open.job))
        .to.emit(sys.market, "JobCancelled")
        .withArgs(open.jobId, sys.consumer.address, PRICE);
      expect(await sys.market.jobState(open.jobId)).to.equal(JobState.Cancelled);
      expect(await sys.market.balanceOf(sys.usd, sys.consumer.address)).to.equal(before + PRICE);
    });

    it("still lets a claimant commit, and settle once the challenge window is over", async () => {
      const { sys, claimed, until } = await networkHelpers.loadFixture(pausedWithJobs);
      const p1 = sys.providers[0];
      const reveal = makeReveal(ethers, claimed.jobId, p1.address);
      await expect(sys.market.connect(p1).commit(claimed.jobId, reveal.commitment)).to.emit(sys.market, "JobCommitted").withArgs(claimed.jobId);
      await setDraw(sys, claimed.jobId, false);
      await time.increase(HOUR); // the challenge window (1 hour), still well inside the pause
      expect(BigInt(await time.latest())).to.be.lessThan(until);
      const before = await sys.market.balanceOf(sys.usd, p1.address);
      await expect(sys.market.settle(claimed.job, p1.address, reveal.resultRoot, reveal.salt, reveal.outputURI))
        .to.emit(sys.market, "JobSettled")
        .withArgs(claimed.jobId, p1.address, reveal.resultRoot, reveal.outputURI);
      expect(await sys.market.jobState(claimed.jobId)).to.equal(JobState.Settled);
      expect(await sys.market.balanceOf(sys.usd, p1.address)).to.equal(before + PRICE - FEE + COLLATERAL);
    });

    it("still enforces deadlines: a missed commit times out and reopens, an unclaimed job expires and is refunded", async () => {
      const { sys, late, expiring, until } = await networkHelpers.loadFixture(pausedWithJobs);
      const { market, consumer } = sys;
      const p2 = sys.providers[1];
      await time.increase(HOUR + 1n); // past both deadlines, still paused
      expect(BigInt(await time.latest())).to.be.lessThan(until);
      const timedOut = market.enforceDeadline(late.job);
      await expect(timedOut).to.emit(market, "JobTimedOut").withArgs(late.jobId, p2.address, COLLATERAL / 5n, COLLATERAL - COLLATERAL / 5n);
      await expect(timedOut).to.emit(market, "JobReopened").withArgs(late.jobId);
      expect(await market.jobState(late.jobId)).to.equal(JobState.Open);

      const before = await market.balanceOf(sys.usd, consumer.address);
      await expect(market.enforceDeadline(expiring.job)).to.emit(market, "JobRefunded").withArgs(expiring.jobId, consumer.address, PRICE);
      expect(await market.jobState(expiring.jobId)).to.equal(JobState.Refunded);
      expect(await market.balanceOf(sys.usd, consumer.address)).to.equal(before + PRICE);
    });

    it("still lets a provider reveal to the auditor of an audit claimed before the pause", async () => {
      const { sys, audited, auditor } = await networkHelpers.loadFixture(pausedWithJobs);
      const p3 = sys.providers[2];
      const { result, sample } = audited;
      const tx = sys.market
        .connect(p3)
        .revealResult(audited.job, p3.address, result.tree.root, result.salt, "http://out", result.leavesAt(sample), result.proofsAt(sample));
      await expect(tx).to.emit(sys.market, "AuditPassed").withArgs(audited.jobId, p3.address, auditor.address, 0n);
      expect(await sys.market.jobState(audited.jobId)).to.equal(JobState.Settled);
    });

    it("still lets an auditor claim an audit drawn before the pause", async () => {
      const { sys, drawn, auditor } = await networkHelpers.loadFixture(pausedWithJobs);
      await claimAudit(sys, drawn.job, auditor);
      expect(await sys.market.jobState(drawn.jobId)).to.equal(JobState.Revealing);
    });
  });

  describe("end of a pause", () => {
    it("lapses on its own at pausedUntil: jobs and claims work again without an unpause", async () => {
      const { sys, until, open } = await networkHelpers.loadFixture(pausedWithJobs);
      const request = await jobRequest(sys, { claimBy: until + DAY });
      await time.setNextBlockTimestamp(until - 1n);
      await expect(sys.market.connect(sys.consumer).createJob(request, ""))
        .to.be.revertedWithCustomError(sys.market, "JobMarketPaused")
        .withArgs(until);
      await time.setNextBlockTimestamp(until);
      await expect(sys.market.connect(sys.consumer).createJob(request, "")).to.emit(sys.market, "JobCreated");
      await expect(sys.market.connect(sys.providers[0]).claim(open.job)).to.emit(sys.market, "JobClaimed").withArgs(open.jobId, sys.providers[0].address);
      expect(await sys.market.jobState(open.jobId)).to.equal(JobState.Claimed);
    });

    it("can be lifted at once by the guardian", async () => {
      const { sys, guardian, open } = await networkHelpers.loadFixture(pausedWithJobs);
      const tx = sys.market.connect(guardian).unpause();
      await expect(tx).to.emit(sys.market, "Unpaused").withArgs(guardian.address);
      await expect(tx).to.emit(sys.registry, "ClaimsPaused").withArgs(0n);
      expect(await sys.market.pausedUntil()).to.equal(BigInt(await time.latest()));
      expect(await sys.registry.claimsPausedUntil()).to.equal(0n);
      await expect(sys.market.connect(sys.providers[0]).claim(open.job)).to.emit(sys.market, "JobClaimed");
      await expect(createJob(sys, sys.consumer)).to.not.be.rejected;
    });

    it("can be lifted at once by the owner", async () => {
      const { sys, open } = await networkHelpers.loadFixture(pausedWithJobs);
      await expect(sys.market.connect(sys.deployer).unpause()).to.emit(sys.market, "Unpaused").withArgs(sys.deployer.address);
      await expect(sys.market.connect(sys.providers[0]).claim(open.job)).to.emit(sys.market, "JobClaimed");
      await expect(createJob(sys, sys.consumer)).to.not.be.rejected;
    });

    it("cannot be lifted by anyone else", async () => {
      const { sys, stranger, until } = await networkHelpers.loadFixture(pausedWithJobs);
      for (const caller of [stranger, sys.consumer, sys.providers[0]]) {
        await expect(sys.market.connect(caller).unpause())
          .to.be.revertedWithCustomError(sys.market, "JobMarketNotGuardian")
          .withArgs(caller.address);
      }
      expect(await sys.market.pausedUntil()).to.equal(until);
    });
  });

  describe("the guardian's limits", () => {
    it("cannot call any owner function", async () => {
      const { sys, guardian } = await networkHelpers.loadFixture(guarded);
      const { market, usd } = sys;
      const calls = [
        () => market.connect(guardian).setParameter(MAX_PAUSE_DURATION, 30n * DAY),
        () => market.connect(guardian).setParameter(0, 0),
        () => market.connect(guardian).withdrawTreasury(usd, guardian.address, 0n),
        () => market.connect(guardian).setPaymentToken(usd, false),
        () => market.connect(guardian).setRandomnessSource(ethers.ZeroAddress),
        () => market.connect(guardian).setCommons(guardian.address),
        () => market.connect(guardian).setGuardian(ethers.ZeroAddress),
      ];
      for (const call of calls) {
        await expect(call()).to.be.revertedWithCustomError(market, "OwnableUnauthorizedAccount").withArgs(guardian.address);
      }
      expect(await market.parameter(MAX_PAUSE_DURATION)).to.equal(DEFAULT_MAX_PAUSE);
      expect(await market.isPaymentToken(usd)).to.equal(true);
    });

    it("pauses for at most maxPauseDuration, which the owner sets within [1 hour, 30 days]", async () => {
      const { sys, guardian } = await networkHelpers.loadFixture(guarded);
      const { market } = sys;
      const [min, max] = await market.parameterBounds(MAX_PAUSE_DURATION);
      expect([min, max]).to.deep.equal([HOUR, 30n * DAY]);
      for (const value of [HOUR - 1n, 30n * DAY + 1n, 0n]) {
        await expect(market.setParameter(MAX_PAUSE_DURATION, value))
          .to.be.revertedWithCustomError(market, "JobMarketParameterOutOfBounds")
          .withArgs(MAX_PAUSE_DURATION, value, HOUR, 30n * DAY);
      }
      await expect(market.setParameter(MAX_PAUSE_DURATION, HOUR))
        .to.emit(market, "ParameterSet")
        .withArgs(MAX_PAUSE_DURATION, DEFAULT_MAX_PAUSE, HOUR);
      expect(await market.parameter(MAX_PAUSE_DURATION)).to.equal(HOUR);
      await expect(market.connect(guardian).pause(HOUR + 1n))
        .to.be.revertedWithCustomError(market, "JobMarketPauseTooLong")
        .withArgs(HOUR + 1n, HOUR);

      await expect(market.setParameter(MAX_PAUSE_DURATION, 30n * DAY))
        .to.emit(market, "ParameterSet")
        .withArgs(MAX_PAUSE_DURATION, HOUR, 30n * DAY);
      const until = await pauseAt(sys, guardian, 30n * DAY);
      expect(await market.pausedUntil()).to.equal(until);
    });
  });

  describe("under the DAO", () => {
    it("governance appoints a guardian, which pauses; a later proposal removes it and lifts the pause", async () => {
      const dao = await networkHelpers.loadFixture(daoFixture);
      const { market, registry, deployer } = dao;
      const [, guardian, consumer] = await ethers.getSigners();
      const sys = dao as unknown as System; // the kit's helpers need only ethers, the market and the tokens
      expect(await market.guardian()).to.equal(ethers.ZeroAddress);

      // A proposal appoints the guardian; nobody else could.
      await expect(market.connect(deployer).setGuardian(guardian.address))
        .to.be.revertedWithCustomError(market, "OwnableUnauthorizedAccount")
        .withArgs(deployer.address);
      const appoint = market.interface.encodeFunctionData("setGuardian", [guardian.address]);
      const appointed = await passProposal(dao, deployer, [{ target: market, data: appoint }], "Appoint a guardian");
      expect(await dao.governor.state(appointed)).to.equal(ProposalState.Executed);
      expect(await market.guardian()).to.equal(guardian.address);
      const sets = await market.queryFilter(market.filters.GuardianSet());
      expect(sets.at(-1)!.args).to.deep.equal([ethers.ZeroAddress, guardian.address]); // the first: none, at deployment

      // The guardian pauses (the devnet's max pause: the 3-day default) and new jobs stop.
      const until = await pauseAt(sys, guardian, DAY);
      expect(await registry.claimsPausedUntil()).to.equal(until);
      await dao.usd.mint(consumer.address, 1_000n * USD);
      await dao.usd.connect(consumer).approve(market, 1_000n * USD);
      await expect(market.connect(consumer).createJob(await jobRequest(sys), ""))
        .to.be.revertedWithCustomError(market, "JobMarketPaused")
        .withArgs(until);

      // A second proposal removes the guardian and lifts its pause, in one batch.
      const remove = market.interface.encodeFunctionData("setGuardian", [ethers.ZeroAddress]);
      const lift = market.interface.encodeFunctionData("unpause");
      await passProposal(
        dao,
        deployer,
        [
          { target: market, data: remove },
          { target: market, data: lift },
        ],
        "Remove the guardian and lift its pause",
      );
      const timelock = await dao.timelock.getAddress();
      const [unpaused] = await market.queryFilter(market.filters.Unpaused());
      expect(unpaused.args).to.deep.equal([timelock]);
      expect(await market.guardian()).to.equal(ethers.ZeroAddress);
      expect(await market.pausedUntil()).to.be.lessThan(until);
      expect(await registry.claimsPausedUntil()).to.equal(0n);
      await expect(market.connect(consumer).createJob(await jobRequest(sys), "")).to.emit(market, "JobCreated");

      // The former guardian has no power left.
      await time.increase(DEFAULT_MAX_PAUSE); // past any cooldown
      await expect(market.connect(guardian).pause(HOUR))
        .to.be.revertedWithCustomError(market, "JobMarketNotGuardian")
        .withArgs(guardian.address);
      await expect(market.connect(guardian).unpause())
        .to.be.revertedWithCustomError(market, "JobMarketNotGuardian")
        .withArgs(guardian.address);
    });
  });
});

async function marketWithProvidersFixture() {
  return marketWithProviders(ethers);
}

async function daoFixture() {
  return deployDao(connection);
}
