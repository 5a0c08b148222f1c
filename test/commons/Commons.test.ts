/**
 * The compute commons on the deployed system (ignition/modules/Devnet.ts, owned by the timelock):
 * programmes funded from the treasury, grantees and their allowances, commons jobs and the providers'
 * commons discount, refunds back to the programme, and budget conservation.
 */
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { expect } from "chai";
import type { ContractTransactionReceipt } from "ethers";
import { network } from "hardhat";
import { hashJob, jobFromResult, packRequirements, packVerification, unpackRequirements } from "../../sdk/src/params.js";
import { claimAudit, Result } from "../helpers/audits.js";
import { expectConservation } from "../helpers/conservation.js";
import { deployDao, passProposal, timelockSigner, type Dao } from "../helpers/dao.js";
import type { MeshToken, TestUSD } from "../../types/ethers-contracts/index.js";
import {
  DAY,
  DEFAULT_REQUIREMENTS,
  Eligibility,
  HOUR,
  JobState,
  MESH,
  USD,
  createJob,
  fund,
  jobRequest,
  makeReveal,
  onboardProvider,
  type Job,
  type JobRequest,
  type System,
} from "../helpers/system.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

/* Devnet terms (scripts/lib/devnetParameters.ts and the module's defaults). */
const FEE_BPS = 250n;
const AUDIT_POOL_SHARE_BPS = 4_000n;
const COLLATERAL_BPS = 20_000n;
const TIMEOUT_SLASH_BPS = 2_000n;
const FRAUD_TREASURY_BPS = 2_000n; // 10000 - fraudConsumerBps 3000 - fraudAuditorBps 5000
const CHALLENGE_WINDOW = 120n;
const REVEAL_WINDOW = 300n;

/** The job whose fee funds the treasury: settled after its (probation) audit. */
const BIG_PRICE = 100_000n * USD;
const BIG_FEE = (BIG_PRICE * FEE_BPS) / 10_000n; // 2,500 tUSD
const TREASURY = BIG_FEE - (BIG_FEE * AUDIT_POOL_SHARE_BPS) / 10_000n; // 1,500 tUSD

const NAME = "Students 2027";
const BUDGET = 1_000n * USD;
const ALLOWANCE = 300n * USD;
/** A commons job: 10 work units at 10 tUSD. */
const PRICE = 100n * USD;
const UNITS = 10n;
const COLLATERAL = (PRICE * COLLATERAL_BPS) / 10_000n;
const SPEC = "ipfs://commons-spec";
const CHUNKS = 16;
const AUDIT_CHUNKS = 4;

const COMMONS_BIT = 1n << 80n;

type Token = MeshToken | TestUSD;

interface World extends Dao {
  sys: System;
  gov: HardhatEthersSigner;
  consumer: HardhatEthersSigner;
  /** Settles the treasury-funding job (usual price 1 tUSD per unit). */
  worker: HardhatEthersSigner;
  /** Audits it. */
  auditor: HardhatEthersSigner;
  /** Usual price 20 tUSD per unit; the commons-discount tests give it a commons price. */
  discounter: HardhatEthersSigner;
  /** Usual price 20 tUSD per unit, never a commons price. */
  regular: HardhatEthersSigner;
  grantee: HardhatEthersSigner;
  grantee2: HardhatEthersSigner;
  outsider: HardhatEthersSigner;
}

interface Funded extends World {
  start: bigint;
  end: bigint;
}

/* FIXTURES */

/** The deployed system, four providers, a funded consumer, the timelock as a signer. */
async function deployedWorld(): Promise<World> {
  const dao = await deployDao(connection);
  const [, consumer, worker, auditor, discounter, regular, grantee, grantee2, outsider] = await ethers.getSigners();
  const sys = {
    ...dao,
    consumer,
    providers: [worker, auditor, discounter, regular],
    others: [outsider],
  } as unknown as System;
  await onboardProvider(sys, worker, { pricePerUnit: 1n * USD });
  await onboardProvider(sys, auditor, { pricePerUnit: 1n * USD });
  await onboardProvider(sys, discounter, { pricePerUnit: 20n * USD });
  await onboardProvider(sys, regular, { pricePerUnit: 20n * USD });
  for (const p of [discounter, regular]) await fund(sys, p, 10_000n * USD);
  await fund(sys, consumer, 10_000n * USD);
  const gov = await timelockSigner(dao);
  return { ...dao, sys, gov, consumer, worker, auditor, discounter, regular, grantee, grantee2, outsider };
}

/** Fees accrued to the treasury by a settled job (audited: the worker is on probation), swept. */
async function withTreasury(): Promise<World> {
  const w = await deployedWorld();
  const { market, usd, worker, auditor, consumer, sys } = w;
  await fund(sys, consumer, BIG_PRICE);
  await fund(sys, worker, (BIG_PRICE * COLLATERAL_BPS) / 10_000n);
  await fund(sys, auditor, BIG_PRICE); // auditCollateralBps 10000
  const { jobId, job } = await createJob(sys, consumer, {
    price: BIG_PRICE,
    workUnits: UNITS,
    verification: packVerification({ chunks: CHUNKS, auditChunks: AUDIT_CHUNKS, auditBps: 0 }),
  });
  await market.connect(worker).claim(job);
  const result = Result.of(jobId, worker.address, CHUNKS);
  await market.connect(worker).commit(jobId, result.commitment);
  await networkHelpers.mine(2); // the draw uses the hash of the block after the commit
  const { sample } = await claimAudit(sys, job, auditor);
  await market
    .connect(worker)
    .revealResult(job, worker.address, result.tree.root, result.salt, "ipfs://out", result.leavesAt(sample), result.proofsAt(sample));
  expect(await market.jobState(jobId)).to.equal(JobState.Settled);
  await market.sweepFees(usd, [worker.address]);
  return w;
}

/** The proposal that funds a programme from the treasury: withdraw into the commons, create it. */
async function fundingActions(w: World, budget: bigint, start: bigint, end: bigint) {
  const commons = await w.commons.getAddress();
  return [
    { target: w.market, data: w.market.interface.encodeFunctionData("withdrawTreasury", [await w.usd.getAddress(), commons, budget]) },
    { target: w.commons, data: w.commons.interface.encodeFunctionData("createProgramme", [NAME, await w.usd.getAddress(), budget, start, end]) },
  ];
}

/** Programme 1 ("Students 2027", 1,000 tUSD for 30 days) passed by governance; `grantee` approved for 300. */
async function withProgramme(): Promise<Funded> {
  const w = await withTreasury();
  const start = BigInt(await networkHelpers.time.latest());
  const end = start + 30n * DAY;
  await passProposal(w, w.deployer, await fundingActions(w, BUDGET, start, end), `Compute commons: ${NAME}`);
  await w.commons.connect(w.gov).approveGrantee(1n, w.grantee.address, ALLOWANCE);
  return { ...w, start, end };
}

