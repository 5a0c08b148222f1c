/**
 * Delivered results. A worker stores each output chunk as a blob and an **output manifest** listing,
 * per chunk, the digests of its input and output bytes; the manifest's own digest is the `outputURI`
 * (`blob:0x…`) it reveals on-chain next to the result root. A consumer re-derives every leaf of
 * PROTOCOL.md §5 from the bytes it downloads and checks the root, so a tampered chunk is caught and
 * named.
 */
import { z } from "zod";
import canonicalize from "canonicalize";
import type { BlobStore } from "./blob.js";
import { digestOf, isDigest, normalizeDigest, verifyBlob } from "./blob.js";
import { concatBytes } from "./encoding.js";
import { MeshworkBlobError, MeshworkValidationError, MeshworkVerificationError } from "./errors.js";
import { MerkleTree, leafHash } from "./merkle.js";

/** Output chunks fetched at once by {@link fetchResult}. */
const FETCH_CONCURRENCY = 8;

const digest = z.string().refine(isDigest, "not a SHA-256 digest").transform(normalizeDigest);

export const OutputManifestSchema = z.strictObject({
  version: z.literal(1),
  jobId: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
  /** Chunk i: SHA-256 of its input bytes and of its canonical output bytes. */
  chunks: z.array(z.strictObject({ input: digest, output: digest })).min(1),
});
export type OutputManifest = z.infer<typeof OutputManifestSchema>;

const BLOB_URI = /^blob:((?:0x)?[0-9a-fA-F]{64})$/;

/** `blob:0x…` for a digest. */
export function blobURI(digest: string): string {
  return `blob:${normalizeDigest(digest)}`;
}

/** The digest in a `blob:` URI (or a bare digest). @throws {MeshworkBlobError} for anything else. */
export function digestFromURI(uri: string): string {
  const m = BLOB_URI.exec(uri);
  if (m) return normalizeDigest(m[1]);
  if (isDigest(uri)) return normalizeDigest(uri);
  throw new MeshworkBlobError(`unsupported blob URI "${uri}" (expected blob:0x<sha256>)`, { details: { uri } });
}

/** The manifest's canonical JSON bytes (RFC 8785), what its digest is taken over. */
export function manifestBytes(manifest: OutputManifest): Uint8Array {
  return new TextEncoder().encode(canonicalize(manifest)!);
}

/** The result root a manifest commits to (the leaves of PROTOCOL.md §5 from its digests). */
export function manifestRoot(manifest: OutputManifest): string {
  return new MerkleTree(manifest.chunks.map((c, i) => leafHash(manifest.jobId, i, c.input, c.output))).root;
}

/**
 * Stores output chunks and their manifest; returns the manifest, its `outputURI` and the result root
 * to commit to. What a worker calls after running a job. `inputDigests`, when given, are the input
 * chunks' digests already verified (the spec's), so the inputs are not hashed again.
 * @example
 * ```ts
 * const { outputURI, root } = await publishResult(store, jobId, inputChunks, outputChunks);
 * ```
 */
export async function publishResult(
  store: BlobStore,
  jobId: string,
  inputs: Uint8Array[],
  outputs: Uint8Array[],
  options: { inputDigests?: string[] } = {},
): Promise<{ manifest: OutputManifest; outputURI: string; root: string; tree: MerkleTree }> {
  if (inputs.length !== outputs.length) throw new RangeError(`${inputs.length} input chunks but ${outputs.length} output chunks`);
  const chunks = [];
  for (let i = 0; i < outputs.length; i++) {
    // The input digests the caller already verified (a worker fetched each input chunk by its digest)
    // are not hashed again.
    const input = options.inputDigests?.[i] !== undefined ? normalizeDigest(options.inputDigests[i]) : digestOf(inputs[i]);
    chunks.push({ input, output: await store.put(outputs[i]) });
  }
  return publishManifest(store, jobId, chunks);
}

/**
 * The second half of {@link publishResult}, for output chunks already stored (a worker stores each as
 * it is computed): stores the manifest of `chunks` (per chunk, the digests of its input and output
 * bytes) and returns it, its `outputURI` and the result root.
 */
