/**
 * Node operators: register a compact profile, post prices, stake MESH (with an EIP-2612 permit),
 * unstake through the unbonding queue; and, for everyone, the provider list with reputation figures
 * from the on-chain counters.
 */
import { Signature } from "ethers";
import type { ContractTransactionReceipt } from "ethers";
import type { MeshworkContext } from "./context.js";
import { MeshworkError, MeshworkValidationError } from "./errors.js";
import { regionCode, regionName } from "./params.js";

/** How long a stake permit stays valid by default, in seconds after the latest block. */
const PERMIT_VALIDITY = 3600n;

export enum Energy {
  Unknown = 0,
  Grid = 1,
  Renewable = 2,
}

/** Runtime ids: bit `id` of a profile's `runtimes` bitmap. */
export const Runtime = { IntKernels: 0, Onnx: 1 } as const;

export interface Profile {
  gpuCount: number;
  /** Memory per GPU, GB. */
  vramGB: number;
  /** GPU class id (a governance-published table; 0 = unclassified). */
  gpuClass: number;
  /** ISO-3166 alpha-2 code, e.g. "DE". */
  region: string;
  energy: Energy;
  /** The runtime ids it runs, e.g. `[Runtime.IntKernels, Runtime.Onnx]`. */
  runtimes: number[];
}

export interface Reputation {
  /** Settled jobs per payment token (symbol → count): the market's `completedJobs`. */
  completed: Record<string, bigint>;
  timedOut: number;
  audited: number;
  failedAudits: number;
  slashes: number;
  /** Settled / (settled + timed out + slashed), 1 for a newcomer with no history. */
  reliability: number;
  /** Passed / audited, 1 when never audited. */
  auditPassRate: number;
}

export interface ProviderInfo {
  address: string;
  id: number;
  profile: Profile;
  stake: { active: bigint; unbonding: bigint; jailedUntil: bigint };
  /** Active (registered, staked ≥ minStake, not jailed). */
  active: boolean;
  /** Posted price per work unit by token symbol (0 = none posted). */
  prices: Record<string, bigint>;
  /** Posted commons price per work unit by token symbol (0 = none). */
  commonsPrices: Record<string, bigint>;
  reputation: Reputation;
}

/** An unbonding entry of a provider's stake ({@link Providers.unbonding}). */
export interface UnbondingEntry {
  entryId: bigint;
  /** Its MESH value now (18 decimals). */
  amount: bigint;
  /** Unix time from which `withdrawStake` pays it. */
  releaseAt: bigint;
}

export interface ProviderFilter {
  activeOnly?: boolean;
  region?: string;
  renewableOnly?: boolean;
  minVramGB?: number;
  minGpuCount?: number;
  gpuClass?: number;
  runtime?: number;
  /** Only providers with a posted price in this token (symbol or address). */
  pricedIn?: string;
}

function toStruct(p: Profile) {
  return {
    gpuCount: p.gpuCount,
    vramGB: p.vramGB,
    gpuClass: p.gpuClass,
    region: "0x" + regionCode(p.region).toString(16).padStart(4, "0"),
    energy: p.energy,
    runtimes: p.runtimes.reduce((bits, id) => bits | (1 << id), 0),
  };
}

function fromStruct(s: { gpuCount: bigint; vramGB: bigint; gpuClass: bigint; region: string; energy: bigint; runtimes: bigint }): Profile {
  const bits = Number(s.runtimes);
  const runtimes: number[] = [];
  for (let i = 0; i < 16; i++) if ((bits >> i) & 1) runtimes.push(i);
  return {
    gpuCount: Number(s.gpuCount),
    vramGB: Number(s.vramGB),
    gpuClass: Number(s.gpuClass),
    region: regionName(BigInt(s.region)),
    energy: Number(s.energy) as Energy,
    runtimes,
  };
}

/** A provider's posted prices for one payment token, per work unit (0: none). */
export interface PostedPrices {
  /** What any job in that token must pay at least. */
  usual: bigint;
  /** What a compute-commons job must pay at least, where posted (else the usual price applies). */
  commons: bigint;
}

