/**
 * `scripts/deploy.ts` against a real `hardhat node` started here: the address book it writes, what a
 * second run does (Ignition's journal, the address book never replaced silently), and one job run end to
 * end on the deployed system by the node's unlocked accounts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import {
  JsonRpcProvider,
  Network,
  ZeroAddress,
  getAddress,
  hexlify,
  id,
  randomBytes,
  type ContractTransactionResponse,
  type JsonRpcSigner,
} from "ethers";
import { jobFromResult, packRequirements, packVerification, type JobStruct } from "../../sdk/src/params.js";
import type { AddressBook } from "../../scripts/lib/addressBook.js";
import { DEVNET_PARAMETERS } from "../../scripts/lib/devnetParameters.js";
import {
  ComputeCommons__factory,
  IJobMarket__factory,
  JobMarket__factory,
  MeshGovernor__factory,
  MeshTimelock__factory,
  MeshToken__factory,
  ProviderRegistry__factory,
  TestUSD__factory,
} from "../../types/ethers-contracts/index.js";
import { AuditAnswer, Result } from "../helpers/audits.js";
import { ROOT, runScript, startLocalNode, type LocalNode } from "../../scripts/lib/localnet.js";
import { DEFAULT_PROFILE, DEFAULT_REQUIREMENTS, JobState } from "../helpers/system.js";

const CONTRACTS = ["mesh", "registry", "market", "auditModule", "timelock", "governor", "commons"] as const;
/** IJobMarketTypes.Parameter, in order, as the address book names them. */
const MARKET_PARAMETERS = [
  "feeBps", "collateralBps", "timeoutSlashBps", "challengeWindow", "revealWindow", "pMinBps", "probationJobs",
  "auditPoolShareBps", "auditRewardBps", "auditCollateralBps", "minComputeWindow", "maxComputeWindow",
  "fraudStakeSlashBps", "fraudConsumerBps", "fraudAuditorBps", "challengeBondBps", "assumedCollusionBps",
  "auditClaimWindow", "auditRevealWindow", "escalationWindow", "maxPauseDuration",
];
const DEFAULT_ADMIN_ROLE = "0x" + "00".repeat(32);

const USD = 10n ** 6n;
/** Blocks of state a pruned (non-archive) node keeps, as geth's default does. */
const PRUNED_STATE_BLOCKS = 128;

/**
 * A JSON-RPC proxy in front of `upstream` that answers like most public RPCs, which are not archive
 * nodes: a state read (code, call, balance, storage, nonce) at a block older than the last 128 fails.
 */
