/**
 * The job spec of PROTOCOL.md §4: a JSON document naming the runtime, the program or model, the inputs,
 * the chunking and the output format of a job. Only its hash goes on-chain (`JobRequest.specHash`).
 *
 * **Canonicalisation and hash.** A spec is first validated and normalised by {@link parseJobSpec}
 * (digests to `0x` + lower-case hex, defaults filled in), then serialised with the JSON Canonicalization
 * Scheme, RFC 8785 (JCS: keys sorted by UTF-16 code units, no whitespace, ECMAScript number formatting,
 * minimal string escapes) through the `canonicalize` package. The UTF-8 bytes of that text are
 * {@link specBytes}, and
 *
 *     specHash = sha256(specBytes)   as 0x-prefixed bytes32
 *
 * SHA-256 rather than keccak256 so that the spec hash *is* the spec's blob digest: store
 * `specBytes(spec)` in any {@link BlobStore} and it is found under `specHash`, and a worker checks a
 * downloaded spec with the same hash it checks every other blob with. Key order, whitespace and digest
 * spelling of the input never change the hash.
 *
 * @example
 * ```ts
 * const spec = parseJobSpec({
 *   version: 1,
 *   runtime: "int-kernel",
 *   program: { digest: programDigest, size: 312 },
 *   inputs: { kind: "blob", blob: { digest: inputDigest, size: 1 << 20 }, elementBytes: 4 },
 *   chunking: { chunks: 256 },
 *   output: { encoding: "int32-le", canonicalisation: "exact" },
 * });
 * const digest = await store.put(specBytes(spec)); // === specHash(spec)
 * ```
 */
import canonicalize from "canonicalize";
import { z } from "zod";
import { digestOf, normalizeDigest, type BlobStore } from "./blob.js";
import { MeshworkValidationError } from "./errors.js";
import { MAX_SCALE_BITS } from "./encoding.js";

/**
 * Runtime names of the spec and their on-chain ids (`Requirements.runtime`, bit i of a provider's
 * runtime bitmap). Keep in step with the contracts' runtime ids (0 = integer kernels, 1 = ONNX).
 */
export const RUNTIME_IDS = { "int-kernel": 0, onnx: 1 } as const;
export type RuntimeName = keyof typeof RUNTIME_IDS;

/** The runtime id that goes in `Requirements.runtime` for a runtime name. */
export function runtimeId(runtime: RuntimeName): number {
  return RUNTIME_IDS[runtime];
}

/** The runtime name of an on-chain runtime id, or undefined when the SDK knows no such runtime. */
export function runtimeName(id: number): RuntimeName | undefined {
  return (Object.keys(RUNTIME_IDS) as RuntimeName[]).find((name) => RUNTIME_IDS[name] === id);
}

/**
 * Most chunks a spec may declare. The contracts take any `uint32 ≥ 1`; the SDK caps N at 2^16 so that
 * an explicit chunk list, a result tree and its proofs (depth ≤ 16) stay small.
 */
export const MAX_CHUNKS = 65_536;
/**
 * Largest spec blob, in bytes of its canonical JSON. A worker reads no more than this before it knows
 * what the spec is (a spec declares the sizes of its other blobs, not its own). It holds an explicit list
 * of {@link MAX_CHUNKS} chunks (about 95 bytes each without a `uri`) with room to spare; a job with that
 * many chunks and a URI for each should use the `blob` input layout or short URIs.
 */
export const MAX_SPEC_BYTES = 8 * 1024 * 1024;
/** Spec format version this SDK writes and reads. */
export const SPEC_VERSION = 1;
/** Output encodings: see encoding.ts. */
export const OUTPUT_ENCODINGS = ["bytes", "int32-le", "fixed-point"] as const;
/** Encryption schemes an output may be encrypted with. */
export const ENCRYPTION_SCHEMES = ["x25519-aes-256-gcm"] as const;

const HEX64 = /^(?:0x)?[0-9a-fA-F]{64}$/;

/** A SHA-256 digest, either form, normalised to `0x` + lower-case hex. */
export const DigestSchema = z
  .string()
  .regex(HEX64, "expected a SHA-256 digest: 64 hex digits, optionally 0x-prefixed")
  .transform((d) => normalizeDigest(d));

/** Whether `uri` is an `http(s)://host…` or `ipfs://…` URL, or a `blob:<digest>` URI. */
function isBlobUri(uri: string): boolean {
  if (/^blob:(?:0x)?[0-9a-fA-F]{64}$/.test(uri)) return true;
  try {
    const url = new URL(uri);
    return (url.protocol === "http:" || url.protocol === "https:" || url.protocol === "ipfs:") && url.host !== "";
  } catch {
    return false;
  }
}

/**
 * Where a blob may be fetched from besides the blob stores the worker knows: `http(s)://…`, `ipfs://…`, or
 * `blob:0x<digest>` (the SDK's store-agnostic form: any blob store holding that digest).
 */
export const BlobUriSchema = z.string().max(2048).refine(isBlobUri, "expected an http(s)://, ipfs:// or blob:0x<sha256> URI");

