/**
 * The SDK's entry point: `Meshwork.connect` binds a signer or provider to one deployment (its address
 * book) and hands out the modules — jobs, providers, balances, governance, commons, stats.
 */
import type { ContractRunner, Interface, Provider } from "ethers";
import { type AddressBook, loadAddressBook, parseAddressBook } from "./addressBook.js";
import { Balances } from "./balances.js";
import type { BlobStore } from "./blob.js";
import { Commons } from "./commons.js";
import { MeshworkContext, type MeshworkContracts, type SendingOptions } from "./context.js";
import { MeshworkChainMismatchError, MeshworkConfigError, toMeshworkError } from "./errors.js";
import { Governance } from "./governance.js";
import { Jobs } from "./jobs.js";
import { Providers } from "./providers.js";
import { computeStats, loadEvents, type ComputeStatsOptions, type MarketEvent, type MarketStats } from "./stats.js";
import { IComputeCommons__factory } from "../../types/ethers-contracts/factories/interfaces/IComputeCommons__factory.js";
import { IJobMarket__factory } from "../../types/ethers-contracts/factories/interfaces/IJobMarket__factory.js";
import { IProviderRegistry__factory } from "../../types/ethers-contracts/factories/interfaces/IProviderRegistry__factory.js";
import { MeshGovernor__factory } from "../../types/ethers-contracts/factories/governance/MeshGovernor__factory.js";
import { MeshTimelock__factory } from "../../types/ethers-contracts/factories/governance/MeshTimelock__factory.js";
import { MeshToken__factory } from "../../types/ethers-contracts/factories/token/MeshToken__factory.js";

export interface ConnectOptions {
  /** A signer (to send transactions) or a provider (read-only). It must be connected to a provider. */
  runner: ContractRunner;
  /** Load `deployments/<network>.json` … */
  network?: string;
  /** … or pass the address book itself. */
  addresses?: AddressBook | unknown;
  /** Where address books live (default: `deployments/` of the working directory). */
  deploymentsDir?: string;
  /** Where specs go and results come from. */
  blobStore?: BlobStore;
  /** Confirmations to wait for on each transaction (default 1; 0 is taken as 1: a transaction is always waited for until mined). */
  confirmations?: number;
  /**
   * A transaction not mined within `timeoutMs` (dropped from the mempool, priced under a fee spike)
   * is sent again, same nonce, fees raised by a quarter, up to `reprices` times (default 3). Default:
   * wait as long as it takes.
   */
  sending?: SendingOptions;
}

export class Meshwork {
  readonly jobs: Jobs;
  readonly providers: Providers;
  readonly balances: Balances;
  readonly governance: Governance;
  readonly commons: Commons;

  private constructor(readonly context: MeshworkContext) {
    this.jobs = new Jobs(context);
    this.providers = new Providers(context);
    this.balances = new Balances(context);
    this.governance = new Governance(context);
    this.commons = new Commons(context);
  }

  /**
   * Connects to a deployment. Checks that the runner's chain is the address book's.
   * @throws {MeshworkConfigError} no address book, or a runner without a provider.
   * @throws {MeshworkValidationError} a malformed address book.
   * @throws {MeshworkChainMismatchError} the provider is on another chain.
   * @throws {MeshworkRpcError} the provider cannot be reached.
   * @example
   * ```ts
   * const provider = new JsonRpcProvider("http://127.0.0.1:8545");
   * const signer = new Wallet(process.env.KEY!, provider);
   * const mw = await Meshwork.connect({ runner: signer, network: "localhost" });
   * ```
   */
  static async connect(options: ConnectOptions): Promise<Meshwork> {
    const book = options.addresses
      ? parseAddressBook(options.addresses)
      : options.network
        ? loadAddressBook(options.network, options.deploymentsDir)
        : (() => {
            throw new MeshworkConfigError("connect needs `network` or `addresses`");
          })();
    const provider: Provider | null | undefined = (options.runner as { provider?: Provider | null }).provider ??
      (typeof (options.runner as Provider).getNetwork === "function" ? (options.runner as Provider) : undefined);
    if (!provider) throw new MeshworkConfigError("the runner has no provider: connect the signer to one");
    let chainId: bigint;
    try {
      chainId = (await provider.getNetwork()).chainId;
    } catch (error) {
      throw toMeshworkError(error, {}, "getNetwork");
    }
    if (chainId !== BigInt(book.chainId)) throw new MeshworkChainMismatchError(BigInt(book.chainId), chainId, { details: { network: book.network } });
    const runner = options.runner;
    const c = book.contracts;
    const contracts: MeshworkContracts = {
      market: IJobMarket__factory.connect(c.market, runner),
      registry: IProviderRegistry__factory.connect(c.registry, runner),
      mesh: MeshToken__factory.connect(c.mesh, runner),
      commons: IComputeCommons__factory.connect(c.commons, runner),
      governor: MeshGovernor__factory.connect(c.governor, runner),
      timelock: MeshTimelock__factory.connect(c.timelock, runner),
    };
    const interfaces: Record<string, Interface> = {
      JobMarket: contracts.market.interface,
      ProviderRegistry: contracts.registry.interface,
      ComputeCommons: contracts.commons.interface,
      MeshGovernor: contracts.governor.interface,
      MeshTimelock: contracts.timelock.interface,
      MeshToken: contracts.mesh.interface,
    };
    const context = new MeshworkContext(book, chainId, runner, provider, contracts, interfaces, options.blobStore, options.confirmations ?? 1, options.sending);
    return new Meshwork(context);
  }

  /**
   * The market's public statistics (queue times by GPU class and region, price board and index,
   * utilisation, provider reliability, audits, slashes with reasons), computed from events since the
   * deployment block (or `fromBlock`).
   * @throws {MeshworkRpcError} when the RPC fails (a log query's range is narrowed where the RPC caps it).
   * @example
   * ```ts
   * const { queueTime, priceBoard } = await mw.stats();
   * ```
   */
  async stats(options: ComputeStatsOptions & { fromBlock?: number; toBlock?: number } = {}): Promise<MarketStats & { events: MarketEvent[] }> {
    const { market, registry } = this.context.contracts;
    const events = await loadEvents(
      { market, registry },
      {
        fromBlock: options.fromBlock ?? this.book.deploymentBlock,
        toBlock: options.toBlock,
        provider: this.context.provider,
        // The context's reader: narrower ranges where the RPC caps them, failures as MeshworkRpcError.
        readLogs: (query, from, to) => this.context.logs("stats", query, from, to),
        call: (what, request) => this.context.call(`stats: ${what}`, request),
      },
    );
    return { ...computeStats(events, options), events };
  }

  get book(): AddressBook {
    return this.context.book;
  }

  get chainId(): bigint {
    return this.context.chainId;
  }
}
