/**
 * SDK modules against the devnet deployment: providers (profile, prices, stake with permit, unstake,
 * list and reputation), balances (deposit, batched withdrawal, per-token view), governance (delegate,
 * a typed parameter proposal voted with a reason, queued and executed, listed with tallies) and the
 * commons (a programme passed by governance, a grantee paying a job from its grant).
 */
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import { hexlify } from "ethers";
import { network } from "hardhat";
import { MeshworkContractError, MeshworkError, MeshworkValidationError } from "../../sdk/src/errors.js";
import { Energy, Runtime, reputationOf } from "../../sdk/src/providers.js";
import { rankCandidates } from "../../sdk/src/routing.js";
import { unpackRequirements } from "../../sdk/src/params.js";
import type { Meshwork } from "../../sdk/src/client.js";
import type { Escalation, Proposal } from "../../sdk/src/governance.js";
import { describeEscalation } from "../../scripts/lib/escalations.js";
import { MESH, PROFILE, USD, compute, sdkWorld, specOver, work, type SdkWorld } from "./fixture.js";
import { auditorCommitment } from "../../sdk/src/merkle.js";
import { publishResult } from "../../sdk/src/results.js";

const connection = await network.create();
const { networkHelpers } = connection;

async function world(): Promise<SdkWorld> {
  return sdkWorld(connection);
}

/** Votes `proposal` through with `dao`'s delegated votes: the voting delay, a vote for, the voting period, queue, the timelock's delay, execute. */
async function passProposal(w: SdkWorld, dao: Meshwork, proposal: Proposal) {
  await networkHelpers.time.increase(Number(await w.governor.votingDelay()) + 1);
  await dao.governance.vote(proposal.proposalId, "for");
  await networkHelpers.time.increase(Number(await w.governor.votingPeriod()) + 1);
  await dao.governance.queue(proposal);
  await networkHelpers.time.increase(Number(await w.timelock.getMinDelay()) + 1);
  await dao.governance.execute(proposal);
}

/**
 * A job the cheap provider computed honestly, whose auditor lied about the first sampled leaf and whose
 * tie-breaker (mid) answered a third way: escalated to governance.
 */
async function escalatedJob(w: SdkWorld) {
  const { market } = w;
  const consumer = await w.sdk(w.consumer);
  const handle = await consumer.jobs.create(specOver(w.inputs), { token: "tUSD", price: 20n * USD, workUnits: 10n });
  const job = handle.job;
  await market.connect(w.cheap).claim(job);
  const { root, outputURI, tree } = await publishResult(w.store, handle.jobId, w.inputs, w.inputs.map(compute));
  const salt = hexlify(randomBytes(32));
  await market.connect(w.cheap).commit(handle.jobId, await market.commitmentHash(handle.jobId, w.cheap.address, root, salt));
  await networkHelpers.mine(2);
  const sample = (await market.sampleOf(job)).map(Number);
  const providerLeaves = sample.map((i) => tree.leaf(i));
  const auditorLeaves = providerLeaves.map((leaf, k) => (k === 0 ? hexlify(randomBytes(32)) : leaf));
  await market.connect(w.auditor).audit(job, auditorCommitment(handle.jobId, w.auditor.address, auditorLeaves));
  await market.connect(w.cheap).revealResult(job, w.cheap.address, root, salt, outputURI, providerLeaves, sample.map((i) => tree.proof(i)));
  await market.connect(w.auditor).revealAudit(job, auditorLeaves, providerLeaves);
  await market.connect(w.mid).tieBreak(job);
  const third = hexlify(randomBytes(32));
  await market.connect(w.mid).revealTieBreak(job, [third], providerLeaves, auditorLeaves);
  expect(await handle.state()).to.equal("Escalated");
  return { handle, job, sample, providerLeaves, auditorLeaves, third, root, outputURI };
}

