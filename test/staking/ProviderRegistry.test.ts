import { expect } from "chai";
import { network } from "hardhat";
import { packRequirements } from "../../sdk/src/params.js";
import {
  DAY,
  DEFAULT_PROFILE,
  DEFAULT_REQUIREMENTS,
  Eligibility,
  Energy,
  JAIL_PERIOD,
  MESH,
  MIN_STAKE,
  UNBONDING_PERIOD,
  USD,
} from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

enum Param {
  MinStake,
  UnbondingPeriod,
  JailPeriod,
}

describe("ProviderRegistry", () => {
  /** A registry whose "market" is a plain account, so the market-only hooks can be called directly. */
  async function deploy() {
    const [owner, market, alice, bob, carol] = await ethers.getSigners();
    const mesh = await ethers.deployContract("MeshToken", [owner.address, 1_000_000n * MESH]);
    const registry = await ethers.deployContract("ProviderRegistry", [
      await mesh.getAddress(),
      owner.address,
      MIN_STAKE,
      UNBONDING_PERIOD,
      JAIL_PERIOD,
    ]);
    await registry.setMarket(market.address);
    for (const who of [alice, bob, carol]) {
      await mesh.transfer(who.address, 10_000n * MESH);
      await mesh.connect(who).approve(await registry.getAddress(), ethers.MaxUint256);
    }
    const usd = await ethers.deployContract("TestUSD");
    return { mesh, registry, owner, market, alice, bob, carol, usd };
  }

  async function registered() {
    const f = await deploy();
    await f.registry.connect(f.alice).register(DEFAULT_PROFILE, "ipfs://alice");
    await f.registry.connect(f.alice).stake(f.alice.address, 2_000n * MESH);
    return f;
  }

  describe("profiles", () => {
    it("registers a provider with the next id and its profile", async () => {
      const { registry, alice, bob } = await networkHelpers.loadFixture(deploy);
      await expect(registry.connect(alice).register(DEFAULT_PROFILE, "ipfs://alice"))
        .to.emit(registry, "ProviderRegistered")
        .withArgs(alice.address, 1, Object.values(DEFAULT_PROFILE), "ipfs://alice");
      const registeredAt = BigInt(await networkHelpers.time.latest());
      await registry.connect(bob).register({ ...DEFAULT_PROFILE, region: "0x0000" }, "");
      expect(await registry.isRegistered(alice.address)).to.equal(true);
      expect(await registry.idOf(bob.address)).to.equal(2n);
      expect(await registry.providerById(2)).to.equal(bob.address);
      expect(await registry.providerCount()).to.equal(2n);
      const p = await registry.profileOf(alice.address);
      expect([p.gpuCount, p.vramGB, p.gpuClass, p.region, p.energy, p.runtimes]).to.deep.equal([2n, 24n, 3n, "0x4445", 2n, 3n]);
      expect((await registry.countersOf(alice.address)).registeredAt).to.equal(registeredAt);
    });

    it("refuses a second registration", async () => {
      const { registry, alice } = await networkHelpers.loadFixture(registered);
      await expect(registry.connect(alice).register(DEFAULT_PROFILE, ""))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryAlreadyRegistered")
        .withArgs(alice.address);
    });

    for (const [field, patch] of [
      ["gpuCount", { gpuCount: 0 }],
      ["vramGB", { vramGB: 0 }],
      ["runtimes", { runtimes: 0 }],
      ["region", { region: "0x6465" }], // "de": lower case
      ["region", { region: "0x4400" }],
    ] as const) {
      it(`rejects a profile with an invalid ${field} (${JSON.stringify(patch)})`, async () => {
        const { registry, alice } = await networkHelpers.loadFixture(deploy);
        await expect(registry.connect(alice).register({ ...DEFAULT_PROFILE, ...patch }, ""))
          .to.be.revertedWithCustomError(registry, "ProviderRegistryInvalidProfile")
          .withArgs(field);
      });
    }

    it("updates a profile, and only a registered one", async () => {
      const { registry, alice, bob } = await networkHelpers.loadFixture(registered);
      const updated = { ...DEFAULT_PROFILE, gpuCount: 8, energy: Energy.Grid };
      await expect(registry.connect(alice).updateProfile(updated, "ipfs://v2"))
        .to.emit(registry, "ProfileUpdated")
        .withArgs(alice.address, Object.values(updated), "ipfs://v2");
      expect((await registry.profileOf(alice.address)).gpuCount).to.equal(8n);
      await expect(registry.connect(bob).updateProfile(updated, ""))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryNotRegistered")
        .withArgs(bob.address);
    });

    it("posts prices one by one and in batches", async () => {
      const { registry, alice, usd, mesh } = await networkHelpers.loadFixture(registered);
      await expect(registry.connect(alice).postPrice(usd, 3n * USD))
        .to.emit(registry, "PricePosted")
        .withArgs(alice.address, await usd.getAddress(), 3n * USD);
      await registry.connect(alice).postPrices([usd, mesh], [2n * USD, 5n * MESH]);
      expect(await registry.postedPrice(alice.address, usd)).to.equal(2n * USD);
      expect(await registry.postedPrice(alice.address, mesh)).to.equal(5n * MESH);
      await expect(registry.connect(alice).postPrices([usd], []))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryArrayLengthMismatch")
        .withArgs(1, 0);
      await expect(registry.connect(alice).postPrice(ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(
        registry,
        "ProviderRegistryZeroAddress",
      );
    });
  });

  describe("stake", () => {
    it("bonds MESH for oneself or another provider", async () => {
      const { registry, mesh, alice, bob } = await networkHelpers.loadFixture(deploy);
      await expect(registry.connect(alice).stake(bob.address, 100n * MESH))
        .to.emit(registry, "Staked")
        .withArgs(bob.address, alice.address, 100n * MESH, 100n * MESH);
      expect((await registry.stakeOf(bob.address)).active).to.equal(100n * MESH);
      expect(await mesh.balanceOf(await registry.getAddress())).to.equal(100n * MESH);
      expect(await registry.totalStaked()).to.equal(100n * MESH);
      await expect(registry.connect(alice).stake(bob.address, 0)).to.be.revertedWithCustomError(registry, "ProviderRegistryZeroAmount");
      await expect(registry.connect(alice).stake(ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(
        registry,
        "ProviderRegistryZeroAddress",
      );
    });

    async function permitSig(owner: any, spender: string, value: bigint, deadline: bigint, mesh: any) {
      const { chainId } = await ethers.provider.getNetwork();
      const sig = await owner.signTypedData(
        { name: "Meshwork", version: "1", chainId, verifyingContract: await mesh.getAddress() },
        {
          Permit: [
            { name: "owner", type: "address" },
            { name: "spender", type: "address" },
            { name: "value", type: "uint256" },
            { name: "nonce", type: "uint256" },
            { name: "deadline", type: "uint256" },
          ],
        },
        { owner: owner.address, spender, value, nonce: await mesh.nonces(owner.address), deadline },
      );
      return ethers.Signature.from(sig);
    }

    it("stakes with a permit in one transaction, even when the permit was front-run", async () => {
      const { registry, mesh, owner, carol } = await networkHelpers.loadFixture(deploy);
      const fresh = ethers.Wallet.createRandom().connect(ethers.provider);
      await networkHelpers.setBalance(fresh.address, 10n ** 18n);
      await mesh.connect(owner).transfer(fresh.address, 500n * MESH);
      const deadline = BigInt(await networkHelpers.time.latest()) + DAY;
      const spender = await registry.getAddress();
      const sig = await permitSig(fresh, spender, 300n * MESH, deadline, mesh);
      await registry.connect(fresh).stakeWithPermit(fresh.address, 300n * MESH, deadline, sig.v, sig.r, sig.s);
      expect((await registry.stakeOf(fresh.address)).active).to.equal(300n * MESH);

      // Someone submits the permit first: the stake still goes through on the allowance it set.
      const sig2 = await permitSig(fresh, spender, 200n * MESH, deadline, mesh);
      await mesh.connect(carol).permit(fresh.address, spender, 200n * MESH, deadline, sig2.v, sig2.r, sig2.s);
      await registry.connect(fresh).stakeWithPermit(fresh.address, 200n * MESH, deadline, sig2.v, sig2.r, sig2.s);
      expect((await registry.stakeOf(fresh.address)).active).to.equal(500n * MESH);
    });

    it("unbonds through entries released after the unbonding period, oldest first", async () => {
      const { registry, mesh, alice } = await networkHelpers.loadFixture(registered);
      await expect(registry.connect(alice).requestUnstake(500n * MESH))
        .to.emit(registry, "UnstakeRequested")
        .withArgs(alice.address, 0, 500n * MESH, BigInt(await networkHelpers.time.latest()) + 1n + UNBONDING_PERIOD);
      await networkHelpers.time.increase(DAY);
      await registry.connect(alice).requestUnstake(300n * MESH);
      const s = await registry.stakeOf(alice.address);
      expect([s.active, s.unbonding]).to.deep.equal([1_200n * MESH, 800n * MESH]);
      expect(await registry.unbondingQueue(alice.address)).to.deep.equal([0n, 2n]);

      const firstRelease = (await registry.unbondingEntry(alice.address, 0)).releaseAt;
      await expect(registry.connect(alice).withdrawStake(10))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryNothingToWithdraw")
        .withArgs(alice.address, firstRelease);

      await networkHelpers.time.increaseTo(firstRelease);
      const before = await mesh.balanceOf(alice.address);
      await expect(registry.connect(alice).withdrawStake(10))
        .to.emit(registry, "StakeWithdrawn")
        .withArgs(alice.address, 500n * MESH, 1);
      expect(await mesh.balanceOf(alice.address)).to.equal(before + 500n * MESH);
      await networkHelpers.time.increase(DAY);
      await registry.connect(alice).withdrawStake(10);
      expect(await registry.unbondingQueue(alice.address)).to.deep.equal([2n, 2n]);
      expect(await registry.totalStaked()).to.equal(1_200n * MESH);
      await expect(registry.connect(alice).withdrawStake(10))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryNothingToWithdraw")
        .withArgs(alice.address, 0);
    });

    it("releases at most maxEntries entries per call", async () => {
      const { registry, alice } = await networkHelpers.loadFixture(registered);
      for (let i = 0; i < 3; i++) await registry.connect(alice).requestUnstake(100n * MESH);
      await networkHelpers.time.increase(UNBONDING_PERIOD + 1n);
      await expect(registry.connect(alice).withdrawStake(2)).to.emit(registry, "StakeWithdrawn").withArgs(alice.address, 200n * MESH, 2);
      await expect(registry.connect(alice).withdrawStake(2)).to.emit(registry, "StakeWithdrawn").withArgs(alice.address, 100n * MESH, 1);
    });

    it("takes any maxEntries, the largest included, once earlier entries were paid out", async () => {
      const { registry, alice } = await networkHelpers.loadFixture(registered);
      for (let i = 0; i < 3; i++) await registry.connect(alice).requestUnstake(100n * MESH);
      await networkHelpers.time.increase(UNBONDING_PERIOD + 1n);
      await registry.connect(alice).withdrawStake(1); // the queue's head moves past 0
      await expect(registry.connect(alice).withdrawStake(ethers.MaxUint256))
        .to.emit(registry, "StakeWithdrawn")
        .withArgs(alice.address, 200n * MESH, 2);
    });

    it("refuses to unstake more than the active stake, or nothing", async () => {
      const { registry, alice } = await networkHelpers.loadFixture(registered);
      await expect(registry.connect(alice).requestUnstake(2_001n * MESH))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryInsufficientStake")
        .withArgs(alice.address, 2_000n * MESH, 2_001n * MESH);
      await expect(registry.connect(alice).requestUnstake(0)).to.be.revertedWithCustomError(registry, "ProviderRegistryZeroAmount");
    });
  });

  describe("market hooks", () => {
    it("slashes active stake first, then unbonding stake pro rata, and jails", async () => {
      const { registry, market, alice } = await networkHelpers.loadFixture(registered);
      await registry.connect(alice).requestUnstake(1_800n * MESH); // active 200, unbonding 1800
      // 50% of 2000 = 1000: 200 from active, 800 from unbonding
      await expect(registry.connect(market).slash(alice.address, 5_000, true))
        .to.emit(registry, "Slashed")
        .withArgs(alice.address, 200n * MESH, 800n * MESH, 5_000)
        .and.to.emit(registry, "Jailed")
        .withArgs(alice.address, BigInt(await networkHelpers.time.latest()) + 1n + JAIL_PERIOD);
      const s = await registry.stakeOf(alice.address);
      expect([s.active, s.unbonding]).to.deep.equal([0n, 1_000n * MESH]);
      expect((await registry.unbondingEntry(alice.address, 0)).amount).to.equal(1_000n * MESH);
      expect(await registry.slashedStake()).to.equal(1_000n * MESH);
      expect(await registry.totalStaked()).to.equal(1_000n * MESH);
      expect((await registry.countersOf(alice.address)).slashes).to.equal(1n);

      // A later request gets shares at the reduced price; both entries keep their value (rounding, at
      // most 1 wei, always in favour of the pool).
      await registry.connect(alice).stake(alice.address, 1_000n * MESH);
      await registry.connect(alice).requestUnstake(500n * MESH);
      const later = (await registry.unbondingEntry(alice.address, 1)).amount;
      const earlier = (await registry.unbondingEntry(alice.address, 0)).amount;
      expect(500n * MESH - later <= 1n && later <= 500n * MESH).to.equal(true);
      expect(1_000n * MESH - earlier <= 1n && earlier <= 1_000n * MESH).to.equal(true);
    });

    it("starts a new share epoch when a slash empties the unbonding pool: later requests keep their full value", async () => {
      const { registry, mesh, market, alice } = await networkHelpers.loadFixture(registered);
      await registry.connect(alice).requestUnstake(500n * MESH); // entry 0, in epoch 0
      await expect(registry.connect(market).slash(alice.address, 10_000, false))
        .to.emit(registry, "Slashed")
        .withArgs(alice.address, 1_500n * MESH, 500n * MESH, 10_000);
      expect((await registry.unbondingEntry(alice.address, 0)).amount).to.equal(0n);

      // Before the epoch, these shares were priced at 500e18 + 1 per MESH wei: 8,000 MESH overflowed uint128.
      await registry.connect(alice).stake(alice.address, 8_000n * MESH);
      await registry.connect(alice).requestUnstake(8_000n * MESH); // entry 1, in epoch 1
      expect((await registry.unbondingEntry(alice.address, 1)).amount).to.equal(8_000n * MESH);
      expect((await registry.stakeOf(alice.address)).unbonding).to.equal(8_000n * MESH);
      // A later partial slash reaches only the new epoch's entry.
      await registry.connect(market).slash(alice.address, 1_000, false); // 10% of 8,000
      expect((await registry.unbondingEntry(alice.address, 1)).amount).to.equal(7_200n * MESH);

      await networkHelpers.time.increase(UNBONDING_PERIOD + 1n);
      const before = await mesh.balanceOf(alice.address);
      // The emptied entry is released for nothing, the new one in full.
      await expect(registry.connect(alice).withdrawStake(10))
        .to.emit(registry, "StakeWithdrawn")
        .withArgs(alice.address, 7_200n * MESH, 2);
      expect(await mesh.balanceOf(alice.address)).to.equal(before + 7_200n * MESH);
      expect(await registry.totalStaked()).to.equal(0n);
      expect(await mesh.balanceOf(await registry.getAddress())).to.equal(await registry.slashedStake());
    });

    it("never shortens a running jail with a later slash, even after the jail period was lowered", async () => {
      const { registry, market, alice } = await networkHelpers.loadFixture(registered);
      await registry.connect(market).slash(alice.address, 100, true);
      const jailedUntil = (await registry.stakeOf(alice.address)).jailedUntil;
      await registry.setParameter(2, 60); // JailPeriod: a minute
      await expect(registry.connect(market).slash(alice.address, 100, true)).to.emit(registry, "Jailed").withArgs(alice.address, jailedUntil);
      expect((await registry.stakeOf(alice.address)).jailedUntil).to.equal(jailedUntil);
      await networkHelpers.time.increase(JAIL_PERIOD + 1n);
      await registry.connect(market).slash(alice.address, 100, true); // the old jail over: a new one from now
      expect((await registry.stakeOf(alice.address)).jailedUntil).to.equal(BigInt(await networkHelpers.time.latest()) + 60n);
    });

    it("keeps a jailed provider inactive until the jail ends and its stake is back at the minimum", async () => {
      const { registry, market, alice } = await networkHelpers.loadFixture(registered);
      expect(await registry.isActive(alice.address)).to.equal(true);
      await registry.connect(market).slash(alice.address, 6_000, true); // 2000 -> 800 < minStake
      expect(await registry.isActive(alice.address)).to.equal(false);
      await networkHelpers.time.increase(JAIL_PERIOD + 1n);
      expect(await registry.isActive(alice.address)).to.equal(false); // stake still too low
      await registry.connect(alice).stake(alice.address, 200n * MESH);
      expect(await registry.isActive(alice.address)).to.equal(true);
    });

    it("lets only the market slash or update counters", async () => {
      const { registry, market, alice, bob } = await networkHelpers.loadFixture(registered);
      for (const call of [
        registry.connect(bob).slash(alice.address, 100, false),
        registry.connect(bob).recordTimedOut(alice.address),
        registry.connect(bob).recordAudit(alice.address, true),
      ]) {
        await expect(call).to.be.revertedWithCustomError(registry, "ProviderRegistryUnauthorized").withArgs(bob.address);
      }
      await registry.connect(market).recordTimedOut(alice.address);
      await registry.connect(market).recordAudit(alice.address, true);
      await registry.connect(market).recordAudit(alice.address, false);
      const c = await registry.countersOf(alice.address);
      expect([c.timedOut, c.audited, c.failedAudits, c.slashes]).to.deep.equal([1n, 2n, 1n, 0n]);
      await expect(registry.connect(market).slash(alice.address, 10_001, false))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryInvalidBps")
        .withArgs(10_001);
    });

    it("checks eligibility in a fixed order and returns the provider id", async () => {
      const { registry, alice, bob, usd } = await networkHelpers.loadFixture(registered);
      await registry.connect(alice).postPrice(usd, 1n * USD);
      const req = (patch: object = {}) => packRequirements({ ...DEFAULT_REQUIREMENTS, ...patch });
      const check = (who: string, q: bigint, price = 100n * USD, units = 10n, checkPrice = true) =>
        registry.checkEligibility(who, usd, q, price, units, checkPrice);
      expect(await check(alice.address, req())).to.deep.equal([BigInt(Eligibility.Eligible), 1n]);
      expect((await check(bob.address, req()))[0]).to.equal(BigInt(Eligibility.NotRegistered));
      expect((await check(alice.address, req({ runtime: 5 })))[0]).to.equal(BigInt(Eligibility.Runtime));
      expect((await check(alice.address, req({ minVramGB: 80 })))[0]).to.equal(BigInt(Eligibility.Vram));
      expect((await check(alice.address, req({ minGpuCount: 4 })))[0]).to.equal(BigInt(Eligibility.GpuCount));
      expect((await check(alice.address, req({ gpuClass: 9 })))[0]).to.equal(BigInt(Eligibility.GpuClass));
      expect((await check(alice.address, req({ region: "BR" })))[0]).to.equal(BigInt(Eligibility.Region));
      expect((await check(alice.address, req(), 9n * USD))[0]).to.equal(BigInt(Eligibility.PriceBelowPosted));
      expect((await check(alice.address, req(), 9n * USD, 10n, false))[0]).to.equal(BigInt(Eligibility.Eligible));
      await registry.connect(alice).updateProfile({ ...DEFAULT_PROFILE, energy: Energy.Grid }, "");
      expect((await check(alice.address, req({ renewableOnly: true })))[0]).to.equal(BigInt(Eligibility.NotRenewable));
      await registry.connect(bob).register(DEFAULT_PROFILE, "");
      expect((await check(bob.address, req()))[0]).to.equal(BigInt(Eligibility.NotActive));
    });
  });

  describe("governance", () => {
    it("sets the market once, to a non-zero address, by the owner only", async () => {
      const { mesh, owner, alice } = await networkHelpers.loadFixture(deploy);
      const registry = await ethers.deployContract("ProviderRegistry", [await mesh.getAddress(), owner.address, 1n, 60n, 0n]);
      await expect(registry.connect(alice).setMarket(alice.address))
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(alice.address);
      await expect(registry.setMarket(ethers.ZeroAddress)).to.be.revertedWithCustomError(registry, "ProviderRegistryZeroAddress");
      await expect(registry.setMarket(alice.address)).to.emit(registry, "MarketSet").withArgs(alice.address);
      await expect(registry.setMarket(owner.address))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryMarketAlreadySet")
        .withArgs(alice.address);
    });

    it("rejects a zero MESH token at deployment", async () => {
      const { owner, registry } = await networkHelpers.loadFixture(deploy);
      await expect(
        ethers.deployContract("ProviderRegistry", [ethers.ZeroAddress, owner.address, 1n, 60n, 0n]),
      ).to.be.revertedWithCustomError(registry, "ProviderRegistryZeroAddress");
    });

    for (const [name, p, good, tooLow, tooHigh] of [
      ["MinStake", Param.MinStake, 5_000n * MESH, 0n, 2n ** 96n],
      ["UnbondingPeriod", Param.UnbondingPeriod, 3n * DAY, 59n, 366n * DAY],
      ["JailPeriod", Param.JailPeriod, 0n, null, 366n * DAY],
    ] as const) {
      it(`sets ${name} within its bounds, emitting old and new values`, async () => {
        const { registry, alice } = await networkHelpers.loadFixture(deploy);
        const old = await registry.parameter(p);
        await expect(registry.setParameter(p, good)).to.emit(registry, "ParameterSet").withArgs(p, old, good);
        expect(await registry.parameter(p)).to.equal(good);
        const [min, max] = await registry.parameterBounds(p);
        if (tooLow !== null) {
          await expect(registry.setParameter(p, tooLow))
            .to.be.revertedWithCustomError(registry, "ProviderRegistryParameterOutOfBounds")
            .withArgs(p, tooLow, min, max);
        }
        await expect(registry.setParameter(p, tooHigh))
          .to.be.revertedWithCustomError(registry, "ProviderRegistryParameterOutOfBounds")
          .withArgs(p, tooHigh, min, max);
        await expect(registry.connect(alice).setParameter(p, good))
          .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
          .withArgs(alice.address);
      });
    }

    it("sends slashed stake where the owner decides, never more than was slashed", async () => {
      const { registry, mesh, market, owner, alice, carol } = await networkHelpers.loadFixture(registered);
      await registry.connect(market).slash(alice.address, 1_000, false); // 200 MESH
      await expect(registry.withdrawSlashedStake(ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(
        registry,
        "ProviderRegistryZeroAddress",
      );
      await expect(registry.withdrawSlashedStake(carol.address, 201n * MESH))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryInsufficientSlashedStake")
        .withArgs(200n * MESH, 201n * MESH);
      await expect(registry.connect(alice).withdrawSlashedStake(alice.address, 1n)).to.be.revertedWithCustomError(
        registry,
        "OwnableUnauthorizedAccount",
      );
      const before = await mesh.balanceOf(carol.address);
      await expect(registry.connect(owner).withdrawSlashedStake(carol.address, 200n * MESH))
        .to.emit(registry, "SlashedStakeWithdrawn")
        .withArgs(carol.address, 200n * MESH);
      expect(await mesh.balanceOf(carol.address)).to.equal(before + 200n * MESH);
      // MESH conservation: what the registry holds is exactly stake + unbonding + slashed.
      expect(await mesh.balanceOf(await registry.getAddress())).to.equal((await registry.totalStaked()) + (await registry.slashedStake()));
    });
  });
});
