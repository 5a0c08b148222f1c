/**
 * The worker daemon of a provider (PROTOCOL.md §4–§6): follows the chain with confirmations, claims the
 * jobs it can run at its prices within its concurrency and collateral limits (and, at the speed it has
 * measured for their program or model, within their compute window), fetches and verifies spec
 * and inputs, runs them, publishes canonical outputs and their Merkle commitment, commits (salt saved
 * first), follows the audit draw, reveals, settles; audits other providers' jobs blind; withdraws its
 * earnings on a schedule. Every step is idempotent: a restart resumes from the local state, and a poll
 * that fails (a dropped RPC) is retried on the next tick.
 *
 * Computations run in the background: the tick that finds a claimed job (or an audit to claim) starts
 * its computation (the sample's) and moves on, so later ticks keep committing, revealing and auditing
 * other jobs while it runs (ONNX chunks compute on the runtime's own thread; an integer-kernel chunk
 * holds this thread while it computes); a later tick commits or claims with the result. Transactions
 * are only sent from ticks, one at a time.
 *
 * @example
 * ```ts
 * const worker = new Worker({ mw, store, state: new WorkerState("data/worker.db"), runtimes, config, logger });
 * await worker.start();
 * ```
 */
import { randomBytes } from "node:crypto";
import { formatUnits, hexlify, solidityPackedKeccak256 } from "ethers";
import type { ContractTransactionReceipt, Interface } from "ethers";
import type { Logger } from "pino";
import { digestOf, normalizeDigest, type BlobStore, type DirectoryBlobStore, type PruneReport } from "../blob.js";
import type { Meshwork } from "../client.js";
import { MeshworkBlobError, MeshworkContractError, MeshworkEncodingError, MeshworkError, MeshworkRpcError, MeshworkValidationError, toMeshworkError } from "../errors.js";
import { splitChunks } from "../encoding.js";
import { JOB_STATES, type JobStateName, type SignedOffer } from "../jobs.js";
import { auditorCommitment, leafHash, MerkleTree, sha256 } from "../merkle.js";
import type { PostedPrices } from "../providers.js";
import { collateralOf, jobFromResult, storedCommitment, unpackRequirements, unpackTerms, unpackVerification, type JobRequestStruct, type JobStruct } from "../params.js";
import { ResultWriter, digestFromURI, type OutputManifest, manifestRoot } from "../results.js";
import { MAX_SPEC_BYTES, executableOf, parseJobSpecBytes, runtimeName, specHash, type BlobRef, type JobSpec } from "../spec.js";
import { BlobBudget } from "./blobBudget.js";
import { runtimeThreadsOf, type WorkerConfig } from "./config.js";
import { WorkerMetrics } from "./metrics.js";
import { SESSION_FAILED, type LoadedJob, type Runtime } from "./runtimes/runtime.js";
import { auditDataOf, type AuditData, type JobRow, type WorkerState } from "./state.js";

/** Test-only ways to cheat, to prove they are caught: never set outside tests and the demo. */
export type CheatMode = "fabricate" | "copy" | "late";

export interface WorkerOptions {
  /** Connected with the provider's signer. */
  mw: Meshwork;
  /** Where specs and inputs are fetched from and outputs stored (and served to consumers). */
  store: BlobStore;
  state: WorkerState;
  runtimes: Runtime[];
  config: Pick<WorkerConfig, "concurrency" | "maxCollateral" | "confirmations" | "pollMs" | "audit" | "maxBlobBytes" | "withdrawEverySec"> &
    Partial<Pick<WorkerConfig, "computeHeadroom" | "runtimeThreads">>;
  logger: Logger;
  metrics?: WorkerMetrics;
  cheat?: CheatMode;
  /**
   * This node's own blob directory (the local half of `store`), pruned every `everySec` (default
   * 3600) of the blobs unused for `keepSec`, except those of the jobs it still follows: see
   * {@link Worker.pruneBlobs}. With `maxBytes` (`maxBlobDirBytes`, 0: none), the directory's budget
   * (see {@link BlobBudget}): the blobs of a job not yet taken are fetched only when they fit, and
   * each prune also removes the least recently used blobs of jobs it did not take or finished until the
   * directory is within it. Without it, nothing is removed.
   */
  blobRetention?: { store: DirectoryBlobStore; keepSec: number; everySec?: number; maxBytes?: number };
  /**
   * A spec or program that cannot be fetched (missing from every source, a source down) is asked for
   * again after this long, doubling up to 15 minutes (default 30 s): never given up while its job is
   * open, and never fetched every tick.
   */
  unavailableRetryMs?: number;
  /**
   * How long a step that another party is due to take must have been possible before this node takes
   * it, plus a stagger of up to as long again drawn from this node's address and the job, counted from
   * when the chain made it possible: `blocks` for drawing another provider's audit (default 16: well
   * inside the 256 blocks its randomness lasts), `seconds` for timing out a claim this node does not
   * take over itself (default 30). The party acts first and, of the others, usually one, so nobody
   * pays gas for a transaction that reverts because another landed first. 0: at once.
   */
  othersGrace?: { blocks?: number; seconds?: number };
  /** How often this node's posted prices are read again (ms, default 15,000; 0: every time they are needed). */
  pricesEveryMs?: number;
}

/** Why a job was not taken: the reasons the rejection metric and log lines use. */
export class JobRejectedError extends MeshworkError {
  override name = "JobRejectedError";
  constructor(
    readonly reason: string,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(message, { details: { reason, ...details } });
  }
}

/** A job's record as the market returns it. */
type JobRecord = Awaited<ReturnType<Meshwork["context"]["contracts"]["market"]["jobRecord"]>>;

/** Most state reads a tick has in flight at once (many public RPCs cap a JSON-RPC batch near 50–100). */
const READ_BATCH = 50;
/** How old a tick's states may get before the jobs not yet stepped are read again (ms). */
const STALE_STATES_MS = 1_000;
const FINAL: ReadonlySet<JobStateName> = new Set(["Settled", "Slashed", "Refunded", "Cancelled"]);

export class Worker {
  readonly metrics: WorkerMetrics;
  readonly #o: WorkerOptions;
  readonly #log: Logger;
  #address = "";
  #timer?: ReturnType<typeof setTimeout>;
  /** Input checks before a claim, by spec hash: running, passed or failed for good (see #inputsChecked). */
  readonly #inputChecks = new Map<string, InputCheck>();
  #running = false;
  /** Set by stop(): computations end after their current chunk, to resume after a restart. */
  #stopping = false;
  #ticking?: Promise<void>;
  /** Specs whose spec or executable could not be fetched (or, `load`, loaded), by spec hash: not asked for before `retryAt`. */
  readonly #unavailable = new Map<string, { retryAt: number; delayMs: number; load?: boolean }>();
  /** What the last standing check found (whether the node may take jobs), and when. */
  readonly #standing: { checkedAt: number; active?: boolean } = { checkedAt: 0 };
  /** The latest block this tick, its number and time (read when first needed). */
  #latest?: Promise<{ number: bigint; time: bigint }>;
  /** This tick's send that found this node's transactions stuck (see {@link Worker.#sending}). */
  #stuck?: MeshworkRpcError;
  /** Computations running in the background (a provider's job, an audit's sample), by job id. */
  readonly #computing = new Map<string, Promise<void>>();
  /** An audit's or tie-break's sample leaves, computed in the background and not yet claimed with. */
  readonly #sampled = new Map<string, { kind: "audit" | "tieBreak"; sample: string; leaves: string[] }>();
  /** Jobs of this node whose dispute went to governance, told once per process (log and metric: a restart tells again). */
  readonly #escalated = new Set<string>();
  /** The job whose sample is being computed, if any. */
  #sampling?: string;
  #lastWithdraw = Date.now();
  /** This node's posted prices by payment token symbol, as last read (see #postedPrices). */
  #posted?: { at: number; prices: Record<string, PostedPrices> };
  /** Whether this process checked for transactions an earlier one left unmined (see #replacePending). */
  #pendingReplaced = false;
  /** When the blob directory was last pruned (0: at the first tick), and the prune running, if any. */
  #lastPrune = 0;
  /** When finished jobs were last forgotten (0: at the first tick). */
  #lastForget = 0;
  #pruning?: Promise<void>;
  /** The program or model and input digests of each spec read, by spec hash, for the prune's pins. */
  readonly #specBlobs = new Map<string, string[]>();
  /** The blob directory's budget, if it has one (see {@link WorkerOptions.blobRetention}). */
  readonly #budget?: BlobBudget;
  /**
   * The best measurement of each program or model (see {@link speedKey}): from its first chunk, timed
   * before its first claim, then every computation.
   */
  readonly #speeds = new Map<string, Speed>();
  /** The compute time (ms) expected of each job being computed, by job id (see #checkWindow). */
  readonly #expected = new Map<string, number>();
  /** First chunks being timed now (see #timeFirstChunk): each holds a runtime thread. */
  #timing = 0;
  /** Offers being prepared now (see {@link quote}). */
  #quoting = 0;

