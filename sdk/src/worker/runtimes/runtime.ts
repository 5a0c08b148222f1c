/**
 * The interface every worker runtime implements (integer kernels, ONNX), with capability detection.
 * A runtime turns one input chunk into that chunk's canonical output bytes (PROTOCOL.md §5), so an
 * auditor re-running chunk i alone gets the same leaf.
 */
import type { JobSpec, RuntimeName } from "../../spec.js";

/**
 * `details.reason` of the {@link MeshworkValidationError} a runtime's `load` throws when it could not
 * load an executable that may yet load (an ONNX model ONNX Runtime refused: no ONNX, or out of memory
 * now, GPU memory included, which it does not tell apart); without it, the executable cannot run the
 * job, ever.
 */
export const SESSION_FAILED = "session-failed";

export interface RuntimeCapabilities {
  /** Whether this machine can run the runtime at all. */
  available: boolean;
  /** Where it computes. */
  device: "cpu" | "cuda";
  /** One human line: versions, execution providers, why it is unavailable. */
  detail: string;
}

/** A job's executable, loaded once and run chunk by chunk. */
export interface LoadedJob {
  /**
   * Runs chunk `index`: its input bytes in, its canonical output bytes out (the spec's output encoding).
   * Throws a `MeshworkError` subclass for input it cannot run (wrong size, bad values). `input` must not
   * change until the returned promise settles.
   */
  run(input: Uint8Array, index: number): Promise<Uint8Array>;
  /** Frees what `load` took (sessions, buffers). */
  close(): Promise<void>;
}

export interface Runtime {
  readonly name: RuntimeName;
  /** The runtime id: the bit of a provider's runtime bitmap and of a job's requirements. */
  readonly id: number;
  capabilities(): Promise<RuntimeCapabilities>;
  /**
   * Prepares a job: parses the program or loads the model (`executable` is the verified blob the spec
   * names). Throws a `MeshworkError` subclass for an executable it cannot run: a
   * `MeshworkValidationError`, with `details.reason` {@link SESSION_FAILED} where it may yet run.
   */
  load(spec: JobSpec, executable: Uint8Array): Promise<LoadedJob>;
}