describe("SDK: providers", () => {
  it("registers, stakes with a permit and posts prices (the fixture did it through the SDK)", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.outsider);
    const cheap = await mw.providers.get(w.cheap.address);
    expect(cheap.profile).to.deep.equal(PROFILE);
    expect(cheap.stake).to.deep.equal({ active: 1_000n * MESH, unbonding: 0n, jailedUntil: 0n });
    expect(cheap.active).to.equal(true);
    expect(cheap.prices).to.deep.equal({ tUSD: 1n * USD, MESH: 0n });
    expect(cheap.reputation).to.deep.include({ timedOut: 0, slashes: 0, reliability: 1, auditPassRate: 1 });
    expect(await w.mesh.allowance(w.cheap.address, await w.registry.getAddress())).to.equal(0n); // permit spent
  });

  it("stakes with a permit whose deadline follows the chain's clock, and refuses a deadline the chain has passed", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.cheap);
    await w.mesh.connect(w.deployer).transfer(w.cheap.address, 10n * MESH);
    await networkHelpers.time.increase(3 * 3600); // the chain runs hours ahead of this machine's clock
    await mw.providers.stake(5n * MESH);
    expect((await mw.providers.get(w.cheap.address)).stake.active).to.equal(1_005n * MESH);
    // Its stake votes (its 5 MESH left in hand are not delegated).
    expect(await mw.governance.votingPower()).to.equal(1_005n * MESH);

    const chainNow = BigInt(await networkHelpers.time.latest());
    const before = await w.ethers.provider.getBlockNumber();
    const expired = await mw.providers.stake(5n * MESH, { deadline: chainNow }).catch((e) => e);
    expect(expired).to.be.instanceOf(MeshworkValidationError);
    expect(expired.issues.map((i: { path: string[] }) => i.path.join("."))).to.deep.equal(["deadline"]);
    expect(expired.details).to.include({ deadline: chainNow, chainTime: chainNow });
    expect(await w.ethers.provider.getBlockNumber()).to.equal(before); // nothing sent
    await mw.providers.stake(5n * MESH, { deadline: chainNow + 60n });
    expect((await mw.providers.get(w.cheap.address)).stake.active).to.equal(1_010n * MESH);
  });

  it("updates the profile and posts a commons price", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.cheap);
    await mw.providers.updateProfile({ ...PROFILE, vramGB: 48, region: "BR", runtimes: [Runtime.Onnx] });
    await mw.providers.postPrice("tUSD", 500_000n, { commons: true });
    const me = await mw.providers.get(w.cheap.address);
    expect(me.profile).to.deep.include({ vramGB: 48, region: "BR", runtimes: [Runtime.Onnx] });
    expect(me.commonsPrices.tUSD).to.equal(500_000n);
    const bad = await mw.providers.updateProfile({ ...PROFILE, gpuCount: 0 }).catch((e) => e);
    expect(bad).to.be.instanceOf(MeshworkContractError);
    expect(bad).to.include({ errorName: "ProviderRegistryInvalidProfile" });
  });

  it("unstakes through the unbonding queue and withdraws after the period", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.dear);
    const { entryId, releaseAt } = await mw.providers.requestUnstake(400n * MESH);
    expect(entryId).to.equal(0n);
    expect((await mw.providers.get(w.dear.address)).stake).to.deep.include({ active: 600n * MESH, unbonding: 400n * MESH });
    await networkHelpers.time.increase(60); // released a minute after the first
    const second = await mw.providers.requestUnstake(100n * MESH);
    expect(await mw.providers.unbonding(w.dear.address)).to.deep.equal([
      { entryId: 0n, amount: 400n * MESH, releaseAt },
      { entryId: 1n, amount: 100n * MESH, releaseAt: second.releaseAt },
    ]);
    expect(await mw.providers.unbonding(w.dear.address, 1)).to.deep.equal([{ entryId: 0n, amount: 400n * MESH, releaseAt }]);
    const badMax = await mw.providers.unbonding(w.dear.address, 0).catch((e) => e);
    expect(badMax).to.be.instanceOf(MeshworkValidationError);
    expect(badMax.issues.map((i: { path: string[] }) => i.path.join("."))).to.deep.equal(["max"]);
    const early = await mw.providers.withdrawStake().catch((e) => e);
    expect(early).to.include({ errorName: "ProviderRegistryNothingToWithdraw" });
    expect(early.arg("nextReleaseAt")).to.equal(releaseAt);
    await networkHelpers.time.increaseTo(releaseAt);
    await mw.providers.withdrawStake();
    expect(await w.mesh.balanceOf(w.dear.address)).to.equal(400n * MESH);
    expect(await mw.providers.unbonding(w.dear.address)).to.deep.equal([{ entryId: 1n, amount: 100n * MESH, releaseAt: second.releaseAt }]);
  });

  it("stakes with a plain approval too, and lists providers by filter", async () => {
    const w = await networkHelpers.loadFixture(world);
    await w.mesh.connect(w.deployer).transfer(w.outsider.address, 10n * MESH);
    const mw = await w.sdk(w.outsider);
    await mw.providers.stake(10n * MESH, { provider: w.cheap.address, permit: false });
    expect((await mw.providers.get(w.cheap.address)).stake.active).to.equal(1_010n * MESH);

    const all = await mw.providers.list();
    expect(all.map((p) => p.address)).to.deep.equal([w.cheap.address, w.mid.address, w.dear.address, w.auditor.address]);
    const green = await mw.providers.list({ renewableOnly: true, region: "DE", pricedIn: "tUSD" });
    expect(green.map((p) => p.address)).to.deep.equal([w.cheap.address, w.dear.address, w.auditor.address]);
    expect(await mw.providers.list({ region: "KE", activeOnly: true })).to.have.length(1);
    expect(await mw.providers.list({ minVramGB: 80 })).to.have.length(0);
  });

  it("computes reputation from the counters", () => {
    expect(reputationOf({ tUSD: 8n, MESH: 1n }, { timedOut: 1, audited: 4, failedAudits: 1, slashes: 0 })).to.deep.equal({
      completed: { tUSD: 8n, MESH: 1n },
      timedOut: 1,
      audited: 4,
      failedAudits: 1,
      slashes: 0,
      reliability: 0.9,
      auditPassRate: 0.75,
    });
  });

  it("ranks candidates by price, then reliability, queue, preferred region and energy", () => {
    const base = { region: "DE", energy: Energy.Grid, reliability: 1, queue: 0, eligibility: 0, price: 10n };
    const c = (provider: string, more: object) => ({ ...base, provider, ...more });
    const { ranked } = rankCandidates(
      [
        c("0x05", { energy: Energy.Renewable }),
        c("0x04", { region: "KE" }),
        c("0x03", { queue: 2 }),
        c("0x02", { reliability: 0.5 }),
        c("0x01", { price: 9n }),
        c("0x06", {}),
      ],
      { maxPrice: 100n, preferRegion: "KE" },
    );
    expect(ranked.map((r) => r.provider)).to.deep.equal(["0x01", "0x04", "0x05", "0x06", "0x03", "0x02"]);
    const filtered = rankCandidates([c("0x01", { reliability: 0.4 }), c("0x02", { queue: 9 })], { maxPrice: 100n, minReliability: 0.5, maxQueue: 3 });
    expect(filtered.rejected.map((r) => r.reason)).to.deep.equal(["reliability", "queue"]);
  });
});

