/**
 * A worker's configuration (`meshwork-worker init` writes it as JSON; the daemon validates it with
 * zod on start).
 */
import { availableParallelism } from "node:os";
import { z } from "zod";
import { MeshworkValidationError } from "../errors.js";
import { MAX_SPEC_BYTES } from "../spec.js";

const bigintString = z
  .union([z.string().regex(/^\d+$/), z.number().int().nonnegative(), z.bigint()])
  .transform((v) => BigInt(v));

export const WorkerConfigSchema = z.strictObject({
  /** JSON-RPC endpoint of the chain. */
  rpcUrl: z.string().url(),
  /** Address book name (deployments/<network>.json) … */
  network: z.string().min(1).default("localhost"),
  /** … or its directory. */
  deploymentsDir: z.string().optional(),
  /** The encrypted keystore (ethers JSON wallet); its password comes from MESHWORK_PASSWORD_FILE or MESHWORK_PASSWORD (the CLI). */
  keystore: z.string().min(1),
  /** Where the worker keeps its database and blobs. */
  dataDir: z.string().min(1),
  /** The blob store: served on 127.0.0.1:`blobPort` from `<dataDir>/blobs`; others' blobs are fetched from `blobSources`. */
  blobPort: z.number().int().min(0).max(65535).default(8788),
  blobSources: z.array(z.string().url()).default([]),
  /** Prometheus metrics on 127.0.0.1:`metricsPort` (0 = off). */
  metricsPort: z.number().int().min(0).max(65535).default(9464),
  /** Jobs in flight at once (claimed, not settled). */
  concurrency: z.number().int().min(1).max(64).default(1),
  /**
   * Threads that compute chunks (the runtime threads), each running one job's chunk at a time; unset:
   * `concurrency`, but no more than the CPUs less one (one thread on a 2-CPU machine). Each keeps its
   * own copy of a model it runs.
   */
  runtimeThreads: z.number().int().min(1).max(64).optional(),
  /** Most collateral (smallest units) locked at once, per payment token symbol; unset = no limit. */
  maxCollateral: z.record(z.string(), bigintString).default({}),
  /**
   * A copy of the prices `prices` posted, per work unit per payment token symbol. The daemon goes by the
   * prices posted on-chain (what the market checks), read again every 15 s.
   */
  prices: z.record(z.string(), bigintString).default({}),
  /** Blocks to wait before acting on an event (reorg safety). */
  confirmations: z.number().int().min(0).max(64).default(1),
  /**
   * Seconds to wait for a sent transaction before sending it again, same nonce, fees raised by a
   * quarter (up to 3 times): a transaction dropped from the mempool or priced under a fee spike would
   * otherwise hold every job's next step. 0: wait as long as it takes. Default 180.
   */
  txTimeoutSec: z.number().int().min(0).max(3600).default(180),
  /** Poll interval, ms. */
  pollMs: z.number().int().min(50).max(60_000).default(2_000),
  /**
   * A job is claimed only if this many times its expected compute time, at the best speed this node
   * has measured for its program or model, fits its compute window (less 30 s for the commit). Default
   * 2: room for a machine that is slower at times (a GPU shared with a game, a hot CPU).
   */
  computeHeadroom: z.number().min(1).max(100).default(2),
  /** Take audits of other providers' jobs. */
  audit: z.boolean().default(true),
  /** Largest input or executable blob it will fetch, bytes. */
  maxBlobBytes: z.number().int().positive().default(256 * 1024 * 1024),
  /** Withdraw earnings every this many seconds (0 = never). */
  withdrawEverySec: z.number().int().min(0).default(3600),
  /**
   * Remove blobs from the blob directory once unused (not written, read or served) for this many
   * seconds, except those of jobs the worker still follows; 0 = no age limit (the budget,
   * `maxBlobDirBytes`, still removes blobs to make room). Default 7 days.
   */
  keepBlobsSec: z
    .number()
    .int()
    .min(0)
    .refine((s) => s === 0 || s >= 3600, "0 (no age limit) or at least 3600 (an hour)")
    .default(7 * 24 * 3600),
  /**
   * The most bytes the blob directory keeps; 0 = no budget. Before it fetches the program or inputs of
   * a job it has not taken, the worker makes room for them, removing the least recently used blobs of
   * jobs it did not take or finished, and passes the job over when they still do not fit. The hourly prune
   * keeps the directory within it as well. The blobs of jobs it took are never refused, so the
   * directory can go over by those. 0, or at least 4 × `maxBlobBytes` + 8 MiB: one job's program and
   * inputs (at most 4 × `maxBlobBytes` together) and its spec (at most 8 MiB, `MAX_SPEC_BYTES`).
   * Default 16 GiB.
   */
  maxBlobDirBytes: z.number().int().min(0).default(16 * 1024 ** 3),
  /** What `init` detected (informational; `register` reads it). */
  hardware: z.unknown().optional(),
  /** Runtimes to offer (default: every one detected). */
  runtimes: z.array(z.enum(["int-kernel", "onnx"])).optional(),
  /** ONNX runtime options (OnnxRuntimeOptions): where it computes, CPU threads per operator, its own thread. */
  onnx: z
    .strictObject({
      device: z.enum(["auto", "cpu", "cuda"]).optional(),
      intraOpNumThreads: z.number().int().min(0).max(256).optional(),
      thread: z.boolean().optional(),
    })
    .optional(),
}).superRefine(({ maxBlobDirBytes, maxBlobBytes }, ctx) => {
  const least = 4 * maxBlobBytes + MAX_SPEC_BYTES;
  if (maxBlobDirBytes !== 0 && maxBlobDirBytes < least) {
    ctx.addIssue({
      code: "custom",
      path: ["maxBlobDirBytes"],
      message: `0 (no budget) or at least 4 × maxBlobBytes + 8 MiB (${least}): room for one job's spec, program and inputs at their largest`,
    });
  }
});

export type WorkerConfig = z.output<typeof WorkerConfigSchema>;
export type WorkerConfigInput = z.input<typeof WorkerConfigSchema>;

/** The runtime threads a config asks for: `runtimeThreads`, else `concurrency` up to the CPUs less one (at least 1). */
export function runtimeThreadsOf(config: Pick<WorkerConfig, "runtimeThreads" | "concurrency">, cpus = availableParallelism()): number {
  return config.runtimeThreads ?? Math.max(1, Math.min(config.concurrency, cpus - 1));
}

/** @throws {MeshworkValidationError} with zod's issues. */
export function parseWorkerConfig(input: unknown): WorkerConfig {
  const parsed = WorkerConfigSchema.safeParse(input);
  if (!parsed.success) throw new MeshworkValidationError("worker config", parsed.error.issues);
  return parsed.data;
}
