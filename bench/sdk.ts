/**
 * SDK benchmark: `npx hardhat run bench/sdk.ts` (no chain needed). Prints a table and writes
 * bench/sdk.json.
 *
 * - merkleMBps: the result commitment of PROTOCOL.md §5 (sdk/src/merkle.ts) over 256 MiB of output on
 *   one core: 256 chunks of 1 MiB output and 64 B input, each hashed (SHA-256 of input and output),
 *   its leaf built, then the tree. MB/s in decimal megabytes (256 MiB = 268.435456 MB), best of 3.
 *   Target >= 800.
 * - statsMs100k: `computeStats` over the events of 100,000 synthetic jobs (about 540,000 events; the mix
 *   is described at `syntheticMarket`) across 300 providers, 2 tokens, 8 GPU classes and 6 regions over
 *   30 days, best of 3. Target < 2000 ms.
 *
 * Timing lives here, never in unit tests.
 */
import { randomFillSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { chunkLeaf, MerkleTree } from "../sdk/src/merkle.js";
import { packRequirements } from "../sdk/src/params.js";
import { computeStats, type MarketEvent } from "../sdk/src/stats.js";

const TARGETS = { merkleMBps: 800, statsMs100k: 2000 };
const MiB = 1 << 20;

function bestOf<T>(runs: number, f: () => T): { ms: number; result: T } {
  let best = Infinity;
  let result!: T;
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    result = f();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (ms < best) best = ms;
  }
  return { ms: best, result };
}

/* Merkle commitment over 256 MiB ----------------------------------------------------------------- */

const CHUNKS = 256;

/** Inside a function, so its 256 MiB are garbage before the stats benchmark runs. */
function benchMerkle() {
  const output = randomFillSync(Buffer.allocUnsafe(CHUNKS * MiB));
  const input = randomFillSync(Buffer.allocUnsafe(CHUNKS * 64));
  const jobId = "0x" + "ab".repeat(32);
  return bestOf(3, () => {
    const leaves = new Array<Uint8Array>(CHUNKS);
    for (let i = 0; i < CHUNKS; i++) {
      leaves[i] = chunkLeaf(jobId, i, input.subarray(i * 64, (i + 1) * 64), output.subarray(i * MiB, (i + 1) * MiB));
    }
    return new MerkleTree(leaves).root;
  });
}

const merkle = benchMerkle();
const merkleMBps = (CHUNKS * MiB) / 1e6 / (merkle.ms / 1e3);

/* computeStats over 100,000 jobs ------------------------------------------------------------------ */

/** mulberry32: a small deterministic PRNG, so every run sees the same market. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The events of `jobs` jobs posted evenly over 30 days. Each job: 4% cancelled, 3% expire unclaimed
 * (refunded a day later), the rest claimed after a short queue (5% time out and are reclaimed by
 * another provider), committed after 1 to 60 minutes of compute, drawn for audit half of the time
 * (pMin 0.5: 1% of audits find no auditor, 0.4% prove fraud, 0.2% slash the auditor, 0.2% stall), and
 * settled after the challenge window; 0.3% never reveal. Events after the last instant are dropped,
 * so the jobs of the last hours are still open, computing or committed, as on a live chain.
 */
