/**
 * `npm start`: a whole Meshwork network on this machine, for real.
 *
 *   1. a `hardhat node` on 127.0.0.1, the deploy script (deployments/localhost.json), a blob gateway;
 *   2. a governance round: delegate, propose (lower the fee, fund a compute-commons programme), vote,
 *      queue, execute — the devnet clock is fast-forwarded through the voting period and the delay;
 *   3. four provider daemons as separate processes (scripts/worker.ts) in different regions, with
 *      different prices and energy; one runs the test-only cheating mode (it fabricates results);
 *   4. a consumer that routes and submits a batch of ONNX inferences and an integer-kernel job through
 *      the SDK, and a grantee that pays a job from its commons grant;
 *   5. live progress, then a summary table (also written to .meshwork/devnet/summary.json).
 *
 * Options: --jobs N (ONNX inferences, default 6), --exit (headless: plain lines, exit when done),
 * --keep (leave the network up until Ctrl-C for the CLIs), --port (RPC port, default 8545, or a free one).
 * Ctrl-C stops every process it started.
 */
import "./lib/quietWarnings.js";
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { JsonRpcProvider, Network, Wallet, encryptKeystoreJson, formatUnits } from "ethers";
import { HttpBlobStore, digestOf, startBlobServer, type BlobServer } from "../sdk/src/blob.js";
import { Meshwork } from "../sdk/src/client.js";
import type { JobHandle } from "../sdk/src/jobs.js";
import { Energy, Runtime } from "../sdk/src/providers.js";
import { buildInt8MatmulProgram } from "../sdk/src/worker/runtimes/intKernel.js";
import { buildDenseModel } from "../sdk/src/worker/runtimes/onnxModel.js";
import { MeshToken__factory } from "../types/ethers-contracts/factories/token/MeshToken__factory.js";
import { TestUSD__factory } from "../types/ethers-contracts/factories/test/mocks/TestUSD__factory.js";
import { CHILD_ENV, ROOT, deployLocal, devKey, freePort, rpc, startLocalNode, stopGroup, type LocalNode } from "./lib/localnet.js";

const opts = new Command()
  .name("npm start --")
  .description("Bring up a local Meshwork network and watch the protocol work")
  .option("--jobs <n>", "ONNX inferences in the consumer's batch", (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new Error("--jobs must be 1..100");
    return n;
  }, 6)
  .option("--exit", "headless: plain progress lines, exit when the demo is done")
  .option("--keep", "leave the network up (for the CLIs) until Ctrl-C")
  .option("--port <port>", "RPC port (default 8545, or a free one when taken)")
  .parse()
  .opts<{ jobs: number; exit?: boolean; keep?: boolean; port?: string }>();

const USD = 10n ** 6n;
const MESH = 10n ** 18n;
const PASSWORD = "devnet";
/** Run-time files (logs, worker data, summary); tests point it elsewhere. */
const HERE = process.env.MESHWORK_DEVNET_DIR ?? join(ROOT, ".meshwork", "devnet");
const DEPLOYMENTS = process.env.MESHWORK_DEPLOYMENTS_DIR ?? join(ROOT, "deployments");
const tty = process.stdout.isTTY && !opts.exit;
const usd = (v: bigint) => `${formatUnits(v, 6)} tUSD`;
const mesh = (v: bigint) => `${formatUnits(v, 18)} MESH`;
const say = (line: string) => console.log(line);

interface WorkerPlan {
  name: string;
  account: number;
  region: string;
  energy: Energy;
  pricePerUnit: bigint;
  cheat?: "fabricate";
}

const WORKERS: WorkerPlan[] = [
  { name: "nairobi-gamer", account: 1, region: "KE", energy: Energy.Renewable, pricePerUnit: 1_000_000n },
  { name: "berlin-lab", account: 2, region: "DE", energy: Energy.Grid, pricePerUnit: 1_200_000n },
  { name: "sao-paulo-uni", account: 3, region: "BR", energy: Energy.Renewable, pricePerUnit: 1_500_000n },
  { name: "too-cheap", account: 4, region: "US", energy: Energy.Grid, pricePerUnit: 800_000n, cheat: "fabricate" },
];
const CONSUMER = 10;
const GRANTEE = 11;

