/**
 * Jobs, for consumers: build and hash a spec, upload it, route, create (open market or a provider's
 * signed offer), and follow a job to its result with a {@link JobHandle}.
 */
import { randomBytes } from "node:crypto";
import { Contract, Interface, TypedDataEncoder, getAddress, getBytes, hexlify, recoverAddress } from "ethers";
import type { ContractTransactionReceipt, Log } from "ethers";
import { Balances } from "./balances.js";
import { digestOf, type BlobStore } from "./blob.js";
import type { MeshworkContext } from "./context.js";
import { splitChunks } from "./encoding.js";
import {
  MeshworkContractError,
  MeshworkError,
  MeshworkInsufficientFundsError,
  MeshworkJobFailedError,
  MeshworkRoutingError,
  MeshworkRpcError,
  MeshworkTimeoutError,
  MeshworkValidationError,
  MeshworkVerificationError,
  toMeshworkError,
} from "./errors.js";
import {
  hashJob,
  jobFromResult,
  offerTypedData,
  packRequirements,
  packVerification,
  unpackTerms,
  unpackVerification,
  type JobRequestStruct,
  type JobStruct,
  type Requirements,
  type Verification,
} from "./params.js";
import { Providers } from "./providers.js";
import { fetchResult, blobURI, type FetchResultOptions } from "./results.js";
import { rankCandidates, type Rejection, type RoutingCandidate, type RoutingCaps } from "./routing.js";
import { canonicalJson, getJobSpec, parseJobSpec, runtimeId, specHash, type JobSpec } from "./spec.js";

/** IJobMarketTypes.JobState, by name. */
export const JOB_STATES = [
  "None",
  "Open",
  "Claimed",
  "Committed",
  "Audited",
  "Revealing",
  "Challengeable",
  "Disputed",
  "Escalated",
  "Settled",
  "Slashed",
  "Refunded",
  "Cancelled",
] as const;
export type JobStateName = (typeof JOB_STATES)[number];

/** A job's lifecycle as a consumer sees it. */
export type JobEvent = { blockNumber: number; transactionHash: string } & (
  | { type: "queued" }
  | { type: "claimed"; provider: string }
  | { type: "committed" }
  | { type: "audited"; auditor: string }
  | { type: "revealed"; provider: string; resultRoot: string; outputURI: string }
  | { type: "challenged"; challenger: string }
  | { type: "disputed" }
  | { type: "settled"; provider: string; resultRoot: string; outputURI: string }
  | { type: "reopened"; previousProvider: string }
  /** `voided`: refunded because the audit draw was never possible (its randomness never came); nobody's fault. */
  | { type: "failed"; reason: "cancelled" | "refunded" | "voided" | "provider-slashed" | "reveal-missed" }
);
export type JobEventType = JobEvent["type"];

export interface JobOptions {
  /** Payment token symbol (from the address book) or address. */
  token: string;
  /** Total price of the job in the token's smallest unit. */
  price: bigint;
  /** Work units, for providers' posted price per unit. */
  workUnits: bigint;
  requirements?: Partial<Omit<Requirements, "commons">>;
  /** Chunks and audit sample size default to the spec's chunking. */
  verification?: Partial<Verification>;
  /** Latest claim time (unix seconds); default one hour after the latest block. */
  claimBy?: bigint;
  /** Claim → commit limit, seconds; default one hour. */
  computeWindow?: bigint;
  /** Only this provider may claim. */
  targetProvider?: string;
  nonce?: bigint;
  /**
   * `false` when the caller stored the spec's canonical JSON (`canonicalJson(spec)`, under its hash)
   * where workers fetch it; `prepare` then needs no blob store. Default: `prepare` stores it.
   */
  storeSpec?: boolean;
}

/** A provider's EIP-712 offer for one exact job (its id commits to the whole request). */
export interface SignedOffer {
  provider: string;
  request: JobRequestStruct;
  consumer: string;
  expiry: bigint;
  signature: string;
}

export interface PreparedJob {
  spec: JobSpec;
  specURI: string;
  request: JobRequestStruct;
}

export interface CostSummary {
  price: bigint;
  /** The protocol fee inside the price (price × feeBps of the job's terms). */
  fee: bigint;
  /** Native currency the consumer spent on gas through this handle. */
  gasCost: bigint;
  gasUsed: bigint;
  /** Whether the price came back (refunded, cancelled, provider slashed). */
  refunded: boolean;
}

const DEFAULT_VERIFICATION: Verification = { chunks: 16, auditChunks: 4, auditBps: 0 };
const DEFAULT_REQUIREMENTS: Requirements = { runtime: 0, minVramGB: 0, minGpuCount: 1, gpuClass: 0, region: "", renewableOnly: false };
const ZERO_ROOT = "0x" + "00".repeat(32);
const TERMINAL: ReadonlySet<JobEventType> = new Set(["settled", "failed"]);
/** How long `wait()` gives reading a finished job's events again, even at its deadline, ms. */
const RESCAN_GRACE_MS = 5_000;
/** What `enforceDeadline` reverts with when someone else enforced the deadline first. */
const ENFORCED_MEANWHILE: ReadonlySet<string> = new Set(["JobMarketNothingToEnforce", "JobMarketDeadlineNotReached", "JobMarketUnexpectedState"]);

export class Jobs {
  constructor(private readonly ctx: MeshworkContext) {}

  /**
   * Uploads input chunks to the blob store and returns the spec's `inputs` and `chunking` for them
   * (one blob per chunk).
   * @throws {MeshworkError} when no blob store is configured; {@link MeshworkBlobError} when it fails.
   * @example
   * ```ts
   * const { inputs, chunking } = await mw.jobs.upload([chunk0, chunk1]);
   * const spec = { version: 1, runtime: "int-kernel", program, inputs, chunking, output } as const;
   * ```
   */
  async upload(chunks: Uint8Array[]): Promise<{
    inputs: { kind: "chunks"; chunks: { digest: string; size: number }[] };
    chunking: { chunks: number };
  }> {
    const store = this.ctx.blobStore;
    if (!store) throw new MeshworkError("upload needs a blob store: pass blobStore to Meshwork.connect");
    const refs = [];
    for (const chunk of chunks) refs.push({ digest: await store.put(chunk), size: chunk.length });
    return { inputs: { kind: "chunks", chunks: refs }, chunking: { chunks: chunks.length } };
  }

