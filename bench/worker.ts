/**
 * Worker benchmark: `npx hardhat run bench/worker.ts` (`npm run bench:worker`). Prints a table and
 * writes bench/worker.json.
 *
 * - jobsPerMinute: jobs settled per wall-clock minute through ONE provider worker (the SDK fixture's
 *   `cheap` provider, with the worker fixture's config: concurrency 2, 0 confirmations) on the
 *   in-process chain, with a second worker (the fixture's `auditor`) auditing. The consumer posts JOBS
 *   (30) small int-kernel jobs up front, untimed (the worker fixture's `intKernelSpec`: 4 chunks of
 *   8×16 int8, audit sample 2); then each round ticks the provider and the auditor (waiting for the
 *   computations each started) and mines one block, as the worker tests' `drive` does, until every job
 *   is settled. A newcomer's first `probationJobs` (3) jobs are always audited, later ones with pMin
 *   (50% on the devnet); a job not drawn waits out the challenge window (devnet: 120 s) in chain
 *   time, which the loop skips with `time.increaseTo` once no in-flight job is in an audit phase (whose
 *   deadlines a jump could break).
 *   So the wall clock measures the worker's own cost per job (RPC round trips, runtime, blob store,
 *   SQLite, logging) plus the auditor's and the in-process chain's, never protocol waiting: a live
 *   chain is bounded by the windows instead. Overall: all jobs over the whole loop; steady state: the
 *   jobs settled after the first WARMUP (6, past probation) over the time since the WARMUP-th settled
 *   (the backlog of open jobs shrinks meanwhile, and a tick polls every open job: see `tickScaling`).
 *   JSON-RPC requests are counted per worker and method. The auditor is made audit-only with
 *   concurrency 0 (below the config schema's minimum of 1) so that every job goes through the one
 *   provider.
 * - overheadPct: the reference ONNX job, 12 dense layers 1024→1024 with ReLU between (12.6M parameters,
 *   the scale of a small transformer's feed-forward stack) over REFERENCE_MIB (8) MiB of float32 rows in
 *   ONNX_CHUNKS (16) chunks, on the CPU (one intra-op thread, the runtime's default), the sessions on
 *   this thread (`thread: false`). Compute is `run` of every chunk (canonical fixed-point output
 *   included), without the model's load (`loadMs`, beside: once per job, 30–450 ms on this VM
 *   depending on how fast fresh memory is touched, it made earlier figures wander and flattered them;
 *   `overheadPctIncludingLoad` is the figure with it, as measured before). The protocol's
 *   addition: the worker's commitment, `publishResult` (SHA-256 of every output chunk — the input
 *   chunks' digests are the spec's, verified when fetched — storing the outputs and the manifest,
 *   leaves, Merkle tree) and the consumer's verification, `fetchResult` (manifest and every output chunk
 *   fetched and re-hashed, input digests checked, root re-derived), both over a fresh MemoryBlobStore.
 *   overheadPct = 100 × (commitment + verification) / compute, each the median of ONNX_RUNS (12) runs
 *   (the load: of 3); `overheadPctRange` is the lowest and highest single run. Target <= 2.
 *   `commitmentToDiskMs` is the same commitment into a DirectoryBlobStore, the store a provider node
 *   uses (files written, fsync'd, renamed): storage, shown for reference, not counted. The worker
 *   stores each output chunk while the next one computes (ResultWriter): `commitmentToDiskAfterComputeMs`
 *   is what that leaves after the last chunk (the last chunk's storing and the manifest), and
 *   `computeWhileStoringMs` the compute meanwhile (against `computeMs`: what storing slows it by). The hashing
 *   alone (both SHA-256 passes and trees on one thread, no blob store copies) is `hashOnlyOverheadPct`.
 *   The same for light models that do far less arithmetic per byte — 256→256→256 over ONNX_MIB (96) MiB
 *   (`onnxSmall`) and 1024→1024→1024 over ONNX_MIB/4 (`onnx1024`) — shows the overhead is bytes hashed
 *   and copied over compute: it grows as a model does less work per byte. `onnxTransformerFfn`, for
 *   comparison and not the reference job, goes the other way: the feed-forward half of a 4-block
 *   transformer of width 1024 (1024→4096→1024 per block, 33.6M parameters) over the same rows. Each
 *   section gives its `multiplyAddsPerOutputByte`. `onnxOnRuntimeThread` is the
 *   reference job again as the worker runs it by default, its sessions on the ONNX runtime thread (each
 *   chunk copied to and from buffers shared with it). Not the headline: on this 2-CPU VM, with
 *   Hardhat's heap in the process, the runtime thread takes the core V8's concurrent GC would use, its
 *   chunks compute ~15% slower here, and a slower compute would only flatter the ratio.
 * - peakRssMB: the process's peak resident set (process.resourceUsage().maxRSS, and a 20 ms sampler of
 *   process.memoryUsage.rss() for the phase peaks), in MiB: Hardhat and the in-process chain, the two
 *   workers, then the ONNX runtime thread and buffers (input, output and their blob store copies). The jobs run first, so
 *   `jobs.rssMB` is the peak without the ONNX buffers.
 * - polling: one tick following 40 open jobs over an RPC 20 ms away. intKernelStall: one heavy int8
 *   matmul chunk, and the longest the caller's event loop stalled while it computed, on the runtime
 *   thread (the default) and on the caller's thread.
 *
 * Timing lives here, never in unit tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { network } from "hardhat";
import { DirectoryBlobStore, MemoryBlobStore, digestOf } from "../sdk/src/blob.js";
import { JOB_STATES } from "../sdk/src/jobs.js";
import { MerkleTree, leafHash, sha256 } from "../sdk/src/merkle.js";
import { unpackTerms } from "../sdk/src/params.js";
import { ResultWriter, fetchResult, publishResult } from "../sdk/src/results.js";
import { parseJobSpec } from "../sdk/src/spec.js";
import { IntKernelRuntime, buildInt8MatmulProgram } from "../sdk/src/worker/runtimes/intKernel.js";
import { setRuntimeThreads, stopRuntimeThread } from "../sdk/src/worker/runtimes/runtimeThread.js";
import { OnnxRuntime } from "../sdk/src/worker/runtimes/onnx.js";
import { buildDenseModel } from "../sdk/src/worker/runtimes/onnxModel.js";
import { WorkerState } from "../sdk/src/worker/state.js";
import { Worker } from "../sdk/src/worker/worker.js";
import { USD, sdkWorld } from "../test/sdk/fixture.js";
import { JOB, bytes, intKernelSpec, quietLogger, runtimes } from "../test/worker/worker-fixture.js";

const TARGETS = { overheadPct: 2 };
const JOBS = Number(process.env.MESHWORK_BENCH_JOBS ?? 30);
const WARMUP = 6; // past the 3 probation jobs and a whole concurrency-2 pair
const CONCURRENCY = 2;
const ONNX_FEATURES = 256;
const ONNX_MIB = Number(process.env.MESHWORK_BENCH_ONNX_MIB ?? 96);
const REFERENCE_MIB = Number(process.env.MESHWORK_BENCH_REFERENCE_MIB ?? 8);
const ONNX_CHUNKS = 16;
const ONNX_RUNS = 12;
const POLL_JOBS = 40;
const RPC_LATENCY_MS = 20;
const MiB = 1 << 20;

const now = () => performance.now();

/* Peak memory -------------------------------------------------------------------------------------- */

