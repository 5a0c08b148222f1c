/**
 * The Meshwork DAO as `npm run deploy` builds it (ignition/modules/Devnet.ts, devnet parameters): MESH
 * holders propose and vote in MeshGovernor, passed proposals run through MeshTimelock, which owns the
 * registry, the market and the compute commons. Nobody else can change anything.
 */
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { expect } from "chai";
import { network } from "hardhat";
import { unpackTerms } from "../../sdk/src/params.js";
import {
  DEVNET_PARAMETERS,
  ProposalState,
  Vote,
  contractSigner,
  deployDao,
  passProposal,
  proposalArgs,
  timelockSigner,
  type Action,
  type Dao,
} from "../helpers/dao.js";
import { handoverProblems } from "../../scripts/lib/handover.js";
import { MESH, USD, createJob, fund, makeReveal, onboardProvider, type System } from "../helpers/system.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;

const SUPPLY = 1_000_000_000n * MESH;
const QUORUM = (SUPPLY * 4n) / 100n; // 40M MESH
const VOTING_DELAY = BigInt(DEVNET_PARAMETERS.votingDelay);
const VOTING_PERIOD = BigInt(DEVNET_PARAMETERS.votingPeriod);
const EXTENSION = BigInt(DEVNET_PARAMETERS.lateQuorumExtension);
const TIMELOCK_DELAY = BigInt(DEVNET_PARAMETERS.timelockDelay);

/** Shares of the supply given to the voters (the deployer keeps the rest, undelegated). */
const SHARES = {
  alice: 50_000_000n * MESH, // 5%: meets quorum alone
  bob: 30_000_000n * MESH, // 3%: below quorum
  carol: 100_000_000n * MESH, // 10%
  dave: 60_000_000n * MESH, // 6%, not delegated in the fixture
};

/** TimelockController.OperationState */
enum OperationState {
  Unset,
  Waiting,
  Ready,
  Done,
}

const FEE_BPS = 0; // IJobMarketTypes.Parameter.FeeBps
const UNBONDING_PERIOD = 1; // IProviderRegistry.Parameter.UnbondingPeriod

/** Governor._encodeStateBitmap / TimelockController._encodeStateBitmap of the given states. */
function bitmap(...states: number[]): string {
  return ethers.zeroPadValue(ethers.toBeHex(states.reduce((m, s) => m | (1n << BigInt(s)), 0n)), 32);
}

interface Voters {
  alice: HardhatEthersSigner;
  bob: HardhatEthersSigner;
  carol: HardhatEthersSigner;
  dave: HardhatEthersSigner;
  stranger: HardhatEthersSigner;
}

/** The deployed DAO; MESH shared out, alice, bob and carol have delegated to themselves, dave has not. */
async function daoWithVoters(): Promise<Dao & Voters> {
  const dao = await deployDao(connection);
  const [, alice, bob, carol, dave, stranger] = await ethers.getSigners();
  const voters = { alice, bob, carol, dave };
  for (const [name, signer] of Object.entries(voters)) {
    await dao.mesh.transfer(signer.address, SHARES[name as keyof typeof SHARES]);
  }
  for (const signer of [alice, bob, carol]) await dao.mesh.connect(signer).delegate(signer.address);
  return { ...dao, ...voters, stranger };
}

/** Proposes `actions` as `proposer`; returns the id and everything queue/execute/cancel need. */
async function propose(dao: Dao, proposer: HardhatEthersSigner, actions: Action[], description: string) {
  const { targets, values, calldatas } = await proposalArgs(actions, description);
  const descriptionHash = ethers.id(description);
  const id = await dao.governor.hashProposal(targets, values, calldatas, descriptionHash);
  const tx = await dao.governor.connect(proposer).propose(targets, values, calldatas, description);
  const call = [targets, values, calldatas, descriptionHash] as const;
  return { id, tx, targets, values, calldatas, descriptionHash, call };
}

/** The timelock's operation id of a queued proposal (the governor salts it with its own address). */
async function operationId(dao: Dao, p: Awaited<ReturnType<typeof propose>>): Promise<string> {
  const governor = BigInt(await dao.governor.getAddress());
  const salt = ethers.toBeHex((governor << 96n) ^ BigInt(p.descriptionHash), 32);
  return dao.timelock.hashOperationBatch(p.targets, p.values, p.calldatas, ethers.ZeroHash, salt);
}

function setParameter(dao: Dao, which: number, value: bigint | number): Action {
  return { target: dao.market, data: dao.market.interface.encodeFunctionData("setParameter", [which, value]) };
}

