/**
 * The shared testing kit: deploys the Meshwork contracts on a Hardhat network connection with
 * test-friendly parameters, registers and stakes providers, and creates jobs. Tests, the gas benchmark
 * and the invariant-style scenarios all build on it, so every suite sees the same system.
 */
import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { EventLog } from "ethers";
import {
  commitmentHash,
  jobFromResult,
  offerTypedData,
  packRequirements,
  packVerification,
  type JobRequestStruct,
  type JobStruct,
  type Requirements,
} from "../../sdk/src/params.js";
import type {
  IJobMarket,
  IProviderRegistry,
  MeshToken,
  MockRandomness,
  ProviderRegistry,
  TestUSD,
} from "../../types/ethers-contracts/index.js";
import type { IJobMarketTypes } from "../../types/ethers-contracts/interfaces/IJobMarket.js";

export type Job = JobStruct;
export type JobRequest = JobRequestStruct;

export const MESH = 10n ** 18n;
export const USD = 10n ** 6n;
export const HOUR = 3600n;
export const DAY = 24n * HOUR;

/** Job states, in the order of IJobMarket.JobState. */
export enum JobState {
  None,
  Open,
  Claimed,
  Committed,
  Audited,
  Revealing,
  Challengeable,
  Disputed,
  Escalated,
  Settled,
  Slashed,
  Refunded,
  Cancelled,
}

/** IProviderRegistry.Eligibility */
export enum Eligibility {
  Eligible,
  NotRegistered,
  NotActive,
  Runtime,
  Vram,
  GpuCount,
  GpuClass,
  Region,
  NotRenewable,
  PriceBelowPosted,
  NotTargetProvider,
  IsConsumer,
  ClaimsPaused,
}

export enum Energy {
  Unknown,
  Grid,
  Renewable,
}

/** Parameters of PROTOCOL.md §7, with short windows and no probation (tests choose each draw). */
export const MARKET_CONFIG: IJobMarketTypes.MarketConfigStruct = {
  feeBps: 250,
  collateralBps: 20_000,
  timeoutSlashBps: 2_000,
  challengeWindow: 1n * HOUR,
  revealWindow: 1n * HOUR,
  pMinBps: 5_000,
  probationJobs: 0,
  auditRewardBps: 200,
  auditCollateralBps: 10_000,
  auditClaimWindow: 1n * HOUR,
  auditRevealWindow: 1n * HOUR,
  minComputeWindow: 60,
  maxComputeWindow: 7n * DAY,
  flags: 0, // bit 0 is set when a randomness source is installed (setRandomnessSource)
};

export const VERIFICATION_CONFIG: IJobMarketTypes.VerificationConfigStruct = {
  fraudStakeSlashBps: 1_000,
  fraudConsumerBps: 3_000,
  fraudAuditorBps: 5_000,
  challengeBondBps: 1_000,
  assumedCollusionBps: 3_333,
  escalationWindow: 7n * DAY,
  auditPoolShareBps: 4_000, // 40% of the 2.5% fee: 1% of P funds audits
};

export const MIN_STAKE = 1_000n * MESH;
export const UNBONDING_PERIOD = 7n * DAY;
export const JAIL_PERIOD = 30n * DAY;

export const RUNTIME_INT = 0; // integer kernels
export const RUNTIME_ONNX = 1;

export const DEFAULT_PROFILE: IProviderRegistry.ProfileStruct = {
  gpuCount: 2,
  vramGB: 24,
  gpuClass: 3,
  region: "0x4445", // "DE"
  energy: Energy.Renewable,
  runtimes: 0b11,
};

export function region(code: string): string {
  if (code.length !== 2) throw new Error("region codes have two letters");
  return "0x" + Buffer.from(code, "ascii").toString("hex");
}

export interface System {
  ethers: HardhatEthers;
  deployer: HardhatEthersSigner;
  consumer: HardhatEthersSigner;
  providers: HardhatEthersSigner[];
  others: HardhatEthersSigner[];
  mesh: MeshToken;
  registry: ProviderRegistry;
  /** The market at its one address: core and audit functions (IJobMarket's ABI). */
  market: IJobMarket;
  usd: TestUSD;
  /** The audit randomness source tests control (see `setDraw`). */
  randomness: MockRandomness;
}