describe("SDK: balances", () => {
  it("deposits (approving exactly what is needed), withdraws in a batch and lists balances per token", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    await mw.balances.deposit("tUSD", 50n * USD);
    expect(await w.usd.allowance(w.consumer.address, await w.market.getAddress())).to.equal(0n);
    expect(await mw.balances.of("tUSD")).to.equal(50n * USD);
    await w.mesh.connect(w.deployer).transfer(w.consumer.address, 5n * MESH);
    await mw.balances.deposit("MESH", 5n * MESH);

    await mw.balances.withdrawBatch(
      [
        { token: "tUSD", amount: 20n * USD },
        { token: "MESH", amount: 2n * MESH },
      ],
      w.outsider.address,
    );
    expect(await w.usd.balanceOf(w.outsider.address)).to.equal(20n * USD);
    const all = await mw.balances.all();
    expect(all.map((b) => [b.symbol, b.market, b.wallet])).to.deep.equal([
      ["tUSD", 30n * USD, 100_000n * USD - 50n * USD],
      ["MESH", 3n * MESH, 0n],
    ]);
    // What amounts typed by a user scale by, read from each token.
    expect([await mw.balances.decimals("tUSD"), await mw.balances.decimals(await w.usd.getAddress()), await mw.balances.decimals("MESH")]).to.deep.equal([6, 6, 18]);
  });
  it("approves a budget when asked; a token that refuses to change one non-zero allowance to another (USDT) is set to 0 first", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const sends: string[] = [];
    const send = mw.context.send.bind(mw.context);
    mw.context.send = async (action, fn) => (sends.push(action), send(action, fn));
    const market = await w.market.getAddress();
    const usdt = await connection.ethers.deployContract("ApproveFromZeroToken");
    const token = await usdt.getAddress();
    await mw.balances.ensureAllowance(token, 10n, "fund", { approve: 100n }); // a budget for later pulls
    await mw.balances.ensureAllowance(token, 60n, "fund"); // covered: nothing sent
    expect(await usdt.allowance(w.consumer.address, market)).to.equal(100n);
    await mw.balances.ensureAllowance(token, 150n, "fund");
    expect(await usdt.allowance(w.consumer.address, market)).to.equal(150n);
    expect(sends).to.deep.equal(["fund: approve", "fund: approve 0", "fund: approve"]);
    // A token that changes allowances freely gets one approval.
    sends.length = 0;
    await w.usd.connect(w.consumer).approve(market, 5n);
    await mw.balances.ensureAllowance("tUSD", 10n, "fund");
    expect(await w.usd.allowance(w.consumer.address, market)).to.equal(10n);
    expect(sends).to.deep.equal(["fund: approve"]);
  });
});

