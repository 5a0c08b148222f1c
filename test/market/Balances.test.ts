import { expect } from "chai";
import { network } from "hardhat";
import { expectConservation } from "../helpers/conservation.js";
import { HOUR, USD, createJob, deploySystem, fund, makeReveal, marketWithProviders, setDraw } from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

describe("JobMarket balances", () => {
  const fixture = () => marketWithProviders(ethers);

  it("credits deposits to any account, pulled from the payer", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const { market, usd, consumer, others } = sys;
    const [payer] = others;
    await usd.mint(payer.address, 50n * USD);
    await usd.connect(payer).approve(market, 50n * USD);
    const tx = market.connect(payer).deposit(usd, consumer.address, 50n * USD);
    await expect(tx).to.emit(market, "Deposited").withArgs(await usd.getAddress(), consumer.address, payer.address, 50n * USD);
    await expect(tx).to.changeTokenBalances(ethers, usd, [payer, market], [-50n * USD, 50n * USD]);
    expect(await market.balanceOf(usd, consumer.address)).to.equal(10_050n * USD);
    await expectConservation(sys, []);
  });

  it("rejects deposits of tokens not allowlisted, of zero, or to the zero address", async () => {
    const { market, usd, consumer, mesh } = await networkHelpers.loadFixture(fixture);
    await expect(market.connect(consumer).deposit(mesh, consumer.address, 1n))
      .to.be.revertedWithCustomError(market, "JobMarketTokenNotAllowed")
      .withArgs(await mesh.getAddress());
    await expect(market.connect(consumer).deposit(usd, consumer.address, 0)).to.be.revertedWithCustomError(market, "JobMarketZeroAmount");
    await expect(market.connect(consumer).deposit(usd, ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(
      market,
      "JobMarketZeroAddress",
    );
  });

  it("withdraws to any address, never more than the balance", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const { market, usd, consumer, others } = sys;
    const tx = market.connect(consumer).withdraw(usd, 40n * USD, others[0].address);
    await expect(tx).to.emit(market, "Withdrawn").withArgs(await usd.getAddress(), consumer.address, others[0].address, 40n * USD);
    await expect(tx).to.changeTokenBalances(ethers, usd, [market, others[0]], [-40n * USD, 40n * USD]);
    await expect(market.connect(consumer).withdraw(usd, 10_000n * USD, consumer.address))
      .to.be.revertedWithCustomError(market, "JobMarketInsufficientBalance")
      .withArgs(await usd.getAddress(), consumer.address, 9_960n * USD, 10_000n * USD);
    await expect(market.connect(consumer).withdraw(usd, 0, consumer.address)).to.be.revertedWithCustomError(market, "JobMarketZeroAmount");
    await expect(market.connect(consumer).withdraw(usd, 1n, ethers.ZeroAddress)).to.be.revertedWithCustomError(
      market,
      "JobMarketZeroAddress",
    );
    await expectConservation(sys, []);
  });

  it("withdraws several tokens in one batch, also a token removed from the allowlist", async () => {
    const sys = await networkHelpers.loadFixture(fixture);
    const { market, usd, consumer, deployer } = sys;
    const eur = await ethers.deployContract("TestUSD");
    await market.setPaymentToken(eur, true);
    await eur.mint(consumer.address, 30n * USD);
    await eur.connect(consumer).approve(market, 30n * USD);
    await market.connect(consumer).deposit(eur, consumer.address, 30n * USD);
    await expect(market.connect(deployer).setPaymentToken(eur, false))
      .to.emit(market, "PaymentTokenSet")
      .withArgs(await eur.getAddress(), false);
    await market.connect(consumer).withdrawBatch(
      [
        { token: usd, amount: 10n * USD },
        { token: eur, amount: 30n * USD },
      ],
      consumer.address,
    );
    expect(await eur.balanceOf(consumer.address)).to.equal(30n * USD);
    expect(await market.balanceOf(eur, consumer.address)).to.equal(0n);
    expect(await market.balanceOf(usd, consumer.address)).to.equal(9_990n * USD);
  });

  describe("fees and treasury", () => {
    async function settledJob() {
      const sys = await marketWithProviders(ethers);
      const [p1] = sys.providers;
      const { jobId, job } = await createJob(sys, sys.consumer);
      await sys.market.connect(p1).claim(job);
      const r = makeReveal(ethers, jobId, p1.address);
      await sys.market.connect(p1).commit(jobId, r.commitment);
      await setDraw(sys, jobId, false);
      await networkHelpers.time.increase(HOUR);
      await sys.market.connect(p1).settle(job, p1.address, r.resultRoot, r.salt, r.outputURI);
      return { sys, job };
    }

    it("sweeps a provider's fees due to the treasury when it withdraws", async () => {
      const { sys, job } = await networkHelpers.loadFixture(settledJob);
      const { market, usd, providers } = sys;
      const fee = 2_500_000n; // 2.5% of 100 tUSD
      expect(await market.feesDue(usd, providers[0].address)).to.equal(fee);
      const toPool = (fee * 4_000n) / 10_000n;
      await expect(market.connect(providers[0]).withdraw(usd, 1n, providers[0].address))
        .to.emit(market, "FeesSwept")
        .withArgs(await usd.getAddress(), providers[0].address, fee, toPool);
      expect(await market.feesDue(usd, providers[0].address)).to.equal(0n);
      expect(await market.treasuryAccrual(usd)).to.equal(fee - toPool);
      expect(await market.auditPool(usd)).to.equal(toPool);
      await expectConservation(sys, [job]);
    });

    it("lets anyone sweep fees due, skipping accounts that owe none", async () => {
      const { sys } = await networkHelpers.loadFixture(settledJob);
      const { market, usd, providers, others } = sys;
      await market.connect(others[0]).sweepFees(usd, [providers[0].address, providers[1].address]);
      expect(await market.treasuryAccrual(usd)).to.equal(1_500_000n);
      expect(await market.auditPool(usd)).to.equal(1_000_000n);
    });

    it("pays the treasury out to the owner's chosen address only", async () => {
      const { sys, job } = await networkHelpers.loadFixture(settledJob);
      const { market, usd, providers, others, deployer } = sys;
      await market.sweepFees(usd, [providers[0].address]);
      await expect(market.connect(others[0]).withdrawTreasury(usd, others[0].address, 1n))
        .to.be.revertedWithCustomError(market, "OwnableUnauthorizedAccount")
        .withArgs(others[0].address);
      await expect(market.connect(deployer).withdrawTreasury(usd, others[1].address, 3_000_000n))
        .to.be.revertedWithCustomError(market, "JobMarketInsufficientTreasury")
        .withArgs(await usd.getAddress(), 1_500_000n, 3_000_000n);
      await expect(market.connect(deployer).withdrawTreasury(usd, ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(
        market,
        "JobMarketZeroAddress",
      );
      const tx = market.connect(deployer).withdrawTreasury(usd, others[1].address, 1_500_000n);
      await expect(tx).to.emit(market, "TreasuryWithdrawn").withArgs(await usd.getAddress(), others[1].address, 1_500_000n);
      await expect(tx).to.changeTokenBalance(ethers, usd, others[1], 1_500_000n);
      await expectConservation(sys, [job]);
    });
  });

  it("lets only the owner change the allowlist, and never to the zero address", async () => {
    const { market, others, usd } = await networkHelpers.loadFixture(fixture);
    await expect(market.connect(others[0]).setPaymentToken(usd, false))
      .to.be.revertedWithCustomError(market, "OwnableUnauthorizedAccount")
      .withArgs(others[0].address);
    await expect(market.setPaymentToken(ethers.ZeroAddress, true)).to.be.revertedWithCustomError(market, "JobMarketZeroAddress");
  });

  describe("reentrancy", () => {
    async function hostile() {
      const sys = await deploySystem(ethers);
      const token = await ethers.deployContract("ReentrantToken");
      await sys.market.setPaymentToken(token, true);
      const attacker = sys.others[0];
      await token.mint(attacker.address, 1_000n);
      await token.connect(attacker).approve(sys.market, 1_000n);
      await sys.market.connect(attacker).deposit(token, attacker.address, 100n);
      return { ...sys, token, attacker };
    }

    it("cannot re-enter withdraw from inside a deposit's transfer", async () => {
      const { market, token, attacker } = await networkHelpers.loadFixture(hostile);
      const payload = market.interface.encodeFunctionData("withdraw", [await token.getAddress(), 100n, attacker.address]);
      await token.arm(await market.getAddress(), payload);
      await market.connect(attacker).deposit(token, attacker.address, 10n);
      expect(await token.reentered()).to.equal(false);
      expect((await token.lastRevert()).slice(0, 10)).to.equal(market.interface.getError("ReentrancyGuardReentrantCall")!.selector);
      expect(await market.balanceOf(token, attacker.address)).to.equal(110n);
      expect(await token.balanceOf(await market.getAddress())).to.equal(110n);
    });

    it("cannot re-enter deposit from inside a withdrawal's transfer", async () => {
      const { market, token, attacker } = await networkHelpers.loadFixture(hostile);
      const payload = market.interface.encodeFunctionData("deposit", [await token.getAddress(), attacker.address, 5n]);
      await token.arm(await market.getAddress(), payload);
      await market.connect(attacker).withdraw(token, 50n, attacker.address);
      expect(await token.reentered()).to.equal(false);
      expect(await market.balanceOf(token, attacker.address)).to.equal(50n);
      expect(await token.balanceOf(await market.getAddress())).to.equal(50n);
    });
  });
});
