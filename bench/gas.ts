/**
 * Gas benchmark: `npm run bench:gas`. Prints a table and writes bench/gas.json.
 *
 * - Per call: gas of every market and registry entry point on the common path.
 * - Per lifecycle: open market (create -> claim -> commit -> settle, escrow from the internal balance)
 *   and signed offer (createJobWithOffer -> commit -> settle). Deposits are excluded, as iExec's figures
 *   exclude them. Measured in steady state: after one warm-up job, so the provider's account word is
 *   already non-zero, as it is for any provider that has earned before.
 * - Audited lifecycle: create, claim, commit, then the auditor's `audit` (claim + blind commitment,
 *   folding the draw) and the provider's `revealResult` (4 sampled leaves of 256 with Merkle proofs),
 *   which settles when the leaves open the auditor's commitment. Dispute: the provider fabricated
 *   every chunk, so after its reveal the auditor reveals, a tie-breaker claims and answers, and the
 *   provider is slashed.
 * - The market uses its built-in block-hash randomness, as a deployment does: whether a job is drawn
 *   for audit is real, so the benchmark keeps posting jobs until it has each kind.
 * - Scale: claim, commit and settle with 10 and 1,000 registered providers and 10 and 10,000 existing
 *   jobs; the spread must stay within 2%.
 */