let sampledPeak = 0;
let phasePeak = 0;
const sampler = setInterval(() => {
  const rss = process.memoryUsage.rss();
  if (rss > sampledPeak) sampledPeak = rss;
  if (rss > phasePeak) phasePeak = rss;
}, 20);
sampler.unref();
function phaseRss(): number {
  const rss = Math.max(phasePeak, process.memoryUsage.rss());
  phasePeak = 0;
  return Math.round(rss / MiB);
}

/* 1. Jobs per minute through one provider worker ------------------------------------------------- */

async function benchJobs() {
  const connection = await network.create();
  const setupStart = now();
  // Count JSON-RPC requests (every SDK client of this connection goes through this provider).
  const rpc = connection.provider as unknown as { request: (args: { method: string }) => Promise<unknown> };
  const request = rpc.request.bind(rpc);
  const calls = new Map<string, number>();
  let counting = "";
  rpc.request = (args) => {
    if (counting) calls.set(`${counting} ${args.method}`, (calls.get(`${counting} ${args.method}`) ?? 0) + 1);
    return request(args);
  };
  const w = await sdkWorld(connection);
  const { networkHelpers } = w;
  const consumer = await w.sdk(w.consumer);
  await w.usd.mint(w.deployer.address, 1_000n * USD);
  await w.usd.connect(w.deployer).approve(w.market, 1_000n * USD);
  await w.market.connect(w.deployer).fundAuditPool(w.usd, 1_000n * USD); // audits are paid from the pool

  const config = {
    concurrency: CONCURRENCY,
    maxCollateral: {},
    confirmations: 0,
    pollMs: 50,
    audit: true,
    maxBlobBytes: 1 << 20,
    withdrawEverySec: 0,
  };
  const state = new WorkerState(":memory:");
  const provider = new Worker({ mw: await w.sdk(w.cheap), store: w.store, state, runtimes, config, logger: quietLogger() });
  // Audit-only: with concurrency 0 it never claims (it would otherwise take half of the jobs).
  const auditor = new Worker({
    mw: await w.sdk(w.auditor),
    store: w.store,
    state: new WorkerState(":memory:"),
    runtimes,
    config: { ...config, concurrency: 0 },
    logger: quietLogger(),
  });

  // The claim deadline is far enough that skipping challenge windows never expires an open job.
  const chainNow = BigInt(await networkHelpers.time.latest());
  const jobIds: string[] = [];
  for (let i = 0; i < JOBS; i++) {
    const job = await consumer.jobs.create(await intKernelSpec(w, 1 + i), { ...JOB, claimBy: chainNow + 7n * 86_400n });
    jobIds.push(job.jobId);
  }
  const setupMs = now() - setupStart;
  phaseRss();

  const { market } = w;
  const challengeWindow = unpackTerms(BigInt(await market.currentTerms())).challengeWindow;
  const AUDIT_PHASES = new Set(["Audited", "Revealing", "Disputed", "Escalated"]);
  const settledAt: number[] = [];
  const done = new Set<string>();
  let providerMs = 0;
  let auditorMs = 0;
  let mineMs = 0;
  let jumps = 0;
  let jumpedSeconds = 0;
  let rounds = 0;
  const providerTicks: number[] = [];
  const activeRows: number[] = [];

  const start = now();
  while (done.size < JOBS) {
    if (++rounds > 40 * JOBS) throw new Error(`only ${done.size} of ${JOBS} jobs done after ${rounds - 1} rounds`);
    let t = now();
    counting = "provider";
    await provider.tick();
    await provider.idle(); // the computations it started in the background count as its work
    const tick = now() - t;
    providerMs += tick;
    providerTicks.push(tick);
    activeRows.push(state.active().length);
    t = now();
    counting = "auditor";
    await auditor.tick();
    await auditor.idle();
    counting = "";
    auditorMs += now() - t;
    t = now();
    await networkHelpers.mine(1);
    mineMs += now() - t;

    // Bookkeeping (in the loop's wall time: it is a few local reads and at most a few calls).
    for (const id of jobIds) {
      if (!done.has(id) && state.get(id)?.phase === "done") {
        done.add(id);
        settledAt.push(now() - start);
      }
    }
    // Skip a challenge window once nothing in flight is in an audit phase (those deadlines are short).
    const inFlight = state.inPhase("claimed", "computed", "committing", "committed", "revealed");
    const states = await Promise.all(inFlight.map(async (r) => JOB_STATES[Number(await market.jobState(r.jobId))]));
    if (states.includes("Challengeable") && !states.some((s) => AUDIT_PHASES.has(s))) {
      const latest = await networkHelpers.time.latest();
      let target = Infinity;
      for (let i = 0; i < inFlight.length; i++) {
        if (states[i] !== "Challengeable") continue;
        // jobRecord reports the slot's clock, which for a Challengeable job is the window's end.
        const clock = Number((await market.jobRecord(inFlight[i].jobId)).committedAt);
        target = Math.min(target, clock > latest ? clock : clock + challengeWindow);
      }
      if (target > latest) {
        await networkHelpers.time.increaseTo(target);
        jumps++;
        jumpedSeconds += target - latest;
      }
    }
  }
  const wallMs = now() - start;
  const jobsRss = phaseRss();

  // Check: every job settled, by the one provider.
  const settled = await market.queryFilter(market.filters.JobSettled());
  const ours = new Set(jobIds);
  const byProvider = settled.filter((e) => ours.has(e.args.jobId) && e.args.provider.toLowerCase() === w.cheap.address.toLowerCase());
  if (byProvider.length !== JOBS) throw new Error(`${byProvider.length} of ${JOBS} jobs settled by the provider`);
  const audited = (await market.queryFilter(market.filters.AuditPassed())).filter((e) => ours.has(e.args.jobId)).length;

  const steadyJobs = JOBS - WARMUP;
  const steadyMs = settledAt[JOBS - 1] - settledAt[WARMUP - 1];
  // Tick time against the rows the worker polls: the first half of the run (many open jobs) vs the second.
  const half = Math.floor(providerTicks.length / 2);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const tickScaling = {
    firstHalf: { activeRows: Number(mean(activeRows.slice(0, half)).toFixed(1)), tickMs: Number(mean(providerTicks.slice(0, half)).toFixed(1)) },
    secondHalf: { activeRows: Number(mean(activeRows.slice(half)).toFixed(1)), tickMs: Number(mean(providerTicks.slice(half)).toFixed(1)) },
  };
  const rpcOf = (role: string) => {
    const entries: [string, number][] = [...calls].filter(([k]) => k.startsWith(role + " ")).map(([k, v]) => [k.slice(role.length + 1), v]);
    entries.sort((a, b) => b[1] - a[1]);
    const byMethod = Object.fromEntries(entries);
    const total = entries.reduce((a, [, v]) => a + v, 0);
    return { total, perJob: Number((total / JOBS).toFixed(1)), perTick: Number((total / rounds).toFixed(1)), byMethod };
  };
  const providerRpc = rpcOf("provider");
  providerTicks.sort((a, b) => a - b);
  const p = (q: number) => providerTicks[Math.min(providerTicks.length - 1, Math.floor(q * providerTicks.length))];
  state.close();
  rpc.request = request;
  return {
    jobsPerMinute: JOBS / (wallMs / 60_000),
    steadyJobsPerMinute: steadyJobs / (steadyMs / 60_000),
    details: {
      jobs: JOBS,
      runtime: "int-kernel",
      chunks: 4,
      concurrency: CONCURRENCY,
      audited,
      unaudited: JOBS - audited,
      rounds,
      roundsPerJob: Number((rounds / JOBS).toFixed(2)),
      wallMs: Math.round(wallMs),
      providerTickMs: Math.round(providerMs),
      auditorTickMs: Math.round(auditorMs),
      mineMs: Math.round(mineMs),
      bookkeepingMs: Math.round(wallMs - providerMs - auditorMs - mineMs),
      providerTickP50Ms: Number(p(0.5).toFixed(1)),
      providerTickP95Ms: Number(p(0.95).toFixed(1)),
      providerMsPerJob: Math.round(providerMs / JOBS),
      providerOnlyJobsPerMinute: Math.round(JOBS / (providerMs / 60_000)),
      providerMsPerRpc: Number((providerMs / Math.max(1, providerRpc.total)).toFixed(2)),
      tickScaling,
      rpc: { provider: providerRpc, auditor: rpcOf("auditor") },
      steadyState: { afterJobs: WARMUP, jobs: steadyJobs, ms: Math.round(steadyMs) },
      challengeWindowSkips: jumps,
      chainSecondsSkipped: jumpedSeconds,
      setupMs: Math.round(setupMs),
      rssMB: jobsRss,
    },
  };
}