export class Providers {
  /** Each payment token's commons price key (a pure function of the token), by token address. */
  readonly #commonsKeys = new Map<string, string>();

  constructor(private readonly ctx: MeshworkContext) {}

  /**
   * Registers the caller as a provider (the metadata URI is emitted only).
   * @throws {MeshworkContractError} `ProviderRegistryAlreadyRegistered`, `ProviderRegistryInvalidProfile`.
   * @example
   * ```ts
   * await mw.providers.register({ gpuCount: 1, vramGB: 24, gpuClass: 3, region: "KE",
   *   energy: Energy.Renewable, runtimes: [Runtime.IntKernels] }, "https://my.node/meta.json");
   * ```
   */
  async register(profile: Profile, metadataURI = ""): Promise<ContractTransactionReceipt> {
    return this.ctx.send("register", () => this.ctx.contracts.registry.register(toStruct(profile), metadataURI));
  }

  /**
   * Replaces the caller's profile.
   * @throws {MeshworkContractError} `ProviderRegistryNotRegistered`, `ProviderRegistryInvalidProfile`.
   * @example
   * ```ts
   * await mw.providers.updateProfile({ ...profile, vramGB: 48 });
   * ```
   */
  async updateProfile(profile: Profile, metadataURI = ""): Promise<ContractTransactionReceipt> {
    return this.ctx.send("updateProfile", () => this.ctx.contracts.registry.updateProfile(toStruct(profile), metadataURI));
  }

  /**
   * Posts the caller's minimum price per work unit in a payment token; `commons: true` posts its
   * (discounted) price for compute-commons jobs. 0 withdraws the price.
   * @throws {MeshworkContractError} `ProviderRegistryNotRegistered`.
   * @example
   * ```ts
   * await mw.providers.postPrice("tUSD", 2_000_000n);             // 2 tUSD per unit
   * await mw.providers.postPrice("tUSD", 1_000_000n, { commons: true });
   * ```
   */
  async postPrice(token: string, pricePerUnit: bigint, options: { commons?: boolean } = {}): Promise<ContractTransactionReceipt> {
    const address = this.ctx.token(token);
    const key = options.commons ? await this.ctx.call("commonsPriceKey", () => this.ctx.contracts.registry.commonsPriceKey(address)) : address;
    return this.ctx.send("postPrice", () => this.ctx.contracts.registry.postPrice(key, pricePerUnit));
  }

  /**
   * Stakes `amount` MESH for `provider` (the caller by default). With `permit` (the default) the
   * approval is an EIP-2612 signature in the same transaction, otherwise an `approve` first. The
   * permit's `deadline` defaults to an hour after the latest block (the chain's clock, not this
   * machine's).
   * @throws {MeshworkValidationError} a `deadline` not after the latest block's timestamp (nothing is
   * signed or sent).
   * @throws {MeshworkContractError} `ProviderRegistryNotRegistered`, `ERC20InsufficientBalance`, `ERC2612ExpiredSignature`.
   * @throws {MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * await mw.providers.stake(1_000n * 10n ** 18n);
   * ```
   */
  async stake(amount: bigint, options: { provider?: string; permit?: boolean; deadline?: bigint } = {}): Promise<ContractTransactionReceipt> {
    const signer = this.ctx.signer("stake");
    const owner = await this.ctx.call("getAddress", () => signer.getAddress());
    const provider = options.provider ?? owner;
    const { mesh, registry } = this.ctx.contracts;
    const spender = this.ctx.book.contracts.registry;
    if (options.permit === false) {
      await this.ctx.send("stake: approve", () => mesh.approve(spender, amount));
      return this.ctx.send("stake", () => registry.stake(provider, amount));
    }
    const now = await this.ctx.chainTime("stake");
    const deadline = options.deadline ?? now + PERMIT_VALIDITY;
    if (deadline <= now) {
      throw new MeshworkValidationError("permit", [
        { code: "custom", path: ["deadline"], message: `must be after the latest block's timestamp ${now}`, input: deadline } as never,
      ], { details: { deadline, chainTime: now } });
    }
    const [nonce, name] = await this.ctx.call("permit", () => Promise.all([mesh.nonces(owner), mesh.name()]));
    const domain = { name, version: "1", chainId: this.ctx.chainId, verifyingContract: this.ctx.book.contracts.mesh };
    const types = {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    };
    const signature = await this.ctx.call("stake: sign permit", () => signer.signTypedData(domain, types, { owner, spender, value: amount, nonce, deadline }));
    const sig = Signature.from(signature);
    return this.ctx.send("stakeWithPermit", () => registry.stakeWithPermit(provider, amount, deadline, sig.v, sig.r, sig.s));
  }

