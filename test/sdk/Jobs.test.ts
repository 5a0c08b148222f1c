/**
 * SDK jobs against the devnet deployment: prepare (spec in the blob store, its digest the spec hash),
 * create, follow a job through its lifecycle events to a verified result, a timeout followed through
 * reopen to settlement by the same handle, a tampered chunk named, cancel, cost summary, routing.
 */
import { expect } from "chai";
import { Signature, verifyTypedData } from "ethers";
import { network } from "hardhat";
import type { BlobStore } from "../../sdk/src/blob.js";
import { digestOf } from "../../sdk/src/blob.js";
import { Meshwork } from "../../sdk/src/client.js";
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
} from "../../sdk/src/errors.js";
import { INVALID_OFFER, type JobEvent, type SignedOffer } from "../../sdk/src/jobs.js";
import {
  commitmentHash,
  hashJob,
  offerTypedData,
  packRequirements,
  packVerification,
  receiptSigner,
  signReceipt,
  unpackRequirements,
  unpackTerms,
  unpackVerification,
  type JobRequestStruct,
} from "../../sdk/src/params.js";
import { parseJobSpec, specHash } from "../../sdk/src/spec.js";
import { MARKET_PARAMETERS } from "../../sdk/src/governance.js";
import { timelockSigner } from "../helpers/dao.js";
import { CHUNKS, MESH, PROFILE, USD, compute, sdkWorld, specOver, work, type SdkWorld } from "./fixture.js";

const connection = await network.create();
const { networkHelpers } = connection;

const PRICE = 30n * USD;
const UNITS = 10n;

async function world(): Promise<SdkWorld> {
  return sdkWorld(connection);
}

function types(events: readonly JobEvent[]): string[] {
  return events.map((e) => e.type);
}

/** The consumer's job (10-minute compute window, polled every 10 ms), claimed by `mid`, which never commits. */
async function claimedByMidNeverCommitted(w: SdkWorld) {
  const handle = await (await w.sdk(w.consumer)).jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS, computeWindow: 600n });
  handle.pollMs = 10;
  await w.market.connect(w.mid).claim(handle.job);
  return handle;
}

/** The consumer's job over the fixture's inputs, for providers in Germany only. */
function preparedInGermany(mw: Meshwork, w: SdkWorld, verification?: { auditBps: number }) {
  return mw.jobs.prepare(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS, requirements: { region: "DE" }, verification });
}

/**
 * The test chain's provider, but for the methods `replace` answers for (a hang, a dropped connection, a
 * capped range): a public RPC misbehaving, for a client connected to it read-only.
 */
