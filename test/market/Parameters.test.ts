import { expect } from "chai";
import { network } from "hardhat";
import { unpackTerms } from "../../sdk/src/params.js";
import { DAY, MARKET_CONFIG, deploySystem } from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

enum P {
  FeeBps,
  CollateralBps,
  TimeoutSlashBps,
  ChallengeWindow,
  RevealWindow,
  MinComputeWindow,
  MaxComputeWindow,
  FraudStakeSlashBps,
  FraudConsumerBps,
  FraudAuditorBps,
}

describe("JobMarket parameters", () => {
  const fixture = () => deploySystem(ethers);

  const cases: [string, P, bigint, bigint | null, bigint][] = [
    ["FeeBps", P.FeeBps, 500n, null, 1_001n],
    ["CollateralBps", P.CollateralBps, 30_000n, null, 60_001n],
    ["TimeoutSlashBps", P.TimeoutSlashBps, 5_000n, null, 10_001n],
    ["ChallengeWindow", P.ChallengeWindow, 2n * DAY, 59n, 30n * DAY + 1n],
    ["RevealWindow", P.RevealWindow, DAY, 59n, 30n * DAY + 1n],
    ["MinComputeWindow", P.MinComputeWindow, 600n, 59n, 7n * DAY + 1n],
    ["MaxComputeWindow", P.MaxComputeWindow, 30n * DAY, 59n, 365n * DAY + 1n],
    ["FraudStakeSlashBps", P.FraudStakeSlashBps, 2_000n, null, 10_001n],
    ["FraudConsumerBps", P.FraudConsumerBps, 4_000n, null, 5_001n],
    ["FraudAuditorBps", P.FraudAuditorBps, 6_000n, null, 7_001n],
  ];

  for (const [name, p, good, tooLow, tooHigh] of cases) {
    it(`sets ${name} within its bounds, emitting old and new values, by the owner only`, async () => {
      const { market, others } = await networkHelpers.loadFixture(fixture);
      const old = await market.parameter(p);
      const [min, max] = await market.parameterBounds(p);
      await expect(market.setParameter(p, good)).to.emit(market, "ParameterSet").withArgs(p, old, good);
      expect(await market.parameter(p)).to.equal(good);
      const [min2, max2] = await market.parameterBounds(p);
      if (tooLow !== null) {
        await expect(market.setParameter(p, tooLow))
          .to.be.revertedWithCustomError(market, "JobMarketParameterOutOfBounds")
          .withArgs(p, tooLow, min2, max2);
      }
      await expect(market.setParameter(p, tooHigh))
        .to.be.revertedWithCustomError(market, "JobMarketParameterOutOfBounds")
        .withArgs(p, tooHigh, min2, max2);
      expect(min <= good && good <= max).to.equal(true);
      await expect(market.connect(others[0]).setParameter(p, good))
        .to.be.revertedWithCustomError(market, "OwnableUnauthorizedAccount")
        .withArgs(others[0].address);
    });
  }

  it("keeps the minimum compute window at or below the maximum, and fraud shares within 100%", async () => {
    const { market } = await networkHelpers.loadFixture(fixture);
    await market.setParameter(P.MinComputeWindow, 3n * DAY);
    expect(await market.parameterBounds(P.MaxComputeWindow)).to.deep.equal([3n * DAY, 365n * DAY]);
    await expect(market.setParameter(P.MaxComputeWindow, DAY))
      .to.be.revertedWithCustomError(market, "JobMarketParameterOutOfBounds")
      .withArgs(P.MaxComputeWindow, DAY, 3n * DAY, 365n * DAY);
    await market.setParameter(P.FraudAuditorBps, 7_000n);
    expect(await market.parameterBounds(P.FraudConsumerBps)).to.deep.equal([0n, 3_000n]);
  });

  it("snapshots the current terms for new jobs", async () => {
    const { market } = await networkHelpers.loadFixture(fixture);
    await market.setParameter(P.FeeBps, 100n);
    await market.setParameter(P.ChallengeWindow, 2n * DAY);
    expect(unpackTerms(await market.currentTerms())).to.deep.equal({
      feeBps: 100,
      collateralBps: Number(MARKET_CONFIG.collateralBps),
      timeoutSlashBps: Number(MARKET_CONFIG.timeoutSlashBps),
      challengeWindow: Number(2n * DAY),
      revealWindow: Number(MARKET_CONFIG.revealWindow),
    });
    const c = await market.config();
    expect(c.feeBps).to.equal(100n);
  });

  it("refuses a deployment with out-of-bounds parameters or no registry", async () => {
    const { market, registry, deployer } = await networkHelpers.loadFixture(fixture);
    await expect(
      ethers.deployContract("JobMarket", [await registry.getAddress(), deployer.address, { ...MARKET_CONFIG, feeBps: 5_000 }]),
    )
      .to.be.revertedWithCustomError(market, "JobMarketParameterOutOfBounds")
      .withArgs(P.FeeBps, 5_000, 0, 1_000);
    await expect(ethers.deployContract("JobMarket", [ethers.ZeroAddress, deployer.address, MARKET_CONFIG])).to.be.revertedWithCustomError(
      market,
      "JobMarketZeroAddress",
    );
  });
});