/* HELPERS */

/** The market's JobCreated event in a receipt (the commons' receipts hold the market's logs too). */
async function createdJob(w: World, receipt: ContractTransactionReceipt | null): Promise<{ jobId: string; job: Job }> {
  const market = (await w.market.getAddress()).toLowerCase();
  for (const log of receipt!.logs) {
    if (log.address.toLowerCase() !== market) continue;
    const parsed = w.market.interface.parseLog(log);
    if (parsed?.name === "JobCreated") return { jobId: parsed.args.jobId, job: jobFromResult(parsed.args.job) };
  }
  throw new Error("no JobCreated event");
}

/** A grantee's commons job in a programme (100 tUSD for 10 units by default). */
async function commonsJob(
  w: World,
  grantee: HardhatEthersSigner,
  overrides: Partial<JobRequest> = {},
  programmeId = 1n,
): Promise<{ jobId: string; job: Job; request: JobRequest }> {
  const request = await jobRequest(w.sys, { price: PRICE, workUnits: UNITS, ...overrides });
  const tx = await w.commons.connect(grantee).createJob(programmeId, request, SPEC);
  return { ...(await createdJob(w, await tx.wait())), request };
}

/** A commons job the worker settles after its (probation) audit by the auditor. */
async function settledCommonsJob(w: World): Promise<{ jobId: string; job: Job }> {
  const { market, worker, auditor, sys } = w;
  const { jobId, job } = await commonsJob(w, w.grantee, {
    verification: packVerification({ chunks: CHUNKS, auditChunks: AUDIT_CHUNKS, auditBps: 0 }),
  });
  await market.connect(worker).claim(job);
  const result = Result.of(jobId, worker.address, CHUNKS);
  await market.connect(worker).commit(jobId, result.commitment);
  await networkHelpers.mine(2);
  const { sample } = await claimAudit(sys, job, auditor);
  await market
    .connect(worker)
    .revealResult(job, worker.address, result.tree.root, result.salt, "ipfs://out", result.leavesAt(sample), result.proofsAt(sample));
  expect(await market.jobState(jobId)).to.equal(JobState.Settled);
  return { jobId, job };
}

/** A second programme (withdrawn from the treasury by the timelock), `grantee` approved for all of it. */
async function secondProgramme(w: World, budget: bigint, start: bigint, end: bigint): Promise<bigint> {
  await w.market.connect(w.gov).withdrawTreasury(w.usd, w.commons, budget);
  await w.commons.connect(w.gov).createProgramme("Civic projects", w.usd, budget, start, end);
  const id = await w.commons.programmeCount();
  await w.commons.connect(w.gov).approveGrantee(id, w.grantee.address, budget);
  return id;
}

async function latest(): Promise<bigint> {
  return BigInt(await networkHelpers.time.latest());
}

/** The commons' holding of `token`: its internal market balance plus its wallet. */
async function holding(w: World, token: Token): Promise<bigint> {
  const commons = await w.commons.getAddress();
  return (await w.market.balanceOf(token, commons)) + (await token.balanceOf(commons));
}

/**
 * Budget conservation for `token`: the holding covers the programmes' remaining budgets plus what is
 * unallocated, and `allocated` is the sum over the token's programmes of budget - spent.
 */
async function expectBudgetConserved(w: World, token: Token = w.usd) {
  const address = await token.getAddress();
  const held = await holding(w, token);
  const allocated = await w.commons.allocated(address);
  expect(held).to.be.gte(allocated + (await w.commons.unallocated(address)), "holding < allocated + unallocated");
  let remaining = 0n;
  for (let id = 1n; id <= (await w.commons.programmeCount()); id++) {
    const p = await w.commons.programme(id);
    if (p.token === address) remaining += p.budget - p.spent;
  }
  expect(remaining).to.equal(allocated, "sum of (budget - spent) != allocated");
}

async function expectProgramme(w: World, id: bigint, fields: { budget: bigint; spent: bigint; jobs: bigint }) {
  const p = await w.commons.programme(id);
  expect([p.budget, p.spent, p.jobs]).to.deep.equal([fields.budget, fields.spent, fields.jobs]);
}

