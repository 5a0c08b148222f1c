/**
 * The worker's runtimes by name, and which of them this machine can run.
 *
 * @example
 * ```ts
 * const runtimes = await detectRuntimes(config.runtimes); // e.g. [IntKernelRuntime, OnnxRuntime]
 * const bitmap = runtimes.reduce((b, r) => b | (1 << r.id), 0); // the provider profile's `runtimes`
 * const job = await runtimeFor(spec).load(spec, executable);
 * ```
 */
import { MeshworkError } from "../../errors.js";
import type { JobSpec, RuntimeName } from "../../spec.js";
import { IntKernelRuntime } from "./intKernel.js";
import { OnnxRuntime, type OnnxRuntimeOptions } from "./onnx.js";
import type { Runtime, RuntimeCapabilities } from "./runtime.js";

export type { LoadedJob, Runtime, RuntimeCapabilities } from "./runtime.js";
export { IntKernelRuntime, type IntKernelRuntimeOptions, buildInt8MatmulProgram, buildIntKernelProgram, parseIntKernelProgram, int8Matmul, runIntKernel } from "./intKernel.js";
export type { IntKernelProgram, Int8MatmulParams } from "./intKernel.js";
export { OnnxRuntime, probeCuda, type OnnxLoadedJob, type OnnxRuntimeOptions } from "./onnx.js";
export { setRuntimeThreads, stopRuntimeThread, stopOnnxThread } from "./runtimeThread.js";
export { buildDenseModel, evalDenseModel, type DenseLayer, type DenseModelOptions } from "./onnxModel.js";

/** One instance of every runtime the SDK has, by name (the ONNX one with default options). */
export const RUNTIMES: { readonly [N in RuntimeName]: Runtime & { readonly name: N } } = {
  "int-kernel": new IntKernelRuntime(),
  onnx: new OnnxRuntime(),
};

export interface DetectOptions {
  /** Options of the ONNX runtime; given, a fresh instance is used instead of `RUNTIMES.onnx`. */
  onnx?: OnnxRuntimeOptions;
}

/** A runtime with the capabilities it reported. */
export interface DetectedRuntime {
  runtime: Runtime;
  capabilities: RuntimeCapabilities;
}

/** Every runtime in `enabled` (default: all) with its capabilities, available or not, in runtime-id order. */
export async function probeRuntimes(enabled?: readonly RuntimeName[], options: DetectOptions = {}): Promise<DetectedRuntime[]> {
  const names = (Object.keys(RUNTIMES) as RuntimeName[]).filter((n) => !enabled || enabled.includes(n));
  const runtimes = names.map((n) => (n === "onnx" && options.onnx ? new OnnxRuntime(options.onnx) : RUNTIMES[n]));
  const probed = await Promise.all(
    runtimes.map(async (runtime) => {
      let capabilities: RuntimeCapabilities;
      try {
        capabilities = await runtime.capabilities();
      } catch (error) {
        capabilities = { available: false, device: "cpu", detail: `capability check failed: ${(error as Error)?.message ?? error}` };
      }
      return { runtime, capabilities };
    }),
  );
  return probed.sort((a, b) => a.runtime.id - b.runtime.id);
}

/** The runtimes in `enabled` (default: all) that this machine can run, in runtime-id order. */
export async function detectRuntimes(enabled?: readonly RuntimeName[], options: DetectOptions = {}): Promise<Runtime[]> {
  return (await probeRuntimes(enabled, options)).filter((p) => p.capabilities.available).map((p) => p.runtime);
}

/** The provider-profile bitmap of runtimes: bit `id` set for each. */
export function runtimeBitmap(runtimes: readonly Pick<Runtime, "id">[]): number {
  return runtimes.reduce((bits, r) => bits | (1 << r.id), 0);
}

/**
 * The runtime that runs `spec` (from `runtimes`, default {@link RUNTIMES}). Throws {@link MeshworkError}
 * when none of them has the spec's runtime.
 */
export function runtimeFor(spec: Pick<JobSpec, "runtime">, runtimes: readonly Runtime[] = Object.values(RUNTIMES)): Runtime {
  const runtime = runtimes.find((r) => r.name === spec.runtime);
  if (!runtime) throw new MeshworkError(`no ${spec.runtime} runtime on this worker`, { details: { runtime: spec.runtime, have: runtimes.map((r) => r.name) } });
  return runtime;
}