/** Deploys MESH, the registry, the market and a 6-decimal test stablecoin (allowlisted). */
export async function deploySystem(ethers: HardhatEthers): Promise<System> {
  const [deployer, consumer, p1, p2, p3, ...others] = await ethers.getSigners();
  const mesh = await ethers.deployContract("MeshToken", [deployer.address, 1_000_000_000n * MESH]);
  const registry = await ethers.deployContract("ProviderRegistry", [
    await mesh.getAddress(),
    deployer.address,
    MIN_STAKE,
    UNBONDING_PERIOD,
    JAIL_PERIOD,
  ]);
  const module = await ethers.deployContract("AuditModule", [await registry.getAddress()]);
  const core = await ethers.deployContract("JobMarket", [
    await registry.getAddress(),
    await module.getAddress(),
    deployer.address,
    MARKET_CONFIG,
    VERIFICATION_CONFIG,
  ]);
  const market = await ethers.getContractAt("IJobMarket", await core.getAddress());
  await registry.setMarket(await market.getAddress());
  const usd = await ethers.deployContract("TestUSD");
  await market.setPaymentToken(await usd.getAddress(), true);
  const randomness = await ethers.deployContract("MockRandomness");
  await market.setRandomnessSource(await randomness.getAddress());
  return { ethers, deployer, consumer, providers: [p1, p2, p3], others, mesh, registry, market, usd, randomness };
}

/** Registers, stakes `stake` MESH and posts `pricePerUnit` (tUSD) for a provider. */
export async function onboardProvider(
  sys: System,
  provider: HardhatEthersSigner,
  opts: { profile?: Partial<typeof DEFAULT_PROFILE>; stake?: bigint; pricePerUnit?: bigint } = {},
): Promise<void> {
  const { mesh, registry, usd, deployer } = sys;
  await registry.connect(provider).register({ ...DEFAULT_PROFILE, ...opts.profile }, "ipfs://provider-metadata");
  const stake = opts.stake ?? MIN_STAKE;
  if (stake > 0n) {
    await mesh.connect(deployer).transfer(provider.address, stake);
    await mesh.connect(provider).approve(await registry.getAddress(), stake);
    await registry.connect(provider).stake(provider.address, stake);
  }
  await registry.connect(provider).postPrice(await usd.getAddress(), opts.pricePerUnit ?? 1n * USD);
}

/** Mints tUSD to `account` and deposits `amount` into its internal market balance. */
export async function fund(sys: System, account: HardhatEthersSigner, amount: bigint): Promise<void> {
  await sys.usd.mint(account.address, amount);
  await sys.usd.connect(account).approve(await sys.market.getAddress(), amount);
  await sys.market.connect(account).deposit(await sys.usd.getAddress(), account.address, amount);
}

export async function now(ethers: HardhatEthers): Promise<bigint> {
  const block = await ethers.provider.getBlock("latest");
  return BigInt(block!.timestamp);
}

export const DEFAULT_REQUIREMENTS: Requirements = {
  runtime: RUNTIME_INT,
  minVramGB: 16,
  minGpuCount: 1,
  gpuClass: 0,
  region: "",
  renewableOnly: false,
};

/** A valid request: 100 tUSD for 10 work units, claimable for a day, 1 hour to compute. */
export async function jobRequest(
  sys: System,
  overrides: Partial<JobRequest> & { req?: Partial<Requirements> } = {},
): Promise<JobRequest> {
  const t = await now(sys.ethers);
  const { req, ...rest } = overrides;
  return {
    paymentToken: await sys.usd.getAddress(),
    price: 100n * USD,
    workUnits: 10n,
    specHash: sys.ethers.hexlify(sys.ethers.randomBytes(32)),
    requirements: packRequirements({ ...DEFAULT_REQUIREMENTS, ...req }),
    verification: packVerification({ chunks: 256, auditChunks: 4, auditBps: 0 }),
    claimBy: t + DAY,
    computeWindow: HOUR,
    targetProvider: sys.ethers.ZeroAddress,
    nonce: BigInt(Math.floor(Math.random() * 2 ** 48)),
    ...rest,
  };
}

/** The `Job` of a JobCreated event, as a plain struct the market's functions accept. */
export function jobFromEvent(event: EventLog): { jobId: string; job: Job } {
  const [jobId, , job] = event.args;
  return { jobId, job: jobFromResult(job) };
}

