/**
 * The `int-kernel` runtime (id 0): integer kernels whose results are bit-exact on any machine, the
 * reference workload for `exact` verification — any difference between honest replicas is fraud.
 *
 * **Program format.** The program blob is UTF-8 JSON (validated strictly: unknown keys are errors), one of
 *
 * - `{"kernel":"int8-matmul","k":K,"n":N,"weights":"<base64>","bias":[…],"shift":S,"relu":R}` — a
 *   quantized dense layer. `weights` is the base64 (standard alphabet, padded) of K·N int8 values,
 *   row-major (`W[k][j]` at byte `k·N + j`); `bias` N int32 values (default all 0); `shift` 0..31
 *   (default 0); `relu` (default false). K, N in 1..65536 and K·N ≤ 2^24. The input chunk is int8 bytes,
 *   M×K row-major (M = length / K; a length that is not a multiple of K is an error). The output is M×N
 *   int32, little-endian, row-major:
 *
 *       acc[m][j] = wrap32( Σ_k x[m][k] · W[k][j]  +  bias[j] )
 *       out[m][j] = relu ? max(0, acc[m][j] >> shift) : acc[m][j] >> shift
 *
 *   where `wrap32` reduces modulo 2^32 into the int32 range (two's complement wrap-around, as an int32
 *   accumulator does; the dot product alone never wraps, |Σ| ≤ K·2^14 ≤ 2^30, so only adding a large
 *   bias can) and `>>` is the arithmetic (sign-propagating) shift, i.e. floor division by 2^shift.
 * - `{"kernel":"int32-sum"}` — the input chunk is int32 little-endian (length a multiple of 4); the output
 *   is one int32: the wrap32 sum of all of them (0 for an empty chunk).
 * - `{"kernel":"xor","key":"<base64 of 1..4096 bytes>"}` — the output is the input XOR the key repeated
 *   from the start of each chunk; output encoding `bytes` only.
 *
 * The spec's `output.encoding` must be `int32-le` or `bytes` (for these kernels both name the same bytes;
 * `xor` needs `bytes`), and `canonicalisation` should be `exact`.
 *
 * **Thread.** A kernel holds the thread that runs it for the whole chunk (an int8 matmul of 1024×1024
 * weights over a 1 MiB chunk: about half a second here; a chunk of the largest blob a worker accepts:
 * minutes). By default (`thread: true`) jobs are loaded and run on the process's runtime thread, the
 * one ONNX sessions use (see onnx.ts), so the caller's event loop keeps turning: a worker goes on
 * revealing other jobs, claiming audits and serving blobs while a chunk computes. A job too small to
 * hold anything up — a program of at most {@link INLINE_PROGRAM_BYTES}, and chunks under
 * {@link INLINE_WORK} multiply-adds or bytes each, bounded from the spec's declared chunk sizes and the
 * program's size — runs on the caller's thread all the same: a message to the thread and back would
 * cost more than such a chunk. (A worker checks fetched inputs against their declared sizes.) The
 * thread does not keep programs between jobs (it keeps ONNX models): each load sends its program.
 */
import { endianness } from "node:os";
import { z } from "zod";
import { chunkRange } from "../../encoding.js";
import { MeshworkEncodingError, MeshworkError, MeshworkValidationError } from "../../errors.js";
import { RUNTIME_IDS, type JobSpec } from "../../spec.js";
import type { LoadedJob, Runtime, RuntimeCapabilities } from "./runtime.js";
import { loadOnThread, probeOnThread } from "./runtimeThread.js";

const INT32 = z.int().min(-0x8000_0000).max(0x7fff_ffff);
/**
 * Standard padded base64: whole 4-character groups of the standard alphabet, `=` only as the last one or
 * two. Checked as characters then length: a regular expression repeating a group per 4 characters
 * exhausts V8's stack on a few MiB of weights.
 */