function misbehaving(replace: (method: string | symbol, provider: typeof connection.ethers.provider) => unknown): typeof connection.ethers.provider {
  const base = connection.ethers.provider;
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === "provider") return receiver;
      const replaced = replace(prop, target);
      if (replaced) return replaced;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("SDK: jobs", () => {
  it("prepares a job: the canonical spec goes to the blob store under its hash", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const spec = specOver(w.inputs);
    const prepared = await mw.jobs.prepare(spec, { token: "tUSD", price: PRICE, workUnits: UNITS, requirements: { region: "DE" } });
    expect(prepared.request.specHash).to.equal(specHash(spec));
    expect(prepared.specURI).to.equal(`blob:${specHash(spec)}`);
    expect(await w.store.has(prepared.request.specHash)).to.equal(true);
    expect(prepared.request.paymentToken).to.equal(await w.usd.getAddress());
    expect(unpackRequirements(BigInt(prepared.request.requirements))).to.deep.include({ region: "DE", runtime: 0 });
  });

  it("refuses to prepare a job without a blob store for its spec, unless the caller stored the spec itself", async () => {
    const w = await networkHelpers.loadFixture(world);
    const storeless = await Meshwork.connect({ runner: w.consumer, addresses: w.book });
    const spec = specOver(w.inputs);
    const options = { token: "tUSD", price: PRICE, workUnits: UNITS };
    const error = await storeless.jobs.prepare(spec, options).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkError);
    expect(error.shortMessage).to.match(/needs a blob store/);
    expect(error.details).to.deep.equal({ specHash: specHash(spec) });
    const created = await storeless.jobs.create(spec, options).catch((e) => e);
    expect(created).to.be.instanceOf(MeshworkError);
    expect(await w.market.balanceOf(await w.usd.getAddress(), w.consumer.address)).to.equal(0n); // nothing escrowed

    const prepared = await storeless.jobs.prepare(spec, { ...options, storeSpec: false }); // stored elsewhere
    expect(prepared.specURI).to.equal(`blob:${specHash(spec)}`);
    const before = await w.store.has(specHash(spec));
    const skipped = await (await w.sdk(w.consumer)).jobs.prepare(spec, { ...options, storeSpec: false });
    expect(skipped.specURI).to.equal(prepared.specURI);
    expect(await w.store.has(specHash(spec))).to.equal(before);
  });

  it("uploads input chunks and describes them for the spec", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const chunks = [new Uint8Array([9, 9]), new Uint8Array([7])];
    const { inputs, chunking } = await mw.jobs.upload(chunks);
    expect(chunking).to.deep.equal({ chunks: 2 });
    expect(inputs).to.deep.equal({ kind: "chunks", chunks: chunks.map((c) => ({ digest: digestOf(c), size: c.length })) });
    expect(await w.store.get(inputs.chunks[1].digest)).to.deep.equal(chunks[1]);
    const storeless = await Meshwork.connect({ runner: w.consumer, addresses: w.book });
    await expect(storeless.jobs.upload(chunks)).to.be.rejectedWith(/needs a blob store/);
  });

  it("signs and checks a worker's EIP-712 delivery receipt, bound to the chain and market", async () => {
    const w = await networkHelpers.loadFixture(world);
    const chainId = BigInt(w.book.chainId);
    const market = w.book.contracts.market;
    const receipt = { jobId: "0x" + "01".repeat(32), resultRoot: "0x" + "02".repeat(32), outputURI: "blob:0x" + "03".repeat(32), runtimeDigest: "0x" + "04".repeat(32) };
    const signature = await signReceipt(w.cheap, chainId, market, receipt);
    expect(receiptSigner(chainId, market, receipt, signature)).to.equal(w.cheap.address);
    expect(receiptSigner(chainId + 1n, market, receipt, signature)).to.not.equal(w.cheap.address);
    expect(receiptSigner(chainId, market, { ...receipt, outputURI: "blob:0x" + "05".repeat(32) }, signature)).to.not.equal(w.cheap.address);
  });

  it("refuses a job the consumer cannot pay for before sending anything", async () => {
    const w = await networkHelpers.loadFixture(world);
    const poor = await w.sdk(w.outsider);
    const before = await w.ethers.provider.getBlockNumber();
    const error = await poor.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS }).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkInsufficientFundsError);
    expect(error).to.include({ needed: PRICE, available: 0n, token: await w.usd.getAddress() });
    expect(await w.ethers.provider.getBlockNumber()).to.equal(before);
  });

  it("refuses a spec asking for encrypted outputs, which no worker produces yet, storing and sending nothing", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const sealed = { ...specOver(w.inputs), encryptTo: { scheme: "x25519-aes-256-gcm", publicKey: "0x" + "11".repeat(32) } };
    const before = await w.ethers.provider.getBlockNumber();
    const error = await mw.jobs.create(sealed, { token: "tUSD", price: PRICE, workUnits: UNITS }).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkValidationError);
    expect(error.issues.map((i: { path: string[] }) => i.path.join("."))).to.deep.equal(["encryptTo"]);
    expect(await w.store.has(specHash(sealed))).to.equal(false);
    expect(await w.ethers.provider.getBlockNumber()).to.equal(before);
  });

  it("rejects a malformed spec with zod's issues, sending nothing", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const bad = { ...specOver(w.inputs), chunking: { chunks: 3 } };
    const before = await w.ethers.provider.getBlockNumber();
    const error = await mw.jobs.create(bad, { token: "tUSD", price: PRICE, workUnits: UNITS }).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkValidationError);
    expect((error as MeshworkValidationError).issues.map((i) => i.path.join("."))).to.include("inputs.chunks");
    expect(await w.ethers.provider.getBlockNumber()).to.equal(before);
  });

  it("refuses a job the market would revert before approving anything, with the market's typed error", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer); // 100,000 tUSD in its wallet, nothing in the market: create() must approve
    const market = await w.market.getAddress();
    const allowance = () => w.usd.allowance(w.consumer.address, market);
    const options = { token: "tUSD", price: PRICE, workUnits: UNITS };
    const { maxComputeWindow } = await w.market.config();
    const before = await w.ethers.provider.getBlockNumber();

    const tooLong = await mw.jobs.create(specOver(w.inputs), { ...options, computeWindow: maxComputeWindow + 1n }).catch((e) => e);
    expect(tooLong).to.be.instanceOf(MeshworkContractError);
    expect(tooLong).to.include({ contract: "JobMarket", errorName: "JobMarketComputeWindowOutOfBounds" });
    expect(tooLong.arg("computeWindow")).to.equal(maxComputeWindow + 1n);
    const late = await mw.jobs.create(specOver(w.inputs), { ...options, claimBy: 1n }).catch((e) => e);
    expect(late).to.be.instanceOf(MeshworkContractError);
    expect(late).to.include({ errorName: "JobMarketInvalidRequest" });
    expect(late.arg("field")).to.equal("claimBy");
    expect(await allowance()).to.equal(0n); // no approval left behind
    expect(await w.ethers.provider.getBlockNumber()).to.equal(before); // nothing sent

    const handle = await mw.jobs.create(specOver(w.inputs), options); // a job the market takes still approves and escrows
    expect(await handle.state()).to.equal("Open");
    expect(await allowance()).to.equal(0n);
  });

  it("follows a job from creation to a verified result, with typed events and a cost summary", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const handle = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    expect(handle.jobId).to.equal(hashJob(handle.job));
    expect(await handle.state()).to.equal("Open");
    const seen: string[] = [];
    handle.pollMs = 20;
    const off = handle.on("*", (e) => seen.push(e.type));

    const { root, outputURI } = await work(w, handle, w.cheap);
    const settled = await handle.wait({ timeoutMs: 10_000 });
    off();
    expect(settled).to.deep.include({ type: "settled", provider: w.cheap.address, resultRoot: root, outputURI });
    expect(types(handle.events)).to.deep.equal(["queued", "claimed", "committed", "revealed", "audited", "settled"]);
    expect(seen).to.deep.equal(types(handle.events));
    expect(await handle.state()).to.equal("Settled");

    const { bytes, chunks } = await handle.result();
    expect(chunks).to.have.length(CHUNKS);
    chunks.forEach((c, i) => expect(c).to.deep.equal(compute(w.inputs[i])));
    expect(bytes.length).to.equal(CHUNKS * 1024);
    const capped = await handle.result({ maxChunkBytes: 1023 }).catch((e) => e); // each chunk is 1 KiB
    expect(capped).to.be.instanceOf(MeshworkVerificationError);
    expect(capped).to.include({ jobId: handle.jobId, chunk: 0 });

    const cost = handle.cost();
    expect(cost.price).to.equal(PRICE);
    expect(cost.fee).to.equal((PRICE * 250n) / 10_000n);
    expect(cost.refunded).to.equal(false);
    expect(cost.gasUsed > 0n).to.equal(true);
  });

  /** A settled job, seen through a new handle that has read none of its events yet, with a listener to all. */
  async function settledJobListened() {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const created = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    await work(w, created, w.cheap);
    const handle = await mw.jobs.get(created.jobId);
    const seen: string[] = [];
    const off = handle.on("*", (e) => seen.push(e.type));
    return { handle, seen, off, expected: ["queued", "claimed", "committed", "revealed", "audited", "settled"] };
  }

  it("delivers each event once when refreshes overlap (a listener's polling and a wait)", async () => {
    const { handle, seen, off, expected } = await settledJobListened();
    const all = await Promise.all([handle.refresh(), handle.refresh(), handle.wait({ timeoutMs: 10_000 }).then(() => [])]);
    off();
    expect(types(handle.events)).to.deep.equal(expected);
    expect(seen).to.deep.equal(expected);
    expect(all.flat().map((e) => e.type)).to.deep.equal(expected); // the first refresh read them all
  });

  it("a listener that throws gets its error back from refresh, once: every event is still read once and delivered to the others", async () => {
    const { handle, seen, off: offAll, expected } = await settledJobListened();
    const offBad = handle.on("committed", () => {
      throw new Error("a bug in the listener");
    });
    await expect(handle.refresh()).to.be.rejectedWith("a bug in the listener");
    expect(types(handle.events)).to.deep.equal(expected);
    expect(seen).to.deep.equal(expected);
    expect(await handle.refresh()).to.deep.equal([]); // nothing read twice
    expect(types(handle.events)).to.deep.equal(expected);
    offAll();
    offBad();
  });

  it("wait() gives up at its deadline while an RPC call hangs, with a typed error, and goes on later", async () => {
    const w = await networkHelpers.loadFixture(world);
    const handle = await (await w.sdk(w.consumer)).jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    // A read-only client whose RPC stops answering getLogs (a public endpoint that hangs).
    let hang = false;
    const rpc = misbehaving((method) => (method === "getLogs" && hang ? () => new Promise(() => undefined) : undefined));
    const followed = await (await Meshwork.connect({ runner: rpc, addresses: w.book })).jobs.get(handle.jobId);
    expect(types(await followed.refresh())).to.deep.equal(["queued"]);

    hang = true;
    await networkHelpers.mine(); // a block to read: the refresh's getLogs call never comes back
    const error = await followed.wait({ timeoutMs: 300 }).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkTimeoutError);
    expect(error.details).to.deep.equal({ state: "Open", lastEvent: "queued", timeoutMs: 300 });

    hang = false; // the RPC answers again: the next wait goes on, the hung call holding nothing up
    await handle.cancel();
    const failed = await followed.wait({ timeoutMs: 10_000 }).catch((e) => e);
    expect(failed).to.be.instanceOf(MeshworkJobFailedError);
    expect(failed).to.include({ reason: "cancelled" });
    expect(types(followed.events)).to.deep.equal(["queued", "failed"]);
  });

  it("wait() reads a finished job's blocks again when its state is final but its end was never read (a lagging RPC node), delivering nothing twice", async () => {
    const w = await networkHelpers.loadFixture(world);
    const handle = await (await w.sdk(w.consumer)).jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    // A node a few blocks behind answers the log queries while the settlement is new: it has none of them.
    let lagging = false;
    const rpc = misbehaving((method, target) =>
      method === "getLogs" && lagging ? () => Promise.resolve([]) : method === "getLogs" ? target.getLogs.bind(target) : undefined,
    );
    const followed = await (await Meshwork.connect({ runner: rpc, addresses: w.book })).jobs.get(handle.jobId);
    expect(types(await followed.refresh())).to.deep.equal(["queued"]);
    const seen: string[] = [];
    const off = followed.on("*", (e) => seen.push(e.type));
    lagging = true;
    await work(w, handle, w.cheap);
    expect(types(await followed.refresh())).to.deep.equal([]); // read as empty, and marked read
    lagging = false;
    const settled = await followed.wait({ timeoutMs: 300 });
    expect(settled.type).to.equal("settled");
    expect(types(followed.events)).to.deep.equal(["queued", "claimed", "committed", "revealed", "audited", "settled"]);
    expect(seen).to.deep.equal(["claimed", "committed", "revealed", "audited", "settled"]); // "queued" once, before
    off();

    // Iterating a handle that read the same empty answer ends too, once its state check comes round.
    const iterated = await (await Meshwork.connect({ runner: rpc, addresses: w.book })).jobs.get(handle.jobId);
    lagging = true;
    iterated.pollMs = 10;
    iterated.stateCheckMs = 100;
    expect(types(await iterated.refresh())).to.deep.equal([]);
    lagging = false;
    const all: string[] = [];
    for await (const e of iterated) all.push(e.type);
    expect(all).to.deep.equal(["queued", "claimed", "committed", "revealed", "audited", "settled"]);
  });

  it("iterates events asynchronously until the job ends", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const handle = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    handle.pollMs = 10;
    await work(w, handle, w.cheap);
    const got: string[] = [];
    for await (const e of handle) got.push(e.type);
    expect(got.at(-1)).to.equal("settled");
    expect(got[0]).to.equal("queued");
  });

  it("follows a job whose provider timed out through reopen to settlement, with the same handle", async () => {
    const w = await networkHelpers.loadFixture(world);
    const handle = await claimedByMidNeverCommitted(w);
    await networkHelpers.time.increase(601);
    expect(await handle.enforceDeadline()).to.equal(true); // the consumer pushes it on
    expect(await handle.enforceDeadline()).to.equal(false); // nothing more to enforce
    expect(await handle.state()).to.equal("Open");

    await work(w, handle, w.cheap);
    const settled = await handle.wait({ timeoutMs: 10_000 });
    expect(settled.provider).to.equal(w.cheap.address);
    const reopened = handle.events.find((e) => e.type === "reopened");
    expect(reopened).to.deep.include({ previousProvider: w.mid.address });
    expect(types(handle.events)).to.deep.equal(["queued", "claimed", "reopened", "claimed", "committed", "revealed", "audited", "settled"]);
    expect((await handle.result()).chunks).to.have.length(CHUNKS);
  });

  it("reports a void (the audit draw's randomness never came) as one failure, 'voided', with the price back", async () => {
    const w = await networkHelpers.loadFixture(world);
    const governance = await timelockSigner(w);
    const randomness = await w.ethers.deployContract("MockRandomness");
    await randomness.set(0, w.ethers.ZeroHash); // Pending
    await w.market.connect(governance).setRandomnessSource(await randomness.getAddress());
    const mw = await w.sdk(w.consumer);
    const handle = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    await w.market.connect(w.cheap).claim(handle.job);
    await w.market.connect(w.cheap).commit(handle.jobId, commitmentHash(handle.jobId, w.cheap.address, "0x" + "12".repeat(32), "0x" + "34".repeat(32)));
    const terms = unpackTerms(BigInt(handle.job.terms));
    await networkHelpers.time.increase(terms.challengeWindow + terms.revealWindow + 1);
    await w.market.connect(w.outsider).enforceDeadline(handle.job);
    const error = await handle.wait({ timeoutMs: 1_000 }).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkJobFailedError);
    expect(error).to.include({ jobId: handle.jobId, reason: "voided" });
    expect(handle.events.map((e) => e.type)).to.deep.equal(["queued", "claimed", "committed", "failed"]);
    expect(handle.cost().refunded).to.equal(true);
    expect(await mw.balances.of("tUSD")).to.equal(PRICE);
  });

  it("wait({ enforceDeadlines }) still ends in a typed job failure when someone else enforces the deadline first", async () => {
    const w = await networkHelpers.loadFixture(world);
    const handle = await claimedByMidNeverCommitted(w);
    await networkHelpers.time.increase(3601); // past the commit deadline and claimBy: enforcing refunds
    await connection.provider.request({ method: "evm_setAutomine", params: [false] });
    let miner: ReturnType<typeof setInterval> | undefined;
    try {
      // The outsider's enforcement waits in the mempool: the consumer's simulation (on the latest
      // block) passes, its transaction reverts behind the outsider's.
      await w.market.connect(w.outsider).enforceDeadline(handle.job);
      miner = setInterval(() => void networkHelpers.mine().catch(() => undefined), 50);
      const error = await handle.wait({ timeoutMs: 20_000, enforceDeadlines: true }).catch((e) => e);
      expect(error).to.be.instanceOf(MeshworkJobFailedError);
      expect(error).to.include({ jobId: handle.jobId, reason: "refunded" });
    } finally {
      clearInterval(miner);
      await connection.provider.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(await handle.state()).to.equal("Refunded");
    expect(await handle.enforceDeadline()).to.equal(false);
  });

  it("enforceDeadline() types an RPC failure of its simulation instead of reporting nothing to enforce", async () => {
    const w = await networkHelpers.loadFixture(world);
    const handle = await (await w.sdk(w.consumer)).jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    let fail = false;
    const rpc = misbehaving((method) =>
      method === "call" && fail ? () => Promise.reject(Object.assign(new Error("socket hang up"), { code: "NETWORK_ERROR" })) : undefined,
    );
    const followed = await (await Meshwork.connect({ runner: rpc, addresses: w.book })).jobs.get(handle.jobId);
    expect(await followed.enforceDeadline()).to.equal(false); // an Open job before claimBy: nothing to enforce
    fail = true;
    const error = await followed.enforceDeadline().catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkRpcError);
  });

  it("rejects a tampered output chunk and names it", async () => {
    const w = await networkHelpers.loadFixture(world);
    const tampered = 2;
    const lying: BlobStore = {
      put: (b) => w.store.put(b),
      has: (d) => w.store.has(d),
      get: async (d) => {
        const bytes = await w.store.get(d);
        if (d === digestOf(compute(w.inputs[tampered]))) bytes[0] ^= 1;
        return bytes;
      },
    };
    const mw = await Meshwork.connect({ runner: w.consumer, addresses: w.book, blobStore: lying });
    const handle = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    await work(w, handle, w.cheap);
    const error = await handle.result().catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkVerificationError);
    expect(error).to.include({ jobId: handle.jobId, chunk: tampered });
  });

  it("rejects a result computed from other inputs than the job's, naming the chunk", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const handle = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    await work(w, handle, w.cheap);
    const other = [...w.inputs.map((i) => digestOf(i))];
    other[1] = digestOf(new Uint8Array([1, 2, 3]));
    const error = await handle.result({ inputDigests: other }).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkVerificationError);
    expect(error).to.include({ chunk: 1 });
  });

  it("checks the result of a job it did not create against the job's spec, fetched by its hash", async () => {
    const w = await networkHelpers.loadFixture(world);
    const created = await (await w.sdk(w.consumer)).jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    await work(w, created, w.cheap);
    const found = await (await w.sdk(w.consumer)).jobs.get(created.jobId);
    expect(found.spec).to.equal(undefined);
    expect((await found.result()).chunks).to.have.length(CHUNKS);
    expect(found.spec).to.deep.equal(parseJobSpec(specOver(w.inputs)));

    // A store that has lost the spec: no result goes unchecked; the caller's own input digests will do.
    const forgetful: BlobStore = {
      put: (b) => w.store.put(b),
      has: (d) => w.store.has(d),
      get: async (d, o) => {
        if (d === String(created.job.request.specHash)) throw new MeshworkError("no such blob");
        return w.store.get(d, o);
      },
    };
    const reader = await Meshwork.connect({ runner: w.consumer, addresses: w.book, blobStore: forgetful });
    const blind = await reader.jobs.get(created.jobId);
    const error = await blind.result().catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkVerificationError);
    expect(error.shortMessage).to.equal("the job's spec or input could not be fetched to check the result's inputs (pass inputDigests)");
    expect(error.details).to.include({ specHash: String(created.job.request.specHash) });
    expect((await blind.result({ inputDigests: w.inputs.map((i) => digestOf(i)) })).chunks).to.have.length(CHUNKS);
  });

  it("checks a result over one input blob against the blob's chunks, naming a chunk computed from other input", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const overBlob = async (blob: Uint8Array) => {
      await w.store.put(blob);
      const { inputs, ...rest } = specOver(w.inputs);
      void inputs;
      const handle = await mw.jobs.create(
        { ...rest, inputs: { kind: "blob", blob: { digest: digestOf(blob), size: blob.length } } },
        { token: "tUSD", price: PRICE, workUnits: UNITS },
      );
      await work(w, handle, w.cheap); // the worker's result is over w.inputs
      return handle;
    };
    const joined = new Uint8Array(w.inputs.reduce((n, i) => n + i.length, 0));
    w.inputs.forEach((input, i) => joined.set(input, i * input.length));
    expect((await (await overBlob(joined)).result()).chunks).to.have.length(CHUNKS);

    const other = joined.slice();
    other[w.inputs[0].length + 5] ^= 1; // in chunk 1
    const error = await (await overBlob(other)).result().catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkVerificationError);
    expect(error).to.include({ chunk: 1 });
    expect(error.shortMessage).to.equal("chunk 1 was computed from other input than the job's");
  });

  it("cancels an unclaimed job: the handle reports it failed and wait() throws a typed error", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const handle = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    await handle.cancel();
    expect(await mw.balances.of("tUSD")).to.equal(PRICE);
    const error = await handle.wait({ timeoutMs: 1_000 }).catch((e) => e);
    expect(error).to.be.instanceOf(MeshworkJobFailedError);
    expect(error).to.include({ jobId: handle.jobId, reason: "cancelled" });
    expect(handle.cost().refunded).to.equal(true);

    const again = await handle.cancel().catch((e) => e);
    expect(again).to.be.instanceOf(MeshworkContractError);
    expect(again).to.include({ contract: "JobMarket", errorName: "JobMarketUnexpectedState" });
    expect(again.arg("current")).to.equal(12n); // Cancelled
  });

  describe("challenge", () => {
    const ROOT = "0x" + "12".repeat(32);
    const SALT = "0x" + "34".repeat(32);
    const AVAILABLE = 1; // IRandomnessSource.Availability.Ready

    /**
     * The world with a randomness source the test sets (jobs created from now on use it) and no
     * probation, so that a test decides whether the draw selects a job for audit: a committed job the
     * draw selects is under audit already, and cannot be challenged.
     */
    async function drawnByTest() {
      const w = await world();
      const governance = await timelockSigner(w);
      const randomness = await w.ethers.deployContract("MockRandomness");
      await w.market.connect(governance).setRandomnessSource(await randomness.getAddress());
      await w.market.connect(governance).setParameter(MARKET_PARAMETERS.indexOf("ProbationJobs"), 0);
      return { ...w, randomness };
    }

    /** Sets the randomness so that the draw selects `job` for audit, or not (its p: pMin, no probation). */
    async function setDraw(w: Awaited<ReturnType<typeof drawnByTest>>, handle: { jobId: string; job: { terms: unknown } }, audited: boolean) {
      const p = BigInt(unpackTerms(BigInt(handle.job.terms as bigint)).pMinBps);
      const coder = w.ethers.AbiCoder.defaultAbiCoder();
      for (let i = 0; ; i++) {
        const value = w.ethers.keccak256(coder.encode(["uint256"], [i]));
        if ((BigInt(w.ethers.keccak256(coder.encode(["bytes32", "bytes32"], [value, handle.jobId]))) % 10_000n < p) === audited) {
          await w.randomness.set(AVAILABLE, value);
          return;
        }
      }
    }

    /** A job `cheap` has committed to (not revealed), followed by the outsider, who has `wallet` tUSD and `deposit` in the market. */
    async function committed(options: { wallet: bigint; deposit: bigint; audited?: boolean }) {
      const w = await networkHelpers.loadFixture(drawnByTest);
      const handle = await (await w.sdk(w.consumer)).jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
      await w.usd.mint(w.outsider.address, options.wallet + options.deposit);
      const challenger = await w.sdk(w.outsider);
      if (options.deposit > 0n) await challenger.balances.deposit("tUSD", options.deposit);
      const followed = await challenger.jobs.get(handle.jobId);
      const usd = await w.usd.getAddress();
      const market = await w.market.getAddress();
      const state = async () => ({
        wallet: await w.usd.balanceOf(w.outsider.address),
        balance: await w.market.balanceOf(usd, w.outsider.address),
        allowance: await w.usd.allowance(w.outsider.address, market),
      });
      const bond = (PRICE * BigInt((await w.market.verificationConfig()).challengeBondBps)) / 10_000n;
      const commit = async () => {
        await w.market.connect(w.cheap).claim(handle.job);
        await w.market.connect(w.cheap).commit(handle.jobId, await w.market.commitmentHash(handle.jobId, w.cheap.address, ROOT, SALT));
        await setDraw(w, handle, options.audited ?? false); // the audit sample's randomness
      };
      return { w, handle, followed, state, bond, commit };
    }

    it("refuses a challenge out of state or out of its window before approving anything", async () => {
      const { w, followed, state, commit, handle } = await committed({ wallet: 100n * USD, deposit: 0n });
      const before = await w.ethers.provider.getBlockNumber();
      const open = await followed.challenge().catch((e) => e);
      expect(open).to.be.instanceOf(MeshworkContractError);
      expect(open).to.include({ contract: "JobMarket", errorName: "JobMarketUnexpectedState" });
      expect([open.arg("current"), open.arg("expected")]).to.deep.equal([1n, 3n]); // Open, Committed
      expect(await w.ethers.provider.getBlockNumber()).to.equal(before); // no approval sent
      expect((await state()).allowance).to.equal(0n);

      await commit();
      const windowEnd = (await w.market.jobRecord(handle.jobId)).committedAt + BigInt(unpackTerms(BigInt(handle.job.terms)).challengeWindow);
      await networkHelpers.time.increaseTo(windowEnd);
      const late = await followed.challenge().catch((e) => e);
      expect(late).to.be.instanceOf(MeshworkContractError);
      expect(late).to.include({ errorName: "JobMarketChallengeWindowClosed" });
      expect(late.arg("windowEnd")).to.equal(windowEnd);
      expect((await state()).allowance).to.equal(0n);
    });

    it("posts the bond from the market balance, approving only what it lacks", async () => {
      const covered = await committed({ wallet: 0n, deposit: 100n * USD });
      await covered.commit();
      const before = await covered.state();
      await covered.followed.challenge({ chunk: 1 });
      expect(await covered.state()).to.deep.equal({ ...before, balance: before.balance - covered.bond }); // no approval
      expect(await covered.handle.state()).to.equal("Audited");

      const short = await committed({ wallet: 100n * USD, deposit: 1n * USD });
      await short.commit();
      const partly = await short.state();
      await short.followed.challenge();
      expect(await short.state()).to.deep.equal({ wallet: partly.wallet - (short.bond - 1n * USD), balance: 0n, allowance: 0n });
    });

    it("refuses to challenge a committed job the draw selects for audit, before approving anything", async () => {
      const { w, followed, state, commit, handle } = await committed({ wallet: 100n * USD, deposit: 0n, audited: true });
      await commit();
      const before = await w.ethers.provider.getBlockNumber();
      const error = await followed.challenge({ chunk: 1 }).catch((e) => e);
      expect(error).to.be.instanceOf(MeshworkContractError);
      expect(error).to.include({ contract: "JobMarket", errorName: "JobMarketAuditRequired" });
      expect(error.arg("jobId")).to.equal(handle.jobId);
      expect(await w.ethers.provider.getBlockNumber()).to.equal(before); // no approval sent
      expect((await state()).allowance).to.equal(0n);
      expect(await handle.state()).to.equal("Committed");
    });
  });

  it("finds an existing job by id", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const created = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    const reader = await Meshwork.connect({ runner: w.ethers.provider, addresses: w.book, blobStore: w.store });
    const found = await reader.jobs.get(created.jobId);
    expect(found.job).to.deep.equal(created.job);
    await expect(reader.jobs.get("0x" + "11".repeat(32))).to.be.rejectedWith(/no job/);
  });

  it("reads whole-history events in ranges of 5,000 blocks (public RPCs cap a query's range)", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const handle = await consumer.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    const dao = await w.sdk(w.deployer);
    const proposal = await dao.governance.propose([dao.governance.setParameter("market", "FeeBps", 200n)], "capped ranges");
    await networkHelpers.mine(12_000);
    const recent = await consumer.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    await w.market.connect(w.cheap).claim(recent.job);

    const ranges: number[] = [];
    const capped = misbehaving((method, target) =>
      method === "getLogs"
        ? (filter: { fromBlock?: unknown; toBlock?: unknown }) => {
            const { fromBlock, toBlock } = filter;
            if (typeof fromBlock !== "number" || typeof toBlock !== "number" || toBlock - fromBlock >= 5_000) {
              return Promise.reject(Object.assign(new Error("query exceeds the 5000-block range limit"), { code: "UNKNOWN_ERROR" }));
            }
            ranges.push(toBlock - fromBlock + 1);
            return target.getLogs(filter as never);
          }
        : undefined,
    );
    const reader = await Meshwork.connect({ runner: capped, addresses: w.book, blobStore: w.store });
    expect((await reader.jobs.get(handle.jobId)).job).to.deep.equal(handle.job);
    expect((await reader.governance.list()).map((p) => p.proposalId)).to.deep.equal([proposal.proposalId]);
    const prepared = await reader.jobs.prepare(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    const { ranked } = await reader.jobs.route(prepared, { maxPrice: 100n * USD });
    expect(ranked.find((c) => c.provider === w.cheap.address)?.queue).to.equal(1); // its claim, computing
    expect(Math.max(...ranges)).to.equal(5_000);
  });

  it("reads through an RPC capping a query at 10 blocks, whether it answers with a JSON-RPC error or an HTTP 413: fewer blocks at once (jobs and stats); a dead RPC is still a MeshworkRpcError", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const handle = await consumer.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    await networkHelpers.mine(200);
    await w.market.connect(w.cheap).claim(handle.job);
    // What ethers' JsonRpcProvider makes of each answer: a JSON-RPC error it does not know, and an HTTP error status.
    const refusals = {
      jsonRpc: () => Object.assign(new Error("could not coalesce error"), { code: "UNKNOWN_ERROR", error: { code: -32005, message: "query exceeds max block range 10" } }),
      http413: () =>
        Object.assign(new Error("server response 413 Payload Too Large"), {
          code: "SERVER_ERROR",
          info: { responseStatus: "413 Payload Too Large", responseBody: '{"jsonrpc":"2.0","id":1,"error":{"code":-32614,"message":"eth_getLogs is limited to a 10 range"}}' },
        }),
    };
    for (const [shape, refusal] of Object.entries(refusals)) {
      let refused = 0;
      let down = false;
      const capped = misbehaving((method, target) =>
        method === "getLogs"
          ? (filter: { fromBlock?: unknown; toBlock?: unknown }) => {
              if (down) return Promise.reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" }));
              const { fromBlock, toBlock } = filter;
              if (typeof fromBlock !== "number" || typeof toBlock !== "number" || toBlock - fromBlock >= 10) {
                refused++;
                return Promise.reject(refusal());
              }
              return target.getLogs(filter as never);
            }
          : undefined,
      );
      const reader = await Meshwork.connect({ runner: capped, addresses: w.book, blobStore: w.store });
      const found = await reader.jobs.get(handle.jobId);
      expect(found.job, shape).to.deep.equal(handle.job);
      expect((await found.refresh()).map((e) => e.type), shape).to.deep.equal(["queued", "claimed"]);
      expect(refused, shape).to.be.greaterThan(0);
      expect(reader.context.logRange, shape).to.be.lessThan(10);
      // The market's statistics read through the same narrowed range.
      const { events } = await reader.stats();
      expect(events.filter((e) => "jobId" in e && e.jobId === handle.jobId).map((e) => e.kind), shape).to.deep.equal(["created", "claimed"]);
      down = true;
      await networkHelpers.mine(1);
      expect(await found.refresh().catch((e) => e), shape).to.be.instanceOf(MeshworkRpcError);
      expect(await reader.stats().catch((e) => e), shape).to.be.instanceOf(MeshworkRpcError);
    }
  });

  describe("routing", () => {
    async function offers(w: SdkWorld) {
      const mw = await w.sdk(w.consumer);
      const prepared = await mw.jobs.prepare(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
      const expiry = BigInt(await networkHelpers.time.latest()) + 600n;
      const quote = async (signer: typeof w.cheap, perUnit: bigint) =>
        (await w.sdk(signer)).jobs.signOffer({ ...prepared.request, price: perUnit * UNITS }, w.consumer.address, expiry);
      return {
        mw,
        prepared,
        expiry,
        cheap: await quote(w.cheap, 1n * USD),
        mid: await quote(w.mid, 2n * USD),
        dear: await quote(w.dear, 3n * USD),
      };
    }

    it("picks the cheapest eligible offer and creates the job assigned to it", async () => {
      const w = await networkHelpers.loadFixture(world);
      const o = await offers(w);
      const { best, ranked } = await o.mw.jobs.route(o.prepared, { maxPrice: 100n * USD, offers: [o.dear, o.cheap, o.mid] });
      expect(best.provider).to.equal(w.cheap.address);
      expect(ranked.map((c) => c.provider)).to.deep.equal([w.cheap.address, w.mid.address, w.dear.address]);
      const handle = await o.mw.jobs.createWithOffer(best.offer!);
      expect(await handle.state()).to.equal("Claimed");
      expect((await w.market.jobRecord(handle.jobId)).provider).to.equal(w.cheap.address);
      await work(w, handle, w.cheap, { claimed: true });
      expect((await handle.wait({ timeoutMs: 10_000 })).provider).to.equal(w.cheap.address);
    });

    it("reads each eligible provider's queue once per route, and no queue for an offer rejected anyway", async () => {
      const w = await networkHelpers.loadFixture(world);
      const o = await offers(w);
      const again = await (await w.sdk(w.cheap)).jobs.signOffer({ ...o.prepared.request, price: 2n * USD * UNITS }, w.consumer.address, o.expiry);
      const forged = { ...o.dear, signature: o.mid.signature };
      const claimedTopic = w.market.interface.getEvent("JobClaimed")!.topicHash;
      const scanned: string[] = [];
      const counting = misbehaving((method, target) =>
        method === "getLogs"
          ? (filter: { topics?: (string | null)[] }) => {
              if (filter.topics?.[0] === claimedTopic) scanned.push(String(filter.topics[2]));
              return target.getLogs(filter as never);
            }
          : undefined,
      );
      const reader = await Meshwork.connect({ runner: counting, addresses: w.book });
      const { ranked, rejected } = await reader.jobs.route(o.prepared, { maxPrice: 100n * USD, offers: [o.cheap, again, o.mid, forged] });
      expect(ranked.map((c) => c.provider)).to.deep.equal([w.cheap.address, w.cheap.address, w.mid.address]); // 10, 20, 20 tUSD
      expect(rejected.map((r) => [r.candidate.provider, r.candidate.queue])).to.deep.equal([[w.dear.address, 0]]);
      const padded = (a: string) => "0x" + a.slice(2).toLowerCase().padStart(64, "0");
      expect(new Set(scanned.map((t) => t.toLowerCase()))).to.deep.equal(new Set([padded(w.cheap.address), padded(w.mid.address)]));
      expect(scanned.length).to.equal(2); // one range each on this short chain
    });

    it("counts in a provider's queue the jobs it is computing (claimed, not committed), reading only its claims of the last maxComputeWindow", async () => {
      const w = await networkHelpers.loadFixture(world);
      const consumer = await w.sdk(w.consumer);
      const create = () => consumer.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
      const old = await create();
      const oldClaim = await (await w.market.connect(w.cheap).claim(old.job)).wait();
      // A long history: 3,000 blocks over twice the longest compute window. The old claim is long overdue.
      const window = Number((await w.market.config()).maxComputeWindow);
      await networkHelpers.mine(3_000, { interval: Math.ceil((2 * window) / 3_000) });
      const computing = await create();
      await w.market.connect(w.cheap).claim(computing.job);
      const committed = await create();
      await w.market.connect(w.cheap).claim(committed.job);
      await w.market.connect(w.cheap).commit(committed.jobId, commitmentHash(committed.jobId, w.cheap.address, "0x" + "12".repeat(32), "0x" + "34".repeat(32)));

      const claimedTopic = w.market.interface.getEvent("JobClaimed")!.topicHash;
      const from: number[] = [];
      const counting = misbehaving((method, target) =>
        method === "getLogs"
          ? (filter: { topics?: (string | null)[]; fromBlock?: number }) => {
              if (filter.topics?.[0] === claimedTopic) from.push(Number(filter.fromBlock));
              return target.getLogs(filter as never);
            }
          : undefined,
      );
      const reader = await Meshwork.connect({ runner: counting, addresses: w.book, blobStore: w.store });
      const prepared = await reader.jobs.prepare(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
      const { ranked } = await reader.jobs.route(prepared, { maxPrice: 100n * USD });
      expect(ranked.find((c) => c.provider === w.cheap.address)?.queue).to.equal(1); // `computing`; not the committed one
      expect(Math.min(...from)).to.be.greaterThan(oldClaim!.blockNumber); // the old claim's blocks were never read
      const start = await w.ethers.provider.getBlock(Math.min(...from));
      expect(start!.timestamp).to.be.at.most((await networkHelpers.time.latest()) - window); // yet every claim still computing was
    });

    it("takes an offer under the provider's posted price, as the market does: the signed price is its consent", async () => {
      const w = await networkHelpers.loadFixture(world);
      const o = await offers(w);
      const posted = await w.registry.postedPrice(w.dear.address, w.book.contracts.paymentTokens.tUSD);
      const under = await (await w.sdk(w.dear)).jobs.signOffer({ ...o.prepared.request, price: (posted / 2n) * UNITS }, w.consumer.address, o.expiry);
      const { best } = await o.mw.jobs.route(o.prepared, { maxPrice: 100n * USD, offers: [under] });
      expect(best).to.include({ provider: w.dear.address, price: (posted / 2n) * UNITS });
      const handle = await o.mw.jobs.createWithOffer(best.offer!);
      expect((await w.market.jobRecord(handle.jobId)).provider).to.equal(w.dear.address);
    });

    it("respects the price cap, the region and renewable-only", async () => {
      const w = await networkHelpers.loadFixture(world);
      const o = await offers(w);
      const all = [o.cheap, o.mid, o.dear];
      const capped = await o.mw.jobs.route(o.prepared, { maxPrice: 25n * USD, offers: all });
      expect(capped.ranked.map((c) => c.provider)).to.deep.equal([w.cheap.address, w.mid.address]);
      expect(capped.rejected).to.deep.equal([{ candidate: capped.rejected[0].candidate, reason: "over-price-cap" }]);
      const kenya = await o.mw.jobs.route(o.prepared, { maxPrice: 100n * USD, region: "KE", offers: all });
      expect(kenya.best.provider).to.equal(w.mid.address);
      const green = await o.mw.jobs.route(o.prepared, { maxPrice: 100n * USD, renewableOnly: true, offers: [o.mid, o.dear] });
      expect(green.best.provider).to.equal(w.dear.address);
      const none = await o.mw.jobs.route(o.prepared, { maxPrice: 5n * USD, offers: all }).catch((e) => e);
      expect(none).to.be.instanceOf(MeshworkRoutingError);
    });

    it("drops offers with a bad signature, an expired deadline, or from an ineligible provider", async () => {
      const w = await networkHelpers.loadFixture(world);
      const o = await offers(w);
      const forged = { ...o.cheap, signature: o.mid.signature };
      const expired = await (await w.sdk(w.dear)).jobs.signOffer(o.dear.request, w.consumer.address, 1n);
      // The same signature with v as 0/1, or in EIP-2098's 64-byte form: ethers recovers the signer from
      // either, OpenZeppelin's ECDSA (the market's) refuses both.
      const sig = o.dear.signature;
      const vZero = { ...o.dear, signature: sig.slice(0, 130) + (sig.endsWith("1b") ? "00" : "01") };
      const compact = { ...o.dear, signature: Signature.from(sig).compactSerialized };
      const { domain, types } = offerTypedData(BigInt(w.book.chainId), w.book.contracts.market);
      const dearJobId = hashJob({ consumer: w.consumer.address, request: o.dear.request, terms: await w.market.currentTerms() });
      for (const other of [vZero, compact]) expect(verifyTypedData(domain, types, { jobId: dearJobId, expiry: o.dear.expiry }, other.signature)).to.equal(w.dear.address);
      // Malformed, as an untrusted transport may deliver: an expiry past uint40, a price past uint96, no address.
      const farExpiry = { ...o.cheap, expiry: 2n ** 40n };
      const hugePrice = { ...o.cheap, request: { ...o.cheap.request, price: 2n ** 96n } };
      const notAnAddress = { ...o.cheap, provider: "0x1234" };
      const { ranked, rejected } = await o.mw.jobs.route(o.prepared, {
        maxPrice: 100n * USD,
        offers: [forged, expired, vZero, compact, farExpiry, hugePrice, notAnAddress, o.mid],
      });
      expect(ranked.map((c) => c.provider)).to.deep.equal([w.mid.address]);
      expect(rejected.map((r) => [r.candidate.provider, r.candidate.eligibility])).to.deep.equal([
        [w.cheap.address, INVALID_OFFER],
        [w.dear.address, INVALID_OFFER],
        [w.dear.address, INVALID_OFFER],
        [w.dear.address, INVALID_OFFER],
        [w.cheap.address, INVALID_OFFER],
        [w.cheap.address, INVALID_OFFER],
        ["0x1234", INVALID_OFFER],
      ]);
      for (const other of [vZero, compact]) {
        const onChain = await o.mw.jobs.createWithOffer(other).catch((e) => e); // the market refuses them too
        expect(onChain).to.include({ errorName: "JobMarketInvalidSignature" });
      }
      // The market agrees: an expired offer reverts with a typed error.
      const error = await o.mw.jobs.createWithOffer(expired).catch((e) => e);
      expect(error).to.be.instanceOf(MeshworkContractError);
      expect(error).to.include({ errorName: "JobMarketOfferExpired" });
      expect(error.arg("expiry")).to.equal(1n);
    });

    /**
     * A provider that is a smart-contract wallet (ERC-1271: its owner's signatures are its own),
     * onboarded like the fixture's providers (0.5 tUSD/unit, DE, renewable), by the wallet itself.
     */
    async function walletProvider(w: SdkWorld) {
      const owner = (await w.ethers.getSigners())[7];
      const wallet = await w.ethers.deployContract("ERC1271Wallet", [owner.address]);
      const address = await wallet.getAddress();
      await networkHelpers.impersonateAccount(address);
      await networkHelpers.setBalance(address, 10n ** 18n);
      const signer = await w.ethers.getSigner(address);
      const asWallet = await w.sdk(signer);
      await asWallet.providers.register(PROFILE, "ipfs://meta");
      // Staked without the SDK's permit: a wallet signs no EIP-2612 permit with a key of its own.
      await w.mesh.connect(w.deployer).transfer(address, 1_000n * MESH);
      await w.mesh.connect(signer).approve(await w.registry.getAddress(), 1_000n * MESH);
      await w.registry.connect(signer).stake(address, 1_000n * MESH);
      await asWallet.providers.postPrice("tUSD", USD / 2n);
      await w.usd.mint(address, 100_000n * USD);
      await asWallet.balances.deposit("tUSD", 100_000n * USD);
      return { owner, address };
    }

    /** An offer from `provider` for the consumer's request at `price`, signed by `signer` (a wallet's owner signs for it). */
    async function offerFor(
      w: SdkWorld,
      provider: string,
      signer: SdkWorld["cheap"],
      request: JobRequestStruct,
      price: bigint,
      expiry: bigint,
    ): Promise<SignedOffer> {
      const targeted = { ...request, price, targetProvider: provider };
      const jobId = hashJob({ consumer: w.consumer.address, request: targeted, terms: await w.market.currentTerms() });
      const { domain, types } = offerTypedData(BigInt(w.book.chainId), w.book.contracts.market);
      const signature = await signer.signTypedData(domain, types, { jobId, expiry });
      return { provider, request: targeted, consumer: w.consumer.address, expiry, signature };
    }

    it("takes a smart-contract wallet's offer through ERC-1271 and creates the job assigned to the wallet", async () => {
      const w = await networkHelpers.loadFixture(world);
      const { owner, address } = await walletProvider(w);
      const o = await offers(w);
      const fromWallet = await offerFor(w, address, owner, o.prepared.request, 5n * USD, o.expiry);
      const { best, ranked } = await o.mw.jobs.route(o.prepared, { maxPrice: 100n * USD, offers: [o.mid, fromWallet, o.cheap] });
      expect(best.provider).to.equal(address);
      expect(ranked.map((c) => c.provider)).to.deep.equal([address, w.cheap.address, w.mid.address]);
      const handle = await o.mw.jobs.createWithOffer(best.offer!);
      expect(await handle.state()).to.equal("Claimed");
      expect((await w.market.jobRecord(handle.jobId)).provider).to.equal(address);
    });

    it("drops an offer a wallet does not accept (another key's signature, a contract without ERC-1271), as the market does", async () => {
      const w = await networkHelpers.loadFixture(world);
      const { address } = await walletProvider(w);
      const o = await offers(w);
      const stranger = await offerFor(w, address, w.outsider, o.prepared.request, 5n * USD, o.expiry); // not the wallet's owner
      const token = await w.usd.getAddress(); // a contract that reverts on isValidSignature
      const notAWallet = await offerFor(w, token, w.outsider, o.prepared.request, 5n * USD, o.expiry);
      const { ranked, rejected } = await o.mw.jobs.route(o.prepared, { maxPrice: 100n * USD, offers: [stranger, notAWallet, o.mid] });
      expect(ranked.map((c) => c.provider)).to.deep.equal([w.mid.address]);
      expect(rejected.map((r) => [r.candidate.provider, r.candidate.eligibility])).to.deep.equal([
        [address, INVALID_OFFER],
        [token, INVALID_OFFER],
      ]);
      const error = await o.mw.jobs.createWithOffer(stranger).catch((e) => e);
      expect(error).to.be.instanceOf(MeshworkContractError);
      expect(error).to.include({ errorName: "JobMarketInvalidSignature" });
      expect(error.arg("signer")).to.equal(address);
      expect(await w.usd.allowance(w.consumer.address, await w.market.getAddress())).to.equal(0n); // refused before approving
    });

    it("types an RPC failure of a wallet's ERC-1271 check instead of dropping its offer", async () => {
      const w = await networkHelpers.loadFixture(world);
      const { owner, address } = await walletProvider(w);
      const o = await offers(w);
      const fromWallet = await offerFor(w, address, owner, o.prepared.request, 5n * USD, o.expiry);
      const dropping = misbehaving((method, target) =>
        method === "call"
          ? (tx: { to?: unknown }) =>
              typeof tx.to === "string" && tx.to.toLowerCase() === address.toLowerCase()
                ? Promise.reject(Object.assign(new Error("connection reset"), { code: "NETWORK_ERROR" }))
                : target.call(tx as never)
          : undefined,
      );
      const reader = await Meshwork.connect({ runner: dropping, addresses: w.book, blobStore: w.store });
      const error = await reader.jobs.route(o.prepared, { maxPrice: 100n * USD, offers: [fromWallet, o.cheap] }).catch((e) => e);
      expect(error).to.be.instanceOf(MeshworkRpcError);
      expect(error.shortMessage).to.match(/isValidSignature/);
    });

    it("drops an offer that changes the consumer's request (fewer audits, any region) or is for another consumer", async () => {
      const w = await networkHelpers.loadFixture(world);
      const mw = await w.sdk(w.consumer);
      const prepared = await preparedInGermany(mw, w, { auditBps: 2_000 });
      const expiry = BigInt(await networkHelpers.time.latest()) + 600n;
      const sign = async (signer: typeof w.cheap, changes: Partial<typeof prepared.request>, consumer = w.consumer.address) =>
        (await w.sdk(signer)).jobs.signOffer({ ...prepared.request, ...changes }, consumer, expiry);
      const request = prepared.request;
      const fewerAudits = await sign(w.cheap, {
        price: 10n * USD,
        verification: packVerification({ ...unpackVerification(BigInt(request.verification)), auditBps: 0 }),
      });
      const anyRegion = await sign(w.mid, {
        price: 10n * USD,
        requirements: packRequirements({ ...unpackRequirements(BigInt(request.requirements)), region: "" }),
      });
      const otherConsumer = await sign(w.auditor, { price: 10n * USD }, w.outsider.address);
      const honest = await sign(w.dear, { price: 30n * USD });

      const { best, ranked, rejected } = await mw.jobs.route(prepared, { maxPrice: 100n * USD, offers: [fewerAudits, anyRegion, otherConsumer, honest] });
      expect(best.provider).to.equal(w.dear.address);
      expect(ranked.map((c) => c.provider)).to.deep.equal([w.dear.address]);
      expect(rejected.map((r) => [r.candidate.provider, r.candidate.eligibility, r.reason])).to.deep.equal([
        [w.cheap.address, INVALID_OFFER, "ineligible"],
        [w.mid.address, INVALID_OFFER, "ineligible"],
        [w.auditor.address, INVALID_OFFER, "ineligible"],
      ]);
      const handle = await mw.jobs.createWithOffer(best.offer!);
      expect(unpackVerification(BigInt(handle.job.request.verification)).auditBps).to.equal(2_000);
      expect(unpackRequirements(BigInt(handle.job.request.requirements)).region).to.equal("DE");

      // Nothing left but changed requests: a typed routing error.
      const none = await mw.jobs.route(prepared, { maxPrice: 100n * USD, offers: [fewerAudits, anyRegion] }).catch((e) => e);
      expect(none).to.be.instanceOf(MeshworkRoutingError);
      expect(none.details).to.include({ candidates: 2 });
    });

    it("routes by posted prices when there are no offers, skipping providers that cannot run the job", async () => {
      const w = await networkHelpers.loadFixture(world);
      const mw = await w.sdk(w.consumer);
      const prepared = await preparedInGermany(mw, w);
      const { best, ranked, rejected } = await mw.jobs.route(prepared, { maxPrice: 100n * USD });
      // cheap and the auditor post 1 tUSD/unit in DE; mid is in KE (ineligible); dear costs 3.
      expect(best.price).to.equal(10n * USD);
      expect(ranked.map((c) => c.provider)).to.have.members([w.cheap.address, w.auditor.address, w.dear.address]);
      expect(rejected.map((r) => [r.candidate.provider, r.reason])).to.deep.equal([[w.mid.address, "ineligible"]]);
    });
  });
});