/** The JobCreated event of a transaction receipt. */
export function createdEvent(sys: System, receipt: { logs: readonly any[] }): EventLog {
  const event = receipt.logs.find((l) => "eventName" in l && l.eventName === "JobCreated");
  if (!event) throw new Error("no JobCreated event in the receipt");
  return event as EventLog;
}

/** Creates a job as `consumer` and returns its id and struct. */
export async function createJob(
  sys: System,
  consumer: HardhatEthersSigner,
  overrides: Partial<JobRequest> & { req?: Partial<Requirements> } = {},
  specURI = "http://127.0.0.1:8787/blobs/spec",
): Promise<{ jobId: string; job: Job; request: JobRequest }> {
  const request = await jobRequest(sys, overrides);
  const tx = await sys.market.connect(consumer).createJob(request, specURI);
  const receipt = await tx.wait();
  return { ...jobFromEvent(createdEvent(sys, receipt!)), request };
}

/** A random result root and salt, with the commitment the market expects from `provider`. */
export function makeReveal(ethers: HardhatEthers, jobId: string, provider: string) {
  const resultRoot = ethers.hexlify(ethers.randomBytes(32));
  const salt = ethers.hexlify(ethers.randomBytes(32));
  const commitment = commitmentHash(jobId, provider, resultRoot, salt);
  return { resultRoot, salt, commitment, outputURI: "http://127.0.0.1:8787/blobs/out" };
}

/** A provider's EIP-712 offer to run `jobId` until `expiry`. */
export async function signOffer(
  sys: System,
  signer: HardhatEthersSigner,
  jobId: string,
  expiry: bigint,
  domain: { chainId?: bigint; market?: string } = {},
): Promise<string> {
  const network = await sys.ethers.provider.getNetwork();
  const { domain: d, types } = offerTypedData(domain.chainId ?? network.chainId, domain.market ?? (await sys.market.getAddress()));
  return signer.signTypedData(d, types, { jobId, expiry });
}

/** The job a request becomes when `consumer` creates it now (its id is known before the transaction). */
export async function predictJob(sys: System, consumer: string, request: JobRequest): Promise<Job> {
  return { consumer, request, terms: await sys.market.currentTerms() };
}

/**
 * A market with three onboarded providers (a renewable 2-GPU box in Germany, a grid-powered 8-GPU
 * server in Brazil, a 1-GPU gaming PC with no region) and funded internal balances.
 */
export async function marketWithProviders(ethers: HardhatEthers) {
  const sys = await deploySystem(ethers);
  const [p1, p2, p3] = sys.providers;
  await onboardProvider(sys, p1);
  await onboardProvider(sys, p2, { profile: { gpuCount: 8, vramGB: 80, gpuClass: 7, region: region("BR"), energy: Energy.Grid } });
  await onboardProvider(sys, p3, { profile: { gpuCount: 1, vramGB: 16, gpuClass: 1, region: "0x0000", energy: Energy.Unknown, runtimes: 1 } });
  await fund(sys, sys.consumer, 10_000n * USD);
  for (const p of sys.providers) await fund(sys, p, 1_000n * USD);
  return sys;
}

/**
 * Sets the mock randomness so that the draw of `jobId` comes out `audited` (or not) at probability
 * `probabilityBps` (pMin by default). The market audits when keccak256(abi.encode(value, jobId)) mod
 * 10000 < probability.
 */
export async function setDraw(sys: System, jobId: string, audited: boolean, probabilityBps = 5_000): Promise<string> {
  const coder = sys.ethers.AbiCoder.defaultAbiCoder();
  for (let i = 0; ; i++) {
    const value = sys.ethers.keccak256(coder.encode(["uint256"], [i]));
    const h = BigInt(sys.ethers.keccak256(coder.encode(["bytes32", "bytes32"], [value, jobId])));
    if ((h % 10_000n < BigInt(probabilityBps)) === audited) {
      await sys.randomness.set(1, value);
      return value;
    }
  }
}

/** The name of the custom error a failed call reverted with (undefined for other failures). */
export function revertName(sys: System, error: unknown): string | undefined {
  const e = error as { revert?: { name?: string }; data?: string; message?: string };
  if (e.revert?.name) return e.revert.name;
  if (typeof e.data === "string" && e.data.length >= 10) {
    const parsed = sys.market.interface.parseError(e.data);
    if (parsed) return parsed.name;
  }
  return e.message?.match(/custom error '(\w+)\(/)?.[1];
}