  /**
   * Validates the spec, stores its canonical JSON in the blob store (its digest is the spec hash) and
   * builds the request. Nothing is sent. `claimBy` defaults to an hour after the latest block.
   * @throws {MeshworkValidationError} a malformed spec, with zod's issues.
   * @throws {MeshworkError} when no blob store is configured and `storeSpec` is not `false` (a job whose
   * spec no worker can fetch would be posted).
   * @throws {MeshworkBlobError} the blob store failed.
   * @throws {MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * const prepared = await mw.jobs.prepare(spec, { token: "tUSD", price: 10_000_000n, workUnits: 10n });
   * ```
   */
  async prepare(specInput: unknown, options: JobOptions): Promise<PreparedJob> {
    const spec = parseJobSpec(specInput);
    if (spec.encryptTo) {
      // The format is fixed (spec.ts), the encryption not built: no worker encrypts outputs yet, and
      // none takes such a job, rather than publish in the clear what was to be encrypted.
      throw new MeshworkValidationError("job spec", [
        { code: "custom", path: ["encryptTo"], message: "encrypted outputs are not supported yet: no worker produces them", input: spec.encryptTo } as never,
      ]);
    }
    const hash = specHash(spec);
    if (options.storeSpec !== false) {
      const store = this.ctx.blobStore;
      if (!store) {
        throw new MeshworkError("prepare needs a blob store to store the spec: pass blobStore to Meshwork.connect, or storeSpec: false if you stored it", {
          details: { specHash: hash },
        });
      }
      const digest = await store.put(new TextEncoder().encode(canonicalJson(spec)));
      if (digest !== hash) throw new MeshworkError("the blob store returned another digest for the spec", { details: { digest, hash } });
    }
    const chainNow = await this.ctx.chainTime("prepare");
    const verification = { ...DEFAULT_VERIFICATION, chunks: spec.chunking.chunks, ...options.verification };
    if (options.price <= 0n) throw new MeshworkValidationError("job options", [{ code: "custom", path: ["price"], message: "must be positive", input: options.price } as never]);
    const request: JobRequestStruct = {
      paymentToken: this.ctx.token(options.token),
      price: options.price,
      workUnits: options.workUnits,
      specHash: hash,
      requirements: packRequirements({ ...DEFAULT_REQUIREMENTS, runtime: runtimeId(spec.runtime), ...options.requirements }),
      verification: packVerification({ ...verification, auditChunks: Math.min(verification.auditChunks, verification.chunks) }),
      claimBy: options.claimBy ?? chainNow + 3600n,
      computeWindow: options.computeWindow ?? 3600n,
      targetProvider: options.targetProvider ?? "0x0000000000000000000000000000000000000000",
      nonce: options.nonce ?? BigInt(hexlify(randomBytes(8))),
    };
    return { spec, specURI: blobURI(hash), request };
  }