const BASE64_CHARS = /^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]=|==)?$/;
const isPaddedBase64 = (s: string) => s.length % 4 === 0 && BASE64_CHARS.test(s);
/** Most dimension K or N of an int8 matmul. */
export const MAX_MATMUL_DIM = 65_536;
/** Most weights (K·N) of an int8 matmul: 16 MiB. */
export const MAX_MATMUL_WEIGHTS = 1 << 24;
/** Longest xor key, bytes. */
export const MAX_XOR_KEY = 4096;
/**
 * A job whose chunks each cost less work than this (multiply-adds, or bytes for the other kernels)
 * runs on the caller's thread even when the runtime uses the runtime thread: about a millisecond.
 */
export const INLINE_WORK = 1 << 20;
/** Largest program a job on the caller's thread may have: parsing one costs ~0.1 ms per KiB. */
export const INLINE_PROGRAM_BYTES = 64 * 1024;

const base64 = (max: number) =>
  z
    .string()
    .max(Math.ceil(max / 3) * 4)
    .refine(isPaddedBase64, "expected standard padded base64");

const Int8MatmulSchema = z
  .strictObject({
    kernel: z.literal("int8-matmul"),
    k: z.int().min(1).max(MAX_MATMUL_DIM),
    n: z.int().min(1).max(MAX_MATMUL_DIM),
    weights: base64(MAX_MATMUL_WEIGHTS),
    bias: z.array(INT32).max(MAX_MATMUL_DIM).optional(),
    shift: z.int().min(0).max(31).default(0),
    relu: z.boolean().default(false),
  })
  .superRefine((p, ctx) => {
    if (p.k * p.n > MAX_MATMUL_WEIGHTS) {
      ctx.addIssue({ code: "custom", path: ["n"], message: `k·n = ${p.k * p.n} exceeds ${MAX_MATMUL_WEIGHTS} weights` });
      return;
    }
    const bytes = Buffer.from(p.weights, "base64").length;
    if (bytes !== p.k * p.n) ctx.addIssue({ code: "custom", path: ["weights"], message: `${bytes} weight bytes, expected k·n = ${p.k * p.n}` });
    if (p.bias !== undefined && p.bias.length !== p.n) {
      ctx.addIssue({ code: "custom", path: ["bias"], message: `${p.bias.length} bias values, expected n = ${p.n}` });
    }
  });

const Int32SumSchema = z.strictObject({ kernel: z.literal("int32-sum") });

const XorSchema = z.strictObject({
  kernel: z.literal("xor"),
  key: base64(MAX_XOR_KEY).refine((k) => k.length > 0, "the key must not be empty"),
});

/** The program blob's JSON (see the module comment). */
export const IntKernelProgramSchema = z.discriminatedUnion("kernel", [Int8MatmulSchema, Int32SumSchema, XorSchema]);
export type IntKernelProgramJson = z.input<typeof IntKernelProgramSchema>;

/** A parsed program, binary fields decoded. */
export type IntKernelProgram =
  | { kernel: "int8-matmul"; k: number; n: number; weights: Int8Array; bias: Int32Array; shift: number; relu: boolean }
  | { kernel: "int32-sum" }
  | { kernel: "xor"; key: Uint8Array };

export type IntKernelName = IntKernelProgram["kernel"];

/** Output encodings each kernel may be declared with. */
const ENCODINGS: Record<IntKernelName, readonly string[]> = {
  "int8-matmul": ["int32-le", "bytes"],
  "int32-sum": ["int32-le", "bytes"],
  xor: ["bytes"],
};

/** Bytes of one input row (the unit a chunk must be a whole number of). */
function rowBytes(program: IntKernelProgram): number {
  switch (program.kernel) {
    case "int8-matmul":
      return program.k;
    case "int32-sum":
      return 4;
    case "xor":
      return 1;
  }
}

function issue(what: string, path: (string | number)[], message: string, details?: Record<string, unknown>): MeshworkValidationError {
  return new MeshworkValidationError(what, [{ code: "custom", path, message, input: undefined }], { details });
}

/**
 * Parses and validates a program blob. Throws {@link MeshworkValidationError} (zod's issues, with the
 * path of the bad field) for bytes that are not UTF-8 JSON or not a valid program.
 */
