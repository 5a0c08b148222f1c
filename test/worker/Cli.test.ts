/**
 * The operator's CLI (scripts/worker.ts) as real processes against a real `hardhat node` with the
 * deploy script's deployment: init (encrypted keystore, hardware, config), register, stake, prices,
 * status; two daemons (a provider and an auditor) run a consumer's job, the provider's daemon is
 * SIGKILLed after it claimed and restarted, and the job still settles with one commit and no slash;
 * bad input gives one clear line and a non-zero exit.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { JsonRpcProvider, Network, Wallet } from "ethers";
import { startBlobServer, HttpBlobStore, type BlobServer } from "../../sdk/src/blob.js";
import { Meshwork } from "../../sdk/src/client.js";
import type { AddressBook } from "../../sdk/src/addressBook.js";
import { IJobMarket__factory } from "../../types/ethers-contracts/factories/interfaces/IJobMarket__factory.js";
import { MeshToken__factory } from "../../types/ethers-contracts/factories/token/MeshToken__factory.js";
import { TestUSD__factory } from "../../types/ethers-contracts/factories/test/mocks/TestUSD__factory.js";
import { ProviderRegistry__factory } from "../../types/ethers-contracts/factories/staking/ProviderRegistry__factory.js";
import { CHILD_ENV, ROOT, deployLocal, devKey, freePort, killGroup, runScript, startLocalNode, stopGroup, type LocalNode } from "../../scripts/lib/localnet.js";
import { CHUNKS, JOB, K, ROWS, bytes } from "./worker-fixture.js";
import { buildInt8MatmulProgram } from "../../sdk/src/worker/runtimes/intKernel.js";
import { digestOf } from "../../sdk/src/blob.js";

const PASSWORD = "correct horse battery staple";
const ENV = { MESHWORK_PASSWORD: PASSWORD };

describe("worker CLI and daemon as processes", function () {
  this.timeout(600_000);

  let node: LocalNode;
  let book: AddressBook;
  let deploymentsDir = "";
  let blobs: BlobServer;
  let provider: JsonRpcProvider;
  const dirs: string[] = [];
  const daemons: ChildProcess[] = [];

  function cli(config: string, ...args: string[]) {
    return runScript("tsx", ["scripts/worker.ts", "--config", config, ...args], ENV, 120_000);
  }

  function startDaemon(config: string): ChildProcess {
    const child = spawn(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/worker.ts", "--config", config, "start"], {
      cwd: ROOT,
      env: { ...CHILD_ENV, ...ENV },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    child.stdout!.on("data", (d) => (log = (log + d).slice(-20_000)));
    child.stderr!.on("data", (d) => (log = (log + d).slice(-20_000)));
    (child as ChildProcess & { log: () => string }).log = () => log;
    daemons.push(child);
    return child;
  }

  /** Sets up an operator with development account `index`: init, register, stake, prices. */
  async function operator(index: number, region: string) {
    const dir = mkdtempSync(join(tmpdir(), "meshwork-operator-"));
    dirs.push(dir);
    const config = join(dir, "worker.json");
    const init = await cli(
      config, "init", "--rpc", node.url, "--key", devKey(index), "--deployments", deploymentsDir,
      "--blob-port", String(await freePort()), "--metrics-port", String(await freePort()), "--blob-source", blobs.url, "--poll-ms", "200",
    );
    expect(init.code, init.output).to.equal(0);
    const address = new Wallet(devKey(index)).address;
    expect(init.output).to.contain(`address   ${address}`);
    const keystore = JSON.parse(readFileSync(join(dir, "keystore.json"), "utf8"));
    expect(keystore.address.toLowerCase()).to.equal(address.slice(2).toLowerCase()); // encrypted JSON wallet
    expect(readFileSync(join(dir, "keystore.json"), "utf8")).to.not.contain(devKey(index).slice(2));

    // The devnet's deployer funds the operator with gas, MESH and test dollars (`meshwork fund`).
    const mesh = MeshToken__factory.connect(book.contracts.mesh, provider);
    const [meshBefore, ethBefore] = [await mesh.balanceOf(address), await provider.getBalance(address)];
    const fund = await runScript("tsx", ["scripts/meshwork.ts", "--rpc", node.url, "--deployments", deploymentsDir, "fund", address], {}, 120_000);
    expect(fund.code, fund.output).to.equal(0);
    expect(fund.output).to.contain(`funded ${address}: 1 ETH, 2000 MESH, 10000 tUSD`);
    expect((await mesh.balanceOf(address)) - meshBefore).to.equal(2_000n * 10n ** 18n);
    expect((await provider.getBalance(address)) - ethBefore).to.equal(10n ** 18n);
    expect(await TestUSD__factory.connect(book.contracts.paymentTokens.tUSD, provider).balanceOf(address)).to.be.at.least(10_000n * 10n ** 6n);

    for (const args of [["register", "--region", region, "--energy", "renewable", "--gpu-class", "3"], ["stake", "1000"], ["prices", "tUSD=1"]]) {
      const result = await cli(config, ...args);
      expect(result.code, result.output).to.equal(0);
    }
    const status = await cli(config, "status");
    expect(status.code, status.output).to.equal(0);
    expect(status.output).to.contain("1000.0 MESH active");
    // The profile offers what this machine runs of the config's runtimes (both, here).
    expect((await ProviderRegistry__factory.connect(book.contracts.registry, provider).profileOf(address)).runtimes).to.equal(0b11n);
    return { config, address };
  }

  before(async function () {
    node = await startLocalNode({ intervalMs: 500 });
    deploymentsDir = mkdtempSync(join(tmpdir(), "meshwork-deployments-"));
    book = await deployLocal(node.url, deploymentsDir);
    provider = new JsonRpcProvider(node.url, Network.from(31337), { staticNetwork: true, cacheTimeout: -1, pollingInterval: 200 });
    blobs = await startBlobServer();
  });

  after(async function () {
    for (const d of daemons) await stopGroup(d, 5_000);
    provider?.destroy();
    await blobs?.close();
    await node?.stop();
    for (const d of [deploymentsDir, ...dirs]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it("sets up two operators, runs a job, survives a SIGKILL after the claim", async () => {
    const a = await operator(11, "DE");
    const b = await operator(12, "KE");
    const registry = ProviderRegistry__factory.connect(book.contracts.registry, provider);
    expect(await registry.isActive(a.address)).to.equal(true);
    expect(await registry.postedPrice(a.address, book.contracts.paymentTokens.tUSD)).to.equal(1_000_000n);

    // A consumer posts a job targeted at operator A through the SDK; its inputs are in the consumer's store.
    const consumerWallet = new Wallet(devKey(13), provider);
    const deployer = await provider.getSigner(0);
    await (await TestUSD__factory.connect(book.contracts.paymentTokens.tUSD, deployer).mint(consumerWallet.address, 1_000n * 10n ** 6n)).wait();
    const store = new HttpBlobStore(blobs.url);
    const mw = await Meshwork.connect({ runner: consumerWallet, addresses: book, blobStore: store });
    const program = buildInt8MatmulProgram({ k: K, n: 8, weights: Int8Array.from(bytes(K * 8, 9)) });
    await store.put(program);
    const { inputs, chunking } = await mw.jobs.upload(Array.from({ length: CHUNKS }, (_, i) => bytes((ROWS / CHUNKS) * K, 50 + i)));
    const spec = {
      version: 1,
      runtime: "int-kernel",
      program: { digest: digestOf(program), size: program.length },
      inputs,
      chunking,
      output: { encoding: "int32-le", canonicalisation: "exact" },
    } as const;
    const job = await mw.jobs.create(spec, { ...JOB, targetProvider: a.address });

    const daemonA = startDaemon(a.config);
    startDaemon(b.config);
    const market = IJobMarket__factory.connect(book.contracts.market, provider);
    const until = async (what: string, check: () => Promise<boolean>, ms = 120_000) => {
      const deadline = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${(daemonA as ChildProcess & { log: () => string }).log()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await until("the claim", async () => Number(await market.jobState(job.jobId)) >= 2);
    killGroup(daemonA, "SIGKILL");
    const restarted = startDaemon(a.config);
    await until("settlement", async () => Number(await market.jobState(job.jobId)) === 9);
    expect(await market.queryFilter(market.filters.JobCommitted(job.jobId))).to.have.length(1);
    expect((await registry.countersOf(a.address)).slashes).to.equal(0n);
    const { chunks } = await job.result();
    expect(chunks).to.have.length(CHUNKS);
    const log = (restarted as ChildProcess & { log: () => string }).log();
    expect(log).to.match(/"msg":"(resumed a claim|committed|computed and published|revealed to the auditor)/);

    // SIGTERM stops a daemon cleanly; status then shows the finished job from the local database.
    await until("the daemon to book the payment", async () => log.length > 0 && (restarted as ChildProcess & { log: () => string }).log().includes("job settled: paid"));
    await stopGroup(restarted, 10_000);
    const status = await cli(a.config, "status");
    expect(status.output).to.contain("jobs      provider/done: 1");
    // The job's spec, program, inputs, manifest and outputs are in its blob directory, kept a week.
    expect(status.output).to.match(/blobs {5}(\d+) in .*blobs, [\d.]+ MiB \(removed once unused for 168 h\)/);
    expect(Number(/blobs {5}(\d+)/.exec(status.output)![1])).to.be.at.least(11);

    // Earnings out of the market; then half the stake unbonding, and the node says it takes no new jobs.
    const withdrew = await cli(a.config, "withdraw");
    expect(withdrew.code, withdrew.output).to.equal(0);
    expect(await market.balanceOf(book.contracts.paymentTokens.tUSD, a.address)).to.equal(0n);
    const unstaked = await cli(a.config, "unstake", "500");
    expect(unstaked.code, unstaked.output).to.equal(0);
    expect(unstaked.output).to.match(/unbonding 500 MESH until \S+ \(slashable until then\)/);
    expect(unstaked.output).to.contain("note: active stake is now 500.0 MESH, under the minimum: this node takes no new jobs");
  });

  it("prints one clear line and exits non-zero on bad input, spending nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "meshwork-operator-"));
    dirs.push(dir);
    const config = join(dir, "worker.json");
    const missing = await cli(config, "status");
    expect(missing.code).to.not.equal(0);
    expect(missing.output.trim().split("\n").at(-1)).to.match(/^error: cannot read worker config/);

    // The address book and the RPC's chain are checked before anything is written.
    const noBook = await cli(config, "init", "--rpc", node.url, "--network", "nowhere", "--deployments", deploymentsDir);
    expect(noBook.output.trim().split("\n").at(-1)).to.match(/^error: no address book for network "nowhere" \(.*nowhere\.json\): pass --deployments <dir> where it is$/);
    const otherChain = join(dir, "other-chain");
    mkdirSync(otherChain);
    writeFileSync(join(otherChain, "localhost.json"), JSON.stringify({ ...book, chainId: 11155111 }));
    const mismatch = await cli(config, "init", "--rpc", node.url, "--deployments", otherChain);
    expect(mismatch.output.trim().split("\n").at(-1)).to.equal("error: connected to chain 31337, but the address book is for chain 11155111");
    expect(readdirSync(dir).sort()).to.deep.equal(["other-chain"]); // nothing written
    const silent = await cli(join(dir, "offline", "worker.json"), "init", "--rpc", `http://127.0.0.1:${await freePort()}`, "--deployments", deploymentsDir);
    expect(silent.code, silent.output).to.equal(0); // an RPC that does not answer yet is worth a warning, not a refusal
    expect(silent.output).to.match(/chain {5}http:\/\/127\.0\.0\.1:\d+ \(localhost, could not be reached \(.+\): check --rpc before `register`\)/);

    const init = await cli(config, "init", "--rpc", node.url, "--key", devKey(14), "--deployments", deploymentsDir);
    expect(init.code, init.output).to.equal(0);
    expect(init.output).to.contain(`(localhost, chain id ${book.chainId})`);
    const again = await cli(config, "init", "--rpc", node.url);
    expect(again.code).to.not.equal(0);
    expect(again.output).to.match(/error: .* exists; pass --force/);

    const badAmount = await cli(config, "stake", "lots");
    expect(badAmount.code).to.not.equal(0);
    expect(badAmount.output).to.match(/positive decimal amount/);
    const noMesh = await cli(config, "stake", "5");
    expect(noMesh.code).to.not.equal(0);
    const address = new Wallet(devKey(14)).address;
    expect(noMesh.output.trim().split("\n").at(-1)).to.equal(`error: stake 5 MESH: ${address} holds 0.0 MESH; send it MESH first`);
    // Amounts in the token's units, checked against what there is before anything is sent.
    const noStake = await cli(config, "unstake", "2.5");
    expect([noStake.code, noStake.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: unstake 2.5 MESH: 0.0 MESH is staked and not unbonding"]);
    const noEarnings = await cli(config, "withdraw", "tUSD", "3");
    expect([noEarnings.code, noEarnings.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: withdraw 3 tUSD: this node has 0.0 tUSD in the market"]);
    const tooPrecise = await cli(config, "withdraw", "tUSD", "0.0000001");
    expect([tooPrecise.code, tooPrecise.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: bad amount 0.0000001: tUSD has 6 decimal places"]);
    expect(await provider.getTransactionCount(address)).to.equal(0); // nothing sent
    const wrongPassword = await runScript("tsx", ["scripts/worker.ts", "--config", config, "status"], { MESHWORK_PASSWORD: "nope" }, 60_000);
    expect(wrongPassword.output).to.match(/error: cannot decrypt the keystore/);
    const badRegion = await cli(config, "register", "--region", "germany");
    expect(badRegion.code).to.not.equal(0);
    expect(badRegion.output).to.match(/two capital letters/);
    const raw = JSON.parse(readFileSync(config, "utf8"));
    // Every price is checked (decimals read from the token) before any is posted or saved.
    const badPrice = await cli(config, "prices", "tUSD=2", "tUSD=0.0000001");
    expect(badPrice.code).to.not.equal(0);
    expect(badPrice.output.trim().split("\n").at(-1)).to.equal('error: bad price "tUSD=0.0000001": tUSD has 6 decimal places');
    expect(JSON.parse(readFileSync(config, "utf8")).prices).to.deep.equal(raw.prices);
    writeFileSync(config, JSON.stringify({ ...raw, concurrency: 0 }));
    const badConfig = await cli(config, "status");
    expect(badConfig.output).to.match(/error: invalid worker config: concurrency/);
    // A re-init never loses the key that holds a stake: a bad option changes nothing, and the old keystore is kept beside.
    const before = readFileSync(join(dir, "keystore.json"), "utf8");
    const badInit = await cli(config, "init", "--rpc", node.url, "--force", "--poll-ms", "abc");
    expect(badInit.code).to.not.equal(0);
    expect(badInit.output).to.match(/error: invalid worker config: pollMs/);
    expect(readFileSync(join(dir, "keystore.json"), "utf8")).to.equal(before);
    expect(readdirSync(dir).filter((f) => f.endsWith(".bak"))).to.deep.equal([]);
    const forced = await cli(config, "init", "--rpc", node.url, "--force", "--deployments", deploymentsDir);
    expect(forced.code, forced.output).to.equal(0);
    const kept = /kept {6}the previous keystore as (\S+)/.exec(forced.output)?.[1];
    expect(kept, forced.output).to.be.a("string");
    expect(readFileSync(kept!, "utf8")).to.equal(before);
    expect(readFileSync(join(dir, "keystore.json"), "utf8")).to.not.equal(before);
  });
});