  /**
   * Creates an open-market job: escrows the price (internal balance first, then by `transferFrom`,
   * approving exactly what is needed) and returns its handle. Before approving, the job is simulated,
   * so a job the market refuses leaves no allowance behind.
   * @throws {MeshworkValidationError} a malformed spec or options.
   * @throws {MeshworkContractError} e.g. `JobMarketTokenNotAllowed`, `JobMarketInvalidRequest(field)`,
   * `JobMarketComputeWindowOutOfBounds`, `JobMarketPaused(until)` (all found before approving anything).
   * @throws {MeshworkInsufficientFundsError} market balance plus wallet below the price (nothing sent).
   * @example
   * ```ts
   * const job = await mw.jobs.create(spec, { token: "tUSD", price: 10_000_000n, workUnits: 10n });
   * const { outputURI } = await job.wait();
   * ```
   */
  async create(specOrPrepared: unknown, options?: JobOptions): Promise<JobHandle> {
    const prepared = isPrepared(specOrPrepared) ? specOrPrepared : await this.prepare(specOrPrepared, required(options));
    const { request, specURI } = prepared;
    const { market } = this.ctx.contracts;
    const handle = await this.#send(request, "createJob", {
      simulate: () => market.createJob.staticCall(request, specURI),
      send: () => market.createJob(request, specURI),
    });
    handle.spec = prepared.spec;
    return handle;
  }

  /**
   * Creates a job from a provider's signed offer and assigns it at once (escrowing the price as
   * {@link Jobs.create} does, simulated before approving anything).
   * @throws {MeshworkContractError} `JobMarketOfferExpired(jobId, expiry)`, `JobMarketInvalidSignature`,
   * `JobMarketIneligible(jobId, provider, reason)` (all found before approving anything).
   * @example
   * ```ts
   * const { best } = await mw.jobs.route(prepared, { maxPrice: 20_000_000n, offers });
   * const job = await mw.jobs.createWithOffer(best.offer!);
   * ```
   */
  async createWithOffer(offer: SignedOffer, specURI?: string): Promise<JobHandle> {
    const uri = specURI ?? blobURI(offer.request.specHash);
    const { market } = this.ctx.contracts;
    return this.#send(offer.request, "createJobWithOffer", {
      simulate: () => market.createJobWithOffer.staticCall(offer.request, uri, offer.expiry, offer.signature),
      send: () => market.createJobWithOffer(offer.request, uri, offer.expiry, offer.signature),
    });
  }

  /**
   * A provider signs an offer for `request` (with itself as `targetProvider`) from `consumer`: what a
   * worker answers a quote request with.
   * @example
   * ```ts
   * const offer = await providerSdk.jobs.signOffer({ ...prepared.request, price: quote }, consumer, expiry);
   * ```
   */
  async signOffer(request: JobRequestStruct, consumer: string, expiry: bigint): Promise<SignedOffer> {
    const signer = this.ctx.signer("signOffer");
    const provider = await signer.getAddress();
    const targeted = { ...request, targetProvider: provider };
    const job = await this.#jobOf(consumer, targeted);
    const { domain, types } = offerTypedData(this.ctx.chainId, this.ctx.book.contracts.market);
    const signature = await signer.signTypedData(domain, types, { jobId: hashJob(job), expiry });
    return { provider, request: targeted, consumer, expiry, signature };
  }

  /**
   * Ranks candidates for `prepared` within `caps`: the given signed offers, or (without offers) every
   * provider's posted price × work units. Each is checked on-chain (`checkEligibility`, for the prepared
   * request); an offer is a candidate only if its signature (checked as the market checks it: a
   * smart-contract wallet's through ERC-1271 `isValidSignature`), target and expiry are right, it is
   * for the connected signer (when there is one), and its request is `prepared.request` in everything
   * but the price (capped by `maxPrice`) and the target — otherwise it is rejected as ineligible with
   * {@link INVALID_OFFER}. `best.offer` is set when routing offers; otherwise create the job with
   * `targetProvider: best.provider` and `price: best.price`, or leave it open at that price.
   * @throws {MeshworkRoutingError} when nothing eligible is left within the caps.
   * @throws {MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * const { best } = await mw.jobs.route(prepared, { maxPrice: 20_000_000n, renewableOnly: true });
   * ```
   */
  async route(
    prepared: PreparedJob,
    caps: RoutingCaps & { offers?: SignedOffer[] },
  ): Promise<{ best: RouteCandidate; ranked: RouteCandidate[]; rejected: Rejection<RouteCandidate>[] }> {
    const candidates = caps.offers ? await this.#offerCandidates(prepared, caps.offers) : await this.#postedCandidates(prepared);
    const { ranked, rejected } = rankCandidates(candidates, caps);
    if (ranked.length === 0) {
      throw new MeshworkRoutingError("no eligible provider within the caps", {
        details: { candidates: candidates.length, rejected: rejected.map((r) => `${r.candidate.provider}: ${r.reason}`).join("; ") },
      });
    }
    return { best: ranked[0], ranked, rejected };
  }

  /**
   * A handle for an existing job, from its id (found through its `JobCreated` event, read in block
   * ranges so it works against public RPCs).
   * @throws {MeshworkError} when no such job was created since the deployment block.
   * @throws {MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * const job = await mw.jobs.get("0x1234…");
   * console.log(await job.state());
   * ```
   */
  async get(jobId: string): Promise<JobHandle> {
    const { market } = this.ctx.contracts;
    const logs = await this.ctx.logs("find JobCreated", (from, to) => market.queryFilter(market.filters.JobCreated(jobId), from, to));
    const created = logs[0];
    if (!created) throw new MeshworkError(`no job ${jobId} on this market`, { details: { jobId } });
    return new JobHandle(this.ctx, jobId, jobFromResult(created.args.job), created.blockNumber);
  }

  /**
   * Escrows the price (internal balance first, then by `transferFrom`) and sends the transaction. When
   * the balance falls short, the transaction is simulated before approving the rest: a job the market
   * refuses (its own `JobMarket…` error, raised before it collects the price) throws that error and
   * leaves no allowance behind; only the token refusing to transfer without the approval goes on.
   */
  async #send(
    request: JobRequestStruct,
    action: string,
    tx: { simulate: () => Promise<unknown>; send: () => ReturnType<MeshworkContext["contracts"]["market"]["createJob"]> },
  ) {
    const consumer = await this.ctx.account(action);
    const available = await this.ctx.call(action, () => this.ctx.contracts.market.balanceOf(request.paymentToken, consumer));
    if (available < request.price) {
      // Checked before anything is sent, so a consumer short of funds spends no gas on an approval.
      const wallet = await this.ctx.call(action, () =>
        new Contract(String(request.paymentToken), ["function balanceOf(address) view returns (uint256)"], this.ctx.runner).balanceOf(consumer) as Promise<bigint>,
      );
      if (available + wallet < BigInt(request.price)) {
        throw new MeshworkInsufficientFundsError(String(request.paymentToken), BigInt(request.price), available + wallet);
      }
      await this.#expectAccepted(action, tx.simulate);
      await new Balances(this.ctx).ensureAllowance(request.paymentToken, request.price - available, action);
    }
    const receipt = await this.ctx.send(action, tx.send);
    const { market } = this.ctx.contracts;
    for (const log of receipt.logs) {
      const parsed = safeParse(market.interface, log);
      if (parsed?.name === "JobCreated") {
        const handle = new JobHandle(this.ctx, parsed.args.jobId, jobFromResult(parsed.args.job), receipt.blockNumber);
        handle.track(receipt);
        return handle;
      }
    }
    throw new MeshworkError(`${action}: no JobCreated event in the receipt`);
  }

  /**
   * Throws what the market reverts with when it refuses the job itself (paused, a token not allowed, an
   * invalid request, a compute window out of bounds, an offer expired or badly signed, an ineligible
   * provider): the market checks all that before it collects the price, so the simulation finds it
   * although the allowance is still short. Any other revert is taken for the token refusing the
   * transfer the approval is for (however the token or the node words it); sending tells the rest.
   * @throws {MeshworkContractError} the market's own `JobMarket…` error.
   * @throws {MeshworkRpcError} when the RPC fails.
   */
  async #expectAccepted(action: string, simulate: () => Promise<unknown>): Promise<void> {
    try {
      await this.ctx.call(action, simulate);
    } catch (error) {
      if (error instanceof MeshworkRpcError || isMarketRefusal(error)) throw error;
    }
  }

  async #jobOf(consumer: string, request: JobRequestStruct): Promise<JobStruct> {
    const terms = await this.ctx.call("currentTerms", () => this.ctx.contracts.market.currentTerms());
    return { consumer, request, terms: BigInt(terms) };
  }

  async #offerCandidates(prepared: PreparedJob, offers: SignedOffer[]): Promise<RouteCandidate[]> {
    const now = await this.ctx.chainTime("route");
    const caller = await this.ctx.accountIfAny();
    const { domain, types } = offerTypedData(this.ctx.chainId, this.ctx.book.contracts.market);
    const out: RouteCandidate[] = [];
    const queues: QueueReads = { byProvider: new Map() };
    for (const offer of offers) {
      let digest: string;
      try {
        getAddress(offer.provider);
        const job = await this.#jobOf(offer.consumer, offer.request);
        // What the market's `offerDigest(jobId, expiry)` returns, computed here.
        digest = TypedDataEncoder.hash(domain, types, { jobId: hashJob(job), expiry: offer.expiry });
      } catch (error) {
        if (error instanceof MeshworkError) throw error; // the RPC failed
        // Malformed (a field out of its type's range, not an address): what arrived from an untrusted
        // transport is dropped alone, without asking the chain about it.
        out.push({ provider: String(offer.provider), price: 0n, region: "", energy: 0, reliability: 0, queue: 0, eligibility: INVALID_OFFER, offer });
        continue;
      }
      const valid =
        sameAddress(offer.request.targetProvider, offer.provider) &&
        sameRequestButPrice(offer.request, prepared.request) &&
        (caller === undefined || sameAddress(offer.consumer, caller)) &&
        offer.expiry > now &&
        (await this.#signedBy(offer.provider, digest, offer.signature));
      // Eligibility for the consumer's own request, at the offered price.
      const candidate = await this.#candidate(offer.provider, { ...prepared.request, price: offer.request.price }, offer.request.price, false, queues, valid);
      out.push({ ...candidate, eligibility: valid ? candidate.eligibility : INVALID_OFFER, offer });
    }
    return out;
  }

  /**
   * Whether `signature` over `digest` is `provider`'s as the market checks it (OpenZeppelin's
   * `SignatureChecker`): an account with code (a smart-contract wallet) must answer ERC-1271's
   * `isValidSignature(digest, signature)` with its magic value, a revert or any other answer refusing
   * it; any other account must be the ECDSA signer.
   * @throws {MeshworkRpcError} when the RPC fails.
   */
  async #signedBy(provider: string, digest: string, signature: string): Promise<boolean> {
    const code = await this.ctx.call("route: getCode", () => this.ctx.provider.getCode(provider));
    if (code === "0x") return recovers(digest, signature, provider);
    const data = ERC1271.encodeFunctionData("isValidSignature", [digest, signature]);
    try {
      // Asked as the market asks it (a wallet may answer by its caller).
      const from = this.ctx.book.contracts.market;
      const answer = await this.ctx.call("route: isValidSignature", () => this.ctx.provider.call({ from, to: provider, data }));
      // The market reads the first word of the answer whole: the selector, zero-padded.
      return answer.slice(0, 66).toLowerCase() === ERC1271_MAGIC;
    } catch (error) {
      // A failure to get an answer is the RPC's; anything else is the wallet's (a revert, whatever the
      // node makes of one without reason data), which the market takes for a bad signature.
      if (error instanceof MeshworkRpcError) throw error;
      return false;
    }
  }

  async #postedCandidates(prepared: PreparedJob): Promise<RouteCandidate[]> {
    const { registry } = this.ctx.contracts;
    const count = Number(await this.ctx.call("providerCount", () => registry.providerCount()));
    const out: RouteCandidate[] = [];
    const queues: QueueReads = { byProvider: new Map() };
    for (let id = 1; id <= count; id++) {
      const provider = await this.ctx.call("providerById", () => registry.providerById(id));
      const posted = await this.ctx.call("postedPrice", () => registry.postedPrice(provider, prepared.request.paymentToken));
      if (posted === 0n) continue;
      out.push(await this.#candidate(provider, prepared.request, posted * BigInt(prepared.request.workUnits), true, queues));
    }
    return out;
  }

  /**
   * `provider` as a candidate for `request` at `price`. The posted price is checked only for a job
   * routed by posted prices: a signed offer is the provider's consent to its own price, and the market
   * does not check the posted one for it either. Its queue (a scan of its claims of the last
   * `maxComputeWindow`: the costly part) is read once per provider and route (`queues`), and not at all
   * for a candidate rejected anyway (an invalid offer, an ineligible provider: `queue` 0).
   */
  async #candidate(
    provider: string,
    request: JobRequestStruct,
    price: bigint,
    checkPostedPrice: boolean,
    queues: QueueReads,
    valid = true,
  ): Promise<RouteCandidate> {
    const { registry } = this.ctx.contracts;
    const info = await new Providers(this.ctx).get(provider);
    const [eligibility] = await this.ctx.call("checkEligibility", () =>
      registry.checkEligibility(provider, request.paymentToken, request.requirements, price, request.workUnits, checkPostedPrice),
    );
    let queue = 0;
    if (valid && Number(eligibility) === 0) {
      const key = provider.toLowerCase();
      queues.from ??= this.#recentClaimsFrom();
      if (!queues.byProvider.has(key)) queues.byProvider.set(key, this.#queueOf(provider, queues.from));
      queue = await queues.byProvider.get(key)!;
    }
    return {
      provider,
      price,
      region: info.profile.region,
      energy: info.profile.energy,
      reliability: info.reputation.reliability,
      queue,
      eligibility: Number(eligibility),
    };
  }

  /**
   * Jobs `provider` is computing now: claimed, not yet committed. Only its claims from block `from` on
   * are read (see {@link #recentClaimsFrom}), so a route costs the same on a chain of any age.
   */
  async #queueOf(provider: string, from: Promise<number>): Promise<number> {
    const { market } = this.ctx.contracts;
    const claims = await this.ctx.logs("queue", (a, b) => market.queryFilter(market.filters.JobClaimed(undefined, provider), a, b), await from);
    let computing = 0;
    for (const id of new Set(claims.map((c) => c.args.jobId))) {
      const record = await this.ctx.call("jobRecord", () => market.jobRecord(id));
      if (sameAddress(record.provider, provider) && JOB_STATES[Number(record.state)] === "Claimed") computing++;
    }
    return computing;
  }

  /**
   * The first block whose claims can still be computing: one at or before now − `maxComputeWindow` (an
   * older claim is past its commit deadline, unless its job was created with a longer window before
   * governance lowered the maximum: not counted), found by steps back that double from 256 blocks (a
   * few header reads), or the deployment block.
   */
  async #recentClaimsFrom(): Promise<number> {
    const { market } = this.ctx.contracts;
    const deployed = this.ctx.book.deploymentBlock;
    const [latest, config] = await Promise.all([this.ctx.latestBlock("queue"), this.ctx.call("config", () => market.config())]);
    const since = latest.time - BigInt(config.maxComputeWindow);
    for (let back = 256; ; back *= 2) {
      const n = Number(latest.number) - back;
      if (n <= deployed) return deployed;
      const block = await this.ctx.call("queue: getBlock", () => this.ctx.provider.getBlock(n));
      if (block && BigInt(block.timestamp) <= since) return n;
    }
  }
}