/** A content-addressed blob: digest of its bytes, their size, and optionally where to fetch it. */
export const BlobRefSchema = z.strictObject({
  digest: DigestSchema,
  size: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  uri: BlobUriSchema.optional(),
});

/**
 * The inputs, in one of two layouts:
 * - `chunks`: one blob per chunk, in order (their count must equal `chunking.chunks`);
 * - `blob`: one blob split into `chunking.chunks` chunks by the rule of encoding.ts `splitChunks`, in units
 *   of `elementBytes` (1, 2, 4 or 8; default 1) so no element straddles two chunks.
 */
export const InputsSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("chunks"),
    chunks: z.array(BlobRefSchema).min(1).max(MAX_CHUNKS),
  }),
  z.strictObject({
    kind: z.literal("blob"),
    blob: BlobRefSchema,
    elementBytes: z.literal([1, 2, 4, 8], { error: "elementBytes must be 1, 2, 4 or 8" }).default(1),
  }),
]);

/** Number N of chunks: of the inputs, of the outputs, and of the result tree (`Verification.chunks`). */
export const ChunkingSchema = z.strictObject({
  chunks: z.int().min(1).max(MAX_CHUNKS),
});

/**
 * How output chunks are made canonical before hashing (PROTOCOL.md §5):
 * - `encoding`: `bytes` (as produced), `int32-le`, or `fixed-point` (floats rounded half-to-even to a grid
 *   of 2^-`scaleBits`, then int32 little-endian). `scaleBits` (0..31) is required for `fixed-point` and
 *   not allowed otherwise.
 * - `canonicalisation`: `exact` when the runtime is deterministic, so any difference between honest
 *   replicas is fraud (integer kernels); `tolerance` when it computes in floating point on varied hardware
 *   and only the rounded grid values are expected to agree (requires `fixed-point`; disputes go to a
 *   majority and a three-way disagreement to governance, never an automatic slash).
 */
export const OutputSchema = z.strictObject({
  encoding: z.enum(OUTPUT_ENCODINGS),
  scaleBits: z.int().min(0).max(MAX_SCALE_BITS).optional(),
  canonicalisation: z.enum(["exact", "tolerance"]),
});

/**
 * Public key the outputs are encrypted to (PROTOCOL.md §11). Leaves and the result root are computed on
 * the canonical plaintext chunks, so auditors can compare; only the stored output blob is encrypted.
 */
export const EncryptToSchema = z.strictObject({
  scheme: z.enum(ENCRYPTION_SCHEMES),
  /** The raw 32-byte X25519 public key, hex. */
  publicKey: z
    .string()
    .regex(HEX64, "expected a 32-byte public key: 64 hex digits, optionally 0x-prefixed")
    .transform((k) => "0x" + k.replace(/^0x/, "").toLowerCase()),
});

/** Free-form labels (name, project, contact): up to 32 entries of short strings, numbers or booleans. */
export const MetadataSchema = z
  .record(z.string().min(1).max(64), z.union([z.string().max(1024), z.number(), z.boolean()]))
  .refine((m) => Object.keys(m).length <= 32, "at most 32 metadata entries");

const common = {
  version: z.literal(SPEC_VERSION),
  inputs: InputsSchema,
  chunking: ChunkingSchema,
  output: OutputSchema,
  encryptTo: EncryptToSchema.optional(),
  metadata: MetadataSchema.optional(),
};

/**
 * The job spec (strict: unknown keys anywhere are errors, so typos do not pass silently). Discriminated by
 * `runtime`: `"int-kernel"` names its `program`, `"onnx"` its `model`; both are content-addressed blobs.
 */
export const JobSpecSchema = z
  .discriminatedUnion("runtime", [
    z.strictObject({ runtime: z.literal("int-kernel"), program: BlobRefSchema, ...common }),
    z.strictObject({ runtime: z.literal("onnx"), model: BlobRefSchema, ...common }),
  ])
  .superRefine((spec, ctx) => {
    const { output, inputs, chunking } = spec;
    if (!output || !inputs || !chunking) return; // already reported by the shape
    if (output.encoding === "fixed-point" && output.scaleBits === undefined) {
      ctx.addIssue({ code: "custom", path: ["output", "scaleBits"], message: "fixed-point output needs scaleBits" });
    }
    if (output.encoding !== "fixed-point" && output.scaleBits !== undefined) {
      ctx.addIssue({ code: "custom", path: ["output", "scaleBits"], message: `scaleBits applies to fixed-point output only, not ${output.encoding}` });
    }
    if (output.canonicalisation === "tolerance" && output.encoding !== "fixed-point") {
      ctx.addIssue({ code: "custom", path: ["output", "canonicalisation"], message: "tolerance canonicalisation needs fixed-point output" });
    }
    if (inputs.kind === "chunks" && inputs.chunks.length !== chunking.chunks) {
      ctx.addIssue({
        code: "custom",
        path: ["inputs", "chunks"],
        message: `${inputs.chunks.length} input chunks listed but chunking.chunks is ${chunking.chunks}`,
      });
    }
    if (inputs.kind === "blob" && inputs.blob.size % inputs.elementBytes !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["inputs", "blob", "size"],
        message: `size ${inputs.blob.size} is not a whole number of ${inputs.elementBytes}-byte elements`,
      });
    }
  });

