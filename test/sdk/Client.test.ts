/**
 * Meshwork.connect and error mapping: address books from a file or passed in, a wrong chain, a bad or
 * missing book, a read-only runner; every custom error of every contract ABI decoded into a
 * MeshworkContractError with its name and arguments; RPC failures typed as such.
 */
import { expect } from "chai";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AbiCoder, ErrorFragment, FeeData, JsonRpcProvider, ParamType, TransactionReceipt, Wallet, ZeroAddress, type EventLog } from "ethers";
import { network } from "hardhat";
import { Meshwork } from "../../sdk/src/client.js";
import {
  MeshworkChainMismatchError,
  MeshworkConfigError,
  MeshworkContractError,
  MeshworkError,
  MeshworkRpcError,
  MeshworkValidationError,
  isRangeRefusal,
  toMeshworkError,
} from "../../sdk/src/errors.js";
import { USD, sdkWorld, type SdkWorld } from "./fixture.js";

const connection = await network.create();
const { networkHelpers } = connection;

async function world(): Promise<SdkWorld> {
  return sdkWorld(connection);
}

/** A sample value of an ABI type, for encoding error arguments. */
function sample(t: ParamType, i: number): unknown {
  if (t.baseType === "array") return [sample(t.arrayChildren!, i)];
  if (t.baseType === "tuple") return t.components!.map((c, j) => sample(c, i + j));
  if (t.type === "address") return "0x" + (i + 1).toString(16).padStart(40, "0");
  if (t.type === "bool") return true;
  if (t.type === "string") return `field${i}`;
  if (t.type.startsWith("bytes")) {
    const n = t.type === "bytes" ? 3 : Number(t.type.slice(5));
    return "0x" + "ab".repeat(n);
  }
  return BigInt(i + 1); // uint/int, enums
}

/**
 * The cheap provider's SDK resending a transaction not mined in `timeoutMs` (300) up to `reprices` times (each
 * resend recorded as "action nonce→nonce"), and the transactions the chain holds unmined.
 */
async function repricing(reprices: number, timeoutMs = 300) {
  const w = await networkHelpers.loadFixture(world);
  const rpc = connection.provider;
  const resent: string[] = [];
  const mw = await Meshwork.connect({
    runner: w.cheap,
    addresses: w.book,
    sending: { timeoutMs, reprices, onReprice: (action, stuck, again) => resent.push(`${action} ${stuck.nonce}→${again.nonce}`) },
  });
  const pending = async () =>
    ((await rpc.request({ method: "eth_getBlockByNumber", params: ["pending", true] })) as { transactions: { hash: string; nonce: string; maxFeePerGas: string }[] }).transactions;
  return { w, rpc, reprices: resent, mw, pending };
}

/** `promise` watched: `done` settles with it, and `outcome()` is what it resolved or rejected with (undefined until then). */
function watch(promise: Promise<unknown>): { done: Promise<void>; outcome: () => unknown } {
  let outcome: unknown;
  const done = promise.then(
    (r) => void (outcome = r),
    (e) => void (outcome = e),
  );
  return { done, outcome: () => outcome };
}