/* 2. Polling over an RPC that is a round trip away ----------------------------------------------- */

/**
 * One tick's wall time for a worker following POLL_JOBS open jobs when every JSON-RPC request takes
 * RPC_LATENCY_MS to answer (a remote node; requests in flight at once overlap, as a node serves
 * concurrent requests and ethers' JsonRpcProvider sends them as one batch). The worker claims nothing
 * (concurrency 0), so a tick is the polling alone: the scan, every job's state, the earnings.
 */
async function benchPolling() {
  const connection = await network.create();
  const rpc = connection.provider as unknown as { request: (args: { method: string }) => Promise<unknown> };
  const request = rpc.request.bind(rpc);
  let latency = 0;
  let requests = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  rpc.request = async (args) => {
    requests++;
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    try {
      if (latency) await new Promise((resolve) => setTimeout(resolve, latency));
      return await request(args);
    } finally {
      inFlight--;
    }
  };
  const w = await sdkWorld(connection);
  const consumer = await w.sdk(w.consumer);
  const chainNow = BigInt(await w.networkHelpers.time.latest());
  for (let i = 0; i < POLL_JOBS; i++) {
    await consumer.jobs.create(await intKernelSpec(w, 500 + i), { ...JOB, claimBy: chainNow + 7n * 86_400n });
  }
  const state = new WorkerState(":memory:");
  const worker = new Worker({
    mw: await w.sdk(w.cheap),
    store: w.store,
    state,
    runtimes,
    config: { concurrency: 0, maxCollateral: {}, confirmations: 0, pollMs: 50, audit: true, maxBlobBytes: 1 << 20, withdrawEverySec: 0 },
    logger: quietLogger(),
  });
  await worker.tick(); // reads the JobCreated logs: untimed
  latency = RPC_LATENCY_MS;
  const ticks: number[] = [];
  let perTick = 0;
  maxInFlight = 0;
  for (let i = 0; i < 5; i++) {
    requests = 0;
    const t = now();
    await worker.tick();
    ticks.push(now() - t);
    perTick = requests;
  }
  const rows = state.active().length;
  state.close();
  rpc.request = request;
  if (rows !== POLL_JOBS) throw new Error(`the worker follows ${rows} jobs, not ${POLL_JOBS}`);
  return {
    jobsFollowed: rows,
    rpcLatencyMs: RPC_LATENCY_MS,
    requestsPerTick: perTick,
    mostRequestsInFlight: maxInFlight,
    tickMs: Math.round(median(ticks)),
    oneAtATimeMs: perTick * RPC_LATENCY_MS,
  };
}

