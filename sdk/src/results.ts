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
  const manifest: OutputManifest = { version: 1, jobId: jobId.toLowerCase(), chunks };
  const outputURI = blobURI(await store.put(manifestBytes(manifest)));
  const tree = new MerkleTree(manifest.chunks.map((c, i) => leafHash(manifest.jobId, i, c.input, c.output)));
  return { manifest, outputURI, root: tree.root, tree };
}

export interface FetchResultOptions {
  /** The input digest the consumer expects for each chunk (from its spec); checked when given. */
  inputDigests?: string[];
}

/**
 * Downloads and verifies a result: the manifest (by the digest in `outputURI`), every output chunk (by
 * its digest; up to 8 fetched at once), and the root re-derived from them against the `root` revealed
 * on-chain. `bytes`, the chunks joined, is built when first read.
 * @throws {MeshworkVerificationError} naming the lowest bad chunk: an input digest other than expected
 * (checked before any output is fetched), bytes missing or not hashing to the manifest's digest; or a
 * root that does not match.
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
    raw = await store.get(digest);
    verifyBlob(digest, raw); // never trust a store implementation to have checked
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
  for (let i = 0; i < manifest.chunks.length; i++) {
    const expected = options.inputDigests?.[i];
    if (expected !== undefined && normalizeDigest(expected) !== manifest.chunks[i].input) {
      throw new MeshworkVerificationError(`chunk ${i} was computed from other input than the job's`, jobId, i, {
        details: { expected: normalizeDigest(expected), got: manifest.chunks[i].input },
      });
    }
  }
  const chunks = await fetchChunks(store, jobId, manifest);
  if (options.inputDigests && options.inputDigests.length !== manifest.chunks.length) {
    throw new MeshworkVerificationError("the result has another number of chunks than the job", jobId, undefined, {
      details: { expected: options.inputDigests.length, got: manifest.chunks.length },
    });
  }
  const derived = manifestRoot(manifest);
  if (derived.toLowerCase() !== root.toLowerCase()) {
    throw new MeshworkVerificationError("the result does not match the root its provider committed to", jobId, undefined, {
      details: { committedRoot: root, derivedRoot: derived },
    });
  }
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
async function fetchChunks(store: BlobStore, jobId: string, manifest: OutputManifest): Promise<Uint8Array[]> {
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
        const bytes = await store.get(digest);
        verifyBlob(digest, bytes, { chunk: i }); // never trust a store implementation to have checked
        chunks[i] = bytes;
      } catch (cause) {
        if (i < badIndex) [badIndex, badCause] = [i, cause];
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(FETCH_CONCURRENCY, n) }, fetcher));
  if (badIndex < n) throw new MeshworkVerificationError(`output chunk ${badIndex} is missing or tampered with`, jobId, badIndex, { cause: badCause });
  return chunks;
}