describe("Meshwork governance", () => {
  describe("deployment wiring", () => {
    it("hands the registry, the market and the compute commons to the timelock", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const timelock = await dao.timelock.getAddress();
      expect(await dao.registry.owner()).to.equal(timelock);
      const market = await ethers.getContractAt("JobMarket", await dao.market.getAddress());
      expect(await market.owner()).to.equal(timelock);
      expect(await dao.commons.owner()).to.equal(timelock);
      // The market is wired to the registry and the commons, and no guardian is set.
      expect(await dao.registry.market()).to.equal(await dao.market.getAddress());
      expect(await dao.market.commons()).to.equal(await dao.commons.getAddress());
      expect(await dao.market.guardian()).to.equal(ethers.ZeroAddress);
    });

    it("makes the governor the timelock's proposer and canceller, lets anyone execute, and leaves the deployer nothing", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { timelock, governor, deployer } = dao;
      const [proposer, canceller, executor, admin] = await Promise.all([
        timelock.PROPOSER_ROLE(),
        timelock.CANCELLER_ROLE(),
        timelock.EXECUTOR_ROLE(),
        timelock.DEFAULT_ADMIN_ROLE(),
      ]);
      expect(await timelock.hasRole(proposer, governor)).to.equal(true);
      expect(await timelock.hasRole(canceller, governor)).to.equal(true);
      expect(await timelock.hasRole(executor, ethers.ZeroAddress)).to.equal(true); // open role: anyone
      expect(await timelock.hasRole(admin, timelock)).to.equal(true); // its own admin
      for (const role of [admin, proposer, canceller]) {
        expect(await timelock.hasRole(role, deployer.address)).to.equal(false);
      }
      expect(await timelock.hasRole(admin, governor)).to.equal(false);
      expect(await timelock.getMinDelay()).to.equal(TIMELOCK_DELAY);
    });

    it("passes the deploy script's hand-over check, which names what someone else still controls", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const contracts = {
        mesh: await dao.mesh.getAddress(),
        registry: await dao.registry.getAddress(),
        market: await dao.market.getAddress(),
        timelock: await dao.timelock.getAddress(),
        governor: await dao.governor.getAddress(),
        commons: await dao.commons.getAddress(),
      };
      expect(await handoverProblems(ethers.provider, contracts, dao.deployer.address)).to.deep.equal([]);

      const timelock = await timelockSigner(dao);
      await dao.registry.connect(timelock).transferOwnership(dao.deployer.address);
      await dao.timelock.connect(timelock).grantRole(await dao.timelock.PROPOSER_ROLE(), dao.deployer.address);
      expect(await handoverProblems(ethers.provider, contracts, dao.deployer.address)).to.deep.equal([
        `the registry's owner is ${dao.deployer.address}, not the timelock (${contracts.timelock})`,
        `the deployer ${dao.deployer.address} is still the timelock's proposer`,
      ]);
    });

    it("configures the governor with the devnet parameters", async () => {
      const { governor } = await networkHelpers.loadFixture(daoWithVoters);
      expect(await governor.votingDelay()).to.equal(VOTING_DELAY);
      expect(await governor.votingPeriod()).to.equal(VOTING_PERIOD);
      expect(await governor.proposalThreshold()).to.equal(DEVNET_PARAMETERS.proposalThreshold);
      expect(await governor.lateQuorumVoteExtension()).to.equal(EXTENSION);
      expect(await governor["quorumNumerator()"]()).to.equal(4n);
      expect(await governor.quorumDenominator()).to.equal(100n);
    });

    it("runs on MESH's timestamp clock (ERC-6372)", async () => {
      const { governor, mesh } = await networkHelpers.loadFixture(daoWithVoters);
      expect(await governor.CLOCK_MODE()).to.equal("mode=timestamp");
      expect(await mesh.CLOCK_MODE()).to.equal("mode=timestamp");
      const t = BigInt(await time.latest());
      expect(await governor.clock()).to.equal(t);
    });

    it("exposes what Governor front ends (Tally) read", async () => {
      const { governor, mesh, timelock } = await networkHelpers.loadFixture(daoWithVoters);
      expect(await governor.name()).to.equal("Meshwork DAO");
      expect(await governor.version()).to.equal("1");
      expect(await governor.COUNTING_MODE()).to.equal("support=bravo&quorum=for,abstain");
      expect(await governor.timelock()).to.equal(await timelock.getAddress());
      expect(await governor.token()).to.equal(await mesh.getAddress());
      await time.increase(10);
      const past = BigInt(await time.latest()) - 1n;
      expect(await mesh.getPastTotalSupply(past)).to.equal(SUPPLY);
      expect(await governor.quorum(past)).to.equal(QUORUM);
    });
  });

  describe("a proposal's lifecycle", () => {
    it("changes a market parameter: delegate, propose, vote, queue, wait, execute", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, market, mesh, dave, consumer } = { ...dao, consumer: dao.stranger };
      const sys = dao as unknown as System; // the kit's job helpers need only ethers, the market and tUSD
      await fund(sys, consumer, 1_000n * USD);
      const before = await createJob(sys, consumer);
      expect(unpackTerms(BigInt(before.job.terms)).feeBps).to.equal(250);

      // Delegate: undelegated MESH does not vote.
      expect(await mesh.getVotes(dave.address)).to.equal(0n);
      await expect(mesh.connect(dave).delegate(dave.address))
        .to.emit(mesh, "DelegateVotesChanged")
        .withArgs(dave.address, 0n, SHARES.dave);
      expect(await mesh.getVotes(dave.address)).to.equal(SHARES.dave);

      // Propose: Pending for the voting delay.
      const description = "Meshwork fee to 3%";
      const t0 = BigInt(await time.latest()) + 5n;
      await time.setNextBlockTimestamp(t0);
      const p = await propose(dao, dave, [setParameter(dao, FEE_BPS, 300)], description);
      await expect(p.tx)
        .to.emit(governor, "ProposalCreated")
        .withArgs(p.id, dave.address, p.targets, p.values, [""], p.calldatas, t0 + VOTING_DELAY, t0 + VOTING_DELAY + VOTING_PERIOD, description);
      expect(await governor.proposalSnapshot(p.id)).to.equal(t0 + VOTING_DELAY);
      expect(await governor.proposalDeadline(p.id)).to.equal(t0 + VOTING_DELAY + VOTING_PERIOD);
      expect(await governor.proposalProposer(p.id)).to.equal(dave.address);
      expect(await governor.state(p.id)).to.equal(ProposalState.Pending);
      await expect(governor.connect(dave).castVote(p.id, Vote.For))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.id, ProposalState.Pending, bitmap(ProposalState.Active));

      // Vote.
      await time.increaseTo(t0 + VOTING_DELAY + 1n);
      expect(await governor.state(p.id)).to.equal(ProposalState.Active);
      await expect(governor.connect(dave).castVote(p.id, Vote.For))
        .to.emit(governor, "VoteCast")
        .withArgs(dave.address, p.id, Vote.For, SHARES.dave, "");
      expect(await governor.hasVoted(p.id, dave.address)).to.equal(true);
      expect(await governor.proposalVotes(p.id)).to.deep.equal([0n, SHARES.dave, 0n]);
      await expect(governor.connect(dave).castVote(p.id, Vote.For))
        .to.be.revertedWithCustomError(governor, "GovernorAlreadyCastVote")
        .withArgs(dave.address);

      // Succeeded once the vote is over; not executable before it is queued.
      await time.increaseTo(t0 + VOTING_DELAY + VOTING_PERIOD + 1n);
      expect(await governor.state(p.id)).to.equal(ProposalState.Succeeded);
      await expect(governor.execute(...p.call))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.id, ProposalState.Succeeded, bitmap(ProposalState.Queued));

      // Queue: the timelock delay starts (anyone may queue).
      const tq = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(tq);
      const queue = governor.connect(dao.bob).queue(...p.call);
      await expect(queue).to.emit(governor, "ProposalQueued").withArgs(p.id, tq + TIMELOCK_DELAY);
      const opId = await operationId(dao, p);
      await expect(queue).to.emit(dao.timelock, "CallScheduled");
      expect(await governor.state(p.id)).to.equal(ProposalState.Queued);
      expect(await governor.proposalEta(p.id)).to.equal(tq + TIMELOCK_DELAY);
      expect(await dao.timelock.getOperationState(opId)).to.equal(OperationState.Waiting);

      // Not before the delay has passed: the timelock refuses an operation that is not Ready.
      await time.setNextBlockTimestamp(tq + TIMELOCK_DELAY - 1n);
      await expect(governor.execute(...p.call))
        .to.be.revertedWithCustomError(dao.timelock, "TimelockUnexpectedOperationState")
        .withArgs(opId, bitmap(OperationState.Ready));
      expect(await market.parameter(FEE_BPS)).to.equal(250n);

      // Execute (anyone may): the timelock calls the market.
      await time.setNextBlockTimestamp(tq + TIMELOCK_DELAY);
      const execute = governor.connect(dao.stranger).execute(...p.call);
      await expect(execute).to.emit(governor, "ProposalExecuted").withArgs(p.id);
      await expect(execute).to.emit(market, "ParameterSet").withArgs(FEE_BPS, 250n, 300n);
      await expect(execute).to.emit(dao.timelock, "CallExecuted").withArgs(opId, 0n, await market.getAddress(), 0n, p.calldatas[0]);
      expect(await governor.state(p.id)).to.equal(ProposalState.Executed);
      expect(await dao.timelock.getOperationState(opId)).to.equal(OperationState.Done);
      await expect(governor.execute(...p.call))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.id, ProposalState.Executed, bitmap(ProposalState.Queued));

      // The new fee is in force for new jobs; jobs created before keep the terms they were created with.
      expect(await market.parameter(FEE_BPS)).to.equal(300n);
      expect(unpackTerms(await market.currentTerms()).feeBps).to.equal(300);
      const after = await createJob(sys, consumer);
      expect(unpackTerms(BigInt(after.job.terms)).feeBps).to.equal(300);
      expect(unpackTerms(BigInt(before.job.terms)).feeBps).to.equal(250);
    });

    it("refuses the same changes from anyone but the timelock", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { market, registry, commons, deployer, alice, usd } = dao;
      for (const caller of [deployer, alice]) {
        await expect(market.connect(caller).setParameter(FEE_BPS, 300))
          .to.be.revertedWithCustomError(market, "OwnableUnauthorizedAccount")
          .withArgs(caller.address);
        await expect(registry.connect(caller).setParameter(UNBONDING_PERIOD, 1_200))
          .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
          .withArgs(caller.address);
        await expect(commons.connect(caller).createProgramme("grants", usd, 0n, 0n, 1n))
          .to.be.revertedWithCustomError(commons, "OwnableUnauthorizedAccount")
          .withArgs(caller.address);
      }
      // The timelock itself may (here impersonated; live only by executing a proposal).
      const timelock = await timelockSigner(dao);
      await expect(market.connect(timelock).setParameter(FEE_BPS, 300)).to.emit(market, "ParameterSet").withArgs(FEE_BPS, 250n, 300n);
    });

    it("changes a registry parameter by proposal", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { registry, alice } = dao;
      const unbonding = BigInt(DEVNET_PARAMETERS.unbondingPeriod);
      expect(await registry.parameter(UNBONDING_PERIOD)).to.equal(unbonding);
      const data = registry.interface.encodeFunctionData("setParameter", [UNBONDING_PERIOD, 1_200]);
      const id = await passProposal(dao, alice, [{ target: registry, data }], "Unbonding period to 20 minutes");
      expect(await dao.governor.state(id)).to.equal(ProposalState.Executed);
      expect(await registry.parameter(UNBONDING_PERIOD)).to.equal(1_200n);
      const events = await registry.queryFilter(registry.filters.ParameterSet(UNBONDING_PERIOD));
      expect(events.at(-1)!.args).to.deep.equal([BigInt(UNBONDING_PERIOD), unbonding, 1_200n]);
    });

    it("lets a proposal withdraw the treasury and slashed stake, which nobody else can", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { market, registry, usd, mesh, deployer, alice, stranger } = dao;
      const sys = dao as unknown as System;
      const [provider, consumer] = (await ethers.getSigners()).slice(6, 8);

      // Fill the treasury: a provider commits and never reveals (collateral forfeited, stake slashed).
      await onboardProvider(sys, provider);
      await fund(sys, provider, 1_000n * USD);
      await fund(sys, consumer, 1_000n * USD);
      const { jobId, job } = await createJob(sys, consumer);
      await market.connect(provider).claim(job);
      await market.connect(provider).commit(jobId, makeReveal(ethers, jobId, provider.address).commitment);
      await time.increase(BigInt(DEVNET_PARAMETERS.challengeWindow + DEVNET_PARAMETERS.revealWindow) + 1n);
      const collateral = 200n * USD;
      const toTreasury = collateral / 5n; // 20%: the consumer gets its 30% and the absent auditors' 50%
      const slashed = 100n * MESH; // 10% of the 1,000 MESH stake
      await expect(market.enforceDeadline(job))
        .to.emit(market, "JobRevealMissed")
        .withArgs(jobId, provider.address, collateral - toTreasury, toTreasury, slashed);
      expect(await market.treasuryAccrual(usd)).to.equal(toTreasury);
      expect(await registry.slashedStake()).to.equal(slashed);

      for (const caller of [deployer, alice]) {
        await expect(market.connect(caller).withdrawTreasury(usd, caller.address, toTreasury))
          .to.be.revertedWithCustomError(market, "OwnableUnauthorizedAccount")
          .withArgs(caller.address);
        await expect(registry.connect(caller).withdrawSlashedStake(caller.address, slashed))
          .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
          .withArgs(caller.address);
      }

      const actions = [
        { target: market, data: market.interface.encodeFunctionData("withdrawTreasury", [await usd.getAddress(), stranger.address, toTreasury]) },
        { target: registry, data: registry.interface.encodeFunctionData("withdrawSlashedStake", [stranger.address, slashed]) },
      ];
      const meshBefore = await mesh.balanceOf(stranger.address);
      await passProposal(dao, alice, actions, "Pay the treasury and the slashed stake to the grants multisig");
      expect(await usd.balanceOf(stranger.address)).to.equal(toTreasury);
      expect(await mesh.balanceOf(stranger.address)).to.equal(meshBefore + slashed);
      expect(await market.treasuryAccrual(usd)).to.equal(0n);
      expect(await registry.slashedStake()).to.equal(0n);
      const [withdrawn] = await market.queryFilter(market.filters.TreasuryWithdrawn());
      expect(withdrawn.args).to.deep.equal([await usd.getAddress(), stranger.address, toTreasury]);
    });
  });

  describe("vote outcomes", () => {
    /** Proposes a fee change as alice and waits for the vote to open. */
    async function activeProposal(dao: Dao & Voters, description = "Fee to 1%") {
      const p = await propose(dao, dao.alice, [setParameter(dao, FEE_BPS, 100)], description);
      await time.increaseTo((await dao.governor.proposalSnapshot(p.id)) + 1n);
      return p;
    }

    async function afterDeadline(dao: Dao, id: bigint) {
      await time.increaseTo((await dao.governor.proposalDeadline(id)) + 1n);
    }

    it("is defeated when the votes for and abstaining fall short of quorum (4% of the supply at the snapshot)", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, bob } = dao;
      const p = await activeProposal(dao);
      await expect(governor.connect(bob).castVote(p.id, Vote.For)).to.emit(governor, "VoteCast").withArgs(bob.address, p.id, Vote.For, SHARES.bob, "");
      await afterDeadline(dao, p.id);
      expect(await governor.quorum(await governor.proposalSnapshot(p.id))).to.equal(QUORUM);
      expect(SHARES.bob).to.be.lessThan(QUORUM);
      expect(await governor.proposalVotes(p.id)).to.deep.equal([0n, SHARES.bob, 0n]);
      expect(await governor.state(p.id)).to.equal(ProposalState.Defeated);
      await expect(governor.queue(...p.call))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.id, ProposalState.Defeated, bitmap(ProposalState.Succeeded));
      await expect(governor.execute(...p.call))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.id, ProposalState.Defeated, bitmap(ProposalState.Queued));
      expect(await dao.market.parameter(FEE_BPS)).to.equal(250n);
    });

    it("counts abstentions toward quorum but not toward the majority", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, alice, bob } = dao;
      const p = await activeProposal(dao);
      await governor.connect(bob).castVote(p.id, Vote.For); // 3%: alone short of quorum
      await governor.connect(alice).castVoteWithReason(p.id, Vote.Abstain, "no opinion");
      await afterDeadline(dao, p.id);
      expect(await governor.proposalVotes(p.id)).to.deep.equal([0n, SHARES.bob, SHARES.alice]);
      expect(await governor.state(p.id)).to.equal(ProposalState.Succeeded);
    });

    it("is defeated by a majority against, even with quorum reached", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, alice, carol } = dao;
      const p = await activeProposal(dao);
      await governor.connect(alice).castVote(p.id, Vote.For); // 5%: quorum
      await expect(governor.connect(carol).castVote(p.id, Vote.Against))
        .to.emit(governor, "VoteCast")
        .withArgs(carol.address, p.id, Vote.Against, SHARES.carol, "");
      await afterDeadline(dao, p.id);
      expect(await governor.proposalVotes(p.id)).to.deep.equal([SHARES.carol, SHARES.alice, 0n]);
      expect(await governor.state(p.id)).to.equal(ProposalState.Defeated);
      await expect(governor.queue(...p.call))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.id, ProposalState.Defeated, bitmap(ProposalState.Succeeded));
    });

    it("counts only the votes delegated at the snapshot", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, dave } = dao;
      const p = await activeProposal(dao);
      await dao.mesh.connect(dave).delegate(dave.address); // after the snapshot
      expect(await dao.mesh.getVotes(dave.address)).to.equal(SHARES.dave);
      await expect(governor.connect(dave).castVote(p.id, Vote.For)).to.emit(governor, "VoteCast").withArgs(dave.address, p.id, Vote.For, 0n, "");
      await afterDeadline(dao, p.id);
      expect(await governor.state(p.id)).to.equal(ProposalState.Defeated);
    });

    it("extends the vote when quorum is reached in its last moments (late-quorum protection)", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, alice, bob, carol } = dao;
      const p = await activeProposal(dao);
      const deadline = await governor.proposalDeadline(p.id);

      // A vote that does not reach quorum extends nothing.
      await expect(governor.connect(bob).castVote(p.id, Vote.For)).to.not.emit(governor, "ProposalExtended");

      // Quorum reached 10 s before the deadline: the vote now ends lateQuorumExtension after that vote.
      const tLate = deadline - 10n;
      await time.setNextBlockTimestamp(tLate);
      await expect(governor.connect(alice).castVote(p.id, Vote.For))
        .to.emit(governor, "ProposalExtended")
        .withArgs(p.id, tLate + EXTENSION);
      expect(await governor.proposalDeadline(p.id)).to.equal(tLate + EXTENSION);

      // Past the original deadline the vote is still open, and the other side can still answer.
      await time.increaseTo(deadline + 1n);
      expect(await governor.state(p.id)).to.equal(ProposalState.Active);
      await expect(governor.connect(carol).castVote(p.id, Vote.Against)).to.not.emit(governor, "ProposalExtended"); // once only
      expect(await governor.proposalDeadline(p.id)).to.equal(tLate + EXTENSION);

      await time.increaseTo(tLate + EXTENSION + 1n);
      expect(await governor.state(p.id)).to.equal(ProposalState.Defeated);
      expect(await governor.proposalVotes(p.id)).to.deep.equal([SHARES.carol, SHARES.alice + SHARES.bob, 0n]);
    });

    it("does not extend a vote whose quorum was reached early", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, alice } = dao;
      const p = await activeProposal(dao);
      const deadline = await governor.proposalDeadline(p.id);
      await expect(governor.connect(alice).castVote(p.id, Vote.For)).to.not.emit(governor, "ProposalExtended");
      expect(await governor.proposalDeadline(p.id)).to.equal(deadline);
      await time.increaseTo(deadline + 1n);
      expect(await governor.state(p.id)).to.equal(ProposalState.Succeeded);
    });
  });

  describe("stakers' votes", () => {
    /** `signer` stakes `amount` of its MESH as a provider (the registry holds it, delegating to nobody). */
    async function stake(dao: Dao, signer: HardhatEthersSigner, amount: bigint) {
      await dao.mesh.connect(signer).approve(await dao.registry.getAddress(), amount);
      await dao.registry.connect(signer).stake(signer.address, amount);
    }

    it("counts a staker's own active stake with its delegated MESH, as both were at the vote's snapshot", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, registry, bob, dave } = dao;
      await stake(dao, bob, SHARES.bob / 3n);
      await stake(dao, dave, SHARES.dave / 2n); // dave never delegated: only his stake votes
      const t = await time.latest();
      await time.increase(1);
      expect(await dao.mesh.getVotes(bob.address)).to.equal(SHARES.bob - SHARES.bob / 3n);
      expect(await registry.getPastStakeVotes(bob.address, t)).to.equal(SHARES.bob / 3n);
      expect(await governor.getVotes(bob.address, t)).to.equal(SHARES.bob);
      expect(await governor.getVotes(dave.address, t)).to.equal(SHARES.dave / 2n);
      expect(await registry.stakeVotes(dave.address)).to.equal(SHARES.dave / 2n);

      const p = await propose(dao, dao.alice, [setParameter(dao, FEE_BPS, 100)], "Fee to 1%");
      await time.increaseTo((await governor.proposalSnapshot(p.id)) + 1n);
      await stake(dao, dave, SHARES.dave / 2n); // after the snapshot: not counted for this vote
      await expect(governor.connect(bob).castVote(p.id, Vote.For)).to.emit(governor, "VoteCast").withArgs(bob.address, p.id, Vote.For, SHARES.bob, "");
      await expect(governor.connect(dave).castVote(p.id, Vote.For)).to.emit(governor, "VoteCast").withArgs(dave.address, p.id, Vote.For, SHARES.dave / 2n, "");
      await time.increaseTo((await governor.proposalDeadline(p.id)) + 1n);
      // 3% + 3%: quorum (4% of the whole supply, staked MESH included) only with the stakes counted.
      expect(await governor.quorum(await governor.proposalSnapshot(p.id))).to.equal(QUORUM);
      expect(await governor.proposalVotes(p.id)).to.deep.equal([0n, SHARES.bob + SHARES.dave / 2n, 0n]);
      expect(await governor.state(p.id)).to.equal(ProposalState.Succeeded);
    });

    it("stops counting stake from its unstake request on, and never changes the votes of a past time", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, registry, bob } = dao;
      await stake(dao, bob, SHARES.bob);
      const staked = await time.latest();
      await time.increase(10);
      await registry.connect(bob).requestUnstake(SHARES.bob / 4n);
      const requested = await time.latest();
      await time.increase(1);
      expect(await governor.getVotes(bob.address, staked)).to.equal(SHARES.bob);
      expect(await governor.getVotes(bob.address, requested - 1)).to.equal(SHARES.bob);
      expect(await governor.getVotes(bob.address, requested)).to.equal((SHARES.bob * 3n) / 4n); // unbonding MESH does not vote
      expect(await governor.getVotes(bob.address, staked - 1)).to.equal(SHARES.bob); // before: delegated MESH
      expect(await dao.mesh.getVotes(bob.address)).to.equal(0n);
    });

    it("takes a slashed stake's votes away until its next change counts it again, never more than it was", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, registry, bob } = dao;
      await stake(dao, bob, SHARES.bob / 2n);
      const staked = await time.latest();
      await time.increase(10);
      const market = await contractSigner(dao, dao.market);
      await registry.connect(market).slash(bob.address, 1_000, true); // 10%, as a fraud verdict
      const slashed = await time.latest();
      expect((await registry.countersOf(bob.address)).unrecordedSlashAt).to.equal(BigInt(slashed));
      await time.increase(10);
      // Before the slash the whole stake voted; from the slash the record can no longer be trusted.
      expect(await registry.getPastStakeVotes(bob.address, staked)).to.equal(SHARES.bob / 2n);
      expect(await registry.getPastStakeVotes(bob.address, slashed - 1)).to.equal(SHARES.bob / 2n);
      expect(await registry.getPastStakeVotes(bob.address, slashed)).to.equal(0n);
      expect(await registry.stakeVotes(bob.address)).to.equal(0n);
      expect(await governor.getVotes(bob.address, slashed)).to.equal(SHARES.bob / 2n); // its delegated MESH only

      await stake(dao, bob, 1n); // any change records the stake as it is now
      const restaked = await time.latest();
      await time.increase(1);
      const left = ((SHARES.bob / 2n) * 9n) / 10n + 1n;
      expect((await registry.stakeOf(bob.address)).active).to.equal(left);
      expect(await registry.getPastStakeVotes(bob.address, restaked)).to.equal(left);
      expect(await governor.getVotes(bob.address, restaked)).to.equal(SHARES.bob / 2n - 1n + left);
      expect(await registry.getPastStakeVotes(bob.address, restaked - 1)).to.equal(0n); // the past stays as it was read
      expect(await registry.getPastStakeVotes(bob.address, slashed - 1)).to.equal(SHARES.bob / 2n);
    });

    it("refuses to tell the stake votes of a time not yet past", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { registry, bob } = dao;
      await stake(dao, bob, SHARES.bob);
      const now = await time.latest();
      await expect(registry.getPastStakeVotes(bob.address, now))
        .to.be.revertedWithCustomError(registry, "ProviderRegistryFutureLookup")
        .withArgs(now, now);
      await expect(dao.governor.getVotes(bob.address, now + 100))
        .to.be.revertedWithCustomError(dao.mesh, "ERC5805FutureLookup")
        .withArgs(now + 100, now);
    });

    it("leaves the votes of a time before a slash as they were, so an open vote still counts the stake", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, registry, bob, dave } = dao;
      await stake(dao, bob, SHARES.bob);
      const p = await propose(dao, dao.alice, [setParameter(dao, FEE_BPS, 100)], "Fee to 1%, then a slash");
      const snapshot = await governor.proposalSnapshot(p.id);
      await time.increaseTo(snapshot + 1n);
      const market = await contractSigner(dao, dao.market);
      await registry.connect(market).slash(bob.address, 1, true); // after the snapshot
      const slashed = await time.latest();
      expect(await governor.getVotes(bob.address, snapshot)).to.equal(SHARES.bob);
      await dao.mesh.connect(dave).approve(await registry.getAddress(), 1n);
      await registry.connect(dave).stake(bob.address, 1n); // anyone's stake records it again
      const restaked = await time.latest();
      await time.increase(1);
      expect(await governor.getVotes(bob.address, snapshot)).to.equal(SHARES.bob);
      expect(await registry.getPastStakeVotes(bob.address, slashed)).to.equal(0n);
      expect(await registry.getPastStakeVotes(bob.address, restaked)).to.equal(SHARES.bob - SHARES.bob / 10_000n + 1n);
      await expect(governor.connect(bob).castVote(p.id, Vote.For)).to.emit(governor, "VoteCast").withArgs(bob.address, p.id, Vote.For, SHARES.bob, "");
    });

    it("keeps a stake's votes through a slash that takes none of it (0 bps, or only unbonding stake)", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { registry, bob } = dao;
      await stake(dao, bob, SHARES.bob);
      await time.increase(5);
      const market = await contractSigner(dao, dao.market);
      await registry.connect(market).slash(bob.address, 0, true);
      expect((await registry.countersOf(bob.address)).slashes).to.equal(1n);
      expect((await registry.countersOf(bob.address)).unrecordedSlashAt).to.equal(0n);
      expect(await registry.stakeVotes(bob.address)).to.equal(SHARES.bob);
    });

    it("is wired to the deployed registry", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      expect(await dao.governor.stakeRegistry()).to.equal(await dao.registry.getAddress());
    });
  });

  describe("cancellation and the timelock", () => {
    it("lets the proposer cancel while the proposal is pending, and nobody else", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, alice, bob, deployer } = dao;
      const p = await propose(dao, alice, [setParameter(dao, FEE_BPS, 100)], "Fee to 1%");
      expect(await governor.state(p.id)).to.equal(ProposalState.Pending);
      for (const caller of [bob, deployer]) {
        await expect(governor.connect(caller).cancel(...p.call))
          .to.be.revertedWithCustomError(governor, "GovernorUnableToCancel")
          .withArgs(p.id, caller.address);
      }
      await expect(governor.connect(alice).cancel(...p.call)).to.emit(governor, "ProposalCanceled").withArgs(p.id);
      expect(await governor.state(p.id)).to.equal(ProposalState.Canceled);

      await time.increaseTo((await governor.proposalSnapshot(p.id)) + 1n);
      await expect(governor.connect(alice).castVote(p.id, Vote.For))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.id, ProposalState.Canceled, bitmap(ProposalState.Active));
      await expect(governor.queue(...p.call))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.id, ProposalState.Canceled, bitmap(ProposalState.Succeeded));
      // A cancelled proposal cannot be submitted again (same id).
      await expect(governor.connect(alice).propose(p.targets, p.values, p.calldatas, "Fee to 1%"))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.id, ProposalState.Canceled, ethers.ZeroHash);
    });

    it("does not let the proposer cancel once voting has started", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, alice } = dao;
      const p = await propose(dao, alice, [setParameter(dao, FEE_BPS, 100)], "Fee to 1%");
      await time.increaseTo((await governor.proposalSnapshot(p.id)) + 1n);
      expect(await governor.state(p.id)).to.equal(ProposalState.Active);
      await expect(governor.connect(alice).cancel(...p.call))
        .to.be.revertedWithCustomError(governor, "GovernorUnableToCancel")
        .withArgs(p.id, alice.address);
    });

    it("cannot be driven directly: only the governor schedules and cancels, only the timelock administers itself", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { timelock, deployer, alice } = dao;
      const [proposer, canceller, admin] = await Promise.all([timelock.PROPOSER_ROLE(), timelock.CANCELLER_ROLE(), timelock.DEFAULT_ADMIN_ROLE()]);
      const data = dao.market.interface.encodeFunctionData("setParameter", [FEE_BPS, 0]);
      const target = await dao.market.getAddress();
      for (const caller of [deployer, alice]) {
        await expect(timelock.connect(caller).schedule(target, 0n, data, ethers.ZeroHash, ethers.ZeroHash, TIMELOCK_DELAY))
          .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, proposer);
        await expect(timelock.connect(caller).cancel(ethers.ZeroHash))
          .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, canceller);
        await expect(timelock.connect(caller).grantRole(proposer, caller.address))
          .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, admin);
        await expect(timelock.connect(caller).updateDelay(0n))
          .to.be.revertedWithCustomError(timelock, "TimelockUnauthorizedCaller")
          .withArgs(caller.address);
      }
      // Executing something never scheduled fails though anyone may execute.
      await expect(timelock.connect(alice).execute(target, 0n, data, ethers.ZeroHash, ethers.ZeroHash)).to.be.revertedWithCustomError(
        timelock,
        "TimelockUnexpectedOperationState",
      );
    });

    it("changes its own delay only by proposal", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { timelock, alice } = dao;
      const data = timelock.interface.encodeFunctionData("updateDelay", [2n * TIMELOCK_DELAY]);
      await passProposal(dao, alice, [{ target: timelock, data }], "Longer timelock delay");
      expect(await timelock.getMinDelay()).to.equal(2n * TIMELOCK_DELAY);
      const changes = await timelock.queryFilter(timelock.filters.MinDelayChange()); // the first: at deployment
      expect(changes.at(-1)!.args).to.deep.equal([TIMELOCK_DELAY, 2n * TIMELOCK_DELAY]);
    });
  });

  describe("the governor's own settings", () => {
    it("changes them by proposal", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, alice } = dao;
      const data = governor.interface.encodeFunctionData("setVotingPeriod", [600]);
      await passProposal(dao, alice, [{ target: governor, data }], "Ten-minute votes");
      expect(await governor.votingPeriod()).to.equal(600n);
      const sets = await governor.queryFilter(governor.filters.VotingPeriodSet()); // the first: at deployment
      expect(sets.at(-1)!.args).to.deep.equal([VOTING_PERIOD, 600n]);

      // The next proposal runs for the new period.
      const p = await propose(dao, alice, [setParameter(dao, FEE_BPS, 100)], "Fee to 1%");
      expect((await governor.proposalDeadline(p.id)) - (await governor.proposalSnapshot(p.id))).to.equal(600n);
    });

    it("refuses changes from anyone but governance (the timelock executing a proposal)", async () => {
      const dao = await networkHelpers.loadFixture(daoWithVoters);
      const { governor, deployer, alice } = dao;
      for (const caller of [deployer, alice]) {
        const g = governor.connect(caller);
        const calls = [
          () => g.setVotingPeriod(600),
          () => g.setVotingDelay(1),
          () => g.setProposalThreshold(0n),
          () => g.updateQuorumNumerator(1),
          () => g.setLateQuorumVoteExtension(0),
          () => g.updateTimelock(caller.address),
          () => g.relay(caller.address, 0n, "0x"),
        ];
        for (const call of calls) {
          await expect(call()).to.be.revertedWithCustomError(governor, "GovernorOnlyExecutor").withArgs(caller.address);
        }
      }
      expect(await governor.votingPeriod()).to.equal(VOTING_PERIOD);
    });
  });
});
