/**
 * `npm start`: a local demo of the protocol on an in-process chain.
 *
 * Deploys MESH, the registry and the market, onboards three providers with different hardware, regions
 * and prices, and runs jobs through every path of the core lifecycle: open-market claims, a signed
 * offer, a provider that misses its commit deadline (timed out, job reopened and finished by another),
 * and settlement. Prints each step and a summary of balances and gas.
 *
 * (The full devnet — a `hardhat node`, the deploy script, worker processes and real workloads — comes
 * with the worker and SDK issues.)
 */
import { network } from "hardhat";
import { hashJob, packVerification, unpackTerms } from "../sdk/src/params.js";
import { AuditAnswer, Result } from "../test/helpers/audits.js";
import {
  HOUR,
  USD,
  createJob,
  jobRequest,
  makeReveal,
  marketWithProviders,
  predictJob,
  setDraw,
  signOffer,
} from "../test/helpers/system.js";

const { ethers, networkHelpers } = await network.create();
const fmt = (v: bigint) => `${(Number(v) / 1e6).toFixed(2)} tUSD`;
const step = (msg: string) => console.log(`  • ${msg}`);
let gas = 0n;
async function send(tx: Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>) {
  const receipt = await (await tx).wait();
  gas += receipt!.gasUsed;
}

console.log("Meshwork local demo (in-process chain)\n");
const sys = await marketWithProviders(ethers);
const { market, consumer, usd } = sys;
const [de, br, pc] = sys.providers;
const names = new Map([
  [de.address, "DE renewable 2×24GB"],
  [br.address, "BR grid 8×80GB"],
  [pc.address, "gaming PC 1×16GB"],
]);
const terms = unpackTerms(await market.currentTerms());
step(`deployed: market ${await market.getAddress()}, fee ${terms.feeBps / 100}%, collateral ${terms.collateralBps / 100}% of P`);
step(`providers: ${[...names.values()].join(", ")}; consumer funded with ${fmt(await market.balanceOf(usd, consumer.address))}`);

// 1. Open market: two jobs, claimed first come by eligible providers.
const a = await createJob(sys, consumer, { req: { minVramGB: 80 } });
const b = await createJob(sys, consumer, { req: { region: "DE", renewableOnly: true } });
step(`consumer posted 2 open jobs (one needs 80 GB VRAM, one a renewable provider in DE)`);
await send(market.connect(br).claim(a.job));
await send(market.connect(de).claim(b.job));
step(`claimed by ${names.get(br.address)} and ${names.get(de.address)}`);

// 2. A signed offer: created and assigned in one transaction.
const request = await jobRequest(sys, { targetProvider: pc.address, price: 40n * USD, workUnits: 40n });
const offered = await predictJob(sys, consumer.address, request);
const expiry = BigInt(await networkHelpers.time.latest()) + 300n;
await send(market.connect(consumer).createJobWithOffer(request, "", expiry, await signOffer(sys, pc, hashJob(offered), expiry)));
step(`${names.get(pc.address)} signed an offer at ${fmt(40n * USD)}; the consumer took it in one transaction`);

// 3. The three claimants compute and commit (the commitment binds result root, salt and provider).
const running = [
  { ...a, provider: br },
  { ...b, provider: de },
  { job: offered, jobId: hashJob(offered), provider: pc },
];
const reveals: ReturnType<typeof makeReveal>[] = [];
async function commit(r: (typeof running)[number]) {
  const reveal = makeReveal(ethers, r.jobId, r.provider.address);
  await send(market.connect(r.provider).commit(r.jobId, reveal.commitment));
  reveals.push(reveal);
}
for (const r of running) await commit(r);
// The mock randomness is set per job so that these three are not drawn for audit; `draw` records it.
for (const r of running) {
  await setDraw(sys, r.jobId, false);
  await send(market.draw(r.job));
}
step("3 results committed; the audit draw passes them over");

async function settle(from: number) {
  for (let i = from; i < running.length; i++) {
    const r = running[i];
    const v = reveals[i];
    await send(market.connect(r.provider).settle(r.job, r.provider.address, v.resultRoot, v.salt, v.outputURI));
  }
}
await networkHelpers.time.increase(BigInt(terms.challengeWindow));
await settle(0);
step(`challenge window (${terms.challengeWindow / 3600} h) over: 3 jobs settled with their reveals`);

// 4. A provider that disappears: the job is timed out and reopened.
const c = await createJob(sys, consumer);
await send(market.connect(pc).claim(c.job));
await networkHelpers.time.increase(HOUR + 1n);
await send(market.connect(de).claim(c.job));
step(`${names.get(pc.address)} missed its commit deadline on a 4th job: timed out, ${names.get(de.address)} took it over`);
running.push({ ...c, provider: de });
await commit(running[3]);
await setDraw(sys, c.jobId, false);
await networkHelpers.time.increase(BigInt(terms.challengeWindow));
await settle(3);
step("4th job committed and settled");

// 6. An audited job: the provider fabricated results, an auditor re-runs 4 sampled chunks blind, a
//    tie-breaker confirms, and the provider is slashed.
const v = packVerification({ chunks: 256, auditChunks: 4, auditBps: 0 });
const d = await createJob(sys, consumer, { verification: v });
await send(market.connect(br).claim(d.job));
const fake = Result.of(d.jobId, br.address, 256, Array.from({ length: 256 }, (_, i) => i));
await send(market.connect(br).commit(d.jobId, fake.commitment));
await setDraw(sys, d.jobId, true);
const sample = (await market.sampleOf(d.job)).map(Number);
const auditAnswer = AuditAnswer.of(d.jobId, pc.address, sample);
await send(market.connect(pc).audit(d.job, auditAnswer.commitment));
await send(market.connect(br).revealResult(d.job, br.address, fake.tree.root, fake.salt, "", fake.leavesAt(sample), fake.proofsAt(sample)));
await send(market.connect(pc).revealAudit(d.job, auditAnswer.leaves, fake.leavesAt(sample)));
await send(market.connect(de).tieBreak(d.job));
const tie = AuditAnswer.of(d.jobId, de.address, sample);
await send(market.connect(de).revealTieBreak(d.job, tie.leaves, fake.leavesAt(sample), auditAnswer.leaves));
const slashed = (await sys.registry.stakeOf(br.address)).jailedUntil > 0n;
step(`a 5th job was drawn for audit: ${names.get(br.address)} had fabricated it, the audit and a tie-break caught it${slashed ? " (stake slashed, jailed)" : ""}`);

console.log("\nSummary");
console.log(`  jobs settled           4 (1 after a timeout and reopen), 1 slashed after an audit`);
console.log(`  consumer balance       ${fmt(await market.balanceOf(usd, consumer.address))}`);
for (const p of sys.providers) {
  const done = await market.completedJobs(usd, p.address);
  console.log(`  ${names.get(p.address)!.padEnd(22)} balance ${fmt(await market.balanceOf(usd, p.address))}, jobs ${done}, fees due ${fmt(await market.feesDue(usd, p.address))}`);
}
console.log(`  gas for the lifecycle transactions above: ${gas}`);