import { writeFileSync } from "node:fs";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ContractTransactionResponse } from "ethers";
import { hashJob, packVerification } from "../sdk/src/params.js";
import { AuditAnswer, Result } from "../test/helpers/audits.js";
import {
  HOUR,
  createdEvent,
  jobFromEvent,
  predictJob,
  revertName,
  MESH,
  USD,
  createJob,
  deploySystem,
  fund,
  jobRequest,
  makeReveal,
  onboardProvider,
  signOffer,
  type Job,
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

const VERIFICATION = packVerification({ chunks: 256, auditChunks: 4, auditBps: 0 });

/** Whether `settle` would refuse because the job's draw selects it for audit (any other error throws). */
async function drawnForAudit(sys: System, job: Job, provider: string, root: string, salt: string): Promise<boolean> {
  await networkHelpers.mine(); // the draw reads the hash of the block after the commit's
  try {
    await sys.market.settle.staticCall(job, provider, root, salt, "x");
    return false;
  } catch (error) {
    if (revertName(sys, error) === "JobMarketAuditRequired") return true;
    throw error;
  }
}

/** Posts, claims and commits a job; `audited` tells whether its (real) draw selected it for audit. */
async function committedJob(sys: System, consumer: HardhatEthersSigner, provider: HardhatEthersSigner, fabricated: number[] = []) {
  const request = await jobRequest(sys, { verification: VERIFICATION });
  const receipt = await (await sys.market.connect(consumer).createJob(request, "http://127.0.0.1:8787/blobs/spec")).wait();
  const { jobId, job } = jobFromEvent(createdEvent(sys, receipt!));
  const claim = await gasOf(sys.market.connect(provider).claim(job));
  const result = Result.of(jobId, provider.address, 256, fabricated);
  const commit = await gasOf(sys.market.connect(provider).commit(jobId, result.commitment));
  await networkHelpers.time.increase(HOUR);
  const audited = await drawnForAudit(sys, job, provider.address, result.tree.root, result.salt);
  return { jobId, job, result, audited, create: receipt!.gasUsed, claim, commit };
}

async function openLifecycle(sys: System, consumer: HardhatEthersSigner, provider: HardhatEthersSigner): Promise<Lifecycle> {
  for (;;) {
    const c = await committedJob(sys, consumer, provider);
    if (c.audited) {
      await sys.market.draw(c.job); // let this one lapse: it is measured by the audited lifecycle
      continue;
    }
    const settle = await gasOf(
      sys.market.connect(provider).settle(c.job, provider.address, c.result.tree.root, c.result.salt, "http://127.0.0.1:8787/blobs/out"),
    );
    return { create: c.create, claim: c.claim, commit: c.commit, settle, total: c.create + c.claim + c.commit + settle };
  }
}

interface AuditedLifecycle {
  create: bigint;
  claim: bigint;
  commit: bigint;
  audit: bigint;
  revealResult: bigint;
  revealAudit?: bigint;
  tieBreak?: bigint;
  revealTieBreak?: bigint;
  total: bigint;
}

/** A job drawn for audit, through the audit (and, when `cheat`, the dispute that slashes). */
async function auditedLifecycle(
  sys: System,
  consumer: HardhatEthersSigner,
  provider: HardhatEthersSigner,
  auditor: HardhatEthersSigner,
  tieBreaker: HardhatEthersSigner,
  cheat: boolean,
): Promise<AuditedLifecycle> {
  for (;;) {
    const c = await committedJob(sys, consumer, provider, cheat ? Array.from({ length: 256 }, (_, i) => i) : []);
    if (!c.audited) {
      await sys.market.settle(c.job, provider.address, c.result.tree.root, c.result.salt, "");
      continue;
    }
    const sample = (await sys.market.sampleOf(c.job)).map(Number);
    const answer = AuditAnswer.of(c.jobId, auditor.address, sample);
    const audit = await gasOf(sys.market.connect(auditor).audit(c.job, answer.commitment));
    const revealed = c.result.leavesAt(sample);
    // A match settles in the provider's reveal; a mismatch needs the auditor's reveal and a tie-break.
    const revealResult = await gasOf(
      sys.market
        .connect(provider)
        .revealResult(c.job, provider.address, c.result.tree.root, c.result.salt, "http://127.0.0.1:8787/blobs/out", revealed, c.result.proofsAt(sample)),
    );
    const base = { create: c.create, claim: c.claim, commit: c.commit, audit, revealResult };
    const subtotal = c.create + c.claim + c.commit + audit + revealResult;
    if (!cheat) return { ...base, total: subtotal };
    const revealAudit = await gasOf(sys.market.connect(auditor).revealAudit(c.job, answer.leaves, revealed));
    const tie = AuditAnswer.of(c.jobId, tieBreaker.address, sample); // every sampled chunk is disputed
    const tieBreak = await gasOf(sys.market.connect(tieBreaker).tieBreak(c.job));
    const revealTieBreak = await gasOf(sys.market.connect(tieBreaker).revealTieBreak(c.job, tie.leaves, revealed, answer.leaves));
    return { ...base, revealAudit, tieBreak, revealTieBreak, total: subtotal + revealAudit + tieBreak + revealTieBreak };
  }
}

async function offerLifecycle(sys: System, consumer: HardhatEthersSigner, provider: HardhatEthersSigner): Promise<Lifecycle> {
  for (;;) {
    const request = await jobRequest(sys, { targetProvider: provider.address, verification: VERIFICATION });
    const job = await predictJob(sys, consumer.address, request);
    const jobId = hashJob(job);
    const expiry = BigInt(request.claimBy);
    const signature = await signOffer(sys, provider, jobId, expiry);
    const receipt = await (
      await sys.market.connect(consumer).createJobWithOffer(request, "http://127.0.0.1:8787/blobs/spec", expiry, signature)
    ).wait();
    const result = Result.of(jobId, provider.address, 256);
    const commit = await gasOf(sys.market.connect(provider).commit(jobId, result.commitment));
    await networkHelpers.time.increase(HOUR);
    if (await drawnForAudit(sys, job, provider.address, result.tree.root, result.salt)) {
      await sys.market.draw(job);
      continue;
    }
    const settle = await gasOf(
      sys.market.connect(provider).settle(job, provider.address, result.tree.root, result.salt, "http://127.0.0.1:8787/blobs/out"),
    );
    const create = receipt!.gasUsed;
    return { create, commit, settle, total: create + commit + settle };
  }
}

async function setup(providerCount: number) {
  const sys = await deploySystem(ethers);
  await sys.market.setRandomnessSource(ethers.ZeroAddress); // the built-in source of a real deployment
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

const [auditor, tieBreaker] = sys.others;
for (const a of [auditor, tieBreaker]) {
  await onboardProvider(sys, a, { stake: 10_000n * MESH });
  await fund(sys, a, 100_000n * USD);
}
await fund(sys, sys.others[2], 1_000n * USD);
await sys.market.connect(sys.others[2]).fundAuditPool(await sys.usd.getAddress(), 1_000n * USD);
await auditedLifecycle(sys, consumer, provider, auditor, tieBreaker, false); // warm-up
const audited = await auditedLifecycle(sys, consumer, provider, auditor, tieBreaker, false);
/** A provider slashed by a dispute serves its jail and tops its stake up again. */
async function revive(p: HardhatEthersSigner) {
  const { jailedUntil, active } = await sys.registry.stakeOf(p.address);
  await networkHelpers.time.increaseTo(jailedUntil + 1n);
  await sys.mesh.transfer(p.address, 10_000n * MESH);
  await sys.mesh.connect(p).approve(await sys.registry.getAddress(), 10_000n * MESH);
  await sys.registry.connect(p).stake(p.address, 10_000n * MESH - active);
}
await auditedLifecycle(sys, consumer, provider, auditor, tieBreaker, true); // warm-up: the first slash writes new slots
await revive(provider);
const dispute = await auditedLifecycle(sys, consumer, provider, auditor, tieBreaker, true);
await revive(provider);


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
calls["audit (claim + blind commit, draw folded)"] = audited.audit;
calls["revealResult (match: settles)"] = audited.revealResult;
calls["revealResult (mismatch: disputed)"] = dispute.revealResult;
calls["revealAudit (dispute)"] = dispute.revealAudit!;
calls["tieBreak (claim)"] = dispute.tieBreak!;
calls["revealTieBreak (fraud, slashes)"] = dispute.revealTieBreak!;
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
const TARGETS = { open: 200_000, offer: 175_000, audited: 400_000, dispute: 600_000 };
const lifecycle = {
  open: Number(open.total),
  offer: Number(offer.total),
  audited: Number(audited.total),
  dispute: Number(dispute.total),
};
const pad = (s: string, n: number) => s.padEnd(n);
console.log("\nGas per call (steady state)");
for (const [name, gas] of Object.entries(calls)) console.log(`  ${pad(name, 44)} ${gas.toString().padStart(9)}`);
console.log("\nGas per lifecycle (deposits excluded)");
console.log(`  ${pad("open: create+claim+commit+settle", 44)} ${String(lifecycle.open).padStart(9)}  target <= ${TARGETS.open}`);
console.log(`  ${pad("offer: createJobWithOffer+commit+settle", 44)} ${String(lifecycle.offer).padStart(9)}  target <= ${TARGETS.offer}`);
console.log(`  ${pad("audited: create+claim+commit+audit+reveal", 44)} ${String(lifecycle.audited).padStart(9)}  target <= ${TARGETS.audited}`);
console.log(`  ${pad("dispute: + revealAudit+tieBreak+answer", 44)} ${String(lifecycle.dispute).padStart(9)}  target <= ${TARGETS.dispute}`);
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
    audited: Object.fromEntries(Object.entries(audited).map(([k, v]) => [k, Number(v)])),
    dispute: Object.fromEntries(Object.entries(dispute).map(([k, v]) => [k, Number(v)])),
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