/* 3. The caller's event loop while an integer kernel computes ------------------------------------ */

/**
 * One int8 matmul chunk (1024×1024 weights, 1 MiB of rows: ~1.07 G multiply-adds), timed, and the longest
 * the caller's event loop went without turning meanwhile (a 1 ms timer's largest lateness): what a
 * worker's ticks, blob server and metrics wait for. On the runtime thread (the default) and on the
 * caller's thread.
 */
async function benchIntKernelStall() {
  const k = 1024;
  const n = 1024;
  const program = buildInt8MatmulProgram({ k, n, weights: Int8Array.from(bytes(k * n, 77), (b) => b - 128), shift: 8, relu: true });
  const input = bytes(MiB, 78);
  const spec = parseJobSpec({
    version: 1,
    runtime: "int-kernel",
    program: { digest: digestOf(program), size: program.length },
    inputs: { kind: "chunks", chunks: [{ digest: digestOf(input), size: input.length }] },
    chunking: { chunks: 1 },
    output: { encoding: "int32-le", canonicalisation: "exact" },
  });
  const measure = async (thread: boolean) => {
    const job = await new IntKernelRuntime({ thread }).load(spec, program);
    await job.run(input, 0); // warm the kernel's code
    let last = now();
    let longest = 0;
    const timer = setInterval(() => {
      const t = now();
      longest = Math.max(longest, t - last);
      last = t;
    }, 1);
    const t0 = now();
    const out = await job.run(input, 0);
    const chunkMs = now() - t0;
    longest = Math.max(longest, now() - last);
    clearInterval(timer);
    await job.close();
    return { chunkMs: Math.round(chunkMs), longestStallMs: Math.round(longest), output: digestOf(out) };
  };
  const onThread = await measure(true);
  const inline = await measure(false);
  if (onThread.output !== inline.output) throw new Error("the int-kernel output differs between the threads");
  // Two jobs' chunks at once (a worker with concurrency 2): on one runtime thread they take turns, on
  // two they compute side by side.
  const twoJobs = async (threads: number) => {
    setRuntimeThreads(threads);
    const runtime = new IntKernelRuntime();
    const jobs = [await runtime.load(spec, program), await runtime.load(spec, program)];
    await Promise.all(jobs.map((job) => job.run(input, 0))); // warm both threads' kernel code
    const t0 = now();
    const outputs = await Promise.all(jobs.map((job) => job.run(input, 0)));
    const ms = now() - t0;
    await Promise.all(jobs.map((job) => job.close()));
    if (outputs.some((out) => digestOf(out) !== inline.output)) throw new Error("an int-kernel output differs on a second runtime thread");
    return Math.round(ms);
  };
  const twoJobsOneThreadMs = await twoJobs(1);
  const twoJobsTwoThreadsMs = await twoJobs(2);
  setRuntimeThreads(1);
  await stopRuntimeThread(); // the second thread goes; the next load starts the first again
  return {
    kernel: `int8-matmul ${k}×${n}, ${input.length / k} rows (${((input.length * n) / 1e9).toFixed(2)} G multiply-adds)`,
    onRuntimeThread: { chunkMs: onThread.chunkMs, longestStallMs: onThread.longestStallMs },
    onCallersThread: { chunkMs: inline.chunkMs, longestStallMs: inline.longestStallMs },
    twoJobsAtOnce: { oneRuntimeThreadMs: twoJobsOneThreadMs, twoRuntimeThreadsMs: twoJobsTwoThreadsMs },
  };
}