describe("ComputeCommons", () => {
  describe("programmes", () => {
    it("funds a programme from the treasury through one governance proposal", async () => {
      const w = await networkHelpers.loadFixture(withTreasury);
      const { market, usd, commons, governor } = w;
      const commonsAddress = await commons.getAddress();
      expect(await commons.owner()).to.equal(await w.timelock.getAddress());
      expect(await market.treasuryAccrual(usd)).to.equal(TREASURY);
      expect(await usd.balanceOf(commonsAddress)).to.equal(0n);
      const marketHeld = await usd.balanceOf(market);

      const start = (await latest()) + HOUR;
      const end = start + 30n * DAY;
      const id = await passProposal(w, w.deployer, await fundingActions(w, BUDGET, start, end), `Compute commons: ${NAME}`);

      // The proposal's execution is the last transaction passProposal sent.
      const block = await ethers.provider.getBlock("latest");
      const execution = block!.transactions[0];
      await expect(execution).to.emit(governor, "ProposalExecuted").withArgs(id);
      await expect(execution).to.emit(market, "TreasuryWithdrawn").withArgs(await usd.getAddress(), commonsAddress, BUDGET);
      await expect(execution)
        .to.emit(commons, "ProgrammeCreated")
        .withArgs(1n, NAME, await usd.getAddress(), BUDGET, start, end);

      expect(await market.treasuryAccrual(usd)).to.equal(TREASURY - BUDGET);
      expect(await usd.balanceOf(commonsAddress)).to.equal(BUDGET);
      expect(await usd.balanceOf(market)).to.equal(marketHeld - BUDGET);
      expect(await usd.allowance(commonsAddress, market)).to.equal(ethers.MaxUint256);
      expect(await commons.programmeCount()).to.equal(1n);
      const p = await commons.programme(1n);
      expect(p.name).to.equal(NAME);
      expect(p.token).to.equal(await usd.getAddress());
      expect(p.budget).to.equal(BUDGET);
      expect(p.spent).to.equal(0n);
      expect(p.start).to.equal(start);
      expect(p.end).to.equal(end);
      expect(p.jobs).to.equal(0n);
      expect(await commons.allocated(usd)).to.equal(BUDGET);
      expect(await commons.unallocated(usd)).to.equal(0n);
      await expectBudgetConserved(w);
    });

    it("approves grantees with an allowance, and revokes one with zero", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, gov, grantee2 } = w;
      expect(await commons.allowanceOf(1n, w.grantee.address)).to.equal(ALLOWANCE);
      expect(await commons.allowanceOf(1n, grantee2.address)).to.equal(0n);
      await expect(commons.connect(gov).approveGrantee(1n, grantee2.address, 50n * USD))
        .to.emit(commons, "GranteeApproved")
        .withArgs(1n, grantee2.address, 50n * USD);
      expect(await commons.allowanceOf(1n, grantee2.address)).to.equal(50n * USD);
      await commonsJob(w, grantee2, { price: 50n * USD });

      await commons.connect(gov).approveGrantee(1n, grantee2.address, 200n * USD);
      await expect(commons.connect(gov).approveGrantee(1n, grantee2.address, 0n))
        .to.emit(commons, "GranteeApproved")
        .withArgs(1n, grantee2.address, 0n);
      await expect(commons.connect(grantee2).createJob(1n, await jobRequest(w.sys, { price: PRICE, workUnits: UNITS }), SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsAllowanceExceeded")
        .withArgs(1n, grantee2.address, 0n, PRICE);
      await expectBudgetConserved(w);
    });

    it("adds unallocated funds to a programme's budget", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, gov } = w;
      await market.connect(gov).withdrawTreasury(usd, commons, 300n * USD);
      expect(await commons.unallocated(usd)).to.equal(300n * USD);
      await expect(commons.connect(gov).fundProgramme(1n, 300n * USD))
        .to.emit(commons, "ProgrammeFunded")
        .withArgs(1n, 300n * USD, BUDGET + 300n * USD);
      await expectProgramme(w, 1n, { budget: BUDGET + 300n * USD, spent: 0n, jobs: 0n });
      expect(await commons.allocated(usd)).to.equal(BUDGET + 300n * USD);
      expect(await commons.unallocated(usd)).to.equal(0n);
      await expectBudgetConserved(w);
    });
  });

  describe("commons jobs", () => {
    it("posts a grantee's job as the commons, marked as a commons job and paid from the programme", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, grantee } = w;
      const commonsAddress = await commons.getAddress();
      const request = await jobRequest(w.sys, { price: PRICE, workUnits: UNITS, req: { region: "DE", minVramGB: 24 } });
      const job: Job = {
        consumer: commonsAddress,
        request: { ...request, requirements: BigInt(request.requirements) | COMMONS_BIT },
        terms: await market.currentTerms(),
      };
      const jobId = hashJob(job);
      const marketHeld = await usd.balanceOf(market);

      const tx = commons.connect(grantee).createJob(1n, request, SPEC);
      await expect(tx).to.emit(commons, "CommonsJobCreated").withArgs(1n, grantee.address, jobId, PRICE);
      await expect(tx)
        .to.emit(market, "JobCreated")
        .withArgs(jobId, commonsAddress, (j: any) => hashJob(jobFromResult(j)) === jobId, SPEC);

      // The commons is the consumer; the requirements are the grantee's plus the commons flag.
      const { job: created } = await createdJob(w, await (await tx).wait());
      expect(created).to.deep.equal(job);
      expect(unpackRequirements(created.request.requirements)).to.deep.equal({
        ...DEFAULT_REQUIREMENTS,
        region: "DE",
        minVramGB: 24,
        commons: true,
      });
      expect(await market.jobState(jobId)).to.equal(JobState.Open);
      const [programmeId, jobGrantee] = await commons.jobOf(jobId);
      expect([programmeId, jobGrantee]).to.deep.equal([1n, grantee.address]);

      // Paid from the programme and the grantee's allowance, never by the grantee.
      expect(await commons.allowanceOf(1n, grantee.address)).to.equal(ALLOWANCE - PRICE);
      await expectProgramme(w, 1n, { budget: BUDGET, spent: PRICE, jobs: 1n });
      expect(await commons.allocated(usd)).to.equal(BUDGET - PRICE);
      expect(await commons.unallocated(usd)).to.equal(0n);
      expect(await usd.balanceOf(commonsAddress)).to.equal(BUDGET - PRICE);
      expect(await usd.balanceOf(market)).to.equal(marketHeld + PRICE);
      expect(await usd.balanceOf(grantee.address)).to.equal(0n);
      expect(await market.balanceOf(usd, grantee.address)).to.equal(0n);
      await expectBudgetConserved(w);
      await expectConservation(w.sys, [job], [commonsAddress]);
    });

    it("lets providers' commons prices apply: a discounted provider takes a commons job it would refuse at its usual price", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, registry, usd, gov, grantee, discounter, regular } = w;
      await commons.connect(gov).approveGrantee(1n, grantee.address, BUDGET);
      const key = await registry.commonsPriceKey(usd);
      const expectedKey = ethers.getAddress(
        ethers.dataSlice(ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["string", "address"], ["meshwork.commons", await usd.getAddress()])), 12),
      );
      expect(key).to.equal(expectedKey);
      await expect(registry.connect(discounter).postPrice(key, 5n * USD))
        .to.emit(registry, "PricePosted")
        .withArgs(discounter.address, key, 5n * USD);
      expect(await registry.postedPrice(discounter.address, usd)).to.equal(20n * USD);
      expect(await registry.postedPrice(discounter.address, key)).to.equal(5n * USD);

      // 10 tUSD per unit: above the discounter's commons price (5), below both usual prices (20).
      const { jobId, job } = await commonsJob(w, grantee);
      const normal = await createJob(w.sys, w.consumer, { price: PRICE, workUnits: UNITS });
      const [eligibility] = await registry.checkEligibility(discounter.address, usd, job.request.requirements, PRICE, UNITS, true);
      expect(eligibility).to.equal(Eligibility.Eligible);
      await expect(market.connect(discounter).claim(normal.job))
        .to.be.revertedWithCustomError(market, "JobMarketIneligible")
        .withArgs(normal.jobId, discounter.address, Eligibility.PriceBelowPosted);
      // Without a commons price, a provider's usual price applies to commons jobs too.
      await expect(market.connect(regular).claim(job))
        .to.be.revertedWithCustomError(market, "JobMarketIneligible")
        .withArgs(jobId, regular.address, Eligibility.PriceBelowPosted);
      await expect(market.connect(discounter).claim(job)).to.emit(market, "JobClaimed").withArgs(jobId, discounter.address);
      expect(await market.balanceOf(usd, discounter.address)).to.equal(10_000n * USD - COLLATERAL);

      // Below the commons price (4 tUSD per unit): refused.
      const cheap = await commonsJob(w, grantee, { price: 40n * USD });
      await expect(market.connect(discounter).claim(cheap.job))
        .to.be.revertedWithCustomError(market, "JobMarketIneligible")
        .withArgs(cheap.jobId, discounter.address, Eligibility.PriceBelowPosted);
      // A commons job at the usual price (20 per unit): the provider without a commons price takes it.
      const fair = await commonsJob(w, grantee, { price: 200n * USD });
      await expect(market.connect(regular).claim(fair.job)).to.emit(market, "JobClaimed").withArgs(fair.jobId, regular.address);

      // Withdrawing the commons price (0) brings the usual price back.
      await registry.connect(discounter).postPrice(key, 0n);
      const later = await commonsJob(w, grantee);
      await expect(market.connect(discounter).claim(later.job))
        .to.be.revertedWithCustomError(market, "JobMarketIneligible")
        .withArgs(later.jobId, discounter.address, Eligibility.PriceBelowPosted);
      await expectBudgetConserved(w);
    });

    it("lets the grantee cancel an unclaimed job: the price returns to the programme and the allowance", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, grantee } = w;
      const commonsAddress = await commons.getAddress();
      const { jobId, job } = await commonsJob(w, grantee);
      expect(await commons.allocated(usd)).to.equal(BUDGET - PRICE);

      const tx = commons.connect(grantee).cancelJob(job);
      await expect(tx).to.emit(market, "JobCancelled").withArgs(jobId, commonsAddress, PRICE);
      await expect(tx).to.emit(commons, "CommonsJobCancelled").withArgs(1n, jobId);
      await expect(tx).to.emit(commons, "CommonsJobClosed").withArgs(1n, jobId, PRICE);

      expect(await market.jobState(jobId)).to.equal(JobState.Cancelled);
      expect(await commons.allowanceOf(1n, grantee.address)).to.equal(ALLOWANCE);
      await expectProgramme(w, 1n, { budget: BUDGET, spent: 0n, jobs: 1n });
      expect(await commons.allocated(usd)).to.equal(BUDGET);
      expect(await commons.unallocated(usd)).to.equal(0n);
      // The refund is in the commons' market balance, and the next job is paid from it first.
      expect(await market.balanceOf(usd, commonsAddress)).to.equal(PRICE);
      expect(await usd.balanceOf(commonsAddress)).to.equal(BUDGET - PRICE);
      await commonsJob(w, grantee);
      expect(await market.balanceOf(usd, commonsAddress)).to.equal(0n);
      expect(await usd.balanceOf(commonsAddress)).to.equal(BUDGET - PRICE);
      await expectBudgetConserved(w);
    });

    it("cannot cancel a claimed job", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { jobId, job } = await commonsJob(w, w.grantee);
      await w.market.connect(w.worker).claim(job);
      await expect(w.commons.connect(w.grantee).cancelJob(job))
        .to.be.revertedWithCustomError(w.market, "JobMarketUnexpectedState")
        .withArgs(jobId, JobState.Claimed, JobState.Open);
    });

    it("returns a refunded job's price to the programme once a claimant timed out past claimBy (anyone may call)", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, grantee, worker, outsider } = w;
      const commonsAddress = await commons.getAddress();
      const { jobId, job } = await commonsJob(w, grantee, { claimBy: (await latest()) + 600n });
      await market.connect(worker).claim(job);
      await networkHelpers.time.increase(HOUR + 1n); // past the commit deadline and claimBy

      const slash = (COLLATERAL * TIMEOUT_SLASH_BPS) / 10_000n;
      const timeout = market.connect(outsider).enforceDeadline(job);
      await expect(timeout).to.emit(market, "JobTimedOut").withArgs(jobId, worker.address, slash, COLLATERAL - slash);
      await expect(timeout).to.emit(market, "JobRefunded").withArgs(jobId, commonsAddress, PRICE);
      expect(await market.jobState(jobId)).to.equal(JobState.Refunded);
      expect(await market.balanceOf(usd, commonsAddress)).to.equal(PRICE + slash);
      await expectBudgetConserved(w);

      await expect(commons.connect(outsider).closeJob(job)).to.emit(commons, "CommonsJobClosed").withArgs(1n, jobId, PRICE);
      expect(await commons.allowanceOf(1n, grantee.address)).to.equal(ALLOWANCE);
      await expectProgramme(w, 1n, { budget: BUDGET, spent: 0n, jobs: 1n });
      expect(await commons.allocated(usd)).to.equal(BUDGET);
      // The claimant's timeout penalty is the commons' to allocate.
      expect(await commons.unallocated(usd)).to.equal(slash);
      await expectBudgetConserved(w);
      await expectConservation(w.sys, [job], [commonsAddress]);
    });

    it("returns the price of a commons job whose provider never revealed (slashed)", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, grantee, worker } = w;
      const { jobId, job } = await commonsJob(w, grantee);
      await market.connect(worker).claim(job);
      await market.connect(worker).commit(jobId, makeReveal(ethers, jobId, worker.address).commitment);
      await networkHelpers.time.increase(CHALLENGE_WINDOW + REVEAL_WINDOW + 1n);
      await market.enforceDeadline(job);
      expect(await market.jobState(jobId)).to.equal(JobState.Slashed);
      const toCommons = PRICE + COLLATERAL - (COLLATERAL * FRAUD_TREASURY_BPS) / 10_000n;
      expect(await market.balanceOf(usd, await commons.getAddress())).to.equal(toCommons);

      await expect(commons.closeJob(job)).to.emit(commons, "CommonsJobClosed").withArgs(1n, jobId, PRICE);
      expect(await commons.allocated(usd)).to.equal(BUDGET);
      expect(await commons.unallocated(usd)).to.equal(toCommons - PRICE);
      await expectBudgetConserved(w);
    });

    it("sends unallocated funds where governance decides, from its wallet first and then its market balance", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, gov, grantee, worker, outsider } = w;
      const commonsAddress = await commons.getAddress();
      await commons.connect(gov).approveGrantee(1n, grantee.address, BUDGET);
      // A job that times out leaves a penalty; another spends the rest of the wallet.
      const { job } = await commonsJob(w, grantee, { claimBy: (await latest()) + 600n });
      const big = await commonsJob(w, grantee, { price: BUDGET - PRICE });
      expect(await usd.balanceOf(commonsAddress)).to.equal(0n);
      await market.connect(worker).claim(job);
      await networkHelpers.time.increase(HOUR + 1n);
      await market.enforceDeadline(job);
      await commons.closeJob(job);
      const slash = (COLLATERAL * TIMEOUT_SLASH_BPS) / 10_000n;
      await market.connect(gov).withdrawTreasury(usd, commons, 10n * USD); // 10 in the wallet
      // The timeout penalty counts once it cannot be the open job's refund: here, once that job closes.
      expect(await commons.unallocated(usd)).to.equal(10n * USD);
      await commons.connect(grantee).cancelJob(big.job);
      expect(await commons.unallocated(usd)).to.equal(slash + 10n * USD);

      const amount = slash + 10n * USD;
      const tx = commons.connect(gov).withdrawUnallocated(usd, outsider.address, amount);
      await expect(tx).to.emit(commons, "UnallocatedWithdrawn").withArgs(await usd.getAddress(), outsider.address, amount);
      await expect(tx).to.emit(market, "Withdrawn").withArgs(await usd.getAddress(), commonsAddress, commonsAddress, slash);
      expect(await usd.balanceOf(outsider.address)).to.equal(amount);
      expect(await usd.balanceOf(commonsAddress)).to.equal(0n);
      expect(await commons.unallocated(usd)).to.equal(0n);
      expect(await commons.allocated(usd)).to.equal(BUDGET); // both jobs' prices, back in the programme
      expect(await market.balanceOf(usd, commonsAddress)).to.equal(BUDGET);
      await expectBudgetConserved(w);
    });

    it("never hands out a refunded price before it returns to its programme", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, gov, grantee, outsider } = w;
      const { job } = await commonsJob(w, grantee, { claimBy: (await latest()) + 600n });
      await networkHelpers.time.increase(601n);
      await market.enforceDeadline(job); // refunded into the commons' market balance, not yet closed
      expect(await holding(w, usd)).to.equal(BUDGET);
      expect(await commons.allocated(usd)).to.equal(BUDGET - PRICE);
      expect(await commons.outstanding(usd)).to.equal(PRICE);
      expect(await commons.unallocated(usd)).to.equal(0n);
      await expect(commons.connect(gov).withdrawUnallocated(usd, outsider.address, PRICE))
        .to.be.revertedWithCustomError(commons, "CommonsInsufficientFunds")
        .withArgs(await usd.getAddress(), 0n, PRICE);
      await expect(commons.connect(gov).fundProgramme(1n, PRICE))
        .to.be.revertedWithCustomError(commons, "CommonsInsufficientFunds")
        .withArgs(await usd.getAddress(), 0n, PRICE);

      // A new job may spend the refunded tokens; closing the old one still balances the books.
      await commonsJob(w, grantee);
      await commons.closeJob(job);
      expect(await commons.allocated(usd)).to.equal(BUDGET - PRICE);
      expect(await commons.outstanding(usd)).to.equal(PRICE);
      expect(await holding(w, usd)).to.equal(BUDGET - PRICE);
      expect(await commons.unallocated(usd)).to.equal(0n);
      await expectBudgetConserved(w);
    });

    it("keeps free funds that arrive while jobs are open exactly free", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, gov, grantee } = w;
      await commons.connect(gov).approveGrantee(1n, grantee.address, BUDGET);
      await commonsJob(w, grantee, { price: BUDGET }); // the whole budget escrowed
      expect(await holding(w, usd)).to.equal(0n);
      await market.connect(gov).withdrawTreasury(usd, commons, 500n * USD);
      expect(await commons.unallocated(usd)).to.equal(500n * USD);
      const now = await latest();
      await expect(commons.connect(gov).createProgramme("Second", usd, 500n * USD, now, now + DAY))
        .to.emit(commons, "ProgrammeCreated");
      expect(await commons.unallocated(usd)).to.equal(0n);
      expect(await commons.allocated(usd)).to.equal(500n * USD);
      await expectBudgetConserved(w);
    });

    it("closes a settled commons job: its price stays spent and stops being outstanding", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, usd, grantee, outsider } = w;
      const settled = await settledCommonsJob(w);
      expect(await commons.outstanding(usd)).to.equal(PRICE);
      await expect(commons.connect(outsider).closeJob(settled.job))
        .to.emit(commons, "CommonsJobClosed")
        .withArgs(1n, settled.jobId, 0n);
      expect(await commons.outstanding(usd)).to.equal(0n);
      await expectProgramme(w, 1n, { budget: BUDGET, spent: PRICE, jobs: 1n });
      expect(await commons.allowanceOf(1n, grantee.address)).to.equal(ALLOWANCE - PRICE);
      await expect(commons.closeJob(settled.job))
        .to.be.revertedWithCustomError(commons, "CommonsJobAlreadyClosed")
        .withArgs(settled.jobId);
      await expectBudgetConserved(w);
    });
  });

  describe("errors", () => {
    it("rejects an unknown programme", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, gov, grantee } = w;
      const request = await jobRequest(w.sys, { price: PRICE, workUnits: UNITS });
      for (const id of [0n, 2n]) {
        await expect(commons.connect(grantee).createJob(id, request, SPEC))
          .to.be.revertedWithCustomError(commons, "CommonsUnknownProgramme")
          .withArgs(id);
        await expect(commons.connect(gov).fundProgramme(id, 0n)).to.be.revertedWithCustomError(commons, "CommonsUnknownProgramme").withArgs(id);
        await expect(commons.connect(gov).approveGrantee(id, grantee.address, 1n))
          .to.be.revertedWithCustomError(commons, "CommonsUnknownProgramme")
          .withArgs(id);
        await expect(commons.programme(id)).to.be.revertedWithCustomError(commons, "CommonsUnknownProgramme").withArgs(id);
      }
    });

    it("takes jobs only within the programme's period, both ends included", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, grantee } = w;
      const start = (await latest()) + DAY;
      const end = start + 7n * DAY;
      const id = await secondProgramme(w, 300n * USD, start, end);
      const claimBy = end + DAY;
      await expect(commons.connect(grantee).createJob(id, await jobRequest(w.sys, { price: PRICE, workUnits: UNITS, claimBy }), SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsOutsidePeriod")
        .withArgs(id, start, end);
      await networkHelpers.time.setNextBlockTimestamp(start);
      await commonsJob(w, grantee, { claimBy }, id);
      await networkHelpers.time.setNextBlockTimestamp(end);
      await commonsJob(w, grantee, { claimBy }, id);
      await expect(commons.connect(grantee).createJob(id, await jobRequest(w.sys, { price: PRICE, workUnits: UNITS, claimBy }), SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsOutsidePeriod")
        .withArgs(id, start, end);
      await expectProgramme(w, id, { budget: 300n * USD, spent: 2n * PRICE, jobs: 2n });
      await expectBudgetConserved(w);
    });

    it("rejects a job beyond the grantee's remaining allowance", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, grantee, grantee2 } = w;
      await commonsJob(w, grantee);
      await commonsJob(w, grantee);
      const request = await jobRequest(w.sys, { price: 2n * PRICE, workUnits: UNITS });
      await expect(commons.connect(grantee).createJob(1n, request, SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsAllowanceExceeded")
        .withArgs(1n, grantee.address, ALLOWANCE - 2n * PRICE, 2n * PRICE);
      await commonsJob(w, grantee);
      await expect(commons.connect(grantee).createJob(1n, await jobRequest(w.sys, { price: 1n, workUnits: 1n }), SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsAllowanceExceeded")
        .withArgs(1n, grantee.address, 0n, 1n);
      // Someone never approved has no allowance.
      await expect(commons.connect(grantee2).createJob(1n, request, SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsAllowanceExceeded")
        .withArgs(1n, grantee2.address, 0n, 2n * PRICE);
      await expectProgramme(w, 1n, { budget: BUDGET, spent: ALLOWANCE, jobs: 3n });
      await expectBudgetConserved(w);
    });

    it("rejects a job beyond the programme's remaining budget", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, gov, grantee2 } = w;
      await commons.connect(gov).approveGrantee(1n, grantee2.address, 5_000n * USD);
      await commonsJob(w, grantee2, { price: 600n * USD });
      await expect(commons.connect(grantee2).createJob(1n, await jobRequest(w.sys, { price: 600n * USD, workUnits: UNITS }), SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsBudgetExceeded")
        .withArgs(1n, 400n * USD, 600n * USD);
      await commonsJob(w, grantee2, { price: 400n * USD });
      await expect(commons.connect(grantee2).createJob(1n, await jobRequest(w.sys, { price: 1n, workUnits: 1n }), SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsBudgetExceeded")
        .withArgs(1n, 0n, 1n);
      expect(await commons.allocated(w.usd)).to.equal(0n);
      await expectBudgetConserved(w);
    });

    it("allocates no more than the commons holds unallocated", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, mesh, gov, end } = w;
      const start = await latest();
      const token = await usd.getAddress();
      await expect(commons.connect(gov).createProgramme("Civic projects", usd, 1n, start, end))
        .to.be.revertedWithCustomError(commons, "CommonsInsufficientFunds")
        .withArgs(token, 0n, 1n);
      await market.connect(gov).withdrawTreasury(usd, commons, 200n * USD);
      await expect(commons.connect(gov).createProgramme("Civic projects", usd, 300n * USD, start, end))
        .to.be.revertedWithCustomError(commons, "CommonsInsufficientFunds")
        .withArgs(token, 200n * USD, 300n * USD);
      await expect(commons.connect(gov).fundProgramme(1n, 200n * USD + 1n))
        .to.be.revertedWithCustomError(commons, "CommonsInsufficientFunds")
        .withArgs(token, 200n * USD, 200n * USD + 1n);
      await expect(commons.connect(gov).withdrawUnallocated(usd, gov.address, 200n * USD + 1n))
        .to.be.revertedWithCustomError(commons, "CommonsInsufficientFunds")
        .withArgs(token, 200n * USD, 200n * USD + 1n);
      // Another token's funds do not count.
      await expect(commons.connect(gov).createProgramme("MESH pilots", mesh, 1n, start, end))
        .to.be.revertedWithCustomError(commons, "CommonsInsufficientFunds")
        .withArgs(await mesh.getAddress(), 0n, 1n);
      await expectBudgetConserved(w);
    });

    it("lets only the job's grantee cancel it", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, grantee, grantee2, outsider, consumer } = w;
      const { jobId, job } = await commonsJob(w, grantee);
      for (const caller of [grantee2, outsider]) {
        await expect(commons.connect(caller).cancelJob(job))
          .to.be.revertedWithCustomError(commons, "CommonsNotGrantee")
          .withArgs(jobId, caller.address);
      }
      // The grantee is not the job's consumer on the market: the commons is.
      await expect(market.connect(grantee).cancel(job))
        .to.be.revertedWithCustomError(market, "JobMarketNotConsumer")
        .withArgs(jobId, grantee.address);
      // A job the commons did not post has no grantee.
      const direct = await createJob(w.sys, consumer);
      await expect(commons.connect(consumer).cancelJob(direct.job))
        .to.be.revertedWithCustomError(commons, "CommonsNotGrantee")
        .withArgs(direct.jobId, consumer.address);
      expect(await market.jobState(jobId)).to.equal(JobState.Open);
    });

    it("lets governance cancel a grantee's unclaimed job: the price returns to the programme", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, grantee, gov } = w;
      const { jobId, job } = await commonsJob(w, grantee);
      const tx = commons.connect(gov).cancelJob(job);
      await expect(tx).to.emit(commons, "CommonsJobCancelled").withArgs(1n, jobId);
      await expect(tx).to.emit(commons, "CommonsJobClosed").withArgs(1n, jobId, PRICE);
      expect(await market.jobState(jobId)).to.equal(JobState.Cancelled);
      expect(await commons.allowanceOf(1n, grantee.address)).to.equal(ALLOWANCE);
      await expectProgramme(w, 1n, { budget: BUDGET, spent: 0n, jobs: 1n });
      // A job no longer open (claimed; or cancelled already) is left as it is, without a revert: a proposal
      // bundling a revocation with cancellations cannot be made to fail by a claim.
      const claimed = await commonsJob(w, grantee);
      await market.connect(w.worker).claim(claimed.job);
      for (const j of [claimed.job, job]) await expect(commons.connect(gov).cancelJob(j)).to.not.emit(commons, "CommonsJobCancelled");
      expect(await market.jobState(claimed.jobId)).to.equal(JobState.Claimed);
      await expectProgramme(w, 1n, { budget: BUDGET, spent: PRICE, jobs: 2n });
      await expectBudgetConserved(w);
    });

    it("revokes a grantee for good: refunds of jobs posted before go to the programme, not back to the allowance", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, grantee, worker, outsider, gov } = w;
      const open = await commonsJob(w, grantee);
      const claimed = await commonsJob(w, grantee, { claimBy: (await latest()) + 600n });
      await market.connect(worker).claim(claimed.job);
      expect(await commons.allowanceOf(1n, grantee.address)).to.equal(ALLOWANCE - 2n * PRICE);
      await expect(commons.connect(gov).approveGrantee(1n, grantee.address, 0n)).to.emit(commons, "GranteeApproved").withArgs(1n, grantee.address, 0n);

      // Its own cancel, and a timeout anyone closes, return the prices to the programme only.
      await expect(commons.connect(grantee).cancelJob(open.job)).to.emit(commons, "CommonsJobClosed").withArgs(1n, open.jobId, PRICE);
      await networkHelpers.time.increase(HOUR + 1n);
      await market.connect(outsider).enforceDeadline(claimed.job);
      await expect(commons.connect(outsider).closeJob(claimed.job)).to.emit(commons, "CommonsJobClosed").withArgs(1n, claimed.jobId, PRICE);
      expect(await commons.allowanceOf(1n, grantee.address)).to.equal(0n);
      await expectProgramme(w, 1n, { budget: BUDGET, spent: 0n, jobs: 2n });
      const request = await jobRequest(w.sys, { price: PRICE, workUnits: UNITS });
      await expect(commons.connect(grantee).createJob(1n, request, SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsAllowanceExceeded")
        .withArgs(1n, grantee.address, 0n, PRICE);

      // Approved again: the allowance set is the allowance, whatever the refunds of older jobs.
      await commons.connect(gov).approveGrantee(1n, grantee.address, 2n * PRICE);
      const again = await commonsJob(w, grantee);
      await commons.connect(gov).approveGrantee(1n, grantee.address, 50n * USD);
      await commons.connect(grantee).cancelJob(again.job);
      expect(await commons.allowanceOf(1n, grantee.address)).to.equal(50n * USD);
      await expectBudgetConserved(w);
    });

    it("reclaims what an ended programme left, refunds closed after its end included, into the unallocated funds", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, grantee, worker, outsider, gov, end } = w;
      const { jobId, job } = await settledCommonsJob(w);
      const late = await commonsJob(w, grantee, { claimBy: end + DAY });
      await market.connect(worker).claim(late.job);
      await networkHelpers.time.increaseTo(end + 1n);
      const request = await jobRequest(w.sys, { price: PRICE, workUnits: UNITS });
      await expect(commons.connect(grantee).createJob(1n, request, SPEC)).to.be.revertedWithCustomError(commons, "CommonsOutsidePeriod");
      await commons.connect(outsider).closeJob(job);
      const left = BUDGET - 2n * PRICE;
      expect(await commons.unallocated(usd)).to.equal(0n);
      await expect(commons.connect(gov).reclaimBudget(1n, left + 1n))
        .to.be.revertedWithCustomError(commons, "CommonsBudgetExceeded")
        .withArgs(1n, left, left + 1n);
      await expect(commons.connect(gov).reclaimBudget(1n, left)).to.emit(commons, "BudgetReclaimed").withArgs(1n, left, BUDGET - left);
      expect(await commons.unallocated(usd)).to.equal(left);
      expect(await commons.allocated(usd)).to.equal(0n);
      await expectBudgetConserved(w);

      // The claimed job times out after the end: its price comes back to the programme, then out of it.
      await expect(market.connect(outsider).enforceDeadline(late.job)).to.emit(market, "JobReopened").withArgs(late.jobId);
      await networkHelpers.time.increaseTo(end + DAY + 1n); // past its claimBy
      await expect(market.connect(outsider).enforceDeadline(late.job)).to.emit(market, "JobRefunded");
      expect(await market.jobState(late.jobId)).to.equal(JobState.Refunded);
      await commons.connect(outsider).closeJob(late.job);
      await expectProgramme(w, 1n, { budget: BUDGET - left, spent: PRICE, jobs: 2n });
      await commons.connect(gov).reclaimBudget(1n, PRICE);
      const unallocated = await commons.unallocated(usd);
      expect(unallocated).to.be.greaterThanOrEqual(left + PRICE); // plus the claimant's timeout penalty
      await expect(commons.connect(gov).withdrawUnallocated(usd, outsider.address, unallocated))
        .to.emit(commons, "UnallocatedWithdrawn")
        .withArgs(await usd.getAddress(), outsider.address, unallocated);
      await expectProgramme(w, 1n, { budget: PRICE, spent: PRICE, jobs: 2n });
      await expectBudgetConserved(w);
      await expectConservation(w.sys, [job, late.job], [await commons.getAddress()]);
    });

    it("returns funds only for the commons' own refunded jobs, and only once", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, grantee, consumer, worker } = w;
      // Not a commons job, though refunded.
      const direct = await createJob(w.sys, consumer, { claimBy: (await latest()) + 600n });
      await networkHelpers.time.increase(601n);
      await market.enforceDeadline(direct.job);
      expect(await market.jobState(direct.jobId)).to.equal(JobState.Refunded);
      await expect(commons.closeJob(direct.job)).to.be.revertedWithCustomError(commons, "CommonsUnknownJob").withArgs(direct.jobId);

      // Not refunded (yet): open, claimed, or not a job at all.
      const { jobId, job } = await commonsJob(w, grantee);
      await expect(commons.closeJob(job))
        .to.be.revertedWithCustomError(commons, "CommonsJobNotFinished")
        .withArgs(jobId, JobState.Open);
      await market.connect(worker).claim(job);
      await expect(commons.closeJob(job))
        .to.be.revertedWithCustomError(commons, "CommonsJobNotFinished")
        .withArgs(jobId, JobState.Claimed);
      const never: Job = { ...job, request: { ...job.request, nonce: BigInt(job.request.nonce) + 1n } };
      await expect(commons.closeJob(never))
        .to.be.revertedWithCustomError(commons, "CommonsJobNotFinished")
        .withArgs(hashJob(never), JobState.None);

      // Cancelled by the grantee: already returned.
      const cancelled = await commonsJob(w, grantee);
      await commons.connect(grantee).cancelJob(cancelled.job);
      await expect(commons.closeJob(cancelled.job))
        .to.be.revertedWithCustomError(commons, "CommonsJobAlreadyClosed")
        .withArgs(cancelled.jobId);
      await expect(commons.connect(grantee).cancelJob(cancelled.job))
        .to.be.revertedWithCustomError(market, "JobMarketUnexpectedState")
        .withArgs(cancelled.jobId, JobState.Cancelled, JobState.Open);

      // Refunded after claimBy: returned once.
      const expiring = await commonsJob(w, grantee, { claimBy: (await latest()) + 600n });
      await networkHelpers.time.increase(601n);
      await market.enforceDeadline(expiring.job);
      await expect(commons.closeJob(expiring.job)).to.emit(commons, "CommonsJobClosed").withArgs(1n, expiring.jobId, PRICE);
      await expect(commons.closeJob(expiring.job))
        .to.be.revertedWithCustomError(commons, "CommonsJobAlreadyClosed")
        .withArgs(expiring.jobId);
      expect(await commons.allocated(usd)).to.equal(BUDGET - PRICE); // the claimed job's price is still out
      await expectBudgetConserved(w);
    });

    it("rejects a period that ends before it starts", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, gov } = w;
      await market.connect(gov).withdrawTreasury(usd, commons, 100n * USD);
      const start = (await latest()) + DAY;
      for (const end of [start, start - 1n]) {
        await expect(commons.connect(gov).createProgramme("Civic projects", usd, 100n * USD, start, end))
          .to.be.revertedWithCustomError(commons, "CommonsInvalidPeriod")
          .withArgs(start, end);
      }
    });

    it("rejects the zero address as token, grantee, recipient or market", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, usd, gov } = w;
      await expect(commons.connect(gov).approveGrantee(1n, ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(commons, "CommonsZeroAddress");
      await expect(commons.connect(gov).withdrawUnallocated(usd, ethers.ZeroAddress, 0n)).to.be.revertedWithCustomError(
        commons,
        "CommonsZeroAddress",
      );
      const { start, end } = w;
      await expect(commons.connect(gov).createProgramme("No token", ethers.ZeroAddress, 0n, start, end)).to.be.revertedWithCustomError(
        commons,
        "CommonsZeroAddress",
      );
      const factory = await ethers.getContractFactory("ComputeCommons");
      await expect(factory.deploy(ethers.ZeroAddress, gov.address)).to.be.revertedWithCustomError(factory, "CommonsZeroAddress");
    });

    it("rejects a job paid in another token than the programme's", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, mesh, grantee } = w;
      expect(await market.isPaymentToken(mesh)).to.equal(true);
      const request = await jobRequest(w.sys, { paymentToken: await mesh.getAddress(), price: PRICE, workUnits: UNITS });
      await expect(commons.connect(grantee).createJob(1n, request, SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsWrongToken")
        .withArgs(1n, await mesh.getAddress());
    });

    it("rejects a job targeted at one provider: public money is not handed to a provider of the grantee's choosing", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, grantee } = w;
      // The grantee registered as a provider would otherwise pay its whole allowance to itself.
      const request = await jobRequest(w.sys, { price: PRICE, workUnits: UNITS, targetProvider: grantee.address });
      await expect(commons.connect(grantee).createJob(1n, request, SPEC))
        .to.be.revertedWithCustomError(commons, "CommonsTargetedJob")
        .withArgs(1n, grantee.address);
      expect(await commons.allowanceOf(1n, grantee.address)).to.equal(ALLOWANCE);
    });

    it("reserves governance functions to the owner (the timelock)", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, usd, deployer, grantee, start, end } = w;
      for (const caller of [deployer, grantee]) {
        const c = commons.connect(caller);
        for (const call of [
          () => c.createProgramme("Mine", usd, 0n, start, end),
          () => c.fundProgramme(1n, 0n),
          () => c.approveGrantee(1n, caller.address, BUDGET),
          () => c.reclaimBudget(1n, 0n),
          () => c.withdrawUnallocated(usd, caller.address, 0n),
        ]) {
          await expect(call()).to.be.revertedWithCustomError(commons, "OwnableUnauthorizedAccount").withArgs(caller.address);
        }
      }
    });

    it("lets only the commons create a commons job on the market", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { market, commons, consumer, grantee } = w;
      expect(await market.commons()).to.equal(await commons.getAddress());
      for (const caller of [consumer, grantee]) {
        const request = await jobRequest(w.sys, { requirements: packRequirements({ ...DEFAULT_REQUIREMENTS, commons: true }) });
        await expect(market.connect(caller).createJob(request, SPEC))
          .to.be.revertedWithCustomError(market, "JobMarketNotCommons")
          .withArgs(caller.address);
      }
    });
  });

  describe("budget conservation", () => {
    it("holds after every step of a whole season", async () => {
      const w = await networkHelpers.loadFixture(withProgramme);
      const { commons, market, usd, mesh, gov, deployer, grantee, grantee2, worker, outsider, timelock } = w;
      const commonsAddress = await commons.getAddress();
      const jobs: Job[] = [];
      const check = async () => {
        await expectBudgetConserved(w, usd);
        await expectBudgetConserved(w, mesh);
        await expectConservation(w.sys, jobs, [commonsAddress, await timelock.getAddress()]);
      };
      await check();

      // A second tUSD programme and a MESH one.
      await market.connect(gov).withdrawTreasury(usd, commons, 300n * USD);
      await check();
      const now = await latest();
      await commons.connect(gov).createProgramme("Civic projects", usd, 200n * USD, now, now + 10n * DAY);
      await check();
      await mesh.connect(deployer).transfer(commons, 10_000n * MESH);
      await commons.connect(gov).createProgramme("MESH pilots", mesh, 5_000n * MESH, now, now + 10n * DAY);
      await check();
      expect(await commons.allocated(usd)).to.equal(BUDGET + 200n * USD);
      expect(await commons.unallocated(usd)).to.equal(100n * USD);
      expect(await commons.allocated(mesh)).to.equal(5_000n * MESH);
      expect(await commons.unallocated(mesh)).to.equal(5_000n * MESH);
      await commons.connect(gov).approveGrantee(2n, grantee2.address, 200n * USD);
      await commons.connect(gov).approveGrantee(3n, grantee2.address, 2_000n * MESH);

      // Jobs in each programme.
      const a = await commonsJob(w, grantee);
      jobs.push(a.job);
      await check();
      const b = await commonsJob(w, grantee2, { price: 150n * USD, claimBy: now + 2n * DAY }, 2n);
      jobs.push(b.job);
      await check();
      const c = await commonsJob(w, grantee2, { paymentToken: await mesh.getAddress(), price: 1_000n * MESH }, 3n);
      await check();
      expect(await commons.allocated(mesh)).to.equal(4_000n * MESH);

      // Cancelled, slashed for a missed reveal, refunded after claimBy; each returned.
      await commons.connect(grantee).cancelJob(a.job);
      await check();
      const d = await commonsJob(w, grantee);
      jobs.push(d.job);
      await market.connect(worker).claim(d.job);
      await check();
      await market.connect(worker).commit(d.jobId, makeReveal(ethers, d.jobId, worker.address).commitment);
      await check();
      await networkHelpers.time.increase(CHALLENGE_WINDOW + REVEAL_WINDOW + 1n);
      await market.enforceDeadline(d.job);
      await check();
      await commons.connect(outsider).closeJob(d.job);
      await check();

      await commons.connect(gov).fundProgramme(2n, 100n * USD);
      await check();
      // The forfeited collateral's consumer share is the commons' own, but it counts as unallocated only
      // beyond the price of job b, still open: a refund the commons cannot tell apart yet.
      const share = COLLATERAL - (COLLATERAL * FRAUD_TREASURY_BPS) / 10_000n;
      expect(await commons.unallocated(usd)).to.equal(share - 150n * USD);

      await networkHelpers.time.increaseTo(now + 2n * DAY + 1n);
      await market.enforceDeadline(b.job);
      await check();
      // b's refund is set aside (it is still outstanding), so the whole share is provably free now.
      expect(await commons.unallocated(usd)).to.equal(share);
      await commons.closeJob(b.job);
      await check();
      expect(await commons.unallocated(usd)).to.equal(share);
      await commons.connect(grantee2).cancelJob(c.job);
      await check();
      await commons.connect(gov).withdrawUnallocated(usd, await timelock.getAddress(), share);
      await check();
      expect(await commons.unallocated(usd)).to.equal(0n);

      await expectProgramme(w, 1n, { budget: BUDGET, spent: 0n, jobs: 2n });
      await expectProgramme(w, 2n, { budget: 300n * USD, spent: 0n, jobs: 1n });
      await expectProgramme(w, 3n, { budget: 5_000n * MESH, spent: 0n, jobs: 1n });
      expect(await commons.allocated(usd)).to.equal(BUDGET + 300n * USD);
      expect(await commons.allocated(mesh)).to.equal(5_000n * MESH);
    });
  });
});
