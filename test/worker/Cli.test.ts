/**
 * The operator's CLI (scripts/worker.ts) as real processes against a real `hardhat node` with the
 * deploy script's deployment: init (encrypted keystore, hardware, config), register, stake, prices,
 * status; two daemons (a provider and an auditor) run a consumer's jobs, and a daemon is SIGKILLed in
 * each phase — the provider after its claim, after computing, after its commit, the auditor during its
 * audit of an honest provider and of a cheater — and restarted on its data directory: every job still
 * settles, with one commit and no unjust slash, and the cheater is still caught; withdraw and unstake;
 * bad input gives one clear line and a non-zero exit.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { expect } from "chai";
import { JsonRpcProvider, Network, Wallet } from "ethers";
import { startBlobServer, HttpBlobStore, type BlobServer } from "../../sdk/src/blob.js";
import { Meshwork } from "../../sdk/src/client.js";
import type { AddressBook } from "../../sdk/src/addressBook.js";
import { IJobMarket__factory } from "../../types/ethers-contracts/factories/interfaces/IJobMarket__factory.js";
import { MeshToken__factory } from "../../types/ethers-contracts/factories/token/MeshToken__factory.js";
import { TestUSD__factory } from "../../types/ethers-contracts/factories/test/mocks/TestUSD__factory.js";
import { ProviderRegistry__factory } from "../../types/ethers-contracts/factories/staking/ProviderRegistry__factory.js";
import { CHILD_ENV, ROOT, deployLocal, devKey, freePort, killGroup, rpc, runScript, startLocalNode, stopGroup, type LocalNode } from "../../scripts/lib/localnet.js";
import { JOB_STATES } from "../../sdk/src/jobs.js";
import { CHUNKS, JOB, K, ROWS, bytes } from "./worker-fixture.js";
import { buildInt8MatmulProgram } from "../../sdk/src/worker/runtimes/intKernel.js";
import { digestOf } from "../../sdk/src/blob.js";

const PASSWORD = "correct horse battery staple";
const ENV = { MESHWORK_PASSWORD: PASSWORD };

/** A daemon process, with the last of what it printed and a way to wait for one of its log lines. */
type Daemon = ChildProcess & {
  log(): string;
  /** Resolves with the first log line (JSON) from now on for which `match` holds. */
  line(match: (entry: { msg?: string; jobId?: string }) => boolean): Promise<void>;
};
type Operator = { config: string; address: string };