export async function publishManifest(
  store: BlobStore,
  jobId: string,
  chunks: { input: string; output: string }[],
): Promise<{ manifest: OutputManifest; outputURI: string; root: string; tree: MerkleTree }> {
  const manifest: OutputManifest = {
    version: 1,
    jobId: jobId.toLowerCase(),
    chunks: chunks.map((c) => ({ input: normalizeDigest(c.input), output: normalizeDigest(c.output) })),
  };
  const outputURI = blobURI(await store.put(manifestBytes(manifest)));
  const tree = new MerkleTree(manifest.chunks.map((c, i) => leafHash(manifest.jobId, i, c.input, c.output)));
  return { manifest, outputURI, root: tree.root, tree };
}

/**
 * {@link publishResult} spread over a computation: each output chunk is stored as soon as it is
 * computed (in the blob store's own time: a directory's writes, an upload), at most `inFlight` at a
 * time, while the next one computes; `finish` then stores the manifest. What a worker uses, so its
 * commitment is ready soon after the last chunk rather than after storing every chunk.
 * @example
 * ```ts
 * const writer = new ResultWriter(store, jobId);
 * for (const input of inputs) await writer.add(await run(input));
 * const { outputURI, root } = await writer.finish(inputs.map((input) => digestOf(input)));
 * ```
 */
export class ResultWriter {
  readonly #puts: Promise<string>[] = [];

  constructor(
    readonly store: BlobStore,
    readonly jobId: string,
    /** Output chunks being stored at once, at most (`add` waits for the oldest beyond that). */
    readonly inFlight = 4,
  ) {}

