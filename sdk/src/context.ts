/**
 * What every SDK module shares: the connected contracts, the runner, and one way to send a
 * transaction that maps every failure to a typed error.
 */
import { ContractTransactionReceipt } from "ethers";
import type {
  ContractRunner,
  ContractTransactionResponse,
  Interface,
  Provider,
  Signer,
  TransactionReceipt,
  TransactionRequest,
  TransactionResponse,
} from "ethers";
import type { AddressBook } from "./addressBook.js";
import type { BlobStore } from "./blob.js";
import { MeshworkContractError, MeshworkError, MeshworkRpcError, isOutOfGasMoney, isRangeRefusal, toMeshworkError } from "./errors.js";
import type { IComputeCommons } from "../../types/ethers-contracts/interfaces/IComputeCommons.js";
import type { IJobMarket } from "../../types/ethers-contracts/interfaces/IJobMarket.js";
import type { IProviderRegistry } from "../../types/ethers-contracts/interfaces/IProviderRegistry.js";
import type { MeshGovernor } from "../../types/ethers-contracts/governance/MeshGovernor.js";
import type { MeshTimelock } from "../../types/ethers-contracts/governance/MeshTimelock.js";
import type { MeshToken } from "../../types/ethers-contracts/token/MeshToken.js";

export interface MeshworkContracts {
  market: IJobMarket;
  registry: IProviderRegistry;
  mesh: MeshToken;
  commons: IComputeCommons;
  governor: MeshGovernor;
  timelock: MeshTimelock;
}

/** How {@link MeshworkContext.send} treats a transaction that is not mined. */
export interface SendingOptions {
  /** Milliseconds to wait for a transaction before sending it again with higher fees; 0 or unset: wait as long as it takes. */
  timeoutMs?: number;
  /** How many times a transaction is sent again (default 3). */
  reprices?: number;
  /** Called with the transaction not mined in time and its new copy. */
  onReprice?: (action: string, stuck: TransactionResponse, again: TransactionResponse) => void;
}

/** A transaction request for `tx`'s call with its nonce (fees left to set). */
function sameCall(tx: TransactionResponse): TransactionRequest {
  return { to: tx.to, data: tx.data, value: tx.value, nonce: tx.nonce, gasLimit: tx.gasLimit, chainId: tx.chainId, type: tx.type };
}

/** Blocks read per log query: public RPCs cap a query's range (commonly at 5,000 or 10,000 blocks). */
export const LOG_RANGE = 5_000;
/** A transaction given up on is not repriced past this many times the fees the RPC quotes (it is still waited for). */
const UNSTICK_FEE_CAP = 4n;
/** How many times {@link MeshworkContext.replacePending} doubles its fees while the node calls its replacement underpriced. */
const REPLACE_TRIES = 6;
/** The fewest blocks a refused log query must have asked for to be taken as refused for its range. */
const NARROWED_FROM_BLOCKS = 8;
/** How many log queries in a row must go through before {@link MeshworkContext.logRange} doubles back. */
const LOG_RANGE_BACK_AFTER = 16;

export class MeshworkContext {
  constructor(
    readonly book: AddressBook,
    readonly chainId: bigint,
    readonly runner: ContractRunner,
    readonly provider: Provider,
    readonly contracts: MeshworkContracts,
    /** Every ABI the SDK decodes reverts with (the token's covers standard ERC-20 errors). */
    readonly interfaces: Record<string, Interface>,
    readonly blobStore: BlobStore | undefined,
    readonly confirmations: number,
    readonly sending: SendingOptions = {},
  ) {}

  /** The signer, or a typed error naming the action that needs one. */
  signer(action: string): Signer {
    if (!this.#hasSigner()) throw new MeshworkError(`${action} needs a signer, but the SDK was connected with a provider only`);
    return this.runner as Signer;
  }

  #hasSigner(): boolean {
    const runner = this.runner as Partial<Signer>;
    return typeof runner.signTypedData === "function" && typeof runner.getAddress === "function";
  }

  async account(action: string): Promise<string> {
    return this.signer(action).getAddress();
  }

  /** The signer's address, or undefined when the SDK was connected with a provider only. */
  async accountIfAny(): Promise<string | undefined> {
    return this.#hasSigner() ? this.call("getAddress", () => (this.runner as Signer).getAddress()) : undefined;
  }

  /** The latest block's timestamp (unix seconds): the chain's now, which a deadline is checked against. */
  async chainTime(action: string): Promise<bigint> {
    return (await this.latestBlock(action)).time;
  }

