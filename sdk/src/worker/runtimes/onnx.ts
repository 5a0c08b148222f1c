/**
 * The `onnx` runtime (id 1): ONNX models through `onnxruntime-node`, on the CPU, or on an NVIDIA GPU
 * when the CUDA execution provider is usable. A GPU is never required.
 *
 * **Model contract.** One input and one output. The input is a float32 tensor `[batch, d1, …]` whose
 * first dimension is the batch (symbolic, or a fixed number B) and whose other dimensions are fixed; a
 * row is `features = d1·d2·…` floats. The output should be batch-major (row i of the output depends on
 * row i of the input only) so that chunks are independent of how rows are batched.
 *
 * **Chunks.** An input chunk is float32 little-endian, `rows × features` (a size that is not a whole
 * number of rows — of B rows for a fixed batch B — is a {@link MeshworkEncodingError}; an empty chunk
 * gives empty output). Its output is the output tensor, flat, encoded by the spec's `output.encoding`:
 * `fixed-point` → `encodeFixedPoint(values, scaleBits)` (any numeric output); `int32-le` and `bytes` only
 * for integer outputs (`int32-le`: each value as int32; `bytes`: the tensor's little-endian bytes as they
 * are). Both are checked when the job loads.
 *
 * **Determinism.** On the CPU the session runs sequentially on `intraOpNumThreads` threads (default 1)
 * with `graphOptimizationLevel` "basic" (default), so a chunk gives the same bits on every run on one
 * machine, and rows give the same bits whatever they are batched with (tested for dense models). Across
 * machines (AVX2 vs AVX-512, CPU vs GPU) floats may differ in the last bits: that is what `fixed-point`
 * rounding and `tolerance` canonicalisation are for. With `device: "auto"` a job is run on CUDA only
 * when its canonicalisation is `tolerance`; `exact` jobs stay on the CPU.
 *
 * **Thread.** ONNX Runtime's `run` holds the thread that calls it for the whole inference. By default
 * (`thread: true`) sessions live on one runtime thread per process (a `worker_threads` Worker shared by
 * every `OnnxRuntime` and `IntKernelRuntime`), so the caller's event loop keeps turning while a chunk computes: a worker goes
 * on committing, revealing and serving blobs. A job's inputs and outputs cross through two buffers
 * shared with the thread, allocated once and reused: nothing is moved between the threads per chunk
 * (moving a new buffer into a thread with a large heap made V8 collect it three times as often).
 * A model's bytes are copied to the thread once: it keeps the last models it was sent (checked against
 * the spec's `model.digest`), so loading a model again sends only its digest. The thread does not keep
 * the process alive while idle. Errors keep their class, message and details.
 */
import type * as Ort from "onnxruntime-node";
import { endianness } from "node:os";
import { concatBytes, encodeFixedPoint, encodeInt32LE } from "../../encoding.js";
import { MeshworkEncodingError, MeshworkError, MeshworkValidationError } from "../../errors.js";
import { RUNTIME_IDS, type JobSpec } from "../../spec.js";
import { detectGpus } from "../hardware.js";
import { inputChunkLengths } from "./intKernel.js";
import { buildDenseModel } from "./onnxModel.js";
import { SESSION_FAILED, type LoadedJob, type Runtime, type RuntimeCapabilities } from "./runtime.js";
import { firstLine, loadOnThread, probeOnThread, type ThreadRuntimeOptions } from "./runtimeThread.js";

type OrtModule = typeof Ort;
type GraphOptimizationLevel = NonNullable<Ort.InferenceSession.SessionOptions["graphOptimizationLevel"]>;

export interface OnnxRuntimeOptions {
  /** `auto` (default): CUDA when usable and the job's canonicalisation is `tolerance`, else CPU. */
  device?: "auto" | "cpu" | "cuda";
  /** Threads per CPU operator (default 1: deterministic and leaves cores to other jobs). */
  intraOpNumThreads?: number;
  /** ONNX Runtime graph optimisations (default `basic`). */
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** Most rows per `session.run` for a dynamic batch (default: the whole chunk in one run; a fixed batch B always runs B rows). */
  maxBatchRows?: number;
  /** Run sessions on the process's runtime thread (default true), not on the caller's thread. */
  thread?: boolean;
}

