/**
 * Job parameters as the contracts see them. A job travels as calldata on every step, so its small
 * fields are packed into three words (`Requirements`, `Verification`, `Terms`, see
 * contracts/libraries/JobParams.sol); this module packs and unpacks them and hashes jobs into ids.
 */
import { AbiCoder, keccak256, verifyTypedData } from "ethers";

export interface Requirements {
  /** Runtime id 0..15 (0 = integer kernels, 1 = ONNX). */
  runtime: number;
  /** Minimum memory per GPU, GB. */
  minVramGB: number;
  minGpuCount: number;
  /** Required GPU class id, 0 = any. */
  gpuClass: number;
  /** ISO-3166 alpha-2 code ("DE"), or "" for any region. */
  region: string;
  renewableOnly: boolean;
  /**
   * A compute-commons job (set by the ComputeCommons contract, which alone may create one; providers'
   * commons prices apply). Leave it unset when creating a job directly.
   */
  commons?: boolean;
}

export interface Verification {
  /** Number N of output chunks in the result Merkle tree. */
  chunks: number;
  /** Number m of chunks an audit re-executes. */
  auditChunks: number;
  /** Audit probability requested by the consumer, basis points. */
  auditBps: number;
}

/** A job's economic terms, fixed at creation (see contracts/libraries/JobParams.sol). */
export interface Terms {
  feeBps: number;
  collateralBps: number;
  timeoutSlashBps: number;
  challengeWindow: number;
  revealWindow: number;
  pMinBps: number;
  probationJobs: number;
  auditRewardBps: number;
  auditCollateralBps: number;
  /** 1 when the job draws from the governed randomness source, 0 for the built-in block-hash one. */
  externalRandomness: number;
  auditClaimWindow: number;
  auditRevealWindow: number;
}

/** IJobMarket.JobRequest with packed words, as the contract takes it. */
export interface JobRequestStruct {
  paymentToken: string;
  price: bigint;
  workUnits: bigint;
  specHash: string;
  requirements: bigint;
  verification: bigint;
  claimBy: bigint;
  computeWindow: bigint;
  targetProvider: string;
  nonce: bigint;
}

/** IJobMarket.Job as the contract takes it and hashes it. */
export interface JobStruct {
  consumer: string;
  request: JobRequestStruct;
  terms: bigint;
}

function field(value: number | bigint, bits: number, name: string): bigint {
  const v = BigInt(value);
  if (v < 0n || v >= 1n << BigInt(bits)) throw new RangeError(`${name} must fit in ${bits} bits (got ${value})`);
  return v;
}

/** "DE" -> 0x4445, "" -> 0. */
export function regionCode(region: string): bigint {
  if (region === "") return 0n;
  if (!/^[A-Z]{2}$/.test(region)) throw new RangeError(`region must be two upper-case letters or "" (got "${region}")`);
  return (BigInt(region.charCodeAt(0)) << 8n) | BigInt(region.charCodeAt(1));
}

export function regionName(code: bigint | number): string {
  const c = Number(code);
  return c === 0 ? "" : String.fromCharCode(c >> 8, c & 0xff);
}

export function packRequirements(r: Requirements): bigint {
  return (
    field(r.runtime, 8, "runtime") |
    (field(r.minVramGB, 16, "minVramGB") << 8n) |
    (field(r.minGpuCount, 16, "minGpuCount") << 24n) |
    (field(r.gpuClass, 16, "gpuClass") << 40n) |
    (regionCode(r.region) << 56n) |
    ((r.renewableOnly ? 1n : 0n) << 72n) |
    ((r.commons ? 1n : 0n) << 80n)
  );
}

export function unpackRequirements(word: bigint): Requirements {
  const w = BigInt(word);
  return {
    runtime: Number(w & 0xffn),
    minVramGB: Number((w >> 8n) & 0xffffn),
    minGpuCount: Number((w >> 24n) & 0xffffn),
    gpuClass: Number((w >> 40n) & 0xffffn),
    region: regionName((w >> 56n) & 0xffffn),
    renewableOnly: ((w >> 72n) & 0xffn) !== 0n,
    commons: ((w >> 80n) & 0xffn) !== 0n,
  };
}

export function packVerification(v: Verification): bigint {
  return field(v.chunks, 32, "chunks") | (field(v.auditChunks, 16, "auditChunks") << 32n) | (field(v.auditBps, 16, "auditBps") << 48n);
}

export function unpackVerification(word: bigint): Verification {
  const w = BigInt(word);
  return { chunks: Number(w & 0xffffffffn), auditChunks: Number((w >> 32n) & 0xffffn), auditBps: Number((w >> 48n) & 0xffffn) };
}

/** Bit offset and width of each Terms field, in the contract's order. */
const TERMS_LAYOUT: [keyof Terms, bigint, number][] = [
  ["feeBps", 0n, 16],
  ["collateralBps", 16n, 16],
  ["timeoutSlashBps", 32n, 16],
  ["challengeWindow", 48n, 32],
  ["revealWindow", 80n, 32],
  ["pMinBps", 112n, 16],
  ["probationJobs", 128n, 16],
  ["auditRewardBps", 144n, 16],
  ["auditCollateralBps", 160n, 16],
  ["externalRandomness", 176n, 8],
  ["auditClaimWindow", 184n, 32],
  ["auditRevealWindow", 216n, 32],
];

