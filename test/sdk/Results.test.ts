/**
 * Delivered results (sdk/src/results.ts) without a chain: publishResult then fetchResult over a blob
 * store, the root they agree on, and fetchResult's concurrent fetching — the lowest bad chunk named
 * whatever order the fetches finish in, at most 8 in flight.
 */
import { expect } from "chai";
import { MemoryBlobStore, digestOf, type BlobStore } from "../../sdk/src/blob.js";
import { concatBytes } from "../../sdk/src/encoding.js";
import { MeshworkBlobError, MeshworkVerificationError } from "../../sdk/src/errors.js";
import { MerkleTree, chunkLeaf } from "../../sdk/src/merkle.js";
import { ResultWriter, fetchResult, publishResult } from "../../sdk/src/results.js";
import { rejection } from "../helpers/rejection.js";

const JOB = "0x" + "ab".repeat(32);
const CHUNKS = 20;
const inputs = Array.from({ length: CHUNKS }, (_, i) => new Uint8Array([i, 1, 2]));
const outputs = Array.from({ length: CHUNKS }, (_, i) => new Uint8Array([i, 9, 9, 9]));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A store over `inner` that delays each get (by chunk byte 0 of the digest's blob) and can corrupt some. */
function slowStore(inner: MemoryBlobStore, options: { delayMs: (bytes: Uint8Array) => number; corrupt?: Set<string> }) {
  let inFlight = 0;
  let maxInFlight = 0;
  const store: BlobStore = {
    put: (bytes, digest) => inner.put(bytes, digest),
    has: (digest) => inner.has(digest),
    get: async (digest) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        const bytes = await inner.get(digest);
        await sleep(options.delayMs(bytes));
        if (options.corrupt?.has(digest)) bytes[1] ^= 0xff;
        return bytes;
      } finally {
        inFlight--;
      }
    },
  };
  return { store, maxInFlight: () => maxInFlight };
}