export function parseIntKernelProgram(bytes: Uint8Array): IntKernelProgram {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new MeshworkValidationError("int-kernel program", [{ code: "custom", path: [], message: `not UTF-8 JSON: ${(error as Error).message}`, input: undefined }], {
      cause: error,
    });
  }
  const parsed = IntKernelProgramSchema.safeParse(json);
  if (!parsed.success) throw new MeshworkValidationError("int-kernel program", parsed.error.issues, { cause: parsed.error });
  const p = parsed.data;
  switch (p.kernel) {
    case "int8-matmul": {
      const raw = Buffer.from(p.weights, "base64");
      const weights = new Int8Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const bias = p.bias ? Int32Array.from(p.bias) : new Int32Array(p.n);
      return { kernel: p.kernel, k: p.k, n: p.n, weights, bias, shift: p.shift, relu: p.relu };
    }
    case "int32-sum":
      return { kernel: p.kernel };
    case "xor":
      return { kernel: p.kernel, key: new Uint8Array(Buffer.from(p.key, "base64")) };
  }
}

export interface Int8MatmulParams {
  k: number;
  n: number;
  /** K·N int8 values, row-major (`W[k][j]` at `k·n + j`). */
  weights: Int8Array | ArrayLike<number>;
  /** N int32 values (default zeros). */
  bias?: Int32Array | ArrayLike<number>;
  shift?: number;
  relu?: boolean;
}

/**
 * The program blob of an int8 matmul (canonical key order, no whitespace). Throws
 * {@link MeshworkValidationError} for parameters the runtime would reject.
 */
export function buildInt8MatmulProgram({ k, n, weights, bias, shift = 0, relu = false }: Int8MatmulParams): Uint8Array {
  const w = weights instanceof Int8Array ? weights : Int8Array.from(weights, (v, i) => {
    if (!Number.isInteger(v) || v < -128 || v > 127) throw issue("int-kernel program", ["weights", i], `weight ${v} is not an int8`);
    return v;
  });
  const json = {
    kernel: "int8-matmul",
    k,
    n,
    weights: Buffer.from(w.buffer, w.byteOffset, w.byteLength).toString("base64"),
    ...(bias === undefined ? {} : { bias: Array.from(bias) }),
    shift,
    relu,
  };
  const bytes = new TextEncoder().encode(JSON.stringify(json));
  parseIntKernelProgram(bytes); // same checks as the worker's
  return bytes;
}

/** The program blob of another kernel (`int32-sum`, or `xor` with its key). */
export function buildIntKernelProgram(program: { kernel: "int32-sum" } | { kernel: "xor"; key: Uint8Array }): Uint8Array {
  const json = program.kernel === "xor" ? { kernel: "xor", key: Buffer.from(program.key).toString("base64") } : { kernel: program.kernel };
  const bytes = new TextEncoder().encode(JSON.stringify(json));
  parseIntKernelProgram(bytes);
  return bytes;
}

const LITTLE_ENDIAN = endianness() === "LE";

/** Little-endian bytes of int32 values (no copy on little-endian hosts). */
function int32Bytes(values: Int32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setInt32(i * 4, values[i], true);
  return out;
}

/** Weights transposed to N×K (column j of W contiguous), cached per parsed program. */
const transposed = new WeakMap<object, Int8Array>();

function transposeWeights(program: Extract<IntKernelProgram, { kernel: "int8-matmul" }>): Int8Array {
  let wt = transposed.get(program);
  if (!wt) {
    const { k: K, n: N, weights: W } = program;
    wt = new Int8Array(K * N);
    for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) wt[j * K + k] = W[k * N + j];
    transposed.set(program, wt);
  }
  return wt;
}

/**
 * The int8 matmul of `x` (M×K int8, row-major) as int32 values (M×N): the exact definition of the module
 * comment. Throws {@link MeshworkEncodingError} when `x.length` is not a multiple of K.
 *
 * The dot products are exact in int32 without wrapping (|Σ| ≤ K·2^14 ≤ 2^30 for K ≤ 2^16); only adding the
 * bias can wrap, which `| 0` does. The main loop computes 2 rows × 4 columns at once, in registers.
 */
