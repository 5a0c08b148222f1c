/**
 * Internal balances in the market: what consumers pre-fund jobs from and what providers, auditors and
 * refunds are paid into (pull payments: nothing is sent until its owner withdraws).
 */
import { Contract, Interface } from "ethers";
import type { ContractTransactionReceipt } from "ethers";
import type { MeshworkContext } from "./context.js";
import { MeshworkRpcError } from "./errors.js";

const ERC20_ABI = [
  "function allowance(address owner, address spender) view returns (uint256)",
  "function approve(address spender, uint256 amount) returns (bool)",
  "function balanceOf(address account) view returns (uint256)",
  "function decimals() view returns (uint8)",
];
const APPROVE = new Interface(ERC20_ABI);

export interface TokenBalance {
  token: string;
  symbol: string;
  /** The account's internal balance in the market. */
  market: bigint;
  /** The account's wallet balance of the token. */
  wallet: bigint;
}

export class Balances {
  /** Decimals by token address, read once each. */
  readonly #decimals = new Map<string, Promise<number>>();

  constructor(private readonly ctx: MeshworkContext) {}

  /**
   * A token's decimals (a payment token's symbol or address, or "MESH"), read from the token once: what
   * amounts the user types are scaled by.
   * @throws {MeshworkError} for an unknown symbol; {@link MeshworkRpcError} when the RPC fails.
   * @example
   * ```ts
   * const price = parseUnits("1.5", await mw.balances.decimals("tUSD"));
   * ```
   */
  decimals(token: string): Promise<number> {
    const address = (token === "MESH" ? this.ctx.book.contracts.mesh : this.ctx.token(token)).toLowerCase();
    let known = this.#decimals.get(address);
    if (!known) {
      const erc20 = new Contract(address, ERC20_ABI, this.ctx.runner);
      known = this.ctx.call(`${token} decimals`, async () => Number(await erc20.decimals()));
      known.catch(() => this.#decimals.delete(address)); // a failed read is tried again
      this.#decimals.set(address, known);
    }
    return known;
  }

  /**
   * Deposits `amount` of `token` (symbol or address) into `account`'s market balance (the caller's by
   * default), approving the market first when needed.
   * @throws {MeshworkContractError} e.g. `JobMarketUnknownToken`, `ERC20InsufficientBalance`.
   * @example
   * ```ts
   * await mw.balances.deposit("tUSD", 100_000_000n);
   * ```
   */
  async deposit(token: string, amount: bigint, account?: string): Promise<ContractTransactionReceipt> {
    const address = this.ctx.token(token);
    const to = account ?? (await this.ctx.account("deposit"));
    await this.ensureAllowance(address, amount, "deposit");
    return this.ctx.send("deposit", () => this.ctx.contracts.market.deposit(address, to, amount));
  }

  /**
   * Withdraws from the caller's market balance to `to` (the caller by default).
   * @throws {MeshworkContractError} `JobMarketInsufficientBalance(token, account, balance, amount)`.
   * @example
   * ```ts
   * await mw.balances.withdraw("tUSD", 5_000_000n);
   * ```
   */
  async withdraw(token: string, amount: bigint, to?: string): Promise<ContractTransactionReceipt> {
    const recipient = to ?? (await this.ctx.account("withdraw"));
    return this.ctx.send("withdraw", () => this.ctx.contracts.market.withdraw(this.ctx.token(token), amount, recipient));
  }

  /**
   * Withdraws several tokens in one transaction.
   * @throws {MeshworkContractError} as {@link Balances.withdraw}.
   * @example
   * ```ts
   * await mw.balances.withdrawBatch([{ token: "tUSD", amount: 1_000_000n }, { token: "tEUR", amount: 2n }]);
   * ```
   */
  async withdrawBatch(withdrawals: { token: string; amount: bigint }[], to?: string): Promise<ContractTransactionReceipt> {
    const recipient = to ?? (await this.ctx.account("withdrawBatch"));
    const list = withdrawals.map((w) => ({ token: this.ctx.token(w.token), amount: w.amount }));
    return this.ctx.send("withdrawBatch", () => this.ctx.contracts.market.withdrawBatch(list, recipient));
  }

  /** `account`'s market balance of `token`. */
  async of(token: string, account?: string): Promise<bigint> {
    const who = account ?? (await this.ctx.account("balances.of"));
    return this.ctx.call("balanceOf", () => this.ctx.contracts.market.balanceOf(this.ctx.token(token), who));
  }

  /**
   * Market and wallet balances of every payment token in the address book.
   * @example
   * ```ts
   * for (const b of await mw.balances.all()) console.log(b.symbol, b.market, b.wallet);
   * ```
   */
  async all(account?: string): Promise<TokenBalance[]> {
    const who = account ?? (await this.ctx.account("balances.all"));
    const out: TokenBalance[] = [];
    for (const [symbol, token] of Object.entries(this.ctx.book.contracts.paymentTokens)) {
      const erc20 = new Contract(token, ERC20_ABI, this.ctx.runner);
      const [market, wallet] = await this.ctx.call("balances", () =>
        Promise.all([this.ctx.contracts.market.balanceOf(token, who), erc20.balanceOf(who) as Promise<bigint>]),
      );
      out.push({ token, symbol, market, wallet });
    }
    return out;
  }

  /**
   * Makes sure the market (or `options.spender`) may pull `amount` of `token` (a symbol or an address)
   * from the caller, with one approval when the allowance is short: of exactly `amount` (what the
   * market takes beyond the internal balance), or of `options.approve` when that is more — a budget
   * that covers later pulls too, as a worker's `maxCollateral` does. A token that refuses to change one
   * non-zero allowance to another (USDT and its kind) has its allowance set to 0 first.
   * @throws {MeshworkContractError} the token refuses the approval; {@link MeshworkRpcError}.
   */
  async ensureAllowance(token: string, amount: bigint, action: string, options: string | { spender?: string; approve?: bigint } = {}): Promise<void> {
    if (typeof options === "string") options = { spender: options }; // the spender, as the 4th argument used to be
    const owner = await this.ctx.account(action);
    const to = options.spender ?? this.ctx.book.contracts.market;
    const address = this.ctx.token(token);
    const erc20 = new Contract(address, ERC20_ABI, this.ctx.runner);
    const allowance: bigint = await this.ctx.call(action, () => erc20.allowance(owner, to));
    if (allowance >= amount) return;
    const value = options.approve !== undefined && options.approve > amount ? options.approve : amount;
    if (allowance > 0n && !(await this.#approves(address, owner, to, value, action))) {
      await this.ctx.send(`${action}: approve 0`, () => erc20.approve(to, 0n));
    }
    await this.ctx.send(`${action}: approve`, () => erc20.approve(to, value));
  }

  /** Whether `owner`'s `approve(spender, value)` would go through now: not if it reverts or returns false. */
  async #approves(token: string, owner: string, spender: string, value: bigint, action: string): Promise<boolean> {
    const data = APPROVE.encodeFunctionData("approve", [spender, value]);
    let result: string;
    try {
      result = await this.ctx.call(action, () => this.ctx.provider.call({ from: owner, to: token, data }));
    } catch (error) {
      if (error instanceof MeshworkRpcError) throw error;
      return false; // reverted (with or without a reason)
    }
    // Tokens that return nothing (USDT) succeed by not reverting.
    return result === "0x" || BigInt(result.slice(0, 66)) !== 0n;
  }
}