/** The queues read during one route: each eligible provider's once, all from one block (found once). */
interface QueueReads {
  from?: Promise<number>;
  byProvider: Map<string, Promise<number>>;
}

/** A routing candidate; `offer` is set when routing signed offers. */
export interface RouteCandidate extends RoutingCandidate {
  offer?: SignedOffer;
}

/**
 * Eligibility code routing gives an offer whose signature, target or expiry is wrong, that is for
 * another consumer, or whose request differs from the prepared one in anything but its price.
 */
export const INVALID_OFFER = 255;

/** ERC-1271's interface: what a smart-contract wallet answers for its signatures. */
const ERC1271 = new Interface(["function isValidSignature(bytes32 hash, bytes signature) view returns (bytes4)"]);
/** A wallet's answer for a valid signature: `isValidSignature.selector` (0x1626ba7e) as the whole returned word. */
const ERC1271_MAGIC = "0x1626ba7e" + "00".repeat(28);

/** The largest `s` OpenZeppelin's ECDSA accepts (half the curve order: the other half is malleable). */
const HALF_CURVE_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

/**
 * Whether `signature` over `digest` recovers to `signer` as OpenZeppelin's ECDSA recovers it: 65 bytes,
 * `s` in the lower half, `v` 27 or 28 (ethers would also take a 64-byte, high-`s` or `v` 0/1 form, which
 * the market refuses). A malformed signature recovers to no one.
 */
