/**
 * The worker runtimes (sdk/src/worker/runtimes): the int-kernel runtime against a BigInt reference, the
 * ONNX runtime on models written by onnxModel.ts against a float64 reference (and bit-for-bit against
 * itself across sessions and batchings), the runtime registry, and hardware detection.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { digestOf } from "../../sdk/src/blob.js";
import { decodeFixedPoint, decodeInt32LE, encodeInt32LE } from "../../sdk/src/encoding.js";
import { MeshworkEncodingError, MeshworkError, MeshworkValidationError } from "../../sdk/src/errors.js";
import { RUNTIME_IDS, parseJobSpec, type JobSpec } from "../../sdk/src/spec.js";
import { NVIDIA_SMI_ARGS, detectGpus, detectHardware, parseNvidiaSmi } from "../../sdk/src/worker/hardware.js";
import {
  IntKernelRuntime,
  buildInt8MatmulProgram,
  buildIntKernelProgram,
  inputChunkLengths,
  MAX_MATMUL_WEIGHTS,
  parseIntKernelProgram,
} from "../../sdk/src/worker/runtimes/intKernel.js";
import { OnnxRuntime } from "../../sdk/src/worker/runtimes/onnx.js";
import type { LoadedJob } from "../../sdk/src/worker/runtimes/runtime.js";
import { reviveError, runtimeThreadJobs, serializeError, setRuntimeThreads, stopRuntimeThread } from "../../sdk/src/worker/runtimes/runtimeThread.js";
import { buildDenseModel, evalDenseModel, type DenseModelOptions } from "../../sdk/src/worker/runtimes/onnxModel.js";
import { RUNTIMES, detectRuntimes, probeRuntimes, runtimeBitmap, runtimeFor } from "../../sdk/src/worker/runtimes/index.js";
import { parseWorkerConfig, runtimeThreadsOf } from "../../sdk/src/worker/config.js";
import { rejection } from "../helpers/rejection.js";

const DIGEST = "0x" + "ab".repeat(32);
const utf8 = (s: string) => new TextEncoder().encode(s);


/** A deterministic PRNG (mulberry32), so failures reproduce. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    int8s: (n: number) => Int8Array.from({ length: n }, () => Math.floor(next() * 256) - 128),
    floats: (n: number, scale = 1) => Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale),
  };
}

/** An int-kernel spec (digests and sizes are placeholders: runtimes only read the output and input layout). */
function spec(overrides: Record<string, unknown>): JobSpec {
  const base = {
    version: 1,
    runtime: "int-kernel",
    program: { digest: DIGEST, size: 1 },
    inputs: { kind: "chunks", chunks: [{ digest: DIGEST, size: 0 }] },
    chunking: { chunks: 1 },
    output: { encoding: "int32-le", canonicalisation: "exact" },
  };
  return parseJobSpec({ ...base, ...overrides });
}

function onnxSpec(output: Record<string, unknown> = { encoding: "fixed-point", scaleBits: 16, canonicalisation: "tolerance" }, inputs?: unknown): JobSpec {
  const { program: _, ...rest } = spec({}) as Extract<JobSpec, { runtime: "int-kernel" }>;
  return parseJobSpec({ ...rest, runtime: "onnx", model: { digest: DIGEST, size: 1 }, output, ...(inputs ? { inputs } : {}) });
}

/** How many times a setImmediate loop ran while `work()` was pending (where a chunk computes shows), and its result. */
async function turnsWhile<T>(work: () => Promise<T>): Promise<{ turns: number; out: T }> {
  let turns = 0;
  let spinning = true;
  const spin = () => {
    if (!spinning) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  try {
    return { out: await work(), turns };
  } finally {
    spinning = false;
  }
}

/** The int8 matmul by its definition, in BigInt: wrap32(Σ x·W + bias) >> shift, then relu. */
function matmulReference(x: Int8Array, w: Int8Array, bias: ArrayLike<number>, K: number, N: number, shift: number, relu: boolean): number[] {
  const M = x.length / K;
  const out: number[] = [];
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < N; j++) {
      let s = 0n;
      for (let k = 0; k < K; k++) s += BigInt(x[m * K + k]) * BigInt(w[k * N + j]);
      const acc = BigInt.asIntN(32, s + BigInt(bias[j]));
      let v = acc >> BigInt(shift); // BigInt >> is floor division: the arithmetic shift
      if (relu && v < 0n) v = 0n;
      out.push(Number(v));
    }
  }
  return out;
}

async function runMatmul(
  params: { k: number; n: number; weights: Int8Array; bias: ArrayLike<number>; shift: number; relu: boolean },
  x: Int8Array,
  encoding = "int32-le",
  runtime = new IntKernelRuntime(),
) {
  const program = buildInt8MatmulProgram(params);
  const job = await runtime.load(spec({ output: { encoding, canonicalisation: "exact" } }), program);
  try {
    return await job.run(new Uint8Array(x.buffer, x.byteOffset, x.byteLength), 0);
  } finally {
    await job.close();
  }
}

