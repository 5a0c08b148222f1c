/**
 * Gas benchmark: `npm run bench:gas`. Prints a table and writes bench/gas.json.
 *
 * - Per call: gas of every market and registry entry point on the common path.
 * - Per lifecycle: open market (create -> claim -> commit -> settle, escrow from the internal balance)
 *   and signed offer (createJobWithOffer -> commit -> settle). Deposits are excluded, as iExec's figures
 *   exclude them. Measured in steady state: after one warm-up job, so the provider's account word is
 *   already non-zero, as it is for any provider that has earned before.
 * - Scale: claim, commit and settle with 10 and 1,000 registered providers and 10 and 10,000 existing
 *   jobs; the spread must stay within 2%.
 */
import { writeFileSync } from "node:fs";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ContractTransactionResponse } from "ethers";
import { hashJob } from "../sdk/src/params.js";
import {
  HOUR,
  createdEvent,
  jobFromEvent,
  predictJob,
  MESH,
  USD,
  createJob,
  deploySystem,
  fund,
  jobRequest,
  makeReveal,
  onboardProvider,
  signOffer,
  type System,
} from "../test/helpers/system.js";

const { ethers, networkHelpers } = await network.create();

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  return receipt!.gasUsed;
}

interface Lifecycle {
  create: bigint;
  claim?: bigint;
  commit: bigint;
  settle: bigint;
  total: bigint;
}

async function openLifecycle(sys: System, consumer: HardhatEthersSigner, provider: HardhatEthersSigner): Promise<Lifecycle> {
  const request = await jobRequest(sys);
  const receipt = await (await sys.market.connect(consumer).createJob(request, "http://127.0.0.1:8787/blobs/spec")).wait();
  const { jobId, job } = jobFromEvent(createdEvent(sys, receipt!));
  const claim = await gasOf(sys.market.connect(provider).claim(job));
  const reveal = makeReveal(ethers, jobId, provider.address);
  const commit = await gasOf(sys.market.connect(provider).commit(jobId, reveal.commitment));
  await networkHelpers.time.increase(HOUR);
  const settle = await gasOf(
    sys.market.connect(provider).settle(job, provider.address, reveal.resultRoot, reveal.salt, reveal.outputURI),
  );
  const create = receipt!.gasUsed;
  return { create, claim, commit, settle, total: create + claim + commit + settle };
}

async function offerLifecycle(sys: System, consumer: HardhatEthersSigner, provider: HardhatEthersSigner): Promise<Lifecycle> {
  const request = await jobRequest(sys, { targetProvider: provider.address });
  const job = await predictJob(sys, consumer.address, request);
  const jobId = hashJob(job);
  const expiry = BigInt(request.claimBy);
  const signature = await signOffer(sys, provider, jobId, expiry);
  const receipt = await (
    await sys.market.connect(consumer).createJobWithOffer(request, "http://127.0.0.1:8787/blobs/spec", expiry, signature)
  ).wait();
  const reveal = makeReveal(ethers, jobId, provider.address);
  const commit = await gasOf(sys.market.connect(provider).commit(jobId, reveal.commitment));
  await networkHelpers.time.increase(HOUR);
  const settle = await gasOf(
    sys.market.connect(provider).settle(job, provider.address, reveal.resultRoot, reveal.salt, reveal.outputURI),
  );
  const create = receipt!.gasUsed;
  return { create, commit, settle, total: create + commit + settle };
}

async function setup(providerCount: number) {
  const sys = await deploySystem(ethers);
  const signers = await ethers.getSigners();
  const consumer = sys.consumer;
  await fund(sys, consumer, 10_000_000n * USD);
  const provider = sys.providers[0];
  await onboardProvider(sys, provider, { pricePerUnit: 1n * USD, stake: 10_000n * MESH });
  await fund(sys, provider, 1_000_000n * USD);
  // Extra registered, staked providers (random wallets funded with ETH) to show claims do not scale with them.
  for (let i = 1; i < providerCount; i++) {
    const wallet = ethers.Wallet.createRandom().connect(ethers.provider);
    await networkHelpers.setBalance(wallet.address, 10n ** 18n);
    await onboardProvider(sys, wallet as unknown as HardhatEthersSigner, { stake: 1_000n * MESH });
  }
  return { sys, consumer, provider, signers };
}

async function addJobs(sys: System, consumer: HardhatEthersSigner, count: number) {
  for (let i = 0; i < count; i++) await createJob(sys, consumer);
}

// ---------------------------------------------------------------------------------------------------
const calls: Record<string, bigint> = {};
const { sys, consumer, provider } = await setup(10);
await addJobs(sys, consumer, 10);

await openLifecycle(sys, consumer, provider); // warm-up: per-token accumulators become non-zero
const open = await openLifecycle(sys, consumer, provider);
await offerLifecycle(sys, consumer, provider);
const offer = await offerLifecycle(sys, consumer, provider);