export function int8Matmul(program: Extract<IntKernelProgram, { kernel: "int8-matmul" }>, x: Int8Array): Int32Array {
  const { k: K, n: N, bias, shift, relu } = program;
  if (x.length % K !== 0) {
    throw new MeshworkEncodingError("input is not a whole number of int8 rows", { details: { length: x.length, rowBytes: K } });
  }
  const M = x.length / K;
  const Wt = transposeWeights(program);
  const out = new Int32Array(M * N);
  const N4 = N - (N % 4);
  let m = 0;
  for (; m + 1 < M; m += 2) {
    const x0 = m * K;
    const x1 = x0 + K;
    const o = m * N;
    let j = 0;
    for (; j < N4; j += 4) {
      const w0 = j * K;
      const w1 = w0 + K;
      const w2 = w1 + K;
      const w3 = w2 + K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      for (let kk = 0; kk < K; kk++) {
        const a = x[x0 + kk];
        const b = x[x1 + kk];
        const c0 = Wt[w0 + kk];
        const c1 = Wt[w1 + kk];
        const c2 = Wt[w2 + kk];
        const c3 = Wt[w3 + kk];
        s0 += a * c0;
        s1 += a * c1;
        s2 += a * c2;
        s3 += a * c3;
        t0 += b * c0;
        t1 += b * c1;
        t2 += b * c2;
        t3 += b * c3;
      }
      out[o + j] = s0;
      out[o + j + 1] = s1;
      out[o + j + 2] = s2;
      out[o + j + 3] = s3;
      out[o + N + j] = t0;
      out[o + N + j + 1] = t1;
      out[o + N + j + 2] = t2;
      out[o + N + j + 3] = t3;
    }
    for (; j < N; j++) {
      const w = j * K;
      let s = 0;
      let t = 0;
      for (let kk = 0; kk < K; kk++) {
        const c = Wt[w + kk];
        s += x[x0 + kk] * c;
        t += x[x1 + kk] * c;
      }
      out[o + j] = s;
      out[o + N + j] = t;
    }
  }
  for (; m < M; m++) {
    const x0 = m * K;
    for (let j = 0; j < N; j++) {
      const w = j * K;
      let s = 0;
      for (let kk = 0; kk < K; kk++) s += x[x0 + kk] * Wt[w + kk];
      out[m * N + j] = s;
    }
  }
  // Bias (wrapping), arithmetic shift, relu.
  for (let o = 0; o < out.length; o += N) {
    for (let j = 0; j < N; j++) {
      const v = ((out[o + j] + bias[j]) | 0) >> shift;
      out[o + j] = relu && v < 0 ? 0 : v;
    }
  }
  return out;
}

/** Runs a parsed program on one input chunk: the chunk's canonical output bytes. */
export function runIntKernel(program: IntKernelProgram, input: Uint8Array): Uint8Array {
  switch (program.kernel) {
    case "int8-matmul":
      return int32Bytes(int8Matmul(program, new Int8Array(input.buffer, input.byteOffset, input.byteLength)));
    case "int32-sum": {
      if (input.length % 4 !== 0) throw new MeshworkEncodingError("input is not a whole number of int32 values", { details: { length: input.length } });
      const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
      let sum = 0;
      for (let i = 0; i < input.length; i += 4) sum = (sum + view.getInt32(i, true)) | 0;
      return int32Bytes(Int32Array.of(sum));
    }
    case "xor": {
      const { key } = program;
      const out = new Uint8Array(input.length);
      for (let i = 0; i < input.length; i++) out[i] = input[i] ^ key[i % key.length];
      return out;
    }
  }
}

/**
 * The distinct byte lengths of the spec's input chunks (one or two values for a `blob` input under the
 * chunking rule of encoding.ts; the listed sizes for `chunks`). Runtimes use it to reject, at load time,
 * a job whose chunks cannot be whole rows.
 */
export function inputChunkLengths(spec: JobSpec): number[] {
  const { inputs, chunking } = spec;
  if (inputs.kind === "chunks") return [...new Set(inputs.chunks.map((c) => c.size))];
  const { size } = inputs.blob;
  const { elementBytes } = inputs;
  const first = chunkRange(size, chunking.chunks, 0, { elementBytes }).length;
  const last = chunkRange(size, chunking.chunks, chunking.chunks - 1, { elementBytes }).length;
  return first === last ? [first] : [first, last];
}