describe("results: publishResult and fetchResult", () => {
  it("agree on the root of PROTOCOL.md §5, and the joined bytes are built once, when first read", async () => {
    const store = new MemoryBlobStore();
    const published = await publishResult(store, JOB, inputs, outputs);
    expect(published.root).to.equal(new MerkleTree(inputs.map((input, i) => chunkLeaf(JOB, i, input, outputs[i]))).root);
    const inputDigests = inputs.map(digestOf);
    const fetched = await fetchResult(store, JOB, published.root, published.outputURI, { inputDigests });
    expect(fetched.chunks).to.deep.equal(outputs);
    expect(fetched.bytes).to.deep.equal(concatBytes(outputs));
    expect(fetched.bytes).to.equal(fetched.bytes);
  });

  it("ResultWriter stores each chunk as it is added, at most inFlight at once, and gives publishResult's manifest and root", async () => {
    const inner = new MemoryBlobStore();
    let storing = 0;
    let most = 0;
    const release: (() => void)[] = [];
    const store: BlobStore = {
      put: async (bytes, digest) => {
        most = Math.max(most, ++storing);
        await new Promise<void>((resolve) => release.push(resolve));
        storing--;
        return inner.put(bytes, digest);
      },
      has: (digest) => inner.has(digest),
      get: (digest, options) => inner.get(digest, options),
    };
    const writer = new ResultWriter(store, JOB, 3);
    for (let i = 0; i < 3; i++) await writer.add(outputs[i]); // started at once, none stored yet
    expect([storing, inner.size]).to.deep.equal([3, 0]);
    const fourth = writer.add(outputs[3]);
    await sleep(10);
    expect(storing).to.equal(3); // the fourth waits for the first
    release.shift()!();
    await fourth;
    for (let i = 4; i < CHUNKS; i++) {
      const adding = writer.add(outputs[i]);
      release.shift()!();
      await adding;
    }
    const finishing = writer.finish(inputs.map((input) => digestOf(input)));
    while (inner.size < CHUNKS + 1) {
      release.shift()?.();
      await sleep(1);
    }
    const written = await finishing;
    expect(most).to.equal(3);
    const published = await publishResult(new MemoryBlobStore(), JOB, inputs, outputs);
    expect([written.root, written.outputURI, written.manifest]).to.deep.equal([published.root, published.outputURI, published.manifest]);
    expect((await fetchResult(inner, JOB, written.root, written.outputURI)).chunks).to.deep.equal(outputs);
  });

  it("ResultWriter reports a chunk the store failed to keep, and waits for the rest when given up", async () => {
    const inner = new MemoryBlobStore();
    const failing: BlobStore = {
      put: async (bytes, digest) => {
        if (bytes[0] === 1) throw new MeshworkBlobError("disk full", { details: { reason: "io" } });
        await sleep(5);
        return inner.put(bytes, digest);
      },
      has: (digest) => inner.has(digest),
      get: (digest, options) => inner.get(digest, options),
    };
    const writer = new ResultWriter(failing, JOB, 2);
    for (let i = 0; i < 3; i++) await writer.add(outputs[i]);
    expect(await rejection(writer.add(outputs[3]))).to.be.instanceOf(MeshworkBlobError); // chunk 1's failure, when its turn comes
    expect(await rejection(writer.finish(inputs.slice(0, 3).map((input) => digestOf(input))))).to.be.instanceOf(MeshworkBlobError);
    const abandoned = new ResultWriter(failing, JOB);
    for (const i of [0, 2, 3]) await abandoned.add(outputs[i]);
    await abandoned.settled();
    expect(await Promise.all([0, 2, 3].map((i) => inner.has(digestOf(outputs[i]))))).to.deep.equal([true, true, true]);
    expect(await rejection(abandoned.finish([digestOf(inputs[0])]))).to.be.instanceOf(RangeError);
  });

  it("fetches at most 8 chunks at once", async () => {
    const inner = new MemoryBlobStore();
    const published = await publishResult(inner, JOB, inputs, outputs);
    const slow = slowStore(inner, { delayMs: () => 5 });
    const fetched = await fetchResult(slow.store, JOB, published.root, published.outputURI);
    expect(fetched.chunks).to.deep.equal(outputs);
    expect(slow.maxInFlight()).to.equal(8);
  });

  it("names the lowest tampered chunk even when a higher one is caught first", async () => {
    const inner = new MemoryBlobStore();
    const published = await publishResult(inner, JOB, inputs, outputs);
    const corrupt = new Set([digestOf(outputs[3]), digestOf(outputs[5])]);
    // Chunk 3 arrives last of all, chunk 5 first.
    const slow = slowStore(inner, { delayMs: (bytes) => (bytes[0] === 3 ? 40 : bytes[0] === 5 ? 0 : 5), corrupt });
    const error = await rejection(fetchResult(slow.store, JOB, published.root, published.outputURI));
    expect(error).to.be.instanceOf(MeshworkVerificationError);
    expect(error).to.include({ jobId: JOB, chunk: 3 });
    expect(error.cause).to.be.instanceOf(MeshworkBlobError);
    expect(error.cause.details).to.include({ digest: digestOf(outputs[3]), chunk: 3 });
  });

  it("names a missing chunk", async () => {
    const inner = new MemoryBlobStore();
    const published = await publishResult(inner, JOB, inputs, outputs);
    const missing = digestOf(outputs[7]);
    const holey: BlobStore = {
      put: (bytes, digest) => inner.put(bytes, digest),
      has: async (digest) => digest !== missing && inner.has(digest),
      get: async (digest) => (digest === missing ? Promise.reject(new MeshworkBlobError("blob not found", { details: { digest } })) : inner.get(digest)),
    };
    const error = await rejection(fetchResult(holey, JOB, published.root, published.outputURI));
    expect(error).to.be.instanceOf(MeshworkVerificationError);
    expect(error).to.include({ chunk: 7 });
  });

  it("checks every chunk's input digest before fetching any output", async () => {
    const inner = new MemoryBlobStore();
    const published = await publishResult(inner, JOB, inputs, outputs);
    let gets = 0;
    const counting: BlobStore = { put: (b, d) => inner.put(b, d), has: (d) => inner.has(d), get: (d) => (gets++, inner.get(d)) };
    const inputDigests = inputs.map(digestOf);
    inputDigests[11] = digestOf(new Uint8Array([7]));
    const error = await rejection(fetchResult(counting, JOB, published.root, published.outputURI, { inputDigests }));
    expect(error).to.be.instanceOf(MeshworkVerificationError);
    expect(error).to.include({ chunk: 11 });
    expect(error.details).to.include({ expected: inputDigests[11], got: digestOf(inputs[11]) });
    expect(gets).to.equal(1); // the manifest only
  });

  /** A store over `inner` that records every get's digest and maxBytes. */
  function recording(inner: MemoryBlobStore) {
    const gets: { digest: string; maxBytes?: number }[] = [];
    const store: BlobStore = {
      put: (b, d) => inner.put(b, d),
      has: (d) => inner.has(d),
      get: (digest, options) => (gets.push({ digest, maxBytes: options?.maxBytes }), inner.get(digest, options)),
    };
    return { store, gets };
  }

  it("checks the root and the number of chunks from the manifest alone, before fetching any output", async () => {
    const inner = new MemoryBlobStore();
    const published = await publishResult(inner, JOB, inputs, outputs);
    const wrongRoot = recording(inner);
    const error = await rejection(fetchResult(wrongRoot.store, JOB, "0x" + "77".repeat(32), published.outputURI));
    expect(error).to.be.instanceOf(MeshworkVerificationError);
    expect(error.details).to.include({ committedRoot: "0x" + "77".repeat(32), derivedRoot: published.root });
    expect(wrongRoot.gets).to.have.length(1); // the manifest only

    const tooMany = recording(inner);
    const inputDigests = [...inputs.map(digestOf), digestOf(new Uint8Array([1]))];
    const count = await rejection(fetchResult(tooMany.store, JOB, published.root, published.outputURI, { inputDigests }));
    expect(count).to.be.instanceOf(MeshworkVerificationError);
    expect(count.details).to.include({ expected: CHUNKS + 1, got: CHUNKS });
    expect(tooMany.gets).to.have.length(1);

    // The job's chunk count alone (no input digests): a result with fewer chunks than the job is refused.
    const truncated = await publishResult(inner, JOB, inputs.slice(0, CHUNKS - 1), outputs.slice(0, CHUNKS - 1));
    const fewer = recording(inner);
    const short = await rejection(fetchResult(fewer.store, JOB, truncated.root, truncated.outputURI, { chunks: CHUNKS }));
    expect(short).to.be.instanceOf(MeshworkVerificationError);
    expect(short.shortMessage).to.equal("the result has another number of chunks than the job");
    expect(short.details).to.include({ expected: CHUNKS, got: CHUNKS - 1 });
    expect(fewer.gets).to.have.length(1);
    expect((await fetchResult(inner, JOB, published.root, published.outputURI, { chunks: CHUNKS })).chunks).to.have.length(CHUNKS);
  });

  it("bounds what it downloads: the manifest at 16 MiB, each chunk at maxChunkBytes (256 MiB by default)", async () => {
    const inner = new MemoryBlobStore();
    const published = await publishResult(inner, JOB, inputs, outputs);
    const bounded = recording(inner);
    await fetchResult(bounded.store, JOB, published.root, published.outputURI);
    expect(bounded.gets[0].maxBytes).to.equal(16 * 1024 * 1024);
    expect(bounded.gets.slice(1).map((g) => g.maxBytes)).to.deep.equal(Array(CHUNKS).fill(256 * 1024 * 1024));

    const small = await rejection(fetchResult(inner, JOB, published.root, published.outputURI, { maxChunkBytes: 3 }));
    expect(small).to.be.instanceOf(MeshworkVerificationError);
    expect(small).to.include({ jobId: JOB, chunk: 0 });
    expect(small.details).to.include({ maxChunkBytes: 3 });
    expect(small.cause).to.be.instanceOf(MeshworkBlobError);
    expect(small.cause.details).to.include({ reason: "too-large", size: 4 });

    // A store that ignores maxBytes is held to it all the same.
    const careless: BlobStore = { put: (b, d) => inner.put(b, d), has: (d) => inner.has(d), get: (d) => inner.get(d) };
    const ignored = await rejection(fetchResult(careless, JOB, published.root, published.outputURI, { maxChunkBytes: 3 }));
    expect(ignored).to.include({ chunk: 0 });
    expect(ignored.cause.details).to.include({ reason: "too-large", chunk: 0 });

    const huge = await inner.put(new Uint8Array(16 * 1024 * 1024 + 1)); // a "manifest" past the cap
    const manifest = await rejection(fetchResult(careless, JOB, published.root, `blob:${huge}`));
    expect(manifest).to.be.instanceOf(MeshworkVerificationError);
    expect(manifest.cause.details).to.include({ reason: "too-large", maxBytes: 16 * 1024 * 1024 });
  });
});