describe("SDK: connect and errors", () => {
  it("connects with a passed address book and with deployments/<network>.json", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await Meshwork.connect({ runner: w.consumer, addresses: w.book });
    expect(mw.chainId).to.equal(BigInt(w.book.chainId));
    expect(mw.book.contracts.market).to.equal(await w.market.getAddress());

    const dir = mkdtempSync(join(tmpdir(), "meshwork-book-"));
    writeFileSync(join(dir, "hardhat.json"), JSON.stringify(w.book));
    const fromFile = await Meshwork.connect({ runner: w.consumer, network: "hardhat", deploymentsDir: dir });
    expect(fromFile.book).to.deep.equal(mw.book);
    expect(await fromFile.balances.of("tUSD", w.cheap.address)).to.equal(100_000n * USD);
  });

  it("refuses another chain's address book with a typed error", async () => {
    const w = await networkHelpers.loadFixture(world);
    const error = await Meshwork.connect({ runner: w.consumer, addresses: { ...w.book, chainId: 1 } }).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkChainMismatchError);
    expect(error).to.include({ expected: 1n, actual: BigInt(w.book.chainId) });
  });

  it("reports a missing, malformed or absent address book", async () => {
    const w = await networkHelpers.loadFixture(world);
    const dir = mkdtempSync(join(tmpdir(), "meshwork-book-"));
    const missing = await Meshwork.connect({ runner: w.consumer, network: "nowhere", deploymentsDir: dir }).catch((e) => e);
    expect(missing).to.be.instanceOf(MeshworkConfigError);
    expect(missing.details.path).to.equal(join(dir, "nowhere.json"));

    const bad = { ...w.book, contracts: { ...w.book.contracts, market: "0x1234" } };
    const malformed = await Meshwork.connect({ runner: w.consumer, addresses: bad }).catch((e) => e);
    expect(malformed).to.be.instanceOf(MeshworkValidationError);
    expect(malformed.issues[0].path).to.deep.equal(["contracts", "market"]);

    writeFileSync(join(dir, "broken.json"), "{ not json");
    const broken = await Meshwork.connect({ runner: w.consumer, network: "broken", deploymentsDir: dir }).catch((e) => e);
    expect(broken).to.be.instanceOf(MeshworkConfigError);

    const none = await Meshwork.connect({ runner: w.consumer }).catch((e) => e);
    expect(none).to.be.instanceOf(MeshworkConfigError);
    const detached = await Meshwork.connect({ runner: Wallet.createRandom(), addresses: w.book }).catch((e) => e);
    expect(detached).to.be.instanceOf(MeshworkConfigError);
  });

  it("reads with a provider but needs a signer to send", async () => {
    const w = await networkHelpers.loadFixture(world);
    const reader = await Meshwork.connect({ runner: w.ethers.provider, addresses: w.book });
    expect(await reader.balances.of("tUSD", w.cheap.address)).to.equal(100_000n * USD);
    const error = await reader.balances.withdraw("tUSD", 1n).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkError);
    expect(error.shortMessage).to.match(/needs a signer/);
  });

  it("turns a revert into a MeshworkContractError with the contract, the error name and its arguments", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const error = await mw.balances.withdraw("tUSD", 5n).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkContractError);
    expect(error).to.include({ contract: "JobMarket", errorName: "JobMarketInsufficientBalance" });
    expect([...error.args]).to.deep.equal([await w.usd.getAddress(), w.consumer.address, 0n, 5n]);
    expect(error.arg("need")).to.equal(5n);
    expect(error.walk(MeshworkContractError)).to.equal(error);
    expect(error.walk()).to.not.equal(error); // the ethers error underneath

    const registryError = await mw.providers.withdrawStake().catch((e) => e);
    expect(registryError).to.include({ contract: "ProviderRegistry", errorName: "ProviderRegistryNothingToWithdraw" });
    const unknownToken = await mw.balances.deposit(ZeroAddress, 1n).catch((e) => e);
    expect(unknownToken).to.be.instanceOf(MeshworkError);
  });

  it("maps every custom error of every contract to its typed SDK error", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const { interfaces } = mw.context;
    let count = 0;
    for (const [contract, iface] of Object.entries(interfaces)) {
      iface.forEachError((fragment: ErrorFragment) => {
        const args = fragment.inputs.map((input, i) => sample(input, i));
        const data = iface.encodeErrorResult(fragment, args);
        const mapped = toMeshworkError({ code: "CALL_EXCEPTION", data }, interfaces, "test");
        expect(mapped, fragment.name).to.be.instanceOf(MeshworkContractError);
        const typed = mapped as MeshworkContractError;
        expect(typed.errorName).to.equal(fragment.name);
        // The first ABI that knows the error names the contract (shared errors: the market's).
        expect(interfaces[typed.contract].getError(fragment.selector)).to.not.equal(null);
        const again = AbiCoder.defaultAbiCoder().encode(fragment.inputs, [...typed.args]);
        expect(again).to.equal(AbiCoder.defaultAbiCoder().encode(fragment.inputs, args));
        count++;
      });
      void contract;
    }
    expect(count).to.be.greaterThan(80);
  });

  it("sends a transaction dropped from the mempool again, same nonce, higher fees, and returns the copy's receipt; gives up typed after its reprices", async () => {
    const { w, rpc, reprices, mw, pending } = await repricing(2);
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    try {
      const posting = mw.providers.postPrice("tUSD", 7n * USD);
      let sent = await pending();
      for (let i = 0; i < 100 && sent.length === 0; i++) sent = await new Promise((r) => setTimeout(r, 20)).then(pending);
      const [dropped] = sent;
      expect(await rpc.request({ method: "hardhat_dropTransaction", params: [dropped.hash] })).to.equal(true);
      let receipt: Awaited<typeof posting> | undefined;
      void posting.then((r) => (receipt = r));
      for (let i = 0; i < 50 && !receipt; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await rpc.request({ method: "evm_mine", params: [] });
      }
      expect(receipt, "the copy was mined").to.not.equal(undefined);
      const mined = (await connection.ethers.provider.getTransaction(receipt!.hash))!;
      expect(mined.hash).to.not.equal(dropped.hash);
      expect(mined.nonce).to.equal(Number(dropped.nonce));
      expect(mined.maxFeePerGas! > BigInt(dropped.maxFeePerGas)).to.equal(true);
      expect(reprices).to.deep.equal([`postPrice ${mined.nonce}→${mined.nonce}`]);
      expect((receipt!.logs[0] as EventLog).eventName, "the copy's logs decoded as the contract's").to.equal("PricePosted");
      expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(7n * USD);

      // Never mined (dropped each time): after its reprices, a typed error.
      const stuck = mw.providers.postPrice("tUSD", 8n * USD).catch((e) => e);
      let outcome: unknown;
      void stuck.then((e) => (outcome = e));
      for (let i = 0; i < 100 && outcome === undefined; i++) {
        await new Promise((r) => setTimeout(r, 50));
        for (const tx of await pending()) await rpc.request({ method: "hardhat_dropTransaction", params: [tx.hash] });
      }
      expect(outcome).to.be.instanceOf(MeshworkRpcError);
      expect((outcome as MeshworkRpcError).walk()).to.include({ code: "TIMEOUT" });
      expect(reprices).to.have.length(3); // two more
    } finally {
      for (const tx of await pending()) await rpc.request({ method: "hardhat_dropTransaction", params: [tx.hash] });
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(7n * USD);
  });

  it("sends nothing behind a transaction it gave up on: that one goes again first, and the next send waits for it", async () => {
    const { w, rpc, reprices, mw, pending } = await repricing(1);
    const nonce = await connection.ethers.provider.getTransactionCount(w.cheap.address, "latest");
    await rpc.request({ method: "evm_setAutomine", params: [false] }); // nothing is mined: the mempool holds every copy
    try {
      const given = await mw.providers.postPrice("tUSD", 7n * USD).catch((e) => e);
      expect(given).to.be.instanceOf(MeshworkRpcError);
      expect(given.walk()).to.include({ code: "TIMEOUT" });
      expect(given.details).to.include({ reason: "given-up", nonce }); // which transaction may still be mined
      expect((await pending()).map((tx) => tx.hash)).to.deep.equal([given.details.hash]);
      const behind = await mw.providers.postPrice("tUSD", 8n * USD).catch((e) => e);
      expect(behind).to.be.instanceOf(MeshworkRpcError);
      expect(behind.details, behind.message).to.include({ reason: "stuck", action: "postPrice", nonce });
      expect((await pending()).map((tx) => Number(tx.nonce))).to.deep.equal([nonce]); // nothing queued behind it
      expect(reprices).to.deep.equal([`postPrice ${nonce}→${nonce}`, `postPrice ${nonce}→${nonce}`]);
      await rpc.request({ method: "evm_mine", params: [] });
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(7n * USD);
    await mw.providers.postPrice("tUSD", 9n * USD); // the nonce was used: sent at once
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(9n * USD);
    expect(reprices).to.have.length(2);
  });

  it("remembers a transaction whose resend failed (the RPC dropped): the next send still sends nothing behind it", async () => {
    const { w, rpc, mw, pending } = await repricing(1);
    const nonce = await connection.ethers.provider.getTransactionCount(w.cheap.address, "latest");
    const provider = mw.context.provider as { getFeeData: () => Promise<unknown> };
    const getFeeData = provider.getFeeData;
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    try {
      provider.getFeeData = () => Promise.reject(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
      const failed = await mw.providers.postPrice("tUSD", 7n * USD).catch((e) => e);
      expect(failed).to.be.instanceOf(MeshworkRpcError);
      provider.getFeeData = getFeeData;
      const behind = await mw.providers.postPrice("tUSD", 8n * USD).catch((e) => e);
      expect(behind.details, behind.message).to.include({ reason: "stuck", nonce });
      expect((await pending()).map((tx) => Number(tx.nonce))).to.deep.equal([nonce]);
      await rpc.request({ method: "evm_mine", params: [] });
    } finally {
      provider.getFeeData = getFeeData;
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(7n * USD);
    await mw.providers.postPrice("tUSD", 9n * USD);
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(9n * USD);
  });

  it("lets the next send go once the transaction it gave up on is mined, even reverted (that was the earlier send's outcome)", async () => {
    const { w, rpc, mw } = await repricing(1);
    const nonce = await connection.ethers.provider.getTransactionCount(w.cheap.address, "latest");
    // Reverts when mined (only the market may pause claims); the gas limit is given, so nothing estimates it first.
    const reverting = () => w.cheap.sendTransaction({ to: w.book.contracts.registry, data: w.registry.interface.encodeFunctionData("pauseClaims", [0n]), gasLimit: 100_000n });
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    let receipt: { status: number | null; blockNumber: number } | undefined;
    try {
      const given = await mw.context.send("pauseClaims", reverting as never).catch((e) => e);
      expect(given).to.be.instanceOf(MeshworkRpcError);
      expect(given.walk()).to.include({ code: "TIMEOUT" });
      const next = mw.providers.postPrice("tUSD", 7n * USD);
      void next.catch(() => {});
      for (let i = 0; i < 50 && !receipt; i++) {
        await new Promise((r) => setTimeout(r, 50));
        await rpc.request({ method: "evm_mine", params: [] });
        receipt = await Promise.race([next, new Promise<undefined>((r) => setTimeout(r, 10, undefined))]);
      }
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(receipt, "the next send went through").to.include({ status: 1 });
    // The transaction given up on (a copy of it) was mined before, and reverted.
    let earlier: { nonce: number; status: number | null } | undefined;
    for (let b = receipt!.blockNumber - 1; b > 0 && !earlier; b--) {
      const tx = (await connection.ethers.provider.getBlock(b, true))!.prefetchedTransactions.find((t) => t.from === w.cheap.address && t.nonce === nonce);
      if (tx) earlier = { nonce: tx.nonce, status: (await connection.ethers.provider.getTransactionReceipt(tx.hash))!.status };
    }
    expect(earlier).to.deep.equal({ nonce, status: 0 });
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(7n * USD);
  });

  it("of two transactions given up on at once, holds back behind the lower nonce", async () => {
    const { w, rpc, mw, pending } = await repricing(0);
    const nonce = await connection.ethers.provider.getTransactionCount(w.cheap.address, "latest");
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    try {
      // Sent one after the other, given up on together: the higher nonce gives up last.
      const first = mw.providers.postPrice("tUSD", 7n * USD).catch((e) => e);
      for (let i = 0; i < 100 && (await pending()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      const second = mw.providers.postPrice("tUSD", 8n * USD).catch((e) => e);
      const given = await Promise.all([first, second]);
      for (const e of given) expect(e.walk(), e.message).to.include({ code: "TIMEOUT" });
      expect((await pending()).map((tx) => Number(tx.nonce))).to.deep.equal([nonce, nonce + 1]);
      const behind = await mw.providers.postPrice("tUSD", 9n * USD).catch((e) => e);
      expect(behind.details, behind.message).to.include({ reason: "stuck", nonce });
      await rpc.request({ method: "evm_mine", params: [] });
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(8n * USD);
  });

  it("reports a transaction whose nonce another transaction took (sent with the same key elsewhere) at once, and holds nothing back for it", async () => {
    const { w, rpc, reprices, mw, pending } = await repricing(1, 10_000); // noticed long before it would be sent again
    const nonce = await connection.ethers.provider.getTransactionCount(w.cheap.address, "latest");
    const price = await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD);
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    const posting = watch(mw.providers.postPrice("tUSD", 7n * USD));
    try {
      let sent = await pending();
      for (let i = 0; i < 100 && sent.length === 0; i++) sent = await new Promise((r) => setTimeout(r, 10)).then(pending);
      await rpc.request({ method: "hardhat_dropTransaction", params: [sent[0].hash] });
      await w.cheap.sendTransaction({ to: w.cheap.address, value: 0n, nonce }); // a wallet elsewhere cancels it
      await rpc.request({ method: "evm_mine", params: [] });
      await posting.done;
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    const e = posting.outcome() as MeshworkError;
    expect(e).to.be.instanceOf(MeshworkError);
    expect(e.shortMessage).to.equal("postPrice: the transaction was cancelled by another with its nonce");
    expect(e.details).to.include({ reason: "cancelled", nonce });
    expect(reprices).to.deep.equal([]); // noticed before its timeout, not sent again
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(price);
    await mw.providers.postPrice("tUSD", 9n * USD); // nothing held back
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(9n * USD);
  });

  it("sends a transaction again even when the onReprice callback throws, and returns the copy's receipt", async () => {
    const w = await networkHelpers.loadFixture(world);
    const rpc = connection.provider;
    let calls = 0;
    const mw = await Meshwork.connect({
      runner: w.cheap,
      addresses: w.book,
      sending: {
        timeoutMs: 300,
        onReprice: () => {
          calls++;
          throw new Error("a broken callback");
        },
      },
    });
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    let receipt: { status: number | null } | undefined;
    try {
      const posting = mw.providers.postPrice("tUSD", 7n * USD);
      void posting.catch(() => {});
      for (let i = 0; i < 250 && calls === 0; i++) await new Promise((r) => setTimeout(r, 20)); // past the timeout: sent again
      for (let i = 0; i < 20 && !receipt; i++) {
        await rpc.request({ method: "evm_mine", params: [] });
        receipt = await Promise.race([posting, new Promise<undefined>((r) => setTimeout(r, 50, undefined))]);
      }
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(receipt).to.include({ status: 1 });
    expect(calls, "sent again").to.be.at.least(1);
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(7n * USD);
  });

  it("sends again every transaction it gave up on, lowest nonce first, before anything behind them", async () => {
    const { w, rpc, reprices, mw, pending } = await repricing(0);
    const nonce = await connection.ethers.provider.getTransactionCount(w.cheap.address, "latest");
    const gas = await w.registry.connect(w.cheap).postPrice.estimateGas(w.book.contracts.paymentTokens.tUSD, 9n * USD);
    const { gasLimit } = (await connection.ethers.provider.getBlock("latest"))!;
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    let third: ReturnType<typeof watch> | undefined;
    try {
      const first = mw.providers.postPrice("tUSD", 7n * USD).catch((e) => e);
      for (let i = 0; i < 100 && (await pending()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      const second = mw.providers.postPrice("tUSD", 8n * USD).catch((e) => e);
      for (const e of await Promise.all([first, second])) expect(e.details, e.message).to.include({ reason: "given-up" });
      // One transaction per block from now: the lower nonce is mined while the higher still waits.
      await rpc.request({ method: "evm_setBlockGasLimit", params: ["0x" + ((gas * 3n) / 2n).toString(16)] });
      third = watch(mw.providers.postPrice("tUSD", 9n * USD));
      // A block (one transaction) each time a copy is sent again, or once anything is sent behind them.
      let mined = 0;
      for (let i = 0; i < 200 && third.outcome() === undefined; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const behind = (await pending()).some((tx) => Number(tx.nonce) === nonce + 2);
        if (reprices.length > mined || behind) {
          mined = reprices.length;
          await rpc.request({ method: "evm_mine", params: [] });
        }
      }
      await third.done;
    } finally {
      await rpc.request({ method: "evm_setBlockGasLimit", params: ["0x" + gasLimit.toString(16)] });
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    const outcome = third.outcome();
    expect(outcome, String(outcome)).to.include({ status: 1 });
    expect(reprices).to.deep.equal([`postPrice ${nonce}→${nonce}`, `postPrice ${nonce + 1}→${nonce + 1}`]);
    expect((await connection.ethers.provider.getTransaction((outcome as { hash: string }).hash))!.nonce).to.equal(nonce + 2);
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(9n * USD);
  });

  it("sends a transaction given up on again as it is once its fees are 4 × what the RPC quotes (a node may have dropped it)", async () => {
    const { w, rpc, reprices, mw, pending } = await repricing(0);
    const nonce = await connection.ethers.provider.getTransactionCount(w.cheap.address, "latest");
    const provider = mw.context.provider as { getFeeData: () => Promise<FeeData> };
    const getFeeData = provider.getFeeData;
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    let next: ReturnType<typeof watch> | undefined;
    let given;
    try {
      given = await mw.providers.postPrice("tUSD", 7n * USD).catch((e) => e);
      expect(given.details).to.include({ reason: "given-up", nonce });
      for (const tx of await pending()) await rpc.request({ method: "hardhat_dropTransaction", params: [tx.hash] }); // the node drops it
      // Fees have fallen since: what it pays is over 4 × the quote (once; the next send's own fees are the node's).
      provider.getFeeData = async () => ((provider.getFeeData = getFeeData), new FeeData(1n, 1n, 1n));
      next = watch(mw.providers.postPrice("tUSD", 8n * USD));
      for (let i = 0; i < 250 && next.outcome() === undefined; i++) {
        await new Promise((r) => setTimeout(r, 20));
        if ((await pending()).length > 0) await rpc.request({ method: "evm_mine", params: [] });
      }
      await next.done;
    } finally {
      provider.getFeeData = getFeeData;
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(next!.outcome(), String(next!.outcome())).to.include({ status: 1 });
    expect(reprices).to.deep.equal([]); // sent as it was, not repriced
    expect((await connection.ethers.provider.getTransaction(given.details.hash))?.blockNumber).to.be.a("number");
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(8n * USD);
  });

  it("says so when a transaction given up on at the fee cap cannot be sent again because the account cannot pay for it", async () => {
    const { w, rpc, mw, pending } = await repricing(0);
    const provider = mw.context.provider as { getFeeData: () => Promise<FeeData> };
    const getFeeData = provider.getFeeData;
    const balance = await connection.ethers.provider.getBalance(w.cheap.address);
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    let next;
    try {
      expect((await mw.providers.postPrice("tUSD", 7n * USD).catch((e) => e)).details).to.include({ reason: "given-up" });
      for (const tx of await pending()) await rpc.request({ method: "hardhat_dropTransaction", params: [tx.hash] }); // dropped …
      await rpc.request({ method: "hardhat_setBalance", params: [w.cheap.address, "0x0"] }); // … for it cannot be paid for
      provider.getFeeData = async () => ((provider.getFeeData = getFeeData), new FeeData(1n, 1n, 1n)); // at the cap
      next = await mw.providers.postPrice("tUSD", 8n * USD).catch((e) => e);
    } finally {
      provider.getFeeData = getFeeData;
      await rpc.request({ method: "hardhat_setBalance", params: [w.cheap.address, "0x" + balance.toString(16)] });
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(next).to.be.instanceOf(MeshworkError);
    expect(next.details, next.message).to.include({ reason: "gas-funds" });
  });

  it("with confirmations 0, still waits for the transaction to be mined", async () => {
    const w = await networkHelpers.loadFixture(world);
    const rpc = connection.provider;
    const mw = await Meshwork.connect({ runner: w.cheap, addresses: w.book, confirmations: 0 });
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    const posting = watch(mw.providers.postPrice("tUSD", 7n * USD));
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect(posting.outcome(), "nothing is mined yet").to.equal(undefined);
      await rpc.request({ method: "evm_mine", params: [] });
      await posting.done;
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    const outcome = posting.outcome();
    expect(outcome).to.not.be.instanceOf(Error);
    expect(outcome).to.include({ status: 1 });
    expect(await w.registry.postedPrice(w.cheap.address, w.book.contracts.paymentTokens.tUSD)).to.equal(7n * USD);
  });

  it("names the error a transaction mined and reverted with (its call run again on its block), with its hash", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.cheap);
    // Sent with a gas limit, so nothing estimates it (and finds the revert) first: it is mined, and reverts.
    const sent = () => w.cheap.sendTransaction({ to: w.book.contracts.registry, data: w.registry.interface.encodeFunctionData("pauseClaims", [0n]), gasLimit: 100_000n });
    const rpc = connection.provider;
    // (Mined by hand: with automine, the in-process chain throws the revert at sending, as no live chain does.)
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    let reverted;
    try {
      const sending = mw.context.send("pauseClaims", sent as never).catch((e) => e);
      const pending = async () => ((await rpc.request({ method: "eth_getBlockByNumber", params: ["pending", false] })) as { transactions: string[] }).transactions;
      for (let i = 0; i < 100 && (await pending()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      await rpc.request({ method: "evm_mine", params: [] });
      reverted = await sending;
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(reverted).to.be.instanceOf(MeshworkContractError);
    expect([reverted.contract, reverted.errorName, [...reverted.args]]).to.deep.equal(["ProviderRegistry", "ProviderRegistryUnauthorized", [w.cheap.address]]);
    const receipt = await connection.ethers.provider.getTransactionReceipt(reverted.details.hash);
    expect(receipt?.status).to.equal(0);
    const next = await mw.providers.postPrice("tUSD", 3n * USD); // nothing held back: the nonce was used
    expect((next.logs[0] as EventLog).args.pricePerUnit).to.equal(3n * USD); // decoded, as ethers decodes a contract call's
  });

  it("reports a transaction whose other copy was mined and reverted as a failure, not a receipt", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.cheap);
    const copyMined = (status: number) => ({
      hash: "0x" + "aa".repeat(32),
      replaceableTransaction() {
        return this;
      },
      wait: () => Promise.reject(Object.assign(new Error("transaction was replaced"), { code: "TRANSACTION_REPLACED", reason: "repriced", receipt: receipt(status) })),
    });
    const receipt = (status: number) =>
      new TransactionReceipt(
        {
          to: w.book.contracts.market,
          from: w.cheap.address,
          contractAddress: null,
          hash: "0x" + "bb".repeat(32),
          index: 0,
          blockHash: "0x" + "cc".repeat(32),
          blockNumber: 1,
          logsBloom: "0x" + "00".repeat(256),
          logs: [],
          gasUsed: 21_000n,
          cumulativeGasUsed: 21_000n,
          gasPrice: 1n,
          type: 2,
          status,
          root: null,
        },
        connection.ethers.provider,
      );
    const reverted = await mw.context.send("claim", async () => copyMined(0) as never).catch((e) => e);
    expect(reverted).to.be.instanceOf(MeshworkError);
    expect(reverted.shortMessage).to.equal("claim: the transaction reverted");
    expect(reverted.details).to.deep.equal({ hash: "0x" + "bb".repeat(32) });
    expect((await mw.context.send("claim", async () => copyMined(1) as never)).hash).to.equal("0x" + "bb".repeat(32));
  });

  it("names a sender that cannot pay for gas, rather than calling it an RPC failure", async () => {
    const w = await networkHelpers.loadFixture(world);
    const broke = Wallet.createRandom().connect(connection.ethers.provider);
    const mw = await Meshwork.connect({ runner: broke, addresses: w.book });
    const error = await mw.governance.delegate(broke.address).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkError).and.not.be.instanceOf(MeshworkRpcError);
    expect(error.details).to.include({ reason: "gas-funds" });
    expect(error.shortMessage).to.equal("delegate: the account cannot pay for gas: send it some of the chain's native currency");
    const mapped = toMeshworkError({ code: "INSUFFICIENT_FUNDS", message: "insufficient funds for intrinsic transaction cost" }, {}, "claim");
    expect(mapped.details).to.include({ reason: "gas-funds" });
  });

  it("tells a log query refused for its range from one lost or throttled (only the first is read again over fewer blocks)", () => {
    const http = (status: string, body = "") => Object.assign(new Error(`server response ${status}`), { code: "SERVER_ERROR", info: { responseStatus: status, responseBody: body } });
    const jsonRpc = (code: number, message: string) => Object.assign(new Error("could not coalesce error"), { code: "UNKNOWN_ERROR", error: { code, message } });
    const refused = [
      jsonRpc(-32005, "query returned more than 10000 results"),
      jsonRpc(-32600, "eth_getLogs is limited to a 10 block range"),
      http("413 Payload Too Large", '{"error":{"code":-32614,"message":"eth_getLogs is limited to a 10,000 range"}}'),
      new MeshworkRpcError("getLogs: the RPC failed", { cause: jsonRpc(-32602, "block range too large") }),
      jsonRpc(-32000, "Log response size exceeded: the range generated more than 10000 logs"), // "generated" is no rate
    ];
    const notRefused = [
      http("429 Too Many Requests"),
      jsonRpc(-32005, "daily request count exceeded, request rate limited"),
      jsonRpc(-32005, "Your app has exceeded its compute units per second capacity"),
      http("401 Unauthorized", '{"error":{"code":-32600,"message":"invalid API key"}}'),
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" }),
      Object.assign(new Error("request timeout"), { code: "TIMEOUT" }),
    ];
    expect(refused.map(isRangeRefusal)).to.deep.equal(refused.map(() => true));
    expect(notRefused.map(isRangeRefusal)).to.deep.equal(notRefused.map(() => false));
  });

  it("types a dropped RPC as MeshworkRpcError", async () => {
    const w = await networkHelpers.loadFixture(world);
    const dead = new JsonRpcProvider("http://127.0.0.1:9", undefined, { staticNetwork: true, batchMaxCount: 1 });
    const error = await Meshwork.connect({ runner: dead, addresses: w.book })
      .catch((e) => e)
      .finally(() => dead.destroy());
    expect(error).to.be.instanceOf(MeshworkRpcError); // a refused connection
    expect(error.walk()).to.include({ code: "ECONNREFUSED" });
    const mapped = toMeshworkError({ code: "NETWORK_ERROR", message: "socket hang up" }, {}, "getLogs");
    expect(mapped).to.be.instanceOf(MeshworkRpcError);
  });

  it("types a connection that fails, wherever the transport's error sits in the cause chain, as MeshworkRpcError", () => {
    const socket = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:8545`), { code });
    const failures: [string, unknown][] = [
      ...["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN"].map((code): [string, unknown] => [code, socket(code)]),
      ["undici fetch failed", new TypeError("fetch failed", { cause: socket("ECONNREFUSED") })],
      ["fetch failed alone", new TypeError("fetch failed")],
      ["deep in causes", new Error("request failed", { cause: new Error("wrapped", { cause: socket("ECONNRESET") }) })],
      ["in ethers' error", { shortMessage: "could not coalesce error", error: socket("ETIMEDOUT") }],
      ["happy eyeballs", Object.assign(new AggregateError([socket("ECONNREFUSED"), socket("ECONNREFUSED")], ""), { code: undefined })],
    ];
    for (const [what, failure] of failures) {
      const mapped = toMeshworkError(failure, {}, "getLogs");
      expect(mapped, what).to.be.instanceOf(MeshworkRpcError);
      expect(mapped.cause, what).to.equal(failure);
    }
    expect(toMeshworkError(new TypeError("x is not a function"), {}, "getLogs")).to.not.be.instanceOf(MeshworkRpcError);
  });
});