/** A validated, normalised job spec (what {@link parseJobSpec} returns). */
export type JobSpec = z.output<typeof JobSpecSchema>;
/** What a caller may write: either digest form, defaults left out. */
export type JobSpecInput = z.input<typeof JobSpecSchema>;
export type BlobRef = z.output<typeof BlobRefSchema>;
export type JobInputs = z.output<typeof InputsSchema>;
export type OutputFormat = z.output<typeof OutputSchema>;

/**
 * Validates and normalises a job spec. Throws {@link MeshworkValidationError} whose `issues` are zod's,
 * each with the `path` of the bad field (e.g. `["output", "scaleBits"]`).
 */
export function parseJobSpec(input: unknown): JobSpec {
  const result = JobSpecSchema.safeParse(input);
  if (!result.success) throw new MeshworkValidationError("job spec", result.error.issues, { cause: result.error });
  return result.data;
}

/**
 * Parses the bytes of a spec blob (UTF-8 JSON) and validates it like {@link parseJobSpec}; more than
 * {@link MAX_SPEC_BYTES} bytes are refused unread.
 */
export function parseJobSpecBytes(bytes: Uint8Array): JobSpec {
  if (bytes.length > MAX_SPEC_BYTES) throw specTooLarge(bytes.length);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    const message = `not UTF-8 JSON: ${(error as Error).message}`;
    throw new MeshworkValidationError("job spec", [{ code: "custom", path: [], message, input: undefined }], { cause: error });
  }
  return parseJobSpec(value);
}

/**
 * RFC 8785 canonical JSON of any JSON value. Throws {@link MeshworkValidationError} for what JSON cannot
 * represent canonically (NaN, ±Infinity, lone surrogates, cycles, a top-level undefined).
 */
export function jcs(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (error) {
    throw new MeshworkValidationError("JSON value", [{ code: "custom", path: [], message: (error as Error).message, input: undefined }], {
      cause: error,
    });
  }
  if (text === undefined) throw new MeshworkValidationError("JSON value", [{ code: "custom", path: [], message: "no JSON representation", input: undefined }]);
  return text;
}

/**
 * The canonical JSON text of a spec: validated and normalised first, then RFC 8785. Throws
 * {@link MeshworkValidationError} when it is longer than {@link MAX_SPEC_BYTES} in UTF-8, so that a
 * consumer learns before publishing a spec that workers would not read.
 */
export function canonicalJson(spec: unknown): string {
  const text = jcs(parseJobSpec(spec));
  // UTF-16 code units bound UTF-8 bytes from below (and from above by 3×): encode only near the limit.
  if (text.length * 3 > MAX_SPEC_BYTES) {
    const size = new TextEncoder().encode(text).length;
    if (size > MAX_SPEC_BYTES) throw specTooLarge(size);
  }
  return text;
}

function specTooLarge(size: number): MeshworkValidationError {
  const message = `the spec is ${size} bytes of canonical JSON; at most ${MAX_SPEC_BYTES} (MAX_SPEC_BYTES)`;
  return new MeshworkValidationError("job spec", [{ code: "custom", path: [], message, input: undefined }], { details: { size, max: MAX_SPEC_BYTES } });
}

/** UTF-8 bytes of {@link canonicalJson}: what to store as the spec blob. */
export function specBytes(spec: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(spec));
}

/**
 * `JobRequest.specHash` of a spec: SHA-256 of its canonical bytes, `0x`-prefixed bytes32 — equal to the
 * blob digest of {@link specBytes}.
 */
export function specHash(spec: unknown): string {
  return digestOf(specBytes(spec));
}

/** Stores a spec's canonical bytes; resolves to its spec hash (= the blob's digest). */
export async function putJobSpec(store: BlobStore, spec: unknown): Promise<string> {
  return store.put(specBytes(spec));
}

/**
 * Fetches and validates the spec with hash `hash` (the store verifies the bytes against it), and checks
 * that it is in canonical form, so the spec returned is exactly the one the job committed to.
 */
export async function getJobSpec(store: BlobStore, hash: string): Promise<JobSpec> {
  const expected = normalizeDigest(hash);
  const spec = parseJobSpecBytes(await store.get(expected, { maxBytes: MAX_SPEC_BYTES }));
  const actual = specHash(spec);
  if (actual !== expected) {
    throw new MeshworkValidationError("job spec", [{ code: "custom", path: [], message: "the stored spec is not in canonical form", input: undefined }], {
      details: { specHash: expected, canonicalHash: actual },
    });
  }
  return spec;
}

/** The program (int-kernel) or model (onnx) blob of a spec. */
export function executableOf(spec: JobSpec): BlobRef {
  return spec.runtime === "onnx" ? spec.model : spec.program;
}