  /** The latest block's number and time. */
  async latestBlock(action: string): Promise<{ number: bigint; time: bigint }> {
    const latest = await this.call(action, () => this.provider.getBlock("latest"));
    if (!latest) throw new MeshworkError(`${action}: the RPC returned no latest block`);
    return { number: BigInt(latest.number), time: BigInt(latest.timestamp) };
  }

  /**
   * Sends a transaction and waits for it; every failure becomes a {@link MeshworkError}. With
   * `sending.timeoutMs`, a transaction not mined in that time (dropped from the mempool, or priced
   * under a fee spike) is sent again with the same nonce and fees raised by a quarter (at least to the
   * RPC's current ones), up to `sending.reprices` times; whichever copy is mined is the receipt.
   * A transaction given up on that way may still hold its nonce: the next send first sends it again
   * (fees a quarter higher) and waits for it, and sends nothing behind it while it is not mined.
   * A transaction mined and reverted throws the {@link MeshworkContractError} its call throws when run
   * again on the state its block left (`details.hash`: the transaction), where there is one.
   * A transaction whose nonce another transaction took (one sent with the same key from elsewhere) is
   * reported at once, as a {@link MeshworkError} with `details.reason` "replaced" or "cancelled".
   * @throws {MeshworkRpcError} when the RPC fails; `details.reason` "given-up" (with its `hash` and
   * `nonce`) when the last copy is not mined in time either; "stuck" when a transaction given up on
   * before is still not mined (this one was not sent).
   */
  async send(action: string, send: () => Promise<ContractTransactionResponse>): Promise<ContractTransactionReceipt> {
    // Nothing is queued behind a transaction given up on: it goes first (concurrent sends wait for one try).
    if (this.#givenUp.size > 0) await (this.#unsticking ??= this.#unstick().finally(() => (this.#unsticking = undefined)));
    let receipt: TransactionReceipt | null;
    let tx: TransactionResponse | undefined;
    try {
      // The block it is sent after: waiting from there, ethers notices another transaction taking its
      // nonce (a contract call's response, as sent, does not).
      const before = await this.provider.getBlockNumber();
      tx = (await send()).replaceableTransaction(before);
      for (let reprices = 0; ; ) {
        try {
          // At least 1: ethers' wait(0) does not wait, it answers null for a transaction not yet mined.
          receipt = await tx.wait(Math.max(1, this.confirmations), this.sending.timeoutMs || undefined);
          break;
        } catch (error) {
          const e = error as { code?: string; reason?: string; receipt?: TransactionReceipt };
          if (e.code === "TRANSACTION_REPLACED" && e.receipt) {
            // Another copy of this transaction (same call, other fees) was mined instead: it is the receipt.
            if (e.reason === "repriced") {
              if (e.receipt.status === 0) throw await this.#reverted(action, tx, e.receipt, error);
              receipt = e.receipt;
              break;
            }
            // Another transaction took its nonce (sent from elsewhere with the same key): this one never runs.
            throw Object.assign(
              new MeshworkError(`${action}: the transaction was ${e.reason === "cancelled" ? "cancelled" : "replaced"} by another with its nonce`, {
                cause: error,
                details: { reason: e.reason, hash: tx.hash, nonce: tx.nonce, replacement: e.receipt.hash },
              }),
              { receipt: e.receipt },
            );
          }
          if (e.code !== "TIMEOUT" || reprices >= (this.sending.reprices ?? 3)) throw error;
          reprices++;
          const again: TransactionResponse = await this.#reprice(tx);
          if (again !== tx) this.#onReprice(action, tx, again);
          tx = again;
        }
      }
    } catch (error) {
      const mined = (error as { receipt?: TransactionReceipt | null }).receipt;
      // Mined and reverted (its call went through when estimated, then state changed: another node's
      // claim in the same block, say): the revert's reason, found by running the call again on that block.
      if (tx && mined?.status === 0 && mined.hash === tx.hash) throw await this.#reverted(action, tx, mined, error);
      // Sent but not known to be mined (given up on, or a resend or a wait that failed): it may hold its nonce.
      if (tx && !mined) {
        this.#giveUp(action, tx);
        // Not mined in time: say which transaction, since it may still be (retrying the action now could do it twice).
        if ((error as { code?: string }).code === "TIMEOUT") {
          throw new MeshworkRpcError(`${action}: the transaction (nonce ${tx.nonce}) was not mined in time; it may still be, and the next send waits for it`, {
            cause: error,
            details: { reason: "given-up", hash: tx.hash, nonce: tx.nonce },
          });
        }
      }
      throw toMeshworkError(error, this.interfaces, action);
    }
    if (!receipt) throw new MeshworkError(`${action}: the transaction was dropped`);
    return this.#decoded(receipt);
  }

  /**
   * `receipt` as a contract call's, its logs decoded by the ABI of the Meshwork contract it called (by
   * the MESH token's, standard ERC-20 events, for another address), as ethers decodes them: the
   * receipt of a copy, or of a transaction waited for as replaceable, is a plain one.
   */
  #decoded(receipt: TransactionReceipt): ContractTransactionReceipt {
    if (receipt instanceof ContractTransactionReceipt) return receipt;
    const to = receipt.to?.toLowerCase();
    const contract = Object.values(this.contracts).find((c) => String(c.target).toLowerCase() === to) ?? this.contracts.mesh;
    return new ContractTransactionReceipt(contract.interface, this.provider, receipt);
  }