describe("worker runtimes", function () {
  describe("int-kernel", function () {
    it("is runtime 0 and always available on the CPU", async function () {
      const rt = new IntKernelRuntime();
      expect([rt.name, rt.id]).to.deep.equal(["int-kernel", RUNTIME_IDS["int-kernel"]]);
      const caps = await rt.capabilities();
      expect(caps.available).to.equal(true);
      expect(caps.device).to.equal("cpu");
    });

    it("int8-matmul matches the BigInt reference on random shapes, biases, shifts and relu", async function () {
      const r = rng(1);
      for (let trial = 0; trial < 60; trial++) {
        const K = r.int(1, 40);
        const N = r.int(1, 11);
        const M = r.int(0, 9);
        const weights = r.int8s(K * N);
        const big = trial % 3 === 0; // biases near the int32 limits, to wrap
        const bias = Array.from({ length: N }, () => (big ? r.int(-0x8000_0000, 0x7fff_ffff) : r.int(-5000, 5000)));
        const shift = trial % 4 === 0 ? 0 : r.int(0, 31);
        const relu = trial % 2 === 1;
        const x = r.int8s(M * K);
        // Every other trial on the caller's thread, the others on the runtime thread (the default).
        const got = await runMatmul({ k: K, n: N, weights, bias, shift, relu }, x, "int32-le", new IntKernelRuntime({ thread: trial % 2 === 0, inlineWork: 0 }));
        const want = encodeInt32LE(matmulReference(x, weights, bias, K, N, shift, relu));
        expect(Buffer.from(got).equals(Buffer.from(want)), `trial ${trial}: K=${K} N=${N} M=${M} shift=${shift} relu=${relu}`).to.equal(true);
      }
    });

    it("int8-matmul wraps at the int32 edges like an int32 accumulator", async function () {
      // K = 65536 rows of (-128)·(-128) sum to exactly 2^30; the biases push it across ±2^31.
      const K = 65_536;
      const N = 6;
      const weights = new Int8Array(K * N);
      for (let k = 0; k < K; k++) {
        weights.set([-128, -128, 127, -128, -128, 1], k * N);
      }
      const bias = [0x7fff_ffff, -0x8000_0000, 0x7fff_ffff, 0x4000_0000, 0, -1];
      const x = new Int8Array(2 * K);
      x.fill(-128, 0, K); // row 0: all -128
      x.fill(127, K); // row 1: all 127
      for (const [shift, relu] of [[0, false], [0, true], [31, false], [7, true], [1, false]] as const) {
        const got = decodeInt32LE(await runMatmul({ k: K, n: N, weights, bias, shift, relu }, x));
        expect([...got]).to.deep.equal(matmulReference(x, weights, bias, K, N, shift, relu), `shift ${shift} relu ${relu}`);
      }
      const wrapped = decodeInt32LE(await runMatmul({ k: K, n: N, weights, bias, shift: 0, relu: false }, x));
      expect(wrapped[0]).to.equal((2 ** 30 + 0x7fff_ffff) | 0); // 2^30 + (2^31 - 1) wraps negative
      expect(wrapped[3]).to.equal(-0x8000_0000); // 2^30 + 2^30 = 2^31 wraps to INT32_MIN
    });

    it("int8-matmul: shift is an arithmetic shift and relu clamps at zero", async function () {
      const weights = Int8Array.of(1);
      const x = Int8Array.of(-7, 7, -1, 0);
      const run = async (shift: number, relu: boolean) => [...decodeInt32LE(await runMatmul({ k: 1, n: 1, weights, bias: [0], shift, relu }, x))];
      expect(await run(1, false)).to.deep.equal([-4, 3, -1, 0]); // floor(-7/2) = -4
      expect(await run(1, true)).to.deep.equal([0, 3, 0, 0]);
      expect(await run(31, false)).to.deep.equal([-1, 0, -1, 0]);
    });

    it("int8-matmul accepts unaligned input views, and int32-le and bytes name the same bytes", async function () {
      const r = rng(2);
      const weights = r.int8s(5 * 3);
      const params = { k: 5, n: 3, weights, bias: [1, 2, 3], shift: 2, relu: false };
      const backing = new Int8Array(1 + 7 * 5);
      backing.set(r.int8s(7 * 5), 1);
      const x = backing.subarray(1);
      const a = await runMatmul(params, x, "int32-le");
      const b = await runMatmul(params, x, "bytes");
      expect(Buffer.from(a).equals(Buffer.from(b))).to.equal(true);
      expect([...decodeInt32LE(a)]).to.deep.equal(matmulReference(x, weights, params.bias, 5, 3, 2, false));
    });

    it("runs a 1 MiB chunk (K=256, N=64) exactly", async function () {
      const r = rng(3);
      const K = 256;
      const N = 64;
      const weights = r.int8s(K * N);
      const bias = Array.from({ length: N }, () => r.int(-100_000, 100_000));
      const x = r.int8s(1 << 20);
      const out = decodeInt32LE(await runMatmul({ k: K, n: N, weights, bias, shift: 6, relu: true }, x));
      expect(out.length).to.equal(((1 << 20) / K) * N);
      // Spot-check rows against the reference (the whole chunk in BigInt would be slow).
      for (const m of [0, 1, 2047, 4095]) {
        const row = x.subarray(m * K, (m + 1) * K);
        expect([...out.subarray(m * N, (m + 1) * N)]).to.deep.equal(matmulReference(row, weights, bias, K, N, 6, true));
      }
    });

    it("computes on the runtime thread: the caller's event loop turns while a kernel runs (thread: false holds it)", async function () {
      const r = rng(4);
      const program = buildInt8MatmulProgram({ k: 512, n: 512, weights: r.int8s(512 * 512), bias: new Array(512).fill(7), shift: 3, relu: true });
      const x = r.int8s(256 * 512); // 256 rows: 67M multiply-adds, tens of milliseconds
      const input = new Uint8Array(x.buffer);
      const named = spec({ program: { digest: digestOf(program), size: program.length }, inputs: { kind: "chunks", chunks: [{ digest: DIGEST, size: input.length }] } });
      const turnsDuring = async (runtime: IntKernelRuntime, loaded?: LoadedJob) => {
        const job = loaded ?? (await runtime.load(named, program));
        await job.run(input, 0); // warm the kernel's code
        const done = await turnsWhile(() => job.run(input, 0));
        await job.close();
        return done;
      };
      const threaded = new IntKernelRuntime();
      const a = await turnsDuring(threaded);
      const b = await turnsDuring(new IntKernelRuntime({ thread: false }));
      expect(a.turns).to.be.greaterThan(20);
      expect(b.turns).to.be.at.most(5);
      expect(Buffer.from(a.out).equals(Buffer.from(b.out))).to.equal(true);
      expect((await threaded.capabilities()).detail).to.not.match(/caller's thread/);
      // A job with a small program and chunks declared small runs on the caller's thread (a message to
      // the thread and back would cost more than such a chunk) unless `inlineWork` says otherwise. Where
      // it runs is decided at load from the declared sizes (here: empty chunks; a worker checks inputs
      // against them); running a big chunk shows where.
      const smallProgram = buildInt8MatmulProgram({ k: 512, n: 16, weights: r.int8s(512 * 16), bias: new Array(16).fill(7), shift: 3, relu: true });
      const small = spec({ program: { digest: digestOf(smallProgram), size: smallProgram.length }, inputs: { kind: "chunks", chunks: [{ digest: DIGEST, size: 0 }] } });
      const big = new Uint8Array(r.int8s(8192 * 512).buffer); // 67M multiply-adds again
      const turnsOn = async (runtime: IntKernelRuntime) => {
        const job = await runtime.load(small, smallProgram);
        const { turns } = await turnsWhile(() => job.run(big, 0));
        await job.close();
        return turns;
      };
      expect(await turnsOn(threaded)).to.be.at.most(5);
      expect(await turnsOn(new IntKernelRuntime({ inlineWork: 0 }))).to.be.greaterThan(20);
      expect(() => new IntKernelRuntime({ inlineWork: -1 })).to.throw(MeshworkValidationError);

      // A program is sent with every load (the thread keeps only ONNX models): these bytes are parsed.
      expect(await rejection(threaded.load(named, utf8("not a program")))).to.be.instanceOf(MeshworkValidationError);
      const again = await threaded.load(named, program);
      await again.close();
      expect(await rejection(again.run(input, 0))).to.have.property("shortMessage", "the int-kernel job was closed");
      // A large program runs on the thread whatever its chunks: parsing it is the cost.
      const wide = buildInt8MatmulProgram({ k: 512, n: 512, weights: r.int8s(512 * 512), bias: new Array(512).fill(0) });
      const tinyChunks = spec({ program: { digest: digestOf(wide), size: wide.length }, inputs: { kind: "chunks", chunks: [{ digest: DIGEST, size: 0 }] } });
      expect((await turnsDuring(threaded, await threaded.load(tinyChunks, wide))).turns).to.be.greaterThan(20);
      // A run's error, thrown on the thread, reads as the same error here.
      const job = await threaded.load(named, program);
      const error = await rejection(job.run(input.subarray(0, 100), 7));
      expect(error).to.be.instanceOf(MeshworkEncodingError);
      expect(error.name).to.equal("MeshworkEncodingError");
      expect(error.details).to.include({ chunk: 7 });
      await job.close();
    });

    it("int32-sum and xor", async function () {
      const rt = new IntKernelRuntime();
      const sum = await rt.load(spec({}), buildIntKernelProgram({ kernel: "int32-sum" }));
      expect([...decodeInt32LE(await sum.run(encodeInt32LE([0x7fff_ffff, 1, 5]), 0))]).to.deep.equal([-0x8000_0000 + 5]);
      expect([...decodeInt32LE(await sum.run(new Uint8Array(0), 1))]).to.deep.equal([0]);
      const key = Uint8Array.of(0xff, 0x01);
      const xor = await rt.load(spec({ output: { encoding: "bytes", canonicalisation: "exact" } }), buildIntKernelProgram({ kernel: "xor", key }));
      expect([...(await xor.run(Uint8Array.of(0, 0, 0x0f), 0))]).to.deep.equal([0xff, 0x01, 0xf0]);
    });

    it("rejects bad programs with MeshworkValidationError naming the field", async function () {
      const rt = new IntKernelRuntime();
      const w = Buffer.from(new Int8Array(6)).toString("base64");
      const bad: [string | Uint8Array, string][] = [
        [Uint8Array.of(0xff, 0xfe), ""],
        ["{not json", ""],
        [JSON.stringify({ kernel: "fft" }), "kernel"],
        [JSON.stringify({ kernel: "int8-matmul", k: 2, n: 3, weights: w, extra: 1 }), ""],
        [JSON.stringify({ kernel: "int8-matmul", k: 2, n: 4, weights: w }), "weights"],
        [JSON.stringify({ kernel: "int8-matmul", k: 2, n: 3, weights: w, bias: [1, 2] }), "bias"],
        [JSON.stringify({ kernel: "int8-matmul", k: 2, n: 3, weights: w, bias: [1, 2, 2 ** 31] }), "bias.2"],
        [JSON.stringify({ kernel: "int8-matmul", k: 2, n: 3, weights: w, shift: 32 }), "shift"],
        [JSON.stringify({ kernel: "int8-matmul", k: 2, n: 3, weights: "AAAA!AAA" }), "weights"],
        [JSON.stringify({ kernel: "int8-matmul", k: 2, n: 3, weights: "AAAAA=AA" }), "weights"], // padding inside
        [JSON.stringify({ kernel: "int8-matmul", k: 2, n: 3, weights: "AAAAAAA" }), "weights"], // not padded
        [JSON.stringify({ kernel: "int8-matmul", k: 0, n: 3, weights: "" }), "k"],
        [JSON.stringify({ kernel: "int8-matmul", k: 1.5, n: 3, weights: w }), "k"],
        [JSON.stringify({ kernel: "xor", key: "" }), "key"],
      ];
      for (const [program, path] of bad) {
        const bytes = typeof program === "string" ? utf8(program) : program;
        const error = await rejection(rt.load(spec({}), bytes));
        expect(error, String(program)).to.be.instanceOf(MeshworkValidationError);
        expect(error.issues.map((i: { path: unknown[] }) => i.path.join(".")), String(program)).to.include(path);
      }
      expect(() => buildInt8MatmulProgram({ k: 1, n: 1, weights: [200] })).to.throw(MeshworkValidationError);
      expect(() => buildInt8MatmulProgram({ k: 2, n: 2, weights: [1, 2, 3] })).to.throw(MeshworkValidationError, /weights/);
      expect(parseIntKernelProgram(buildInt8MatmulProgram({ k: 1, n: 2, weights: [3, -4] }))).to.deep.include({ kernel: "int8-matmul", k: 1, n: 2, shift: 0, relu: false });
    });

    it("accepts the largest program, 2^24 weights (its base64 once overflowed the validator's stack)", async function () {
      const weights = new Int8Array(MAX_MATMUL_WEIGHTS).fill(-3);
      const program = parseIntKernelProgram(buildInt8MatmulProgram({ k: 4096, n: 4096, weights }));
      expect(program).to.deep.include({ kernel: "int8-matmul", k: 4096, n: 4096 });
      expect(() => buildInt8MatmulProgram({ k: 4097, n: 4096, weights: new Int8Array(4097 * 4096) })).to.throw(MeshworkValidationError, /exceeds/);
    });

    it("rejects output encodings the kernel cannot produce, and other runtimes' specs", async function () {
      const rt = new IntKernelRuntime();
      const matmul = buildInt8MatmulProgram({ k: 2, n: 2, weights: [1, 2, 3, 4] });
      const fixed = await rejection(rt.load(spec({ output: { encoding: "fixed-point", scaleBits: 8, canonicalisation: "exact" } }), matmul));
      expect(fixed).to.be.instanceOf(MeshworkValidationError);
      expect(fixed.issues[0].path).to.deep.equal(["output", "encoding"]);
      const xor = await rejection(rt.load(spec({}), buildIntKernelProgram({ kernel: "xor", key: Uint8Array.of(1) })));
      expect(xor).to.be.instanceOf(MeshworkValidationError);
      expect(xor.issues[0].path).to.deep.equal(["output", "encoding"]);
      expect(await rejection(rt.load(onnxSpec(), matmul))).to.be.instanceOf(MeshworkValidationError);
    });

    it("rejects input chunks that are not whole rows: at load from the spec, and at run", async function () {
      const rt = new IntKernelRuntime();
      const program = buildInt8MatmulProgram({ k: 4, n: 2, weights: new Int8Array(8) });
      // 40 bytes in 3 chunks: 14, 13, 13 bytes — not rows of 4.
      const blob = { kind: "blob", blob: { digest: DIGEST, size: 40 }, elementBytes: 1 };
      const atLoad = await rejection(rt.load(spec({ inputs: blob, chunking: { chunks: 3 } }), program));
      expect(atLoad).to.be.instanceOf(MeshworkValidationError);
      expect(atLoad.issues[0].path).to.deep.equal(["inputs"]);
      // 40 bytes in 5 chunks of 8 are fine.
      const job = await rt.load(spec({ inputs: blob, chunking: { chunks: 5 } }), program);
      const atRun = await rejection(job.run(new Uint8Array(6), 3));
      expect(atRun).to.be.instanceOf(MeshworkEncodingError);
      expect(atRun.details).to.include({ chunk: 3, length: 6, rowBytes: 4 });
      expect(await job.run(new Uint8Array(0), 4)).to.have.length(0);
      await job.close();
      expect(await rejection(job.run(new Uint8Array(4), 0))).to.be.instanceOf(MeshworkError);
    });

    it("inputChunkLengths follows the chunking rule", function () {
      const blob = (size: number, elementBytes: number) => ({ kind: "blob", blob: { digest: DIGEST, size }, elementBytes });
      expect(inputChunkLengths(spec({ inputs: blob(40, 1), chunking: { chunks: 3 } }))).to.deep.equal([14, 13]);
      expect(inputChunkLengths(spec({ inputs: blob(40, 4), chunking: { chunks: 5 } }))).to.deep.equal([8]);
      expect(inputChunkLengths(spec({ inputs: blob(8, 4), chunking: { chunks: 3 } }))).to.deep.equal([4, 0]);
      const chunks = { kind: "chunks", chunks: [8, 12, 8].map((size) => ({ digest: DIGEST, size })) };
      expect(inputChunkLengths(spec({ inputs: chunks, chunking: { chunks: 3 } }))).to.deep.equal([8, 12]);
    });
  });

  describe("onnx", function () {
    this.timeout(60_000);
    const r = rng(7);
    const F = 16;
    const H = 12;
    const O = 5;
    const model: DenseModelOptions = {
      layers: [
        { inFeatures: F, outFeatures: H, weights: r.floats(F * H, 0.5), bias: r.floats(H, 0.2), relu: true },
        { inFeatures: H, outFeatures: O, weights: r.floats(H * O, 0.5), bias: r.floats(O, 0.2) },
      ],
    };
    const modelBytes = buildDenseModel(model);
    const ROWS = 37;
    const x = r.floats(ROWS * F, 2);
    const xBytes = new Uint8Array(x.buffer);
    const rowsOf = (from: number, to: number) => xBytes.subarray(from * F * 4, to * F * 4);

    it("is runtime 1; on this machine it is available on the CPU, with CUDA only where nvidia-smi lists a GPU", async function () {
      const rt = new OnnxRuntime();
      expect([rt.name, rt.id]).to.deep.equal(["onnx", RUNTIME_IDS.onnx]);
      const caps = await rt.capabilities();
      expect(caps.available, caps.detail).to.equal(true);
      if ((await detectGpus()).length === 0) expect(caps.device).to.equal("cpu");
      expect(caps.detail).to.match(/onnxruntime-node 1\./);
      const cpuOnly = await new OnnxRuntime({ device: "cpu" }).capabilities();
      expect(cpuOnly).to.include({ available: true, device: "cpu" });
    });

    it("writes models that ONNX Runtime loads and that match a float64 reference", async function () {
      const job = await new OnnxRuntime().load(onnxSpec(), modelBytes);
      expect(job).to.include({ device: "cpu", features: F, outputType: "float32" });
      const got = decodeFixedPoint(await job.run(xBytes, 0), 16);
      const want = evalDenseModel(model, x, ROWS);
      expect(got.length).to.equal(ROWS * O);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `value ${i}`).to.be.below(1e-4);
      await job.close();
      // Same options, same bytes.
      expect(Buffer.from(buildDenseModel(model)).equals(Buffer.from(modelBytes))).to.equal(true);
    });

    it("fixed-point output is identical across sessions, batchings and chunk splits", async function () {
      const a = await new OnnxRuntime().load(onnxSpec(), modelBytes);
      const b = await new OnnxRuntime().load(onnxSpec(), modelBytes);
      const small = await new OnnxRuntime({ maxBatchRows: 3 }).load(onnxSpec(), modelBytes);
      const whole = await a.run(xBytes, 0);
      expect(Buffer.from(await b.run(xBytes, 0)).equals(Buffer.from(whole))).to.equal(true);
      expect(Buffer.from(await small.run(xBytes, 0)).equals(Buffer.from(whole))).to.equal(true);
      const rowBytes = O * 4;
      // Two rows run alone vs the same rows inside the batch.
      for (const [from, to] of [[0, 2], [5, 7], [35, 37], [10, 11], [3, 20]]) {
        const part = await b.run(rowsOf(from, to), 1);
        expect(Buffer.from(part).equals(Buffer.from(whole.subarray(from * rowBytes, to * rowBytes))), `rows ${from}..${to}`).to.equal(true);
      }
      for (const job of [a, b, small]) await job.close();
    });

    it("int32 outputs take int32-le and bytes; float outputs need fixed-point", async function () {
      const intModel = buildDenseModel({ ...model, outputType: "int32" });
      const scaled = Float32Array.from(x, (v) => v * 50);
      const job = await new OnnxRuntime().load(onnxSpec({ encoding: "int32-le", canonicalisation: "exact" }), intModel);
      expect(job.outputType).to.equal("int32");
      const got = decodeInt32LE(await job.run(new Uint8Array(scaled.buffer), 0));
      const want = evalDenseModel({ ...model, outputType: "int32" }, scaled, ROWS);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `value ${i}`).to.be.at.most(1);
      const raw = await new OnnxRuntime().load(onnxSpec({ encoding: "bytes", canonicalisation: "exact" }), intModel);
      expect(Buffer.from(await raw.run(new Uint8Array(scaled.buffer), 0)).equals(Buffer.from(encodeInt32LE(got)))).to.equal(true);
      for (const j of [job, raw]) await j.close();

      for (const encoding of ["int32-le", "bytes"]) {
        const error = await rejection(new OnnxRuntime().load(onnxSpec({ encoding, canonicalisation: "exact" }), modelBytes));
        expect(error, encoding).to.be.instanceOf(MeshworkValidationError);
        expect(error.issues[0].path).to.deep.equal(["output", "encoding"]);
        expect(error.message).to.match(/fixed-point/);
      }
    });

    it("rejects unsupported models: not ONNX, non-float32 input", async function () {
      const garbage = await rejection(new OnnxRuntime().load(onnxSpec(), utf8("definitely not a model")));
      expect(garbage).to.be.instanceOf(MeshworkValidationError);
      expect(garbage.message).to.match(/cannot load the model/);
      const intInput = await rejection(new OnnxRuntime().load(onnxSpec(), buildDenseModel({ ...model, inputType: "int32" })));
      expect(intInput).to.be.instanceOf(MeshworkValidationError);
      expect(intInput.message).to.match(/int32 is not supported/);
      expect(await rejection(new OnnxRuntime().load(spec({}), modelBytes))).to.be.instanceOf(MeshworkValidationError);
    });

    it("rejects chunks that are not whole rows; runs empty chunks and fixed batches", async function () {
      const job = await new OnnxRuntime().load(onnxSpec(), modelBytes);
      const error = await rejection(job.run(xBytes.subarray(0, F * 4 + 4), 2));
      expect(error).to.be.instanceOf(MeshworkEncodingError);
      expect(error.details).to.include({ chunk: 2, rowBytes: F * 4 });
      // Thrown on the runtime thread, it reads as the same error here.
      expect(error.name).to.equal("MeshworkEncodingError");
      expect(String(error)).to.match(/^MeshworkEncodingError: input is not a whole number of rows/);
      expect(error.walk(MeshworkEncodingError)).to.equal(error);
      expect(Object.keys(error)).to.not.include("message");
      expect(await job.run(new Uint8Array(0), 0)).to.have.length(0);
      const whole = await job.run(rowsOf(0, 8), 0);
      await job.close();

      // A fixed batch of 4: chunks must be whole batches, and give the same rows.
      const fixed = await new OnnxRuntime().load(onnxSpec(), buildDenseModel({ ...model, batch: 4 }));
      expect(Buffer.from(await fixed.run(rowsOf(0, 8), 0)).equals(Buffer.from(whole))).to.equal(true);
      expect(await rejection(fixed.run(rowsOf(0, 6), 0))).to.be.instanceOf(MeshworkEncodingError);
      await fixed.close();

      // Known at load from the spec: 3 chunks of a 40-float blob are not rows of 16 floats.
      const blob = { kind: "blob", blob: { digest: DIGEST, size: 160 }, elementBytes: 4 };
      const load = await rejection(
        new OnnxRuntime().load(parseJobSpec({ ...onnxSpec(), inputs: blob, chunking: { chunks: 3 } }), modelBytes),
      );
      expect(load).to.be.instanceOf(MeshworkValidationError);
      expect(load.issues[0].path).to.deep.equal(["inputs"]);
    });

    it("non-finite and out-of-range outputs are encoding errors, never clamped", async function () {
      const job = await new OnnxRuntime().load(onnxSpec({ encoding: "fixed-point", scaleBits: 31, canonicalisation: "tolerance" }), modelBytes);
      const error = await rejection(job.run(rowsOf(0, 2), 4)); // |y| ≥ 1 does not fit at 2^-31
      expect(error).to.be.instanceOf(MeshworkEncodingError);
      expect(error.details.chunk).to.equal(4);
      await job.close();
      const nan = await new OnnxRuntime().load(onnxSpec(), modelBytes);
      expect(await rejection(nan.run(new Uint8Array(Float32Array.from({ length: F }, () => NaN).buffer), 0))).to.be.instanceOf(MeshworkEncodingError);
      await nan.close();
    });

    it("computes on the runtime thread: the caller's event loop turns while a chunk runs (thread: false holds it)", async function () {
      const wide: DenseModelOptions = {
        layers: Array.from({ length: 4 }, (_, l) => ({ inFeatures: 1024, outFeatures: 1024, weights: r.floats(1024 * 1024, 1 / 64), bias: r.floats(1024, 0.1), relu: l < 3 })),
      };
      const bytes = buildDenseModel(wide);
      const input = new Uint8Array(r.floats(512 * 1024, 1).buffer); // 512 rows: tens of milliseconds
      const turnsDuring = (job: Awaited<ReturnType<OnnxRuntime["load"]>>) => turnsWhile(() => job.run(input, 0));
      const threaded = await new OnnxRuntime().load(onnxSpec(), bytes);
      const inline = await new OnnxRuntime({ thread: false }).load(onnxSpec(), bytes);
      await threaded.run(input, 0); // warm both sessions
      await inline.run(input, 0);
      const a = await turnsDuring(threaded);
      const b = await turnsDuring(inline);
      expect(a.turns).to.be.greaterThan(20);
      expect(b.turns).to.be.at.most(5);
      expect(Buffer.from(a.out).equals(Buffer.from(b.out))).to.equal(true); // same session options, same bits
      await threaded.close();
      await inline.close();
    });

    it("stops its runtime thread after the chunk computing; the job then fails with a clear error; a new load starts a new thread", async function () {
      const wide = buildDenseModel({
        layers: Array.from({ length: 2 }, () => ({ inFeatures: 1024, outFeatures: 1024, weights: r.floats(1024 * 1024, 1 / 64), bias: r.floats(1024, 0.1) })),
      });
      const busy = await new OnnxRuntime().load(onnxSpec(), wide);
      const input = new Uint8Array(r.floats(1024 * 1024, 3).buffer);
      const computing = busy.run(input, 0).then(
        (out) => out.length,
        (error: MeshworkError) => error.shortMessage,
      );
      await new Promise((resolve) => setTimeout(resolve, 2));
      await stopRuntimeThread(); // never kills the thread inside ONNX Runtime (that would abort the process)
      expect(await computing).to.be.oneOf([1024 * 1024 * 4, "the runtime thread was stopped"]);

      const job = await new OnnxRuntime().load(onnxSpec(), modelBytes);
      const before = await job.run(xBytes, 0);
      await stopRuntimeThread();
      const error = await rejection(job.run(xBytes, 0));
      expect(error).to.be.instanceOf(MeshworkError);
      expect(error.shortMessage).to.equal("the runtime thread exited since the job was loaded: load it again");
      expect(error.details).to.deep.equal({ chunk: 0 });
      await job.close(); // nothing to free: no error
      const again = await new OnnxRuntime().load(onnxSpec(), modelBytes);
      expect(Buffer.from(await again.run(xBytes, 0)).equals(Buffer.from(before))).to.equal(true);
      await again.close();
      await stopRuntimeThread();
      await stopRuntimeThread(); // stopping a stopped thread is a no-op
    });

    it("sends a model to the runtime thread once: a later load of the same digest sends the digest alone", async function () {
      await stopRuntimeThread(); // a thread that has seen no model
      const named = parseJobSpec({ ...onnxSpec(), model: { digest: digestOf(modelBytes), size: modelBytes.length } });
      const first = await new OnnxRuntime().load(named, modelBytes);
      const want = await first.run(xBytes, 0);
      await first.close();
      // The bytes passed now are never sent: the thread loads the model it kept under that digest.
      const again = await new OnnxRuntime().load(named, utf8("not sent"));
      expect(Buffer.from(await again.run(xBytes, 0)).equals(Buffer.from(want))).to.equal(true);
      await again.close();
      // Bytes that do not hash to the spec's digest are loaded but not kept under it.
      const misnamed = parseJobSpec({ ...onnxSpec(), model: { digest: DIGEST, size: modelBytes.length } });
      await (await new OnnxRuntime().load(misnamed, modelBytes)).close();
      expect(await rejection(new OnnxRuntime().load(misnamed, utf8("garbage")))).to.be.instanceOf(MeshworkValidationError);
      // It keeps the last two: after two other models, the first is sent again when the thread says it
      // no longer has it.
      for (const bias of [0.25, 0.5]) {
        const other = buildDenseModel({ ...model, layers: model.layers.map((l) => ({ ...l, bias: new Float32Array(l.bias.length).fill(bias) })) });
        await (await new OnnxRuntime().load(parseJobSpec({ ...onnxSpec(), model: { digest: digestOf(other), size: other.length } }), other)).close();
      }
      const resent = await new OnnxRuntime().load(named, modelBytes);
      expect(Buffer.from(await resent.run(xBytes, 0)).equals(Buffer.from(want))).to.equal(true);
      await resent.close();
      // A new thread keeps nothing: the bytes are sent again.
      await stopRuntimeThread();
      expect(await rejection(new OnnxRuntime().load(named, utf8("garbage")))).to.be.instanceOf(MeshworkValidationError);
    });

    it("never keeps a process alive: a script that runs a job, stops the thread or just ends, exits 0", async function () {
      // In a child process: what keeps it alive (or not) is what is being tested.
      const sdk = new URL("../../sdk/src/", import.meta.url).href;
      const script = (stop: boolean) => `
        import { OnnxRuntime } from "${sdk}worker/runtimes/onnx.ts";
        import { stopRuntimeThread } from "${sdk}worker/runtimes/runtimeThread.ts";
        import { buildDenseModel } from "${sdk}worker/runtimes/onnxModel.ts";
        import { parseJobSpec } from "${sdk}spec.ts";
        import { digestOf } from "${sdk}blob.ts";
        // 1024 rows through 1024→1024→1: the chunk still computes when the thread is asked to stop.
        const wide = { inFeatures: 1024, outFeatures: 1024, weights: new Float32Array(1024 * 1024), bias: new Float32Array(1024) };
        const model = buildDenseModel({ layers: [wide, { inFeatures: 1024, outFeatures: 1, weights: new Float32Array(1024).fill(1 / 1024), bias: Float32Array.of(5.5) }] });
        const input = new Uint8Array(new Float32Array(1024 * 1024).fill(1).buffer);
        const spec = parseJobSpec({ version: 1, runtime: "onnx", model: { digest: digestOf(model), size: model.length },
          inputs: { kind: "chunks", chunks: [{ digest: digestOf(input), size: input.length }] }, chunking: { chunks: 1 },
          output: { encoding: "fixed-point", scaleBits: 16, canonicalisation: "tolerance" } });
        const job = await new OnnxRuntime().load(spec, model);
        const computing = job.run(input, 0); // answered while the thread stops
        ${stop ? "await stopRuntimeThread();" : ""}
        const out = await computing;
        console.log("output", out.length, Buffer.from(out.subarray(0, 4)).toString("hex"));`;
      for (const stop of [false, true]) {
        const child = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), "--input-type=module", "--eval", script(stop)], {
          encoding: "utf8",
          timeout: 60_000,
        });
        expect(child.status, child.stderr).to.equal(0);
        expect(child.stdout.trim()).to.equal("output 4096 00800500"); // 1024 rows of 5.5 at scaleBits 16
      }
    });

    it("runs a 1 MiB chunk", async function () {
      const big: DenseModelOptions = {
        layers: [
          { inFeatures: 256, outFeatures: 256, weights: r.floats(256 * 256, 1 / 16), bias: r.floats(256, 0.1), relu: true },
          { inFeatures: 256, outFeatures: 64, weights: r.floats(256 * 64, 1 / 16), bias: r.floats(64, 0.1) },
        ],
      };
      const job = await new OnnxRuntime().load(onnxSpec(), buildDenseModel(big));
      const input = r.floats(1 << 18, 1);
      const out = await job.run(new Uint8Array(input.buffer), 0);
      expect(out.length).to.equal(1024 * 64 * 4);
      const want = evalDenseModel(big, input.subarray(0, 2 * 256), 2);
      const got = decodeFixedPoint(out.subarray(0, 2 * 64 * 4), 16);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).to.be.below(1e-3);
      await job.close();
    });
  });

  describe("runtime threads", function () {
    afterEach(async function () {
      setRuntimeThreads(1);
      await stopRuntimeThread();
    });

    it("spread jobs over the threads set, fewest jobs first, each computing the caller's thread's bits; a failed load frees its place", async function () {
      await stopRuntimeThread();
      setRuntimeThreads(2);
      const r = rng(9);
      const program = buildInt8MatmulProgram({ k: 64, n: 32, weights: r.int8s(64 * 32), bias: new Array(32).fill(3), shift: 4, relu: true });
      const x = r.int8s(64 * 100);
      const input = new Uint8Array(x.buffer);
      const want = await (await new IntKernelRuntime({ thread: false }).load(spec({}), program)).run(input, 0);
      const threaded = new IntKernelRuntime({ inlineWork: 0 });
      const a = await threaded.load(spec({}), program);
      const b = await threaded.load(spec({}), program);
      expect(runtimeThreadJobs()).to.deep.equal([1, 1]);
      for (const out of await Promise.all([a.run(input, 0), b.run(input, 0)])) expect(Buffer.from(out).equals(Buffer.from(want))).to.equal(true);
      await a.close();
      expect(runtimeThreadJobs()).to.deep.equal([0, 1]);
      const c = await threaded.load(spec({}), program); // to the thread with fewer jobs
      expect(runtimeThreadJobs()).to.deep.equal([1, 1]);
      expect(await rejection(new OnnxRuntime().load(onnxSpec(), utf8("not a model")))).to.be.instanceOf(MeshworkValidationError);
      expect(runtimeThreadJobs()).to.deep.equal([1, 1]);
      setRuntimeThreads(1); // the second thread keeps its job and takes no new one
      const d = await threaded.load(spec({}), program);
      expect(runtimeThreadJobs()).to.deep.equal([2, 1]);
      expect(Buffer.from(await b.run(input, 0)).equals(Buffer.from(want))).to.equal(true);
      await stopRuntimeThread();
      expect(runtimeThreadJobs()).to.deep.equal([0, 0]);
      for (const job of [b, c, d]) expect((await rejection(job.run(input, 0))).shortMessage).to.equal("the runtime thread exited since the job was loaded: load it again");
      for (const bad of [0, 65, 1.5]) expect(() => setRuntimeThreads(bad)).to.throw(RangeError, "runtime threads: an integer from 1 to 64");
    });

    it("a worker config asks for its concurrency in threads, up to the CPUs less one, or runtimeThreads", function () {
      const base = { rpcUrl: "http://127.0.0.1:8545", keystore: "k.json", dataDir: "data" };
      expect(runtimeThreadsOf(parseWorkerConfig(base), 16)).to.equal(1); // concurrency 1
      expect(runtimeThreadsOf(parseWorkerConfig({ ...base, concurrency: 4 }), 16)).to.equal(4);
      expect(runtimeThreadsOf(parseWorkerConfig({ ...base, concurrency: 4 }), 2)).to.equal(1);
      expect(runtimeThreadsOf(parseWorkerConfig({ ...base, concurrency: 4 }), 1)).to.equal(1);
      expect(runtimeThreadsOf(parseWorkerConfig({ ...base, concurrency: 4, runtimeThreads: 2 }), 2)).to.equal(2);
      const error = (() => {
        try {
          parseWorkerConfig({ ...base, runtimeThreads: 0 });
        } catch (e) {
          return e as MeshworkValidationError;
        }
      })();
      expect(error).to.be.instanceOf(MeshworkValidationError);
      expect(error!.issues[0].path).to.deep.equal(["runtimeThreads"]);
    });
  });

  describe("runtime thread errors", function () {
    it("come back as their own class: Meshwork errors with details and issues, JavaScript's with instanceof (an AggregateError with its errors), others as Error", function () {
      const encoding = new MeshworkEncodingError("bad element", { details: { index: 3 } });
      const back = reviveError(serializeError(encoding));
      expect(back).to.be.instanceOf(MeshworkEncodingError).and.instanceOf(MeshworkError);
      expect(back).to.include({ name: "MeshworkEncodingError", message: encoding.message, shortMessage: "bad element" });
      expect((back as MeshworkError).details).to.deep.equal({ index: 3 });
      for (const native of [new RangeError("out of range"), new TypeError("not a function")]) {
        const revived = reviveError(serializeError(native));
        expect(revived).to.be.instanceOf(native.constructor as ErrorConstructor);
        expect(revived).to.include({ name: native.name, message: native.message, stack: native.stack });
      }
      const other = Object.assign(new Error("disk gone", { cause: new Error("EIO") }), { name: "SystemError" });
      const revived = reviveError(serializeError(other));
      expect(revived.constructor).to.equal(Error);
      expect(revived).to.include({ name: "SystemError", message: "disk gone" });
      expect((revived.cause as Error).message).to.equal("EIO");
      const several = reviveError(serializeError(new AggregateError([new Error("first"), new RangeError("second")], "both failed")));
      expect(several).to.be.instanceOf(AggregateError).and.include({ name: "AggregateError", message: "both failed" });
      expect((several as AggregateError).errors.map((x: Error) => x.message)).to.deep.equal(["first", "second"]);
      // A name that is also an Object.prototype member is just a name.
      const odd = reviveError(serializeError(Object.assign(new Error("odd"), { name: "toString" })));
      expect(odd.constructor).to.equal(Error);
      expect(odd).to.include({ name: "toString", message: "odd" });
    });
  });

  describe("registry", function () {
    it("takes the ONNX options of a worker config: validated, then given to the ONNX runtime it probes", async function () {
      const base = { rpcUrl: "http://127.0.0.1:8545", keystore: "k.json", dataDir: "data" };
      const config = parseWorkerConfig({ ...base, onnx: { device: "cpu", intraOpNumThreads: 2, thread: false } });
      const [onnx] = await probeRuntimes(["onnx"], { onnx: config.onnx });
      expect((onnx.runtime as OnnxRuntime).options).to.include({ device: "cpu", intraOpNumThreads: 2, thread: false });
      expect(onnx.capabilities).to.include({ available: true, device: "cpu" });
      expect(parseWorkerConfig(base).onnx).to.equal(undefined);
      for (const [onnxOptions, path] of [
        [{ device: "tpu" }, ["onnx", "device"]],
        [{ intraOpNumThreads: -1 }, ["onnx", "intraOpNumThreads"]],
        [{ threads: 2 }, ["onnx"]],
      ] as const) {
        const error = await rejection(Promise.resolve().then(() => parseWorkerConfig({ ...base, onnx: onnxOptions })));
        expect(error).to.be.instanceOf(MeshworkValidationError);
        expect(error.issues[0].path).to.deep.equal(path);
      }
    });

    it("detects the available runtimes, in id order, filtered by the enabled list", async function () {
      const all = await detectRuntimes();
      expect(all.map((r) => r.name)).to.deep.equal(["int-kernel", "onnx"]);
      expect(runtimeBitmap(all)).to.equal(0b11);
      expect((await detectRuntimes(["int-kernel"])).map((r) => r.name)).to.deep.equal(["int-kernel"]);
      expect((await detectRuntimes([])).length).to.equal(0);
      const probed = await probeRuntimes(["onnx"], { onnx: { device: "cpu" } });
      expect(probed).to.have.length(1);
      expect(probed[0].capabilities).to.include({ available: true, device: "cpu" });
    });

    it("runtimeFor picks the spec's runtime", function () {
      expect(runtimeFor(spec({}))).to.equal(RUNTIMES["int-kernel"]);
      expect(runtimeFor(onnxSpec())).to.equal(RUNTIMES.onnx);
      expect(() => runtimeFor(onnxSpec(), [RUNTIMES["int-kernel"]])).to.throw(MeshworkError, /no onnx runtime/);
    });
  });

  describe("hardware", function () {
    it("parses nvidia-smi output", function () {
      expect(NVIDIA_SMI_ARGS).to.deep.equal(["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]);
      expect(parseNvidiaSmi("NVIDIA H100 80GB HBM3, 81559\nNVIDIA H100 80GB HBM3, 81559\n")).to.deep.equal([
        { name: "NVIDIA H100 80GB HBM3", vramGB: 80, vramMiB: 81559 },
        { name: "NVIDIA H100 80GB HBM3", vramGB: 80, vramMiB: 81559 },
      ]);
      expect(parseNvidiaSmi("  NVIDIA GeForce RTX 4090 ,  24564  \r\n\r\nTesla T4, 15360\r\n")).to.deep.equal([
        { name: "NVIDIA GeForce RTX 4090", vramGB: 24, vramMiB: 24564 },
        { name: "Tesla T4", vramGB: 15, vramMiB: 15360 },
      ]);
      // A header, units, a comma in the name, unsupported and error lines.
      const messy = [
        "name, memory.total [MiB]",
        "NVIDIA A100-SXM4-40GB, 40960 MiB",
        "Some, Odd, Name, 8192",
        "NVIDIA Grace Hopper, [N/A]",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        "",
      ].join("\n");
      expect(parseNvidiaSmi(messy)).to.deep.equal([
        { name: "NVIDIA A100-SXM4-40GB", vramGB: 40, vramMiB: 40960 },
        { name: "Some, Odd, Name", vramGB: 8, vramMiB: 8192 },
      ]);
      expect(parseNvidiaSmi("")).to.deep.equal([]);
      expect(parseNvidiaSmi("No devices were found")).to.deep.equal([]);
    });

    it("describes this machine", async function () {
      const hw = await detectHardware();
      expect(hw.cpu.cores).to.be.at.least(1);
      expect(hw.cpu.model).to.be.a("string").and.not.equal("");
      expect(hw.memoryGB).to.be.at.least(0);
      expect(hw.gpuCount).to.equal(hw.gpus.length);
      if (hw.gpus.length === 0) expect(hw).to.include({ source: "cpu", vramGB: 0 });
      else expect(hw.vramGB).to.equal(Math.min(...hw.gpus.map((g) => g.vramGB)));
    });
  });
});