  /**
   * Starts unbonding `amount` of the caller's stake; it can be withdrawn after the unbonding period
   * (and is still slashable until then). Returns the queue entry id.
   * @throws {MeshworkContractError} `ProviderRegistryInsufficientStake`, `ProviderRegistryZeroAmount`.
   * @example
   * ```ts
   * const { entryId, releaseAt } = await mw.providers.requestUnstake(500n * 10n ** 18n);
   * ```
   */
  async requestUnstake(amount: bigint): Promise<{ entryId: bigint; releaseAt: bigint; receipt: ContractTransactionReceipt }> {
    const { registry } = this.ctx.contracts;
    const receipt = await this.ctx.send("requestUnstake", () => registry.requestUnstake(amount));
    for (const log of receipt.logs) {
      const parsed = registry.interface.parseLog(log);
      if (parsed?.name === "UnstakeRequested") return { entryId: parsed.args.entryId, releaseAt: parsed.args.releaseAt, receipt };
    }
    throw new MeshworkError("requestUnstake: no UnstakeRequested event in the receipt");
  }

  /**
   * Withdraws every released unbonding entry, at most `maxEntries` of them (bounded gas).
   * @throws {MeshworkContractError} `ProviderRegistryNothingToWithdraw`.
   * @example
   * ```ts
   * await mw.providers.withdrawStake();
   * ```
   */
  async withdrawStake(maxEntries = 32): Promise<ContractTransactionReceipt> {
    return this.ctx.send("withdrawStake", () => this.ctx.contracts.registry.withdrawStake(maxEntries));
  }

  /**
   * A provider's unbonding entries not withdrawn yet, oldest first, at most `max` of them: what each
   * is worth now (a slash while it unbonds lowers it) and when it is released. {@link withdrawStake}
   * pays, in this order, those whose `releaseAt` the latest block has reached.
   * @throws {MeshworkValidationError} unless `max` is an integer from 1 to 256.
   * @example
   * ```ts
   * const [first] = await mw.providers.unbonding(await signer.getAddress());
   * if (first) console.log(`${first.amount} released at ${new Date(Number(first.releaseAt) * 1000)}`);
   * ```
   */
  async unbonding(address: string, max = 32): Promise<UnbondingEntry[]> {
    if (!Number.isInteger(max) || max < 1 || max > 256) {
      throw new MeshworkValidationError("unbonding", [{ code: "custom", path: ["max"], message: "an integer from 1 to 256", input: max } as never]);
    }
    const { registry } = this.ctx.contracts;
    return this.ctx.call("providers.unbonding", async () => {
      const [head, next] = await registry.unbondingQueue(address);
      const ids: bigint[] = [];
      for (let id = head; id < next && ids.length < max; id++) ids.push(id);
      const entries = await Promise.all(ids.map((id) => registry.unbondingEntry(address, id)));
      return entries.map(([amount, releaseAt], i) => ({ entryId: ids[i], amount, releaseAt }));
    });
  }

  /**
   * One provider's profile, stake, prices and reputation.
   * @example
   * ```ts
   * const me = await mw.providers.get(await signer.getAddress());
   * console.log(me.reputation.reliability);
   * ```
   */
  /** `address`'s posted prices, usual and commons, per payment token symbol of the address book. */
  async postedPrices(address: string): Promise<Record<string, PostedPrices>> {
    const { registry } = this.ctx.contracts;
    return this.ctx.call("providers.postedPrices", async () => {
      const out: Record<string, PostedPrices> = {};
      for (const [symbol, token] of Object.entries(this.ctx.book.contracts.paymentTokens)) {
        let commonsKey = this.#commonsKeys.get(token);
        if (!commonsKey) this.#commonsKeys.set(token, (commonsKey = await registry.commonsPriceKey(token)));
        const [usual, commons] = await Promise.all([registry.postedPrice(address, token), registry.postedPrice(address, commonsKey)]);
        out[symbol] = { usual, commons };
      }
      return out;
    });
  }