  /** By nonce: the last copy of each transaction sent and not known to be mined (given up on), while its nonce may still be taken. */
  readonly #givenUp = new Map<number, { action: string; tx: TransactionResponse }>();
  #unsticking?: Promise<void>;

  /** Remembers `tx` as given up on (its copy replaces an earlier one of the same nonce). */
  #giveUp(action: string, tx: TransactionResponse) {
    this.#givenUp.set(tx.nonce, { action, tx });
  }

  /**
   * Before anything else is sent: each transaction given up on, lowest nonce first, is sent once more,
   * same nonce, fees a quarter higher (as it is, once they are UNSTICK_FEE_CAP times what the RPC
   * quotes now: a node may have dropped it), and waited for. Resolves when every nonce given up on is used (by any copy).
   * @throws {MeshworkRpcError} `details.reason` "stuck" when one is still not mined: nothing is sent
   * behind it (it would only wait in the mempool too); the next send tries again.
   */
  async #unstick(): Promise<void> {
    while (this.#givenUp.size > 0) {
      const lowest = Math.min(...this.#givenUp.keys());
      const { action, tx } = this.#givenUp.get(lowest)!;
      const mined = await this.call(action, () => this.provider.getTransactionCount(tx.from, "latest"));
      for (const nonce of [...this.#givenUp.keys()]) if (nonce < mined) this.#givenUp.delete(nonce);
      if (!this.#givenUp.has(lowest)) continue;
      const fees = await this.call(action, () => this.provider.getFeeData());
      // Like for like: an EIP-1559 transaction's fee cap against the quoted one, a legacy one's gas price against the gas price.
      const paid = tx.maxFeePerGas ?? tx.gasPrice ?? 0n;
      const quoted = (tx.maxFeePerGas !== null ? fees.maxFeePerGas : fees.gasPrice) ?? 0n;
      let copy = tx;
      if (quoted === 0n || paid < quoted * UNSTICK_FEE_CAP) {
        copy = await this.call(action, () => this.#reprice(tx));
        if (copy !== tx) this.#onReprice(action, tx, copy);
        this.#givenUp.set(lowest, { action, tx: copy });
      } else {
        await this.#rebroadcast(tx);
      }
      try {
        await copy.wait(1, this.sending.timeoutMs || undefined); // (0 would not wait at all)
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === "TIMEOUT") {
          throw new MeshworkRpcError(`an earlier transaction (${action}, nonce ${tx.nonce}) is still not mined; nothing is sent behind it until it is`, {
            cause: error,
            details: { reason: "stuck", action, nonce: tx.nonce, hash: copy.hash },
          });
        }
        // Mined, even reverted (that was the earlier transaction's outcome, not this send's), or replaced:
        // the nonce is used.
        if (code !== "TRANSACTION_REPLACED" && !(error as { receipt?: unknown }).receipt) throw toMeshworkError(error, this.interfaces, action);
      }
      this.#givenUp.delete(lowest);
    }
  }

  /**
   * Replaces every transaction of the signer's that the RPC still holds unmined — the nonces from its
   * "latest" count up to its "pending" count, as a process that stopped before they were mined leaves
   * them — with a zero-value transfer to itself, so what this process sends is not queued behind a
   * transaction it knows nothing of (and so could never reprice). Each replacement pays twice the fees
   * the RPC quotes, doubled again while the node calls it underpriced (up to REPLACE_TRIES times), and
   * is then waited for like a transaction given up on: the next send goes after it (see {@link send}).
   * Whatever the replaced transactions did is to be done again. Meant for a key no one else sends with
   * (a provider node's): another wallet's transaction waiting in the mempool would be cancelled too.
   * @returns the nonces replaced (none when nothing was pending).
   */
  async replacePending(action = "replace pending"): Promise<number[]> {
    const signer = this.signer(action);
    const from = await this.call(action, () => signer.getAddress());
    const [latest, pending] = await Promise.all([
      this.call(action, () => this.provider.getTransactionCount(from, "latest")),
      this.call(action, () => this.provider.getTransactionCount(from, "pending")),
    ]);
    const replaced: number[] = [];
    for (let nonce = latest; nonce < pending; nonce++) {
      if (this.#givenUp.has(nonce)) continue; // replaced (or sent by this process) already: waited for by the next send
      const [fees, gasLimit] = await Promise.all([
        this.call(action, () => this.provider.getFeeData()),
        // Not a flat 21,000: some chains (Arbitrum's) charge a transfer more.
        this.call(action, () => this.provider.estimateGas({ from, to: from, value: 0n })),
      ]);
      for (let tries = 1, factor = 2n; ; tries++, factor *= 2n) {
        const request: TransactionRequest = { to: from, value: 0n, nonce, gasLimit };
        if (fees.maxFeePerGas !== null) {
          request.maxFeePerGas = fees.maxFeePerGas * factor + 1n;
          const tip = (fees.maxPriorityFeePerGas ?? 0n) * factor + 1n;
          request.maxPriorityFeePerGas = tip < request.maxFeePerGas ? tip : request.maxFeePerGas;
        } else {
          request.gasPrice = (fees.gasPrice ?? 0n) * factor + 1n;
        }
        try {
          const tx = await signer.sendTransaction(request);
          this.#giveUp(action, tx);
          replaced.push(nonce);
          break;
        } catch (error) {
          const e = error as { code?: string; message?: string };
          if (e.code === "NONCE_EXPIRED") break; // mined meanwhile
          const underpriced = e.code === "REPLACEMENT_UNDERPRICED" || /underpriced|fee too low/i.test(e.message ?? "");
          if (!underpriced || tries >= REPLACE_TRIES) throw toMeshworkError(error, this.interfaces, action);
        }
      }
    }
    return replaced;
  }

  /**
   * The error for `tx` (or a copy of it), mined in `receipt` and reverted: the
   * {@link MeshworkContractError} its call gives when run again on the state its block left, else
   * "the transaction reverted"; `details.hash` is the mined transaction, `receipt` its receipt.
   */
  async #reverted(action: string, tx: TransactionResponse, receipt: TransactionReceipt, cause: unknown): Promise<MeshworkError> {
    try {
      await this.provider.call({ to: tx.to, from: tx.from, data: tx.data, value: tx.value, blockTag: receipt.blockNumber });
    } catch (replayed) {
      const typed = toMeshworkError(replayed, this.interfaces, action);
      if (typed instanceof MeshworkContractError) {
        typed.details.hash = receipt.hash;
        return Object.assign(typed, { receipt });
      }
    }
    return Object.assign(new MeshworkError(`${action}: the transaction reverted`, { cause, details: { hash: receipt.hash } }), { receipt });
  }

  /** Tells `sending.onReprice`; what it throws is not this send's failure (the copy is sent already). */
  #onReprice(action: string, stuck: TransactionResponse, again: TransactionResponse) {
    try {
      const result: unknown = this.sending.onReprice?.(action, stuck, again);
      if (result instanceof Promise) result.catch(() => undefined); // an async callback's rejection too
    } catch {
      // the caller's callback: its error is its own
    }
  }

  /** `tx` again, same nonce, fees a quarter higher (or the RPC's, if higher); `tx` itself if its nonce was used meanwhile. */
  async #reprice(tx: TransactionResponse): Promise<TransactionResponse> {
    const fees = await this.provider.getFeeData();
    const up = (paid: bigint | null, now: bigint | null) => {
      const raised = ((paid ?? 0n) * 5n) / 4n + 1n;
      return now !== null && now > raised ? now : raised;
    };
    const request = sameCall(tx);
    if (tx.maxFeePerGas !== null) {
      request.maxFeePerGas = up(tx.maxFeePerGas, fees.maxFeePerGas);
      const tip = up(tx.maxPriorityFeePerGas, fees.maxPriorityFeePerGas);
      request.maxPriorityFeePerGas = tip < request.maxFeePerGas ? tip : request.maxFeePerGas;
    } else {
      request.gasPrice = up(tx.gasPrice, fees.gasPrice);
    }
    try {
      return await this.signer("resend").sendTransaction(request);
    } catch (error) {
      if ((error as { code?: string }).code === "NONCE_EXPIRED") return tx; // mined meanwhile: wait for it again
      throw error;
    }
  }

  /**
   * `tx` sent again as it is (same nonce and fees): a node that dropped it from its mempool takes it
   * back; one that holds it, or saw its nonce used, refuses it, which changes nothing (it is waited for
   * either way).
   */
  async #rebroadcast(tx: TransactionResponse): Promise<void> {
    const request = sameCall(tx);
    if (tx.maxFeePerGas !== null) Object.assign(request, { maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas });
    else request.gasPrice = tx.gasPrice;
    try {
      await this.signer("resend").sendTransaction(request);
    } catch (error) {
      // "already known", "nonce too low", …: it is held, or mined. But an account that cannot pay for
      // it is why it was dropped, and what the operator must hear.
      if (isOutOfGasMoney(error)) throw toMeshworkError(error, this.interfaces, "resend");
    }
  }

  /** A read-only call with the same error mapping. */
  async call<T>(action: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      throw toMeshworkError(error, this.interfaces, action);
    }
  }

  /**
   * Blocks per log query: {@link LOG_RANGE}; a quarter as many after the node answered a query with an
   * error (a cap on a query's range or result count: some RPCs cap at 10 blocks), down to 1; doubled
   * again after 16 queries in a row went through. Shared by every reader of this connection.
   */
  logRange = LOG_RANGE;
  #logsInARow = 0;

  /**
   * Everything `query` returns over `[fromBlock, toBlock]` (the deployment block and the latest by
   * default), read in ranges of {@link MeshworkContext.logRange} blocks, one after the other, so it
   * works against public RPCs that cap a query's range.
   * @throws {MeshworkRpcError} when the RPC fails; whatever else the query throws, typed as by
   * {@link call}, once a range of one block fails.
   */
  async logs<T>(action: string, query: (fromBlock: number, toBlock: number) => Promise<T[]>, fromBlock = this.book.deploymentBlock, toBlock?: number): Promise<T[]> {
    const latest = toBlock ?? (await this.call("blockNumber", () => this.provider.getBlockNumber()));
    const out: T[] = [];
    for (let from = fromBlock; from <= latest; ) {
      const to = Math.min(latest, from + this.logRange - 1);
      let part: T[];
      try {
        part = await this.call(action, () => query(from, to));
      } catch (error) {
        if (!this.narrowLogRange(error, to - from + 1)) throw error;
        continue;
      }
      out.push(...part);
      from = to + 1;
      this.logRangeWorked();
    }
    return out;
  }

  /**
   * After a log query over `blocks` blocks failed: narrows {@link MeshworkContext.logRange} to a quarter
   * of that and answers true (query again), unless the query was lost or throttled rather than
   * refused (see {@link isRangeRefusal}: a dead RPC says nothing about the range) or was under 8 blocks.
   * @internal
   */
  narrowLogRange(error: unknown, blocks: number): boolean {
    // No RPC caps a query under 10 blocks: a shorter one refused (a scan of the last few blocks, say)
    // was refused for something else ("header not found" from a lagging node) and says nothing of the range.
    if (!isRangeRefusal(error) || blocks < NARROWED_FROM_BLOCKS) return false;
    this.logRange = Math.min(this.logRange, Math.max(1, Math.floor(blocks / 4)));
    this.#logsInARow = 0;
    return true;
  }

  /** After a log query went through: widens {@link MeshworkContext.logRange} again, now and then. @internal */
  logRangeWorked(): void {
    if (++this.#logsInARow >= LOG_RANGE_BACK_AFTER && this.logRange < LOG_RANGE) {
      this.logRange = Math.min(LOG_RANGE, this.logRange * 2);
      this.#logsInARow = 0;
    }
  }

  /** A payment token's address from its symbol in the address book, or an address as is. */
  token(symbolOrAddress: string): string {
    const known = this.book.contracts.paymentTokens[symbolOrAddress];
    if (known) return known;
    if (/^0x[0-9a-fA-F]{40}$/.test(symbolOrAddress)) return symbolOrAddress;
    throw new MeshworkError(`unknown payment token "${symbolOrAddress}"`, {
      details: { known: Object.keys(this.book.contracts.paymentTokens).join(", ") },
    });
  }
}