const started: ChildProcess[] = [];
let node: LocalNode | undefined;
let gateway: BlobServer | undefined;
let provider: JsonRpcProvider | undefined;
let stopping = false;

async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  for (const child of started) await stopGroup(child, 5_000);
  provider?.destroy();
  await gateway?.close();
  await node?.stop();
  process.exit(code);
}
process.on("SIGINT", () => {
  say("\nstopping every process this started …");
  void shutdown(130);
});
process.on("SIGTERM", () => void shutdown(143));

async function portFor(): Promise<number> {
  if (opts.port) return Number(opts.port);
  try {
    await rpc("http://127.0.0.1:8545", "eth_chainId");
    return freePort(); // 8545 is taken (another node?): use a free port
  } catch {
    return 8545;
  }
}

async function fastForward(seconds: number) {
  await rpc(node!.url, "evm_increaseTime", [seconds]);
  await rpc(node!.url, "evm_mine", []);
}

async function main() {
  rmSync(HERE, { recursive: true, force: true });
  mkdirSync(HERE, { recursive: true });
  say("Meshwork local network\n");

  // 1. Chain, contracts, blob gateway.
  node = await startLocalNode({ port: await portFor(), intervalMs: 1_000 });
  say(`• chain        hardhat node at ${node.url} (chain id 31337, a block every second)`);
  const book = await deployLocal(node.url, DEPLOYMENTS);
  say(`• contracts    deployed; address book deployments/localhost.json (market ${book.contracts.market})`);
  gateway = await startBlobServer({ dir: join(HERE, "gateway") });
  say(`• blob store   ${gateway.url} (content-addressed, SHA-256)`);
  // Where the CLIs find this network by default (npm run meshwork -- …).
  writeFileSync(join(HERE, "network.json"), JSON.stringify({ rpcUrl: node.url, blobs: gateway.url, deploymentsDir: DEPLOYMENTS }, null, 2) + "\n");
  provider = new JsonRpcProvider(node.url, Network.from(31337), { staticNetwork: true, cacheTimeout: -1, pollingInterval: 250 });
  const deployer = await provider.getSigner(0);
  const store = new HttpBlobStore(gateway.url);
  const sdk = (key: string) => Meshwork.connect({ runner: new Wallet(key, provider), addresses: book, blobStore: store });
  const meshToken = MeshToken__factory.connect(book.contracts.mesh, deployer);
  const tusd = TestUSD__factory.connect(book.contracts.paymentTokens.tUSD, deployer);

  // 2. Governance round.
  say("\nGovernance round");
  const dao = await Meshwork.connect({ runner: deployer, addresses: book });
  await dao.governance.delegate();
  await (await tusd.mint(book.contracts.commons, 500n * USD)).wait(); // a donation to the commons
  const now = BigInt((await provider.getBlock("latest"))!.timestamp);
  const grantee = new Wallet(devKey(GRANTEE)).address;
  const feeBefore = await dao.context.contracts.market.parameter(0);
  const proposal = await dao.governance.propose(
    [
      dao.governance.setParameter("market", "FeeBps", 200n),
      {
        target: book.contracts.commons,
        data: dao.context.contracts.commons.interface.encodeFunctionData("createProgramme", ["Students 2027", book.contracts.paymentTokens.tUSD, 500n * USD, now, now + 30n * 86_400n]),
      },
      dao.commons.approveGranteeAction(1n, grantee, 100n * USD),
    ],
    "Lower the protocol fee to 2% and open the Students 2027 compute commons",
  );
  say(`• proposed     #${String(proposal.proposalId).slice(0, 10)}…: fee 2.5% → 2%, a 500 tUSD commons programme`);
  await fastForward(61);
  await dao.governance.vote(proposal.proposalId, "for", "cheaper compute, and a programme for students");
  say("• voted        for, with the deployer's delegated MESH (fast-forwarding the devnet clock)");
  await fastForward(5 * 60 + 1);
  await dao.governance.queue(proposal);
  await fastForward(2 * 60 + 1);
  await dao.governance.execute(proposal);
  const feeAfter = await dao.context.contracts.market.parameter(0);
  say(`• executed     FeeBps ${feeBefore} → ${feeAfter} in effect; new jobs snapshot it in their terms`);

  // 3. Providers: register, stake, price in-process; then each daemon as its own process.
  say("\nProviders");
  const logs: string[] = [];
  for (const plan of WORKERS) {
    const key = devKey(plan.account);
    const wallet = new Wallet(key);
    await (await meshToken.transfer(wallet.address, 1_000n * MESH)).wait();
    await (await tusd.mint(wallet.address, 10_000n * USD)).wait();
    const mw = await sdk(key);
    await mw.providers.register({ gpuCount: 1, vramGB: 24, gpuClass: 3, region: plan.region, energy: plan.energy, runtimes: [Runtime.IntKernels, Runtime.Onnx] }, `devnet://${plan.name}`);
    await mw.providers.stake(1_000n * MESH);
    await mw.providers.postPrice("tUSD", plan.pricePerUnit);
    const dir = join(HERE, plan.name);
    mkdirSync(dir, { recursive: true });
    const keystore = join(dir, "keystore.json");
    // A light scrypt: this keystore holds a public development key on a throw-away chain.
    writeFileSync(keystore, await encryptKeystoreJson({ address: wallet.address, privateKey: key }, PASSWORD, { scrypt: { N: 1 << 12 } }));
    const config = join(dir, "worker.json");
    writeFileSync(
      config,
      JSON.stringify({
        rpcUrl: node.url,
        network: "localhost",
        deploymentsDir: DEPLOYMENTS,
        keystore,
        dataDir: dir,
        blobPort: await freePort(),
        metricsPort: await freePort(),
        blobSources: [gateway.url],
        prices: { tUSD: String(plan.pricePerUnit) },
        concurrency: 2,
        confirmations: 0,
        pollMs: 300,
        withdrawEverySec: 0,
      }),
    );
    const log = join(dir, "worker.log");
    logs.push(log);
    const child = spawn(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/worker.ts", "--config", config, "start", ...(plan.cheat ? ["--cheat", plan.cheat] : [])], {
      cwd: ROOT,
      env: { ...CHILD_ENV, MESHWORK_PASSWORD: PASSWORD },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = createWriteStream(log);
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    started.push(child);
    say(`• ${plan.name.padEnd(14)} ${plan.region}, ${Energy[plan.energy].toLowerCase()}, ${usd(plan.pricePerUnit)}/unit, 1,000 MESH staked${plan.cheat ? "  (test-only cheating mode: fabricates results)" : ""}`);
  }
  say(`  daemon logs: .meshwork/devnet/<name>/worker.log`);

  // 4. Workloads.
  say("\nWorkloads");
  const consumerKey = devKey(CONSUMER);
  await (await tusd.mint(new Wallet(consumerKey).address, 10_000n * USD)).wait();
  const consumer = await sdk(consumerKey);
  const names = new Map(WORKERS.map((w) => [new Wallet(devKey(w.account)).address, w.name]));
  const nameOf = (a: string) => names.get(a) ?? a.slice(0, 10);

  // ONNX: a dense 16 → 8 (ReLU) → 4 model; each job infers 4 chunks of 8 rows.
  const seeded = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));
  const model = buildDenseModel({
    layers: [
      { inFeatures: 16, outFeatures: 8, weights: seeded(128, 1), bias: seeded(8, 2), relu: true },
      { inFeatures: 8, outFeatures: 4, weights: seeded(32, 3), bias: seeded(4, 4) },
    ],
  });
  await store.put(model);
  const batch: JobHandle[] = [];
  for (let j = 0; j < opts.jobs; j++) {
    const { inputs, chunking } = await consumer.jobs.upload(Array.from({ length: 4 }, (_, c) => new Uint8Array(seeded(8 * 16, 100 * j + c).buffer)));
    const spec = { version: 1, runtime: "onnx", model: { digest: digestOf(model), size: model.length }, inputs, chunking, output: { encoding: "fixed-point", scaleBits: 16, canonicalisation: "tolerance" } } as const;
    batch.push(await consumer.jobs.create(spec, { token: "tUSD", price: 20n * USD, workUnits: 10n, requirements: { runtime: 1 }, verification: { chunks: 4, auditChunks: 2 } }));
  }
  say(`• ONNX batch   ${opts.jobs} inference jobs, 20 tUSD each, open market`);

  // Integer kernel, routed by posted price: the cheapest provider wins it.
  const program = buildInt8MatmulProgram({ k: 64, n: 16, weights: Int8Array.from({ length: 1024 }, (_, i) => ((i * 37) % 255) - 127), bias: new Int32Array(16).fill(3), shift: 4, relu: true });
  await store.put(program);
  const { inputs, chunking } = await consumer.jobs.upload(Array.from({ length: 4 }, (_, c) => Uint8Array.from({ length: 64 * 16 }, (_, i) => (i * 13 + c * 7) & 0xff)));
  const intSpec = { version: 1, runtime: "int-kernel", program: { digest: digestOf(program), size: program.length }, inputs, chunking, output: { encoding: "int32-le", canonicalisation: "exact" } } as const;
  const prepared = await consumer.jobs.prepare(intSpec, { token: "tUSD", price: 15n * USD, workUnits: 10n, verification: { chunks: 4, auditChunks: 2 } });
  const { best } = await consumer.jobs.route(prepared, { maxPrice: 15n * USD });
  const routed = await consumer.jobs.create(
    await consumer.jobs.prepare(intSpec, { token: "tUSD", price: best.price, workUnits: 10n, targetProvider: best.provider, verification: { chunks: 4, auditChunks: 2 } }),
  );
  say(`• int kernel   routed by posted price to the cheapest, ${nameOf(best.provider)}, for ${usd(best.price)}`);

  // A grantee pays a job from the commons programme the DAO just opened.
  const granteeMw = await sdk(devKey(GRANTEE));
  const commonsJob = await granteeMw.commons.createJob(
    1n,
    await granteeMw.jobs.prepare(intSpec, { token: "tUSD", price: 12n * USD, workUnits: 10n, verification: { chunks: 4, auditChunks: 2 } }),
  );
  say("• commons      a student's job, paid from the Students 2027 grant");

  // 5. Progress.
  say("\nProgress");
  const all = [...batch, routed, commonsJob];
  const label = new Map<JobHandle, string>([...batch.map((h, i) => [h, `onnx #${i + 1}`] as const), [routed, "int-kernel"], [commonsJob, "commons"]]);
  const deadline = Date.now() + 10 * 60_000;
  const seen = new Map<JobHandle, number>();
  let lastBar = "";
  while (!all.every((h) => h.done)) {
    if (Date.now() > deadline) throw new Error("the demo did not finish in 10 minutes; see .meshwork/devnet/*/worker.log");
    for (const h of all) {
      await h.refresh();
      const events = h.events.slice(seen.get(h) ?? 0);
      seen.set(h, h.events.length);
      for (const e of events) {
        const who = "provider" in e ? ` by ${nameOf(e.provider)}` : "auditor" in e ? ` (auditor ${nameOf(e.auditor)})` : "";
        const line = `  ${label.get(h)!.padEnd(11)} ${e.type}${who}${e.type === "failed" ? `: ${e.reason}` : ""}`;
        if (tty && lastBar) process.stdout.write("\r\x1b[K");
        say(line);
        lastBar = "";
      }
    }
    if (tty) {
      const done = batch.filter((h) => h.done).length;
      const width = 30;
      lastBar = `  batch [${"#".repeat(Math.round((done / batch.length) * width)).padEnd(width, ".")}] ${done}/${batch.length} settled`;
      process.stdout.write(`\r\x1b[K${lastBar}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  if (tty) process.stdout.write("\n");

  // 6. Summary.
  const stats = await consumer.stats();
  const { market, registry, commons } = consumer.context.contracts;
  const settled = all.filter((h) => h.events.some((e) => e.type === "settled"));
  const failed = all.filter((h) => h.events.some((e) => e.type === "failed"));
  const paid = settled.reduce((s, h) => s + BigInt(h.job.request.price), 0n);
  const gas = all.reduce((s, h) => s + h.cost().gasUsed, 0n);
  const earnings: Record<string, string> = {};
  for (const plan of WORKERS) {
    const address = new Wallet(devKey(plan.account)).address;
    const wallet = await tusd.balanceOf(address);
    const balance = await market.balanceOf(book.contracts.paymentTokens.tUSD, address);
    earnings[plan.name] = usd(wallet + balance - 10_000n * USD);
  }
  const cheater = new Wallet(devKey(WORKERS[3].account)).address;
  const slashEvents = await registry.queryFilter(registry.filters.Slashed(cheater), book.deploymentBlock);
  const stakeSlashed = slashEvents.reduce((s, e) => s + e.args.fromStake + e.args.fromUnbonding, 0n);
  const frauds = stats.slashes.filter((s) => s.reason === "fraud" && s.provider.toLowerCase() === cheater.toLowerCase());
  const collateralForfeited = frauds.reduce((s, f) => s + f.amount, 0n);
  const programme = await commons.programme(1n);
  const queue = stats.queueTime.all;
  const summary = {
    jobsSubmitted: all.length,
    jobsSettled: settled.length,
    jobsFailed: failed.length,
    medianQueueSeconds: queue.p50,
    pricePaid: String(paid),
    consumerGasPerJob: String(gas / BigInt(all.length)),
    auditsRun: stats.audits.claimed,
    cheater: { address: cheater, caught: frauds.length > 0, stakeSlashed: String(stakeSlashed), collateralForfeited: String(collateralForfeited) },
    commons: { budget: String(programme.budget), spent: String(programme.spent), jobs: Number(programme.jobs) },
    feeBps: { before: Number(feeBefore), after: Number(feeAfter) },
    providerEarnings: earnings,
  };
  writeFileSync(join(HERE, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
  say("\nSummary");
  const rows: [string, string][] = [
    ["jobs settled", `${settled.length} of ${all.length}${failed.length ? ` (${failed.length} refunded: the cheater's)` : ""}`],
    ["median queue time", queue.p50 === null ? "-" : `${queue.p50} s`],
    ["price paid (settled jobs)", usd(paid)],
    ["consumer gas per job", `${(gas / BigInt(all.length)).toLocaleString("en-US")} gas`],
    ["audits run", String(summary.auditsRun)],
    ["cheater caught", frauds.length > 0 ? `yes: ${mesh(stakeSlashed)} stake and ${usd(collateralForfeited)} collateral slashed` : "no"],
    ["commons grant usage", `${usd(programme.spent)} of ${usd(programme.budget)} (${programme.jobs} job)`],
    ["protocol fee (governance)", `${Number(feeBefore) / 100}% → ${Number(feeAfter) / 100}%`],
    ...Object.entries(earnings).map(([name, v]) => [`earned by ${name}`, v] as [string, string]),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) say(`  ${k.padEnd(width)}  ${v}`);
  say(`\n(summary also in ${join(HERE, "summary.json")})`);

  if (opts.keep) {
    say(`\nThe network stays up: RPC ${node.url}, address book deployments/localhost.json. Try:`);
    say("  npm run meshwork -- providers list");
    say("  npm run meshwork -- stats");
    say("Ctrl-C stops everything.");
    return;
  }
  await shutdown(0);
}

main().catch(async (error) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  await shutdown(1);
});