  async get(address: string): Promise<ProviderInfo> {
    const { registry, market } = this.ctx.contracts;
    return this.ctx.call("providers.get", async () => {
      const [id, profile, stake, active, counters] = await Promise.all([
        registry.idOf(address),
        registry.profileOf(address),
        registry.stakeOf(address),
        registry.isActive(address),
        registry.countersOf(address),
      ]);
      const prices: Record<string, bigint> = {};
      const commonsPrices: Record<string, bigint> = {};
      const completed: Record<string, bigint> = {};
      const posted = await this.postedPrices(address);
      for (const [symbol, token] of Object.entries(this.ctx.book.contracts.paymentTokens)) {
        [prices[symbol], commonsPrices[symbol]] = [posted[symbol].usual, posted[symbol].commons];
        completed[symbol] = await market.completedJobs(token, address);
      }
      return {
        address,
        id: Number(id),
        profile: fromStruct(profile),
        stake: { active: stake.active, unbonding: stake.unbonding, jailedUntil: stake.jailedUntil },
        active,
        prices,
        commonsPrices,
        reputation: reputationOf(completed, counters),
      };
    });
  }

  /**
   * Every registered provider (ids 1..count), filtered. O(providers) reads: cache the result.
   * @example
   * ```ts
   * const green = await mw.providers.list({ activeOnly: true, renewableOnly: true, pricedIn: "tUSD" });
   * ```
   */
  async list(filter: ProviderFilter = {}): Promise<ProviderInfo[]> {
    const { registry } = this.ctx.contracts;
    const count = Number(await this.ctx.call("providerCount", () => registry.providerCount()));
    const out: ProviderInfo[] = [];
    for (let id = 1; id <= count; id++) {
      const address = await this.ctx.call("providerById", () => registry.providerById(id));
      const info = await this.get(address);
      if (matches(info, filter, filter.pricedIn ? this.symbolOf(filter.pricedIn) : undefined)) out.push(info);
    }
    return out;
  }

  private symbolOf(token: string): string {
    const address = this.ctx.token(token).toLowerCase();
    const entry = Object.entries(this.ctx.book.contracts.paymentTokens).find(([, a]) => a.toLowerCase() === address);
    return entry ? entry[0] : token;
  }
}

/** Reputation figures from the counters (pure). */
export function reputationOf(
  completed: Record<string, bigint>,
  counters: { timedOut: bigint | number; audited: bigint | number; failedAudits: bigint | number; slashes: bigint | number },
): Reputation {
  const settled = Object.values(completed).reduce((a, b) => a + b, 0n);
  const timedOut = Number(counters.timedOut);
  const audited = Number(counters.audited);
  const failedAudits = Number(counters.failedAudits);
  const slashes = Number(counters.slashes);
  const finished = Number(settled) + timedOut + slashes;
  return {
    completed,
    timedOut,
    audited,
    failedAudits,
    slashes,
    reliability: finished === 0 ? 1 : Number(settled) / finished,
    auditPassRate: audited === 0 ? 1 : (audited - failedAudits) / audited,
  };
}

function matches(p: ProviderInfo, f: ProviderFilter, pricedIn: string | undefined): boolean {
  if (f.activeOnly && !p.active) return false;
  if (f.region && p.profile.region !== f.region) return false;
  if (f.renewableOnly && p.profile.energy !== Energy.Renewable) return false;
  if (f.minVramGB !== undefined && p.profile.vramGB < f.minVramGB) return false;
  if (f.minGpuCount !== undefined && p.profile.gpuCount < f.minGpuCount) return false;
  if (f.gpuClass && p.profile.gpuClass !== f.gpuClass) return false;
  if (f.runtime !== undefined && !p.profile.runtimes.includes(f.runtime)) return false;
  if (pricedIn && !(p.prices[pricedIn] > 0n)) return false;
  return true;
}