function recovers(digest: string, signature: string, signer: string): boolean {
  try {
    const raw = getBytes(signature);
    if (raw.length !== 65 || BigInt(hexlify(raw.subarray(32, 64))) > HALF_CURVE_ORDER || (raw[64] !== 27 && raw[64] !== 28)) return false;
    return sameAddress(recoverAddress(digest, signature), signer);
  } catch {
    return false;
  }
}

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * Whether an offer's request is the consumer's prepared request but for its price and target (a
 * prepared request that names a provider takes offers from that provider only).
 */
function sameRequestButPrice(offered: JobRequestStruct, prepared: JobRequestStruct): boolean {
  const numbers = ["workUnits", "requirements", "verification", "claimBy", "computeWindow", "nonce"] as const;
  const target = String(prepared.targetProvider);
  return (
    sameAddress(String(offered.paymentToken), String(prepared.paymentToken)) &&
    String(offered.specHash).toLowerCase() === String(prepared.specHash).toLowerCase() &&
    numbers.every((k) => BigInt(offered[k]) === BigInt(prepared[k])) &&
    (BigInt(target) === 0n || sameAddress(String(offered.targetProvider), target))
  );
}

/**
 * One job, followed on-chain: its state, typed lifecycle events (also as an async iterator), `wait()`
 * for the result, `result()` to download and verify it, `challenge()` and `cancel()`. A job that
 * reopens after its provider timed out keeps its id, so the same handle follows it to the end.
 */
export class JobHandle {
  /** The spec, when this handle created the job. */
  spec?: JobSpec;
  readonly #ctx: MeshworkContext;
  readonly #events: JobEvent[] = [];
  readonly #listeners = new Map<JobEventType | "*", Set<(e: JobEvent) => void>>();
  readonly #receipts: ContractTransactionReceipt[] = [];
  #scannedTo: number;
  #timer?: ReturnType<typeof setInterval>;
  /** Refreshes running: the polling of on() skips its turn while one does, rather than pile up behind a slow RPC. */
  #inFlight = 0;
  #lastProvider = "";
  #lastReveal?: { resultRoot: string; outputURI: string };
  /** The transaction of a `JobVoided` read (its `JobRefunded` is not a second failure). */
  #voidedIn?: string;
  readonly #createdBlock: number;
  /** Events already recorded (transaction and type), so that a read of blocks again adds none twice. */
  readonly #recorded = new Set<string>();
  /** Poll interval for events and `wait()`, ms. */
  pollMs = 1000;
  /**
   * How often polling (`wait()`, {@link JobHandle.on}, the async iterator) also reads the job's state,
   * to catch an end whose event was never read, ms.
   */
  stateCheckMs = 15_000;

  constructor(
    ctx: MeshworkContext,
    readonly jobId: string,
    readonly job: JobStruct,
    createdBlock: number,
  ) {
    this.#ctx = ctx;
    this.#createdBlock = createdBlock;
    this.#scannedTo = createdBlock - 1;
  }

  /** Counts a transaction's gas in the cost summary. */
  track(receipt: ContractTransactionReceipt): void {
    this.#receipts.push(receipt);
  }

  /** The job's state on-chain now. */
  async state(): Promise<JobStateName> {
    const state = await this.#ctx.call("jobState", () => this.#ctx.contracts.market.jobState(this.jobId));
    return JOB_STATES[Number(state)];
  }

  /** Every lifecycle event seen so far (call `refresh()` to look for new ones). */
  get events(): readonly JobEvent[] {
    return this.#events;
  }

