/**
 * `npm start` (scripts/devnet.ts) as a process, twice: headless with --exit, then with --keep, when its
 * summary is checked against the chain and the consumer and governance CLIs (scripts/meshwork.ts) run
 * against the live network and its worker daemons; Ctrl-C then stops every process it started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { JsonRpcProvider, Network, Wallet } from "ethers";
import type { AddressBook } from "../../sdk/src/addressBook.js";
import { IJobMarket__factory } from "../../types/ethers-contracts/factories/interfaces/IJobMarket__factory.js";
import { ComputeCommons__factory } from "../../types/ethers-contracts/factories/commons/ComputeCommons__factory.js";
import { ProviderRegistry__factory } from "../../types/ethers-contracts/factories/staking/ProviderRegistry__factory.js";
import { TestUSD__factory } from "../../types/ethers-contracts/factories/test/mocks/TestUSD__factory.js";
import { buildInt8MatmulProgram, int8Matmul, parseIntKernelProgram } from "../../sdk/src/worker/runtimes/intKernel.js";
import { CHILD_ENV, ROOT, devKey, freePort, rpc, runScript, stopGroup } from "../../scripts/lib/localnet.js";

interface Summary {
  jobsSubmitted: number;
  jobsSettled: number;
  jobsFailed: number;
  medianQueueSeconds: number | null;
  pricePaid: string;
  auditsRun: number;
  cheater: { address: string; caught: boolean; stakeSlashed: string; collateralForfeited: string };
  commons: { budget: string; spent: string; jobs: number };
  feeBps: { before: number; after: number };
}

async function answers(url: string): Promise<boolean> {
  try {
    await rpc(url, "eth_chainId");
    return true;
  } catch {
    return false;
  }
}

describe("npm start: the local network, and the CLIs against it", function () {
  this.timeout(900_000);

  const runDir = mkdtempSync(join(tmpdir(), "meshwork-devnet-"));
  const deploymentsDir = mkdtempSync(join(tmpdir(), "meshwork-deployments-"));
  const env = { MESHWORK_DEVNET_DIR: runDir, MESHWORK_DEPLOYMENTS_DIR: deploymentsDir };
  let devnet: ChildProcess | undefined;
  let output = "";
  let url = "";
  let provider: JsonRpcProvider;
  let book: AddressBook;

  function meshwork(...args: string[]) {
    return runScript("tsx", ["scripts/meshwork.ts", ...args], env, 180_000);
  }

  const summary = () => JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as Summary;
  const lastLine = (text: string) => text.trim().split("\n").at(-1) ?? "";

  after(async () => {
    provider?.destroy();
    if (devnet) await stopGroup(devnet, 10_000);
    rmSync(runDir, { recursive: true, force: true });
    rmSync(deploymentsDir, { recursive: true, force: true });
  });

  it("runs headless with --exit: every job ends, the cheater is caught, the DAO's fee change is in effect", async () => {
    const port = await freePort();
    const result = await runScript("tsx", ["scripts/devnet.ts", "--jobs", "2", "--exit", "--port", String(port)], env, 600_000);
    expect(result.code, result.output).to.equal(0);
    const s = summary();
    expect(s.jobsSubmitted).to.equal(4); // 2 ONNX, the routed integer-kernel job, the commons job
    expect(s.jobsSettled + s.jobsFailed).to.equal(4);
    expect(s.cheater.caught).to.equal(true);
    expect(BigInt(s.cheater.stakeSlashed) > 0n).to.equal(true);
    expect(s.feeBps).to.deep.equal({ before: 250, after: 200 });
    expect(Number(s.commons.jobs)).to.equal(1);
    expect(result.output).to.contain("cheater caught");
    // Everything it started is gone.
    expect(await answers(`http://127.0.0.1:${port}`)).to.equal(false);
  });

  it("runs again with --keep; its summary matches the chain", async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    devnet = spawn(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/devnet.ts", "--jobs", "2", "--keep", "--port", String(port)], {
      cwd: ROOT,
      env: { ...CHILD_ENV, ...env },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    devnet.stdout!.on("data", (d) => (output += d));
    devnet.stderr!.on("data", (d) => (output += d));
    const deadline = Date.now() + 600_000;
    while (!output.includes("The network stays up")) {
      if (devnet.exitCode !== null || Date.now() > deadline) throw new Error(`devnet did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    provider = new JsonRpcProvider(url, Network.from(31337), { staticNetwork: true, cacheTimeout: -1 });
    book = JSON.parse(readFileSync(join(deploymentsDir, "localhost.json"), "utf8"));
    const market = IJobMarket__factory.connect(book.contracts.market, provider);
    const registry = ProviderRegistry__factory.connect(book.contracts.registry, provider);
    const commons = ComputeCommons__factory.connect(book.contracts.commons, provider);
    const s = summary();

    const settled = await market.queryFilter(market.filters.JobSettled(), book.deploymentBlock);
    expect(settled.length).to.equal(s.jobsSettled);
    expect(await market.parameter(0)).to.equal(BigInt(s.feeBps.after));
    const programme = await commons.programme(1n);
    expect(String(programme.spent)).to.equal(s.commons.spent);
    expect(String(programme.budget)).to.equal(s.commons.budget);
    const slashes = await registry.queryFilter(registry.filters.Slashed(s.cheater.address), book.deploymentBlock);
    expect(String(slashes.reduce((sum, e) => sum + e.args.fromStake + e.args.fromUnbonding, 0n))).to.equal(s.cheater.stakeSlashed);
    const frauds = await market.queryFilter(market.filters.FraudProven(), book.deploymentBlock);
    expect(frauds.length > 0).to.equal(s.cheater.caught);
  });

  it("meshwork job submit | status | result | cancel against the live network and its workers", async () => {
    const consumer = new Wallet(devKey(12)).address;
    const deployer = await provider.getSigner(0);
    await (await TestUSD__factory.connect(book.contracts.paymentTokens.tUSD, deployer).mint(consumer, 100n * 10n ** 6n)).wait();
    const dir = mkdtempSync(join(tmpdir(), "meshwork-cli-"));
    const programBytes = buildInt8MatmulProgram({ k: 8, n: 4, weights: Int8Array.from({ length: 32 }, (_, i) => (i % 7) - 3) });
    writeFileSync(join(dir, "program.json"), programBytes);
    const inputs = [0, 1].map((c) => Int8Array.from({ length: 8 * 4 }, (_, i) => ((i + c * 5) % 11) - 5));
    inputs.forEach((b, c) => writeFileSync(join(dir, `in-${c}.bin`), new Uint8Array(b.buffer)));

    const submit = await meshwork("--account", "12", "job", "submit", "--program", join(dir, "program.json"), "--inputs", join(dir, "in-0.bin"), join(dir, "in-1.bin"), "--price", "12", "--units", "10");
    expect(submit.code, submit.output).to.equal(0);
    const id = /submitted job (0x[0-9a-f]{64})/.exec(submit.output)![1];
    // The workers take it from here; an unaudited job waits out its challenge window (2 devnet minutes),
    // which the test fast-forwards.
    const market = IJobMarket__factory.connect(book.contracts.market, provider);
    const deadline = Date.now() + 240_000;
    for (let state = 0; state !== 9; state = Number(await market.jobState(id))) {
      if (Date.now() > deadline) throw new Error(`job ${id} stuck in state ${state}`);
      if (state === 6) {
        await rpc(url, "evm_increaseTime", [121]);
        await rpc(url, "evm_mine", []);
      }
      await new Promise((r) => setTimeout(r, 500));
    }

    const status = await meshwork("job", "status", id);
    expect(status.output).to.contain(`job ${id}: Settled`);
    expect(status.output).to.match(/claimed by 0x[\s\S]*settled by 0x/);

    const out = join(dir, "out");
    const result = await meshwork("job", "result", id, "--out", out);
    expect(result.code, result.output).to.equal(0);
    const program = parseIntKernelProgram(programBytes);
    if (program.kernel !== "int8-matmul") throw new Error("unexpected kernel");
    inputs.forEach((input, c) => {
      const expected = new Uint8Array(int8Matmul(program, input).buffer);
      expect(new Uint8Array(readFileSync(join(out, `chunk-${c}.bin`)))).to.deep.equal(expected);
    });

    // A job nobody can take (region "ZZ"), cancelled: the price goes back to the consumer's balance.
    const unclaimable = await meshwork("--account", "12", "job", "submit", "--program", join(dir, "program.json"), "--inputs", join(dir, "in-0.bin"), "--price", "5", "--region", "ZZ");
    const stuck = /submitted job (0x[0-9a-f]{64})/.exec(unclaimable.output)![1];
    const cancel = await meshwork("--account", "12", "job", "cancel", stuck);
    expect(cancel.code, cancel.output).to.equal(0);
    expect((await meshwork("job", "status", stuck)).output).to.contain(": Cancelled");
    rmSync(dir, { recursive: true, force: true });
  });

  it("meshwork gov delegate | propose | vote | queue | execute | list, and providers list, stats", async () => {
    const delegate = await meshwork("--account", "0", "gov", "delegate");
    expect(delegate.code, delegate.output).to.equal(0);
    const propose = await meshwork("--account", "0", "gov", "propose", "--set", "market.ChallengeBondBps=1500", "--description", "Raise the challenge bond to 15%");
    expect(propose.code, propose.output).to.equal(0);
    const id = /proposal (\d+)/.exec(propose.output)![1];
    await rpc(url, "evm_increaseTime", [61]);
    await rpc(url, "evm_mine", []);
    const vote = await meshwork("--account", "0", "gov", "vote", id, "for", "--reason", "fewer frivolous challenges");
    expect(vote.code, vote.output).to.equal(0);
    // A node operator votes with its worker's keystore: its 1,000 MESH of stake are its votes.
    const keystore = join(runDir, "berlin-lab", "keystore.json");
    const operator = await runScript("tsx", ["scripts/meshwork.ts", "--keystore", keystore, "gov", "vote", id, "against"], { ...env, MESHWORK_PASSWORD: "devnet" }, 180_000);
    expect(operator.code, operator.output).to.equal(0);
    expect(operator.output).to.contain(`voted against on ${id} with 1000.0 votes`);
    await rpc(url, "evm_increaseTime", [5 * 60 + 1]);
    await rpc(url, "evm_mine", []);
    expect((await meshwork("--account", "0", "gov", "queue", id)).code).to.equal(0);
    await rpc(url, "evm_increaseTime", [2 * 60 + 1]);
    await rpc(url, "evm_mine", []);
    const execute = await meshwork("--account", "0", "gov", "execute", id);
    expect(execute.code, execute.output).to.equal(0);
    expect(await IJobMarket__factory.connect(book.contracts.market, provider).parameter(15)).to.equal(1500n);
    const list = await meshwork("gov", "list");
    expect(list.output).to.match(new RegExp(`${id}\\s+Executed\\s+Raise the challenge bond`));
    const escalations = await meshwork("gov", "escalations");
    expect(escalations.code, escalations.output).to.equal(0);
    expect(escalations.output).to.match(/no escalated disputes|decide before/);

    const providers = await meshwork("providers", "list");
    expect(providers.output.trim().split("\n")).to.have.length(4);
    expect(providers.output).to.match(/KE renewable .* 1\.0 tUSD\/unit/);
    const stats = await meshwork("stats");
    expect(stats.code, stats.output).to.equal(0);
    expect(stats.output).to.match(/queue time  p50 \d+ s/);
    expect(stats.output).to.match(/price index tUSD: [\d.]+ per unit/);
  });

  it("prints one clear line and exits non-zero on bad input, spending nothing", async () => {
    const poor = new Wallet(devKey(15)).address;
    const before = await provider.getTransactionCount(poor);
    const missing = await meshwork("--account", "15", "job", "submit", "--program", "/no/such/program", "--inputs", "x", "--price", "1");
    expect(missing.code).to.not.equal(0);
    expect(lastLine(missing.output)).to.equal("error: no such file: /no/such/program");
    const wrongNetwork = await meshwork("--network", "nowhere", "stats");
    expect(lastLine(wrongNetwork.output)).to.equal('error: no address book for network "nowhere"');
    const dir = mkdtempSync(join(tmpdir(), "meshwork-cli-"));
    writeFileSync(join(dir, "p"), buildInt8MatmulProgram({ k: 2, n: 1, weights: [1, 1] }));
    writeFileSync(join(dir, "i"), new Uint8Array([1, 2]));
    const broke = await meshwork("--account", "15", "job", "submit", "--program", join(dir, "p"), "--inputs", join(dir, "i"), "--price", "50");
    expect(broke.code).to.not.equal(0);
    expect(lastLine(broke.output)).to.match(/^error: insufficient funds: 50000000 needed, 0 available/);
    expect(await provider.getTransactionCount(poor)).to.equal(before); // no gas spent
    const nothing = await meshwork("--account", "15", "gov", "propose", "--description", "nothing");
    expect(lastLine(nothing.output)).to.equal("error: nothing to propose: give --set and/or --verdict");
    const badVerdict = await meshwork("--account", "15", "gov", "propose", "--verdict", `0x${"11".repeat(32)}=Maybe`, "--description", "x");
    expect(lastLine(badVerdict.output)).to.match(/^error: bad verdict "0x1{64}=Maybe": expected 0xJobId=ProviderFraud\|AuditorFraud\|NoFault/);
    const bundled = await meshwork("--account", "15", "gov", "propose", "--set", "market.FeeBps=200", "--verdict", `0x${"11".repeat(32)}=NoFault`, "--description", "x");
    expect(lastLine(bundled.output)).to.match(/^error: propose one --verdict alone/);
    const notEscalated = await meshwork("--account", "15", "gov", "propose", "--verdict", `0x${"11".repeat(32)}=NoFault`, "--description", "x");
    expect(lastLine(notEscalated.output)).to.match(/is not an escalated dispute now/);
    const noKey = await meshwork("job", "cancel", "0x" + "11".repeat(32));
    expect(lastLine(noKey.output)).to.match(/^error: this command sends a transaction/);
    const badId = await meshwork("job", "status", "0x1234");
    expect(badId.code).to.not.equal(0);
    expect(badId.output).to.match(/expected a job id/);
    rmSync(dir, { recursive: true, force: true });
  });

  it("stops every process it started on Ctrl-C", async () => {
    const node = devnet!;
    const exited = new Promise<number | null>((done) => node.once("exit", (code) => done(code)));
    process.kill(-node.pid!, "SIGINT");
    expect(await exited).to.equal(130);
    expect(await answers(url)).to.equal(false);
    expect(existsSync(join(runDir, "summary.json"))).to.equal(true);
    devnet = undefined;
  });
});