export function packTerms(t: Terms): bigint {
  return TERMS_LAYOUT.reduce((word, [name, shift, bits]) => word | (field(t[name], bits, name) << shift), 0n);
}

export function unpackTerms(word: bigint): Terms {
  const w = BigInt(word);
  const entries = TERMS_LAYOUT.map(([name, shift, bits]) => [name, Number((w >> shift) & ((1n << BigInt(bits)) - 1n))]);
  return Object.fromEntries(entries) as Terms;
}

const JOB_TUPLE =
  "tuple(address consumer, tuple(address paymentToken, uint96 price, uint64 workUnits, bytes32 specHash, uint256 requirements, uint256 verification, uint40 claimBy, uint32 computeWindow, address targetProvider, uint64 nonce) request, uint256 terms)";

/** The job id: keccak256(abi.encode(job)), exactly as the market computes it. */
export function hashJob(job: JobStruct): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode([JOB_TUPLE], [job]));
}

/** keccak256(abi.encode(jobId, provider, resultRoot, salt)): what a provider commits to. */
export function commitmentHash(jobId: string, provider: string, resultRoot: string, salt: string): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode(["bytes32", "address", "bytes32", "bytes32"], [jobId, provider, resultRoot, salt]));
}

/**
 * What the market's job record keeps of a commitment (`jobRecord(jobId).commitment`): the low 152 bits of
 * keccak256(abi.encode(commitment, claimant)). Binding the claimant means a commitment opens only with
 * the claimant as its provider.
 */
export function storedCommitment(commitment: string, claimant: string): bigint {
  return BigInt(keccak256(AbiCoder.defaultAbiCoder().encode(["bytes32", "address"], [commitment, claimant]))) & ((1n << 152n) - 1n);
}

/** Collateral S a claimant locks: P * collateralBps / 10000. */
export function collateralOf(job: JobStruct): bigint {
  return (BigInt(job.request.price) * BigInt(unpackTerms(job.terms).collateralBps)) / 10_000n;
}

/** A plain JobStruct from ethers' decoded `Result` of a Job tuple (a JobCreated event argument). */
export function jobFromResult(job: any): JobStruct {
  const r = job.request;
  return {
    consumer: job.consumer,
    request: {
      paymentToken: r.paymentToken,
      price: BigInt(r.price),
      workUnits: BigInt(r.workUnits),
      specHash: r.specHash,
      requirements: BigInt(r.requirements),
      verification: BigInt(r.verification),
      claimBy: BigInt(r.claimBy),
      computeWindow: BigInt(r.computeWindow),
      targetProvider: r.targetProvider,
      nonce: BigInt(r.nonce),
    },
    terms: BigInt(job.terms),
  };
}

/** EIP-712 domain and types of a provider's offer. */
export function offerTypedData(chainId: bigint, market: string) {
  return {
    domain: { name: "Meshwork JobMarket", version: "1", chainId, verifyingContract: market },
    types: { Offer: [{ name: "jobId", type: "bytes32" }, { name: "expiry", type: "uint40" }] },
  };
}

/**
 * A worker's signed delivery receipt (PROTOCOL.md §5): it binds the job, the result root, where the
 * outputs are and the digest of the runtime that produced them, so a consumer can check a delivered
 * result off-chain before it is on-chain. Same domain as offers (chain id and market), so a receipt
 * cannot be replayed on another chain or market.
 */
export interface JobReceipt {
  jobId: string;
  resultRoot: string;
  outputURI: string;
  runtimeDigest: string;
}

/** EIP-712 domain and types of a {@link JobReceipt}. */
export function receiptTypedData(chainId: bigint, market: string) {
  return {
    domain: { name: "Meshwork JobMarket", version: "1", chainId, verifyingContract: market },
    types: {
      JobReceipt: [
        { name: "jobId", type: "bytes32" },
        { name: "resultRoot", type: "bytes32" },
        { name: "outputURI", type: "string" },
        { name: "runtimeDigest", type: "bytes32" },
      ],
    },
  };
}

/**
 * Signs a receipt with `signer` (the provider's key).
 * @example
 * ```ts
 * const signature = await signReceipt(wallet, chainId, market, { jobId, resultRoot, outputURI, runtimeDigest });
 * ```
 */
export async function signReceipt(
  signer: { signTypedData(domain: object, types: Record<string, { name: string; type: string }[]>, value: Record<string, unknown>): Promise<string> },
  chainId: bigint,
  market: string,
  receipt: JobReceipt,
): Promise<string> {
  const { domain, types } = receiptTypedData(chainId, market);
  return signer.signTypedData(domain, types, { ...receipt });
}

/** The address that signed `receipt` (compare it with the job's provider). */
export function receiptSigner(chainId: bigint, market: string, receipt: JobReceipt, signature: string): string {
  const { domain, types } = receiptTypedData(chainId, market);
  return verifyTypedData(domain, types, { ...receipt }, signature);
}
