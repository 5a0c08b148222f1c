/**
 * Worker test fixture: the SDK fixture's deployment and providers (cheap, mid, dear, auditor), each
 * with a Worker in this process sharing one blob store, and a consumer that posts int-kernel and ONNX
 * jobs through the SDK. `drive` ticks every worker (waiting for the computations a tick starts) and
 * mines a block until a condition holds.
 */
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import pino from "pino";
import { digestOf, type BlobStore } from "../../sdk/src/blob.js";
import type { JobHandle, JobOptions } from "../../sdk/src/jobs.js";
import type { JobSpecInput } from "../../sdk/src/spec.js";
import { IntKernelRuntime, buildInt8MatmulProgram } from "../../sdk/src/worker/runtimes/intKernel.js";
import { OnnxRuntime } from "../../sdk/src/worker/runtimes/onnx.js";
import { buildDenseModel } from "../../sdk/src/worker/runtimes/onnxModel.js";
import type { Runtime } from "../../sdk/src/worker/runtimes/runtime.js";
import { WorkerState } from "../../sdk/src/worker/state.js";
import { Worker, type CheatMode, type WorkerOptions } from "../../sdk/src/worker/worker.js";
import { USD, type SdkWorld } from "../sdk/fixture.js";

export const K = 16;
export const N = 8;
export const ROWS = 32;
export const CHUNKS = 4;

/** Deterministic pseudo-random bytes. */
export function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export const runtimes: Runtime[] = [new IntKernelRuntime(), new OnnxRuntime()];

export function quietLogger() {
  return pino({ level: process.env.MESHWORK_TEST_LOG ?? "silent" });
}

export function makeWorker(
  w: SdkWorld,
  signer: HardhatEthersSigner,
  mw: Awaited<ReturnType<SdkWorld["sdk"]>>,
  options: {
    cheat?: CheatMode;
    state?: WorkerState;
    maxBlobBytes?: number;
    runtimes?: Runtime[];
    store?: BlobStore;
    blobRetention?: WorkerOptions["blobRetention"];
    unavailableRetryMs?: number;
    othersGrace?: WorkerOptions["othersGrace"];
    pricesEveryMs?: number;
    maxCollateral?: Record<string, bigint>;
    withdrawEverySec?: number;
    logger?: WorkerOptions["logger"];
    /** Config beyond the fixture's (e.g. computeHeadroom, runtimeThreads). */
    config?: Partial<WorkerOptions["config"]>;
  } = {},
): Worker {
  return new Worker({
    mw,
    store: options.store ?? w.store,
    blobRetention: options.blobRetention,
    state: options.state ?? new WorkerState(":memory:"),
    runtimes: options.runtimes ?? runtimes,
    config: {
      concurrency: 2,
      maxCollateral: options.maxCollateral ?? {},
      confirmations: 0,
      pollMs: 50,
      audit: true,
      maxBlobBytes: options.maxBlobBytes ?? 1 << 20,
      withdrawEverySec: options.withdrawEverySec ?? 0,
      runtimeThreads: 2, // as many as jobs at once, whatever this machine's CPUs: nothing waits for a thread
      ...options.config,
    },
    logger: options.logger ?? quietLogger().child({ worker: signer.address.slice(0, 8) }),
    cheat: options.cheat,
    unavailableRetryMs: options.unavailableRetryMs,
    othersGrace: options.othersGrace,
    pricesEveryMs: options.pricesEveryMs,
  });
}

/** Puts each input chunk into the shared store; the spec's chunk list. */
async function storedChunks(w: SdkWorld, inputs: Uint8Array[]) {
  const chunks = [];
  for (const input of inputs) chunks.push({ digest: await w.store.put(input), size: input.length });
  return chunks;
}

/** An int8 matmul job spec: ROWS×K int8 inputs in CHUNKS chunks, N outputs per row. */
export async function intKernelSpec(w: SdkWorld, seed = 1): Promise<JobSpecInput> {
  const program = buildInt8MatmulProgram({ k: K, n: N, weights: Int8Array.from(bytes(K * N, seed)), bias: new Int32Array(N).fill(7), shift: 2, relu: true });
  await w.store.put(program);
  const chunks = await storedChunks(w, Array.from({ length: CHUNKS }, (_, i) => bytes((ROWS / CHUNKS) * K, seed * 100 + i)));
  return {
    version: 1,
    runtime: "int-kernel",
    program: { digest: digestOf(program), size: program.length },
    inputs: { kind: "chunks", chunks },
    chunking: { chunks: CHUNKS },
    output: { encoding: "int32-le", canonicalisation: "exact" },
  };
}

/** A dense ONNX model job spec: float32 rows of 8 features, fixed-point outputs. */
export async function onnxSpec(w: SdkWorld, seed = 2): Promise<JobSpecInput> {
  const inFeatures = 8;
  const outFeatures = 4;
  const weights = Float32Array.from(bytes(inFeatures * outFeatures, seed), (b) => (b - 128) / 64);
  const model = buildDenseModel({ inFeatures, outFeatures, weights, bias: new Float32Array(outFeatures).fill(0.5), relu: true });
  await w.store.put(model);
  const rows = (i: number) => Float32Array.from(bytes(inFeatures * 4, seed * 10 + i), (b) => (b - 128) / 32);
  const chunks = await storedChunks(w, Array.from({ length: CHUNKS }, (_, i) => new Uint8Array(rows(i).buffer)));
  return {
    version: 1,
    runtime: "onnx",
    model: { digest: digestOf(model), size: model.length },
    inputs: { kind: "chunks", chunks },
    chunking: { chunks: CHUNKS },
    output: { encoding: "fixed-point", scaleBits: 16, canonicalisation: "tolerance" },
  };
}

export const JOB: Omit<JobOptions, "requirements"> = { token: "tUSD", price: 40n * USD, workUnits: 10n, verification: { chunks: CHUNKS, auditChunks: 2 } };

/** The sum of a worker's metric `name` over the series whose labels include `labels`. */
export async function counter(worker: Worker, name: string, labels?: Record<string, string>): Promise<number> {
  const metric = (await worker.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, string> }[];
  return values.filter((v) => !labels || Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((s, v) => s + v.value, 0);
}

/** Ticks every worker and mines a block, until `done()` or `rounds` rounds. */
export async function drive(w: SdkWorld, workers: Worker[], done: () => Promise<boolean>, rounds = 40, options: { finalTick?: boolean } = {}): Promise<number> {
  for (let round = 1; round <= rounds; round++) {
    for (const worker of workers) {
      await worker.tick();
      await worker.idle();
    }
    await w.networkHelpers.mine(1);
    if (await done().catch(() => false)) {
      // The test may be breaking the RPC on purpose (hence the catch); one more tick lets every worker
      // book the outcome.
      if (options.finalTick !== false) {
        for (const worker of workers) {
          await worker.tick();
          await worker.idle();
        }
      }
      return round;
    }
  }
  throw new Error(`not done after ${rounds} rounds`);
}

export async function settledOrFailed(handle: JobHandle): Promise<boolean> {
  await handle.refresh();
  return handle.done;
}