  /** Starts storing the next output chunk, once fewer than `inFlight` are being stored. @throws what the store threw for an earlier chunk */
  async add(output: Uint8Array): Promise<void> {
    if (this.#puts.length >= this.inFlight) await this.#puts[this.#puts.length - this.inFlight];
    const put = this.store.put(output);
    put.catch(() => undefined); // read by finish() or settled()
    this.#puts.push(put);
  }

  /**
   * Waits for every output chunk to be stored, then stores the manifest (`inputDigests`: chunk i's input
   * digest, one per chunk added). @throws what the store threw for any chunk
   */
  async finish(inputDigests: string[]): Promise<{ manifest: OutputManifest; outputURI: string; root: string; tree: MerkleTree }> {
    if (inputDigests.length !== this.#puts.length) throw new RangeError(`${inputDigests.length} input digests but ${this.#puts.length} output chunks`);
    const outputs = await Promise.all(this.#puts);
    return publishManifest(this.store, this.jobId, outputs.map((output, i) => ({ input: inputDigests[i], output })));
  }

  /** Waits for the chunks being stored, whatever comes of them (a computation given up). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.#puts);
  }
}

/** The longest output manifest {@link fetchResult} reads: enough for 65,536 chunks. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** The default longest output chunk {@link fetchResult} reads (a worker's default `maxBlobBytes`). */
export const DEFAULT_MAX_CHUNK_BYTES = 256 * 1024 * 1024;

export interface FetchResultOptions {
  /** The input digest the consumer expects for each chunk (from its spec); checked when given. */
  inputDigests?: string[];
  /** The number of chunks the job has (its on-chain `verification`); checked when given. */
  chunks?: number;
  /** The longest output chunk to download, in bytes; default 256 MiB. */
  maxChunkBytes?: number;
}

/**
 * Downloads and verifies a result: the manifest (by the digest in `outputURI`, at most 16 MiB), then
 * the root re-derived from the manifest's digests against the `root` revealed on-chain, and only then
 * every output chunk (by its digest, at most `maxChunkBytes` each; up to 8 fetched at once), so a
 * result that cannot be right costs no download. `bytes`, the chunks joined, is built when first read.
 * @throws {MeshworkVerificationError} a manifest missing, too long, malformed or for another job; an
 * input digest other than expected (naming the lowest such chunk) or another number of chunks than
 * `chunks` or `inputDigests`; a root that does not match; an output chunk missing, longer than `maxChunkBytes`
 * (`details.maxChunkBytes`) or not hashing to the manifest's digest (naming the lowest bad chunk).
 */
export async function fetchResult(
  store: BlobStore,
  jobId: string,
  root: string,
  outputURI: string,
  options: FetchResultOptions = {},
): Promise<{ manifest: OutputManifest; chunks: Uint8Array[]; bytes: Uint8Array }> {
  let raw: Uint8Array;
  try {
    const digest = digestFromURI(outputURI);
    raw = await store.get(digest, { maxBytes: MAX_MANIFEST_BYTES, verify: false }); // hashed just below, once
    checkSize(digest, raw, MAX_MANIFEST_BYTES); // never trust a store implementation to have checked
    verifyBlob(digest, raw);
  } catch (cause) {
    throw new MeshworkVerificationError("the output manifest could not be fetched or verified", jobId, undefined, { cause, details: { outputURI } });
  }
  let manifest: OutputManifest;
  try {
    const parsed = OutputManifestSchema.safeParse(JSON.parse(new TextDecoder().decode(raw)));
    if (!parsed.success) throw new MeshworkValidationError("output manifest", parsed.error.issues);
    manifest = parsed.data;
  } catch (cause) {
    throw new MeshworkVerificationError("the output manifest is malformed", jobId, undefined, { cause });
  }
  if (manifest.jobId.toLowerCase() !== jobId.toLowerCase()) {
    throw new MeshworkVerificationError("the output manifest is for another job", jobId, undefined, { details: { manifestJobId: manifest.jobId } });
  }
  // Everything the manifest alone decides, before any output is fetched.
  for (let i = 0; i < manifest.chunks.length; i++) {
    const expected = options.inputDigests?.[i];
    if (expected !== undefined && normalizeDigest(expected) !== manifest.chunks[i].input) {
      throw new MeshworkVerificationError(`chunk ${i} was computed from other input than the job's`, jobId, i, {
        details: { expected: normalizeDigest(expected), got: manifest.chunks[i].input },
      });
    }
  }
  for (const expected of [options.chunks, options.inputDigests?.length]) {
    if (expected !== undefined && expected !== manifest.chunks.length) {
      throw new MeshworkVerificationError("the result has another number of chunks than the job", jobId, undefined, {
        details: { expected, got: manifest.chunks.length },
      });
    }
  }
  const derived = manifestRoot(manifest);
  if (derived.toLowerCase() !== root.toLowerCase()) {
    throw new MeshworkVerificationError("the result does not match the root its provider committed to", jobId, undefined, {
      details: { committedRoot: root, derivedRoot: derived },
    });
  }
  const chunks = await fetchChunks(store, jobId, manifest, options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES);
  let bytes: Uint8Array | undefined;
  return {
    manifest,
    chunks,
    get bytes() {
      bytes ??= concatBytes(chunks);
      return bytes;
    },
  };
}

/** Every output chunk of `manifest`, fetched and verified; the error names the lowest bad chunk. */
async function fetchChunks(store: BlobStore, jobId: string, manifest: OutputManifest, maxChunkBytes: number): Promise<Uint8Array[]> {
  const n = manifest.chunks.length;
  const chunks: Uint8Array[] = new Array(n);
  let badIndex = n; // the lowest bad chunk found (n: none)
  let badCause: unknown;
  let next = 0;
  const fetcher = async () => {
    while (next < n && badIndex === n) {
      const i = next++;
      try {
        const digest = manifest.chunks[i].output;
        const bytes = await store.get(digest, { maxBytes: maxChunkBytes, verify: false }); // hashed just below, once
        checkSize(digest, bytes, maxChunkBytes, { chunk: i }); // never trust a store implementation to have checked
        verifyBlob(digest, bytes, { chunk: i });
        chunks[i] = bytes;
      } catch (cause) {
        if (i < badIndex) [badIndex, badCause] = [i, cause];
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(FETCH_CONCURRENCY, n) }, fetcher));
  if (badIndex < n) {
    const tooLarge = badCause instanceof MeshworkBlobError && badCause.details.reason === "too-large";
    throw new MeshworkVerificationError(
      tooLarge ? `output chunk ${badIndex} is longer than maxChunkBytes` : `output chunk ${badIndex} is missing or tampered with`,
      jobId,
      badIndex,
      { cause: badCause, details: tooLarge ? { maxChunkBytes } : {} },
    );
  }
  return chunks;
}

/** Throws the blob store's "too-large" error for bytes over `maxBytes`. */
function checkSize(digest: string, bytes: Uint8Array, maxBytes: number, details: Record<string, unknown> = {}): void {
  if (bytes.length > maxBytes) {
    throw new MeshworkBlobError(`blob longer than the ${maxBytes} bytes asked for`, {
      details: { digest, reason: "too-large", maxBytes, size: bytes.length, ...details },
    });
  }
}