const usd = await sys.usd.getAddress();
const [p2] = [sys.providers[1]];
await sys.usd.mint(consumer.address, 1n * USD);
await sys.usd.connect(consumer).approve(await sys.market.getAddress(), 1n * USD);
calls["market.deposit"] = await gasOf(sys.market.connect(consumer).deposit(usd, consumer.address, 1n * USD));
calls["market.withdraw"] = await gasOf(sys.market.connect(consumer).withdraw(usd, 1n * USD, consumer.address));
calls["market.createJob"] = open.create;
calls["market.claim"] = open.claim!;
calls["market.commit"] = open.commit;
calls["market.settle (with reveal)"] = open.settle;
calls["market.createJobWithOffer"] = offer.create;
{
  const { job } = await createJob(sys, consumer);
  calls["market.cancel"] = await gasOf(sys.market.connect(consumer).cancel(job));
}
{
  const { job } = await createJob(sys, consumer);
  await sys.market.connect(provider).claim(job);
  await networkHelpers.time.increase(2n * HOUR);
  calls["market.enforceDeadline (timeout, reopen)"] = await gasOf(sys.market.enforceDeadline(job));
}
await onboardProvider(sys, p2);
calls["registry.register (in onboarding)"] = 0n;
{
  await sys.mesh.transfer(p2.address, 100n * MESH);
  await sys.mesh.connect(p2).approve(await sys.registry.getAddress(), 100n * MESH);
  calls["registry.stake"] = await gasOf(sys.registry.connect(p2).stake(p2.address, 100n * MESH));
  calls["registry.requestUnstake"] = await gasOf(sys.registry.connect(p2).requestUnstake(50n * MESH));
  calls["registry.postPrice"] = await gasOf(sys.registry.connect(p2).postPrice(usd, 2n * USD));
  await networkHelpers.time.increase(8n * 24n * HOUR);
  calls["registry.withdrawStake (1 entry)"] = await gasOf(sys.registry.connect(p2).withdrawStake(10));
}
delete calls["registry.register (in onboarding)"];

// --- scale: 10 vs 1,000 providers, 10 vs 10,000 jobs ------------------------------------------------
const scale: Record<string, { claim: bigint; commit: bigint; settle: bigint }> = {};
scale["10 providers, 10 jobs"] = { claim: open.claim!, commit: open.commit, settle: open.settle };
const quick = process.env.BENCH_QUICK === "1";
{
  const many = await setup(quick ? 50 : 1_000);
  await addJobs(many.sys, many.consumer, 10);
  await openLifecycle(many.sys, many.consumer, many.provider);
  const l = await openLifecycle(many.sys, many.consumer, many.provider);
  scale[`${quick ? 50 : 1_000} providers, 10 jobs`] = { claim: l.claim!, commit: l.commit, settle: l.settle };
}
{
  const many = await setup(10);
  await addJobs(many.sys, many.consumer, quick ? 500 : 10_000);
  await openLifecycle(many.sys, many.consumer, many.provider);
  const l = await openLifecycle(many.sys, many.consumer, many.provider);
  scale[`10 providers, ${quick ? 500 : 10_000} jobs`] = { claim: l.claim!, commit: l.commit, settle: l.settle };
}
const spread: Record<string, number> = {};
for (const op of ["claim", "commit", "settle"] as const) {
  const values = Object.values(scale).map((s) => Number(s[op]));
  spread[op] = (Math.max(...values) - Math.min(...values)) / Math.min(...values);
}

// --- output -----------------------------------------------------------------------------------------
const TARGETS = { open: 200_000, offer: 175_000 };
const lifecycle = { open: Number(open.total), offer: Number(offer.total) };
const pad = (s: string, n: number) => s.padEnd(n);
console.log("\nGas per call (steady state)");
for (const [name, gas] of Object.entries(calls)) console.log(`  ${pad(name, 44)} ${gas.toString().padStart(9)}`);
console.log("\nGas per lifecycle (deposits excluded)");
console.log(`  ${pad("open: create+claim+commit+settle", 44)} ${String(lifecycle.open).padStart(9)}  target <= ${TARGETS.open}`);
console.log(`  ${pad("offer: createJobWithOffer+commit+settle", 44)} ${String(lifecycle.offer).padStart(9)}  target <= ${TARGETS.offer}`);
console.log("\nScale (claim / commit / settle)");
for (const [name, s] of Object.entries(scale)) console.log(`  ${pad(name, 44)} ${s.claim} / ${s.commit} / ${s.settle}`);
console.log(`  spread: claim ${(spread.claim * 100).toFixed(2)}%, commit ${(spread.commit * 100).toFixed(2)}%, settle ${(spread.settle * 100).toFixed(2)}% (limit 2%)`);

const out = {
  generatedAt: new Date().toISOString(),
  solc: "0.8.30",
  lifecycle,
  lifecycleParts: {
    open: Object.fromEntries(Object.entries(open).map(([k, v]) => [k, Number(v)])),
    offer: Object.fromEntries(Object.entries(offer).map(([k, v]) => [k, Number(v)])),
  },
  targets: TARGETS,
  calls: Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, Number(v)])),
  scale: Object.fromEntries(
    Object.entries(scale).map(([k, v]) => [k, { claim: Number(v.claim), commit: Number(v.commit), settle: Number(v.settle) }]),
  ),
  scaleSpreadPct: Object.fromEntries(Object.entries(spread).map(([k, v]) => [k, Number((v * 100).toFixed(3))])),
};
writeFileSync(new URL("./gas.json", import.meta.url), JSON.stringify(out, null, 2) + "\n");
console.log("\nwrote bench/gas.json");