/** A loaded ONNX job, with what its session runs on (for logs and tests). */
export interface OnnxLoadedJob extends LoadedJob {
  readonly device: "cpu" | "cuda";
  /** Floats per input row. */
  readonly features: number;
  /** The model output's element type ("float32", "int32", …). */
  readonly outputType: string;
}

/** Output element types and the encodings they may be declared with. */
const INTEGER_TYPES = new Set(["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]);
const FLOAT_TYPES = new Set(["float32", "float64"]);
const LITTLE_ENDIAN = endianness() === "LE";

let ortPromise: Promise<OrtModule> | undefined;

/** Loads onnxruntime-node once (lazily, so that a missing native binding only disables this runtime). */
export function loadOnnxRuntime(): Promise<OrtModule> {
  ortPromise ??= import("onnxruntime-node").then((m) => {
    // A CommonJS package: its named exports when Node detects them, else the default export.
    const mod = m as unknown as Partial<OrtModule> & { default?: OrtModule };
    return (mod.InferenceSession ? mod : mod.default ?? mod) as OrtModule;
  });
  ortPromise.catch(() => (ortPromise = undefined)); // a failed load may be retried
  return ortPromise;
}

/** A 2-in, 1-out dense model: what the probes load. */
function probeModel(): Uint8Array {
  return buildDenseModel({ inFeatures: 2, outFeatures: 1, weights: Float32Array.of(1, 2), bias: Float32Array.of(0.5) });
}

/** Creates a session on the probe model with `providers` and checks one inference (1·1 + 2·2 + 0.5). */
async function probeSession(ort: OrtModule, providers: string[]): Promise<void> {
  const session = await ort.InferenceSession.create(probeModel(), { executionProviders: providers, logSeverityLevel: 4 });
  try {
    const out = await session.run({ x: new ort.Tensor("float32", Float32Array.of(1, 2), [1, 2]) });
    const y = out[session.outputNames[0]].data as Float32Array;
    if (y[0] !== 5.5) throw new Error(`probe inference returned ${y[0]}, expected 5.5`);
  } finally {
    await session.release();
  }
}

/** Whether the CUDA execution provider is usable: an NVIDIA GPU (nvidia-smi) and a CUDA session that runs. */
export async function probeCuda(ort?: OrtModule): Promise<{ available: boolean; detail: string }> {
  const gpus = await detectGpus();
  if (gpus.length === 0) return { available: false, detail: "no CUDA: nvidia-smi lists no GPU" };
  try {
    await probeSession(ort ?? (await loadOnnxRuntime()), ["cuda"]);
    return { available: true, detail: `CUDA on ${gpus.length}× ${gpus[0].name}` };
  } catch (error) {
    return { available: false, detail: `no CUDA: ${firstLine(error)}` };
  }
}

function invalid(what: string, path: (string | number)[], message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
  return new MeshworkValidationError(what, [{ code: "custom", path, message, input: undefined }], options);
}

/** The shape facts of a model's single input and output. */
interface ModelIo {
  inputName: string;
  outputName: string;
  /** The non-batch dimensions of the input. */
  featureDims: number[];
  features: number;
  /** The input's batch dimension when it is fixed, else undefined. */
  fixedBatch?: number;
  outputType: string;
}

function modelIo(session: Ort.InferenceSession): ModelIo {
  const what = "ONNX model";
  if (session.inputNames.length !== 1) throw invalid(what, ["inputs"], `the model has ${session.inputNames.length} inputs; exactly one is supported`);
  if (session.outputNames.length !== 1) throw invalid(what, ["outputs"], `the model has ${session.outputNames.length} outputs; exactly one is supported`);
  const input = session.inputMetadata?.[0];
  const output = session.outputMetadata?.[0];
  if (!input?.isTensor || !output?.isTensor) throw invalid(what, [], "the model's input and output must be tensors");
  if (input.type !== "float32") throw invalid(what, ["inputs", 0, "type"], `input element type ${input.type} is not supported (float32 only)`, { details: { type: input.type } });
  const shape = input.shape;
  if (shape.length < 2) throw invalid(what, ["inputs", 0, "shape"], `the input must be [batch, features…], not rank ${shape.length}`);
  const featureDims = shape.slice(1).map((d, i) => {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 1) {
      throw invalid(what, ["inputs", 0, "shape", i + 1], `input dimension ${i + 1} must be a fixed positive size, not ${String(d)}`);
    }
    return d;
  });
  const batch = shape[0];
  const fixedBatch = typeof batch === "number" && batch > 0 ? batch : undefined;
  return {
    inputName: session.inputNames[0],
    outputName: session.outputNames[0],
    featureDims,
    features: featureDims.reduce((a, b) => a * b, 1),
    fixedBatch,
    outputType: output.type,
  };
}

/** Checks the spec's output encoding against the model's output element type. */
function checkEncoding(spec: JobSpec, outputType: string) {
  const { encoding } = spec.output;
  const numeric = INTEGER_TYPES.has(outputType) || FLOAT_TYPES.has(outputType);
  const ok = encoding === "fixed-point" ? numeric : INTEGER_TYPES.has(outputType);
  if (!ok) {
    const hint = FLOAT_TYPES.has(outputType) ? "float outputs need fixed-point" : `${outputType} output is not supported`;
    throw invalid("job spec", ["output", "encoding"], `${encoding} encoding cannot encode the model's ${outputType} output: ${hint}`, {
      details: { outputType, encoding },
    });
  }
}

/** Plain numbers of a tensor's data (int64 values must be safe integers). */
function numbers(data: Ort.Tensor["data"]): ArrayLike<number> {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const out = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new MeshworkEncodingError("int64 output value out of range", { details: { index: i, value: v.toString() } });
      }
      out[i] = Number(v);
    }
    return out;
  }
  return data as ArrayLike<number>;
}

