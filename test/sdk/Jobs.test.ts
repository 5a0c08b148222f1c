/**
 * SDK jobs against the devnet deployment: prepare (spec in the blob store, its digest the spec hash),
 * create, follow a job through its lifecycle events to a verified result, a timeout followed through
 * reopen to settlement by the same handle, a tampered chunk named, cancel, cost summary, routing.
 */
import { expect } from "chai";
import { network } from "hardhat";
import type { BlobStore } from "../../sdk/src/blob.js";
import { digestOf } from "../../sdk/src/blob.js";
import { Meshwork } from "../../sdk/src/client.js";
import {
  MeshworkContractError,
  MeshworkInsufficientFundsError,
  MeshworkJobFailedError,
  MeshworkRoutingError,
  MeshworkTimeoutError,
  MeshworkValidationError,
  MeshworkVerificationError,
} from "../../sdk/src/errors.js";
import { INVALID_OFFER, type JobEvent } from "../../sdk/src/jobs.js";
import { hashJob, receiptSigner, signReceipt, unpackRequirements } from "../../sdk/src/params.js";
import { specHash } from "../../sdk/src/spec.js";
import { CHUNKS, USD, compute, sdkWorld, specOver, work, type SdkWorld } from "./fixture.js";

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
    const base = connection.ethers.provider;
    const rpc = new Proxy(base, {
      get(target, prop, receiver) {
        if (prop === "provider") return receiver;
        if (prop === "getLogs" && hang) return () => new Promise(() => undefined);
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
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
    const mw = await w.sdk(w.consumer);
    const handle = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS, computeWindow: 600n });
    handle.pollMs = 10;
    await w.market.connect(w.mid).claim(handle.job); // and never commits
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

  it("finds an existing job by id", async () => {
    const w = await networkHelpers.loadFixture(world);
    const mw = await w.sdk(w.consumer);
    const created = await mw.jobs.create(specOver(w.inputs), { token: "tUSD", price: PRICE, workUnits: UNITS });
    const reader = await Meshwork.connect({ runner: w.ethers.provider, addresses: w.book, blobStore: w.store });
    const found = await reader.jobs.get(created.jobId);
    expect(found.job).to.deep.equal(created.job);
    await expect(reader.jobs.get("0x" + "11".repeat(32))).to.be.rejectedWith(/no job/);
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
      const { ranked, rejected } = await o.mw.jobs.route(o.prepared, { maxPrice: 100n * USD, offers: [forged, expired, o.mid] });
      expect(ranked.map((c) => c.provider)).to.deep.equal([w.mid.address]);
      expect(rejected.map((r) => [r.candidate.provider, r.candidate.eligibility])).to.deep.equal([
        [w.cheap.address, INVALID_OFFER],
        [w.dear.address, INVALID_OFFER],
      ]);
      // The market agrees: an expired offer reverts with a typed error.
      const error = await o.mw.jobs.createWithOffer(expired).catch((e) => e);
      expect(error).to.be.instanceOf(MeshworkContractError);
      expect(error).to.include({ errorName: "JobMarketOfferExpired" });
      expect(error.arg("expiry")).to.equal(1n);
    });

    it("routes by posted prices when there are no offers, skipping providers that cannot run the job", async () => {
      const w = await networkHelpers.loadFixture(world);
      const mw = await w.sdk(w.consumer);
      const prepared = await mw.jobs.prepare(specOver(w.inputs), {
        token: "tUSD",
        price: PRICE,
        workUnits: UNITS,
        requirements: { region: "DE" },
      });
      const { best, ranked, rejected } = await mw.jobs.route(prepared, { maxPrice: 100n * USD });
      // cheap and the auditor post 1 tUSD/unit in DE; mid is in KE (ineligible); dear costs 3.
      expect(best.price).to.equal(10n * USD);
      expect(ranked.map((c) => c.provider)).to.have.members([w.cheap.address, w.auditor.address, w.dear.address]);
      expect(rejected.map((r) => [r.candidate.provider, r.reason])).to.deep.equal([[w.mid.address, "ineligible"]]);
    });
  });
});