function syntheticMarket(jobs: number): MarketEvent[] {
  const rand = prng(42);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const hex = (n: number, width: number) => "0x" + n.toString(16).padStart(width, "0");
  const tokens = [hex(0xa1, 40), hex(0xa2, 40)];
  const consumer = hex(0xc0, 40);
  const regions = ["", "", "DE", "US", "BR", "JP", "FR"];
  const providers = Array.from({ length: 300 }, (_, i) => hex(0x1000 + i, 40));
  const STAKE_SLASH = 100n * 10n ** 18n;
  const out: (MarketEvent & { order: number })[] = [];
  let order = 0;
  const add = (timestamp: number, e: object) => out.push({ ...(e as MarketEvent), block: 0, logIndex: 0, timestamp, order: order++ });

  const start = 1_750_000_000;
  const end = start + 30 * 86_400;
  for (let i = 0; i < providers.length; i++) {
    add(start, { kind: "providerRegistered", provider: providers[i], id: i + 1, gpuClass: i % 8, region: pick(regions) });
    add(start, { kind: "pricePosted", provider: providers[i], token: tokens[i % 2], pricePerUnit: 1_000_000n });
  }
  for (let j = 0; j < jobs; j++) {
    const jobId = hex(j, 64);
    const t0 = start + 60 + Math.floor((j / jobs) * (end - start - 60));
    const workUnits = BigInt(1 + Math.floor(rand() * 100));
    const price = workUnits * BigInt(800_000 + Math.floor(rand() * 400_000));
    const requirements = packRequirements({
      runtime: 0,
      minVramGB: 16,
      minGpuCount: 1,
      gpuClass: rand() < 0.5 ? 0 : Math.floor(rand() * 8),
      region: pick(regions),
      renewableOnly: false,
    });
    add(t0, { kind: "created", jobId, consumer, paymentToken: tokens[j % 2], price, workUnits, requirements, targetProvider: hex(0, 40) });

    const fate = rand();
    if (fate < 0.04) {
      add(t0 + 30 + Math.floor(rand() * 600), { kind: "cancelled", jobId, consumer, refund: price });
      continue;
    }
    if (fate < 0.07) {
      add(t0 + 86_400, { kind: "refunded", jobId, consumer, amount: price });
      continue;
    }
    let provider = pick(providers);
    let t = t0 + Math.floor(rand() * rand() * 900); // queue: mostly short, a long tail
    add(t, { kind: "claimed", jobId, provider });
    if (rand() < 0.05) {
      t += 3_601;
      add(t, { kind: "timedOut", jobId, provider, toConsumer: price / 5n, returnedToProvider: price * 2n - price / 5n });
      add(t, { kind: "reopened", jobId });
      provider = pick(providers);
      t += Math.floor(rand() * 300);
      add(t, { kind: "claimed", jobId, provider });
    }
    t += 60 + Math.floor(rand() * 3_540);
    add(t, { kind: "committed", jobId });

    const outcome = rand();
    if (outcome < 0.003) {
      add(t + 7_201, { kind: "revealMissed", jobId, provider, toConsumer: price * 2n - price / 5n, toTreasury: price / 5n, stakeSlashed: STAKE_SLASH });
      continue;
    }
    if (rand() >= 0.5) {
      add(t + 3_600 + Math.floor(rand() * 600), { kind: "settled", jobId, provider });
      continue;
    }
    add(t + 12, { kind: "auditDrawn", jobId, audited: true, probabilityBps: 5_000, failSafe: false });
    if (outcome < 0.013) {
      add(t + 3_613, { kind: "auditUnclaimed", jobId });
      add(t + 7_200, { kind: "settled", jobId, provider });
      continue;
    }
    const auditor = pick(providers);
    add(t + 600 + Math.floor(rand() * 1_200), { kind: "auditClaimed", jobId, auditor });
    const verdictAt = t + 3_600 + Math.floor(rand() * 1_200);
    if (outcome < 0.017) {
      add(verdictAt, { kind: "fraudProven", jobId, provider, toConsumerSide: price * 3n / 5n, toAuditors: price, toTreasury: price * 2n / 5n, stakeSlashed: STAKE_SLASH });
    } else if (outcome < 0.019) {
      add(verdictAt, { kind: "auditorSlashed", jobId, auditor, collateral: price, stakeSlashed: STAKE_SLASH });
      add(verdictAt, { kind: "settled", jobId, provider });
    } else if (outcome < 0.021) {
      add(verdictAt, { kind: "auditorStalled", jobId, auditor, collateral: price });
      add(verdictAt, { kind: "settled", jobId, provider });
    } else {
      add(verdictAt, { kind: "auditPassed", jobId, provider, auditor, reward: price / 50n });
      add(verdictAt, { kind: "settled", jobId, provider });
    }
  }
  // Chain order: by time, then emission order; a block every 12 s. Nothing after `end` has happened yet.
  const chain = out.filter((e) => e.timestamp <= end).sort((a, b) => a.timestamp - b.timestamp || a.order - b.order);
  let last = -1;
  let logIndex = 0;
  for (const e of chain) {
    const block = Math.floor((e.timestamp - start) / 12) + 1;
    if (block !== last) [last, logIndex] = [block, 0];
    e.block = block;
    e.logIndex = logIndex++;
    delete (e as { order?: number }).order;
  }
  return chain;
}

const JOBS = 100_000;
const events = syntheticMarket(JOBS);
const stats = bestOf(3, () => computeStats(events));
const statsMs100k = stats.ms;

/* Report ------------------------------------------------------------------------------------------ */

const report = {
  merkleMBps: Math.round(merkleMBps),
  statsMs100k: Math.round(statsMs100k),
  targets: TARGETS,
  merkle: { chunks: CHUNKS, outputChunkBytes: MiB, inputChunkBytes: 64, bestMs: Math.round(merkle.ms), root: merkle.result },
  stats: {
    jobs: JOBS,
    events: events.length,
    bestMs: Math.round(statsMs100k),
    byState: stats.result.jobs.byState,
    queueP50s: stats.result.queueTime.all.p50,
    utilisation: Number(stats.result.utilisation.utilisation.toFixed(4)),
    slashes: stats.result.slashes.length,
  },
  node: process.version,
  cpu: cpus()[0]?.model ?? "unknown",
  date: new Date().toISOString(),
};

console.table({
  merkleMBps: { value: report.merkleMBps, target: `>= ${TARGETS.merkleMBps}`, ok: report.merkleMBps >= TARGETS.merkleMBps },
  statsMs100k: { value: report.statsMs100k, target: `< ${TARGETS.statsMs100k}`, ok: report.statsMs100k < TARGETS.statsMs100k },
});
console.log(`${JOBS.toLocaleString("en")} jobs, ${events.length.toLocaleString("en")} events; ${report.node} on ${report.cpu}`);
writeFileSync(new URL("./sdk.json", import.meta.url), JSON.stringify(report, null, 2) + "\n");
console.log("wrote bench/sdk.json");