/** Little-endian bytes of an integer tensor's data, copied. */
function rawBytes(data: Ort.Tensor["data"]): Uint8Array {
  const typed = data as unknown as ArrayBufferView & { BYTES_PER_ELEMENT: number; length: number };
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength).slice();
  if (!LITTLE_ENDIAN && typed.BYTES_PER_ELEMENT > 1) {
    for (let i = 0; i < bytes.length; i += typed.BYTES_PER_ELEMENT) bytes.subarray(i, i + typed.BYTES_PER_ELEMENT).reverse();
  }
  return bytes;
}

/** The float32 values of little-endian bytes: a view of them when aligned, else an aligned copy. */
function float32s(input: Uint8Array): Float32Array {
  if (LITTLE_ENDIAN && input.byteOffset % 4 === 0) return new Float32Array(input.buffer, input.byteOffset, input.length / 4);
  const copy = input.slice();
  if (LITTLE_ENDIAN) return new Float32Array(copy.buffer, 0, copy.length / 4);
  const view = new DataView(copy.buffer);
  const out = new Float32Array(copy.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** The `onnx` runtime (see the module comment). */
export class OnnxRuntime implements Runtime {
  readonly name = "onnx" as const;
  readonly id = RUNTIME_IDS.onnx;
  readonly options: Required<Omit<OnnxRuntimeOptions, "maxBatchRows">> & { maxBatchRows?: number };
  #capabilities?: Promise<RuntimeCapabilities>;
  /** What the runtime thread's own OnnxRuntime is built with (these options, on its thread). */
  readonly #sessionOptions: ThreadRuntimeOptions;
  /** Set when the runtime thread could not be used: sessions run on the caller's thread. */
  #inline = false;

  constructor(options: OnnxRuntimeOptions = {}) {
    const threads = options.intraOpNumThreads ?? 1;
    if (!Number.isInteger(threads) || threads < 0) throw invalid("ONNX runtime options", ["intraOpNumThreads"], "must be a non-negative integer (0 = ONNX Runtime's default)");
    if (options.maxBatchRows !== undefined && (!Number.isInteger(options.maxBatchRows) || options.maxBatchRows < 1)) {
      throw invalid("ONNX runtime options", ["maxBatchRows"], "must be a positive integer");
    }
    this.options = {
      device: options.device ?? "auto",
      intraOpNumThreads: threads,
      graphOptimizationLevel: options.graphOptimizationLevel ?? "basic",
      maxBatchRows: options.maxBatchRows,
      thread: options.thread ?? true,
    };
    const { thread: _, ...sessionOptions } = this.options;
    this.#sessionOptions = sessionOptions;
  }

  /**
   * Whether onnxruntime-node loads and runs a probe model on the CPU, and whether CUDA is usable (an
   * NVIDIA GPU and a CUDA session that runs; skipped when `device` is `cpu`). Computed once.
   */
  capabilities(): Promise<RuntimeCapabilities> {
    this.#capabilities ??= this.options.thread ? this.#probeOnThread() : this.#probe();
    return this.#capabilities;
  }

  async #probeOnThread(): Promise<RuntimeCapabilities> {
    const { capabilities, inline } = await probeOnThread("onnx", this.#sessionOptions, () => this.#probe());
    this.#inline = inline;
    return capabilities;
  }

  async #probe(): Promise<RuntimeCapabilities> {
    let ort: OrtModule;
    try {
      ort = await loadOnnxRuntime();
      await probeSession(ort, ["cpu"]);
    } catch (error) {
      return { available: false, device: "cpu", detail: `onnxruntime-node unusable: ${firstLine(error)}` };
    }
    const version = `onnxruntime-node ${ort.env.versions?.node ?? "?"}`;
    if (this.options.device === "cpu") return { available: true, device: "cpu", detail: `${version}; execution providers: cpu (CUDA disabled)` };
    const cuda = await probeCuda(ort);
    return cuda.available
      ? { available: true, device: "cuda", detail: `${version}; execution providers: cuda, cpu; ${cuda.detail}` }
      : { available: this.options.device !== "cuda", device: "cpu", detail: `${version}; execution providers: cpu; ${cuda.detail}` };
  }

  /**
   * Creates an inference session from the model bytes and checks the model and the spec against each
   * other (one float32 input with fixed feature dimensions, one output the spec's encoding can encode,
   * input chunks that are whole rows). Throws {@link MeshworkValidationError}. `modelBytes` must be the
   * bytes `spec.model.digest` names (a worker fetches them verified): on the runtime thread, a model it
   * keeps under that digest is loaded without sending them.
   */
  async load(spec: JobSpec, modelBytes: Uint8Array): Promise<OnnxLoadedJob> {
    if (spec.runtime !== "onnx") throw invalid("job spec", ["runtime"], `the onnx runtime cannot run a ${spec.runtime} job`);
    const caps = await this.capabilities();
    if (!caps.available) throw new MeshworkError(`the onnx runtime is unavailable: ${caps.detail}`);
    if (this.options.thread && !this.#inline) return (await loadOnThread(this.#sessionOptions, spec, modelBytes)) as OnnxLoadedJob;
    const ort = await loadOnnxRuntime();
    let useCuda = caps.device === "cuda" && (this.options.device === "cuda" || spec.output.canonicalisation === "tolerance");
    const create = (cuda: boolean) =>
      ort.InferenceSession.create(modelBytes, {
        executionProviders: cuda ? ["cuda", "cpu"] : ["cpu"],
        intraOpNumThreads: this.options.intraOpNumThreads,
        interOpNumThreads: 1,
        executionMode: "sequential",
        graphOptimizationLevel: this.options.graphOptimizationLevel,
        logSeverityLevel: 3,
      });
    let session: Ort.InferenceSession;
    try {
      session = await create(useCuda);
    } catch (error) {
      if (!useCuda || this.options.device === "cuda") {
        throw invalid("ONNX model", [], `ONNX Runtime cannot load the model: ${firstLine(error)}`, { cause: error, details: { reason: SESSION_FAILED } });
      }
      // `auto`: a CUDA session that fails (out of GPU memory, an op CUDA lacks) falls back to the CPU.
      useCuda = false;
      try {
        session = await create(false);
      } catch (cpuError) {
        throw invalid("ONNX model", [], `ONNX Runtime cannot load the model: ${firstLine(cpuError)}`, { cause: cpuError, details: { reason: SESSION_FAILED } });
      }
    }
    try {
      return this.#prepare(ort, spec, session, useCuda);
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  #prepare(ort: OrtModule, spec: JobSpec, session: Ort.InferenceSession, cuda: boolean): OnnxLoadedJob {
    const io = modelIo(session);
    checkEncoding(spec, io.outputType);
    const rowUnit = io.fixedBatch ?? 1; // rows per run must be a multiple of this
    const unitBytes = io.features * 4 * rowUnit;
    const bad = inputChunkLengths(spec).find((len) => len % unitBytes !== 0);
    if (bad !== undefined) {
      throw invalid("job spec", ["inputs"], `an input chunk of ${bad} bytes is not a whole number of ${rowUnit > 1 ? `${rowUnit}-row batches` : "rows"} of ${io.features} float32 features`, {
        details: { chunkBytes: bad, unitBytes },
      });
    }
    const { output } = spec;
    // A fixed batch B runs B rows at a time; a dynamic one the whole chunk, or maxBatchRows at a time.
    const step = io.fixedBatch ?? this.options.maxBatchRows ?? Infinity;

    const encode = (data: Ort.Tensor["data"]): Uint8Array => {
      if (output.encoding === "fixed-point") return encodeFixedPoint(numbers(data), output.scaleBits);
      if (output.encoding === "int32-le") return encodeInt32LE(numbers(data));
      return rawBytes(data);
    };

    let closed = false;
    let queue: Promise<unknown> = Promise.resolve();
    const runChunk = async (input: Uint8Array, index: number): Promise<Uint8Array> => {
      if (closed) throw new MeshworkError("the onnx job was closed", { details: { chunk: index } });
      if (input.length % unitBytes !== 0) {
        throw new MeshworkEncodingError(`input is not a whole number of ${rowUnit > 1 ? `${rowUnit}-row batches` : "rows"} of float32 features`, {
          details: { chunk: index, length: input.length, rowBytes: io.features * 4, ...(rowUnit > 1 ? { batch: rowUnit } : {}) },
        });
      }
      const rows = input.length / (io.features * 4);
      if (rows === 0) return new Uint8Array(0);
      const x = float32s(input);
      const parts: Uint8Array[] = [];
      for (let start = 0, n = 0; start < rows; start += n) {
        n = Math.min(step, rows - start);
        const tensor = new ort.Tensor("float32", x.subarray(start * io.features, (start + n) * io.features), [n, ...io.featureDims]);
        let result: Ort.InferenceSession.ReturnType;
        try {
          result = await session.run({ [io.inputName]: tensor }, [io.outputName]);
        } catch (error) {
          throw new MeshworkError(`ONNX inference failed: ${firstLine(error)}`, { cause: error, details: { chunk: index, rows: n } });
        }
        const out = result[io.outputName];
        try {
          parts.push(encode(out.data));
        } catch (error) {
          if (!(error instanceof MeshworkEncodingError)) throw error;
          throw new MeshworkEncodingError(error.shortMessage, { cause: error, details: { chunk: index, ...error.details } });
        } finally {
          out.dispose?.();
        }
      }
      return concatBytes(parts);
    };

    return {
      /** Runs are serialised: one session, one chunk at a time. */
      run(input: Uint8Array, index: number): Promise<Uint8Array> {
        const next = queue.then(() => runChunk(input, index));
        queue = next.catch(() => undefined);
        return next;
      },
      async close(): Promise<void> {
        if (closed) return;
        closed = true;
        await queue;
        await session.release();
      },
      device: cuda ? "cuda" : "cpu",
      features: io.features,
      outputType: io.outputType,
    };
  }
}