describe("SDK: governance", () => {
  it("delegates, proposes a typed parameter change, votes with a reason, queues, executes and lists it", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.deployer);
    await mw.governance.delegate();
    expect(await mw.governance.votingPower()).to.equal(await w.mesh.balanceOf(w.deployer.address));
    await networkHelpers.mine(1);
    await networkHelpers.time.increase(1);

    const proposal = await mw.governance.propose([mw.governance.setParameter("market", "FeeBps", 200n)], "Lower the fee to 2%");
    expect(await mw.governance.state(proposal.proposalId)).to.equal("Pending");
    await networkHelpers.time.increase(Number(await w.governor.votingDelay()) + 1);
    await mw.governance.vote(proposal.proposalId, "for", "cheaper compute for students");
    const twice = await mw.governance.vote(proposal.proposalId, "against").catch((e) => e);
    expect(twice).to.include({ contract: "MeshGovernor", errorName: "GovernorAlreadyCastVote" });
    await networkHelpers.time.increase(Number(await w.governor.votingPeriod()) + 1);
    expect(await mw.governance.state(proposal.proposalId)).to.equal("Succeeded");
    await mw.governance.queue(proposal);
    const early = await mw.governance.execute(proposal).catch((e) => e);
    expect(early).to.be.instanceOf(MeshworkContractError);
    await networkHelpers.time.increase(Number(await w.timelock.getMinDelay()) + 1);
    await mw.governance.execute(proposal);
    expect(await w.market.parameter(0)).to.equal(200n);

    const [listed] = await mw.governance.list();
    expect(listed).to.deep.include({ proposalId: proposal.proposalId, state: "Executed", description: "Lower the fee to 2%" });
    expect(listed.votes).to.deep.equal({ against: 0n, for: await w.mesh.balanceOf(w.deployer.address), abstain: 0n });
    expect((listed.quorum ?? 0n) > 0n).to.equal(true);
    expect(() => mw.governance.setParameter("market", "NoSuch" as "FeeBps", 1n)).to.throw(/unknown market parameter/);
  });

  it("lists proposals while one is pending (no quorum before its snapshot) and finds one by id", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.deployer);
    await mw.governance.delegate();
    await networkHelpers.time.increase(1);
    const first = await mw.governance.propose([mw.governance.setParameter("market", "FeeBps", 200n)], "first");
    await networkHelpers.time.increase(Number(await w.governor.votingDelay()) + 1);
    const second = await mw.governance.propose([mw.governance.setParameter("market", "FeeBps", 300n)], "second"); // in its voting delay

    const [active, pending] = await mw.governance.list();
    expect(active).to.deep.include({ proposalId: first.proposalId, state: "Active", quorum: await w.governor.quorum(active.voteStart) });
    expect(pending).to.deep.include({ proposalId: second.proposalId, state: "Pending", quorum: undefined });
    expect(pending.voteEnd).to.equal(await w.governor.proposalDeadline(second.proposalId));

    const found = await mw.governance.get(second.proposalId);
    expect(found).to.deep.include({ proposalId: second.proposalId, description: "second", state: "Pending" });
    expect(found.actions).to.deep.equal(second.actions.map((a) => ({ ...a, value: 0n })));
    const missing = await mw.governance.get(12345n).catch((e) => e);
    expect(missing).to.be.instanceOf(MeshworkError);
    expect(missing.details).to.deep.equal({ proposalId: 12345n });
  });

  it("reports a vote's end extended by late quorum", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.deployer);
    await mw.governance.delegate();
    await networkHelpers.time.increase(1);
    const p = await mw.governance.propose([mw.governance.setParameter("market", "FeeBps", 200n)], "late");
    const [{ voteEnd: original }] = await mw.governance.list();
    await networkHelpers.time.increaseTo(original - 10n);
    await mw.governance.vote(p.proposalId, "for"); // quorum in the vote's last seconds
    const [listed] = await mw.governance.list();
    const extended = await w.governor.proposalDeadline(p.proposalId);
    expect(extended > original).to.equal(true);
    expect(listed.voteEnd).to.equal(extended);
  });

  it("finds an escalated dispute with its evidence and decides it through a proposal", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { market } = w;
    const { handle, job, sample, providerLeaves, auditorLeaves, third, root, outputURI } = await escalatedJob(w);

    const dao = await w.sdk(w.deployer);
    const [escalation, ...others] = await dao.governance.escalations();
    expect(others).to.have.length(0);
    expect(escalation).to.deep.include({
      jobId: handle.jobId,
      deadline: (await market.auditOf(job)).deadline,
      provider: w.cheap.address,
      auditor: w.auditor.address,
      tieBreaker: w.mid.address,
      challenger: undefined,
      expired: false,
      sample,
      disputed: [0], // the first sampled position
    });
    expect(escalation.evidence).to.deep.equal({ result: { resultRoot: root, outputURI, leaves: providerLeaves }, auditorLeaves, tieBreakerLeaves: [third] });
    const latency = await dao.governance.latency();
    expect(latency).to.equal((await w.governor.votingDelay()) + (await w.governor.votingPeriod()) + (await w.timelock.getMinDelay()));
    // What `meshwork gov escalations` prints for it: the disputed position with each side's leaf.
    expect(describeEscalation(escalation, latency)).to.deep.equal([
      `${handle.jobId}  decide before ${new Date(Number(escalation.deadline) * 1000).toISOString()} (a proposal takes ${latency} s at least)`,
      `  provider ${w.cheap.address}, auditor ${w.auditor.address}, tie-breaker ${w.mid.address}`,
      `  outputs ${outputURI} (root ${root})`,
      `  sampled chunk ${sample[0]} (position 0): provider ${providerLeaves[0]}, auditor ${auditorLeaves[0]}, tie-breaker ${third}`,
    ]);
    expect(() => dao.governance.resolveEscalation(escalation.job, "Nobody" as "NoFault")).to.throw(/unknown verdict/);

    // The provider's leaf is the true one: the auditor lied.
    await dao.governance.delegate();
    await networkHelpers.mine(1);
    await networkHelpers.time.increase(1);
    const proposal = await dao.governance.propose([dao.governance.resolveEscalation(escalation.job, "AuditorFraud")], `Dispute ${handle.jobId}: the auditor lied`);
    await passProposal(w, dao, proposal);
    expect(await handle.state()).to.equal("Settled");
    expect(await dao.governance.escalations()).to.deep.equal([]);
  });

  it("marks an escalated dispute past its deadline as expired; once anyone ends it, it is no longer listed", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { job } = await escalatedJob(w);
    const mw = await w.sdk(w.outsider);
    const [escalation] = await mw.governance.escalations();
    await networkHelpers.time.increaseTo(escalation.deadline + 1n);
    expect(await mw.governance.escalations()).to.deep.equal([{ ...escalation, expired: true }]);
    await w.market.connect(w.outsider).enforceDeadline(job); // no fault
    expect(await mw.governance.escalations()).to.deep.equal([]);
  });

  it("shows a voter each disputed position of the sample, a chunk sampled twice included, and says when evidence or time is missing", () => {
    const leaf = (n: number) => "0x" + n.toString(16).padStart(64, "0");
    const escalation: Escalation = {
      jobId: leaf(0xab),
      job: {} as Escalation["job"],
      deadline: 1_800_000_000n,
      expired: false,
      provider: "0xP",
      auditor: "0xA",
      tieBreaker: undefined,
      challenger: "0xC",
      sample: [3, 1, 3], // chunk 3 sampled twice: agreed at position 0, disputed at position 2
      disputed: [1, 2],
      evidence: { result: { resultRoot: leaf(9), outputURI: "http://out", leaves: [leaf(1), leaf(2), leaf(3)] }, auditorLeaves: [leaf(1), leaf(5), leaf(6)] },
    };
    expect(describeEscalation(escalation, 480n)).to.deep.equal([
      `${leaf(0xab)}  decide before 2027-01-15T08:00:00.000Z (a proposal takes 480 s at least)`,
      "  provider 0xP, auditor 0xA, tie-breaker none answered, challenger 0xC",
      `  outputs http://out (root ${leaf(9)})`,
      `  sampled chunk 1 (position 1): provider ${leaf(2)}, auditor ${leaf(5)}`,
      `  sampled chunk 3 (position 2): provider ${leaf(3)}, auditor ${leaf(6)}`,
    ]);
    expect(describeEscalation({ ...escalation, expired: true, evidence: undefined }, 480n)).to.deep.equal([
      `${leaf(0xab)}  deadline passed 2027-01-15T08:00:00.000Z: ends as no fault (enforceDeadline)`,
      "  provider 0xP, auditor 0xA, tie-breaker none answered, challenger 0xC",
      "  evidence: not in this RPC's logs (it may prune old ones): ask another with --rpc",
    ]);
  });

  it("refuses an empty or duplicate proposal with typed errors", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.outsider);
    const empty = await mw.governance.propose([], "nothing").catch((e) => e);
    expect(empty).to.include({ contract: "MeshGovernor", errorName: "GovernorInvalidProposalLength" });
    const actions = [mw.governance.setParameter("registry", "MinStake", 1n)];
    await mw.governance.propose(actions, "x");
    const twice = await mw.governance.propose(actions, "x").catch((e) => e);
    expect(twice).to.include({ contract: "MeshGovernor", errorName: "GovernorUnexpectedProposalState" });
  });
});