export interface IntKernelRuntimeOptions {
  /** Load and run jobs on the process's runtime thread (default true), not on the caller's thread. */
  thread?: boolean;
  /**
   * A job whose chunks each cost less work than this runs on the caller's thread all the same (see
   * {@link INLINE_WORK}, the default); 0: every job on the runtime thread.
   */
  inlineWork?: number;
}

/** The `int-kernel` runtime (see the module comment). Pure JavaScript: available everywhere, CPU only. */
export class IntKernelRuntime implements Runtime {
  readonly name = "int-kernel" as const;
  readonly id = RUNTIME_IDS["int-kernel"];
  readonly options: Required<IntKernelRuntimeOptions>;
  #capabilities?: Promise<RuntimeCapabilities>;
  /** Set when the runtime thread could not be used: jobs run on the caller's thread. */
  #inline = false;

  constructor(options: IntKernelRuntimeOptions = {}) {
    const inlineWork = options.inlineWork ?? INLINE_WORK;
    if (!Number.isSafeInteger(inlineWork) || inlineWork < 0) throw issue("int-kernel runtime options", ["inlineWork"], "must be a non-negative integer");
    this.options = { thread: options.thread ?? true, inlineWork };
  }

  /** Always available; says where its kernels run. Computed once. */
  capabilities(): Promise<RuntimeCapabilities> {
    this.#capabilities ??= this.options.thread ? this.#probeOnThread() : Promise.resolve(this.#probe());
    return this.#capabilities;
  }

  async #probeOnThread(): Promise<RuntimeCapabilities> {
    const { capabilities, inline } = await probeOnThread("int-kernel", {}, async () => this.#probe());
    this.#inline = inline;
    return capabilities;
  }

  #probe(): RuntimeCapabilities {
    return { available: true, device: "cpu", detail: `int-kernel (JavaScript, Node ${process.versions.node}): ${Object.keys(ENCODINGS).join(", ")}` };
  }

  /**
   * Parses the program and checks it against the spec: runtime `int-kernel`, an output encoding the kernel
   * produces, and input chunks that are whole rows. Throws {@link MeshworkValidationError}. Where the
   * job runs (the runtime thread, or the caller's for a small one) is decided here, from the program's
   * size and the spec's declared chunk sizes.
   */
  async load(spec: JobSpec, executable: Uint8Array): Promise<LoadedJob> {
    if (spec.runtime !== "int-kernel") throw issue("job spec", ["runtime"], `the int-kernel runtime cannot run a ${spec.runtime} job`);
    // A bound of a chunk's work without parsing the program: an int8 matmul's n is below its length.
    const work = Math.max(0, ...inputChunkLengths(spec)) * Math.max(1, executable.length);
    if (this.options.thread && (work >= this.options.inlineWork || executable.length > INLINE_PROGRAM_BYTES)) {
      await this.capabilities();
      if (!this.#inline) return loadOnThread({}, spec, executable);
    }
    const program = parseIntKernelProgram(executable);
    const allowed = ENCODINGS[program.kernel];
    if (!allowed.includes(spec.output.encoding)) {
      throw issue("job spec", ["output", "encoding"], `the ${program.kernel} kernel produces ${allowed.join(" or ")} output, not ${spec.output.encoding}`, {
        kernel: program.kernel,
      });
    }
    const unit = rowBytes(program);
    const bad = inputChunkLengths(spec).find((len) => len % unit !== 0);
    if (bad !== undefined) {
      throw issue("job spec", ["inputs"], `an input chunk of ${bad} bytes is not a whole number of ${unit}-byte rows of the ${program.kernel} kernel`, {
        chunkBytes: bad,
        rowBytes: unit,
      });
    }
    let closed = false;
    return {
      async run(input: Uint8Array, index: number): Promise<Uint8Array> {
        if (closed) throw new MeshworkError("the int-kernel job was closed", { details: { chunk: index } });
        try {
          return runIntKernel(program, input);
        } catch (error) {
          if (!(error instanceof MeshworkEncodingError)) throw error;
          throw new MeshworkEncodingError(error.shortMessage, { details: { chunk: index, ...error.details }, cause: error });
        }
      },
      async close(): Promise<void> {
        closed = true;
      },
    };
  }
}
