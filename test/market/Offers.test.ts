import { expect } from "chai";
import { network } from "hardhat";
import { hashJob } from "../../sdk/src/params.js";
import { expectConservation } from "../helpers/conservation.js";
import {
  Eligibility,
  JobState,
  USD,
  jobRequest,
  marketWithProviders,
  predictJob,
  signOffer,
  type JobRequest,
  type System,
} from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

describe("JobMarket signed offers", () => {
  const fixture = () => marketWithProviders(ethers);

  /** A request addressed to provider `who` and the offer it signed for it. */
  async function offered(sys: System, who = 0, overrides: Partial<JobRequest> = {}) {
    const provider = sys.providers[who];
    const request = await jobRequest(sys, { targetProvider: provider.address, ...overrides });
    const job = await predictJob(sys, sys.consumer.address, request);
    const jobId = hashJob(job);
    const expiry = BigInt(await networkHelpers.time.latest()) + 300n;
    const signature = await signOffer(sys, provider, jobId, expiry);
    return { provider, request, job, jobId, expiry, signature };
  }

  it("escrows, locks collateral and assigns the job in one transaction", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const { market, consumer, usd } = sys;
    const { provider, request, job, jobId, expiry, signature } = await offered(sys);
    const tx = market.connect(consumer).createJobWithOffer(request, "spec", expiry, signature);
    await expect(tx).to.emit(market, "JobCreated");
    await expect(tx).to.emit(market, "JobClaimed").withArgs(jobId, provider.address);
    expect(await market.jobState(jobId)).to.equal(JobState.Claimed);
    expect(await market.balanceOf(usd, consumer.address)).to.equal(10_000n * USD - 100n * USD);
    expect(await market.balanceOf(usd, provider.address)).to.equal(1_000n * USD - 200n * USD);
    await expectConservation(sys, [job]);
  });

  it("takes the offered price even below the provider's posted price (the provider signed it)", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const { request, jobId, expiry, signature } = await offered(sys, 0, { price: 5n * USD });
    await sys.market.connect(sys.consumer).createJobWithOffer(request, "", expiry, signature);
    expect(await sys.market.jobState(jobId)).to.equal(JobState.Claimed);
  });

  it("cannot be replayed: the offer names one job, and a job exists once", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const { request, jobId, expiry, signature } = await offered(sys);
    await sys.market.connect(sys.consumer).createJobWithOffer(request, "", expiry, signature);
    await expect(sys.market.connect(sys.consumer).createJobWithOffer(request, "", expiry, signature))
      .to.be.revertedWithCustomError(sys.market, "JobMarketJobExists")
      .withArgs(jobId);
  });

  it("cannot be used for another request, another consumer or other terms", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const { market, consumer, others } = sys;
    const o = await offered(sys);
    const cheaper = { ...o.request, price: o.request.price - 1n };
    const jobCheaper = hashJob({ consumer: consumer.address, request: cheaper, terms: o.job.terms });
    await expect(market.connect(consumer).createJobWithOffer(cheaper, "", o.expiry, o.signature))
      .to.be.revertedWithCustomError(market, "JobMarketInvalidSignature")
      .withArgs(jobCheaper, o.provider.address);
    await expect(market.connect(others[0]).createJobWithOffer(o.request, "", o.expiry, o.signature)).to.be.revertedWithCustomError(
      market,
      "JobMarketInvalidSignature",
    );
    await market.setParameter(0, 100); // fee 2.5% -> 1%: new jobs get other terms
    await expect(market.connect(consumer).createJobWithOffer(o.request, "", o.expiry, o.signature)).to.be.revertedWithCustomError(
      market,
      "JobMarketInvalidSignature",
    );
  });

  it("rejects a signature for another chain, another market or by another signer", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const { market, consumer, providers } = sys;
    const o = await offered(sys);
    const bad = [
      await signOffer(sys, o.provider, o.jobId, o.expiry, { chainId: 1n }),
      await signOffer(sys, o.provider, o.jobId, o.expiry, { market: await sys.registry.getAddress() }),
      await signOffer(sys, providers[1], o.jobId, o.expiry),
    ];
    for (const signature of bad) {
      await expect(market.connect(consumer).createJobWithOffer(o.request, "", o.expiry, signature))
        .to.be.revertedWithCustomError(market, "JobMarketInvalidSignature")
        .withArgs(o.jobId, o.provider.address);
    }
  });

  it("rejects an expired offer", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const o = await offered(sys);
    await networkHelpers.time.increaseTo(o.expiry + 1n);
    await expect(sys.market.connect(sys.consumer).createJobWithOffer(o.request, "", o.expiry, o.signature))
      .to.be.revertedWithCustomError(sys.market, "JobMarketOfferExpired")
      .withArgs(o.jobId, o.expiry);
  });

  it("needs a target provider, and one that meets the requirements", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const untargeted = await jobRequest(sys);
    await expect(sys.market.connect(sys.consumer).createJobWithOffer(untargeted, "", 1n, "0x"))
      .to.be.revertedWithCustomError(sys.market, "JobMarketInvalidRequest")
      .withArgs("targetProvider");
    const o = await offered(sys, 2, { requirements: (await jobRequest(sys, { req: { minVramGB: 40 } })).requirements });
    await expect(sys.market.connect(sys.consumer).createJobWithOffer(o.request, "", o.expiry, o.signature))
      .to.be.revertedWithCustomError(sys.market, "JobMarketIneligible")
      .withArgs(o.jobId, o.provider.address, Eligibility.Vram);
  });

  it("pulls the provider's missing collateral from its wallet", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const p = sys.providers[1];
    await sys.market.connect(p).withdraw(sys.usd, 1_000n * USD, p.address);
    await sys.usd.connect(p).approve(sys.market, 200n * USD);
    const o = await offered(sys, 1);
    const tx = sys.market.connect(sys.consumer).createJobWithOffer(o.request, "", o.expiry, o.signature);
    await expect(tx).to.changeTokenBalances(ethers, sys.usd, [p, sys.market], [-200n * USD, 200n * USD]);
    await expectConservation(sys, [o.job]);
  });

  it("accepts offers from contract providers through ERC-1271", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const owner = sys.others[1];
    const wallet = await ethers.deployContract("ERC1271Wallet", [owner.address]);
    const walletAddress = await wallet.getAddress();
    await networkHelpers.impersonateAccount(walletAddress);
    await networkHelpers.setBalance(walletAddress, 10n ** 18n);
    const asWallet = await ethers.getSigner(walletAddress);
    const { onboardProvider, fund } = await import("../helpers/system.js");
    await onboardProvider(sys, asWallet);
    await fund(sys, asWallet, 500n * USD);
    const request = await jobRequest(sys, { targetProvider: walletAddress });
    const jobId = hashJob(await predictJob(sys, sys.consumer.address, request));
    const expiry = BigInt(await networkHelpers.time.latest()) + 300n;
    const signature = await signOffer(sys, owner, jobId, expiry); // the wallet's owner signs for it
    await sys.market.connect(sys.consumer).createJobWithOffer(request, "", expiry, signature);
    expect((await sys.market.jobRecord(jobId)).provider).to.equal(walletAddress);
  });
});