describe("SDK: commons", () => {
  it("passes a programme through governance; a grantee pays a job from its grant; everyone sees the spend", async () => {
    const w = await networkHelpers.loadFixture(world);
    // Fees reach the treasury: one job settles (2.5% fee, 60% of it to the treasury).
    const consumer = await w.sdk(w.consumer);
    const big = await consumer.jobs.create(specOver(w.inputs), { token: "tUSD", price: 40_000n * USD, workUnits: 10n });
    await work(w, big, w.cheap);
    await w.market.sweepFees(w.usd, [w.cheap.address]);
    const treasury = await w.market.treasuryAccrual(w.usd);
    expect(treasury).to.equal(600n * USD);

    const dao = await w.sdk(w.deployer);
    await dao.governance.delegate();
    await networkHelpers.mine(1);
    const now = BigInt(await networkHelpers.time.latest());
    const actions = [
      ...dao.commons.createProgrammeAction("Students 2027", "tUSD", 500n * USD, now, now + 30n * 86_400n),
      dao.commons.approveGranteeAction(1n, w.outsider.address, 100n * USD),
    ];
    const proposal = await dao.governance.propose(actions, "Compute commons: Students 2027");
    await passProposal(w, dao, proposal);

    const grantee = await w.sdk(w.outsider);
    const [programme] = await grantee.commons.programmes();
    expect(programme).to.deep.include({ id: 1n, name: "Students 2027", budget: 500n * USD, spent: 0n, jobs: 0 });
    expect(await grantee.commons.grant(1n)).to.equal(100n * USD);

    const prepared = await grantee.jobs.prepare(specOver(w.inputs), { token: "tUSD", price: 40n * USD, workUnits: 10n });
    const job = await grantee.commons.createJob(1n, prepared);
    expect(job.job.consumer).to.equal(await w.commons.getAddress());
    expect(unpackRequirements(BigInt(job.job.request.requirements)).commons).to.equal(true);
    expect(await grantee.commons.grant(1n)).to.equal(60n * USD);
    expect((await grantee.commons.programme(1n)).spent).to.equal(40n * USD);

    await grantee.commons.cancelJob(job);
    expect(await grantee.commons.grant(1n)).to.equal(100n * USD);
    const closed = await grantee.commons.closeJob(job).catch((e) => e);
    expect(closed).to.include({ contract: "ComputeCommons", errorName: "CommonsJobAlreadyClosed" });
    const over = await grantee.jobs.prepare(specOver(w.inputs), { token: "tUSD", price: 101n * USD, workUnits: 10n });
    const tooMuch = await grantee.commons.createJob(1n, over).catch((e) => e);
    expect(tooMuch).to.include({ errorName: "CommonsAllowanceExceeded" });
    expect([...tooMuch.args]).to.deep.equal([1n, w.outsider.address, 100n * USD, 101n * USD]);
    const targeted = await grantee.jobs.prepare(specOver(w.inputs), { token: "tUSD", price: 10n * USD, workUnits: 10n, targetProvider: w.cheap.address });
    expect(await grantee.commons.createJob(1n, targeted).catch((e) => e)).to.include({ errorName: "CommonsTargetedJob" });

    // Governance revokes the grantee, cancels its open job and takes 300 tUSD of the budget back.
    const open = await grantee.commons.createJob(1n, await grantee.jobs.prepare(specOver(w.inputs), { token: "tUSD", price: 40n * USD, workUnits: 10n }));
    const revoke = await dao.governance.propose(
      [dao.commons.approveGranteeAction(1n, w.outsider.address, 0n), dao.commons.cancelJobAction(open), dao.commons.reclaimBudgetAction(1n, 300n * USD)],
      "Compute commons: revoke a grantee, return 300 tUSD",
    );
    await passProposal(w, dao, revoke);
    expect(await open.state()).to.equal("Cancelled");
    expect(await grantee.commons.grant(1n)).to.equal(0n);
    expect(await grantee.commons.programme(1n)).to.deep.include({ budget: 200n * USD, spent: 0n, jobs: 2 });
    expect(await w.commons.unallocated(await w.usd.getAddress())).to.equal(300n * USD);
  });
});

describe("SDK: stats through the client", () => {
  it("computes the market's statistics from events since the deployment block", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const job = await consumer.jobs.create(specOver(w.inputs), { token: "tUSD", price: 20n * USD, workUnits: 10n });
    await work(w, job, w.cheap);
    await consumer.jobs.create(specOver(w.inputs), { token: "tUSD", price: 30n * USD, workUnits: 10n });
    const reader = await w.sdk(w.outsider);
    const stats = await reader.stats();
    expect(stats.jobs.total).to.equal(2);
    expect(stats.jobs.byState).to.deep.include({ settled: 1, open: 1 });
    const usd = await w.usd.getAddress();
    expect(stats.priceBoard[usd]).to.deep.include({ min: 2n * USD, max: 3n * USD, count: 2 });
    expect(stats.providers[w.cheap.address]).to.deep.include({ settled: 1 });
    expect(stats.events.some((e) => e.kind === "providerRegistered")).to.equal(true);
  });
});