async function startPrunedProxy(upstream: string): Promise<{ url: string; refused: string[]; close(): Promise<void> }> {
  const refused: string[] = [];
  const state = new Set(["eth_getCode", "eth_call", "eth_getBalance", "eth_getStorageAt", "eth_getTransactionCount"]);
  const forward = async (message: unknown) =>
    (await fetch(upstream, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(message) })).json();
  const answer = async (message: { id: unknown; method: string; params?: unknown[] }) => {
    const tag = message.params?.at(-1);
    if (state.has(message.method) && typeof tag === "string" && tag.startsWith("0x")) {
      const head = Number(((await forward({ jsonrpc: "2.0", id: 0, method: "eth_blockNumber", params: [] })) as { result: string }).result);
      if (Number(tag) < head - PRUNED_STATE_BLOCKS) {
        refused.push(`${message.method} at ${Number(tag)}`);
        return { jsonrpc: "2.0", id: message.id, error: { code: -32000, message: "missing trie node (state is not available)" } };
      }
    }
    return forward(message);
  };
  const server: Server = createServer(async (request, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    const message = JSON.parse(body);
    const result = Array.isArray(message) ? await Promise.all(message.map(answer)) : await answer(message);
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(result));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    refused,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

async function send(tx: Promise<ContractTransactionResponse>) {
  const receipt = await (await tx).wait();
  if (receipt === null || receipt.status !== 1) throw new Error("transaction failed");
  return receipt;
}

describe("deploy script against a hardhat node", function () {
  this.timeout(300_000);

  let node: LocalNode | undefined;
  let url = "";
  let proxy: Awaited<ReturnType<typeof startPrunedProxy>> | undefined;
  let provider: JsonRpcProvider;
  let deploymentsDir = "";
  let journalDir = "";
  let journalExisted = true;
  let bookPath = "";
  let first: { code: number | null; output: string };
  let book: AddressBook;

  function deploy(extraEnv: NodeJS.ProcessEnv = {}) {
    return runScript(
      "hardhat",
      ["run", "scripts/deploy.ts", "--network", "localhost"],
      { MESHWORK_RPC_URL: proxy!.url, MESHWORK_DEPLOYMENTS_DIR: deploymentsDir, ...extraEnv },
      180_000,
    );
  }

  function deployed(): AddressBook {
    if (!book) throw new Error(`the first deployment failed (exit ${first?.code}):\n${first?.output}`);
    return book;
  }

  before(async function () {
    this.timeout(240_000);
    node = await startLocalNode();
    url = node.url;
    provider = new JsonRpcProvider(url, Network.from(31337), { staticNetwork: true, cacheTimeout: -1, pollingInterval: 100 });

    const genesis = await provider.getBlock(0);
    journalDir = join(ROOT, "ignition", "deployments", `devnet-${genesis!.hash!.slice(2, 10)}`);
    journalExisted = existsSync(journalDir);
    deploymentsDir = mkdtempSync(join(tmpdir(), "meshwork-deployments-"));
    bookPath = join(deploymentsDir, "localhost.json");

    // The chain is older than a pruned node's state, and the deploy script talks to it through one.
    await provider.send("hardhat_mine", [`0x${(3 * PRUNED_STATE_BLOCKS).toString(16)}`]);
    proxy = await startPrunedProxy(url);
    first = await deploy();
    if (first.code === 0 && existsSync(bookPath)) book = JSON.parse(readFileSync(bookPath, "utf8")) as AddressBook;
  });

  after(async function () {
    this.timeout(30_000);
    provider?.destroy();
    await proxy?.close();
    await node?.stop();
    if (deploymentsDir) rmSync(deploymentsDir, { recursive: true, force: true });
    // The journal of this throw-away chain (ignition/deployments/devnet-*, gitignored).
    if (journalDir && !journalExisted) rmSync(journalDir, { recursive: true, force: true });
  });

  it("writes a correct address book, through an RPC that keeps only recent state", async () => {
    expect(first.code, first.output).to.equal(0);
    expect(first.output).to.contain("Address book created: deployments/localhost.json");
    const book = deployed();
    const genesis = await provider.getBlock(0);

    expect(book.network).to.equal("localhost");
    expect(book.chainId).to.equal(31337);
    expect(book.ignitionDeploymentId).to.equal(`devnet-${genesis!.hash!.slice(2, 10)}`);
    expect(existsSync(join(journalDir, "journal.jsonl"))).to.equal(true);
    expect(Number.isNaN(Date.parse(String(book.deployedAt)))).to.equal(false);
    expect(Object.keys(book.contracts).sort()).to.deep.equal([...CONTRACTS, "paymentTokens"].sort());
    expect(Object.keys(book.contracts.paymentTokens).sort()).to.deep.equal(["MESH", "tUSD"]);
    expect(book.contracts.paymentTokens.MESH).to.equal(book.contracts.mesh);

    // Every contract is on the chain, created in the block the book says.
    const addresses = [...CONTRACTS.map((name) => book.contracts[name]), book.contracts.paymentTokens.tUSD];
    expect(new Set(addresses).size).to.equal(addresses.length);
    for (const address of addresses) {
      expect(getAddress(address)).to.equal(address);
      expect(await provider.getCode(address)).to.not.equal("0x");
    }
    expect(Object.keys(book.blocks).sort()).to.deep.equal([...CONTRACTS].sort());
    for (const name of CONTRACTS) {
      const block = book.blocks[name];
      expect(block, name).to.be.greaterThan(0);
      expect(await provider.getCode(book.contracts[name], block), `${name} at its block`).to.not.equal("0x");
      expect(await provider.getCode(book.contracts[name], block - 1), `${name} before its block`).to.equal("0x");
    }
    expect(book.deploymentBlock).to.be.at.most(Math.min(...Object.values(book.blocks)));
    expect(book.deploymentBlock).to.be.at.least(3 * PRUNED_STATE_BLOCKS);

    // The parameters are the chain's, and the devnet's.
    const { contracts: c, parameters } = book;
    const market = IJobMarket__factory.connect(c.market, provider);
    const registry = ProviderRegistry__factory.connect(c.registry, provider);
    const governor = MeshGovernor__factory.connect(c.governor, provider);
    const timelock = MeshTimelock__factory.connect(c.timelock, provider);
    const commons = ComputeCommons__factory.connect(c.commons, provider);
    const mesh = MeshToken__factory.connect(c.mesh, provider);
    for (const [i, name] of MARKET_PARAMETERS.entries()) {
      expect(parameters[`market.${name}`], name).to.equal(Number(await market.parameter(i)));
    }
    for (const [i, name] of ["minStake", "unbondingPeriod", "jailPeriod"].entries()) {
      expect(parameters[`registry.${name}`], name).to.equal((await registry.parameter(i)).toString());
    }
    expect(parameters["governor.votingDelay"]).to.equal(Number(await governor.votingDelay()));
    expect(parameters["governor.votingPeriod"]).to.equal(Number(await governor.votingPeriod()));
    expect(parameters["governor.quorumPercent"]).to.equal(Number(await governor["quorumNumerator()"]()));
    expect(parameters["governor.proposalThreshold"]).to.equal((await governor.proposalThreshold()).toString());
    expect(parameters["governor.lateQuorumExtension"]).to.equal(Number(await governor.lateQuorumVoteExtension()));
    expect(parameters["timelock.minDelay"]).to.equal(Number(await timelock.getMinDelay()));
    expect(Object.keys(parameters)).to.have.length(MARKET_PARAMETERS.length + 3 + 6);
    expect(parameters).to.include({
      "market.challengeWindow": DEVNET_PARAMETERS.challengeWindow,
      "market.revealWindow": DEVNET_PARAMETERS.revealWindow,
      "market.minComputeWindow": DEVNET_PARAMETERS.minComputeWindow,
      "market.maxComputeWindow": DEVNET_PARAMETERS.maxComputeWindow,
      "market.probationJobs": 3,
      "market.feeBps": 250,
      "registry.minStake": DEVNET_PARAMETERS.minStake.toString(),
      "registry.unbondingPeriod": String(DEVNET_PARAMETERS.unbondingPeriod),
      "governor.votingDelay": DEVNET_PARAMETERS.votingDelay,
      "governor.votingPeriod": DEVNET_PARAMETERS.votingPeriod,
      "governor.proposalThreshold": "0",
      "timelock.minDelay": DEVNET_PARAMETERS.timelockDelay,
    });

    // Wiring and hand-over: the timelock owns everything, the deployer keeps no power.
    const deployer = (await provider.getSigner(0)).address;
    expect(await JobMarket__factory.connect(c.market, provider).owner()).to.equal(c.timelock);
    expect(await registry.owner()).to.equal(c.timelock);
    expect(await commons.owner()).to.equal(c.timelock);
    expect(await registry.market()).to.equal(c.market);
    expect(await market.commons()).to.equal(c.commons);
    expect(await market.auditModule()).to.equal(c.auditModule);
    // The module's own owner (unused: it runs on the market's storage) is renounced.
    expect(await JobMarket__factory.connect(c.auditModule, provider).owner()).to.equal(ZeroAddress);
    expect(await market.guardian()).to.equal(ZeroAddress);
    expect(await market.isPaymentToken(c.paymentTokens.tUSD)).to.equal(true);
    expect(await market.isPaymentToken(c.mesh)).to.equal(true);
    expect(await timelock.hasRole(DEFAULT_ADMIN_ROLE, deployer)).to.equal(false);
    expect(await timelock.hasRole(DEFAULT_ADMIN_ROLE, c.timelock)).to.equal(true);
    expect(await timelock.hasRole(id("PROPOSER_ROLE"), c.governor)).to.equal(true);
    expect(await timelock.hasRole(id("PROPOSER_ROLE"), deployer)).to.equal(false);
    expect(await timelock.hasRole(id("CANCELLER_ROLE"), c.governor)).to.equal(true);
    expect(await timelock.hasRole(id("EXECUTOR_ROLE"), ZeroAddress)).to.equal(true);
    expect(await governor.timelock()).to.equal(c.timelock);
    expect(await mesh.balanceOf(deployer)).to.equal(DEVNET_PARAMETERS.meshSupply);
  });

  it("deploys nothing twice, and never replaces another deployment's address book silently", async () => {
    const book = deployed();
    const head = await provider.getBlockNumber();

    // Same chain, same journal: the same contracts, no transaction, the book rewritten in place.
    const again = await deploy();
    expect(again.code, again.output).to.equal(0);
    expect(again.output).to.contain("Address book updated: deployments/localhost.json");
    expect(await provider.getBlockNumber()).to.equal(head);
    const rewritten = JSON.parse(readFileSync(bookPath, "utf8")) as AddressBook;
    expect(rewritten.contracts).to.deep.equal(book.contracts);
    expect(rewritten.blocks).to.deep.equal(book.blocks);
    expect(rewritten.parameters).to.deep.equal(book.parameters);
    expect(rewritten.ignitionDeploymentId).to.equal(book.ignitionDeploymentId);
    expect(rewritten.deployedAt).to.equal(book.deployedAt); // when it was deployed, not re-read

    // A book describing another deployment is left alone...
    const foreign = JSON.stringify({ ...book, contracts: { ...book.contracts, market: getAddress("0x" + "ab".repeat(20)) } }, null, 2) + "\n";
    writeFileSync(bookPath, foreign);
    const refused = await deploy();
    expect(refused.code).to.not.equal(0);
    expect(refused.output).to.contain("already describes another deployment (market changed)");
    expect(refused.output).to.contain("MESHWORK_OVERWRITE=1");
    expect(readFileSync(bookPath, "utf8")).to.equal(foreign);
    expect(await provider.getBlockNumber()).to.equal(head);

    // ...unless replacing it is asked for.
    const replaced = await deploy({ MESHWORK_OVERWRITE: "1" });
    expect(replaced.code, replaced.output).to.equal(0);
    expect(replaced.output).to.contain("Address book replaced: deployments/localhost.json");
    expect((JSON.parse(readFileSync(bookPath, "utf8")) as AddressBook).contracts).to.deep.equal(book.contracts);
    expect(await provider.getBlockNumber()).to.equal(head);
  });

  it("runs one job end to end on the deployed system", async () => {
    const { contracts: c } = deployed();
    const [deployer, worker, auditor, consumer] = await Promise.all([0, 1, 2, 3].map((i) => provider.getSigner(i)));
    const market = IJobMarket__factory.connect(c.market, provider);
    const registry = ProviderRegistry__factory.connect(c.registry, provider);
    const mesh = MeshToken__factory.connect(c.mesh, provider);
    const usd = TestUSD__factory.connect(c.paymentTokens.tUSD, provider);
    const minStake = await registry.parameter(0);
    const price = 50n * USD;
    const collateral = await market.parameter(1).then((bps) => (price * bps) / 10_000n);
    const fee = await market.parameter(0).then((bps) => (price * bps) / 10_000n);
    const toAuditPool = await market.parameter(7).then((bps) => (fee * bps) / 10_000n);

    // Two providers (the worker and its auditor) register, bond MESH from the deployer and post a price.
    const onboard = async (p: JsonRpcSigner) => {
      await send(mesh.connect(deployer).transfer(p.address, minStake));
      await send(registry.connect(p).register(DEFAULT_PROFILE, "ipfs://provider"));
      await send(mesh.connect(p).approve(c.registry, minStake));
      await send(registry.connect(p).stake(p.address, minStake));
      await send(registry.connect(p).postPrice(c.paymentTokens.tUSD, 1n * USD));
      expect(await registry.isActive(p.address)).to.equal(true);
    };
    await onboard(worker);
    await onboard(auditor);

    // The consumer pays for its job from its wallet.
    await send(usd.connect(consumer).mint(consumer.address, price));
    await send(usd.connect(consumer).approve(c.market, price));
    const now = (await provider.getBlock("latest"))!.timestamp;
    const chunks = 16;
    const request = {
      paymentToken: c.paymentTokens.tUSD,
      price,
      workUnits: 10n,
      specHash: hexlify(randomBytes(32)),
      requirements: packRequirements(DEFAULT_REQUIREMENTS),
      verification: packVerification({ chunks, auditChunks: 4, auditBps: 0 }),
      claimBy: BigInt(now + 3600),
      computeWindow: 1800n,
      targetProvider: ZeroAddress,
      nonce: 1n,
    };
    const created = await send(market.connect(consumer).createJob(request, "ipfs://spec"));
    const event = created.logs.map((log) => market.interface.parseLog(log)).find((e) => e?.name === "JobCreated");
    const jobId: string = event!.args.jobId;
    const job: JobStruct = jobFromResult(event!.args.job);
    expect(job.consumer).to.equal(consumer.address);
    expect(await usd.balanceOf(consumer.address)).to.equal(0n);
    expect(Number(await market.jobState(jobId))).to.equal(JobState.Open);

    // The worker claims with collateral from its wallet, computes and commits.
    await send(usd.connect(worker).mint(worker.address, collateral));
    await send(usd.connect(worker).approve(c.market, collateral));
    const walletBefore = await usd.balanceOf(worker.address);
    await send(market.connect(worker).claim(job));
    expect(Number(await market.jobState(jobId))).to.equal(JobState.Claimed);
    const result = Result.of(jobId, worker.address, chunks);
    await send(market.connect(worker).commit(jobId, result.commitment));
    expect(Number(await market.jobState(jobId))).to.equal(JobState.Committed);

    // The audit draw uses the hash of the block after the commit. A new provider is on probation
    // (probationJobs = 3), so its job is audited: the auditor re-runs the sample and commits blind...
    await provider.send("evm_mine", []);
    await provider.send("evm_mine", []);
    const sample = (await market.sampleOf(job)).map(Number);
    expect(sample).to.have.length(4);
    const answer = AuditAnswer.of(jobId, auditor.address, sample);
    await send(usd.connect(auditor).mint(auditor.address, price)); // auditCollateralBps = 10000
    await send(usd.connect(auditor).approve(c.market, price));
    const claimed = await send(market.connect(auditor).audit(job, answer.commitment));
    expect(claimed.logs.map((l) => market.interface.parseLog(l)?.name)).to.include("AuditClaimed");
    expect(Number(await market.jobState(jobId))).to.equal(JobState.Revealing);

    // ...and the worker's reveal matches it: the job settles.
    await provider.send("evm_increaseTime", [60]);
    await provider.send("evm_mine", []);
    const revealed = await send(
      market
        .connect(worker)
        .revealResult(job, worker.address, result.tree.root, result.salt, "ipfs://output", result.leavesAt(sample), result.proofsAt(sample)),
    );
    const names = revealed.logs.map((l) => market.interface.parseLog(l)?.name);
    expect(names).to.include.members(["ResultRevealed", "AuditPassed", "JobSettled"]);
    expect(Number(await market.jobState(jobId))).to.equal(JobState.Settled);
    expect(await market.completedJobs(c.paymentTokens.tUSD, worker.address)).to.equal(1n);
    expect((await registry.countersOf(worker.address)).audited).to.equal(1n);

    // The worker withdraws: its collateral back and the price less the protocol fee.
    const earned = await market.balanceOf(c.paymentTokens.tUSD, worker.address);
    expect(earned).to.equal(price - fee + collateral);
    await send(market.connect(worker).withdraw(c.paymentTokens.tUSD, earned, worker.address));
    expect((await usd.balanceOf(worker.address)) - walletBefore).to.equal(price - fee);
    expect(await market.balanceOf(c.paymentTokens.tUSD, worker.address)).to.equal(0n);
    // Its fee was swept on withdrawal: the audit pool's share and the treasury's.
    expect(await market.feesDue(c.paymentTokens.tUSD, worker.address)).to.equal(0n);
    expect(await market.auditPool(c.paymentTokens.tUSD)).to.equal(toAuditPool);
    expect(await market.treasuryAccrual(c.paymentTokens.tUSD)).to.equal(fee - toAuditPool);
    // The auditor's collateral is back (the pool was empty when it was paid: no reward).
    expect(await market.balanceOf(c.paymentTokens.tUSD, auditor.address)).to.equal(price);
  });
});

/**
 * The live module (any chain id but 31337), on a `hardhat node` that says it is chain 11155111 (Sepolia),
 * reached as `localhost`: inputs checked before any transaction, the supply to MESH_RECIPIENT, the live
 * defaults, and a deployer left with nothing.
 */
describe("deploy script against a live chain", function () {
  this.timeout(300_000);
  const CHAIN_ID = 11155111;

  let node: LocalNode | undefined;
  let provider: JsonRpcProvider;
  let deploymentsDir = "";
  const journalDir = join(ROOT, "ignition", "deployments", `localhost-${CHAIN_ID}`);
  let journalExisted = true;

  function deploy(env: NodeJS.ProcessEnv) {
    return runScript(
      "hardhat",
      ["run", "scripts/deploy.ts", "--network", "localhost"],
      { MESHWORK_RPC_URL: node!.url, MESHWORK_DEPLOYMENTS_DIR: deploymentsDir, ...env },
      180_000,
    );
  }

  before(async function () {
    this.timeout(240_000);
    // A journal left by an earlier run describes another chain: Ignition would refuse it.
    journalExisted = existsSync(journalDir);
    if (journalExisted) throw new Error(`${journalDir} exists (left by an earlier run?): remove it first`);
    node = await startLocalNode({ chainId: CHAIN_ID });
    provider = new JsonRpcProvider(node.url, Network.from(CHAIN_ID), { staticNetwork: true, cacheTimeout: -1, pollingInterval: 100 });
    deploymentsDir = mkdtempSync(join(tmpdir(), "meshwork-deployments-"));
  });

  after(async function () {
    this.timeout(30_000);
    provider?.destroy();
    await node?.stop();
    if (deploymentsDir) rmSync(deploymentsDir, { recursive: true, force: true });
    // This throw-away chain's journal (never one that was there before).
    if (!journalExisted) rmSync(journalDir, { recursive: true, force: true });
  });

  it("refuses a payment token that is not a token there, or no MESH recipient, before sending anything", async () => {
    const eoa = (await provider.getSigner(5)).address;
    const recipient = (await provider.getSigner(7)).address;
    for (const [paymentToken, meshRecipient, message] of [
      ["0x1234", recipient, "PAYMENT_TOKEN=0x1234 is not a (non-zero) address"],
      [eoa, recipient, `PAYMENT_TOKEN ${eoa} has no code`],
      [eoa, "", "set MESH_RECIPIENT to deploy on localhost"], // every vote: never to the deployer by default
    ]) {
      const refused = await deploy({ PAYMENT_TOKEN: paymentToken, MESH_RECIPIENT: meshRecipient });
      expect(refused.code, refused.output).to.not.equal(0);
      expect(refused.output).to.contain(message);
      expect(await provider.getBlockNumber(), "no transaction").to.equal(0);
      expect(existsSync(journalDir), "no journal").to.equal(false);
    }
    const zero = "0x" + "00".repeat(20);
    const refused = await deploy({ PAYMENT_TOKEN: eoa, MESH_RECIPIENT: zero });
    expect(refused.code).to.not.equal(0);
    expect(refused.output).to.contain(`MESH_RECIPIENT=${zero} is not a (non-zero) address`);
    expect(await provider.getBlockNumber()).to.equal(0);
  });

  it("deploys the live system: MESH to its recipient, the deployer keeping nothing", async () => {
    const [deployer, issuer] = await Promise.all([provider.getSigner(0), provider.getSigner(1)]);
    const usd = await new TestUSD__factory(issuer).deploy();
    await usd.waitForDeployment();
    const token = await usd.getAddress();
    const recipient = (await provider.getSigner(7)).address;

    const guardian = (await provider.getSigner(8)).address;
    const result = await deploy({ PAYMENT_TOKEN: token.toLowerCase(), MESH_RECIPIENT: recipient, GUARDIAN: guardian });
    expect(result.code, result.output).to.equal(0);
    expect(result.output).to.contain(`The whole MESH supply (every vote) goes to ${recipient}`);
    expect(result.output).to.contain("Hand-over checked: the timelock owns every governed contract");
    const book = JSON.parse(readFileSync(join(deploymentsDir, "localhost.json"), "utf8")) as AddressBook;
    expect(book.chainId).to.equal(CHAIN_ID);
    expect(book.ignitionDeploymentId).to.equal(`localhost-${CHAIN_ID}`);
    expect(book.contracts.paymentTokens).to.deep.equal({ USD: token });
    expect(book.parameters).to.include({ "timelock.minDelay": 2 * 86_400, "governor.votingPeriod": 7 * 86_400, "registry.unbondingPeriod": String(30 * 86_400) });

    const c = book.contracts;
    const mesh = MeshToken__factory.connect(c.mesh, provider);
    const timelock = MeshTimelock__factory.connect(c.timelock, provider);
    const market = IJobMarket__factory.connect(c.market, provider);
    expect(await mesh.balanceOf(recipient)).to.equal(await mesh.totalSupply());
    expect(await mesh.balanceOf(deployer.address)).to.equal(0n);
    expect(await market.isPaymentToken(token)).to.equal(true);
    expect(await market.isPaymentToken(c.mesh)).to.equal(false);
    for (const name of ["market", "registry", "commons"] as const) {
      expect(await JobMarket__factory.connect(c[name], provider).owner(), name).to.equal(c.timelock);
    }
    expect(await market.guardian()).to.equal(guardian); // bounded pauses only
    expect(result.output).to.contain(`Guardian: ${guardian}`);
    expect(await JobMarket__factory.connect(c.auditModule, provider).owner()).to.equal(ZeroAddress);
    // Every role the timelock ever granted, and who holds it now: the timelock, the governor, anyone (executor).
    const granted = await timelock.queryFilter(timelock.filters.RoleGranted(), 0);
    const holders = new Set<string>();
    for (const e of granted) if (await timelock.hasRole(e.args.role, e.args.account)) holders.add(`${e.args.role} ${e.args.account}`);
    expect([...holders].sort()).to.deep.equal(
      [
        `${DEFAULT_ADMIN_ROLE} ${c.timelock}`,
        `${id("PROPOSER_ROLE")} ${c.governor}`,
        `${id("CANCELLER_ROLE")} ${c.governor}`,
        `${id("EXECUTOR_ROLE")} ${ZeroAddress}`,
      ].sort(),
    );
  });
});