  /**
   * Reads new events from the chain (in block ranges, so it works against public RPCs) and delivers
   * them to listeners. A dropped RPC is retried on the next call. Overlapping calls (a listener's
   * polling, a `wait()`) never deliver an event twice: each range is taken by the first refresh to
   * read it, and a refresh that finds its range taken meanwhile reads on from where the other stopped.
   * So one refresh stuck on a hung RPC call holds up no other.
   * @returns the events this call delivered.
   * @throws {MeshworkRpcError} when the RPC fails.
   * @throws the first error a listener threw, once every listener has had every event (the events
   * stay read: the next refresh goes on from there).
   */
  async refresh(): Promise<JobEvent[]> {
    this.#inFlight++;
    try {
      const { market } = this.#ctx.contracts;
      const latest = await this.#ctx.call("blockNumber", () => this.#ctx.provider.getBlockNumber());
      const fresh: JobEvent[] = [];
      const failures: unknown[] = [];
      const address = this.#ctx.book.contracts.market;
      while (this.#scannedTo < latest) {
        const from = this.#scannedTo + 1;
        const to = Math.min(latest, from + this.#ctx.logRange - 1);
        let logs: Log[];
        try {
          logs = await this.#ctx.call("getLogs", () => this.#ctx.provider.getLogs({ address, topics: [null, this.jobId], fromBlock: from, toBlock: to }));
        } catch (error) {
          if (!this.#ctx.narrowLogRange(error, to - from + 1)) throw error;
          continue; // fewer blocks at once: the RPC caps a query's range
        }
        this.#ctx.logRangeWorked();
        if (this.#scannedTo !== from - 1) continue; // another refresh took this range meanwhile
        // Range by range: recorded and marked read first (a later range's failure loses nothing, a
        // listener's reads nothing twice), then delivered.
        const events = logs
          .map((log) => this.#toEvent(market.interface, log))
          .filter((e): e is JobEvent => e !== undefined && !this.#recorded.has(`${e.transactionHash}:${e.type}`));
        for (const e of events) this.#recorded.add(`${e.transactionHash}:${e.type}`);
        this.#events.push(...events);
        fresh.push(...events);
        this.#scannedTo = to;
        for (const e of events) {
          for (const key of [e.type, "*"] as const) {
            for (const l of this.#listeners.get(key) ?? []) {
              try {
                l(e);
              } catch (error) {
                failures.push(error);
              }
            }
          }
        }
      }
      if (this.done) this.#stop();
      if (failures.length > 0) throw failures[0];
      return fresh;
    } finally {
      this.#inFlight--;
    }
  }

  /** Whether the job reached an end (settled or failed). */
  get done(): boolean {
    return this.#events.some((e) => TERMINAL.has(e.type));
  }

  /**
   * Calls `listener` for each new event of `type` ("*" for all); polls while someone listens. Returns
   * the unsubscribe function.
   * @example
   * ```ts
   * const off = job.on("claimed", (e) => console.log("claimed by", e.provider));
   * ```
   */
  on<T extends JobEventType | "*">(type: T, listener: (e: T extends JobEventType ? Extract<JobEvent, { type: T }> : JobEvent) => void): () => void {
    const set = this.#listeners.get(type) ?? new Set();
    set.add(listener as (e: JobEvent) => void);
    this.#listeners.set(type, set);
    if (!this.#timer && !this.done) {
      const checkState = { at: Date.now() + this.stateCheckMs };
      this.#timer = setInterval(() => void (this.#inFlight > 0 ? undefined : this.#poll(checkState).catch(() => undefined)), this.pollMs);
      this.#timer.unref?.();
    }
    return () => {
      set.delete(listener as (e: JobEvent) => void);
      if ([...this.#listeners.values()].every((s) => s.size === 0)) this.#stop();
    };
  }

  /**
   * Every lifecycle event, past and future, until the job ends.
   * @example
   * ```ts
   * for await (const e of job) console.log(e.type);
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<JobEvent> {
    let i = 0;
    const checkState = { at: Date.now() + this.stateCheckMs };
    for (;;) {
      while (i < this.#events.length) {
        const e = this.#events[i++];
        yield e;
        if (TERMINAL.has(e.type)) return;
      }
      await this.#poll(checkState);
      if (i === this.#events.length) await sleep(this.pollMs);
    }
  }

  /** A refresh, then, every 15 s, a look at the job's state for an end no event told of (see `wait()`). */
  async #poll(checkState: { at: number }): Promise<void> {
    await this.refresh();
    if (Date.now() < checkState.at) return;
    checkState.at = Date.now() + this.stateCheckMs;
    if (await this.#rescanIfEnded()) await this.refresh();
  }

  /**
   * Waits until the job settles and returns its settlement. With `enforceDeadlines`, pushes the job
   * past any expired deadline itself (a provider that timed out, a window that ended), so the job
   * reopens or settles without anyone else's help.
   *
   * `timeoutMs` bounds the whole wait, RPC calls included: a refresh still running at the deadline (an
   * RPC that hangs) is left to finish in the background, its events kept by the handle, and the
   * wait throws. An end the handle has already seen is reported first, whatever the time left.
   * Every 15 s, and at the deadline, it also reads the job's state: a final state whose event was
   * never read (an RPC behind a load balancer answered a log query from a node a few blocks behind, or
   * a reorg moved it) makes it read the job's blocks again from its creation, delivering nothing twice.
   * The polling of {@link JobHandle.on} and of the async iterator does the same every 15 s.
   * @throws {MeshworkJobFailedError} when it ends without a result (`reason`: cancelled, refunded,
   * voided, provider-slashed, reveal-missed).
   * @throws {MeshworkTimeoutError} after `timeoutMs` (default one hour); `details.state` is the job's
   * state if the chain answered within a second, and `details.lastEvent` the last event seen.
   * @throws {MeshworkRpcError} when the RPC fails (a later `wait()` goes on where this one stopped).
   * @throws {MeshworkContractError} with `enforceDeadlines`, when enforcing reverts unexpectedly (see
   * {@link JobHandle.enforceDeadline}; a deadline someone else enforced first is no error).
   * @throws whatever a listener registered with {@link JobHandle.on} threw, as is (not a
   * `MeshworkError`): `wait()` refreshes, and a refresh rethrows the first listener error once every
   * listener has had every event. The events stay read; a later `wait()` goes on from there.
   * @example
   * ```ts
   * const settled = await job.wait({ timeoutMs: 600_000, enforceDeadlines: true });
   * ```
   */
  async wait(options: { timeoutMs?: number; enforceDeadlines?: boolean } = {}): Promise<Extract<JobEvent, { type: "settled" }>> {
    const deadline = Date.now() + (options.timeoutMs ?? 3_600_000);
    const ended = () => {
      const end = this.#events.find((e) => TERMINAL.has(e.type));
      if (end?.type === "failed") throw new MeshworkJobFailedError(this.jobId, end.reason);
      return end?.type === "settled" ? end : undefined;
    };
    let checkStateAt = Date.now() + this.stateCheckMs;
    for (;;) {
      const settled = ended(); // events a listener's polling or an abandoned refresh brought in count too
      if (settled) return settled;
      if (!(await within(this.refresh(), deadline - Date.now())).done) break;
      const now = ended();
      if (now) return now;
      if (Date.now() >= checkStateAt) {
        checkStateAt = Date.now() + this.stateCheckMs;
        const found = await this.#endNotRead(deadline, ended);
        if (found) return found;
      }
      if (options.enforceDeadlines && !(await within(this.enforceDeadline(), deadline - Date.now())).done) break;
      if (Date.now() >= deadline) break;
      await sleep(Math.min(this.pollMs, deadline - Date.now()));
    }
    const found = await this.#endNotRead(deadline, ended); // a last look, past the deadline
    if (found) return found;
    const state = await within(this.state(), 1_000).catch(() => ({ done: false }) as const);
    throw new MeshworkTimeoutError(`job ${this.jobId} did not finish in time`, {
      details: { state: state.done ? state.value : undefined, lastEvent: this.#events.at(-1)?.type, timeoutMs: options.timeoutMs ?? 3_600_000 },
    });
  }

  /**
   * Events can be missed for good (an RPC behind a load balancer answering a log query from a node a
   * few blocks behind, a reorg): the state has the last word. When it is final and its event was not
   * read, reads the job's blocks again (each step given until the deadline, or RESCAN_GRACE_MS past
   * it) and returns the settlement found (`ended` throws for a failure), else undefined.
   */
  async #endNotRead(
    deadline: number,
    ended: () => Extract<JobEvent, { type: "settled" }> | undefined,
  ): Promise<Extract<JobEvent, { type: "settled" }> | undefined> {
    const grace = () => Math.max(deadline - Date.now(), RESCAN_GRACE_MS);
    const rescan = await within(this.#rescanIfEnded(), grace()).catch(() => ({ done: false }) as const);
    if (!rescan.done || !rescan.value) return undefined;
    await within(this.refresh(), grace()).catch(() => undefined);
    return ended();
  }

  /**
   * When the job's state is final but no event of its end was read: reads its blocks again from its
   * creation (what was read already is not delivered twice). Returns whether it read them.
   */
  async #rescanIfEnded(): Promise<boolean> {
    if (this.done) return false;
    const state = JOB_STATES.indexOf(await this.state());
    if (state < JOB_STATES.indexOf("Settled")) return false;
    this.#scannedTo = Math.min(this.#scannedTo, this.#createdBlock - 1);
    return true;
  }

  /**
   * Pushes the job past an expired deadline if one has passed (anyone may); returns whether it did.
   * Returns false, sending nothing, when a simulation reverts (no deadline has passed, the job has
   * ended), and also when someone else enforced the deadline between the simulation and this
   * transaction (it reverts with `JobMarketNothingToEnforce`, `JobMarketDeadlineNotReached` or
   * `JobMarketUnexpectedState`, or is mined and reverts, and nothing is left to enforce).
   * @throws {MeshworkRpcError} when the RPC fails.
   * @throws {MeshworkContractError} when the transaction reverts with any other error.
   */
  async enforceDeadline(): Promise<boolean> {
    const { market } = this.#ctx.contracts;
    try {
      await this.#ctx.call("enforceDeadline", () => market.enforceDeadline.staticCall(this.job));
    } catch (error) {
      if (isRevert(error)) return false;
      throw error;
    }
    try {
      this.track(await this.#ctx.send("enforceDeadline", () => market.enforceDeadline(this.job)));
    } catch (error) {
      if (error instanceof MeshworkContractError && ENFORCED_MEANWHILE.has(error.errorName)) return false;
      // Mined and reverted (no reason in the receipt): someone else's landed first if nothing is left to enforce.
      if (!(error instanceof MeshworkRpcError)) {
        const left = await this.#ctx.call("enforceDeadline", () => market.enforceDeadline.staticCall(this.job)).then(
          () => true,
          (again) => !isRevert(again),
        );
        if (!left) return false;
      }
      throw error;
    }
    return true;
  }

  /**
   * Downloads the settled result and verifies it against the revealed root (see {@link fetchResult}:
   * the manifest's root is checked before any chunk is downloaded, each chunk at most
   * `maxChunkBytes`, default 256 MiB).
   * @throws {MeshworkVerificationError} with `chunk` set to the first bad chunk (missing, tampered
   * with, too long, or computed from other input than the spec's).
   * @throws {MeshworkError} when the job has not settled or no blob store is configured.
   * @throws {MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * const { bytes, chunks } = await job.result();
   * ```
   */
  async result(options: FetchResultOptions = {}): Promise<{ bytes: Uint8Array; chunks: Uint8Array[] }> {
    await this.refresh();
    const settled = this.#events.find((e): e is Extract<JobEvent, { type: "settled" }> => e.type === "settled");
    if (!settled) throw new MeshworkError(`job ${this.jobId} has no result yet`, { details: { state: await this.state() } });
    const store = this.#ctx.blobStore;
    if (!store) throw new MeshworkError("result() needs a blob store: pass blobStore to Meshwork.connect");
    const chunks = unpackVerification(this.job.request.verification).chunks;
    const inputDigests = options.inputDigests ?? (await this.#inputDigests(store));
    return fetchResult(store, this.jobId, settled.resultRoot, settled.outputURI, { ...options, chunks, inputDigests }); // bytes joined when read
  }

  /**
   * The digest of each input chunk of this job, from its spec (fetched by its hash when this handle did
   * not create the job): listed, or, for one input blob, its chunks' (the blob fetched and split).
   */
  async #inputDigests(store: BlobStore): Promise<string[]> {
    try {
      this.spec ??= await getJobSpec(store, String(this.job.request.specHash));
      const { inputs, chunking } = this.spec;
      if (inputs.kind === "chunks") return inputs.chunks.map((c) => c.digest);
      const blob = await store.get(inputs.blob.digest, { maxBytes: inputs.blob.size });
      return splitChunks(blob, chunking.chunks, { elementBytes: inputs.elementBytes }).map((chunk) => digestOf(chunk));
    } catch (cause) {
      throw new MeshworkVerificationError("the job's spec or input could not be fetched to check the result's inputs (pass inputDigests)", this.jobId, undefined, {
        cause,
        details: { specHash: String(this.job.request.specHash) },
      });
    }
  }

  /**
   * Challenges a committed or revealed result within its challenge window by posting the bond: from
   * the caller's market balance first, approving only what it lacks. When the balance falls short the
   * job's state and window are read before approving, so a challenge that cannot succeed leaves no
   * allowance behind; `chunk` names a chunk to audit first.
   * @throws {MeshworkContractError} `JobMarketChallengeWindowClosed(jobId, windowEnd)`,
   * `JobMarketUnexpectedState(jobId, current, expected)`, `JobMarketAuditRequired` (a committed job the
   * draw selects for audit is under audit already), `JobMarketChunkOutOfRange`,
   * `JobMarketConflictOfInterest` (all found before approving anything), `ERC20InsufficientBalance`.
   * @throws {MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * await job.challenge({ chunk: 3 });
   * ```
   */
  async challenge(options: { chunk?: number } = {}): Promise<ContractTransactionReceipt> {
    const { market } = this.#ctx.contracts;
    const token = String(this.job.request.paymentToken);
    const challenger = await this.#ctx.account("challenge");
    const [config, balance] = await this.#ctx.call("challenge", () =>
      Promise.all([market.verificationConfig(), market.balanceOf(token, challenger)]),
    );
    const bond = (BigInt(this.job.request.price) * BigInt(config.challengeBondBps)) / 10_000n;
    if (balance < bond) {
      // The transaction cannot be simulated before the approval, so its first checks are made here.
      await this.#expectChallengeable(options.chunk);
      await new Balances(this.#ctx).ensureAllowance(token, bond - balance, "challenge");
    }
    const named = options.chunk !== undefined;
    const receipt = await this.#ctx.send("challenge", () => market.challenge(this.job, named, options.chunk ?? 0));
    this.track(receipt);
    return receipt;
  }

  /** Throws what `challenge` would revert with, short of the bond's transfer. */
  async #expectChallengeable(chunk: number | undefined): Promise<void> {
    const { market } = this.#ctx.contracts;
    const record = await this.#ctx.call("jobRecord", () => market.jobRecord(this.jobId));
    const state = Number(record.state);
    const committed = JOB_STATES.indexOf("Committed");
    const revert = (name: string, args: unknown[]) =>
      toMeshworkError({ data: market.interface.encodeErrorResult(name, args) }, this.#ctx.interfaces, "challenge");
    if (state !== committed && state !== JOB_STATES.indexOf("Challengeable")) {
      throw revert("JobMarketUnexpectedState", [this.jobId, state, committed]);
    }
    // A committed job's clock is its commit time; a challengeable one's, its window's end.
    const windowEnd =
      state === committed ? BigInt(record.committedAt) + BigInt(unpackTerms(BigInt(this.job.terms)).challengeWindow) : BigInt(record.committedAt);
    // The challenge lands in a later block than the latest, a second after it at the earliest.
    if ((await this.#ctx.chainTime("challenge")) + 1n >= windowEnd) throw revert("JobMarketChallengeWindowClosed", [this.jobId, windowEnd]);
    // The rest (not its provider, an existing chunk, a job the draw has not selected for audit) by
    // simulating it: past those checks only the bond's transfer, not approved yet, can fail.
    try {
      await market.challenge.staticCall(this.job, chunk !== undefined, chunk ?? 0);
    } catch (error) {
      const e = toMeshworkError(error, this.#ctx.interfaces, "challenge");
      if (!(e instanceof MeshworkContractError && /^ERC20Insufficient(Allowance|Balance)$/.test(e.errorName))) throw e;
    }
  }

  /**
   * Withdraws the job while nobody has claimed it; the price returns to the consumer's market balance.
   * @throws {MeshworkContractError} `JobMarketUnexpectedState(jobId, current, Open)`, `JobMarketNotConsumer`.
   * @example
   * ```ts
   * await job.cancel();
   * ```
   */
  async cancel(): Promise<ContractTransactionReceipt> {
    const receipt = await this.#ctx.send("cancel", () => this.#ctx.contracts.market.cancel(this.job));
    this.track(receipt);
    return receipt;
  }

  /** What the job cost: price, the fee inside it, and the gas of the transactions made via this handle. */
  cost(): CostSummary {
    const price = BigInt(this.job.request.price);
    const fee = (price * BigInt(unpackTerms(BigInt(this.job.terms)).feeBps)) / 10_000n;
    let gasUsed = 0n;
    let gasCost = 0n;
    for (const r of this.#receipts) {
      gasUsed += r.gasUsed;
      gasCost += r.gasUsed * (r.gasPrice ?? 0n);
    }
    const refunded = this.#events.some((e) => e.type === "failed");
    return { price, fee: refunded ? 0n : fee, gasUsed, gasCost, refunded };
  }

  #stop() {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #toEvent(iface: MeshworkContext["contracts"]["market"]["interface"], log: Log): JobEvent | undefined {
    const parsed = safeParse(iface, log);
    if (!parsed) return undefined;
    const at = { blockNumber: log.blockNumber, transactionHash: log.transactionHash };
    const a = parsed.args;
    switch (parsed.name) {
      case "JobCreated":
        return { ...at, type: "queued" };
      case "JobClaimed":
        this.#lastProvider = a.provider;
        return { ...at, type: "claimed", provider: a.provider };
      case "JobCommitted":
        return { ...at, type: "committed" };
      case "AuditPassed":
        return { ...at, type: "audited", auditor: a.auditor };
      case "ResultRevealed":
        this.#lastReveal = { resultRoot: a.resultRoot, outputURI: a.outputURI };
        return { ...at, type: "revealed", provider: a.provider, resultRoot: a.resultRoot, outputURI: a.outputURI };
      case "JobChallenged":
        return { ...at, type: "challenged", challenger: a.challenger };
      case "DisputeEscalated":
      case "AuditRevealed":
        return parsed.name === "AuditRevealed" && a.disputed === 0n ? undefined : { ...at, type: "disputed" };
      case "JobSettled": {
        // An audited job settles on its reveal, which carries the result (JobSettled then has none).
        const revealed = a.resultRoot === ZERO_ROOT && this.#lastReveal ? this.#lastReveal : undefined;
        return { ...at, type: "settled", provider: a.provider, ...(revealed ?? { resultRoot: a.resultRoot, outputURI: a.outputURI }) };
      }
      case "JobReopened":
        return { ...at, type: "reopened", previousProvider: this.#lastProvider };
      case "JobCancelled":
        return { ...at, type: "failed", reason: "cancelled" };
      case "JobVoided":
        this.#voidedIn = at.transactionHash;
        return { ...at, type: "failed", reason: "voided" };
      case "JobRefunded":
        // A void's refund follows its JobVoided in the same transaction: one failure, the void.
        return this.#voidedIn === at.transactionHash ? undefined : { ...at, type: "failed", reason: "refunded" };
      case "FraudProven":
        return { ...at, type: "failed", reason: "provider-slashed" };
      case "JobRevealMissed":
        return { ...at, type: "failed", reason: "reveal-missed" };
      default:
        return undefined;
    }
  }
}

function safeParse(iface: { parseLog(log: { topics: readonly string[]; data: string }): ReturnType<MeshworkContext["contracts"]["market"]["interface"]["parseLog"]> }, log: Log) {
  try {
    return iface.parseLog({ topics: [...log.topics], data: log.data });
  } catch {
    return null;
  }
}

/** Whether a mapped error is one of the market's own (`JobMarket…`), not a token's it called. */
function isMarketRefusal(error: unknown): error is MeshworkContractError {
  return error instanceof MeshworkContractError && error.contract === "JobMarket" && error.errorName.startsWith("JobMarket");
}

/** Whether a mapped error is the chain's answer (a revert), not a failure to get one. */
function isRevert(error: unknown): boolean {
  if (error instanceof MeshworkContractError) return true;
  return error instanceof MeshworkError && !(error instanceof MeshworkRpcError) && (error.walk() as { code?: string })?.code === "CALL_EXCEPTION";
}

function isPrepared(value: unknown): value is PreparedJob {
  return typeof value === "object" && value !== null && "request" in value && "specURI" in value && "spec" in value;
}

function required(options: JobOptions | undefined): JobOptions {
  if (!options) throw new MeshworkError("create(spec, options): options (token, price, workUnits) are required");
  return options;
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `promise`'s outcome if it comes within `ms` (its rejection rethrown), else `{ done: false }`; a
 * promise that loses the race goes on, its rejection handled. A result already there always wins.
 */
async function within<T>(promise: Promise<T>, ms: number): Promise<{ done: true; value: T } | { done: false }> {
  promise.catch(() => undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<{ done: false }>((resolve) => {
    timer = setTimeout(() => resolve({ done: false }), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.then((value) => ({ done: true as const, value })), expired]);
  } finally {
    clearTimeout(timer);
  }
}