/* 4. Protocol overhead on a reference ONNX job --------------------------------------------------- */

/**
 * Commitment and verification against compute for `depth` dense layers f→f (ReLU between) over `mib`
 * MiB of rows, or, with `expand`, `depth` feed-forward blocks f→expand·f→f as in a transformer (ReLU
 * after every layer but the last; weights scaled by fan-in so values stay on the fixed-point grid).
 */
async function benchOverhead(f: number, mib: number, depth = 2, options: { thread?: boolean; expand?: number } = {}) {
  // Weights in ±scale: 1/16 for the dense stacks (as always measured), 2/√fan-in for the wide blocks.
  const layer = (l: number, inFeatures: number, outFeatures: number, last: boolean, scale: number) => ({
    inFeatures,
    outFeatures,
    weights: Float32Array.from(bytes(inFeatures * outFeatures, 31 + l), (b) => ((b - 128) / 128) * scale),
    bias: new Float32Array(outFeatures).fill(l % 2 ? -0.01 : 0.01),
    relu: !last,
  });
  const e = options.expand;
  const model = buildDenseModel({
    layers: e
      ? Array.from({ length: 2 * depth }, (_, l) => (l % 2 ? layer(l, e * f, f, l === 2 * depth - 1, 2 / Math.sqrt(e * f)) : layer(l, f, e * f, false, 2 / Math.sqrt(f))))
      : Array.from({ length: depth }, (_, l) => layer(l, f, f, l === depth - 1, 1 / 16)),
  });
  const parameters = e ? depth * (2 * e * f * f + e * f + f) : depth * f * (f + 1);
  const rowBytes = f * 4;
  const rows = Math.floor((mib * MiB) / rowBytes / ONNX_CHUNKS) * ONNX_CHUNKS;
  const chunkBytes = (rows / ONNX_CHUNKS) * rowBytes;
  const inputs: Uint8Array[] = [];
  for (let i = 0; i < ONNX_CHUNKS; i++) {
    const values = Float32Array.from(bytes(chunkBytes / 4, 1000 + i), (b) => (b - 128) / 32);
    inputs.push(new Uint8Array(values.buffer));
  }
  const spec = parseJobSpec({
    version: 1,
    runtime: "onnx",
    model: { digest: digestOf(model), size: model.length },
    inputs: { kind: "chunks", chunks: inputs.map((c) => ({ digest: digestOf(c), size: c.length })) },
    chunking: { chunks: ONNX_CHUNKS },
    output: { encoding: "fixed-point", scaleBits: 16, canonicalisation: "tolerance" },
  });
  const inputDigests = spec.inputs.kind === "chunks" ? spec.inputs.chunks.map((c) => c.digest) : [];
  const jobId = "0x" + "5a".repeat(32);
  const runtime = new OnnxRuntime({ thread: options.thread ?? true });
  const caps = await runtime.capabilities(); // probed once per process, as a running worker has
  if (!caps.available) throw new Error(`onnx runtime unavailable: ${caps.detail}`);

  // Every figure is the median over ONNX_RUNS runs: this machine's timings wander by ±10% from run to
  // run (a 2-vCPU VM whose kernel reclaims idle pages), and a median holds still where a minimum of a
  // few does not.
  const runs = {
    chunksMs: [] as number[],
    publishMs: [] as number[],
    diskPublishMs: [] as number[],
    fetchMs: [] as number[],
    hashMs: [] as number[],
    storingChunksMs: [] as number[],
    storingTailMs: [] as number[],
  };
  const disk = mkdtempSync(join(tmpdir(), "meshwork-bench-blobs-"));
  const perRunPct: number[] = [];
  const loads: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = now();
    await (await runtime.load(spec, model)).close();
    loads.push(now() - t0);
  }
  const loadMs = median(loads);
  const loaded = await runtime.load(spec, model);
  let t: number;
  let outputs: Uint8Array[] = [];
  let root = "";
  for (let run = 0; run < ONNX_RUNS; run++) {
    // Compute: every chunk through the runtime, as the worker's #compute runs them.
    t = now();
    outputs = [];
    for (let i = 0; i < ONNX_CHUNKS; i++) outputs.push(await loaded.run(inputs[i], i));
    runs.chunksMs.push(now() - t);

    // Commitment: what the worker does next (hash, store outputs and manifest, leaves, tree).
    const store = new MemoryBlobStore();
    t = now();
    const published = await publishResult(store, jobId, inputs, outputs, { inputDigests }); // as the worker does
    runs.publishMs.push(now() - t);

    // The same into a provider node's own store (DirectoryBlobStore: files written, fsync'd, renamed),
    // for reference: storage, not counted in overheadPct.
    t = now();
    await publishResult(new DirectoryBlobStore(join(disk, String(run))), jobId, inputs, outputs, { inputDigests });
    runs.diskPublishMs.push(now() - t);
    rmSync(join(disk, String(run)), { recursive: true, force: true });
    root = published.root;

    // As the worker commits: each output chunk stored (DirectoryBlobStore) while the next computes, the
    // manifest after the last. What it adds after the last chunk, and the compute meanwhile.
    const writer = new ResultWriter(new DirectoryBlobStore(join(disk, `w${run}`)), jobId);
    t = now();
    for (let i = 0; i < ONNX_CHUNKS; i++) await writer.add(await loaded.run(inputs[i], i));
    const last = now();
    const written = await writer.finish(inputDigests);
    runs.storingTailMs.push(now() - last);
    runs.storingChunksMs.push(last - t);
    rmSync(join(disk, `w${run}`), { recursive: true, force: true });
    if (written.root !== root) throw new Error("the worker's way gave another root");

    // Verification: the consumer fetches and checks the whole result.
    t = now();
    const fetched = await fetchResult(store, jobId, published.root, published.outputURI, { inputDigests });
    runs.fetchMs.push(now() - t);
    if (fetched.chunks.length !== ONNX_CHUNKS) throw new Error("fetchResult returned the wrong number of chunks");

    // The hashing work itself, on one thread: outputs hashed, leaves, tree (worker); outputs re-hashed,
    // leaves, tree (consumer). No blob store copies, no overlap: the CPU time the protocol adds.
    t = now();
    const leaves = outputs.map((output, i) => leafHash(jobId, i, inputDigests[i], sha256(output)));
    const treeRoot = new MerkleTree(leaves).root;
    for (const o of outputs) sha256(o);
    new MerkleTree(leaves);
    runs.hashMs.push(now() - t);
    if (treeRoot !== root) throw new Error("root mismatch");
    perRunPct.push((100 * (runs.publishMs[run] + runs.fetchMs[run])) / runs.chunksMs[run]);
  }
  await loaded.close();
  rmSync(disk, { recursive: true, force: true });
  const best = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)])) as Record<keyof typeof runs, number>;
  const overheadMs = best.publishMs + best.fetchMs;
  const outputBytes = outputs.reduce((n, o) => n + o.length, 0);
  return {
    overheadPct: (100 * overheadMs) / best.chunksMs,
    hashOnlyPct: (100 * best.hashMs) / best.chunksMs,
    details: {
      overheadPctRange: [Number(Math.min(...perRunPct).toFixed(2)), Number(Math.max(...perRunPct).toFixed(2))],
      overheadPctIncludingLoad: Number(((100 * overheadMs) / (loadMs + best.chunksMs)).toFixed(2)),
      sessions: options.thread ? "on the runtime thread" : "on the caller's thread",
      model: `${e ? `${depth} feed-forward blocks ${f}→${e * f}→${f}` : `${depth} dense layers ${f}→${f}`} (relu between), ${(parameters / 1e6).toFixed(1)}M parameters, float32 in, fixed-point (scaleBits 16) out`,
      multiplyAddsPerOutputByte: Math.round((e ? 2 * e * depth * f : depth * f) / 4),
      device: caps.device,
      runtimeDetail: caps.detail,
      rows,
      inputMiB: Number(((rows * rowBytes) / MiB).toFixed(2)),
      outputMiB: Number((outputBytes / MiB).toFixed(2)),
      chunks: ONNX_CHUNKS,
      runs: ONNX_RUNS,
      loadMs: Number(loadMs.toFixed(1)),
      computeMs: Math.round(best.chunksMs),
      computeRowsPerSec: Math.round(rows / (best.chunksMs / 1000)),
      commitmentMs: Number(best.publishMs.toFixed(1)),
      commitmentToDiskMs: Number(best.diskPublishMs.toFixed(1)),
      commitmentToDiskAfterComputeMs: Number(best.storingTailMs.toFixed(1)),
      computeWhileStoringMs: Math.round(best.storingChunksMs),
      verificationMs: Number(best.fetchMs.toFixed(1)),
      hashOnlyMs: Number(best.hashMs.toFixed(1)),
      root,
      rssMB: phaseRss(),
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** MB/s of copying into freshly allocated memory (what every blob store copy does): slow first-touch page faults in some VMs. */
function freshCopyMBps(): number {
  const src = new Uint8Array(64 * MiB).fill(7);
  const t = now();
  const copy = src.slice();
  const ms = now() - t;
  if (copy[0] !== 7) throw new Error("copy");
  return Math.round((64 * MiB) / 1e6 / (ms / 1000));
}

/** MB/s of SHA-256 (node:crypto, one core) over 16 MiB, best of 3. */
function sha256MBps(): number {
  const src = new Uint8Array(16 * MiB).fill(7);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = now();
    sha256(src);
    best = Math.min(best, now() - t);
  }
  return Math.round((16 * MiB) / 1e6 / (best / 1000));
}

/* Report ------------------------------------------------------------------------------------------ */

const baselineRssMB = Math.round(process.memoryUsage.rss() / MiB);
const copyMBps = freshCopyMBps(); // before anything has been allocated and freed: real first-touch faults
// The jobs first, so that their memory peak is the worker's and the chain's, not the ONNX buffers'.
const jobs = await benchJobs();
const polling = await benchPolling();
const intKernelStall = await benchIntKernelStall();
// The reference job: a 12-layer, 1024-wide dense stack (12.6M parameters, the scale of a small
// transformer's feed-forward layers) over 8 MiB of rows. Then two light models, to show how the
// overhead grows as a model does less arithmetic per byte.
const overhead = await benchOverhead(1024, REFERENCE_MIB, 12, { thread: false });
// The same job as the worker runs it by default, its sessions on the runtime thread.
const threaded = await benchOverhead(1024, REFERENCE_MIB, 12, { thread: true });
const small = await benchOverhead(ONNX_FEATURES, ONNX_MIB, 2, { thread: false });
const heavier = await benchOverhead(4 * ONNX_FEATURES, ONNX_MIB / 4, 2, { thread: false });
const hashMBps = sha256MBps();
const maxRss = process.resourceUsage().maxRSS * 1024; // KiB on Linux and macOS
const peakRss = Math.max(maxRss, sampledPeak);
// For comparison, more arithmetic per output byte: the feed-forward half of a 4-block transformer of
// width 1024 (the usual 4× expansion), over the reference job's rows. Not the reference job; run after
// peakRssMB is taken (its 134 MB of weights are not the worker's), its own peak in its rssMB.
const ffn = await benchOverhead(1024, REFERENCE_MIB, 4, { thread: false, expand: 4 });
clearInterval(sampler);

const report = {
  jobsPerMinute: Number(jobs.jobsPerMinute.toFixed(1)),
  steadyJobsPerMinute: Number(jobs.steadyJobsPerMinute.toFixed(1)),
  overheadPct: Number(overhead.overheadPct.toFixed(2)),
  hashOnlyOverheadPct: Number(overhead.hashOnlyPct.toFixed(2)),
  peakRssMB: Math.round(peakRss / MiB),
  targets: TARGETS,
  jobs: jobs.details,
  polling,
  intKernelStall,
  onnx: overhead.details,
  onnxSmall: { overheadPct: Number(small.overheadPct.toFixed(2)), hashOnlyOverheadPct: Number(small.hashOnlyPct.toFixed(2)), ...small.details },
  onnx1024: { overheadPct: Number(heavier.overheadPct.toFixed(2)), hashOnlyOverheadPct: Number(heavier.hashOnlyPct.toFixed(2)), ...heavier.details },
  onnxOnRuntimeThread: { overheadPct: Number(threaded.overheadPct.toFixed(2)), hashOnlyOverheadPct: Number(threaded.hashOnlyPct.toFixed(2)), ...threaded.details },
  onnxTransformerFfn: { overheadPct: Number(ffn.overheadPct.toFixed(2)), hashOnlyOverheadPct: Number(ffn.hashOnlyPct.toFixed(2)), ...ffn.details },
  memory: { baselineRssMB, freshCopyMBps: copyMBps, sha256MBps: hashMBps },
  node: process.version,
  cpu: cpus()[0]?.model ?? "unknown",
  cpus: cpus().length,
  date: new Date().toISOString(),
};

console.table({
  jobsPerMinute: { value: report.jobsPerMinute, target: "", ok: "" },
  steadyJobsPerMinute: { value: report.steadyJobsPerMinute, target: "", ok: "" },
  overheadPct: { value: report.overheadPct, target: `<= ${TARGETS.overheadPct}`, ok: report.overheadPct <= TARGETS.overheadPct },
  hashOnlyOverheadPct: { value: report.hashOnlyOverheadPct, target: "", ok: "" },
  peakRssMB: { value: report.peakRssMB, target: "", ok: "" },
});
const d = jobs.details;
console.log(
  `${d.jobs} int-kernel jobs (${d.audited} audited) in ${(d.wallMs / 1000).toFixed(1)} s, ${d.rounds} rounds: provider ticks ${d.providerTickMs} ms ` +
    `(p50 ${d.providerTickP50Ms} ms), auditor ${d.auditorTickMs} ms, mining ${d.mineMs} ms, bookkeeping ${d.bookkeepingMs} ms; ` +
    `${d.challengeWindowSkips} challenge windows skipped (${d.chainSecondsSkipped} chain s)`,
);
console.log(
  `polling: one tick following ${polling.jobsFollowed} open jobs over an RPC ${polling.rpcLatencyMs} ms away: ${polling.tickMs} ms ` +
    `(${polling.requestsPerTick} requests, at most ${polling.mostRequestsInFlight} in flight; one at a time would take ${polling.oneAtATimeMs} ms)`,
);
const st = intKernelStall;
console.log(
  `${st.kernel} in one chunk: on the runtime thread ${st.onRuntimeThread.chunkMs} ms, the caller's event loop stalled at most ` +
    `${st.onRuntimeThread.longestStallMs} ms; on the caller's thread ${st.onCallersThread.chunkMs} ms, stalled ${st.onCallersThread.longestStallMs} ms; ` +
    `two such jobs at once: ${st.twoJobsAtOnce.oneRuntimeThreadMs} ms on one runtime thread, ${st.twoJobsAtOnce.twoRuntimeThreadsMs} ms on two`,
);
const o = overhead.details;
console.log(
  `ONNX ${o.model}: ${o.inputMiB} MiB in ${o.chunks} chunks on ${o.device}: compute ${o.computeMs} ms (load ${o.loadMs} ms besides), ` +
    `commitment ${o.commitmentMs} ms, verification ${o.verificationMs} ms, hashing alone ${o.hashOnlyMs} ms; ` +
    `into the node's blob directory ${o.commitmentToDiskMs} ms after the compute, or ${o.commitmentToDiskAfterComputeMs} ms after the last chunk stored as the worker does (compute meanwhile ${o.computeWhileStoringMs} ms)`,
);
const t = threaded.details;
console.log(
  `the same on the ONNX runtime thread (the worker's default): compute ${t.computeMs} ms (load ${t.loadMs} ms besides), ` +
    `commitment ${t.commitmentMs} ms, verification ${t.verificationMs} ms: ${threaded.overheadPct.toFixed(2)}%; ` +
    `into the blob directory ${t.commitmentToDiskMs} ms after, or ${t.commitmentToDiskAfterComputeMs} ms after the last chunk as the worker does (compute meanwhile ${t.computeWhileStoringMs} ms)`,
);
const light = (name: string, r: { overheadPct: number; details: { model: string; multiplyAddsPerOutputByte: number } }) =>
  console.log(`${name}: ${r.details.model}, ${r.details.multiplyAddsPerOutputByte} multiply-adds per output byte: ${r.overheadPct.toFixed(2)}%`);
light("onnxSmall", small);
light("onnx1024", heavier);
light("reference", overhead);
light("onnxTransformerFfn (comparison, not the reference)", ffn);
console.log(`${report.node} on ${report.cpu} (${report.cpus} CPUs)`);
writeFileSync(new URL("./worker.json", import.meta.url), JSON.stringify(report, null, 2) + "\n");
console.log("wrote bench/worker.json");