describe("worker CLI and daemon as processes", function () {
  this.timeout(600_000);

  let node: LocalNode;
  let book: AddressBook;
  let deploymentsDir = "";
  let blobs: BlobServer;
  let provider: JsonRpcProvider;
  const dirs: string[] = [];
  const daemons: Daemon[] = [];

  function cli(config: string, ...args: string[]) {
    return runScript("tsx", ["scripts/worker.ts", "--config", config, ...args], ENV, 120_000);
  }

  /** Starts `worker start` on `config` (`extra`: more options, e.g. the test-only `--cheat`). */
  function startDaemon(config: string, ...extra: string[]): Daemon {
    const child = spawn(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/worker.ts", "--config", config, "start", ...extra], {
      cwd: ROOT,
      env: { ...CHILD_ENV, ...ENV },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    }) as Daemon;
    let log = "";
    let partial = "";
    const waiters = new Set<{ match: (entry: { msg?: string; jobId?: string }) => boolean; resolve: () => void }>();
    child.stdout!.on("data", (d) => {
      log = (log + d).slice(-20_000);
      const lines = (partial + d).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        let entry: { msg?: string; jobId?: string };
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        for (const w of waiters) if (w.match(entry)) (waiters.delete(w), w.resolve());
      }
    });
    child.stderr!.on("data", (d) => (log = (log + d).slice(-20_000)));
    child.log = () => log;
    child.line = (match) => new Promise((resolve) => waiters.add({ match, resolve }));
    daemons.push(child);
    return child;
  }

  /** Sets up an operator with development account `index`: init, register, stake, prices. */
  async function operator(index: number, region: string): Promise<Operator> {
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
    expect(init.output).to.match(/blobs {5}.*blobs, budget 16\.0 GiB of the disk's [\d.]+ GiB free \((maxBlobDirBytes|over half of that: lower maxBlobDirBytes in the config)\)/);
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
      // The profile by name, not the registry's numbers.
      if (args[0] === "register") expect(result.output).to.match(new RegExp(`registered ${address}: region ${region}, energy renewable, GPU class 3, \\d+ GPUs? × \\d+ GB, runtimes int-kernel, onnx\n`));
      // A machine without a GPU registers as the least profile the registry takes, and is told so.
      if (args[0] === "register" && JSON.parse(readFileSync(config, "utf8")).hardware.gpuCount === 0) {
        expect(result.output).to.contain(", 1 GPU × 1 GB, ");
        expect(result.output).to.contain("note: no GPU detected, so the profile says 1 GPU with 1 GB");
      }
    }
    const status = await cli(config, "status");
    expect(status.code, status.output).to.equal(0);
    expect(status.output).to.contain("1000.0 MESH active");
    expect(status.output).to.contain(`profile   region ${region}, energy renewable, GPU class 3, `);
    expect(status.output).to.contain("prices    1.0 tUSD/unit\n");
    // The profile offers what this machine runs of the config's runtimes (both, here).
    expect((await ProviderRegistry__factory.connect(book.contracts.registry, provider).profileOf(address)).runtimes).to.equal(0b11n);
    return { config, address };
  }

  /** Operators A (Germany) and B (Kenya), set up once for the tests that run jobs. */
  let operators: Promise<{ a: Operator; b: Operator }> | undefined;
  const setUpOperators = () => (operators ??= (async () => ({ a: await operator(11, "DE"), b: await operator(12, "KE") }))());

  /** A consumer (development account 13) with test dollars and the SDK on the tests' blob server. */
  let consumer: Promise<Meshwork> | undefined;
  const setUpConsumer = () =>
    (consumer ??= (async () => {
      const wallet = new Wallet(devKey(13), provider);
      const deployer = await provider.getSigner(0);
      await (await TestUSD__factory.connect(book.contracts.paymentTokens.tUSD, deployer).mint(wallet.address, 1_000n * 10n ** 6n)).wait();
      return Meshwork.connect({ runner: wallet, addresses: book, blobStore: new HttpBlobStore(blobs.url) });
    })());

  /** An integer-kernel job (a fresh program and inputs from `seed`) targeted at `target`, audited for sure when `audited`. */
  async function postJob(target: string, seed: number, audited = false) {
    const mw = await setUpConsumer();
    const program = buildInt8MatmulProgram({ k: K, n: 8, weights: Int8Array.from(bytes(K * 8, seed)) });
    await mw.context.blobStore!.put(program);
    const { inputs, chunking } = await mw.jobs.upload(Array.from({ length: CHUNKS }, (_, i) => bytes((ROWS / CHUNKS) * K, seed + 41 + i)));
    const spec = {
      version: 1,
      runtime: "int-kernel",
      program: { digest: digestOf(program), size: program.length },
      inputs,
      chunking,
      output: { encoding: "int32-le", canonicalisation: "exact" },
    } as const;
    const verification = { ...JOB.verification, ...(audited ? { auditBps: 10_000 } : {}) };
    return mw.jobs.create(spec, { ...JOB, verification, targetProvider: target });
  }

  /** Polls `check` until it holds; on timeout, fails with the daemons' logs. */
  async function until(what: string, check: () => Promise<boolean>, ms = 120_000, everyMs = 200) {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${daemons.map((d) => d.log()).join("\n---\n")}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
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
    const { a, b } = await setUpOperators();
    const registry = ProviderRegistry__factory.connect(book.contracts.registry, provider);
    expect(await registry.isActive(a.address)).to.equal(true);
    expect(await registry.postedPrice(a.address, book.contracts.paymentTokens.tUSD)).to.equal(1_000_000n);

    // A consumer posts a job targeted at operator A through the SDK; its inputs are in the consumer's store.
    const job = await postJob(a.address, 9);
    const daemonA = startDaemon(a.config);
    const daemonB = startDaemon(b.config);
    const market = IJobMarket__factory.connect(book.contracts.market, provider);
    await until("the claim", async () => Number(await market.jobState(job.jobId)) >= 2);
    killGroup(daemonA, "SIGKILL");
    const restarted = startDaemon(a.config);
    await until("settlement", async () => Number(await market.jobState(job.jobId)) === 9);
    expect(await market.queryFilter(market.filters.JobCommitted(job.jobId))).to.have.length(1);
    expect((await registry.countersOf(a.address)).slashes).to.equal(0n);
    const { chunks } = await job.result();
    expect(chunks).to.have.length(CHUNKS);
    expect(restarted.log()).to.match(/"msg":"(resumed a claim|committed|computed and published|revealed to the auditor)/);

    // SIGTERM stops a daemon cleanly; status then shows the finished job from the local database.
    await until("the daemon to book the payment", async () => restarted.log().includes("job settled: paid"));
    await stopGroup(restarted, 10_000);
    await stopGroup(daemonB, 10_000);
    const status = await cli(a.config, "status");
    expect(status.output).to.contain("jobs      as provider, done: 1");
    // The job's spec, program, inputs, manifest and outputs are in its blob directory, kept a week.
    expect(status.output).to.match(/blobs {5}(\d+) in .*blobs, [\d.]+ MiB \(budget 16\.0 GiB; removed once unused for 168 h\)/);
    expect(Number(/blobs {5}(\d+)/.exec(status.output)![1])).to.be.at.least(11);
  });

  it("survives a SIGKILL after computing, after committing, and an auditor's during its audit: one commit each, no slash", async () => {
    const { a, b } = await setUpOperators();
    const market = IJobMarket__factory.connect(book.contracts.market, provider);
    const registry = ProviderRegistry__factory.connect(book.contracts.registry, provider);
    const tUSD = book.contracts.paymentTokens.tUSD;
    const state = async (jobId: string) => JOB_STATES[Number(await market.jobState(jobId))];
    // Blocks every 500 ms and no automine: the test stops the chain (mining off) the moment a job
    // reaches the phase to kill in, so nothing the daemon sends meanwhile can land before it is killed.
    const mining = (on: boolean) => rpc(node.url, "evm_setIntervalMining", [on ? 500 : 0]);
    await rpc(node.url, "evm_setAutomine", [false]);
    // Audits are paid from the audit pool, which fees fill as jobs settle: fund it, so this test sees the pay.
    const deployer = await provider.getSigner(0);
    await (await TestUSD__factory.connect(tUSD, deployer).mint(deployer.address, 100n * 10n ** 6n)).wait();
    await (await TestUSD__factory.connect(tUSD, deployer).approve(book.contracts.market, 100n * 10n ** 6n)).wait();
    await (await market.connect(deployer).fundAuditPool(tUSD, 100n * 10n ** 6n)).wait();
    const before = { a: await registry.countersOf(a.address), b: await registry.countersOf(b.address), bEarned: await market.balanceOf(tUSD, b.address) };
    let daemonA = startDaemon(a.config);
    let daemonB = startDaemon(b.config);
    try {
      // 1. The provider, after computing: the commit it may have sent is not mined when it dies.
      const computed = await postJob(a.address, 20, true);
      const published = daemonA.line((e) => e.jobId === computed.jobId && e.msg === "computed and published");
      await until("the first job's claim", async () => (await state(computed.jobId)) === "Claimed", 120_000, 25);
      await mining(false);
      await published;
      killGroup(daemonA, "SIGKILL");
      expect(await state(computed.jobId)).to.equal("Claimed");
      await mining(true);
      daemonA = startDaemon(a.config);

      // 2. The provider, after its commit landed: the draw and reveal it may have sent are not mined.
      const committed = await postJob(a.address, 21, true);
      await until("the second job's commit", async () => (await state(committed.jobId)) === "Committed", 120_000, 25);
      await mining(false);
      killGroup(daemonA, "SIGKILL");
      expect(await state(committed.jobId)).to.equal("Committed");
      await mining(true);
      daemonA = startDaemon(a.config);

      // 3. The auditor, during its audit: its blind claim landed, its reveal not yet sent.
      const audited = await postJob(a.address, 22, true);
      await daemonB.line((e) => e.jobId === audited.jobId && e.msg === "claimed audit (blind commitment)");
      killGroup(daemonB, "SIGKILL");
      expect(await market.queryFilter(market.filters.AuditClaimed(audited.jobId))).to.have.length(1);
      expect(await market.queryFilter(market.filters.AuditPassed(audited.jobId))).to.have.length(0);
      daemonB = startDaemon(b.config);

      const jobs = [computed, committed, audited];
      await until("every job to settle", async () => (await Promise.all(jobs.map((j) => state(j.jobId)))).every((s) => s === "Settled"));
      let reward = 0n;
      for (const job of jobs) {
        expect(await market.queryFilter(market.filters.JobCommitted(job.jobId)), job.jobId).to.have.length(1);
        const [passed] = await market.queryFilter(market.filters.AuditPassed(job.jobId));
        expect(passed?.args.auditor, job.jobId).to.equal(b.address);
        expect(passed.args.reward, job.jobId).to.be.greaterThan(0n);
        reward += passed.args.reward;
        expect((await job.result()).chunks).to.have.length(CHUNKS);
      }
      const after = { a: await registry.countersOf(a.address), b: await registry.countersOf(b.address) };
      expect([after.a.slashes, after.b.slashes]).to.deep.equal([before.a.slashes, before.b.slashes]);
      expect(after.a.timedOut).to.equal(before.a.timedOut);
      expect(after.a.audited - before.a.audited).to.equal(3n);
      expect(after.a.failedAudits).to.equal(before.a.failedAudits);
      // The honest auditor is paid for all three audits, the one it was killed in included.
      expect((await market.balanceOf(tUSD, b.address)) - before.bEarned).to.be.at.least(reward);
      expect(daemonA.log()).to.match(/"msg":"(committed|revealed to the auditor)"/);
      // The restarted auditor books the audit it was killed in as passed.
      const booked = new RegExp(`"jobId":"${audited.jobId}","role":"auditor","outcome":"passed","msg":"audit finished"`);
      await until("the restarted auditor to book its audit", async () => booked.test(daemonB.log()));
    } finally {
      await rpc(node.url, "evm_setAutomine", [true]);
      await mining(true);
      await stopGroup(daemonA, 10_000);
      await stopGroup(daemonB, 10_000);
    }
  });

  it("an auditor SIGKILLed during its audit of a cheater reveals after its restart: the cheater is slashed, the auditor paid", async () => {
    const { a, b } = await setUpOperators();
    const c = await operator(15, "BR"); // runs the test-only cheating mode: fabricates its chunks
    const market = IJobMarket__factory.connect(book.contracts.market, provider);
    const registry = ProviderRegistry__factory.connect(book.contracts.registry, provider);
    const tUSD = book.contracts.paymentTokens.tUSD;
    const before = { b: await registry.countersOf(b.address), c: await registry.countersOf(c.address), bEarned: await market.balanceOf(tUSD, b.address) };
    const cheater = startDaemon(c.config, "--cheat", "fabricate");
    let auditor = startDaemon(b.config);
    let tieBreaker: Daemon | undefined;
    try {
      const job = await postJob(c.address, 30, true);
      await auditor.line((e) => e.jobId === job.jobId && e.msg === "claimed audit (blind commitment)");
      killGroup(auditor, "SIGKILL");
      expect((await market.queryFilter(market.filters.AuditClaimed(job.jobId))).map((e) => e.args.auditor)).to.deep.equal([b.address]);
      expect(await market.queryFilter(market.filters.AuditRevealed(job.jobId))).to.have.length(0);
      // The cheater reveals leaves that do not open the auditor's blind commitment; only the auditor's
      // own reveal, after its restart, can now dispute them. Then A breaks the tie.
      auditor = startDaemon(b.config);
      await until("the restarted auditor's reveal", async () => (await market.queryFilter(market.filters.AuditRevealed(job.jobId))).length === 1);
      expect((await market.queryFilter(market.filters.AuditRevealed(job.jobId)))[0].args.auditor).to.equal(b.address);
      tieBreaker = startDaemon(a.config);
      await until("the verdict", async () => JOB_STATES[Number(await market.jobState(job.jobId))] === "Slashed");
      const [fraud] = await market.queryFilter(market.filters.FraudProven(job.jobId));
      expect(fraud.args.provider).to.equal(c.address);
      expect(fraud.args.toAuditors).to.be.greaterThan(0n);
      expect((await market.queryFilter(market.filters.TieBreakRevealed(job.jobId)))[0].args.tieBreaker).to.equal(a.address);
      const after = { b: await registry.countersOf(b.address), c: await registry.countersOf(c.address) };
      expect(after.c.slashes - before.c.slashes).to.equal(1n);
      expect([after.b.slashes, after.b.failedAudits]).to.deep.equal([before.b.slashes, before.b.failedAudits]);
      expect(await market.queryFilter(market.filters.AuditorStalled(job.jobId))).to.have.length(0);
      expect((await market.balanceOf(tUSD, b.address)) - before.bEarned).to.be.greaterThan(0n); // its share of the cheater's collateral
    } finally {
      for (const d of [cheater, auditor, tieBreaker]) if (d) await stopGroup(d, 10_000);
    }
  });

  it("withdraws its earnings and unstakes: the node then says it takes no new jobs", async () => {
    const { a } = await setUpOperators();
    const market = IJobMarket__factory.connect(book.contracts.market, provider);
    const tUSD = book.contracts.paymentTokens.tUSD;
    await (await setUpConsumer()).balances.deposit("tUSD", 5n * 10n ** 6n, a.address); // earnings, whatever ran before
    expect(await market.balanceOf(tUSD, a.address)).to.be.greaterThan(0n);
    const withdrew = await cli(a.config, "withdraw");
    expect(withdrew.code, withdrew.output).to.equal(0);
    expect(await market.balanceOf(tUSD, a.address)).to.equal(0n);
    const unstaked = await cli(a.config, "unstake", "500");
    expect(unstaked.code, unstaked.output).to.equal(0);
    expect(unstaked.output).to.match(/unbonding 500 MESH until \S+ \(slashable until then\)/);
    expect(unstaked.output).to.contain("note: active stake is now 500.0 MESH, under the minimum: this node takes no new jobs");
    const releaseAt = /unbonding 500 MESH until (\S+)/.exec(unstaked.output)![1];

    // Too early: one line saying when, and nothing sent.
    const sent = await provider.getTransactionCount(a.address);
    const early = await cli(a.config, "unstake", "--withdraw");
    expect([early.code, early.output.trim().split("\n").at(-1)]).to.deep.equal([1, `error: unstake --withdraw: nothing released yet; the first 500.0 MESH is released at ${releaseAt}`]);
    expect(await provider.getTransactionCount(a.address)).to.equal(sent);
    const waiting = await cli(a.config, "status");
    expect(waiting.output).to.contain("stake     500.0 MESH active, 500.0 unbonding");
    expect(waiting.output).to.contain(`unbonding 500.0 MESH released at ${releaseAt}`);

    // After the unbonding period (10 minutes on the devnet) it is paid.
    await provider.send("evm_increaseTime", [600]);
    await provider.send("evm_mine", []);
    expect((await cli(a.config, "status")).output).to.contain("unbonding 500.0 MESH released (`unstake --withdraw` pays it)");
    const mesh = MeshToken__factory.connect(book.contracts.mesh, provider);
    const held = await mesh.balanceOf(a.address);
    const withdrawn = await cli(a.config, "unstake", "--withdraw");
    expect(withdrawn.code, withdrawn.output).to.equal(0);
    expect(withdrawn.output.trim().split("\n").at(-1)).to.equal("withdrew 500.0 MESH of released stake");
    expect((await mesh.balanceOf(a.address)) - held).to.equal(500n * 10n ** 18n);
    const done = await cli(a.config, "status");
    expect(done.output).to.contain("stake     500.0 MESH active, 0.0 unbonding");
    expect(done.output).to.not.contain("unbonding 500.0");
  });

  it("re-registers keeping what is left out; prices 0, nothing to withdraw and rejections by reason say so", async () => {
    const o = await operator(16, "GH");
    const registry = ProviderRegistry__factory.connect(book.contracts.registry, provider);
    // Only the GPU class given: the region and energy stay as registered.
    const updated = await cli(o.config, "register", "--gpu-class", "5");
    expect(updated.code, updated.output).to.equal(0);
    expect(updated.output).to.match(new RegExp(`updated ${o.address}: region GH, energy renewable, GPU class 5, .* \\(kept as registered: region, energy\\)`));
    const profile = await registry.profileOf(o.address);
    expect([profile.region, Number(profile.energy), Number(profile.gpuClass)]).to.deep.equal(["0x4748", 2, 5]);

    const nothing = await cli(o.config, "withdraw");
    expect(nothing.code, nothing.output).to.equal(0);
    expect(nothing.output.trim().split("\n").at(-1)).to.equal(`nothing to withdraw: this node has no ${Object.keys(book.contracts.paymentTokens).join(" or ")} in the market`);

    // A job priced under the node's minimum (4 tUSD per unit against 5) is rejected, and status says why.
    expect((await cli(o.config, "prices", "tUSD=5")).code).to.equal(0);
    const job = await postJob(o.address, 40);
    const daemon = startDaemon(o.config);
    await daemon.line((e) => e.jobId === job.jobId && /^not taking job/.test(e.msg ?? ""));
    await stopGroup(daemon, 10_000);
    await job.cancel();
    const status = await cli(o.config, "status");
    expect(status.output).to.contain("profile   region GH, energy renewable, GPU class 5, ");
    expect(status.output).to.contain("prices    5.0 tUSD/unit\n");
    expect(status.output).to.match(/jobs {6}not taken, rejected: \d+ \((.*, )?price 1(, .*)?\)/);

    // 0 on-chain: the node no longer takes the token; the config no longer prices it.
    const zero = await cli(o.config, "prices", "tUSD=0");
    expect(zero.code, zero.output).to.equal(0);
    expect(zero.output.trim().split("\n").at(-1)).to.equal("posted price 0: this node no longer takes tUSD jobs");
    expect(await registry.postedPrice(o.address, book.contracts.paymentTokens.tUSD)).to.equal(0n);
    expect(JSON.parse(readFileSync(o.config, "utf8")).prices).to.not.have.property("tUSD");
    expect((await cli(o.config, "status")).output).to.contain("prices    none posted");
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
    expect(init.output).to.contain(`(on the local devnet: \`npm run meshwork -- fund ${new Wallet(devKey(14)).address}\`)`);
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
    const nothingUnbonding = await cli(config, "unstake", "--withdraw");
    expect([nothingUnbonding.code, nothingUnbonding.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: unstake --withdraw: no stake is unbonding (`unstake <amount>` starts unbonding)"]);
    const both = await cli(config, "unstake", "5", "--withdraw");
    expect([both.code, both.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: give an amount to unstake, or --withdraw, not both"]);
    const noEarnings = await cli(config, "withdraw", "tUSD", "3");
    expect([noEarnings.code, noEarnings.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: withdraw 3 tUSD: this node has 0.0 tUSD in the market"]);
    const tooPrecise = await cli(config, "withdraw", "tUSD", "0.0000001");
    expect([tooPrecise.code, tooPrecise.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: bad amount 0.0000001: tUSD has 6 decimal places"]);
    // Zero is refused before the contract can (ProviderRegistryZeroAmount).
    const stakeZero = await cli(config, "stake", "0");
    expect([stakeZero.code, stakeZero.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: the amount must be more than 0 (got 0)"]);
    const unstakeZero = await cli(config, "unstake", "0.00");
    expect([unstakeZero.code, unstakeZero.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: the amount must be more than 0 (got 0.00)"]);
    // A first registration needs a region; a GPU class is a uint16.
    const noRegion = await cli(config, "register", "--energy", "grid");
    expect([noRegion.code, noRegion.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: register: --region <code> is required to register (e.g. --region DE)"]);
    const badClass = await cli(config, "register", "--region", "DE", "--gpu-class", "70000");
    expect(badClass.code).to.not.equal(0);
    expect(badClass.output).to.match(/an integer from 0 to 65535/);
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

/**
 * `init` needs no chain: an address book (made up: `init` only reads its chain id) and an RPC that does
 * not answer (only a warning). What it does with the secrets it is given, and what it writes.
 */
describe("worker init, offline: the key, the password and what it writes", function () {
  this.timeout(300_000);

  let dir = "";
  let rpcUrl = "";
  const key = devKey(15);
  const address = new Wallet(key).address;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "meshwork-init-"));
    const made = () => Wallet.createRandom().address;
    const contracts = { mesh: made(), registry: made(), market: made(), auditModule: made(), timelock: made(), governor: made(), commons: made(), paymentTokens: { tUSD: made() } };
    writeFileSync(join(dir, "localhost.json"), JSON.stringify({ network: "localhost", chainId: 31337, deploymentBlock: 0, contracts }));
    rpcUrl = `http://127.0.0.1:${await freePort()}`;
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** `worker init` on a config in a fresh directory under `dir`, with `input` on its stdin. */
  function init(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; config?: string; rpc?: string } = {}): Promise<{ code: number | null; output: string; config: string }> {
    const config = options.config ?? join(mkdtempSync(join(dir, "operator-")), "worker.json");
    return new Promise((done, reject) => {
      const child = spawn(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/worker.ts", "--config", config, "init", "--rpc", options.rpc ?? rpcUrl, "--deployments", dir, ...args], {
        cwd: ROOT,
        env: { ...CHILD_ENV, ...(options.env ?? ENV) },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let output = "";
      child.stdout!.on("data", (d) => (output += d));
      child.stderr!.on("data", (d) => (output += d));
      child.once("error", reject);
      child.once("close", (code) => done({ code, output, config }));
      child.stdin!.end(options.input ?? "");
    });
  }

  it("imports a key from a file or stdin, and never prints a bad one", async () => {
    const keyFile = join(dir, "key.txt");
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    const fromFile = await init(["--key-file", keyFile]);
    expect(fromFile.code, fromFile.output).to.equal(0);
    expect(fromFile.output).to.contain(`address   ${address}`);
    const fromStdin = await init(["--key", "-"], { input: `${key.slice(2)}\n` });
    expect(fromStdin.code, fromStdin.output).to.equal(0);
    expect(fromStdin.output).to.contain(`address   ${address}`);

    // A malformed key (ethers would quote it whole) or one that is no secp256k1 key: one line that names where it came from.
    const bad = key.slice(0, -2) + "zz";
    const badArg = await init(["--key", bad]);
    expect([badArg.code, badArg.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: the private key given with --key is not 32 bytes of hex (64 hex digits, optionally 0x-prefixed)"]);
    expect(badArg.output).to.not.contain(bad.slice(2, 40));
    writeFileSync(keyFile, "0x" + "ff".repeat(32));
    const badFile = await init(["--key-file", keyFile]);
    expect([badFile.code, badFile.output.trim().split("\n").at(-1)]).to.deep.equal([1, `error: the private key in ${keyFile} is not a valid secp256k1 private key`]);
    expect(badFile.output).to.not.contain("ff".repeat(16));
    const both = await init(["--key", key, "--key-file", keyFile]);
    expect(both.code).to.not.equal(0);
    expect(both.output).to.match(/option '--key-file <path>' cannot be used with option '--key <hex>'/);
  });

  it("takes the password from MESHWORK_PASSWORD_FILE or MESHWORK_PASSWORD, and no process it starts inherits either", async () => {
    // An nvidia-smi that writes down the environment it was given (and finds no GPU).
    const bin = mkdtempSync(join(dir, "bin-"));
    const seen = join(bin, "env.txt");
    writeFileSync(join(bin, "nvidia-smi"), `#!/bin/sh\nenv > '${seen}'\nexit 1\n`, { mode: 0o755 });
    const path = `${bin}:${CHILD_ENV.PATH}`;
    const passwordFile = join(dir, "password.txt");
    writeFileSync(passwordFile, "a passphrase from a file\nnot this line\n", { mode: 0o600 });

    const fromFile = await init(["--key", key], { env: { PATH: path, MESHWORK_PASSWORD_FILE: passwordFile } });
    expect(fromFile.code, fromFile.output).to.equal(0);
    expect(readFileSync(seen, "utf8")).to.not.match(/MESHWORK_PASSWORD/);
    const keystore = readFileSync(join(dirname(fromFile.config), "keystore.json"), "utf8");
    expect((await Wallet.fromEncryptedJson(keystore, "a passphrase from a file")).address).to.equal(address);

    rmSync(seen);
    const fromEnv = await init(["--key", key], { env: { PATH: path, MESHWORK_PASSWORD: PASSWORD } });
    expect(fromEnv.code, fromEnv.output).to.equal(0);
    expect(readFileSync(seen, "utf8")).to.not.contain(PASSWORD);

    const both = await init([], { env: { MESHWORK_PASSWORD: PASSWORD, MESHWORK_PASSWORD_FILE: passwordFile } });
    expect([both.code, both.output.trim().split("\n").at(-1)]).to.deep.equal([1, "error: set MESHWORK_PASSWORD_FILE or MESHWORK_PASSWORD, not both"]);
  });

  it("creates its directories and the config for its user only, and prints the RPC without its credentials", async () => {
    const base = mkdtempSync(join(dir, "modes-"));
    const existing = join(base, "chosen");
    mkdirSync(existing);
    chmodSync(existing, 0o755); // one the operator made: left as it is
    const config = join(base, "etc", "meshwork", "worker.json");
    const data = join(existing, "node", "data");
    const port = new URL(rpcUrl).port;
    const made = await init(["--key", key, "--data", data, "--blob-source", "https://blobs.example/TOKEN123/"], {
      config,
      rpc: `http://operator:s3cret@127.0.0.1:${port}/v2/APIKEY123?token=xyz`,
    });
    expect(made.code, made.output).to.equal(0);
    const mode = (path: string) => statSync(path).mode & 0o777;
    expect([join(base, "etc"), dirname(config), join(existing, "node"), data].map(mode)).to.deep.equal([0o700, 0o700, 0o700, 0o700]);
    expect(mode(existing)).to.equal(0o755);
    expect([config, join(data, "keystore.json")].map(mode)).to.deep.equal([0o600, 0o600]);
    expect(made.output).to.contain(`chain     http://127.0.0.1:${port}/… (localhost, could not be reached`);
    expect(made.output).to.contain("blobs from https://blobs.example/…");
    for (const secret of ["operator", "s3cret", "APIKEY123", "xyz", "TOKEN123"]) expect(made.output).to.not.contain(secret);
    expect(JSON.parse(readFileSync(config, "utf8")).rpcUrl).to.equal(`http://operator:s3cret@127.0.0.1:${port}/v2/APIKEY123?token=xyz`); // kept whole in the config
    // Re-init: a config replaced with --force is made its user's only too.
    chmodSync(config, 0o644);
    const again = await init(["--key", key, "--data", data, "--force"], { config });
    expect(again.code, again.output).to.equal(0);
    expect(mode(config)).to.equal(0o600);
  });

  it("start with a port in use says which and the config key that sets it, and exits", async () => {
    const taken = await startBlobServer();
    try {
      const ports = async (taking: string) => ({ blobPort: taking === "blobPort" ? taken.port : await freePort(), metricsPort: taking === "metricsPort" ? taken.port : await freePort() });
      for (const [setting, server, fix] of [["metricsPort", "metrics", "to a free port, or 0 to serve no metrics"], ["blobPort", "blob", "to a free port"]]) {
        const { blobPort, metricsPort } = await ports(setting);
        const { config } = await init(["--key", key, "--blob-port", String(blobPort), "--metrics-port", String(metricsPort)]);
        const start = await runScript("tsx", ["scripts/worker.ts", "--config", config, "start"], ENV, 60_000); // and exits: nothing it opened is left listening
        expect([start.code, start.output.trim().split("\n").at(-1)]).to.deep.equal([
          1,
          `error: the ${server} server cannot listen on 127.0.0.1:${taken.port}: the port is in use (by another program, or another node on this machine): set ${setting} in the worker config ${fix}`,
        ]);
      }
    } finally {
      await taken.close();
    }
  });
});
