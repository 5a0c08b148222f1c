import { expect } from "chai";
import { network } from "hardhat";
import { unpackTerms } from "../../sdk/src/params.js";
import { DAY, MARKET_CONFIG, VERIFICATION_CONFIG, deploySystem } from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

enum P {
  FeeBps,
  CollateralBps,
  TimeoutSlashBps,
  ChallengeWindow,
  RevealWindow,
  PMinBps,
  ProbationJobs,
  AuditPoolShareBps,
  AuditRewardBps,
  AuditCollateralBps,
  MinComputeWindow,
  MaxComputeWindow,
  FraudStakeSlashBps,
  FraudConsumerBps,
  FraudAuditorBps,
  ChallengeBondBps,
  AssumedCollusionBps,
  AuditClaimWindow,
  AuditRevealWindow,
  EscalationWindow,
  MaxPauseDuration,
}

describe("JobMarket parameters", () => {
  const fixture = () => deploySystem(ethers);

  const cases: [string, P, bigint, bigint | null, bigint][] = [
    ["FeeBps", P.FeeBps, 500n, null, 1_001n],
    ["CollateralBps", P.CollateralBps, 30_000n, null, 60_001n],
    ["TimeoutSlashBps", P.TimeoutSlashBps, 5_000n, null, 10_001n],
    ["ChallengeWindow", P.ChallengeWindow, 2n * DAY, 59n, 30n * DAY + 1n],
    ["RevealWindow", P.RevealWindow, DAY, 59n, 30n * DAY + 1n],
    ["PMinBps", P.PMinBps, 8_000n, 0n, 10_001n],
    ["ProbationJobs", P.ProbationJobs, 5n, null, 256n],
    ["AuditPoolShareBps", P.AuditPoolShareBps, 5_000n, null, 10_001n],
    ["AuditRewardBps", P.AuditRewardBps, 500n, null, 2_001n],
    ["AuditCollateralBps", P.AuditCollateralBps, 20_000n, null, 60_001n],
    ["MinComputeWindow", P.MinComputeWindow, 600n, 59n, 7n * DAY + 1n],
    ["MaxComputeWindow", P.MaxComputeWindow, 30n * DAY, 59n, 180n * DAY + 1n],
    ["FraudStakeSlashBps", P.FraudStakeSlashBps, 2_000n, null, 10_001n],
    ["FraudConsumerBps", P.FraudConsumerBps, 4_000n, null, 5_001n],
    ["FraudAuditorBps", P.FraudAuditorBps, 6_000n, null, 7_001n],
    ["ChallengeBondBps", P.ChallengeBondBps, 2_000n, null, 60_001n],
    ["AssumedCollusionBps", P.AssumedCollusionBps, 1_000n, null, 5_001n],
    ["AuditClaimWindow", P.AuditClaimWindow, DAY, 59n, 30n * DAY + 1n],
    ["AuditRevealWindow", P.AuditRevealWindow, DAY, 59n, 30n * DAY + 1n],
    ["EscalationWindow", P.EscalationWindow, 30n * DAY, 3_599n, 365n * DAY + 1n],
    ["MaxPauseDuration", P.MaxPauseDuration, 7n * DAY, 3_599n, 30n * DAY + 1n],
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
    expect(await market.parameterBounds(P.MaxComputeWindow)).to.deep.equal([3n * DAY, 180n * DAY]);
    await expect(market.setParameter(P.MaxComputeWindow, DAY))
      .to.be.revertedWithCustomError(market, "JobMarketParameterOutOfBounds")
      .withArgs(P.MaxComputeWindow, DAY, 3n * DAY, 180n * DAY);
    await market.setParameter(P.FraudAuditorBps, 7_000n);
    expect(await market.parameterBounds(P.FraudConsumerBps)).to.deep.equal([0n, 3_000n]);
  });

  it("rejects a change that breaks p(1 - r)(1 + collateralFactor) > 1", async () => {
    const { market } = await networkHelpers.loadFixture(fixture);
    // Defaults: p = 0.5, r = 0.3333, S = 2P: 0.5 * 0.6667 * 3 = 1.00005 > 1.
    await expect(market.setParameter(P.PMinBps, 4_999n))
      .to.be.revertedWithCustomError(market, "JobMarketEconomicBoundBroken")
      .withArgs(4_999n, 3_333n, 20_000n);
    await expect(market.setParameter(P.CollateralBps, 19_000n))
      .to.be.revertedWithCustomError(market, "JobMarketEconomicBoundBroken")
      .withArgs(5_000n, 3_333n, 19_000n);
    await expect(market.setParameter(P.AssumedCollusionBps, 3_400n))
      .to.be.revertedWithCustomError(market, "JobMarketEconomicBoundBroken")
      .withArgs(5_000n, 3_400n, 20_000n);
    // Raising the audit floor makes room for less collateral.
    await market.setParameter(P.PMinBps, 8_000n);
    await market.setParameter(P.CollateralBps, 10_000n);
    expect(await market.parameter(P.CollateralBps)).to.equal(10_000n);
  });

  it("lets only the owner choose the randomness source", async () => {
    const { market, others, randomness } = await networkHelpers.loadFixture(fixture);
    await expect(market.connect(others[0]).setRandomnessSource(others[0].address))
      .to.be.revertedWithCustomError(market, "OwnableUnauthorizedAccount")
      .withArgs(others[0].address);
    await expect(market.setRandomnessSource(ethers.ZeroAddress))
      .to.emit(market, "RandomnessSourceSet")
      .withArgs(await randomness.getAddress(), ethers.ZeroAddress);
    expect(await market.randomnessSource()).to.equal(ethers.ZeroAddress);
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
      pMinBps: 5_000,
      probationJobs: 0,
      auditRewardBps: 200,
      auditCollateralBps: 10_000,
      externalRandomness: 1, // the tests' mock source is installed
      auditClaimWindow: 3600,
      auditRevealWindow: 3600,
    });
    const c = await market.config();
    expect(c.feeBps).to.equal(100n);
  });

  it("refuses a deployment with out-of-bounds parameters, a broken bound, or a mismatched module", async () => {
    const { market, registry, deployer, mesh } = await networkHelpers.loadFixture(fixture);
    const module = await market.auditModule();
    const deploy = (config: object, verification: object = VERIFICATION_CONFIG, mod = module, reg?: string) =>
      ethers.deployContract("JobMarket", [reg ?? registry, mod, deployer.address, { ...MARKET_CONFIG, ...config }, verification]);
    await expect(deploy({ feeBps: 5_000 }))
      .to.be.revertedWithCustomError(market, "JobMarketParameterOutOfBounds")
      .withArgs(P.FeeBps, 5_000, 0, 1_000);
    await expect(deploy({ pMinBps: 1_000 })).to.be.revertedWithCustomError(market, "JobMarketEconomicBoundBroken");
    await expect(deploy({}, VERIFICATION_CONFIG, ethers.ZeroAddress)).to.be.revertedWithCustomError(market, "JobMarketZeroAddress");
    const otherRegistry = await ethers.deployContract("ProviderRegistry", [mesh, deployer.address, 1n, 60n, 0n]);
    await expect(deploy({}, VERIFICATION_CONFIG, module, await otherRegistry.getAddress()))
      .to.be.revertedWithCustomError(market, "JobMarketModuleRegistryMismatch")
      .withArgs(await registry.getAddress());
  });
});