  constructor(options: WorkerOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.metrics = options.metrics ?? new WorkerMetrics();
    const retention = options.blobRetention;
    if (retention?.maxBytes) {
      this.#budget = new BlobBudget({
        store: retention.store,
        maxBytes: retention.maxBytes,
        pinned: async () => {
          const pinned = await this.#pinnedBlobs(retention.store, { checking: true });
          return this.#stopping ? undefined : pinned; // stopping: the pins may be incomplete
        },
      });
    }
    // The jobs an earlier run left claimed and unfinished: each is counted out when it ends.
    this.metrics.inFlight.set(options.state.inPhase("claimed", "failed", "computed", "committing", "committed", "revealed").length);
  }

  get address(): string {
    return this.#address;
  }

  /** Starts polling; resolves once the first tick ran. */
  async start(): Promise<void> {
    this.#address = await this.#o.mw.context.account("worker");
    this.#running = true;
    this.#stopping = false;
    this.#log.info({ provider: this.#address, runtimes: this.#o.runtimes.map((r) => r.name), resumed: this.#o.state.active().length }, "worker started");
    await this.tick();
    this.#schedule();
  }

  /**
   * Stops after the current tick; a computation running in the background stops after its current
   * chunk (the job stays claimed in the local state and is computed again after a restart).
   */
  async stop(): Promise<void> {
    this.#running = false;
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.idle();
    this.#log.info("worker stopped");
  }

  /** Resolves once no tick, no background computation, no input check and no prune is running. */
  async idle(): Promise<void> {
    const checking = () => [...this.#inputChecks.values()].filter((c) => !c.settled).map((c) => c.done);
    while (this.#ticking || this.#computing.size > 0 || checking().length > 0 || this.#pruning) {
      await Promise.all([this.#ticking, ...this.#computing.values(), ...checking(), this.#pruning]);
    }
  }

  /** The jobs whose computation is running in the background. */
  get computing(): string[] {
    return [...this.#computing.keys()];
  }

  #schedule() {
    if (!this.#running) return;
    this.#timer = setTimeout(async () => {
      await this.tick();
      this.#schedule();
    }, this.#o.config.pollMs);
  }

  /** One pass: read new jobs, then move every active job one step. Never throws. */
  async tick(): Promise<void> {
    if (this.#ticking) return this.#ticking;
    this.#ticking = (async () => {
      try {
        if (!this.#address) this.#address = await this.#o.mw.context.account("worker");
        if (!this.#pendingReplaced) await this.#replacePending();
        this.#latest = undefined;
        this.#stuck = undefined;
        await this.#checkStanding();
        // A lowered price puts the jobs turned down for theirs back; a failed read is tried again when a
        // job is considered (the jobs in hand move on meanwhile).
        await this.#postedPrices().catch(() => undefined);
        try {
          await this.#scan();
        } catch (error) {
          // New jobs wait; the jobs in hand still move (a commit or reveal has its deadline).
          this.metrics.rpcErrors.inc();
          this.#log.warn({ err: describe(error), range: this.#o.mw.context.logRange }, "reading new jobs failed; retrying next tick");
        }
        const active = this.#o.state.active();
        const ids = active.map((r) => r.jobId);
        let states = await this.#jobStates(ids);
        let readAt = Date.now();
        let first = 0; // the index of states[0] in ids
        for (const [i, { jobId }] of active.entries()) {
          // Re-read: a background computation may have moved the job on since the list was read.
          const row = this.#o.state.get(jobId);
          if (!row) continue;
          try {
            // A step that waited for a transaction (seconds on a live chain) makes the states read
            // together stale: the remaining jobs' are read again, together.
            if (Date.now() - readAt > STALE_STATES_MS) {
              states = await this.#jobStates(ids.slice(i));
              readAt = Date.now();
              first = i;
            }
            const state = states[i - first];
            if (state.status === "rejected") throw state.reason;
            await this.#step(row, state.value);
          } catch (error) {
            this.#onError(error, row);
          }
        }
        for (const jobId of this.#sampled.keys()) if (this.#o.state.get(jobId)?.phase === "done") this.#sampled.delete(jobId);
        await this.#maybeWithdraw();
      } catch (error) {
        this.metrics.rpcErrors.inc();
        this.#log.warn({ err: describe(error) }, "poll failed; retrying next tick");
      } finally {
        for (const [hash, { retryAt }] of this.#unavailable) if (Date.now() - retryAt > INPUT_CHECK_KEEP_MS) this.#unavailable.delete(hash); // its job gone
        for (const [key, check] of this.#inputChecks) {
          if (check.settledAt !== undefined && Date.now() - check.settledAt > INPUT_CHECK_KEEP_MS) this.#inputChecks.delete(key);
        }
        this.#maybePrune(); // also while the chain cannot be reached: the disk still fills
        this.#maybeForget();
        this.#ticking = undefined;
      }
    })();
    return this.#ticking;
  }

  /**
   * Once per process, before this node sends anything: transactions its key left unmined (sent by an
   * earlier run that stopped before they were mined, and unknown to this one, which could never reprice
   * them) are replaced (see MeshworkContext.replacePending), so this run's are not queued behind them.
   * Their steps are taken again: a claim, commit or reveal sent twice is refused, or found to have
   * landed. Tried again next tick when the RPC fails.
   */
  async #replacePending() {
    try {
      const nonces = await this.#o.mw.context.replacePending();
      this.#pendingReplaced = true;
      if (nonces.length > 0) this.#log.warn({ nonces }, "replaced transactions an earlier run left unmined; their steps are taken again");
    } catch (error) {
      this.metrics.rpcErrors.inc();
      this.#log.warn({ err: describe(error) }, "could not check for transactions an earlier run left unmined; trying again next tick");
    }
  }

  /**
   * Signs an offer for a consumer routing off-chain, if this worker would take the job at that price
   * and within its collateral limit (`maxCollateral`), for an expiry later than the chain's time and at
   * most {@link MAX_OFFER_SEC} after it: the market takes an offer until its expiry whatever this node's
   * prices, limits or state are by then, and the node cannot withdraw it (PROTOCOL.md §4: offers should
   * be short-lived). At most {@link MAX_QUOTES_AT_ONCE} at once: more are turned away (reason `busy`,
   * ask again shortly). Throws {@link JobRejectedError} (reason `expiry`, `busy`, or that of the job's check).
   */
  async quote(request: JobRequestStruct, consumer: string, expiry: bigint): Promise<SignedOffer> {
    if (this.#quoting >= MAX_QUOTES_AT_ONCE) {
      throw new JobRejectedError("busy", `${MAX_QUOTES_AT_ONCE} offers are being prepared already: ask again shortly`);
    }
    this.#quoting++;
    try {
      return await this.#quote(request, consumer, expiry);
    } finally {
      this.#quoting--;
    }
  }

  async #quote(request: JobRequestStruct, consumer: string, expiry: bigint): Promise<SignedOffer> {
    const { time } = await this.#o.mw.context.latestBlock("quote");
    if (expiry <= time || expiry > time + BigInt(MAX_OFFER_SEC)) {
      throw new JobRejectedError("expiry", `an offer's expiry must be after the chain's time and at most ${MAX_OFFER_SEC} s after it`, {
        expiry: String(expiry),
        chainTime: String(time),
      });
    }
    const { market } = this.#o.mw.context.contracts;
    const job: JobStruct = { consumer, request: { ...request, targetProvider: this.#address }, terms: BigInt(await market.currentTerms()) };
    await this.#evaluate(job, { targeted: true });
    return this.#o.mw.jobs.signOffer(job.request, consumer, expiry);
  }

  /* CHAIN FOLLOWING */

  async #scan() {
    const { market } = this.#o.mw.context.contracts;
    const provider = this.#o.mw.context.provider;
    const safe = (await provider.getBlockNumber()) - this.#o.config.confirmations;
    const next = Number(this.#o.state.getMeta("scannedTo") ?? this.#o.mw.book.deploymentBlock - 1) + 1;
    if (safe < next) return;
    // The last RESCAN_BLOCKS blocks read are read again (a job already seen is ignored): a load-balanced
    // RPC may answer the block number from one node and the log query from another behind it, which
    // returns nothing for the blocks it has not reached yet.
    const from = Math.max(this.#o.mw.book.deploymentBlock, next - RESCAN_BLOCKS);
    // Range by range (fewer blocks at once where the RPC refuses a range), each recorded as read.
    await this.#o.mw.context.logs(
      "scan",
      async (start, end) => {
        const logs = await market.queryFilter(market.filters.JobCreated(), start, end);
        for (const log of logs) this.#o.state.see(log.args.jobId, jobFromResult(log.args.job), log.blockNumber);
        this.#o.state.setMeta("scannedTo", String(Math.max(end, next - 1))); // the blocks read again never move it back
        return [];
      },
      from,
      safe,
    );
  }

  /**
   * The chain states of `jobIds`, READ_BATCH requests in flight at a time: over a remote RPC a tick
   * costs a few round trips, not one per job (ethers' JsonRpcProvider sends requests issued together
   * as one JSON-RPC batch). A failed read fails only its own job's step.
   */
  async #jobStates(jobIds: string[]): Promise<PromiseSettledResult<JobStateName>[]> {
    const { market } = this.#o.mw.context.contracts;
    const out: PromiseSettledResult<JobStateName>[] = [];
    for (let i = 0; i < jobIds.length; i += READ_BATCH) {
      const batch = jobIds.slice(i, i + READ_BATCH).map(async (id) => JOB_STATES[Number(await market.jobState(id))]);
      out.push(...(await Promise.allSettled(batch)));
    }
    return out;
  }

  async #step(row: JobRow, state: JobStateName) {
    // A job no longer Open is not for claiming any more: its input check, once ended, is dropped (one
    // that failed for good is kept while the job is Open, so its inputs are not fetched again).
    const checked = String(row.job.request.specHash);
    if (state !== "Open" && this.#inputChecks.get(checked)?.settled) this.#inputChecks.delete(checked);
    switch (row.phase) {
      case "seen":
        return this.#consider(row, state);
      case "rejected":
        // Not ours to run (price, token, spec …), but still ours to audit: auditors are not paid the price.
        if (FINAL.has(state)) return this.#o.state.update(row.jobId, { phase: "done", note: `rejected, then ${state}` });
        if (state === "Open" && (await this.#claimWindowPassed(row.job))) return this.#o.state.update(row.jobId, { phase: "done", note: "rejected, claim window passed" });
        if (state === "Committed" || state === "Audited" || state === "Disputed") return this.#considerAudit(row, state);
        return;
      case "claimed":
        return this.#startCompute(row, state);
      case "failed":
        return this.#followFailed(row, state);
      case "computed":
      case "committing":
        return this.#commit(row, state);
      case "committed":
      case "revealed":
        return this.#followProvider(row, state);
      case "auditing":
      case "audit-committed":
        return this.#followAudit(row, state);
    }
  }

  /* PROVIDER */

  async #consider(row: JobRow, state: JobStateName) {
    const { job } = row;
    const me = this.#address.toLowerCase();
    const consumer = job.consumer.toLowerCase();
    if (FINAL.has(state)) return this.#o.state.update(row.jobId, { phase: "done", note: state });
    if (consumer === me) return this.#o.state.update(row.jobId, { phase: "done", note: "own job" });
    /** Set when the job is Claimed by another provider past its commit deadline: the chain time it is overdue from. */
    let overdue: bigint | undefined;
    if (state !== "Open") {
      // A claim sent before a crash may have landed: then the job is ours to finish.
      const record = await this.#o.mw.context.contracts.market.jobRecord(row.jobId);
      if (state === "Claimed" && record.provider.toLowerCase() === me) {
        this.#o.state.update(row.jobId, { role: "provider", phase: "claimed", startedAt: Date.now() });
        this.metrics.inFlight.inc();
        this.#log.info({ jobId: row.jobId }, "resumed a claim that landed before a restart");
        return;
      }
      if (state === "Committed" || state === "Audited" || state === "Disputed") return this.#considerAudit(row, state, record);
      // Another provider sat on the job past its commit deadline: a claim times it out and takes its
      // place (this node's own step), below; a node that does not take the job pushes it back to the
      // market, after a grace (the consumer's SDK usually has by then).
      if (state !== "Claimed" || (await this.#chainTime()) <= BigInt(record.commitDeadline)) return;
      overdue = BigInt(record.commitDeadline) + 1n;
    }
    // Nobody may claim it any more (its consumer, or anyone, refunds it): not worth another look, but
    // for an overdue claim, which nobody may refund before it is timed out.
    if (await this.#claimWindowPassed(job)) {
      if (overdue !== undefined) return this.#timeOutOthers(row, overdue);
      return this.#o.state.update(row.jobId, { phase: "done", note: "claim window passed" });
    }
    // Concurrency bounds the jobs being computed; committed jobs waiting out a window only hold collateral.
    if (this.#o.state.inPhase("claimed", "computed", "committing").length >= this.#o.config.concurrency) {
      if (overdue !== undefined) await this.#timeOutOthers(row, overdue);
      return;
    }
    let spec: LoadedSpec;
    try {
      spec = await this.#evaluate(job, { targeted: false });
    } catch (error) {
      if (error instanceof JobRejectedError) {
        if (overdue !== undefined) await this.#timeOutOthers(row, overdue);
        // Our own limits change (concurrency, collateral): only permanent reasons end the job for us.
        const permanent = PERMANENT.has(error.reason);
        if (permanent) {
          this.metrics.jobsRejected.inc({ reason: error.reason });
          this.#o.state.update(row.jobId, { phase: "rejected", note: error.reason });
        }
        // An unavailable spec is worth a line when it was asked for (not when it was waiting to be).
        const loud = permanent || (error.reason === UNAVAILABLE && error.details.retryAt === undefined);
        this.#log[loud ? "info" : "debug"]({ jobId: row.jobId, ...error.details }, `not taking job: ${error.shortMessage}`);
        return;
      }
      throw error;
    }
    await this.#ensureFunds(job.request.paymentToken, collateralOf(job), "claim");
    const receipt = await this.#send("claim", () => this.#o.mw.context.contracts.market.claim(job));
    this.#o.state.update(row.jobId, { role: "provider", phase: "claimed", startedAt: Date.now(), claimTx: receipt.hash, claimBlock: receipt.blockNumber, claimBlockHash: receipt.blockHash });
    if (spec.expectedMs !== undefined) this.#expected.set(row.jobId, spec.expectedMs);
    this.#inputChecks.delete(String(job.request.specHash)); // the computation reads the inputs again (from the cache)
    this.metrics.jobsClaimed.inc();
    this.metrics.inFlight.inc();
    this.#log.info(
      { jobId: row.jobId, price: String(job.request.price), chunks: spec.spec.chunking.chunks, block: receipt.blockNumber, ...(overdue !== undefined ? { tookOverFromOverdueClaim: true } : {}) },
      "claimed job",
    );
  }

  /** Times out another provider's claim overdue since `since` (chain time), when it is this node's turn. */
  async #timeOutOthers(row: JobRow, since: bigint) {
    if (await this.#othersTurn("enforceDeadline", row, since)) await this.#enforce(row.job);
  }

  /**
   * Whether this worker will run `job`: its runtime, eligibility, price, collateral limit, and a spec and
   * inputs that are available, verified and within size. Throws {@link JobRejectedError}.
   */
  async #evaluate(job: JobStruct, options: { targeted: boolean }): Promise<LoadedSpec> {
    const { registry } = this.#o.mw.context.contracts;
    const r = job.request;
    if (!options.targeted && BigInt(r.targetProvider) !== 0n && String(r.targetProvider).toLowerCase() !== this.#address.toLowerCase()) {
      throw new JobRejectedError("target", "the job is for another provider", { targetProvider: String(r.targetProvider) });
    }
    const requirements = unpackRequirements(BigInt(r.requirements));
    const runtime = this.#o.runtimes.find((x) => x.id === requirements.runtime);
    if (!runtime) throw new JobRejectedError("runtime", `runtime ${runtimeName(requirements.runtime) ?? requirements.runtime} is not offered`);
    const symbol = this.#symbolOf(r.paymentToken);
    // The prices this node posted on-chain (what the market checks a claim against), a commons job's
    // commons price where it posted one.
    const posted = symbol === undefined ? undefined : (await this.#postedPrices())[symbol];
    const minPerUnit = requirements.commons && posted?.commons ? posted.commons : (posted?.usual ?? 0n);
    if (minPerUnit === 0n) throw new JobRejectedError("token", `this node posts no price for ${symbol ?? `token ${r.paymentToken}`}`);
    if (BigInt(r.price) < minPerUnit * BigInt(r.workUnits)) {
      throw new JobRejectedError("price", `price below this node's posted ${requirements.commons && posted?.commons ? "commons " : ""}price`, {
        price: String(r.price),
        minimum: String(minPerUnit * BigInt(r.workUnits)),
      });
    }
    const [eligibility] = await registry.checkEligibility(this.#address, r.paymentToken, r.requirements, r.price, r.workUnits, true);
    if (Number(eligibility) !== 0) throw new JobRejectedError("ineligible", `not eligible (reason ${eligibility})`, { eligibility: Number(eligibility) });
    const limit = this.#o.config.maxCollateral[symbol ?? ""];
    if (limit !== undefined) {
      const locked = this.#o.state
        .inPhase("claimed", "failed", "computed", "committing", "committed", "revealed")
        .filter((j) => j.job.request.paymentToken.toLowerCase() === String(r.paymentToken).toLowerCase())
        .reduce((sum, j) => sum + collateralOf(j.job), 0n);
      if (locked + collateralOf(job) > limit) throw new JobRejectedError("collateral", "collateral limit reached", { locked: String(locked) });
    }
    const loaded = await this.#loadSpec(job, runtime, { throttled: !options.targeted, notTaken: true });
    const specHash = String(job.request.specHash);
    // An executable new to this node is timed on a free runtime thread (see #timeFirstChunk): its check,
    // which loads it, waits for one.
    if (!this.#speeds.has(speedKey(loaded.spec, runtime)) && !this.#inputChecks.has(specHash) && this.#threadsBusy()) {
      throw new JobRejectedError("busy", "waiting for a free runtime thread to time its first chunk");
    }
    await this.#inputsChecked(loaded, specHash, options.targeted);
    const passed = this.#inputChecks.get(specHash);
    try {
      return { ...loaded, expectedMs: await this.#checkWindow(job, loaded) };
    } catch (error) {
      // Turned down for good after its check passed: the check no longer pins its blobs for the budget
      // (another job of the same spec checks them again, from the blob directory). Only that check: one
      // made meanwhile for the same spec is another job's.
      if (error instanceof JobRejectedError && PERMANENT.has(error.reason) && this.#inputChecks.get(specHash) === passed) this.#inputChecks.delete(specHash);
      throw error;
    }
  }

  /**
   * This node's posted prices per payment token (lower-case address): its usual one and its commons
   * one (0: none), read again after PRICES_EVERY_MS, so `prices` takes effect without a restart. When a
   * price went down, or one was posted where there was none (since the last read, in this run or an
   * earlier one: the prices are kept in the state), the jobs turned down for their price or token are
   * considered again.
   */
  async #postedPrices(): Promise<Record<string, PostedPrices>> {
    if (this.#posted && Date.now() - this.#posted.at < (this.#o.pricesEveryMs ?? PRICES_EVERY_MS)) return this.#posted.prices;
    const prices = await this.#o.mw.providers.postedPrices(this.#address);
    this.#posted = { at: Date.now(), prices };
    const json = JSON.stringify(prices, (_, v) => (typeof v === "bigint" ? String(v) : v));
    const saved = this.#o.state.getMeta(POSTED_PRICES_KEY);
    if (saved !== json) {
      const before = (saved ? JSON.parse(saved) : {}) as Record<string, { usual: string; commons: string } | undefined>;
      const lower = (now: bigint, then: string | undefined) => now !== 0n && (!then || now < BigInt(then));
      const cheaper = Object.entries(prices).some(([s, p]) => lower(p.usual, before[s]?.usual) || lower(p.commons, before[s]?.commons));
      this.#o.state.setMeta(POSTED_PRICES_KEY, json);
      const again = cheaper ? this.#o.state.reconsider(["price", "token"]) : 0;
      this.#log.info({ prices: JSON.parse(json), reconsidered: again }, "posted prices");
    }
    return prices;
  }

  /**
   * The job's expected compute time alone (ms): the executable's load plus its input bytes at the best
   * speed measured for it (see #speeds). Throws {@link JobRejectedError} "window" (for good) when that,
   * times `computeHeadroom`, does not fit its compute window less the commit's reserve (#commitReserveSec): a claimed job not
   * committed in time costs the timeout share of its collateral. "busy" (tried again) when it fits
   * alone, but it or one of the jobs being computed would not fit its own window while they all share
   * the runtime threads.
   */
  async #checkWindow(job: JobStruct, { spec, runtime }: LoadedSpec): Promise<number> {
    const speed = this.#speeds.get(speedKey(spec, runtime));
    if (!speed) {
      // Forgotten since the job's check (see SPEEDS_KEPT): checked again, its first chunk timed again.
      this.#inputChecks.delete(String(job.request.specHash));
      throw new JobRejectedError("fetching", "its first chunk is to be timed again");
    }
    const aloneMs = expectedOf(speed, inputBytes(spec));
    const headroom = this.#o.config.computeHeadroom ?? COMPUTE_HEADROOM;
    const reserveSec = this.#commitReserveSec();
    const fits = (ms: number, windowSec: number) => ms * headroom <= (windowSec - reserveSec) * 1000;
    const windowSec = Number(job.request.computeWindow);
    const details = { expectedSec: Number((aloneMs / 1000).toFixed(1)), computeWindowSec: windowSec, headroom };
    if (!fits(aloneMs, windowSec)) {
      throw new JobRejectedError("window", `expected to compute for ${details.expectedSec} s: ${headroom} × that is more than its ${windowSec} s compute window less ${reserveSec} s to commit`, details);
    }
    const computing = this.#o.state.inPhase("claimed");
    for (const id of this.#expected.keys()) if (!computing.some((r) => r.jobId === id)) this.#expected.delete(id); // no longer computed
    const share = Math.ceil((computing.length + this.#timing + 1) / this.#runtimeThreads());
    if (share === 1) return aloneMs;
    const jobs = [{ ms: aloneMs as number | undefined, windowSec }];
    for (const r of computing) jobs.push({ ms: await this.#expectedOf(r), windowSec: Number(r.job.request.computeWindow) });
    if (jobs.some((j) => j.ms !== undefined && !fits(j.ms * share, j.windowSec))) {
      throw new JobRejectedError("busy", `it or a job being computed would not be computed within its compute window while ${computing.length} other jobs compute`, { ...details, computing: computing.length });
    }
    return aloneMs;
  }

  /**
   * Seconds of a compute window kept for the commit: COMMIT_RESERVE_SEC, or the time a transaction is
   * waited for before it is sent again with higher fees, if longer (a commit may need one resend).
   */
  #commitReserveSec(): number {
    return Math.max(COMMIT_RESERVE_SEC, Math.ceil((this.#o.mw.context.sending.timeoutMs ?? 0) / 1000));
  }

  /**
   * The compute time expected of a job being computed (ms): as #checkWindow expected it at its claim,
   * else (a claim adopted: after a restart, or an offer's job) at the speed measured for its executable
   * since; undefined while none is.
   */
  async #expectedOf(row: JobRow): Promise<number | undefined> {
    const known = this.#expected.get(row.jobId);
    if (known !== undefined) return known;
    try {
      const spec = parseJobSpecBytes(await this.#o.store.get(String(row.job.request.specHash), { maxBytes: MAX_SPEC_BYTES }));
      const speed = this.#speeds.get(speedKey(spec, this.#runtimeOf(row.job)));
      if (speed) this.#expected.set(row.jobId, expectedOf(speed, inputBytes(spec)));
    } catch {
      // its spec unreadable now: not counted this time
    }
    return this.#expected.get(row.jobId);
  }

  #runtimeThreads(): number {
    return runtimeThreadsOf({ concurrency: this.#o.config.concurrency, runtimeThreads: this.#o.config.runtimeThreads });
  }

  /** Whether every runtime thread is taken by a job being computed or a first chunk being timed. */
  #threadsBusy(): boolean {
    return this.#o.state.inPhase("claimed").length + this.#timing >= this.#runtimeThreads();
  }

  /**
   * Books a measurement of `spec`'s executable, `bytes` of input computed on the device `loaded` ran on.
   * Of two on the same device, the one that would have taken less time for those bytes is kept (its
   * load and per-byte figures together); one on another device than before (a CUDA session that fell
   * back to the CPU) replaces it.
   */
  #noteSpeed(spec: JobSpec, runtime: Runtime, loaded: LoadedJob, loadMs: number, runMs: number, bytes: number) {
    const key = speedKey(spec, runtime);
    const known = this.#speeds.get(key);
    const measured: Speed = { device: (loaded as { device?: string }).device ?? "cpu", loadMs, msPerByte: runMs / Math.max(1, bytes) };
    const kept = known && known.device === measured.device && expectedOf(known, bytes) <= expectedOf(measured, bytes) ? known : measured;
    this.#speeds.delete(key); // re-inserted last: the oldest go first
    this.#speeds.set(key, kept);
    if (this.#speeds.size > SPEEDS_KEPT) this.#speeds.delete(this.#speeds.keys().next().value!);
  }

  /**
   * Resolves once the spec's inputs are checked (see {@link #checkInputs}); throws the check's
   * {@link JobRejectedError}. The check downloads in the background, at most INPUT_CHECKS at once: a
   * tick waits for it INPUT_CHECK_WAIT_MS at most (`wait`, for an offer a consumer asked for: until it
   * ends), then moves on to other jobs and finds it done on a later tick ("fetching", retried).
   */
  async #inputsChecked(loaded: LoadedSpec, key: string, wait: boolean): Promise<void> {
    let check = this.#inputChecks.get(key);
    if (!check) {
      const running = [...this.#inputChecks.values()].filter((c) => !c.settled).length;
      if (running >= INPUT_CHECKS && !wait) throw new JobRejectedError("fetching", "waiting to fetch its inputs: other jobs' are being fetched");
      const entry: InputCheck = { settled: false, done: Promise.resolve() };
      // Its spec's blobs noted again for the pins, which keep them while the check runs or has passed:
      // the room made for its program (see #loadSpec), before the check was here, forgot them (a spec
      // neither followed nor checked is dropped from the notes), and a job of an offer has no row to
      // read them from again.
      if (this.#o.blobRetention) this.#specBlobs.set(normalizeDigest(key), specBlobs(loaded.spec));
      entry.done = this.#checkInputs(loaded, key, !wait).then(
        () => void Object.assign(entry, { settled: true, settledAt: Date.now() }),
        (error: JobRejectedError) => void Object.assign(entry, { settled: true, settledAt: Date.now(), error }),
      );
      this.#inputChecks.set(key, (check = entry));
    }
    if (!check.settled) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = wait ? undefined : new Promise<void>((resolve) => (timer = setTimeout(resolve, INPUT_CHECK_WAIT_MS)));
      await Promise.race([check.done, ...(waited ? [waited] : [])]);
      clearTimeout(timer);
    }
    if (!check.settled) throw new JobRejectedError("fetching", "its inputs are being fetched");
    if (check.error) {
      if (!PERMANENT.has(check.error.reason)) this.#inputChecks.delete(key); // tried again next time
      throw check.error;
    }
  }

  /**
   * Before a claim, since a claimed job that cannot be computed ends in a timeout penalty: once the
   * blob directory's budget has room for its inputs ("disk" when it has not: tried again), loads the
   * program or model into its runtime, which checks it against the spec (a program that does not
   * parse, a model whose inputs the chunks are no whole rows of: "spec", for good; a model ONNX
   * Runtime cannot load — no ONNX, or out of memory now — or the runtime failing otherwise: tried again
   * after a delay, as a spec that cannot be fetched), then fetches every input, one at a time, and checks each is the
   * size its spec declares (the store checks its digest). A caching store keeps them for the
   * computation. Inputs that cannot be fetched now, or not within their declared size, are
   * "inputs-unavailable" (tried again); bytes, verified, shorter than declared are "blob" (for good: the
   * spec is wrong). A `stoppable` check ends early when the worker stops.
   */
  async #checkInputs({ spec, runtime, executable }: LoadedSpec, specHash: string, stoppable: boolean): Promise<void> {
    const executableName = spec.runtime === "onnx" ? "model" : "program";
    const refs = spec.inputs.kind === "chunks" ? spec.inputs.chunks : [spec.inputs.blob];
    // Room first: a job passed over for room ("disk") is checked again every tick until it fits, and
    // loading its program or model each time would hold the runtime thread the jobs taken compute on.
    const fetched = await this.#roomFor(refs, [specHash, executableOf(spec).digest]);
    try {
      try {
        await (await runtime.load(spec, executable)).close();
        this.#unavailable.delete(specHash);
      } catch (error) {
        throw this.#cannotRun(runtime, specHash, `load the job's ${executableName} now`, error);
      }
      await this.#fetchInputs(spec, refs, stoppable);
    } finally {
      fetched();
    }
    if (!this.#speeds.has(speedKey(spec, runtime))) await this.#timeFirstChunk({ spec, runtime, executable }, specHash, stoppable);
  }

  /** Fetches every input of `refs` for #checkInputs, one at a time (see there). */
  async #fetchInputs(spec: JobSpec, refs: readonly BlobRef[], stoppable: boolean) {
    for (const [i, ref] of refs.entries()) {
      if (stoppable && this.#stopping) throw new JobRejectedError("fetching", "stopping");
      try {
        await this.#fetchDeclared(ref, spec.inputs.kind === "chunks" ? i : undefined);
      } catch (error) {
        if (error instanceof MeshworkBlobError && error.details.reason === SIZE_MISMATCH) {
          throw new JobRejectedError("blob", "an input is not the size its spec declares", { cause: describe(error) });
        }
        // Longer than declared is not proof the spec is wrong (a source may serve junk): tried again,
        // each try costing at most the declared size.
        throw new JobRejectedError("inputs-unavailable", "an input cannot be fetched now", { cause: describe(error) });
      }
    }
  }

  /**
   * For a program or model new to this node (on the device the job would run on): runs the job's first
   * chunk, timed, for #checkWindow; the output is not kept. A chunk that took under WARM_RERUN_MS is
   * run a second time: the first run's extra (a session's warm-up, a GPU's above all) counts as load,
   * once per computation, not per byte. Only on a runtime thread no job being computed needs, so that
   * it neither slows a claimed job nor is timed while sharing a thread ("busy", tried again). A chunk
   * its runtime refuses is the spec's fault, as a load it refuses.
   */
  async #timeFirstChunk({ spec, runtime, executable }: LoadedSpec, specHash: string, stoppable: boolean) {
    if (this.#threadsBusy()) throw new JobRejectedError("busy", "waiting for a free runtime thread to time its first chunk");
    if (stoppable && this.#stopping) throw new JobRejectedError("fetching", "stopping");
    let loaded: LoadedJob | undefined;
    this.#timing++;
    try {
      const input = (await this.#inputs(spec, [0])).get(0)!; // fetched and verified above: from the blob directory
      const started = performance.now();
      loaded = await runtime.load(spec, executable);
      const first = performance.now();
      await loaded.run(input, 0);
      const second = performance.now();
      let runMs = second - first;
      if (runMs < WARM_RERUN_MS) {
        await loaded.run(input, 0);
        runMs = Math.min(runMs, performance.now() - second);
      }
      this.#noteSpeed(spec, runtime, loaded, second - started - runMs, runMs, input.length);
    } catch (error) {
      throw this.#cannotRun(runtime, specHash, `run the job's first chunk now`, error);
    } finally {
      this.#timing--;
      await loaded?.close().catch((error) => this.#log.debug({ err: describe(error) }, "closing a job timed before its claim failed"));
    }
  }

  /**
   * Why a job's runtime failed to load or run it: an executable it cannot run or a chunk whose output
   * cannot be encoded (NaN, out of the encoding's range: "spec", for good), or a failure that may pass
   * (no memory now, the session failed: asked for again after a delay).
   */
  #cannotRun(runtime: Runtime, specHash: string, what: string, error: unknown): JobRejectedError {
    if ((error instanceof MeshworkValidationError && error.details.reason !== SESSION_FAILED) || error instanceof MeshworkEncodingError) {
      return new JobRejectedError("spec", `the ${runtime.name} runtime cannot run the job: ${error.shortMessage}`, { cause: describe(error) });
    }
    return this.#markUnavailable(specHash, `the ${runtime.name} runtime cannot ${what}`, error, { load: true });
  }

  /**
   * Room in the blob directory's budget for the blobs of `refs` it does not hold yet (see
   * {@link BlobBudget}), before they are fetched for a job not yet taken; `keep`: the other blobs of
   * the same job. Resolves to the release to call once they are fetched (or not); throws
   * {@link JobRejectedError} "disk" (tried again later) when they do not fit.
   */
  async #roomFor(refs: readonly BlobRef[], keep: string[]): Promise<() => void> {
    if (!this.#budget) return () => undefined;
    const reservation = await this.#budget.reserve(refs, keep);
    const removed = reservation.removed;
    this.#madeRoom(removed);
    if (reservation.ok) return reservation.release;
    const { needed, used, maxBytes, retryAt } = reservation;
    // Told once per look (then no look before retryAt): the directory holds mostly the blobs of jobs it follows.
    if (removed) {
      this.metrics.blobDirFull.inc();
      this.#log.warn({ needed, used, maxBlobDirBytes: maxBytes }, "blob directory full: passing over jobs whose blobs do not fit in maxBlobDirBytes until some finish");
    }
    throw new JobRejectedError("disk", "its blobs do not fit in the blob directory's budget (maxBlobDirBytes)", {
      needed,
      used,
      maxBlobDirBytes: maxBytes,
      retryAt: new Date(retryAt).toISOString(),
    });
  }

  /** Books what the budget removed to make room, if it looked. */
  #madeRoom(removed: PruneReport | undefined) {
    if (!removed) return;
    this.metrics.blobsPruned.inc(removed.removed);
    this.metrics.blobBytes.set(removed.keptBytes);
    if (removed.removed > 0) this.#log.info({ ...removed, maxBlobDirBytes: this.#budget?.maxBytes }, "made room in the blob directory");
  }

  /**
   * The blob `ref` names, verified, read no further than its declared size and refused
   * ({@link SIZE_MISMATCH}) when shorter. The spec's sizes bound what a worker accepts (`maxBlobBytes`)
   * and where a runtime computes. @throws {MeshworkBlobError}
   */
  async #fetchDeclared(ref: BlobRef, chunk?: number): Promise<Uint8Array> {
    const bytes = await this.#o.store.get(ref.digest, { maxBytes: ref.size });
    if (bytes.length !== ref.size) {
      throw new MeshworkBlobError(`blob of ${bytes.length} bytes where the spec declares ${ref.size}`, {
        details: { reason: SIZE_MISMATCH, digest: ref.digest, declared: ref.size, size: bytes.length, ...(chunk === undefined ? {} : { chunk }) },
      });
    }
    return bytes;
  }

  /** Fetches and verifies the spec, its executable and its inputs. */
  async #loadSpec(job: JobStruct, runtime: Runtime, options: { throttled?: boolean; notTaken?: boolean } = {}): Promise<LoadedSpec> {
    const max = this.#o.config.maxBlobBytes;
    const hash = String(job.request.specHash);
    const unavailable = this.#unavailable.get(hash);
    // Only the scan of open jobs waits out the delay: a claimed job or an audit has a deadline running,
    // and a consumer asking for an offer has just published the spec.
    if (options.throttled && unavailable && Date.now() < unavailable.retryAt) {
      throw new JobRejectedError(UNAVAILABLE, "spec or program unavailable: asked for again later", { retryAt: new Date(unavailable.retryAt).toISOString() });
    }
    // Bytes that cannot be had now (missing from every source, a source down or serving other bytes)
    // are asked for again later; bytes that hash to the digest but are no spec are rejected for good.
    let bytes: Uint8Array;
    // Its size is known once it is here (up to MAX_SPEC_BYTES): counted then, room made if it took the directory over.
    const budgeted = options.notTaken && this.#budget && !(await this.#o.blobRetention!.store.has(hash));
    try {
      bytes = await this.#o.store.get(hash, { maxBytes: MAX_SPEC_BYTES });
    } catch (error) {
      throw this.#markUnavailable(hash, "spec cannot be fetched now", error);
    }
    if (budgeted) this.#madeRoom(await this.#budget!.landed(bytes.length, [hash]));
    let spec: JobSpec;
    try {
      spec = parseJobSpecBytes(bytes);
    } catch (error) {
      throw new JobRejectedError("spec", "spec malformed", { cause: describe(error) });
    }
    let canonical: string;
    try {
      canonical = specHash(spec); // throws for a canonical form over MAX_SPEC_BYTES (bare digests grow)
    } catch (error) {
      throw new JobRejectedError("spec", "the spec's canonical form is too long", { cause: describe(error) });
    }
    if (canonical.toLowerCase() !== String(job.request.specHash).toLowerCase()) {
      throw new JobRejectedError("spec", "the spec's canonical hash is not the job's specHash");
    }
    // Noted for the pins of the prune and the budget (trimmed to the jobs still followed at each prune).
    if (this.#o.blobRetention) this.#specBlobs.set(canonical, specBlobs(spec));
    if (spec.runtime !== runtime.name) throw new JobRejectedError("runtime", `the spec's runtime ${spec.runtime} is not the job's`);
    const verification = unpackVerification(BigInt(job.request.verification));
    if (verification.chunks !== spec.chunking.chunks) throw new JobRejectedError("spec", "the spec's chunking is not the job's");
    // Not built yet: computing it would publish in the clear what the consumer asked to be encrypted.
    if (spec.encryptTo) throw new JobRejectedError("spec", "the spec asks for encrypted outputs (encryptTo), which this worker does not produce");
    const exe = executableOf(spec);
    const sizes = [exe.size, ...(spec.inputs.kind === "chunks" ? spec.inputs.chunks.map((c) => c.size) : [spec.inputs.blob.size])];
    const total = sizes.reduce((a, b) => a + b, 0);
    if (sizes.some((s) => s > max) || total > 4 * max) throw new JobRejectedError("size", "input too large", { bytes: total, max });
    const fetched = options.notTaken ? await this.#roomFor([exe], [hash]) : undefined;
    try {
      const executable = await this.#fetchDeclared(exe).finally(fetched);
      // Fetched: no longer unavailable, unless it is its load that failed (which doubles its delay until it loads).
      if (!this.#unavailable.get(hash)?.load) this.#unavailable.delete(hash);
      return { spec, runtime, executable };
    } catch (error) {
      if (error instanceof MeshworkBlobError && error.details.reason === SIZE_MISMATCH) {
        throw new JobRejectedError("blob", "the executable is not the size its spec declares", { cause: describe(error) });
      }
      throw this.#markUnavailable(hash, "program or model cannot be fetched now", error);
    }
  }

  /**
   * Notes that `hash`'s spec or executable could not be fetched (or, with `load`, loaded): asked for
   * again after a delay, doubling. `problem`: what went wrong, e.g. "spec cannot be fetched now".
   */
  #markUnavailable(hash: string, problem: string, error: unknown, options: { load?: boolean } = {}): JobRejectedError {
    const first = this.#o.unavailableRetryMs ?? UNAVAILABLE_RETRY_MS;
    const before = this.#unavailable.get(hash);
    const delayMs = before ? Math.min(UNAVAILABLE_RETRY_MAX_MS, before.delayMs * 2) : first;
    this.#unavailable.set(hash, { retryAt: Date.now() + delayMs, delayMs, load: options.load });
    return new JobRejectedError(UNAVAILABLE, `${problem}: asked for again in ${Math.round(delayMs / 1000)} s`, { cause: describe(error) });
  }

  async #inputs(spec: JobSpec, indices?: number[]): Promise<Map<number, Uint8Array>> {
    const out = new Map<number, Uint8Array>();
    if (spec.inputs.kind === "chunks") {
      const wanted = indices ?? spec.inputs.chunks.map((_, i) => i);
      for (const i of wanted) out.set(i, await this.#fetchDeclared(spec.inputs.chunks[i], i));
    } else {
      const blob = await this.#fetchDeclared(spec.inputs.blob);
      const chunks = splitChunks(blob, spec.chunking.chunks, { elementBytes: spec.inputs.elementBytes });
      for (const i of indices ?? chunks.map((_, j) => j)) out.set(i, chunks[i]);
    }
    return out;
  }

  /**
   * Starts the job's computation in the background, unless it is running already, or its commit
   * deadline has passed (after a long downtime: not worth computing).
   */
  async #startCompute(row: JobRow, state: JobStateName) {
    // The row may be stale: a computation that ended while this tick awaited the chain moved it on.
    if (this.#computing.has(row.jobId) || this.#o.state.get(row.jobId)?.phase !== "claimed") return;
    if (state === "Claimed" && this.#o.cheat !== "late" && (await this.#commitTooLate(row))) return;
    if (this.#computing.has(row.jobId) || this.#o.state.get(row.jobId)?.phase !== "claimed") return; // moved on meanwhile
    this.#inBackground(row, this.#compute(row, state));
  }

  /** Runs `work` for `row`'s job in the background: `idle()` waits for it, its error is booked on the job's current row. */
  #inBackground(row: JobRow, work: Promise<unknown>, finished?: () => void) {
    const running = work
      .then(() => undefined)
      .catch((error) => this.#onError(error, this.#o.state.get(row.jobId) ?? row))
      .finally(() => {
        this.#computing.delete(row.jobId);
        finished?.();
      });
    this.#computing.set(row.jobId, running);
  }

  async #compute(row: JobRow, state: JobStateName) {
    if (state !== "Claimed") {
      if (state === "Open" && (await this.#claimDropped(row))) return;
      return (await this.#goneFromUs(row)) ? this.#lost(row, state) : undefined; // else stale: next tick
    }
    if (this.#o.cheat === "late") return; // test-only: never commits, to be timed out
    const runtime = this.#runtimeOf(row.job);
    const { spec, executable } = await this.#loadSpec(row.job, runtime);
    const started = performance.now();
    const inputs = await this.#inputs(spec);
    const loading = performance.now();
    let loaded: LoadedJob;
    try {
      loaded = await runtime.load(spec, executable);
    } catch (error) {
      return this.#failed(row, runtime, error);
    }
    const running = performance.now();
    // Each output chunk is stored (written, uploaded to the blob sources) while the next one computes.
    const writer = new ResultWriter(this.#o.store, row.jobId);
    let computed = false;
    try {
      for (let i = 0; i < spec.chunking.chunks; i++) {
        if (this.#stopping) {
          this.#log.info({ jobId: row.jobId, progress: `${i}/${spec.chunking.chunks}` }, "stopping: the computation starts again after a restart");
          return;
        }
        let output: Uint8Array;
        try {
          output = await loaded.run(inputs.get(i)!, i);
        } catch (error) {
          return this.#failed(row, runtime, error, i);
        }
        await writer.add(this.#o.cheat === "fabricate" ? new Uint8Array(randomBytes(output.length || 1)) : output);
        if ((i + 1) % Math.max(1, Math.floor(spec.chunking.chunks / 4)) === 0 || i + 1 === spec.chunking.chunks) {
          this.#log.info({ jobId: row.jobId, progress: `${i + 1}/${spec.chunking.chunks}` }, "computing");
        }
      }
      computed = true;
      this.#noteSpeed(spec, runtime, loaded, running - loading, performance.now() - running, inputBytes(spec));
    } finally {
      await loaded.close();
      if (!computed) await writer.settled(); // stopped or failed: nothing left storing behind it
    }
    this.metrics.computeDuration.observe((performance.now() - started) / 1000);
    // Input chunks listed in the spec were fetched by digest and verified: not hashed again.
    const inputDigests = spec.inputs.kind === "chunks" ? spec.inputs.chunks.map((c) => c.digest) : [...inputs.keys()].sort((a, b) => a - b).map((i) => digestOf(inputs.get(i)!));
    const { manifest, outputURI, root } = await writer.finish(inputDigests);
    if (this.#o.state.get(row.jobId)?.phase !== "claimed") return; // never step a job back
    this.#o.state.update(row.jobId, { phase: "computed", root, outputURI, data: JSON.stringify(manifest) });
    this.#log.info({ jobId: row.jobId, root, outputURI }, "computed and published");
  }

  /**
   * A claimed job's runtime failed: when the job itself is at fault (a chunk whose outputs cannot be
   * encoded — NaN, out of range — or an executable the runtime refuses), computing it again would fail
   * again, so the job is not computed again, never committed, and followed until it times out (the
   * timeout share of the collateral is lost either way: the market has no way to hand a claim back).
   * Anything else (out of memory, a session that failed) is thrown: tried again next tick.
   */
  #failed(row: JobRow, runtime: Runtime, error: unknown, chunk?: number): void {
    if (!((error instanceof MeshworkValidationError && error.details.reason !== SESSION_FAILED) || error instanceof MeshworkEncodingError)) throw error;
    if (this.#o.state.get(row.jobId)?.phase !== "claimed") return;
    this.metrics.jobsFailed.inc({ reason: "compute" });
    this.#o.state.update(row.jobId, { phase: "failed", note: `cannot compute: ${error.shortMessage}` });
    this.#log.error(
      { jobId: row.jobId, runtime: runtime.name, chunk, err: describe(error) },
      "the job cannot be computed (its own outputs or executable are invalid): not committed; it times out at its commit deadline",
    );
  }

  /** A job whose computation failed for good (see #failed): followed until it has left this node. */
  async #followFailed(row: JobRow, state: JobStateName) {
    if (state === "Claimed") {
      await this.#commitTooLate(row); // times it out once its commit deadline passed
      return;
    }
    if (await this.#goneFromUs(row)) await this.#lost(row, state);
  }

  /**
   * Whether this node's claim of a job it read as Open was dropped by a reorg: the RPC has another
   * block at the claim's height than the one the claim was mined in, and the claim's transaction in
   * no block. An RPC node that has not reached the claim yet (a stale read) has no block at that
   * height, and is not taken for one. Then the job is considered afresh, as one never claimed (a claim
   * mined again meanwhile is found ours, and adopted). Only before a salt exists: a commit may have
   * been sent.
   */
  async #claimDropped(row: JobRow): Promise<boolean> {
    const current = this.#o.state.get(row.jobId);
    if (!current?.claimTx || current.claimBlock === undefined || !current.claimBlockHash) return false;
    if (current.phase !== "claimed" && current.phase !== "computed") return false;
    const ctx = this.#o.mw.context;
    const [block, receipt] = await Promise.all([
      ctx.call("claim block", () => ctx.provider.getBlock(current.claimBlock!)),
      ctx.call("claim receipt", () => ctx.provider.getTransactionReceipt(current.claimTx!)),
    ]);
    if (!block || block.hash === current.claimBlockHash || receipt) return false;
    this.metrics.inFlight.dec();
    this.#o.state.update(row.jobId, {
      role: "none",
      phase: "seen",
      root: undefined,
      outputURI: undefined,
      data: undefined,
      claimTx: undefined,
      claimBlock: undefined,
      claimBlockHash: undefined,
      startedAt: undefined,
    });
    this.#log.warn({ jobId: row.jobId, claimTx: current.claimTx, claimBlock: current.claimBlock }, "the claim was dropped by a reorg: the job is Open again and considered afresh");
    return true;
  }

  async #commit(row: JobRow, state: JobStateName) {
    const { market } = this.#o.mw.context.contracts;
    if (state !== "Claimed") {
      // A commit sent before a crash may have landed: check it is ours.
      const record = await market.jobRecord(row.jobId);
      if (row.salt && state !== "Open" && !FINAL.has(state) && record.provider.toLowerCase() === this.#address.toLowerCase()) {
        const expected = await market.commitmentHash(row.jobId, this.#address, row.root!, row.salt);
        // The market keeps the commitment bound to its claimant, in 152 bits of the job's storage word.
        if (BigInt(record.commitment) === storedCommitment(expected, this.#address) || this.#o.cheat === "copy") {
          this.#o.state.update(row.jobId, { phase: "committed" });
          return;
        }
      }
      if (state === "Open" && (await this.#claimDropped(row))) return;
      if (!(await this.#goneFromUs(row))) return; // a stale read (a lagging RPC node): the next tick decides
      return this.#lost(row, state);
    }
    if (await this.#commitTooLate(row)) return;
    // The salt is durable before the commit is sent: a restart re-sends the same commitment.
    let salt = row.salt;
    if (!salt) {
      salt = hexlify(randomBytes(32));
      this.#o.state.update(row.jobId, { phase: "committing", salt });
    }
    const commitment =
      this.#o.cheat === "copy"
        ? hexlify(randomBytes(32)) // test-only: a commitment it cannot open (e.g. copied from another job)
        : await market.commitmentHash(row.jobId, this.#address, row.root!, salt);
    await this.#send("commit", () => market.commit(row.jobId, commitment));
    this.#o.state.update(row.jobId, { phase: "committed" });
    this.#log.info({ jobId: row.jobId }, "committed");
  }

  async #followProvider(row: JobRow, state: JobStateName) {
    const { market } = this.#o.mw.context.contracts;
    const job = row.job;
    if (FINAL.has(state)) return this.#finish(row, state);
    if (state === "Claimed") {
      // Claimed again after committing: a reorg took the commit's block. If the claim is still ours, the
      // saved commitment (same root, same salt) is sent again.
      const record = await market.jobRecord(row.jobId);
      if (JOB_STATES[Number(record.state)] !== "Claimed") return; // the state read was stale (a lagging RPC node)
      if (record.provider.toLowerCase() !== this.#address.toLowerCase()) return this.#lost(row, state);
      this.#log.warn({ jobId: row.jobId }, "the commit is no longer on-chain (a reorg?): committing again");
      this.#o.state.update(row.jobId, { phase: "committing" });
      return this.#commit({ ...row, phase: "committing" }, state);
    }
    if (state === "Committed") {
      // Draw as soon as the randomness exists (anyone may); an unaudited job then waits for its window.
      const refusal = await refusalOf(() => market.draw.staticCall(job), market.interface);
      if (refusal === undefined) await this.#send("draw", () => market.draw(job));
      else if (refusal === "JobMarketRandomnessNotReady" || refusal === "JobMarketDeadlinePassed") await this.#voidIfNeverDrawn(row, refusal);
      return;
    }
    if (state === "Revealing") {
      // The market leaves Revealing with the reveal (Settled or Disputed): still Revealing after this
      // node revealed, a reorg took the reveal's block (or the read was stale, when the call reverts).
      // The same openings are sent again before the auditor's deadline turns the missing reveal into fraud.
      const audit = await market.auditOf(job);
      const { leaves, proofs } = this.#openings(row, audit.sample.map(Number));
      const args = [job, this.#address, row.root!, row.salt!, row.outputURI!, leaves, proofs] as const;
      if (row.phase === "revealed") {
        if (!(await succeeds(() => market.revealResult.staticCall(...args)))) return this.#enforce(job);
        this.#log.warn({ jobId: row.jobId }, "the reveal is no longer on-chain (a reorg?): revealing again");
      }
      await this.#send("revealResult", () => market.revealResult(...args));
      this.#o.state.update(row.jobId, { phase: "revealed" });
      this.#log.info({ jobId: row.jobId, auditor: audit.auditor }, "revealed to the auditor");
      return;
    }
    if (state === "Challengeable") {
      if (await succeeds(() => market.settle.staticCall(job, this.#address, row.root!, row.salt!, row.outputURI!))) {
        await this.#send("settle", () => market.settle(job, this.#address, row.root!, row.salt!, row.outputURI!));
      }
      return;
    }
    if (state === "Escalated") await this.#noteEscalated(row);
    return this.#enforce(job); // Disputed, Escalated: others act; push expired deadlines
  }

  /**
   * Tells the operator, once, that a dispute this node takes part in went to governance: only a proposal
   * decides it now, before its deadline, else it ends as no fault (`meshwork gov escalations` shows the
   * evidence a voter needs; an operator holding MESH may vote).
   */
  async #noteEscalated(row: JobRow) {
    if (this.#escalated.has(row.jobId)) return;
    const audit = await this.#o.mw.context.contracts.market.auditOf(row.job);
    this.#escalated.add(row.jobId);
    this.metrics.escalations.inc({ role: row.role });
    const decideBy = new Date(Number(audit.deadline) * 1000).toISOString();
    const expired = Date.now() / 1000 > Number(audit.deadline);
    this.#log.warn(
      { jobId: row.jobId, role: row.role, decideBy },
      expired
        ? "the dispute went to governance and its deadline has passed: it ends as no fault (enforceDeadline)"
        : "the dispute went to governance: a proposal decides it before its deadline, else it ends as no fault (meshwork gov escalations)",
    );
  }

  /**
   * A job of this node nobody could draw: the market refused the draw because its randomness is still
   * Pending (a governed source that does not answer), or because the reveal window is over. Once that
   * window has closed the market voids the job (S back, no slash) when its governed source still answers
   * Pending or was replaced since the commit (a `RandomnessSourceSet` after the commit block): this node
   * asks for it, rather than leave its collateral locked until someone else does. Anything else past the
   * window is a missed reveal, which it never enforces on itself.
   */
  async #voidIfNeverDrawn(row: JobRow, refusal: string) {
    const { market } = this.#o.mw.context.contracts;
    const terms = unpackTerms(BigInt(row.job.terms));
    const [record, now] = await Promise.all([market.jobRecord(row.jobId), this.#chainTime()]);
    if (JOB_STATES[Number(record.state)] !== "Committed") return; // the state read was stale
    const revealBy = record.committedAt + BigInt(terms.challengeWindow + terms.revealWindow);
    if (now <= revealBy) return;
    if (refusal !== "JobMarketRandomnessNotReady") {
      if (!terms.externalRandomness) return;
      const replaced = await this.#logsSince("RandomnessSourceSet", Number(record.commitBlock) + 1, (from, to) => market.queryFilter(market.filters.RandomnessSourceSet(), from, to));
      if (replaced.length === 0) return;
    }
    this.#log.warn({ jobId: row.jobId, commitBlock: Number(record.commitBlock) }, refusal === "JobMarketRandomnessNotReady" ? "the audit draw's randomness never came: voiding the job (collateral back, no slash)" : "the randomness source was replaced since this job's commit and nobody drew it: voiding the job (collateral back, no slash)");
    await this.#enforce(row.job);
  }

  #openings(row: JobRow, sample: number[]): { leaves: string[]; proofs: string[][] } {
    const manifest = JSON.parse(row.data!) as OutputManifest;
    const tree = new MerkleTree(manifest.chunks.map((c, i) => leafHash(manifest.jobId, i, c.input, c.output)));
    if (manifestRoot(manifest) !== row.root && this.#o.cheat === undefined) throw new MeshworkError("local manifest does not match the committed root");
    return { leaves: sample.map((i) => tree.leaf(i)), proofs: sample.map((i) => tree.proof(i)) };
  }

  async #finish(row: JobRow, state: JobStateName) {
    const { market } = this.#o.mw.context.contracts;
    // A final job's record no longer names its provider: the settlement event does.
    const settled = state === "Settled" ? await this.#logsSince("JobSettled", row.createdBlock, (from, to) => market.queryFilter(market.filters.JobSettled(row.jobId), from, to)) : [];
    const mine = settled.some((e) => e.args.provider.toLowerCase() === this.#address.toLowerCase());
    if (mine) {
      this.metrics.jobsCompleted.inc();
      if (row.startedAt) this.metrics.jobDuration.observe((Date.now() - row.startedAt) / 1000);
      this.#log.info({ jobId: row.jobId }, "job settled: paid");
    }
    // Refunded with this node's collateral back (JobVoided): the draw's randomness never came.
    const voided =
      state === "Refunded" &&
      (await this.#logsSince("JobVoided", row.createdBlock, (from, to) => market.queryFilter(market.filters.JobVoided(row.jobId, this.#address), from, to))).length > 0;
    if (voided) {
      this.metrics.jobsFailed.inc({ reason: "voided" });
      this.#log.warn({ jobId: row.jobId, state }, "job voided: its audit draw was never possible; collateral back, no slash");
    } else if (!mine) {
      this.metrics.jobsFailed.inc({ reason: state.toLowerCase() });
      this.#log.warn({ jobId: row.jobId, state }, "job ended without pay");
    }
    this.metrics.inFlight.dec();
    this.#o.state.update(row.jobId, { phase: "done", note: voided ? "voided" : state });
  }

  /**
   * Whether the claimed job's commit deadline has passed (a commit would revert, every tick): then the
   * job is timed out here (anyone may; the rest of the collateral comes back) and let go, so that it
   * no longer holds a place within `concurrency`. A job another provider has claimed since (it took
   * the job over once the deadline passed, timing this node out) is let go too.
   */
  async #commitTooLate(row: JobRow): Promise<boolean> {
    const { market } = this.#o.mw.context.contracts;
    const [record, now] = await Promise.all([market.jobRecord(row.jobId), this.#chainTime()]);
    if (JOB_STATES[Number(record.state)] !== "Claimed") return false;
    if (record.provider.toLowerCase() !== this.#address.toLowerCase()) {
      await this.#lost(row, "Claimed");
      return true;
    }
    // Only a job still Claimed by us has a commit deadline (0 in the record otherwise: a commit that
    // landed since the state was read is no reason to let go). Strictly past: blocks may share a time.
    if (now <= BigInt(record.commitDeadline)) return false;
    this.#log.warn({ jobId: row.jobId, commitDeadline: String(record.commitDeadline) }, "the commit deadline has passed: the job times out");
    await this.#enforce(row.job);
    await this.#lost(row, "Claimed");
    return true;
  }

  /**
   * Whether a job this node claimed, and that a state read did not find Claimed by it, has really gone
   * from it, rather than the read being stale (a lagging or load-balanced RPC node answering from a
   * block before the claim, where the job was still Open). Read again here: a final state or another
   * provider's job is never an earlier state of a job this node claimed, so it has gone; one still
   * this node's (Claimed, or Committed by a commit that landed) has not; an Open job has gone only if
   * the market timed this node out on it (`JobTimedOut`, then the job reopened) or nobody may claim it
   * any more (its claimBy passed).
   */
  async #goneFromUs(row: JobRow): Promise<boolean> {
    const { market } = this.#o.mw.context.contracts;
    const record = await market.jobRecord(row.jobId);
    const recorded = JOB_STATES[Number(record.state)];
    if (recorded !== "Open") return FINAL.has(recorded) || record.provider.toLowerCase() !== this.#address.toLowerCase();
    if (await this.#claimWindowPassed(row.job)) return true;
    const timedOut = await this.#logsSince("JobTimedOut", row.createdBlock, (from, to) => market.queryFilter(market.filters.JobTimedOut(row.jobId, this.#address), from, to));
    return timedOut.length > 0;
  }

  /** The job moved on without us (timed out and reopened, or ended). */
  async #lost(row: JobRow, state: JobStateName) {
    const failed = this.#o.state.get(row.jobId)?.phase === "failed"; // counted when it failed
    if (!failed) this.metrics.jobsFailed.inc({ reason: "lost" });
    this.metrics.inFlight.dec();
    this.#log.warn({ jobId: row.jobId, state }, failed ? "the job that could not be computed has left this node" : "lost the job (deadline passed?)");
    this.#o.state.update(row.jobId, { phase: "done", note: failed ? `failed, then ${state}` : `lost in ${state}` });
  }

  /* AUDITOR */

  async #considerAudit(row: JobRow, state: JobStateName, known?: JobRecord) {
    if (!this.#o.config.audit) return;
    const { market } = this.#o.mw.context.contracts;
    const job = row.job;
    const record = known ?? (await market.jobRecord(row.jobId));
    if (record.provider.toLowerCase() === this.#address.toLowerCase()) return; // ours (tracked as provider)
    if (state === "Committed") {
      // The provider draws as soon as the randomness exists (the block after its commit's); an auditor
      // only when the provider has not (offline, or holding back a draw that could send its job to
      // audit), within the 256 blocks the randomness lasts.
      if (await this.#othersTurn("draw", row, BigInt(record.commitBlock) + 1n)) await this.#send("draw", () => market.draw(job));
      return;
    }
    const audit = await market.auditOf(job);
    const phase = Number(audit.phase);
    const runtime = this.#o.runtimes.find((x) => x.id === unpackRequirements(BigInt(job.request.requirements)).runtime);
    if (!runtime) return;
    const role = state === "Audited" && phase === 1 /* AwaitingAuditor */ ? "auditor" : state === "Disputed" && phase === 4 /* AwaitingTieBreaker */ ? "tieBreaker" : undefined;
    if (!role) return;
    const leaves = this.#sampledLeaves(row, runtime, role === "auditor" ? "audit" : "tieBreak", audit.sample.map(Number));
    if (!leaves) return; // computing in the background
    await this.#claimAudit(row, role, leaves, audit.sample.map(Number));
  }

  /**
   * Claims the audit (blind commitment to `leaves`) or the tie-break of `row`'s job, unless the market
   * would refuse it (ineligible, taken, past its deadline): then answers false. The leaves are saved
   * before the claim is sent, so the reveal can follow whenever it lands: after a crash, or after a
   * send given up on is mined later.
   */
  async #claimAudit(row: JobRow, role: "auditor" | "tieBreaker", leaves: string[], sample: number[] | undefined): Promise<boolean> {
    const { market } = this.#o.mw.context.contracts;
    const job = row.job;
    const commitment = auditorCommitment(row.jobId, this.#address, leaves);
    // An auditor and a tie-breaker lock the same collateral.
    const auditCollateral = (BigInt(job.request.price) * BigInt(unpackTerms(BigInt(job.terms)).auditCollateralBps)) / 10_000n;
    await this.#ensureFunds(job.request.paymentToken, auditCollateral, role === "auditor" ? "audit" : "tieBreak");
    const claim = () => (role === "auditor" ? market.audit(job, commitment) : market.tieBreak(job));
    if (await refused(() => (role === "auditor" ? market.audit.staticCall(job, commitment) : market.tieBreak.staticCall(job)))) return false;
    const saved: AuditData = { leaves, sample: sample?.join(",") };
    this.#o.state.update(row.jobId, { role, phase: "auditing", data: JSON.stringify(saved) });
    await this.#send(role === "auditor" ? "audit" : "tieBreak", claim);
    this.#sampled.delete(row.jobId);
    this.#o.state.update(row.jobId, { phase: "audit-committed" });
    if (role === "auditor") this.#log.info({ jobId: row.jobId }, "claimed audit (blind commitment)");
    else this.#log.info({ jobId: row.jobId }, "claimed tie-break");
    return true;
  }

  /**
   * The sample's leaves if a background computation has them; otherwise starts one (unless running)
   * and answers undefined, so the tick moves on and a later tick claims with them.
   */
  #sampledLeaves(row: JobRow, runtime: Runtime, kind: "audit" | "tieBreak", sample: number[]): string[] | undefined {
    const done = this.#sampled.get(row.jobId);
    if (done && done.kind === kind && done.sample === sample.join(",")) return done.leaves;
    // One sample at a time, as when they ran inside the tick: audits are not bounded by `concurrency`.
    if (this.#computing.has(row.jobId) || this.#sampling !== undefined) return undefined;
    this.#sampling = row.jobId;
    const work = this.#sampleLeaves(row, runtime, sample).then((leaves) => {
      if (leaves) this.#sampled.set(row.jobId, { kind, sample: sample.join(","), leaves });
    });
    this.#inBackground(row, work, () => (this.#sampling = undefined));
    return undefined;
  }

  /** Re-runs only the sampled chunks and returns their leaves. */
  /** Undefined when the worker stopped before the sample was done. */
  async #sampleLeaves(row: JobRow, runtime: Runtime, sample: number[]): Promise<string[] | undefined> {
    const { spec, executable } = await this.#loadSpec(row.job, runtime);
    const started = performance.now();
    const inputs = await this.#inputs(spec, [...new Set(sample)]);
    const loaded: LoadedJob = await runtime.load(spec, executable);
    const leaves: string[] = [];
    try {
      for (const i of sample) {
        if (this.#stopping) return undefined;
        const input = inputs.get(i)!;
        const output = await loaded.run(input, i);
        leaves.push(hexlify(leafHash(row.jobId, i, sha256(input), sha256(output))));
      }
    } finally {
      await loaded.close();
    }
    this.metrics.computeDuration.observe((performance.now() - started) / 1000);
    return leaves;
  }

  async #followAudit(row: JobRow, state: JobStateName) {
    const { market } = this.#o.mw.context.contracts;
    const job = row.job;
    const { leaves, sample: savedSample } = auditDataOf(row.data!);
    if (FINAL.has(state)) {
      const outcome = await this.#auditOutcome(row, state);
      this.metrics.audits.inc({ role: row.role, outcome });
      this.#log.info({ jobId: row.jobId, role: row.role, outcome }, "audit finished");
      this.#o.state.update(row.jobId, { phase: "done", note: `${state}: ${outcome}` });
      return;
    }
    if (row.phase === "auditing") {
      // The leaves were saved and the claim sent, and then the node crashed or the send was given up
      // on (it may still be mined, even later): did it land?
      const audit = await market.auditOf(job);
      const ours = (a: typeof audit) => [a.auditor, a.tieBreaker].some((x) => x.toLowerCase() === this.#address.toLowerCase());
      if (ours(audit)) return this.#o.state.update(row.jobId, { phase: "audit-committed" });
      const phase = Number(audit.phase);
      const open = row.role === "auditor" ? state === "Audited" && phase === 1 /* AwaitingAuditor */ : state === "Disputed" && phase === 4; /* AwaitingTieBreaker */
      const sample = audit.sample.map(Number);
      // Still to be had: claimed again with the saved leaves (a send given up on goes first; if it
      // lands, this claim is refused and the next tick finds the audit ours) — if they answer the
      // sample the market holds now (a new challenge draws a new one): else computed afresh, below.
      const same = savedSample === undefined || savedSample === sample.join(",");
      // (A row saved without its sample keeps it unknown.)
      if (open && same && (await this.#claimAudit(row, row.role as "auditor" | "tieBreaker", leaves, savedSample === undefined ? undefined : sample))) return;
      // Refused: taken — by the claim given up on, perhaps, mined meanwhile (an approval before this
      // claim waits for it) — or no longer to be had (its deadline passed, the node not eligible),
      // when the claim given up on would be refused too, and the job is considered afresh.
      if (ours(await market.auditOf(job))) return this.#o.state.update(row.jobId, { phase: "audit-committed" });
      this.#o.state.update(row.jobId, { phase: "seen", role: "none", data: undefined });
      return;
    }
    if (state === "Escalated") await this.#noteEscalated(row);
    const audit = await market.auditOf(job);
    const phase = Number(audit.phase);
    // The provider's revealed leaves are looked up (a log query over the job's blocks) only in the
    // phases that need them, not every tick of an audit waiting for the provider or for governance.
    const auditorRevealDue = row.role === "auditor" && phase === 3; /* AwaitingAuditorReveal */
    const tieBreakDue = row.role === "tieBreaker" && phase === 5; /* TieBreakerClaimed */
    const providerLeaves = auditorRevealDue || tieBreakDue ? await this.#providerLeaves(row.jobId) : undefined;
    if (auditorRevealDue && providerLeaves) {
      await this.#send("revealAudit", () => market.revealAudit(job, leaves, providerLeaves));
      this.#log.warn({ jobId: row.jobId, disputed: String(audit.disputed) }, "provider's leaves differ: revealed the audit");
      return;
    }
    if (tieBreakDue && providerLeaves) {
      const auditorLeaves = await this.#auditorLeaves(row.jobId);
      const disputed = BigInt(audit.disputed);
      const answer = leaves.filter((_, k) => (disputed >> BigInt(k)) & 1n);
      await this.#send("revealTieBreak", () => market.revealTieBreak(job, answer, providerLeaves, auditorLeaves));
      this.#log.info({ jobId: row.jobId }, "answered the tie-break");
      return;
    }
    await this.#enforce(job);
  }

  async #auditOutcome(row: JobRow, state: JobStateName): Promise<string> {
    const { market } = this.#o.mw.context.contracts;
    const logs = await this.#logsSince("AuditorSlashed", row.createdBlock, (from, to) => market.queryFilter(market.filters.AuditorSlashed(row.jobId), from, to));
    if (logs.some((l) => l.args.auditor.toLowerCase() === this.#address.toLowerCase())) return "slashed";
    return state === "Slashed" ? "fraud-caught" : "passed";
  }

  async #providerLeaves(jobId: string): Promise<string[] | undefined> {
    const { market } = this.#o.mw.context.contracts;
    const logs = await this.#logsSince("ResultRevealed", this.#o.state.get(jobId)?.createdBlock, (from, to) => market.queryFilter(market.filters.ResultRevealed(jobId), from, to));
    return logs.at(-1)?.args.leaves.map(String);
  }

  async #auditorLeaves(jobId: string): Promise<string[]> {
    const { market } = this.#o.mw.context.contracts;
    const logs = await this.#logsSince("AuditRevealed", this.#o.state.get(jobId)?.createdBlock, (from, to) => market.queryFilter(market.filters.AuditRevealed(jobId), from, to));
    return logs.at(-1)!.args.leaves.map(String);
  }

  /* HELPERS */

  /**
   * Every STANDING_EVERY_MS, whether this node may take jobs at all; says so in the log when that
   * changes (and at the first tick when it may not), so that an idle node tells its operator why.
   */
  async #checkStanding() {
    if (Date.now() - this.#standing.checkedAt < STANDING_EVERY_MS) return;
    const { registry } = this.#o.mw.context.contracts;
    let active: boolean, id: bigint, stake: { active: bigint; jailedUntil: bigint }, now: bigint;
    try {
      [active, id, stake, now] = await Promise.all([
        registry.isActive(this.#address),
        registry.idOf(this.#address),
        registry.stakeOf(this.#address),
        this.#chainTime(),
      ]);
    } catch {
      return; // asked again next tick; the jobs in hand move on meanwhile
    }
    this.#standing.checkedAt = Date.now();
    this.metrics.active.set(active ? 1 : 0);
    if (active === this.#standing.active) return;
    const first = this.#standing.active === undefined;
    this.#standing.active = active;
    if (active) {
      if (!first) this.#log.info({ provider: this.#address }, "this node may take jobs again");
      return;
    }
    const why =
      id === 0n
        ? "not registered (`register`)"
        : stake.jailedUntil > now
          ? `jailed until ${new Date(Number(stake.jailedUntil) * 1000).toISOString()}`
          : `active stake ${formatUnits(stake.active, 18)} MESH is under the minimum (\`stake\`)`;
    this.#log.warn({ provider: this.#address, why }, `this node takes no jobs: ${why}`);
  }

  /** The latest block's time, read once per tick. */
  async #chainTime(): Promise<bigint> {
    return (await this.#latestBlock()).time;
  }

  /** The latest block's number and time, read once per tick. */
  #latestBlock(): Promise<{ number: bigint; time: bigint }> {
    return (this.#latest ??= this.#o.mw.context.latestBlock("worker"));
  }

  /** Whether `job` can no longer be claimed: the latest block is at or past its claimBy (read once per tick). */
  async #claimWindowPassed(job: JobStruct): Promise<boolean> {
    return (await this.#chainTime()) >= BigInt(job.request.claimBy); // a claim lands in a later block
  }

  /** A job's events from its creation block on, read in ranges (RPCs cap a query's range). */
  #logsSince<T>(action: string, fromBlock: number | undefined, query: (from: number, to: number) => Promise<T[]>): Promise<T[]> {
    return this.#o.mw.context.logs(action, query, fromBlock ?? this.#o.mw.book.deploymentBlock);
  }

  /**
   * Whether this node takes `action` on a job another party is due to move: once the chain made it
   * possible at `since` (a block number for a draw, a time for a timeout, from the job's record, so
   * every node and every restart counts from the same point), plus the grace and this node's stagger
   * (see {@link WorkerOptions.othersGrace}), and its eth_call goes through.
   */
  async #othersTurn(action: "draw" | "enforceDeadline", row: JobRow, since: bigint): Promise<boolean> {
    const { market } = this.#o.mw.context.contracts;
    const inBlocks = action === "draw";
    const grace = BigInt(inBlocks ? (this.#o.othersGrace?.blocks ?? OTHERS_GRACE_BLOCKS) : (this.#o.othersGrace?.seconds ?? OTHERS_GRACE_SEC));
    const stagger = grace === 0n ? 0n : BigInt(solidityPackedKeccak256(["address", "bytes32"], [this.#address, row.jobId])) % grace;
    const latest = await this.#latestBlock();
    if ((inBlocks ? latest.number : latest.time) < since + grace + stagger) return false;
    return succeeds(() => market[action].staticCall(row.job));
  }

  async #enforce(job: JobStruct) {
    const { market } = this.#o.mw.context.contracts;
    if (await succeeds(() => market.enforceDeadline.staticCall(job))) await this.#send("enforceDeadline", () => market.enforceDeadline(job));
  }

  async #ensureFunds(token: string, amount: bigint, action: string) {
    const { market } = this.#o.mw.context.contracts;
    const balance = await market.balanceOf(token, this.#address);
    if (balance >= amount) return;
    // One approval of the operator's collateral budget for the token covers the claims after it.
    const budget = this.#o.config.maxCollateral[this.#symbolOf(token) ?? ""];
    await this.#sending(action, () => this.#o.mw.balances.ensureAllowance(String(token), amount - balance, action, { approve: budget }));
  }

  async #maybeWithdraw() {
    const every = this.#o.config.withdrawEverySec;
    const { market } = this.#o.mw.context.contracts;
    const tokens = Object.entries(this.#o.mw.book.contracts.paymentTokens);
    const balances = await Promise.all(tokens.map(([, token]) => market.balanceOf(token, this.#address)));
    for (const [i, [symbol]] of tokens.entries()) this.metrics.earnings.set({ token: symbol }, Number(balances[i]));
    // Not behind a transaction found stuck this tick: the withdrawal would only be held (until the next period).
    if (every === 0 || Date.now() - this.#lastWithdraw < every * 1000 || this.#stuck) return;
    const last = this.#lastWithdraw;
    this.#lastWithdraw = Date.now();
    // Keep what the in-flight jobs may need as collateral; withdraw the rest.
    for (const [symbol, token] of Object.entries(this.#o.mw.book.contracts.paymentTokens)) {
      const balance = await market.balanceOf(token, this.#address);
      const reserve = this.#o.config.maxCollateral[symbol] ?? 0n;
      if (balance > reserve) {
        try {
          await this.#send("withdraw", () => market.withdraw(token, balance - reserve, this.#address));
        } catch (error) {
          if (this.#stuck) this.#lastWithdraw = last; // behind a stuck transaction: tried again next tick
          throw error;
        }
        this.#log.info({ token: symbol, amount: String(balance - reserve) }, "withdrew earnings");
      }
    }
  }

  /** Starts a prune in the background when one is due (see {@link pruneBlobs}). */
  #maybePrune() {
    const retention = this.#o.blobRetention;
    if (!retention || (retention.keepSec === 0 && !this.#budget) || this.#pruning || this.#stopping) return;
    if (Date.now() - this.#lastPrune < (retention.everySec ?? 3600) * 1000) return;
    this.#lastPrune = Date.now();
    this.#pruning = this.pruneBlobs()
      .then(() => undefined)
      .catch((error) => void this.#log.warn({ err: describe(error) }, "pruning the blob directory failed; tried again later"))
      .finally(() => (this.#pruning = undefined));
  }

  /** Hourly: forgets the jobs finished more than DONE_KEEP_MS ago (see {@link WorkerState.forgetDone}). */
  #maybeForget() {
    if (Date.now() - this.#lastForget < FORGET_EVERY_MS) return;
    this.#lastForget = Date.now();
    try {
      const forgotten = this.#o.state.forgetDone(Date.now() - DONE_KEEP_MS);
      if (forgotten > 0) this.#log.debug({ forgotten }, "forgot jobs finished more than 30 days ago");
    } catch (error) {
      this.#log.warn({ err: describe(error) }, "forgetting finished jobs failed; tried again in an hour");
    }
  }

  /**
   * Removes from this node's blob directory ({@link WorkerOptions.blobRetention}) every blob unused for
   * `keepSec`, except those of the jobs this worker still follows (not `done` in its state: the spec,
   * the program or model and the inputs of each, and a provider's manifest and outputs), which stay
   * however old. What goes: inputs fetched to check jobs that others claimed first, and the blobs of
   * finished jobs, outputs included, once nobody has fetched them for `keepSec`; then, with a budget
   * (`maxBytes`), the least recently used of those until the directory is within it. Runs on its own every
   * `everySec` from the first tick; resolves to what it removed and kept (undefined without a
   * blob directory).
   */
  async pruneBlobs(): Promise<PruneReport | undefined> {
    const retention = this.#o.blobRetention;
    if (!retention) return undefined;
    const pinned = await this.#pinnedBlobs(retention.store);
    const stop = () => this.#stopping;
    const report = await retention.store.prune({
      unusedForMs: retention.keepSec === 0 ? Number.MAX_SAFE_INTEGER : retention.keepSec * 1000,
      keep: (digest) => pinned.has(digest),
      stop,
    });
    // The budget's pass goes through the budget: in turn with its reserves, keeping the blobs being
    // fetched and those of the checks running or passed (its own pins), then measuring what is left.
    const fitted = this.#stopping ? undefined : await this.#budget?.fit();
    if (fitted) {
      report.removed += fitted.removed;
      report.removedBytes += fitted.removedBytes;
      report.failed += fitted.failed;
      report.kept = fitted.kept;
      report.keptBytes = fitted.keptBytes;
    }
    this.metrics.blobBytes.set(report.keptBytes);
    this.metrics.blobsPruned.inc(report.removed);
    this.#log[report.removed > 0 ? "info" : "debug"]({ ...report, pinned: pinned.size }, "pruned the blob directory");
    return report;
  }

  /**
   * The digests of the blobs of the jobs this worker still follows (see {@link pruneBlobs}), and with
   * `checking` (the budget's), of the jobs whose checks are running or passed. A spec's
   * blobs were noted when it was read; after a restart, each spec is read once more from `local`.
   *
   * With `checking`, a job followed only as seen or turned down (`seen`, `rejected`: anyone's, which
   * its poster may leave open until its claimBy, or cancel, at no cost) pins nothing unless its audit
   * sample is being computed: its blobs are what the budget bounds. Pinned, they would take the
   * budget for good, and every job after them would be passed over ("disk").
   */
  async #pinnedBlobs(local: DirectoryBlobStore, options: { checking?: boolean } = {}): Promise<Set<string>> {
    const pinned = new Set<string>();
    /** The specs whose blobs stay noted; `pinnedSpecs`: those whose blobs are pinned. */
    const specs = new Set<string>();
    const pinnedSpecs = new Set<string>();
    for (const row of this.#o.state.active()) {
      if (this.#stopping) break; // what is not pinned is then not pruned either: prune stops too
      const hash = normalizeDigest(String(row.job.request.specHash));
      specs.add(hash);
      const untaken = (row.phase === "seen" || row.phase === "rejected") && !this.#computing.has(row.jobId);
      if (options.checking && untaken) continue;
      pinned.add(hash);
      try {
        if (row.outputURI) pinned.add(digestFromURI(row.outputURI));
        if (row.role === "provider" && row.data) {
          for (const chunk of (JSON.parse(row.data) as OutputManifest).chunks) pinned.add(normalizeDigest(chunk.output));
        }
      } catch (error) {
        this.#log.warn({ jobId: row.jobId, err: describe(error) }, "cannot read a job's outputs from the local state: not pinned");
      }
      if (pinnedSpecs.has(hash)) continue;
      pinnedSpecs.add(hash);
      let blobs = this.#specBlobs.get(hash);
      if (!blobs) {
        try {
          blobs = specBlobs(parseJobSpecBytes(await local.get(hash, { maxBytes: MAX_SPEC_BYTES })));
          this.#specBlobs.set(hash, blobs);
        } catch {
          continue; // not here (never fetched): nothing of it to keep
        }
      }
      for (const digest of blobs) pinned.add(digest);
    }
    // With `checking`, those of the jobs not yet taken whose checks are running or passed too: about to
    // be claimed (not kept from a prune by age: a check is forgotten within an hour, keepSec is longer).
    for (const [key, check] of this.#inputChecks) {
      if (check.error) continue;
      const hash = normalizeDigest(key);
      specs.add(hash); // its spec's blobs stay noted
      if (!options.checking) continue;
      pinned.add(hash);
      for (const digest of this.#specBlobs.get(hash) ?? []) pinned.add(digest);
    }
    if (!this.#stopping) for (const hash of this.#specBlobs.keys()) if (!specs.has(hash)) this.#specBlobs.delete(hash);
    return pinned;
  }

  async #send(action: string, send: () => Promise<import("ethers").ContractTransactionResponse>): Promise<ContractTransactionReceipt> {
    const receipt = await this.#sending(action, () => this.#o.mw.context.send(action, send));
    this.metrics.gasSpent.inc(Number(receipt.gasUsed * (receipt.gasPrice ?? 0n)));
    return receipt;
  }

  /**
   * Runs `send` (what sends this node's transactions), unless a send this tick found them stuck (one
   * given up on, still not mined): then the tick's other steps send nothing, since each would wait as
   * long again behind it, and are tried next tick.
   */
  async #sending<T>(action: string, send: () => Promise<T>): Promise<T> {
    if (this.#stuck) {
      throw new MeshworkRpcError(`${action}: not sent this tick, behind a transaction not mined (${this.#stuck.shortMessage})`, {
        cause: this.#stuck,
        details: { reason: "held", nonce: this.#stuck.details.nonce },
      });
    }
    try {
      return await send();
    } catch (error) {
      if (error instanceof MeshworkRpcError && (error.details.reason === "stuck" || error.details.reason === "given-up")) this.#stuck = error;
      throw error;
    }
  }

  #runtimeOf(job: JobStruct): Runtime {
    const id = unpackRequirements(BigInt(job.request.requirements)).runtime;
    const runtime = this.#o.runtimes.find((r) => r.id === id);
    if (!runtime) throw new JobRejectedError("runtime", `runtime ${id} is not offered`);
    return runtime;
  }

  #symbolOf(token: string): string | undefined {
    const t = String(token).toLowerCase();
    return Object.entries(this.#o.mw.book.contracts.paymentTokens).find(([, a]) => a.toLowerCase() === t)?.[0];
  }

  #onError(error: unknown, row: JobRow) {
    if (error instanceof JobRejectedError) {
      this.metrics.jobsRejected.inc({ reason: error.reason });
      this.#log.warn({ jobId: row.jobId, reason: error.reason }, error.shortMessage);
      if (row.phase === "seen") this.#o.state.update(row.jobId, { phase: "rejected", note: error.reason });
      return;
    }
    if (error instanceof MeshworkContractError) {
      // Someone was faster, or a deadline passed: the next tick re-reads the state.
      this.#log.info({ jobId: row.jobId, error: error.errorName }, `transaction reverted: ${error.errorName}`);
      return;
    }
    this.metrics.rpcErrors.inc();
    this.#log.warn({ jobId: row.jobId, err: describe(error) }, "step failed; retrying next tick");
  }
}

/** The longest an offer signed by {@link Worker.quote} may stay valid: seconds from the chain's time to its expiry. */
export const MAX_OFFER_SEC = 3600;
/**
 * The most offers {@link Worker.quote} prepares at once: each may download a job's program and inputs
 * and time its first chunk, so a flood of requests is turned away ("busy") rather than queued.
 */
export const MAX_QUOTES_AT_ONCE = 4;

/** `details.reason` of a blob, verified, of another size than its spec declares. */
const SIZE_MISMATCH = "size-mismatch";

interface LoadedSpec {
  spec: JobSpec;
  runtime: Runtime;
  executable: Uint8Array;
  /** Set by #evaluate: the compute time expected of the job alone (ms), see #checkWindow. */
  expectedMs?: number;
}

/** Rejections that do not change with time; the others (limits, eligibility) are re-tried. */
const PERMANENT = new Set(["runtime", "token", "price", "spec", "size", "blob", "target", "window"]);
/** Most input checks (downloads before a claim) running at once. */
const INPUT_CHECKS = 2;
/**
 * How long an input check's result is kept (ms). Results are dropped sooner when the job is claimed or
 * leaves Open; this bounds the ones no job ever drops (an offer's that no job came of).
 */
const INPUT_CHECK_KEEP_MS = 3_600_000;
/** Blocks already read that each scan for new jobs reads again (see #scan). */
const RESCAN_BLOCKS = 16;
/** How often the worker reads its posted prices again (ms), and where it keeps the last ones read. */
const PRICES_EVERY_MS = 15_000;
const POSTED_PRICES_KEY = "postedPrices";


/** How often the worker reads whether it may take jobs at all (registered, staked, not jailed). */
const STANDING_EVERY_MS = 5 * 60_000;
/** The rejection reason of a spec or executable that cannot be fetched now (tried again: not in PERMANENT). */
const UNAVAILABLE = "unavailable";
/** The first and the longest delay before a spec or executable that could not be fetched is asked for again. */
const UNAVAILABLE_RETRY_MS = 30_000;
const UNAVAILABLE_RETRY_MAX_MS = 15 * 60_000;
/** How long a finished job stays in the worker's database (for `status`), and how often older ones go. */
const DONE_KEEP_MS = 30 * 24 * 3600_000;
const FORGET_EVERY_MS = 3600_000;
/** The defaults of {@link WorkerOptions.othersGrace}. */
const OTHERS_GRACE_BLOCKS = 16;
const OTHERS_GRACE_SEC = 30;
/** How long a tick waits for a job's input check before going on with other jobs (ms). */
const INPUT_CHECK_WAIT_MS = 250;
/** The default of the config's `computeHeadroom`, and the seconds of a compute window kept for the commit (see #checkWindow). */
const COMPUTE_HEADROOM = 2;
const COMMIT_RESERVE_SEC = 30;
/** Most programs and models whose speed is kept (the least recently measured go first). */
const SPEEDS_KEPT = 1_000;
/** A first chunk timed before a claim that took less than this (ms) is run again (see #timeFirstChunk). */
const WARM_RERUN_MS = 10_000;

/** What a program or model took on this node: the device it ran on, its load (ms), and ms per input byte. */
interface Speed {
  device: string;
  loadMs: number;
  msPerByte: number;
}

/** The time (ms) `speed` expects of `bytes` of input, the load included. */
function expectedOf(speed: Speed, bytes: number): number {
  return speed.loadMs + speed.msPerByte * bytes;
}

/**
 * A program's or model's key in the speeds this node measured: its runtime, digest, and the job's
 * canonicalisation, which with the runtime's options decides the device (ONNX with `device` auto runs
 * `tolerance` jobs on CUDA, `exact` ones on the CPU); the speed names the device it was measured on.
 */
function speedKey(spec: JobSpec, runtime: Runtime): string {
  return `${runtime.name}:${executableOf(spec).digest}:${spec.output.canonicalisation}`;
}

/** The bytes of a spec's inputs, as it declares them. */
function inputBytes(spec: JobSpec): number {
  return spec.inputs.kind === "chunks" ? spec.inputs.chunks.reduce((n, c) => n + c.size, 0) : spec.inputs.blob.size;
}

/** The program or model and the input blobs a spec names. */
function specBlobs(spec: JobSpec): string[] {
  return [executableOf(spec).digest, ...(spec.inputs.kind === "chunks" ? spec.inputs.chunks.map((c) => c.digest) : [spec.inputs.blob.digest])];
}

interface InputCheck {
  settled: boolean;
  /** When it ended (ms): a result is kept INPUT_CHECK_KEEP_MS at most. */
  settledAt?: number;
  /** Settles (never rejects) when the check ends. */
  done: Promise<void>;
  error?: JobRejectedError;
}

/** Whether `call` (a static call) is refused; an RPC failure is thrown, not taken for a refusal. */
async function refused(call: () => Promise<unknown>): Promise<boolean> {
  return (await refusalOf(call)) !== undefined;
}

/**
 * The name of the market error a static call reverts with (`"unknown"` for another revert, or without
 * `iface`), or undefined when it succeeds; an RPC failure is thrown, not taken for a refusal.
 */
async function refusalOf(call: () => Promise<unknown>, iface?: Interface): Promise<string | undefined> {
  try {
    await call();
    return undefined;
  } catch (error) {
    const mapped = toMeshworkError(error, iface ? { JobMarket: iface } : {}, "static call");
    if (mapped instanceof MeshworkRpcError) throw error;
    return mapped instanceof MeshworkContractError ? mapped.errorName : "unknown";
  }
}

async function succeeds(call: () => Promise<unknown>): Promise<boolean> {
  try {
    await call();
    return true;
  } catch {
    return false;
  }
}

/**
 * An error in one line, for the log and the state's notes. An ethers error goes by its short message
 * (and the JSON-RPC error's own message, when the RPC gave one): its full message quotes the request's
 * URL, the RPC URL whose path or user part often holds the operator's API key.
 */
function describe(error: unknown): string {
  if (error instanceof MeshworkError) return error.shortMessage;
  if (!(error instanceof Error)) return String(error);
  const { shortMessage, error: rpc } = error as { shortMessage?: unknown; error?: { message?: unknown } };
  if (typeof shortMessage !== "string") return error.message;
  const said = typeof rpc?.message === "string" && !shortMessage.includes(rpc.message) ? `: ${rpc.message}` : "";
  return shortMessage + said;
}
